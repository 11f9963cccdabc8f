"""Train the model shipped as "default" (sxtseg/models/weights/default.pt) from phantoms, and test it.

Training data are phantom cells (:func:`sxtseg.make_infected_cell`) drawn with
seeds 100.. at voxel sizes of 25-40 nm, noise 0.02-0.06 and blur 0.8-1.3
voxels; validation uses seed 900; the held-out test phantoms use seeds
1000-1002 (never used in training) at 30 nm, the size `sxtseg demo` segments.

Run (about 25 minutes on 2 CPU cores for the U-Net)::

    python examples/train_default_model.py --out runs/default
    python examples/train_default_model.py --out runs/default --install   # copy best.pt into the package

It prints one JSON line: the Dice per class on each held-out phantom and the
inference seconds per volume.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from sxtseg import make_infected_cell
from sxtseg.infer import dice_per_class, predict_array
from sxtseg.models import load_model
from sxtseg.models.checkpoint import normalization_range
from sxtseg.train import TrainingConfig, fit

ARCHITECTURES = {
    # a MONAI U-Net of 1.2 M parameters (4.8 MB of weights): 3-D, 64^3 patches.  Batch norm, not
    # instance norm: instance norm rescales every patch on its own, so a window of pure ice (or of
    # nucleus interior) loses the absolute LAC that tells it from cytoplasm (measured: ice corners of
    # a 128x384x384 cell read as cytoplasm, background Dice 0.92, nucleus 0.74 with instance norm)
    "unet": dict(model="unet", model_config={"channels": (16, 32, 64, 128), "strides": (2, 2, 2),
                                             "num_res_units": 2, "normalization": "batch"},
                 spatial_dims=3, patch_size=(64, 64, 64), batch_size=2),
    # Pelt and Sethian's 2-D MSD-net applied slice by slice, two neighbouring slices on each side as channels
    "msdnet2d": dict(model="msdnet", model_config={"depth": 50, "normalization": "batch"},
                     spatial_dims=2, context_slices=2, patch_size=(128, 128), batch_size=8),
}


# SXT grey values are linear absorption coefficients (1/um): a fixed range maps ice (0.11) to about
# 0 and cytoplasm (0.22) to about 0.4 whatever the field of view; the volume's own percentiles
# shift with it (a crop without ice is normalised differently from the whole cell)
INTENSITY = {"lac": {"method": "fixed", "low": 0.1, "high": 0.4},
             "percentile": {"method": "percentile", "low": 1.0, "high": 99.0}}


def training_phantoms(count: int, shape=(96, 256, 256)):
    rng = np.random.default_rng(7)
    pairs = []
    for k in range(count):
        voxel = float(rng.choice([25.0, 30.0, 35.0, 40.0]))
        image, classes, _, _ = make_infected_cell(shape, voxel_size_nm=voxel, seed=100 + k,
                                                  noise=float(rng.uniform(0.02, 0.06)),
                                                  blur=float(rng.uniform(0.8, 1.3)))
        pairs.append((image.compute(), classes.compute()))
    return pairs


def evaluate(checkpoint: Path, seeds=(1000, 1001, 1002), shape=(128, 384, 384)) -> dict:
    """Dice per class on held-out phantoms, and seconds of inference per volume."""
    model = load_model(checkpoint)
    meta = model.metadata
    names = {code: name for name, code in meta["classes"].items()}
    results = {}
    for seed in seeds:
        image, classes, _, _ = make_infected_cell(shape, seed=seed)
        array = image.to_numpy().astype(np.float32)
        low, high = normalization_range(array[::4, ::4, ::4], meta["intensity"])
        started = time.perf_counter()
        probs = predict_array(model, (array - low) / (high - low), patch_size=meta["input"]["patch_size"],
                              spatial_dims=meta["architecture"]["spatial_dims"],
                              context=meta["input"]["context_slices"])
        seconds = time.perf_counter() - started
        dice = dice_per_class(probs.argmax(axis=0), classes.to_numpy(), len(names))
        results[str(seed)] = {"seconds": round(seconds, 2),
                              **{names[c]: round(float(d), 4) for c, d in enumerate(dice)}}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/default"))
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="unet")
    parser.add_argument("--phantoms", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--init", help="start from this checkpoint (fine-tuning; same architecture)")
    parser.add_argument("--intensity", choices=["lac", "percentile"], default="lac",
                        help="input normalisation: fixed LAC range (calibrated SXT; default) or the volume's "
                             "1st-99th percentiles")
    parser.add_argument("--install", action="store_true", help="copy best.pt to sxtseg/models/weights/default.pt")
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args(argv)

    if not args.evaluate_only:
        config = TrainingConfig(**ARCHITECTURES[args.architecture], epochs=args.epochs,
                                steps_per_epoch=args.steps, learning_rate=args.learning_rate, seed=0,
                                init_checkpoint=args.init, intensity=INTENSITY[args.intensity],
                                description=f"{args.phantoms} phantom cells (make_infected_cell seeds 100-"
                                            f"{99 + args.phantoms}, 25-40 nm voxels, noise 0.02-0.06); "
                                            f"examples/train_default_model.py --architecture {args.architecture}")
        val_image, val_classes, _, _ = make_infected_cell((64, 192, 192), seed=900)
        fit(training_phantoms(args.phantoms), args.out, config=config,
            validation=(val_image.compute(), val_classes.compute()), resume=(args.out / "last_state.pt").exists())
    report = {"architecture": args.architecture, "held_out": evaluate(args.out / "best.pt")}
    print(json.dumps(report))
    if args.install:
        target = Path(__file__).resolve().parents[1] / "sxtseg" / "models" / "weights" / "default.pt"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(args.out / "best.pt", target)
        print(f"installed {target}")


if __name__ == "__main__":
    main()
