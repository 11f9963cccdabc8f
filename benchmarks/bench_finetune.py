"""Fine-tuning the default model on 5 annotated slices of a volume from an imaging model it never saw.

A user whose microscope differs from everything the default model was trained on annotates a few
slices of one tomogram and fine-tunes (``TrainingConfig(init_checkpoint="default")``, which keeps
the checkpoint's architecture, classes and normalisation). This benchmark measures what that buys:

- the imaging model is outside the training ranges of ``ImagingModel.random`` (a +-45 degree
  missing wedge, rings of 0.015 1/um, a z PSF of 4 voxels, photon noise 0.1);
- the annotated volume is a phantom of seed 6100, 5 evenly spaced z slices labelled (255 elsewhere);
- the test volume is another phantom (seed 6101) under the same imaging model, never annotated;
- Dice per class on the test volume with the default model, then with the fine-tuned one.

Run::

    python benchmarks/bench_finetune.py             # about 3 minutes on 2 cores
    python benchmarks/bench_finetune.py --quick     # a smaller volume and fewer steps (CI smoke test)
    python benchmarks/bench_finetune.py --painted   # the same through the napari widget's painted corrections

It prints one JSON record.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time

import numpy as np

import sxtseg
from sxtseg import Volume, make_infected_cell, segment
from sxtseg.infer import dice_per_class
from sxtseg.phantom import ImagingModel
from sxtseg.train import TrainingConfig, fit

UNSEEN = ImagingModel(psf_sigma_xy_nm=36.0, psf_sigma_z_nm=120.0, tilt_range_deg=(-45.0, 45.0),
                      photon_noise=0.10, ring_amplitude=0.015)


def _cell(seed: int, shape):
    image, classes, _, _ = make_infected_cell(shape, seed=seed, imaging=UNSEEN)
    return Volume(image.to_numpy(), voxel_size=image.voxel_size), classes.to_numpy()


def _dice(model, image, truth) -> dict:
    found = segment(image, model, progress=False).to_numpy()
    dice = dice_per_class(found, truth, int(max(found.max(), truth.max())) + 1)
    names = {int(c): c.label for c in sxtseg.SXTClass}
    return {names[c]: round(float(d), 4) for c, d in enumerate(dice) if not np.isnan(d)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--slices", type=int, default=5, help="annotated z slices (default 5)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--painted", action="store_true",
                        help="annotate as a user of the napari 'Correct and fine-tune' widget does: slices painted "
                             "with class code + 1 in a corrections layer, trained through the widget's action")
    args = parser.parse_args(argv)
    shape = (48, 128, 128) if args.quick else (64, 192, 192)
    epochs, steps = (1, 5) if args.quick else (args.epochs, args.steps)

    train_image, train_truth = _cell(6100, shape)
    test_image, test_truth = _cell(6101, shape)
    labels = np.full(train_truth.shape, 255, np.uint8)
    annotated = np.linspace(4, shape[0] - 5, args.slices).round().astype(int)
    labels[annotated] = train_truth[annotated]
    before = _dice(args.model, test_image, test_truth)
    config = TrainingConfig(init_checkpoint=args.model, epochs=epochs, steps_per_epoch=steps, batch_size=2,
                            learning_rate=5e-4, seed=0,
                            description=f"fine-tuned on {args.slices} slices of a phantom (bench_finetune)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        if args.painted:  # what the napari widget runs: finetune_from_painting on a corrections layer
            from sxtseg.napari._actions import finetune_from_painting

            painted = np.zeros(train_truth.shape, np.uint8)
            painted[annotated] = train_truth[annotated] + 1  # 0 = unpainted; class code + 1 elsewhere
            result = finetune_from_painting(train_image.to_numpy(), {"scale": train_image.voxel_size,
                                                                     "name": "phantom 6100"},
                                            painted, model=args.model, out_dir=out, epochs=epochs,
                                            steps_per_epoch=steps, learning_rate=config.learning_rate)
        else:
            result = fit([(train_image, Volume(labels, voxel_size=train_image.voxel_size))], out, config=config,
                         progress=False)
        seconds = time.perf_counter() - started
        after = _dice(result["last_checkpoint"], test_image, test_truth)
    import torch

    record = {"benchmark": "bench_finetune", "path": "napari widget action" if args.painted else "sxtseg.train.fit",
              "model": args.model, "imaging_model": UNSEEN.to_dict(),
              "shape": list(shape), "annotated_slices": annotated.tolist(),
              "annotated_fraction": round(float((labels != 255).mean()), 4),
              "epochs": epochs, "steps_per_epoch": steps, "fine_tune_seconds": round(seconds, 1),
              "dice_before": before, "dice_after": after,
              "dmv_dice_gain": round(after.get("dmv", 0) - before.get("dmv", 0), 4),
              "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()},
              "versions": {"sxtseg": sxtseg.__version__, "torch": torch.__version__}}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
