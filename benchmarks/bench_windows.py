"""Sliding-window size and overlap for CPU inference: time, agreement with the reference, Dice (issue 16, target 3).

The shipped model is a fully convolutional U-Net trained on 64^3 patches;
MONAI's ``sliding_window_inference`` with those patches, overlap 0.25
(Gaussian blending) and 4 windows per forward pass (``segment()``'s
settings) is the reference. Larger windows with less overlap run the same
network over fewer voxels; the batch size changes only the speed. For each
window, overlap and batch size this measures, in one process, side by side
on the same normalised volume:

- seconds (median of ``--repeats``), and the ratio to the reference;
- voxel agreement of the argmax with the reference's;
- Dice per class against the phantom's truth, reference and variant.

Phantoms: ``--seeds`` (default 7101 7102, never used to train the shipped
model or to tune anything) and the demo cell (seed 4242, 128x384x384), which
is reported, not chosen on.

Usage::

    python benchmarks/bench_windows.py --no-demo --repeats 2    # the record: ~6 min on 2 cores
    python benchmarks/bench_windows.py --quick                  # one small phantom, two variants (a test)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def _dice(found: np.ndarray, truth: np.ndarray, classes: dict) -> dict:
    """Dice by class name (classes absent from both left out), from :func:`sxtseg.infer.dice_per_class`."""
    from sxtseg.infer import dice_per_class

    dice = dice_per_class(found, truth, max(classes.values()) + 1, ignore_label=None)
    return {name: round(float(dice[code]), 4) for name, code in classes.items() if not np.isnan(dice[code])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7101, 7102])
    parser.add_argument("--shape", default="96,256,256", help="Z,Y,X of the seeded phantoms")
    parser.add_argument("--no-demo", action="store_true", help="leave out the demo cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    import torch
    from monai.inferers import sliding_window_inference

    import sxtseg
    from sxtseg import make_infected_cell
    from sxtseg.calibration import calibrate
    from sxtseg.models import load_model
    from sxtseg.models.checkpoint import normalization_range

    net = load_model("default", monai=True).eval()  # plain MONAI: its own network
    meta = net.metadata
    patch = tuple(meta["input"]["patch_size"])
    classes = {str(name): int(code) for name, code in meta["classes"].items()}
    # (window, overlap, windows per forward pass); the first is the reference: segment()'s settings
    variants = [(patch, 0.25, 4), (patch, 0.25, 1), (patch, 0.25, 2), (patch, 0.25, 8), ((96, 96, 96), 0.25, 4),
                ((96, 96, 96), 0.25, 1), ((96, 96, 96), 0.125, 4), ((128, 128, 128), 0.125, 4)]
    cells = [(seed, tuple(int(v) for v in args.shape.split(","))) for seed in args.seeds]
    if not args.no_demo:
        cells.append((4242, (128, 384, 384)))
    repeats = args.repeats
    if args.quick:
        variants, cells, repeats = [variants[0], variants[4]], [(args.seeds[0], (32, 96, 96))], 1

    record = {"benchmark": "bench_windows", "model": "default", "model_patch": list(patch),
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__}, "cells": []}
    for seed, shape in cells:
        image, truth, _, _ = make_infected_cell(shape, seed=seed)
        lac = calibrate(image)[0].to_numpy().astype(np.float32)  # what segment() feeds the network
        step = max(1, int(round((lac.size / 4e6) ** (1 / 3))))
        low, high = normalization_range(lac[::step, ::step, ::step], meta["intensity"])
        x = torch.from_numpy((lac - low) / (high - low))[None, None]
        truth = truth.to_numpy()
        entry = {"seed": seed, "shape": list(shape), "variants": []}
        reference = None
        for window, overlap, batch in variants:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                with torch.no_grad():
                    logits = sliding_window_inference(x, window, batch, net, overlap=overlap, mode="gaussian",
                                                      padding_mode="replicate")
                found = logits.argmax(1)[0].numpy().astype(np.uint8)
                times.append(time.perf_counter() - started)
                del logits
            row = {"window": list(window), "overlap": overlap, "batch": batch,
                   "median_seconds": round(statistics.median(times), 3), "dice": _dice(found, truth, classes)}
            if reference is None:
                reference = (found, row)
            else:
                row["agreement_with_reference"] = round(float((found == reference[0]).mean()), 6)
                row["time_ratio_over_reference"] = round(row["median_seconds"] / reference[1]["median_seconds"], 3)
                row["dice_change"] = {k: round(v - reference[1]["dice"].get(k, 0.0), 4) for k, v in row["dice"].items()}
            entry["variants"].append(row)
            print(f"seed {seed} {window} overlap {overlap} batch {batch}: {row}", file=sys.stderr)
        record["cells"].append(entry)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
