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

__all__ = ["demo", "format_report"]

#: Phantom seed of the demo (training used 100-199 and 900; held-out tests 1000-1002).
DEMO_SEED = 4242


def demo(output_dir="sxtseg-demo", *, shape=(128, 384, 384), seed: int = DEMO_SEED, model="default",
         device="auto", overwrite: bool = True, progress: bool = True) -> dict:
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

    Returns
    -------
    dict
        ``dice`` per class, ``dmv_count`` (found, true), ``dmv_mean_diameter_nm``
        (found, true), ``timings_s`` per stage and ``output_dir``.
    """
    from .infer import dice_per_class
    from .phantom import make_infected_cell
    from .pipeline import run

    started = time.perf_counter()
    image, classes, _, objects = make_infected_cell(shape, seed=seed)
    image = image.compute()
    image.metadata["source"] = {"path": f"phantom-seed-{seed}"}
    phantom_s = time.perf_counter() - started

    result = run(image, output_dir, model, overwrite=overwrite, device=device, progress=progress)
    out = Path(result["output_dir"])
    report = next(iter(result["samples"].values()))

    from .io import open_volume

    found = open_volume(out / "volume.ome.zarr" / "labels" / "classes").to_numpy()
    dice = dice_per_class(found, classes.to_numpy(), len(CLASS_NAMES))
    table = pd.read_csv(out / "objects.csv")
    dmv = table[table["class_id"] == SXTClass.DMV]
    truth = objects[objects["class_name"] == "dmv"]
    summary = {
        "output_dir": str(out),
        "dice": {CLASS_NAMES[c]: round(float(d), 4) for c, d in enumerate(dice)},
        "dmv_count": {"found": int(len(dmv)), "true": int(len(truth))},
        "dmv_mean_diameter_nm": {"found": round(float(dmv["equivalent_diameter_nm"].mean()), 1) if len(dmv) else None,
                                 "true": round(float(truth["diameter_nm"].mean()), 1)},
        "timings_s": {"phantom": round(phantom_s, 2), **report["timings_s"]},
        "model_sha256": report["model"]["sha256"],
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_report(summary: dict) -> str:
    """The demo's result as a few lines of text."""
    lines = ["sxtseg demo: a phantom infected cell, segmented and measured", "",
             "Dice per class against the phantom's truth:"]
    lines += [f"  {name:14s} {value:.3f}" for name, value in summary["dice"].items() if not np.isnan(value)]
    count, diameter = summary["dmv_count"], summary["dmv_mean_diameter_nm"]
    lines += ["", f"DMVs found: {count['found']} (true {count['true']})",
              f"DMV mean diameter: {diameter['found']} nm (true {diameter['true']} nm)", "",
              "Seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings_s"].items()),
              f"Results: {summary['output_dir']} (objects.csv, summary.json, volume.ome.zarr, quicklook.png)"]
    return "\n".join(lines)
