"""What the DMV check (sxtseg.dmv_check) costs beside the measure stage it runs in, on two cells.

For each cell (a 64x192x192 phantom with 12 lysosomes, seed 7417, the
robustness grid's tuning decoy cell; the demo's 128x384x384 cell, seed 4242),
``sxtseg.run`` segments it once with the check off; then, side by side in this
process on its calibrated volume and instance labels:

- ``dmv_check_changes`` (crops and the network on 8 mirror images of each),
  median of ``--repeats``, against the run's own measure stage (the check's
  ratio to it);
- the crops alone, from the volumes in memory and from the same volumes in
  dask chunks of 64x128x128 (each object's box read on its own), as a ratio.

Run: ``python benchmarks/bench_dmv_check.py`` (``--quick``: the small cell only, one repeat).
Prints one JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd

import sxtseg
from sxtseg import SXTClass, Volume
from sxtseg.dmv_check import dmv_check_changes, load_dmv_check, object_crops

CELLS = {"decoy cell 64x192x192": ((64, 192, 192), 7417, {"n_lysosomes": 12, "n_multivesicular_bodies": 4,
                                                           "n_vacuoles": 4}),
         "demo cell 128x384x384": ((128, 384, 384), 4242, {})}


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_cell(shape, seed: int, scene: dict, repeats: int) -> dict:
    image, _, _, _ = sxtseg.make_infected_cell(shape, seed=seed, **scene)
    volume = Volume(np.ascontiguousarray(image.to_numpy()), voxel_size=image.voxel_size)
    with tempfile.TemporaryDirectory() as tmp:
        report = next(iter(sxtseg.run(volume, Path(tmp) / "out", "default", progress=False,
                                      dmv_check=False)["samples"].values()))
        ids = sxtseg.open_volume(Path(tmp) / "out" / "volume.ome.zarr" / "labels" / "instances").to_numpy()
        table = pd.read_csv(Path(tmp) / "out" / "objects.csv")
    lac = sxtseg.calibrate(volume, "auto")[0].compute()
    instances = Volume(ids, voxel_size=volume.voxel_size)
    sha = load_dmv_check()[1]["segmentation_model_sha256"]
    check = _median_seconds(lambda: dmv_check_changes(lac, instances, table, calibrated=True, model_sha256=sha),
                            repeats)
    dmvs = table[table["class_id"] == SXTClass.DMV]
    lazy_lac = lac.with_data(da.from_array(lac.to_numpy(), chunks=(64, 128, 128)))
    lazy_ids = instances.with_data(da.from_array(ids, chunks=(64, 128, 128)))
    crops_memory = _median_seconds(lambda: object_crops(lac, instances, dmvs), repeats)
    crops_lazy = _median_seconds(lambda: object_crops(lazy_lac, lazy_ids, dmvs), repeats)
    measure_s = report["timings_s"]["measure"]
    return {"shape": list(shape), "seed": seed, "dmv_class_objects": int(len(dmvs)),
            "check_seconds": round(check, 4), "measure_stage_seconds_without_check": measure_s,
            "check_over_measure_stage": round(check / measure_s, 3),
            "segment_stage_seconds": report["timings_s"]["segment"],
            "check_ms_per_object": round(1000 * check / max(len(dmvs), 1), 2),
            "crops_seconds_in_memory": round(crops_memory, 4), "crops_seconds_dask_chunks": round(crops_lazy, 4),
            "crops_dask_over_memory": round(crops_lazy / crops_memory, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the small cell only, one repeat (CI smoke test)")
    args = parser.parse_args(argv)
    import torch

    cells = dict(list(CELLS.items())[:1]) if args.quick else CELLS
    repeats = 1 if args.quick else args.repeats
    results = {name: measure_cell(shape, seed, scene, repeats) for name, (shape, seed, scene) in cells.items()}
    record = {"benchmark": "bench_dmv_check", "repeats": repeats, "results": results,
              "dmv_check_sha256": load_dmv_check()[1]["sha256"],
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__}}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
