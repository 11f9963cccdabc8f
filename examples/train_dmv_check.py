"""Train the DMV check shipped as sxtseg/models/weights/checks/dmv_check.pt (:mod:`sxtseg.dmv_check`).

Data: phantom cells (:func:`sxtseg.make_infected_cell`), one per seed, each
drawn at a random voxel size of 25-40 nm with the default model's training
randomisation (``train_default_model.random_scene`` and ``sparse_imaging``:
PSF, missing wedge, noise, correlated noise, rings), four in five of them
crowded with decoys (8-24 lysosomes, 1-4 multivesicular bodies, 0-3 vacuoles).
Each cell goes through :func:`sxtseg.run` with its defaults and the shipped
``"default"`` model (the DMV check itself off), and every DMV-class object it
finds becomes one example: the crop of :func:`sxtseg.dmv_check.object_crops`,
labelled a DMV when most of its voxels are truly DMV.  Crops are cached in
``OUT/crops`` (one file per seed), so a second run only trains.

Training: the MONAI ``Classifier`` of :data:`sxtseg.dmv_check.NETWORK`, binary
cross-entropy, AdamW with a one-cycle learning rate, batches of 32 crops
mirrored and transposed in y/x at random.
Validation cells (other seeds) choose the threshold: the highest at which
the check keeps at least ``--keep`` (0.98) of the true DMVs found.

Seeds: training 8200-8399, validation 8400-8439 (disjoint from the default
model's training cells 100-155, its validation 900 and tests 1000-1002, the
robustness grid's tuning 7400.. and held-out 6000-6020 cells, and the other
benchmarks' seeds).

Run (about 25 minutes of phantoms and segmentation, 10 of training, on 2 CPU cores)::

    python examples/train_dmv_check.py --out runs/dmv_check
    python examples/train_dmv_check.py --out runs/dmv_check --install   # copy it into the package
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import sxtseg
from sxtseg import SXTClass, Volume
from sxtseg.dmv_check import DMV_CHECK_WEIGHTS, NETWORK, check_network, dmv_probabilities, object_crops
from sxtseg.models import load_model
from sxtseg.phantom import make_infected_cell

sys.path.insert(0, str(Path(__file__).parent))
import train_default_model  # noqa: E402  (random_scene, sparse_imaging: the default model's randomisation)

LAC_RANGE = (0.1, 0.4)  # 1/um mapped to 0-1 at the input, as the segmentation models map it
VOXEL_RANGE_NM = (25.0, 40.0)
BASE_SHAPE = (64, 192, 192)  # voxels at 30 nm, scaled to keep the physical size at other voxel sizes


def cell(seed: int):
    """One training cell: its image (LAC), voxel size (nm), classes, instances and scene, from ``seed``."""
    rng = np.random.default_rng(seed)
    voxel = float(rng.uniform(*VOXEL_RANGE_NM))
    shape = tuple(max(32, int(round(n * 30.0 / voxel))) for n in BASE_SHAPE)
    scene = train_default_model.random_scene(rng)
    if rng.random() < 0.8:
        scene.update(n_lysosomes=int(rng.integers(8, 25)), n_multivesicular_bodies=int(rng.integers(1, 5)),
                     n_vacuoles=int(rng.integers(0, 4)))
    imaging = train_default_model.sparse_imaging(rng, (voxel,) * 3)
    image, classes, instances, _ = make_infected_cell(shape, voxel_size_nm=voxel, seed=seed, imaging=imaging,
                                                      **scene)
    return image, classes.to_numpy(), instances.to_numpy(), {"voxel_nm": voxel, **scene, "imaging": repr(imaging)}


def examples(seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Crops and truth of every DMV-class object that ``sxtseg.run`` finds in cell ``seed``."""
    image, truth, true_ids, scene = cell(seed)
    volume = Volume(np.ascontiguousarray(image.to_numpy()), voxel_size=image.voxel_size,
                    metadata={"source": {"path": f"seed {seed}"}})
    with tempfile.TemporaryDirectory() as tmp:
        sxtseg.run(volume, Path(tmp) / "out", "default", dmv_check=False, progress=False)
        ids = sxtseg.open_volume(Path(tmp) / "out" / "volume.ome.zarr" / "labels" / "instances").to_numpy()
        table = pd.read_csv(Path(tmp) / "out" / "objects.csv")
    lac, _ = sxtseg.calibrate(volume, "auto")
    dmvs = table[table["class_id"] == SXTClass.DMV]
    crops = object_crops(lac, Volume(ids, voxel_size=volume.voxel_size), dmvs)
    rows = []
    for label in dmvs["label"]:
        inside = truth[ids == label]
        rows.append({"seed": seed, "label": int(label), "voxels": int(inside.size),
                     "true": bool(np.mean(inside == SXTClass.DMV) > 0.5),
                     "truth_class": int(np.bincount(inside).argmax()), "voxel_nm": scene["voxel_nm"],
                     "lysosomes": scene.get("n_lysosomes", 0), "imaging": scene["imaging"]})
    return crops, pd.DataFrame(rows, columns=["seed", "label", "voxels", "true", "truth_class", "voxel_nm",
                                              "lysosomes", "imaging"])


def dataset(folder: Path, seeds) -> tuple[np.ndarray, pd.DataFrame]:
    """The examples of ``seeds``, made once and cached in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    crops, tables = [], []
    for seed in seeds:
        path = folder / f"{seed}.npz"
        if not path.exists():
            started = time.perf_counter()
            x, rows = examples(seed)
            np.savez_compressed(path, crops=x.astype(np.float16), rows=rows.to_json(orient="records"))
            print(f"cell {seed}: {len(rows)} DMV-class objects, {int(rows['true'].sum())} DMVs "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
        with np.load(path) as data:
            crops.append(data["crops"].astype(np.float32))
            tables.append(pd.read_json(io.StringIO(str(data["rows"])), orient="records"))
    return np.concatenate(crops), pd.concat(tables, ignore_index=True)


def augment(batch):
    """Random mirror images and a y/x transpose of a batch of crops.

    (Shifts of up to 2 points as well were tried: training loss 0.42 against 0.27 after 30 epochs,
    and fewer look-alikes removed; crops at inference are always centred on the object.)
    """
    import torch

    for axis in (2, 3, 4):
        if torch.rand(1) < 0.5:
            batch = batch.flip(axis)
    if torch.rand(1) < 0.5:
        batch = batch.transpose(3, 4)
    return batch


def train(crops: np.ndarray, truth: np.ndarray, epochs: int, seed: int = 0, batch: int = 32):
    """The check's network trained on ``crops`` (n, 2, 32, 32, 32) with labels ``truth`` (n,)."""
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(crops).clone()
    x[:, 0] = (x[:, 0] - LAC_RANGE[0]) / (LAC_RANGE[1] - LAC_RANGE[0])
    y = torch.from_numpy(truth.astype(np.float32))
    network = check_network(NETWORK, monai=True)
    steps = epochs * (len(x) // batch)
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    loss_of = torch.nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x) - batch + 1, batch):
            take = order[i:i + batch]
            loss = loss_of(network(augment(x[take]))[:, 0], y[take])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(take)
        print(f"epoch {epoch}: loss {total / (len(x) // batch * batch):.4f}", flush=True)
    return network.eval()


def choose_threshold(p: np.ndarray, truth: np.ndarray, keep: float) -> float:
    """The highest threshold (in steps of 0.01) that keeps at least ``keep`` of the true DMVs."""
    candidates = [t for t in np.round(np.arange(0.01, 1.0, 0.01), 2) if np.mean(p[truth] >= t) >= keep]
    return float(max(candidates)) if candidates else 0.01


def report(p: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    """Object precision before and after the check, and the fraction of true DMVs it keeps."""
    kept = p >= threshold
    return {"objects": int(len(truth)), "dmvs": int(truth.sum()),
            "precision_before": round(float(truth.mean()), 4),
            "precision_after": round(float(truth[kept].mean()), 4) if kept.any() else None,
            "dmvs_kept": round(float(kept[truth].mean()), 4),
            "look_alikes_removed": round(float((~kept[~truth]).mean()), 4) if (~truth).any() else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/dmv_check"))
    parser.add_argument("--train-seeds", type=int, nargs=2, default=(8200, 8400), metavar=("FIRST", "END"))
    parser.add_argument("--validation-seeds", type=int, nargs=2, default=(8400, 8440), metavar=("FIRST", "END"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--keep", type=float, default=0.98,
                        help="fraction of the validation cells' true DMVs the threshold keeps (default 0.98)")
    parser.add_argument("--install", action="store_true", help=f"copy the checkpoint to {DMV_CHECK_WEIGHTS}")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    x_train, rows_train = dataset(args.out / "crops", range(*args.train_seeds))
    x_val, rows_val = dataset(args.out / "crops", range(*args.validation_seeds))
    started = time.perf_counter()
    network = train(x_train, rows_train["true"].to_numpy(bool), args.epochs)
    seconds = time.perf_counter() - started
    truth = rows_val["true"].to_numpy(bool)
    p = dmv_probabilities(network, x_val, LAC_RANGE)
    threshold = choose_threshold(p, truth, args.keep)
    validation = report(p, truth, threshold)
    checkpoint = {
        "state_dict": network.state_dict(), "network": NETWORK, "threshold": threshold,
        "lac_range_1_per_um": list(LAC_RANGE), "voxel_range_nm": list(VOXEL_RANGE_NM),
        "segmentation_model_sha256": load_model("default").metadata["sha256"],  # as segment() records it
        "training": {"train_seeds": list(args.train_seeds), "validation_seeds": list(args.validation_seeds),
                     "epochs": args.epochs, "train_objects": int(len(rows_train)),
                     "train_dmvs": int(rows_train["true"].sum()), "keep": args.keep,
                     "validation": validation, "seconds": round(seconds, 1)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out / "dmv_check.pt")
    rows_val.assign(p_dmv=p).to_csv(args.out / "validation.csv", index=False)
    print(json.dumps({"threshold": threshold, **validation}))
    if args.install:
        DMV_CHECK_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "dmv_check.pt", DMV_CHECK_WEIGHTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
