"""The DMV instance parameters of ``sxtseg.run``, swept on tuning cells that are not the demo cell.

``sxtseg.run`` splits touching DMVs with seeds at least ``dmv_min_distance_nm`` apart, merges seeds
joined by a saddle shallower than ``dmv_min_depth_nm`` and drops DMV pieces smaller than a ball of
``dmv_min_diameter_nm``. Their defaults are chosen here, on tuning phantoms (seeds 7000-7003: not
the demo's 4242, not the robustness benchmark's 6000-6020, not training's 100-199 and 900), each
segmented once with the model, then instanced with every combination; the score is DMV object
precision and recall against the truth (``sxtseg.demo.match_objects``), summed over the cells.

Run::

    python benchmarks/bench_instance_defaults.py            # 4 cells of 96x256x256, about 3 minutes
    python benchmarks/bench_instance_defaults.py --quick    # one small cell, two combinations

It prints one JSON record (one row per combination) and a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

import sxtseg
from sxtseg import SXTClass, make_infected_cell, segment
from sxtseg.demo import match_objects
from sxtseg.instances import merge_fragments
from sxtseg.pipeline import _instances


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--seeds", type=int, nargs="*", default=[7000, 7001, 7002, 7003])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    shape = (48, 128, 128) if args.quick else (96, 256, 256)
    seeds = args.seeds[:1] if args.quick else args.seeds
    distances = [150.0] if args.quick else [100.0, 150.0, 200.0]
    diameters = [100.0, 150.0] if args.quick else [100.0, 150.0, 180.0]
    depths = [None] if args.quick else [0.0, None, 30.0]  # None: half the voxel edge (15 nm at 30 nm)
    cells = []
    for seed in seeds:
        image, classes, instances, objects = make_infected_cell(shape, seed=seed, n_lysosomes=6,
                                                                n_multivesicular_bodies=2)
        found = merge_fragments(segment(image, args.model, progress=False)).compute()
        truth = np.where(classes.to_numpy() == SXTClass.DMV, instances.to_numpy(), 0)
        cells.append((found, truth, int((objects["class_name"] == "dmv").sum())))
    rows = []
    for distance, diameter, depth in itertools.product(distances, diameters, depths):
        total = {"matched": 0, "false_positive": 0, "split_extra": 0, "missed": 0, "merged": 0, "found": 0,
                 "true": 0}
        for found, truth, n_true in cells:
            labels = _instances(found, dmv_min_distance_nm=distance, dmv_min_diameter_nm=diameter,
                                dmv_min_depth_nm=depth).to_numpy()
            dmv_labels = np.unique(labels[(found.to_numpy() == SXTClass.DMV) & (labels > 0)])
            m = match_objects(labels, dmv_labels, truth)
            for key in m:
                total[key] += m[key]
            total["found"] += len(dmv_labels)
            total["true"] += n_true
        rows.append({"dmv_min_distance_nm": distance, "dmv_min_diameter_nm": diameter, "dmv_min_depth_nm": depth,
                     **total, "precision": round(total["matched"] / max(total["found"], 1), 4),
                     "recall": round(total["matched"] / max(total["true"], 1), 4)})
    from sxtseg.models import load_model

    record = {"benchmark": "bench_instance_defaults", "model": args.model,
              "model_sha256": load_model(args.model).metadata["sha256"], "seeds": seeds, "shape": list(shape),
              "scene": "lysosomes 6, multivesicular bodies 2", "rows": rows, "sxtseg": sxtseg.__version__}
    print(json.dumps(record))
    print("| distance nm | diameter nm | depth nm | found / true | precision | recall | split | merged |\n"
          "|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['dmv_min_distance_nm']:g} | {r['dmv_min_diameter_nm']:g} | "
              f"{'half voxel' if r['dmv_min_depth_nm'] is None else r['dmv_min_depth_nm']} | "
              f"{r['found']} / {r['true']} | {r['precision']} | {r['recall']} | {r['split_extra']} | "
              f"{r['merged']} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
