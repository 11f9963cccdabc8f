"""``sxtseg demo``: the whole pipeline on a generated cell, checked against its ground truth.

No data needed: :func:`demo` draws a phantom infected cell
(:func:`sxtseg.make_infected_cell`, a seed never used to train the shipped
weights), runs :func:`sxtseg.run` on it with the shipped default model, and
compares the result with the phantom's truth: Dice per class, DMVs found
against DMVs drawn, and their mean diameter found against the true one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .classes import CLASS_NAMES, SXTClass

__all__ = ["demo", "format_report", "match_objects"]

#: Organelle classes scored object by object against the phantom's truth (those present in it).
MATCHED_CLASSES = [SXTClass.NUCLEUS, SXTClass.NUCLEOLUS, SXTClass.MITOCHONDRION, SXTClass.LIPID_DROPLET,
                   SXTClass.DMV] + [c for c in SXTClass if c.label in ("other_vesicle", "fiducial")]

#: Phantom seed of the demo (training used 100-199 and 900; held-out tests 1000-1002).
DEMO_SEED = 4242


def demo(output_dir="sxtseg-demo", *, shape=(128, 384, 384), seed: int = DEMO_SEED, model="default",
         device="auto", overwrite: bool = True, progress: bool = True, **run_options) -> dict:
    """Run the pipeline on a phantom cell and score it against the phantom's truth.

    Parameters
    ----------
    output_dir : str or Path
        Where the results go (replaced when ``overwrite``, the default: it is the demo's own folder).
    shape : tuple of int
        Phantom size in voxels (z, y, x), 30 nm voxels.
    seed : int
        Phantom seed.
    model, device
        As for :func:`sxtseg.run`.
    overwrite : bool
        Replace ``output_dir``.
    progress : bool
        Progress bars.
    **run_options
        Passed to :func:`sxtseg.run`: ``calibration``, ``dmv_min_distance_nm``,
        ``dmv_min_diameter_nm``, ``dmv_min_depth_nm``, ``min_volume_um3``...

    Returns
    -------
    dict
        ``dice`` per class, ``dmv_count`` (found, true), ``dmv_matching``,
        ``matching`` (the object-level match of every organelle class in the
        truth: :func:`match_objects`), ``counts`` (objects per class in
        ``summary.json`` against the truth), ``calibration``, ``quality``,
        ``dmv_mean_diameter_nm`` (found, true), ``timings_s`` per stage and
        ``output_dir``.
    """
    from .infer import dice_per_class
    from .phantom import make_infected_cell
    from .pipeline import run

    started = time.perf_counter()
    image, classes, true_instances, objects = make_infected_cell(shape, seed=seed)
    image = image.compute()
    image.metadata["source"] = {"path": f"phantom-seed-{seed}"}
    phantom_s = time.perf_counter() - started

    result = run(image, output_dir, model, overwrite=overwrite, device=device, progress=progress, **run_options)
    out = Path(result["output_dir"])
    report = next(iter(result["samples"].values()))

    from .io import open_volume

    found = open_volume(out / "volume.ome.zarr" / "labels" / "classes").to_numpy()
    true_classes, true_ids = classes.to_numpy(), true_instances.to_numpy()
    dice = dice_per_class(found, true_classes, len(CLASS_NAMES))
    table = pd.read_csv(out / "objects.csv")
    dmv = table[table["class_id"] == SXTClass.DMV]
    truth = objects[objects["class_name"] == "dmv"]
    found_instances = open_volume(out / "volume.ome.zarr" / "labels" / "instances").to_numpy()
    per_class = _match_classes(found_instances, table, true_ids, true_classes,
                               [c for c in MATCHED_CLASSES if (objects["class_name"] == CLASS_NAMES[int(c)]).any()
                                or (table["class_id"] == c).any()])
    matching = per_class["dmv"]
    found_counts = {name: int(v["count"]) for name, v in report["summary"]["classes"].items()}
    true_counts = objects["class_name"].value_counts().to_dict()
    summary = {
        "output_dir": str(out),
        "dice": {CLASS_NAMES[c]: round(float(d), 4) for c, d in enumerate(dice) if not np.isnan(d)},
        "dmv_count": {"found": int(len(dmv)), "true": int(len(truth))},
        "dmv_matching": matching,
        "matching": per_class,
        "counts": {name: {"found": found_counts.get(name, 0), "true": int(true_counts.get(name, 0))}
                   for name in sorted(set(found_counts) | set(true_counts), key=lambda n: SXTClass.from_label(n))},
        "calibration": report["calibration"],
        "quality": report["quality"],
        "dmv_mean_diameter_nm": {"found": round(float(dmv["equivalent_diameter_nm"].mean()), 1) if len(dmv) else None,
                                 "true": round(float(truth["diameter_nm"].mean()), 1)},
        "timings_s": {"phantom": round(phantom_s, 2), **report["timings_s"]},
        "model_sha256": report["model"]["sha256"],
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1))
    return summary


def _match_classes(found: np.ndarray, table: pd.DataFrame, true_ids: np.ndarray, true_classes: np.ndarray,
                   codes) -> dict:
    """:func:`match_objects` of each class code in ``codes``, from one overlap table of the whole cell.

    The same as ``match_objects(found, labels of the class in table, np.where(true_classes == code,
    true_ids, 0))`` for each class: every true object lies in one class, so the overlap of the found
    and true labels, counted once, holds each class's.
    """
    from sxtseg.kernels import overlap_counts

    ids, id_classes, _ = overlap_counts(true_ids, true_classes)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("match_classes: a true object's voxels lie in more than one class")
    class_of = pd.Series(id_classes, index=ids)
    found_ids, hit_ids, voxels = overlap_counts(found, true_ids)
    hit_classes = class_of[hit_ids].to_numpy()
    return {CLASS_NAMES[int(code)]: _match(found_ids, np.where(hit_classes == code, hit_ids, 0), voxels,
                                           table.loc[table["class_id"] == code, "label"].to_numpy())
            for code in codes}


def match_objects(found: np.ndarray, found_labels: np.ndarray, truth: np.ndarray) -> dict:
    """Object-level comparison of found instances with true ones, by voxel overlap.

    Each found object is matched to the true object holding most of its
    voxels; it is a false positive when that is background or less than half
    of it.  A true object matched by several found ones was split (the
    extras are counted as ``split_extra``); one matched by none was missed.
    A found object covering a quarter or more of two true ones merged them.

    Parameters
    ----------
    found : ndarray of int
        Found instance labels.
    found_labels : ndarray of int
        The found labels to score (e.g. the DMV rows of ``objects.csv``).
    truth : ndarray of int
        True instance labels of the same class, 0 elsewhere.

    Returns
    -------
    dict
        ``matched`` (true objects found), ``false_positive``, ``split_extra``,
        ``missed`` and ``merged`` counts.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2, 0, 0]])
    >>> found = np.array([[1, 3, 0, 2, 2, 0, 4]])
    >>> match_objects(found, np.array([1, 2, 3, 4]), truth)
    {'matched': 2, 'false_positive': 1, 'split_extra': 1, 'missed': 0, 'merged': 0}
    """
    from sxtseg.kernels import overlap_counts

    return _match(*overlap_counts(found, truth), found_labels)


def _match(found_ids: np.ndarray, true_ids: np.ndarray, voxels: np.ndarray, found_labels: np.ndarray) -> dict:
    """:func:`match_objects` from the overlap table of the found and true labels (their voxel counts)."""
    pairs = pd.DataFrame({"found": found_ids, "true": true_ids, "voxels": voxels})
    true_sizes = pairs[pairs["true"] > 0].groupby("true")["voxels"].sum()
    overlap = pairs[pairs["found"].isin(found_labels)].groupby(["found", "true"], as_index=False)["voxels"].sum()
    best = overlap.sort_values("voxels", ascending=False, kind="stable").drop_duplicates("found")
    best = best.set_index("found")
    share = best["voxels"] / overlap.groupby("found")["voxels"].sum()[best.index]
    hits = best[(best["true"] > 0) & (share >= 0.5)]
    per_true = hits.groupby("true").size()
    covered = overlap[overlap["true"] > 0].copy()
    covered["share_of_true"] = covered["voxels"].to_numpy() / true_sizes[covered["true"]].to_numpy()
    merged = (covered[covered["share_of_true"] >= 0.25].groupby("found").size() >= 2).sum()
    return {"matched": int(len(per_true)), "false_positive": int(len(best) - len(hits)),
            "split_extra": int((per_true - 1).sum()), "missed": int(len(true_sizes) - len(per_true)),
            "merged": int(merged)}


def format_report(summary: dict) -> str:
    """The demo's result as a few lines of text."""
    lines = ["sxtseg demo: a phantom infected cell, segmented and measured", "",
             "Dice per class against the phantom's truth:"]
    lines += [f"  {name:14s} {value:.3f}" for name, value in summary["dice"].items() if not np.isnan(value)]
    count, diameter = summary["dmv_count"], summary["dmv_mean_diameter_nm"]
    m = summary["dmv_matching"]
    lines += ["", f"DMVs found: {count['found']} (true {count['true']}): {m['matched']} true ones matched, "
                  f"{m['false_positive']} false positives, {m['split_extra']} extra halves of split ones, "
                  f"{m['missed']} missed, {m['merged']} merged pairs",
              f"DMV mean diameter: {diameter['found']} nm (true {diameter['true']} nm)", "",
              "Objects per class (summary.json counts; matched / false positives / split / missed / merged):"]
    for name, c in summary.get("counts", {}).items():
        text = f"  {name:14s} found {c['found']:4d}  true {c['true']:4d}"
        if name in summary.get("matching", {}):
            mm = summary["matching"][name]
            text += (f"   {mm['matched']} / {mm['false_positive']} / {mm['split_extra']} / {mm['missed']} / "
                     f"{mm['merged']}")
        lines.append(text)
    if "calibration" in summary:
        from .calibration import CalibrationRecord

        lines += ["", CalibrationRecord.from_dict(summary["calibration"]).summary()]
    for flag in summary.get("quality", []):
        lines.append(f"quality: {flag['flag']}: {flag['message']}")
    lines += ["",
              "Seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings_s"].items()),
              f"Results: {summary['output_dir']} (objects.csv, summary.json, volume.ome.zarr, quicklook.png)"]
    return "\n".join(lines)
