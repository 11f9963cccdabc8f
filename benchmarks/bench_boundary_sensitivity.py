"""How far a segmentation's boundaries may be off before Dice falls under a target, by voxel size.

The robustness grid (``bench_robustness.py``) scores DMV Dice at 50 and 60 nm voxels against the
phantom's truth rasterised at that voxel size.  DMVs are 200-400 nm across: 3-8 voxels at 50-60 nm.
This script measures, on the phantom's own truth and with no model, what Dice a perfect
segmentation scores when its boundaries are displaced by a fraction of a voxel:

- the truth is drawn three times finer (voxel size / 3) for the same physical field;
- "centre": every third voxel from the second on (the coarse voxel's centre), which is how the
  phantom rasterises at the coarse size;
- "majority": the most common class of each 3x3x3 block (another valid rasterisation,
  :func:`sxtseg.kernels.downsample_mode`);
- "shift x": the fine voxels one to the right of the centres: the same truth displaced by a third
  of a coarse voxel along x;
- "shift xyz": displaced by a third of a voxel along every axis (0.58 voxel diagonally).

Dice per class of each against "centre".  No model and no image are involved: the numbers say how
sensitive the metric is at each voxel size, not how good a model is.

Run::

    python benchmarks/bench_boundary_sensitivity.py                 # seeds 7300-7302, voxels 30, 50, 60 nm
    python benchmarks/bench_boundary_sensitivity.py --voxels 60 --seeds 7300
    python benchmarks/bench_boundary_sensitivity.py --quick        # one seed at 60 nm, half the field (CI)

It prints one JSON record and a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from sxtseg import SXTClass, make_infected_cell
from sxtseg.infer import dice_per_class
from sxtseg.kernels import downsample_mode

BASE_SHAPE = (64, 192, 192)  # the robustness grid's field: voxels at 30 nm
BASE_VOXEL_NM = 30.0
CLASSES = {"dmv": SXTClass.DMV, "nucleus": SXTClass.NUCLEUS, "mitochondrion": SXTClass.MITOCHONDRION,
           "lipid_droplet": SXTClass.LIPID_DROPLET}


def rasterisations(truth: np.ndarray) -> dict[str, np.ndarray]:
    """Coarse (3x) versions of a fine truth: centre sampled, majority, and displaced by a third of a voxel."""
    z, y, x = (s // 3 for s in truth.shape)
    crop = (slice(0, z), slice(0, y), slice(0, x))
    return {"centre": truth[1::3, 1::3, 1::3][crop], "majority": downsample_mode(truth, (3, 3, 3)),
            "shift x": truth[1::3, 1::3, 2::3][crop], "shift xyz": truth[2::3, 2::3, 2::3][crop]}


def measure(seed: int, voxel_nm: float, field: float = 1.0) -> dict:
    """Dice of the majority and displaced rasterisations against the centre sample (``field``: of the base field)."""
    fine_nm = voxel_nm / 3
    shape = tuple(int(round(n * field * BASE_VOXEL_NM / fine_nm)) for n in BASE_SHAPE)
    started = time.perf_counter()
    _, classes, _, _ = make_infected_cell(shape, voxel_size_nm=fine_nm, seed=seed)
    versions = rasterisations(classes.to_numpy())
    n_classes = int(max(v.max() for v in versions.values())) + 1
    row = {"seed": seed, "voxel_nm": voxel_nm, "fine_shape": list(shape),
           "seconds": round(time.perf_counter() - started, 1), "dice": {}}
    for name in ("majority", "shift x", "shift xyz"):
        dice = dice_per_class(versions[name], versions["centre"], n_classes)
        row["dice"][name] = {label: None if np.isnan(dice[code]) else round(float(dice[code]), 4)  # class absent
                             for label, code in CLASSES.items()}
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=float, nargs="+", default=[30.0, 50.0, 60.0], help="coarse voxel sizes, nm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7300, 7301, 7302],
                        help="phantom seeds (default: outside the training, tuning and held-out ranges)")
    parser.add_argument("--quick", action="store_true", help="seed 7300 at 60 nm, half the field in each axis")
    args = parser.parse_args(argv)
    if args.quick:
        args.voxels, args.seeds = [60.0], [7300]
    field = 0.5 if args.quick else 1.0
    rows = [measure(seed, v, field) for v in args.voxels for seed in args.seeds]
    record = {"benchmark": "bench_boundary_sensitivity", "base_shape_at_30nm": list(BASE_SHAPE), "field": field,
              "machine": {"python": platform.python_version()}, "rows": rows}
    print("| voxel nm | seed | DMV: majority / shift x / shift xyz | nucleus | mitochondrion |", file=sys.stderr)
    print("|---|---|---|---|---|", file=sys.stderr)
    for row in rows:
        cells = [" / ".join("-" if row["dice"][k][c] is None else f"{row['dice'][k][c]:.3f}"
                            for k in ("majority", "shift x", "shift xyz"))
                 for c in ("dmv", "nucleus", "mitochondrion")]
        print(f"| {row['voxel_nm']:.0f} | {row['seed']} | " + " | ".join(cells) + " |", file=sys.stderr)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
