"""The class of each voxel from per-class scores: ``sxtseg.kernels.argmax_channels`` against NumPy and PyTorch.

Every segmentation ends with an argmax over the class axis of (C, Z, Y, X) blended logits:
``segment`` calls :func:`sxtseg.kernels.argmax_channels` on each finished slab of planes, plain
MONAI pipelines call ``torch.argmax(logits, dim=1)`` (what ``AsDiscrete(argmax=True)`` does),
NumPy users ``logits.argmax(axis=0)``.  In one process, interleaved round by round on the same
array, this times:

- ``numpy``: ``scores.argmax(axis=0).astype(np.uint8)``;
- ``torch``: ``torch.argmax(torch.from_numpy(scores), dim=0).to(torch.uint8)`` on the torch
  threads this process has;
- ``sxtseg_1``: ``argmax_channels(scores, threads=1)``;
- ``sxtseg``: ``argmax_channels(scores)`` (its default threads);
- with ``--baseline TREE``, ``baseline_1`` and ``baseline``: the same from another checkout's
  ``kernels`` package (a git worktree of an earlier commit), for a before/after in one run.

Inputs: ``logits``, the shipped model's blended logits of a held-out phantom (seed 7101; MONAI's
sliding window, Gaussian blending, as ``segment`` blends), and ``random``, standard normal scores
(no order at all, the worst case for a kernel that branches on the data).  Every method's result is
checked equal to NumPy's before timing.

Run::

    python benchmarks/bench_argmax.py                 # 9 classes (the default model's) x 128x384x384 (the demo cell)
    python benchmarks/bench_argmax.py --repeats 9
    git worktree add /tmp/before HEAD~1 && python benchmarks/bench_argmax.py --baseline /tmp/before
    python benchmarks/bench_argmax.py --quick         # 64x96x96 (CI)

It prints one JSON record (times in seconds, medians; ratios over NumPy and over PyTorch) and a
Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from bench_io import machine


def phantom_logits(shape: tuple[int, int, int], seed: int = 7101) -> np.ndarray:
    """The shipped model's blended logits (C, Z, Y, X), float32, of a phantom of ``shape`` at 30 nm."""
    from monai.inferers import sliding_window_inference

    from sxtseg import make_infected_cell
    from sxtseg.calibration import calibrate
    from sxtseg.models import load_model
    from sxtseg.models.checkpoint import normalization_range

    net = load_model("default").eval()
    meta = net.metadata
    volume = make_infected_cell(shape, seed=seed)[0]
    lac = calibrate(volume, "auto")[0].to_numpy().astype(np.float32)
    low, high = normalization_range(lac, meta["intensity"])
    x = torch.from_numpy((lac - low) / (high - low))[None, None]
    with torch.no_grad():
        logits = sliding_window_inference(x, tuple(meta["input"]["patch_size"]), 4, net, overlap=0.25,
                                          mode="gaussian", padding_mode="replicate")
    return np.ascontiguousarray(logits[0].float().numpy())


def baseline_argmax(tree: str):
    """``argmax_channels`` of another checkout's ``kernels`` package, imported as a package of its own."""
    spec = importlib.util.spec_from_file_location("baseline_kernels", os.path.join(tree, "kernels", "__init__.py"),
                                                  submodule_search_locations=[os.path.join(tree, "kernels")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_kernels"] = module
    spec.loader.exec_module(module)
    return module.argmax_channels


def methods(scores: np.ndarray, baseline=None) -> dict:
    """The argmax of ``scores`` by each method, as a function of no arguments returning uint8 classes."""
    from sxtseg.kernels import argmax_channels

    tensor = torch.from_numpy(scores)
    runs = {"numpy": lambda: scores.argmax(axis=0).astype(np.uint8),
            "torch": lambda: torch.argmax(tensor, dim=0).to(torch.uint8).numpy(),
            "sxtseg_1": lambda: argmax_channels(scores, threads=1),
            "sxtseg": lambda: argmax_channels(scores)}
    if baseline is not None:
        runs.update({"baseline_1": lambda: baseline(scores, threads=1), "baseline": lambda: baseline(scores)})
    return runs


def measure(scores: np.ndarray, repeats: int, baseline=None) -> dict:
    """Median seconds of each method over ``repeats`` interleaved rounds, and the ratios."""
    runs = methods(scores, baseline)
    reference = runs["numpy"]()
    for name, run in runs.items():  # also the first call of each: compiled or cached code loaded
        if not np.array_equal(run(), reference):
            raise AssertionError(f"{name}: classes differ from NumPy's argmax")
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(v) for name, v in seconds.items()}
    return {"shape": list(scores.shape), "seconds": {k: round(v, 5) for k, v in medians.items()},
            "time_ratios": {f"{a}/{b}": round(medians[a] / medians[b], 3)
                            for a in ("sxtseg_1", "sxtseg") for b in ("numpy", "torch", a.replace("sxtseg", "baseline"))
                            if b in medians}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="128,384,384", help="Z,Y,X of the phantom (default: the demo cell's)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median reported)")
    parser.add_argument("--quick", action="store_true", help="64x96x96, 2 rounds (CI)")
    parser.add_argument("--baseline", default=None, help="another checkout whose kernels run beside this one's")
    args = parser.parse_args(argv)
    shape = (64, 96, 96) if args.quick else tuple(int(n) for n in args.shape.split(","))
    repeats = 2 if args.quick else args.repeats
    baseline = None if args.baseline is None else baseline_argmax(args.baseline)
    logits = phantom_logits(shape)
    rng = np.random.default_rng(0)
    inputs = {"logits": logits, "random": rng.standard_normal(logits.shape, dtype=np.float32)}
    record = {"benchmark": "bench_argmax", "date": time.strftime("%Y-%m-%d"),
              "machine": {**machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
              "repeats": repeats, "baseline": args.baseline,
              "inputs": {name: measure(scores, repeats, baseline) for name, scores in inputs.items()}}
    print("| input | NumPy s | PyTorch s | sxtseg 1 thread s | sxtseg s | sxtseg / NumPy | sxtseg / PyTorch |",
          file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for name, entry in record["inputs"].items():
        s, r = entry["seconds"], entry["time_ratios"]
        print(f"| {name} | {s['numpy']:.4f} | {s['torch']:.4f} | {s['sxtseg_1']:.4f} | {s['sxtseg']:.4f} "
              f"| {r['sxtseg/numpy']:.3f} | {r['sxtseg/torch']:.3f} |", file=sys.stderr)
        if "baseline" in s:
            print(f"| {name}, baseline | | | {s['baseline_1']:.4f} | {s['baseline']:.4f} "
                  f"| sxtseg / baseline: 1 thread {r['sxtseg_1/baseline_1']:.3f}, default {r['sxtseg/baseline']:.3f} | |",
                  file=sys.stderr)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
