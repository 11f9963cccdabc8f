"""CPU inference precision: segment() in float32 and in bfloat16 against plain MONAI (issue 16, target 3).

On a CPU that computes bfloat16 in hardware (AVX512_BF16 or AMX),
``segment(precision="auto")`` runs the network in bfloat16.  For each
phantom this measures, in one process, the cases interleaved round by round
on the same volume:

- ``monai``: the peer, plain MONAI ``sliding_window_inference`` (64^3
  windows, overlap 0.25, Gaussian blending, batch 4) with the shipped network
  as loaded (eager, float32) on the whole calibrated, normalised volume in
  memory, then the argmax;
- ``float32``: ``sxtseg.segment(volume, precision="float32", mirror=False)``;
- ``auto``: ``sxtseg.segment(volume, mirror=False)`` (bfloat16 where the CPU
  has it); every ``segment`` case runs without test-time mirroring (one pass
  per window, as the peer; mirroring, the default, is 8 passes);
- ``auto_given_calibration``: the same with the calibration record given
  (``segment(volume, calibration=record)``, the record made once before the
  timer, as for ``monai``): what ``sxtseg run`` calls, its calibration being
  a stage of its own.

Reported: median seconds of ``--repeats`` and the throughput ratio to
``monai`` (the issue's target: at least 2x); voxel agreement of every case
with ``float32`` (target: at least 99.5%) and with ``monai``; Dice per
class against the phantom's truth (target: no loss on the demo cell).
``float32`` and ``auto`` times include calibration and normalisation, which
``monai`` is spared (done once before its timer); ``auto_given_calibration``
includes the normalisation only.

Phantoms: seeds 7101 and 7102 (96x256x256; never used to train the shipped
model or to tune anything), a 256^3 cell (seed 2024, as in
``bench_pipeline.py``) and the demo cell (seed 4242, 128x384x384).

Usage::

    python benchmarks/bench_precision.py --repeats 3 > docs/benchmarks/bench_precision.json
    python benchmarks/bench_precision.py --quick      # one small phantom, one repeat (a test)
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
from bench_windows import _dice  # Dice by class name, as the window study reports it


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one 48x96x96 phantom, one repeat")
    parser.add_argument("--phantoms", default="7101,7102,256^3,demo",
                        help="comma-separated names of the phantoms to run (default: all four)")
    args = parser.parse_args(argv)

    import torch
    from monai.inferers import sliding_window_inference

    import sxtseg
    from sxtseg import make_infected_cell
    from sxtseg.calibration import calibrate
    from sxtseg.demo import DEMO_SEED
    from sxtseg.infer import cpu_has_native_bfloat16, resolve_precision
    from sxtseg.models import load_model
    from sxtseg.models.checkpoint import normalization_range

    net = load_model("default").eval()
    peer = load_model("default", monai=True).eval()  # the peer runs MONAI's own network, the same weights
    meta = net.metadata
    classes = {name: int(code) for name, code in meta["classes"].items()}
    patch = tuple(meta["input"]["patch_size"])
    phantoms = [("7101", (96, 256, 256), 7101), ("7102", (96, 256, 256), 7102), ("256^3", (256, 256, 256), 2024),
                ("demo", (128, 384, 384), DEMO_SEED)]
    wanted = args.phantoms.split(",")
    unknown = set(wanted) - {name for name, _, _ in phantoms}
    if unknown:
        parser.error(f"unknown phantoms {sorted(unknown)}; choose from 7101, 7102, 256^3, demo")
    phantoms = [p for p in phantoms if p[0] in wanted]
    if args.quick:
        phantoms, args.repeats = [("quick", (48, 96, 96), 7101)], 1
    record = {"benchmark": "bench_precision", "date": time.strftime("%Y-%m-%d"),
              "machine": {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "torch": torch.__version__,
                          "torch_threads": torch.get_num_threads(),
                          "native_bfloat16": cpu_has_native_bfloat16(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability()},
              "auto_resolves_to": resolve_precision("auto", torch.device("cpu")), "repeats": args.repeats,
              "phantoms": {}}

    def monai(volume) -> np.ndarray:
        lac = calibrate(volume, "auto")[0].to_numpy().astype(np.float32)
        step = max(1, int(round((lac.size / 4e6) ** (1 / 3))))
        low, high = normalization_range(lac[::step, ::step, ::step], meta["intensity"])
        x = torch.from_numpy((lac - low) / (high - low))[None, None]
        started = time.perf_counter()
        with torch.no_grad():
            logits = sliding_window_inference(x, patch, 4, peer, overlap=0.25, mode="gaussian",
                                              padding_mode="replicate")
        labels = logits.argmax(1)[0].numpy().astype(np.uint8)
        return labels, time.perf_counter() - started

    def seg(volume, precision, calibration="auto") -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        labels = sxtseg.segment(volume, net, precision=precision, calibration=calibration, mirror=False,
                                progress=False).to_numpy()  # one pass per window, as plain MONAI
        return labels, time.perf_counter() - started

    given = {}  # "record": the calibration of the phantom being measured, made before the timer (as monai's)
    cases = {"monai": monai, "float32": lambda v: seg(v, "float32"), "auto": lambda v: seg(v, "auto"),
             "auto_given_calibration": lambda v: seg(v, "auto", given["record"])}
    for name, shape, seed in phantoms:
        image, truth, _, _ = make_infected_cell(shape, seed=seed)
        given["record"] = calibrate(image, "auto")[1]
        truth = truth.to_numpy() if hasattr(truth, "to_numpy") else np.asarray(truth)
        seg(image, "float32")  # warm-up: model caches, first calls
        seconds = {case: [] for case in cases}
        labels = {}
        for _ in range(args.repeats):
            for case, function in cases.items():
                labels[case], elapsed = function(image)
                seconds[case].append(elapsed)
            print(name, {case: round(v[-1], 2) for case, v in seconds.items()}, file=sys.stderr, flush=True)
        median = {case: statistics.median(v) for case, v in seconds.items()}
        dice = {case: _dice(found, truth, classes) for case, found in labels.items()}
        record["phantoms"][name] = {
            "shape": list(shape), "seed": seed, "seconds": {c: [round(s, 3) for s in v] for c, v in seconds.items()},
            "median_s": {c: round(v, 3) for c, v in median.items()},
            "throughput_over_monai": {c: round(median["monai"] / median[c], 3) for c in cases if c != "monai"},
            "auto_over_float32_speed": round(median["float32"] / median["auto"], 3),
            "agreement_with_float32": {c: float((labels[c] == labels["float32"]).mean()) for c in cases},
            "agreement_with_monai": {c: float((labels[c] == labels["monai"]).mean()) for c in cases},
            "dice": dice,
            "worst_dice_change_auto_vs_float32": round(min(dice["auto"][k] - dice["float32"][k]
                                                           for k in dice["float32"]), 4),
        }
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
