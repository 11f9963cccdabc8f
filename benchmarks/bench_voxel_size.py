"""The shipped models at the voxel sizes users bring: time, peak memory and Dice of ``sxtseg.segment``.

The default model segments every volume at 30 nm (``segment_voxel_size_nm``),
so a 40 nm volume is upsampled 4/3 per axis, segmented, and its probabilities
resampled back; the plain model segments 30-40 nm volumes as they are. This
benchmark runs both on the same phantom cell drawn at each voxel size (the
same physical field of view, plain imaging, a seed outside training, tuning
and the held-out grids), each configuration in its own process so that its
peak resident memory is its own, and reports seconds, peak memory (GiB) and
Dice against the phantom's truth. ``--old-blocks`` adds the default model
with the block rule before 2026-12-07 (blocks of 128x512x512 of the volume's
own voxels, whatever the resampling), for the peak-memory comparison.
``--mirror off`` runs every model without test-time mirroring
(``segment(..., mirror=False)``, one pass of the network per window instead
of eight); ``--mirror both`` runs each with and without, for the cost of the
default (``on``).

Run::

    python benchmarks/bench_voxel_size.py --old-blocks          # 128x512x512 at 40 nm, the same field at 30 nm
    python benchmarks/bench_voxel_size.py --mirror both         # mirroring's cost: each model with and without
    python benchmarks/bench_voxel_size.py --quick               # 32x96x96 at 40 nm, for CI

It prints one JSON record (stdout) and a markdown table (stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SEED = 7460  # outside training (100-163, 900, 1000-1002), tuning (7000-7453) and held-out (6000-6020) seeds

CHILD = r"""
import json, resource, sys, time
import numpy as np
import sxtseg
from sxtseg import Volume
from sxtseg.infer import dice_per_class
image_path, truth_path, voxel, model, block, mirror = sys.argv[1:7]
image = Volume(np.load(image_path), voxel_size=float(voxel))
truth = np.load(truth_path)
block_shape = None if block == "auto" else tuple(int(n) for n in block.split(","))
started = time.perf_counter()
labels = sxtseg.segment(image, model, block_shape=block_shape, mirror=mirror == "on", progress=False)
classes = labels.to_numpy()
seconds = time.perf_counter() - started
dice = dice_per_class(classes, truth, 7)
print(json.dumps({"seconds": seconds, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "block_shape": labels.metadata["segmentation"]["parameters"]["block_shape"],
                  "zoom": labels.metadata["segmentation"]["parameters"]["zoom"],
                  "dice_dmv": float(dice[6]), "dice_nucleus": float(dice[2])}))
"""


def draw(shape, reference_nm: float, voxel_nm: float, folder: Path) -> tuple[Path, Path, list[int]]:
    """The benchmark cell at ``voxel_nm``: the field of view of ``shape`` voxels of ``reference_nm``."""
    from sxtseg import make_infected_cell

    shape = tuple(max(32, int(round(n * reference_nm / voxel_nm))) for n in shape)
    image, classes, _, _ = make_infected_cell(shape, voxel_size_nm=voxel_nm, seed=SEED)
    image_path, truth_path = folder / f"image_{voxel_nm:g}.npy", folder / f"truth_{voxel_nm:g}.npy"
    np.save(image_path, image.to_numpy().astype(np.float32))
    np.save(truth_path, classes.to_numpy())
    return image_path, truth_path, list(shape)


def measure(image_path: Path, truth_path: Path, voxel_nm: float, model: str, block: str, mirror: bool = True) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(image_path), str(truth_path), str(voxel_nm), model, block,
                           "on" if mirror else "off"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{model} at {voxel_nm} nm failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(rows) -> str:
    lines = ["| voxel nm | shape | model | mirror | blocks | zoom | seconds | peak GiB | DMV Dice | nucleus Dice |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        zoom = "-" if r["zoom"] is None else "x".join(f"{z:.3g}" for z in r["zoom"])
        lines.append(f"| {r['voxel_nm']:g} | {'x'.join(map(str, r['shape']))} | {r['model']} | "
                     f"{'on' if r['mirror'] else 'off'} | "
                     f"{'x'.join(map(str, r['block_shape']))} ({r['blocks']}) | {zoom} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_gib']:.2f} | {r['dice_dmv']:.3f} | {r['dice_nucleus']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32x96x96 at the coarsest voxel size (CI smoke test)")
    parser.add_argument("--shape", default="128,512,512",
                        help="Z,Y,X at the coarsest voxel size (default 128,512,512); the others draw the same field")
    parser.add_argument("--voxels", type=float, nargs="+", default=[30.0, 40.0], help="voxel sizes in nm")
    parser.add_argument("--models", nargs="+", default=["default", "plain"])
    parser.add_argument("--old-blocks", action="store_true",
                        help="also the default model with blocks of 128x512x512 of the volume's voxels")
    parser.add_argument("--mirror", choices=("on", "off", "both"), default="on",
                        help="test-time mirroring of segment(): on (default, as segment()), off, or both")
    args = parser.parse_args(argv)
    shape = (32, 96, 96) if args.quick else tuple(int(n) for n in args.shape.split(","))
    coarsest = max(args.voxels)
    mirrors = {"on": [True], "off": [False], "both": [True, False]}[args.mirror]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-voxel-size-") as tmp:
        for voxel in args.voxels:
            image_path, truth_path, drawn = draw(shape, coarsest, voxel, Path(tmp))
            runs = [(model, "auto", mirror) for mirror in mirrors for model in args.models]
            if args.old_blocks and "default" in args.models:
                runs.append(("default", "128,512,512", mirrors[0]))
            for model, block, mirror in runs:
                found = measure(image_path, truth_path, voxel, model, block, mirror)
                blocks = int(np.prod([-(-n // b) for n, b in zip(drawn, found["block_shape"])]))
                rows.append({"voxel_nm": voxel, "shape": drawn, "model": model, "mirror": mirror,
                             "block_rule": "given 128x512x512" if block != "auto" else "default", "blocks": blocks,
                             **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in found.items()}})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    import torch

    import sxtseg

    record = {"benchmark": "bench_voxel_size", "seed": SEED, "shape_at_coarsest": list(shape), "voxels_nm": args.voxels,
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__}, "rows": rows}
    print(json.dumps(record))
    print(markdown(rows), file=sys.stderr)
    return record


if __name__ == "__main__":
    main()
