"""Robustness of the default path on phantoms unlike the training data: grey-value conventions, voxel sizes,
imaging models and scenes.

Every cell of the grid is a held-out phantom (seeds 6000-6999: never used in training, tuning or tests)
changed in one way, segmented with ``sxtseg.run`` exactly as a user calls it (default settings, no hand
calibration), and scored against the phantom's truth:

- Dice per class;
- DMV object precision and recall (:func:`sxtseg.demo.match_objects`: a found DMV is a true positive
  when most of it lies in one true DMV, counted once per true DMV);
- count error per class (objects in ``summary.json`` minus true objects);
- the calibration ``auto`` chose.

Run::

    python benchmarks/bench_robustness.py                       # the whole grid, shipped default model
    python benchmarks/bench_robustness.py --model old.pt --label before --calibration none
    python benchmarks/bench_robustness.py --quick               # three cells, small (CI smoke test)
    python benchmarks/bench_robustness.py --denoise none --label no-denoise   # without noise matching

It prints one JSON record (inputs, versions, per-cell rows) and a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import sxtseg
from sxtseg import SXTClass, Volume, make_infected_cell
from sxtseg.demo import match_objects
from sxtseg.infer import dice_per_class

SCORED = ["background", "cytoplasm", "nucleus", "nucleolus", "mitochondrion", "lipid_droplet", "dmv"]
COUNTED = ["nucleus", "nucleolus", "mitochondrion", "lipid_droplet", "dmv", "other_vesicle", "fiducial"]
BASE_SHAPE = (64, 192, 192)  # voxels at 30 nm: 1.9 x 5.8 x 5.8 um
BASE_VOXEL_NM = 30.0


def _phantom(seed: int, voxel_nm=BASE_VOXEL_NM, **options):
    """A phantom of the base physical size at this voxel size (scalar or (z, y, x) nm)."""
    voxel = np.broadcast_to(np.asarray(voxel_nm, float), (3,))
    shape = tuple(int(round(n * BASE_VOXEL_NM / v)) for n, v in zip(BASE_SHAPE, voxel))
    shape = tuple(max(s, 32) for s in shape)
    v = float(voxel[0]) if np.all(voxel == voxel[0]) else tuple(float(x) for x in voxel)
    return make_infected_cell(shape, voxel_size_nm=v, seed=seed, **options)


def _imaging(**changes):
    """The phantom's default imaging at 30 nm (PSF sigma 30 nm in xy, 45 nm in z; noise 0.04), changed."""
    from sxtseg.phantom import ImagingModel

    return ImagingModel(**{"psf_sigma_xy_nm": BASE_VOXEL_NM, "psf_sigma_z_nm": 1.5 * BASE_VOXEL_NM,
                           "photon_noise": 0.04, **changes})


def grid() -> dict:
    """Condition name -> (phantom options, grey-value transform of the LAC array or None)."""
    lac = None
    cells = {
        "as generated (30 nm)": ({}, lac),
        "grey x0.6": ({}, lambda a, v: a * 0.6),
        "grey x0.8": ({}, lambda a, v: a * 0.8),
        "grey x1.25": ({}, lambda a, v: a * 1.25),
        "grey x1.6": ({}, lambda a, v: a * 1.6),
        "offset -0.08": ({}, lambda a, v: a - 0.08),
        "offset +0.08": ({}, lambda a, v: a + 0.08),
        "uint16 (40000 LAC + 2000)": ({}, lambda a, v: np.clip(a * 40000 + 2000, 0, 65535).round().astype(np.uint16)),
        "attenuation per voxel": ({}, lambda a, v: (a * (v[-1] / 1000.0)).astype(np.float32)),
        "voxels 20 nm": ({"voxel_nm": 20.0}, lac),
        "voxels 25 nm": ({"voxel_nm": 25.0}, lac),
        "voxels 50 nm": ({"voxel_nm": 50.0}, lac),
        "voxels 60 nm": ({"voxel_nm": 60.0}, lac),
        "z voxels 2x (60, 30, 30 nm)": ({"voxel_nm": (60.0, 30.0, 30.0)}, lac),
        "z blur sigma 3 voxels": ({"imaging": ("psf_sigma_z_nm", 3 * BASE_VOXEL_NM)}, lac),
        "noise x3": ({"imaging": ("photon_noise", 0.12)}, lac),
        "missing wedge +-60 deg": ({"imaging": ("tilt_range_deg", (-60.0, 60.0))}, lac),
        "decoys (lysosomes, MVBs, vacuoles)": ({"n_lysosomes": 12, "n_multivesicular_bodies": 4,
                                               "n_vacuoles": 4}, lac),
        "gold fiducials": ({"n_fiducials": 12}, lac),
        "cell cut by the field of view": ({"cut_by_field_of_view": True}, lac),
        "no ice": ({"ice": False}, lac),
    }
    return cells


def _options(raw: dict) -> dict:
    options = dict(raw)
    if isinstance(options.get("imaging"), tuple):  # (field, value): the default imaging with one change
        field, value = options.pop("imaging")
        options["imaging"] = _imaging(**{field: value})
    return options


def score(condition: str, seed: int, raw_options: dict, transform, model, calibration, out_root: Path,
          run_options: dict | None = None) -> dict:
    options = _options(raw_options)
    voxel_nm = options.pop("voxel_nm", BASE_VOXEL_NM)
    image, classes, instances, objects = _phantom(seed, voxel_nm, **options)
    array = image.to_numpy()
    if transform is not None:
        array = transform(array, image.voxel_size)
    # a new Volume: no phantom metadata, as a file from a microscope would come
    volume = Volume(np.ascontiguousarray(array), voxel_size=image.voxel_size,
                    metadata={"source": {"path": f"{condition} (seed {seed})"}})
    out = out_root / f"cell-{seed}"
    started = time.perf_counter()
    error = None
    try:
        result = sxtseg.run(volume, out, model, calibration=calibration, overwrite=True, progress=False,
                            **(run_options or {}))
    except sxtseg.SxtsegError as exc:  # a refusal is a result too (with its reason)
        error = str(exc)
    seconds = time.perf_counter() - started
    row = {"condition": condition, "seed": seed, "shape": list(volume.shape), "dtype": str(volume.dtype),
           "voxel_size_nm": list(volume.voxel_size), "seconds": round(seconds, 2)}
    if error is not None:
        return {**row, "error": error}
    report = next(iter(result["samples"].values()))
    found = sxtseg.open_volume(out / "volume.ome.zarr" / "labels" / "classes").to_numpy()
    found_ids = sxtseg.open_volume(out / "volume.ome.zarr" / "labels" / "instances").to_numpy()
    table = pd.read_csv(out / "objects.csv")
    truth, true_ids = classes.to_numpy(), instances.to_numpy()
    dice = dice_per_class(found, truth, int(max(truth.max(), found.max())) + 1)
    names = {int(c): c.label for c in SXTClass}
    row["dice"] = {names.get(c, str(c)): (None if np.isnan(d) else round(float(d), 4)) for c, d in enumerate(dice)}
    dmv = table[table["class_id"] == SXTClass.DMV]
    m = match_objects(found_ids, dmv["label"].to_numpy(), np.where(truth == SXTClass.DMV, true_ids, 0))
    n_true = int((objects["class_name"] == "dmv").sum())
    row["dmv_objects"] = {**m, "found": int(len(dmv)), "true": n_true,
                          "precision": round(m["matched"] / len(dmv), 4) if len(dmv) else None,
                          "recall": round(m["matched"] / n_true, 4) if n_true else None}
    counts = {name: int(v["count"]) for name, v in report["summary"]["classes"].items()}
    true_counts = objects["class_name"].value_counts().to_dict()
    row["count_error"] = {name: counts.get(name, 0) - int(true_counts.get(name, 0)) for name in COUNTED
                          if name in true_counts or name in counts}
    cal = report["calibration"]
    row["calibration"] = {"method": cal["method"], "input_kind": cal["input_kind"], "scale": cal["scale"],
                          "offset": cal["offset"], "confidence": cal["confidence"], "flags": cal["flags"]}
    row["quality"] = [f["flag"] for f in report["quality"]]
    row["compartments"] = (report["model"].get("compartments") or {}).get("model")
    row["denoise"] = {k: report["denoise"][k] for k in ("method", "sigma_voxels", "noise_1_per_um")}
    checks = report["instances"].get("object_checks", {})
    row["object_checks"] = {k: checks[k] for k in ("to_fiducial",) if k in checks}
    row["object_checks"]["dmv_to_other_vesicle"] = checks.get("dmv", {}).get("to_other_vesicle", 0)
    shutil.rmtree(out, ignore_errors=True)
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| condition | DMV Dice | nucleus Dice | DMV precision | DMV recall | count error (nucleus, mito, LD, "
            "DMV) | calibration |\n|---|---|---|---|---|---|---|")
    lines = [head]
    repeated = len({r["condition"] for r in rows}) < len(rows)
    for r in rows:
        if repeated:
            r = {**r, "condition": f"{r['condition']}, seed {r['seed']}"}
        if "error" in r:
            lines.append(f"| {r['condition']} | refused: {r['error'][:120]} | | | | | |")
            continue
        d, o, c = r["dice"], r["dmv_objects"], r["count_error"]
        cal = r["calibration"]
        counts = ", ".join(f"{c.get(k, 0):+d}" for k in ("nucleus", "mitochondrion", "lipid_droplet", "dmv"))
        lines.append(f"| {r['condition']} | {d.get('dmv')} | {d.get('nucleus')} | {o['precision']} | {o['recall']} | "
                     f"{counts} | {cal['method']} x{cal['scale']:.4g} {cal['offset']:+.3g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model name or checkpoint (default: default)")
    parser.add_argument("--label", default="after", help="what this run is (before/after), recorded")
    parser.add_argument("--calibration", default="auto", help="auto (default), none, or SCALE,OFFSET")
    parser.add_argument("--seed", type=int, default=6000, help="first held-out seed (one per cell of the grid)")
    parser.add_argument("--cells-per-condition", type=int, default=1,
                        help="phantoms per condition (default 1): the j-th of condition k has seed "
                             "SEED + k + j * (conditions in the grid)")
    parser.add_argument("--only", nargs="*", help="conditions to run (substrings)")
    parser.add_argument("--quick", action="store_true", help="three conditions (CI smoke test)")
    parser.add_argument("--denoise", default="auto", help="auto (default), none, or a Gaussian sigma in voxels")
    parser.add_argument("--precision", default="auto", help="arithmetic of the network (default auto)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="run each window once, without test-time mirroring (the default before it)")
    parser.add_argument("--compartment-model", default="auto",
                        help="auto (default), none (the main model alone, as before it), or a model name")
    parser.add_argument("--no-dmv-check", action="store_true",
                        help="run without sxtseg.dmv_check (DMV-class objects looked at again), as before it")
    parser.add_argument("--no-object-checks", action="store_true",
                        help="run without sxtseg.object_checks (gold beads found by their LAC), as before it")
    args = parser.parse_args(argv)
    from sxtseg.calibration import parse_calibration

    calibration = parse_calibration(args.calibration)
    cells = grid()
    if args.quick:
        cells = {k: v for k, v in cells.items() if k in ("as generated (30 nm)", "uint16 (40000 LAC + 2000)",
                                                         "voxels 60 nm")}
    if args.only:
        cells = {k: v for k, v in cells.items() if any(s in k for s in args.only)}
    from sxtseg.models import load_model

    meta = load_model(args.model).metadata
    from sxtseg.denoise import parse_denoise

    run_options = {"denoise": parse_denoise(args.denoise), "precision": args.precision, "mirror": not args.no_mirror,
                   "compartment_model": None if args.compartment_model == "none" else args.compartment_model}
    if args.no_object_checks:
        run_options["fiducial_min_lac"] = None
    if args.no_dmv_check:
        run_options["dmv_check"] = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-robustness-") as tmp:
        names = list(grid())
        for condition, (options, transform) in cells.items():
            k = names.index(condition)  # a cell's seed is its place in the whole grid, whatever --only picks
            for j in range(args.cells_per_condition):
                row = score(condition, args.seed + k + j * len(names), options, transform, args.model,
                            calibration, Path(tmp), run_options)
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    import torch

    record = {"benchmark": "bench_robustness", "label": args.label, "model": str(args.model),
              "model_sha256": meta["sha256"], "calibration": args.calibration, "denoise": args.denoise,
              "precision": args.precision, "mirror": not args.no_mirror, "first_seed": args.seed,
              "cells_per_condition": args.cells_per_condition,
              "object_checks": not args.no_object_checks,
              "dmv_check": not args.no_dmv_check, "compartment_model": args.compartment_model,
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__, "numpy": np.__version__},
              "base_shape": list(BASE_SHAPE), "rows": rows}
    print(json.dumps(record))
    print(markdown(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
