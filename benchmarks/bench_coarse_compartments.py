"""Compartments of coarse volumes from the plain model: where the rule helps and where it stands aside.

:func:`sxtseg.segment` takes the background, cytoplasm, nucleus and nucleolus of a volume coarser
than the default model's training voxels from the shipped plain model, and grows the default's DMVs
by the plain model's around them (:mod:`sxtseg.compartments`), except when the calibration found no
ice or the volume has a missing wedge.  This benchmark runs
coarse phantoms that also carry a second difficulty, each three ways in one process run, with
``sxtseg.run`` and default settings otherwise:

- ``none``: the default model alone (``compartment_model=None``, as before the rule);
- ``auto``: the rule as shipped;
- ``plain``: the plain model's compartments always (``compartment_model="plain"``: the rule without
  its two exceptions, and without growing the default model's DMVs).

Seeds 7480-7499 (tuning side: the rule's exceptions were chosen on the first ten of them);
``--seed 6100`` gives held-out cells.  Scores as in ``bench_robustness.py``.

Run::

    python benchmarks/bench_coarse_compartments.py            # 5 combinations x 2 seeds x 3 ways, about 8 min
    python benchmarks/bench_coarse_compartments.py --quick    # one cell, three ways, no mirroring
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as grid  # noqa: E402

import sxtseg  # noqa: E402


def combinations() -> dict:
    """Condition name -> phantom options: coarse voxels and one more difficulty."""

    def coarse(voxel_nm, **imaging):
        z = voxel_nm if np.isscalar(voxel_nm) else voxel_nm[0]
        xy = voxel_nm if np.isscalar(voxel_nm) else voxel_nm[2]
        return grid._imaging(psf_sigma_xy_nm=xy, psf_sigma_z_nm=1.5 * z, **imaging)

    return {
        "50 nm, missing wedge +-60 deg": {"voxel_nm": 50.0, "imaging": coarse(50.0, tilt_range_deg=(-60.0, 60.0))},
        "50 nm, no ice": {"voxel_nm": 50.0, "ice": False, "imaging": coarse(50.0)},
        "60 nm, noise x3": {"voxel_nm": 60.0, "imaging": coarse(60.0, photon_noise=0.12)},
        "z voxels 2x, decoys": {"voxel_nm": (60.0, 30.0, 30.0), "n_lysosomes": 12, "n_multivesicular_bodies": 4,
                                "n_vacuoles": 4},
        "50 nm, cell cut by the field of view": {"voxel_nm": 50.0, "cut_by_field_of_view": True},
    }


WAYS = {"none": None, "auto": "auto", "plain": "plain"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7480, help="first seed (one per cell)")
    parser.add_argument("--cells-per-condition", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one cell, each window run once (CI smoke test)")
    args = parser.parse_args(argv)
    cells = combinations()
    mirror = True
    if args.quick:
        cells = dict(list(cells.items())[3:4])
        args.cells_per_condition, mirror = 1, False
    rows = []
    names = list(combinations())
    with tempfile.TemporaryDirectory(prefix="bench-compartments-") as tmp:
        for j in range(args.cells_per_condition):
            for condition, options in cells.items():
                seed = args.seed + 1 + names.index(condition) + j * len(names)
                for way, choice in WAYS.items():
                    row = grid.score(condition, seed, options, None, "default", "auto", Path(tmp),
                                     {"compartment_model": choice, "mirror": mirror})
                    row["way"] = way
                    print(json.dumps(row), file=sys.stderr)
                    rows.append(row)
    import torch

    record = {"benchmark": "bench_coarse_compartments", "first_seed": args.seed,
              "cells_per_condition": args.cells_per_condition, "ways": list(WAYS), "mirror": mirror,
              "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__, "numpy": np.__version__},
              "rows": rows}
    print(json.dumps(record))
    print(markdown(rows), file=sys.stderr)
    return 0


def markdown(rows: list[dict]) -> str:
    """One line per cell: DMV / nucleus Dice and DMV precision for each way."""
    lines = ["| condition, seed | " + " | ".join(f"{w}: DMV / nucleus Dice (DMV precision)" for w in WAYS) + " |",
             "|---|" + "---|" * len(WAYS)]
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["condition"], r["seed"]), {})[r["way"]] = r
    for (condition, seed), ways in cells.items():
        parts = []
        for w in WAYS:
            r = ways.get(w, {})
            d, o = r.get("dice", {}), r.get("dmv_objects", {})
            parts.append(f"{d.get('dmv')} / {d.get('nucleus')} ({o.get('precision')})" + ("" if w != "auto" else
                         f" [{r.get('compartments') or 'default alone'}]"))
        lines.append(f"| {condition}, {seed} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
