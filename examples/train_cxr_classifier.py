"""Train a COVID-19 chest X-ray classifier (DenseNet-121) on a COVIDx-format folder, and evaluate it.

sxtseg ships no CXR weights: there is no licence-clean labelled COVID-19 chest
X-ray set to train them on.  This script trains your own from a COVIDx-format
folder (the label files of https://github.com/lindawangg/COVID-Net: one image
per line, ``patient_id filename label source``; labels ``normal``,
``pneumonia``, ``COVID-19``, or ``negative`` / ``positive``)::

    python examples/train_cxr_classifier.py data/train.txt data/train --out runs/cxr \\
        --val-labels data/test.txt --val-images data/test --size 480 --epochs 20

It prepares every image as COVID-Net does (top 8 % of the rows cropped, centred
square, resized to --size), draws the classes balanced, trains with MONAI
augmentation through :func:`sxtseg.train.fit_classifier`, and prints the
sensitivity and positive predictive value of every class on the validation set
(the numbers COVID-Net reports), with the confusion matrix.  The best checkpoint
(``OUT/best.pt``) is what ``sxtseg cxr IMAGES... --model OUT/best.pt -o OUTDIR``
and :func:`sxtseg.adapters.cxr.rank_images` take.

Without data, ``--make-demo-data DIR`` writes a small COVIDx-format folder of
generated cartoon images (:func:`sxtseg.adapters.cxr.make_demo_covidx`) and
trains on it: it shows the mechanics, not a model for real radiographs::

    python examples/train_cxr_classifier.py --make-demo-data demo/ --out runs/demo --tiny --size 64 --epochs 30

(about 20 s on 2 CPU cores).  ``--tiny`` makes a DenseNet-121 of 0.1 M
parameters instead of 7 M, for trying things out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sxtseg.adapters.cxr import CovidxDataset, evaluate, make_demo_covidx
from sxtseg.errors import SxtsegError
from sxtseg.train import ClassifierConfig, fit_classifier


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labels", nargs="?", type=Path, help="COVIDx label file of the training images")
    parser.add_argument("images", nargs="?", type=Path, help="folder of the training images")
    parser.add_argument("--out", type=Path, required=True, help="output folder (best.pt, last.pt, training_log.csv)")
    parser.add_argument("--val-labels", type=Path, help="COVIDx label file of held-out validation images")
    parser.add_argument("--val-images", type=Path, help="their folder (default: the training image folder)")
    parser.add_argument("--make-demo-data", type=Path, metavar="DIR",
                        help="write a generated COVIDx-format folder to DIR and train on it")
    parser.add_argument("--per-class", type=int, default=12, help="demo images per class (--make-demo-data)")
    parser.add_argument("--size", type=int, default=480, help="network input edge in pixels (480 or 224)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: one pass)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="AdamW learning rate (default 2e-4, COVID-Net's; 3e-3 with --tiny)")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--tiny", action="store_true", help="a 0.1 M-parameter DenseNet-121, to try things out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.make_demo_data is None and (args.labels is None or args.images is None):
        parser.error("give LABELS and IMAGES, or --make-demo-data DIR")
    return args


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def main(argv=None) -> int:
    args = parse_args(argv)
    tiny = args.tiny
    if args.make_demo_data is not None:
        args.labels = make_demo_covidx(args.make_demo_data, per_class=args.per_class, size=max(args.size, 64),
                                       seed=args.seed)
        args.images = args.make_demo_data / "images"
        if args.val_labels is None:  # held-out demo images, drawn with another seed
            held_out = args.make_demo_data / "validation"
            args.val_labels = make_demo_covidx(held_out, per_class=max(2, args.per_class // 3),
                                               size=max(args.size, 64), seed=args.seed + 1000)
            args.val_images = held_out / "images"
    train = CovidxDataset(args.labels, args.images, size=args.size, augment=not args.no_augment, seed=args.seed)
    validation = None
    if args.val_labels is not None:
        validation = CovidxDataset(args.val_labels, args.val_images or args.images, size=args.size,
                                   classes=train.classes)
    print(f"training on {len(train)} images {train.class_counts()}"
          + (f", validating on {len(validation)} {validation.class_counts()}" if validation else ""))
    config = ClassifierConfig(
        model_config={"init_features": 8, "growth_rate": 4} if tiny else {},
        input_size=args.size, batch_size=args.batch_size, epochs=args.epochs, steps_per_epoch=args.steps,
        learning_rate=args.learning_rate or (3e-3 if tiny else 2e-4), seed=args.seed, device=args.device,
        description=f"COVIDx-format labels {args.labels} (images {args.images})")
    result = fit_classifier(train, args.out, config=config, validation=validation, progress=True)
    print(f"best checkpoint: {result['best_checkpoint']} (score {result['best_score']:.3f})")
    if validation is not None:
        metrics = evaluate(result["best_checkpoint"], validation, device=args.device)
        print(f"{'class':<12}{'sensitivity':>12}{'PPV':>8}{'images':>8}")
        for name in metrics["classes"]:
            print(f"{name:<12}{metrics['sensitivity'][name]:>12.3f}{metrics['ppv'][name]:>8.3f}"
                  f"{metrics['support'][name]:>8d}")
        print("confusion matrix (rows: true class, columns: predicted):", metrics["confusion"])
        summary = {k: metrics[k] for k in ("classes", "sensitivity", "ppv", "accuracy", "confusion")}
        print(json.dumps(_nan_to_none(summary)))  # NaN (a class never predicted) as null: valid JSON
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SxtsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
