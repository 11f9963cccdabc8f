"""Training segmentation networks from few, even sparse, annotations.

:func:`fit` trains a network made by :func:`sxtseg.models.build` on one or
more (image, labels) Volume pairs:

- patches are read from the (dask) volumes, never the whole volumes; their
  centres are drawn class by class (each class present equally often, so a
  rare class such as DMVs is seen in every batch), from per-block class
  counts made in one pass over the labels;
- label ``ignore_label`` (255) marks voxels nobody annotated: patches are
  centred on annotated voxels only and the loss leaves the others out, so
  five annotated slices of a 500-slice tomogram are enough to train on;
- MONAI augmentations (flips, in-plane 90-degree rotations, intensity scale
  and shift, Gaussian noise), Dice + cross-entropy loss, AdamW with a cosine
  schedule, validation Dice per class on a held-out volume after each
  epoch, the best and the last checkpoint (:func:`sxtseg.models.save_checkpoint`),
  resuming, AMP on CUDA, a tqdm bar and a CSV log of the epochs.

Every epoch reseeds its random generators from ``(seed, epoch)``, so a run
resumed from its last checkpoint continues as the uninterrupted run would.

:func:`fit_classifier` trains whole-image classifiers (a DenseNet-121 on chest
X-rays, :mod:`sxtseg.adapters.cxr`) on a torch Dataset, class-balanced
(:func:`balanced_sampler`), scored by per-class sensitivity and positive
predictive value (:func:`classification_metrics`).

Examples
--------
>>> import tempfile
>>> from sxtseg import make_infected_cell
>>> from sxtseg.train import TrainingConfig, fit
>>> image, classes, _, _ = make_infected_cell((32, 48, 48), seed=1, n_dmv=4)
>>> config = TrainingConfig(model="unet", model_config={"channels": (4, 8), "strides": (2,)},
...                         patch_size=(16, 32, 32), epochs=1, steps_per_epoch=2, batch_size=1)
>>> result = fit([(image, classes)], tempfile.mkdtemp(), config=config, progress=False)
>>> sorted(result)
['best_checkpoint', 'best_score', 'history', 'last_checkpoint']
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import CLASS_NAMES
from .errors import InvalidArgumentError, InvalidDataError, ShapeError, VoxelSizeError
from .volume import Volume

__all__ = ["INHERITED", "ClassifierConfig", "PatchSampler", "TrainingConfig", "balanced_sampler",
           "classification_metrics", "confusion_matrix", "evaluate_classifier", "fit", "fit_classifier",
           "inherit_checkpoint", "masked_loss", "predict_classes"]


def _default_classes() -> dict[str, int]:
    return {name: code for code, name in sorted(CLASS_NAMES.items())}


@dataclass
class TrainingConfig:
    """Everything :func:`fit` needs besides the data; stored in the checkpoints.

    Attributes
    ----------
    model, model_config
        Name and options for :func:`sxtseg.models.build`.
    spatial_dims : {2, 3}
        3: 3-D patches; 2: 2-D patches of z slices with ``context_slices``
        neighbouring slices on each side as extra input channels.
    patch_size : tuple of int
        (Z, Y, X) for 3-D, (Y, X) for 2-D, in voxels.
    batch_size, epochs, steps_per_epoch : int
        Patches per step, epochs, optimiser steps per epoch.
    learning_rate, weight_decay : float
        AdamW; the learning rate follows a cosine from its value to 0 over all steps.
    ignore_label : int
        Label value of voxels nobody annotated (left out of the loss).
    classes : dict
        Class name to code; the codes must be 0..C-1 (output channel = code).
    intensity : dict
        Input normalisation (see :func:`sxtseg.models.checkpoint.normalization_range`).
    augment : bool
        MONAI augmentations on every patch.
    seed : int
        Seeds patch sampling, augmentation and weights.
    device : str
        ``"auto"``: CUDA when available, else CPU.
    amp : bool
        Mixed precision on CUDA.
    validation_overlap : float
        Sliding-window overlap of the validation predictions.
    description : str
        What the training data were (stored in the checkpoint).
    init_checkpoint : str, optional
        Start from these weights (a checkpoint file or shipped model name,
        e.g. ``"default"``): fine-tuning on your own annotated cells.  The
        fields :data:`INHERITED` left at their defaults are taken from the
        checkpoint (architecture, classes, input normalisation, patch size), so ``TrainingConfig(init_checkpoint="default")`` fine-
        tunes the shipped model as it is; a field set to a value other than
        the checkpoint's is refused with the mismatch named
        (:func:`inherit_checkpoint`).
    calibration : str
        ``"auto"``: training and validation images are brought to LAC by
        :func:`sxtseg.calibrate` first, as :func:`sxtseg.segment` does at
        inference; ``"none"``: used as they are (images already in LAC, such
        as phantoms).  A property of the training data, not of the model:
        not inherited by fine-tuning (every model reads LAC).
    class_ratios : dict
        Relative share of training patches centred on each class, by class
        name (as MONAI's ``RandCropByLabelClassesd`` ``ratios``); a class not
        named gets 1, so ``{}`` (the default) centres equally many patches on
        every class present in the labels, and ``{"nucleus": 3,
        "fiducial": 0.3}`` centres three times as many on the nucleus and a
        third as many on gold beads as on each other class.  0 centres no
        patch on a class (its voxels still count in the loss wherever other
        patches hold them).  Not inherited by fine-tuning (it is about the
        training data).
    batch_norm : {"batch", "frozen"}
        ``"batch"``: batch-norm layers normalise each training batch by its own
        statistics and update their running statistics (PyTorch's default);
        ``"frozen"``: they keep the running statistics of ``init_checkpoint``
        (a fixed scale and shift per channel, as at inference) while the rest
        of the network, their learnt scale and shift included, trains.  With
        batches of a few patches, batch statistics follow whatever the last
        patches held; frozen statistics make training see the network that
        inference runs.  Needs ``init_checkpoint``.  Measured
        (docs/benchmarks.md): it steadied domain-randomised training from the
        shipped model, but fine-tuning on 5 slices of an unseen imaging model
        gained much less with it (DMV Dice 0.342 against 0.447 with batch
        statistics): that needs the statistics to move.
    segment_voxel_size_nm : float or tuple of 3 float, optional
        The voxel size (nm; one for all axes, or z, y, x) at which
        :func:`sxtseg.segment` runs the trained model on every volume whose
        voxel size differs from it by more than 10% (stored in the checkpoint;
        :func:`sxtseg.infer.segmentation_voxel_size_nm`).  None (the default):
        volumes inside the training voxel sizes keep theirs and only those
        outside are resampled.  Chosen by measurement after a first training
        (the domain-randomised default model scores best at 30 nm whatever
        the input's voxel size; docs/benchmarks.md).  Not inherited by
        fine-tuning (it is about what the new model was measured on).
    """

    model: str = "unet"
    model_config: dict = field(default_factory=dict)
    spatial_dims: int = 3
    context_slices: int = 0
    patch_size: tuple = (64, 64, 64)
    batch_size: int = 2
    epochs: int = 10
    steps_per_epoch: int = 50
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    ignore_label: int = 255
    classes: dict = field(default_factory=_default_classes)
    intensity: dict = field(default_factory=lambda: {"method": "percentile", "low": 1.0, "high": 99.0})
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    validation_overlap: float = 0.25
    description: str = ""
    init_checkpoint: str | None = None
    calibration: str = "auto"
    batch_norm: str = "batch"
    class_ratios: dict = field(default_factory=dict)
    segment_voxel_size_nm: float | tuple | None = None

    def check(self) -> None:
        """Raise :class:`InvalidArgumentError` on an inconsistent configuration."""
        if self.spatial_dims not in (2, 3):
            raise InvalidArgumentError(f"spatial_dims must be 2 or 3, not {self.spatial_dims!r}")
        if len(self.patch_size) != self.spatial_dims or min(self.patch_size) < 1:
            raise InvalidArgumentError(f"patch_size {tuple(self.patch_size)} does not fit spatial_dims={self.spatial_dims}")
        if self.spatial_dims == 3 and self.context_slices:
            raise InvalidArgumentError("context_slices is for 2-D models only")
        _check_class_codes(self.classes)
        if self.ignore_label in [int(c) for c in self.classes.values()]:
            raise InvalidArgumentError(f"ignore_label {self.ignore_label} is also a class code")
        unknown = sorted(set(self.class_ratios) - set(self.classes))
        if unknown:
            raise InvalidArgumentError(f"class_ratios names {unknown}, which are not among the classes "
                                       f"{sorted(self.classes)}")
        for name, ratio in self.class_ratios.items():
            if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 0):
                raise InvalidArgumentError(f"class_ratios[{name!r}] must be a finite number >= 0, not {ratio!r}")
        if self.class_ratios and not any(self.class_ratio(name) > 0 for name in self.classes):
            raise InvalidArgumentError("class_ratios give every class 0: no patch could be centred")
        if self.batch_norm not in ("batch", "frozen"):
            raise InvalidArgumentError(f"batch_norm must be 'batch' or 'frozen', not {self.batch_norm!r}")
        if self.batch_norm == "frozen" and not self.init_checkpoint:
            raise InvalidArgumentError("batch_norm='frozen' keeps a checkpoint's statistics: it needs init_checkpoint")
        if self.segment_voxel_size_nm is not None:
            self.segment_voxel_size()
        for name in ("batch_size", "epochs", "steps_per_epoch"):
            if int(getattr(self, name)) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def segment_voxel_size(self) -> list[float] | None:
        """``segment_voxel_size_nm`` as (z, y, x) nm, or None; refuses anything but 1 or 3 positive sizes."""
        if self.segment_voxel_size_nm is None:
            return None
        try:
            sizes = np.atleast_1d(np.asarray(self.segment_voxel_size_nm, dtype=float)).ravel()
        except (TypeError, ValueError):
            sizes = np.array([np.nan])
        if sizes.size == 1:
            sizes = np.repeat(sizes, 3)
        if sizes.size != 3 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            raise InvalidArgumentError(f"segment_voxel_size_nm must be one or three positive sizes in nm, not "
                                       f"{self.segment_voxel_size_nm!r}")
        return [float(v) for v in sizes]

    def class_ratio(self, name: str) -> float:
        """The relative share of patches centred on class ``name`` (1 unless ``class_ratios`` says otherwise)."""
        return float(self.class_ratios.get(name, 1.0))

    @property
    def in_channels(self) -> int:
        return 2 * self.context_slices + 1 if self.spatial_dims == 2 else 1


#: The fields a fine-tuning configuration takes from its ``init_checkpoint``.
INHERITED = ("model", "model_config", "spatial_dims", "context_slices", "patch_size", "classes", "intensity")


def _checkpoint_fields(meta: dict) -> dict:
    """The :data:`INHERITED` fields as a checkpoint's metadata records them."""
    arch = meta["architecture"]
    return {"model": arch["name"], "model_config": json.loads(json.dumps(arch["config"])),
            "spatial_dims": int(arch["spatial_dims"]),
            "context_slices": int(meta["input"].get("context_slices", 0)),
            "patch_size": tuple(meta["input"]["patch_size"]),
            "classes": {str(k): int(v) for k, v in meta["classes"].items()},
            "intensity": dict(meta["intensity"])}


def inherit_checkpoint(config: TrainingConfig) -> TrainingConfig:
    """``config`` with the :data:`INHERITED` fields of its ``init_checkpoint`` filled in.

    A field left at its default takes the checkpoint's value; a field set to
    another value than the checkpoint's raises, naming both (a fine-tuned
    model must read its input as the checkpoint did, or its weights mean
    nothing).

    Raises
    ------
    InvalidArgumentError
        A configured field contradicts the checkpoint.

    Examples
    --------
    >>> config = inherit_checkpoint(TrainingConfig(init_checkpoint="default"))
    >>> config.intensity["method"], config.model_config["normalization"]
    ('fixed', 'batch')
    """
    from .models import load_model

    if not config.init_checkpoint:
        return config
    meta = load_model(config.init_checkpoint).metadata
    if meta.get("task", "segmentation") != "segmentation":
        raise InvalidArgumentError(f"{config.init_checkpoint}: a {meta['task']} checkpoint; fit() fine-tunes "
                                   "segmentation models (classifiers: sxtseg.train.fit_classifier)")
    theirs = _checkpoint_fields(meta)
    defaults = TrainingConfig()
    changes, clashes = {}, []
    for name in INHERITED:
        mine = getattr(config, name)
        same = json.loads(json.dumps(mine, default=list)) == json.loads(json.dumps(theirs[name], default=list))
        if same:
            continue
        if json.loads(json.dumps(mine, default=list)) == json.loads(json.dumps(getattr(defaults, name), default=list)):
            changes[name] = theirs[name]
        else:
            clashes.append(f"{name}={mine!r} (the checkpoint has {theirs[name]!r})")
    if clashes:
        raise InvalidArgumentError(f"{config.init_checkpoint}: fine-tuning must keep the checkpoint's settings; "
                                   f"configured {'; '.join(clashes)}. Leave these fields unset to inherit them")
    return dataclasses.replace(config, **changes)


class PatchSampler:
    """Class-balanced patches from (image, labels) Volume pairs, read lazily.

    Parameters
    ----------
    pairs : list of (Volume, Volume)
        Images (grey values) and labels (class codes, ``ignore_label`` where
        not annotated), each pair of one shape; any dask chunking.
    config : TrainingConfig
        Patch size, spatial dims, context slices, classes, ignore label and
        intensity normalisation.
    rng : numpy.random.Generator

    Notes
    -----
    One pass over the labels counts every class per dask block.  A patch
    is centred on a class drawn among those present in the labels, each with
    its ``config.class_ratios`` share (equal by default).  A patch of
    class c then picks a block in proportion to its count of c, a random voxel of
    class c in it (the block's labels are cached), and centres the patch
    there with a random shift of up to a quarter patch.  Only the patch is
    read from the image.
    """

    def __init__(self, pairs, config: TrainingConfig, rng: np.random.Generator):
        from .models.checkpoint import normalization_range
        from .morphometrics import block_voxel_counts

        self.config = config
        self.rng = rng
        self.pairs = []
        counts = []
        n_classes = config.n_classes
        for image, labels in pairs:
            _check_pair(image, labels)
            data = labels.data
            try:
                per_block = block_voxel_counts(data)
            except InvalidDataError:
                raise InvalidDataError(f"{labels._name()}: label volumes hold class codes, which are not "
                                       "negative") from None
            width = per_block.shape[1]
            allowed = np.zeros(width, bool)
            allowed[:n_classes] = True
            if config.ignore_label < width:
                allowed[config.ignore_label] = True
            bad = np.nonzero(per_block.sum(axis=0) * ~allowed)[0]
            if len(bad):
                raise InvalidDataError(f"{labels._name()}: label values {bad.tolist()} are neither class codes "
                                       f"0..{n_classes - 1} nor the ignore label {config.ignore_label}")
            per_block = per_block[:, :n_classes]
            starts = [np.concatenate([[0], np.cumsum(c)]) for c in data.chunks]
            slices = [tuple(slice(int(starts[a][i]), int(starts[a][i + 1])) for a, i in enumerate(index))
                      for index in np.ndindex(data.numblocks)]
            step = max(1, int(round((image.data.size / 2e6) ** (1 / 3))))  # about 2 M voxels for the percentiles
            sample = image.data[::step, ::step, ::step].compute()
            low, high = normalization_range(sample, config.intensity)
            self.pairs.append({"image": image, "labels": labels, "slices": slices, "low": low, "high": high})
            counts.append(np.array(per_block))
        self.counts = counts  # per pair: (blocks, classes)
        totals = sum(c.sum(axis=0) for c in counts)
        self.present = np.nonzero(totals)[0]
        if len(self.present) == 0:
            raise InvalidDataError("no annotated voxel in any training label volume")
        names = {int(code): name for name, code in config.classes.items()}
        ratios = np.array([config.class_ratio(names[int(c)]) for c in self.present])
        if not ratios.sum() > 0:
            raise InvalidArgumentError(f"class_ratios give 0 to every class in the labels "
                                       f"({[names[int(c)] for c in self.present]}): no patch could be centred")
        #: probability that a patch is centred on each class of ``present``
        self.class_probabilities = ratios / ratios.sum()
        self._cache: dict = {}

    def _block(self, pair: int, block: int) -> np.ndarray:
        key = (pair, block)
        if key not in self._cache:
            if len(self._cache) >= 16:
                self._cache.pop(next(iter(self._cache)))
            labels = self.pairs[pair]["labels"]
            self._cache[key] = np.asarray(labels.data[self.pairs[pair]["slices"][block]].compute())
        return self._cache[key]

    def _centre(self) -> tuple[int, np.ndarray]:
        """A random annotated voxel of a random class: (pair, (z, y, x))."""
        if np.ptp(self.class_probabilities) == 0:  # equal shares: the draw of the sampler before class_ratios
            c = self.rng.choice(self.present)
        else:
            c = self.rng.choice(self.present, p=self.class_probabilities)
        weights = np.concatenate([counts[:, c] for counts in self.counts]).astype(np.float64)
        flat = self.rng.choice(len(weights), p=weights / weights.sum())
        pair = int(np.searchsorted(np.cumsum([len(x) for x in self.counts]), flat, side="right"))
        block = flat - sum(len(x) for x in self.counts[:pair])
        labels = self._block(pair, block)
        voxel = self.rng.choice(np.flatnonzero(labels == c))
        local = np.array(np.unravel_index(voxel, labels.shape))
        start = np.array([s.start for s in self.pairs[pair]["slices"][block]])
        return pair, start + local

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One patch: image (C, *patch) float32 normalised, labels (1, *patch) int64 (ignore where padded)."""
        cfg = self.config
        pair, centre = self._centre()
        entry = self.pairs[pair]
        shape = np.array(entry["labels"].shape)
        if cfg.spatial_dims == 3:
            size = np.array(cfg.patch_size)
            zc = None
        else:
            size = np.array([1, *cfg.patch_size])
            zc = int(centre[0])
        jitter = self.rng.integers(-(size // 4), size // 4 + 1)
        start = np.clip(centre - size // 2 + jitter, 0, np.maximum(shape - size, 0))
        stop = np.minimum(start + size, shape)
        region = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
        if cfg.spatial_dims == 2:
            k = cfg.context_slices
            zs = np.clip(np.arange(zc - k, zc + k + 1), 0, shape[0] - 1)
            image = _read(entry["image"], (slice(int(zs.min()), int(zs.max()) + 1), *region[1:]))
            image = image[zs - zs.min()]  # (2k+1, y, x), end slices repeated
            labels = _read(entry["labels"], region)[0:1]
        else:
            image = _read(entry["image"], region)[None]
            labels = _read(entry["labels"], region)[None]
        image = ((image.astype(np.float32) - entry["low"]) / (entry["high"] - entry["low"])).astype(np.float32)
        labels = labels.astype(np.int64)
        # a volume smaller than the patch: pad, with the padding left out of the loss
        pad = [(0, 0)] + [(0, int(p - s)) for p, s in zip(cfg.patch_size, labels.shape[1:])]
        if any(p[1] for p in pad):
            image = np.pad(image, pad, mode="reflect" if min(image.shape[1:]) > 1 else "edge")
            labels = np.pad(labels, pad, constant_values=cfg.ignore_label)
        return image, labels


def _read(volume: Volume, region) -> np.ndarray:
    """A region of a Volume as a NumPy array (no dask graph for an in-memory volume)."""
    if volume.in_memory:
        return np.asarray(volume.to_numpy()[region])
    return np.asarray(volume.data[region].compute())


def _check_pair(image: Volume, labels: Volume) -> None:
    for vol, what in ((image, "image"), (labels, "labels")):
        if not isinstance(vol, Volume):
            raise TypeError(f"training {what} must be a sxtseg.Volume")
        if vol.ndim != 3:
            raise ShapeError(f"{vol._name()}: training needs 3-D volumes, got shape {vol.shape}")
    if image.shape != labels.shape:
        raise ShapeError(f"{labels._name()}: labels of shape {labels.shape} do not match the image {image.shape}")
    if labels.dtype.kind not in "iu":
        raise InvalidDataError(f"{labels._name()}: labels must be integers (class codes), got {labels.dtype}")
    if image.voxel_size is None:
        raise VoxelSizeError(f"{image._name()}: the voxel size is unknown; the model records the voxel size it was trained at")


def masked_loss(logits, labels, ignore_label: int = 255):
    """Dice + cross-entropy over the annotated voxels only.

    Parameters
    ----------
    logits : torch.Tensor
        (N, C, *spatial).
    labels : torch.Tensor
        (N, 1, *spatial) integer class codes, ``ignore_label`` where not annotated.

    Returns
    -------
    torch.Tensor
        Scalar: mean cross-entropy of the annotated voxels plus MONAI's
        masked soft Dice (softmax, batch-wise); voxels labelled
        ``ignore_label`` add nothing to either, nor to the gradient.
    """
    import torch
    from monai.losses import MaskedDiceLoss

    valid = labels != ignore_label
    target = torch.where(valid, labels, torch.zeros_like(labels))
    if not bool(valid.any()):
        return logits.sum() * 0.0
    ce = torch.nn.functional.cross_entropy(logits.float(), labels[:, 0], ignore_index=ignore_label)
    dice = MaskedDiceLoss(to_onehot_y=True, softmax=True, batch=True)(logits.float(), target, mask=valid.float())
    return ce + dice


def _augmentation(spatial_dims: int):
    from monai.transforms import (
        Compose,
        RandFlipd,
        RandGaussianNoised,
        RandRotate90d,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )

    keys = ["image", "labels"]
    flips = [RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(spatial_dims)]
    in_plane = (spatial_dims - 2, spatial_dims - 1)
    return Compose([*flips, RandRotate90d(keys, prob=0.5, spatial_axes=in_plane),
                    RandScaleIntensityd("image", factors=0.1, prob=0.5),
                    RandShiftIntensityd("image", offsets=0.1, prob=0.5),
                    RandGaussianNoised("image", prob=0.3, std=0.03)])


def _seed_everything(seed: int, epoch: int) -> np.random.Generator:
    import torch
    from monai.utils import set_determinism

    key = [seed, epoch + 1]  # epoch -1: building the model
    mixed = int(np.random.SeedSequence(key).generate_state(1)[0])
    torch.manual_seed(mixed)
    set_determinism(mixed)
    return np.random.default_rng(key)


def _validate(model, validation, config: TrainingConfig, device) -> np.ndarray:
    from .infer import dice_per_class, predict_array
    from .models.checkpoint import normalization_range

    image, labels = validation
    array = image.to_numpy().astype(np.float32)
    low, high = normalization_range(array[::2, ::2, ::2], config.intensity)
    probs = predict_array(model, (array - low) / (high - low), patch_size=config.patch_size,
                          spatial_dims=config.spatial_dims, context=config.context_slices,
                          overlap=config.validation_overlap, device=device, amp=config.amp)
    return dice_per_class(probs.argmax(axis=0), labels.to_numpy(), config.n_classes, config.ignore_label)


def _freeze_batch_norm_statistics(model) -> None:
    """Put ``model``'s batch-norm layers in inference mode: running statistics used, not updated."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _step(model, x, y, loss_of, optimizer, scaler, scheduler, use_amp: bool) -> float:
    """One optimiser step (mixed precision on CUDA when ``use_amp``); returns the loss."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
        logits = model(x)
    loss = loss_of(logits, y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return float(loss.detach())


def fit(
    pairs,
    out_dir,
    *,
    config: TrainingConfig | None = None,
    validation=None,
    resume: bool = False,
    progress: bool = True,
    on_epoch=None,
) -> dict:
    """Train a segmentation network.

    Parameters
    ----------
    pairs : list of (Volume, Volume)
        Training images and class labels (``config.ignore_label`` where not annotated).
    out_dir : str or Path
        Gets ``best.pt`` (best validation score), ``last.pt`` (with the
        optimiser's state in ``last_state.pt``, for resuming) and
        ``training_log.csv``.
    config : TrainingConfig, optional
    validation : (Volume, Volume), optional
        A held-out image and labels: Dice per class after every epoch; the
        score is the mean Dice of the foreground classes present.  Without
        it the score is the negative training loss.
    resume : bool
        Continue from ``out_dir/last.pt`` and ``last_state.pt``.
    progress : bool
        Show a tqdm bar with the loss and the last validation Dice.
    on_epoch : callable, optional
        Called with each epoch's row (``epoch``, ``loss``, ``learning_rate``,
        ``seconds``, Dice, ``score``) once its checkpoints are saved; an
        exception it raises stops training there (a GUI's cancel button).

    Returns
    -------
    dict
        ``best_checkpoint``, ``last_checkpoint`` (paths), ``best_score`` and
        ``history`` (a list of per-epoch dicts, as in the CSV log).
    """
    import torch
    from tqdm.auto import tqdm

    from .infer import resolve_device
    from .models import build, load_model, save_checkpoint

    config = inherit_checkpoint(config or TrainingConfig())
    config.check()
    pairs = list(pairs)
    if not pairs:
        raise InvalidArgumentError("fit needs at least one (image, labels) pair")
    for image, labels in pairs:
        _check_pair(image, labels)
    if validation is not None:
        _check_pair(*validation)
    if config.calibration != "none":
        from .calibration import calibrate

        pairs = [(calibrate(image, config.calibration)[0], labels) for image, labels in pairs]
        if validation is not None:
            validation = (calibrate(validation[0], config.calibration)[0], validation[1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"

    _seed_everything(config.seed, -1)
    model = build(config.model, config.spatial_dims, config.in_channels, config.n_classes, **config.model_config)
    if config.init_checkpoint:
        start = load_model(config.init_checkpoint, spatial_dims=config.spatial_dims, out_channels=config.n_classes)
        if start.metadata["architecture"]["config"] != model.sxtseg_architecture["config"]:
            raise InvalidArgumentError(f"{config.init_checkpoint}: its architecture "
                                       f"{start.metadata['architecture']} is not the configured one")
        model.load_state_dict(start.state_dict())
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    total_steps = config.epochs * config.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_score, history = 0, -np.inf, []
    if resume:
        state = torch.load(out_dir / "last_state.pt", map_location="cpu", weights_only=True)
        restored = load_model(out_dir / "last.pt")
        model.load_state_dict(restored.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        best_score = float(state["best_score"])
        history = json.loads(state["history"])

    sizes = np.array([image.voxel_size_in("nm") for image, _ in pairs], float)
    meta = {
        "classes": {str(k): int(v) for k, v in config.classes.items()},
        # the training volumes' voxel sizes: their median, and their range (inference resamples
        # only volumes outside it)
        "voxel_size_nm": [float(v) for v in np.median(sizes, axis=0)],
        "voxel_size_range_nm": [[float(v) for v in sizes.min(axis=0)], [float(v) for v in sizes.max(axis=0)]],
        **({"segment_voxel_size_nm": config.segment_voxel_size()} if config.segment_voxel_size_nm is not None
           else {}),
        "intensity": config.intensity,
        "calibration": config.calibration,
        "input": {"context_slices": config.context_slices, "patch_size": list(config.patch_size)},
        "training": {"description": config.description, "volumes": len(pairs),
                     "config": json.loads(json.dumps(dataclasses.asdict(config), default=list))},
    }
    augment = _augmentation(config.spatial_dims) if config.augment else None
    log_path = out_dir / "training_log.csv"
    sampler = None
    for epoch in range(start_epoch, config.epochs):
        rng = _seed_everything(config.seed, epoch)
        if sampler is None:
            sampler = PatchSampler(pairs, config, rng)
        sampler.rng = rng
        if augment is not None:
            augment.set_random_state(seed=int(rng.integers(2**31)))
        model.train()
        if config.batch_norm == "frozen":
            _freeze_batch_norm_statistics(model)
        started = time.perf_counter()
        losses = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   leave=False)
        for _ in bar:
            images, targets = [], []
            for _ in range(config.batch_size):
                image, labels = sampler.sample()
                if augment is not None:
                    item = augment({"image": torch.from_numpy(image), "labels": torch.from_numpy(labels)})
                    image, labels = item["image"], item["labels"]
                images.append(torch.as_tensor(image, dtype=torch.float32))
                targets.append(torch.as_tensor(labels, dtype=torch.int64))
            x = torch.stack(images).to(device)
            y = torch.stack(targets).to(device)
            losses.append(_step(model, x, y, lambda logits, y: masked_loss(logits, y, config.ignore_label),
                                optimizer, scaler, scheduler, use_amp))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "learning_rate": scheduler.get_last_lr()[0],
               "seconds": time.perf_counter() - started}
        if validation is not None:
            dice = _validate(model, validation, config, device)
            names = {int(v): k for k, v in config.classes.items()}
            row.update({f"dice_{names[c]}": float(d) for c, d in enumerate(dice)})
            foreground = dice[1:][~np.isnan(dice[1:])]
            score = float(foreground.mean()) if len(foreground) else -row["loss"]
        else:
            score = -row["loss"]
        row["score"] = score
        history.append(row)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        meta["training"].update(epochs_done=epoch + 1, history=history)
        if score > best_score:
            best_score = score
            save_checkpoint(model, out_dir / "best.pt", {**meta, "score": score})
        save_checkpoint(model, out_dir / "last.pt", {**meta, "score": score})
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                    "best_score": best_score, "history": json.dumps(history)}, out_dir / "last_state.pt")
        _write_log(log_path, history)
        if on_epoch is not None:
            on_epoch(dict(row))
    return {"best_checkpoint": out_dir / "best.pt", "last_checkpoint": out_dir / "last.pt",
            "best_score": best_score, "history": history}


def _write_log(path: Path, history: list[dict]) -> None:
    fields = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


def fit_from_config(path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train from a YAML file (what ``sxtseg train CONFIG.yaml`` runs).

    The file names the data and the output, and any :class:`TrainingConfig`
    field under ``training``; relative paths are relative to the file::

        output: runs/my-model
        data:
          - {image: cell1.mrc, labels: cell1_labels.tif}
          - {image: cell2.mrc, labels: cell2_labels.tif}
        validation: {image: cell3.mrc, labels: cell3_labels.tif}
        training: {model: unet, epochs: 20, patch_size: [64, 64, 64]}

    Label files hold class codes, and 255 where nothing was annotated.

    Returns
    -------
    dict
        What :func:`fit` returns.
    """
    import yaml

    from .errors import CorruptFileError, InputNotFoundError
    from .io import open_volume

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such configuration file")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CorruptFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict) or "data" not in spec or "output" not in spec:
        raise InvalidArgumentError(f"{path}: needs 'data' (a list of image/labels pairs) and 'output'")
    base = path.parent

    def pair(entry, where):
        if not isinstance(entry, dict) or {"image", "labels"} - set(entry):
            raise InvalidArgumentError(f"{path}: every {where} entry needs 'image' and 'labels'")
        image = open_volume(base / entry["image"], voxel_size=entry.get("voxel_size"))
        labels = open_volume(base / entry["labels"])
        if labels.voxel_size is None:
            labels = labels.with_data(labels.data, voxel_size=image.voxel_size, unit=image.unit)
        return image, labels

    fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    options = spec.get("training") or {}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InvalidArgumentError(f"{path}: unknown training settings {unknown}; known: {sorted(fields)}")
    if "patch_size" in options:
        options["patch_size"] = tuple(options["patch_size"])
    config = TrainingConfig(**options)
    pairs = [pair(entry, "data") for entry in spec["data"]]
    validation = pair(spec["validation"], "validation") if spec.get("validation") else None
    return fit(pairs, base / spec["output"], config=config, validation=validation, resume=resume, progress=progress)


# --------------------------------------------------------------------------- image classification
#
# Whole-image classifiers (the chest X-ray adapter's COVID-19 classifier, sxtseg.adapters.cxr): a
# torch Dataset of preprocessed images in, checkpoints with task "classification" out.  The
# segmentation training above is left as it is.


@dataclass
class ClassifierConfig:
    """Everything :func:`fit_classifier` needs besides the data; stored in the checkpoints.

    Attributes
    ----------
    model, model_config
        Name and options for :func:`sxtseg.models.build` (``"densenet121"``:
        MONAI's DenseNet-121; ``{"init_features": 8, "growth_rate": 4}`` makes
        a tiny one for tests).
    input_size : int
        Edge of the square network input in pixels (480 as COVID-Net CXR, or
        224); the dataset must yield ``(1, input_size, input_size)`` images.
    classes : dict, optional
        Class name to code (0..C-1); default: the dataset's ``classes``.
    batch_size, epochs : int
        Images per step (at least 2: batch normalisation) and epochs.
    steps_per_epoch : int, optional
        Optimiser steps per epoch; default: one pass's worth of images
        (``ceil(len(dataset) / batch_size)``).
    learning_rate, weight_decay : float
        AdamW; the learning rate follows a cosine from its value to 0 over all steps.
    balance : bool
        Draw training images class-balanced (:func:`balanced_sampler` on the
        dataset's ``labels``), so every class is seen equally often; else
        uniformly, with replacement.
    seed : int
        Seeds the weights, the sampling and the dataset's augmentation
        (through ``dataset.set_epoch``).
    device : str
        ``"auto"``: CUDA when available, else CPU.
    amp : bool
        Mixed precision on CUDA.
    num_workers : int
        DataLoader worker processes (0: load in the main process).
    description : str
        What the training data were (stored in the checkpoint).
    """

    model: str = "densenet121"
    model_config: dict = field(default_factory=dict)
    input_size: int = 480
    classes: dict | None = None
    batch_size: int = 8
    epochs: int = 10
    steps_per_epoch: int | None = None
    learning_rate: float = 2e-4
    weight_decay: float = 1e-4
    balance: bool = True
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    description: str = ""

    def check(self) -> None:
        """Raise :class:`InvalidArgumentError` on an inconsistent configuration."""
        if int(self.batch_size) < 2:
            raise InvalidArgumentError("batch_size must be at least 2 (batch normalisation needs two images)")
        for name in ("epochs", "input_size"):
            if int(getattr(self, name)) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1")
        if self.steps_per_epoch is not None and int(self.steps_per_epoch) < 1:
            raise InvalidArgumentError("steps_per_epoch must be at least 1 (or None: one pass over the data)")
        if int(self.num_workers) < 0:
            raise InvalidArgumentError("num_workers must not be negative")
        if self.classes is not None:
            _check_class_codes(self.classes)


def _check_class_codes(classes: dict) -> None:
    codes = sorted(int(c) for c in classes.values())
    if codes != list(range(len(codes))) or len(codes) < 2:
        raise InvalidArgumentError(f"class codes must be 0..C-1 (C >= 2), got {dict(classes)}")


def balanced_sampler(labels, *, num_samples: int | None = None, seed: int = 0):
    """A sampler that draws every class equally often: PyTorch's ``WeightedRandomSampler``.

    Each item is weighted by one over the count of its class, and drawn with
    replacement, so a class of 50 images is drawn as often as one of 5000.

    Parameters
    ----------
    labels : sequence of int
        The class code of every item of the dataset.
    num_samples : int, optional
        Items drawn per pass (default ``len(labels)``).
    seed : int
        Seeds the sampler's own ``torch.Generator``.

    Returns
    -------
    torch.utils.data.WeightedRandomSampler

    Examples
    --------
    >>> import numpy as np
    >>> sampler = balanced_sampler([0] * 90 + [1] * 10, num_samples=2000, seed=1)
    >>> drawn = np.array([0] * 90 + [1] * 10)[list(sampler)]
    >>> bool(abs(drawn.mean() - 0.5) < 0.05)
    True
    """
    import torch
    from torch.utils.data import WeightedRandomSampler

    labels = np.asarray(labels, dtype=np.int64).ravel()
    if labels.size == 0:
        raise InvalidArgumentError("balanced_sampler needs at least one label")
    if labels.min() < 0:
        raise InvalidArgumentError("class codes are not negative")
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double),
                                 num_samples=int(num_samples or labels.size), replacement=True, generator=generator)


def confusion_matrix(true, predicted, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows are the truth, columns the prediction.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3)
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    true = np.asarray(true, dtype=np.int64).ravel()
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    if true.shape != predicted.shape:
        raise ShapeError(f"{true.size} true labels but {predicted.size} predictions")
    for what, values in (("true labels", true), ("predictions", predicted)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise InvalidDataError(f"{what} must be class codes 0..{n_classes - 1}")
    return np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(confusion, classes) -> dict:
    """Per-class sensitivity and positive predictive value, as COVID-Net reports them.

    Parameters
    ----------
    confusion : array-like, (C, C)
        Counts, rows the true class, columns the predicted one (:func:`confusion_matrix`).
    classes : dict or sequence of str
        Class name to code, or the names in code order.

    Returns
    -------
    dict
        ``sensitivity`` (recall: the share of each true class predicted as
        it) and ``ppv`` (precision: the share of each predicted class that is
        right), name to value, NaN where the class never occurs (or is never
        predicted); ``support`` (true images per class), ``accuracy``,
        ``mean_sensitivity`` (balanced accuracy, over the classes present),
        ``confusion`` (the matrix as nested lists) and ``classes`` (names in
        code order).

    Examples
    --------
    >>> m = classification_metrics([[8, 2], [1, 9]], ["negative", "positive"])
    >>> m["sensitivity"]["positive"], round(m["ppv"]["positive"], 3), m["accuracy"]
    (0.9, 0.818, 0.85)
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    names = [name for name, _ in sorted(classes.items(), key=lambda kv: int(kv[1]))] if isinstance(classes, dict) \
        else [str(c) for c in classes]
    if confusion.ndim != 2 or confusion.shape != (len(names), len(names)):
        raise ShapeError(f"confusion matrix of shape {confusion.shape} for {len(names)} classes")
    correct = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = np.where(support > 0, correct / support, np.nan)
        ppv = np.where(predicted > 0, correct / predicted, np.nan)
    total = int(confusion.sum())
    present = sensitivity[support > 0]
    return {"classes": names,
            "sensitivity": {n: float(v) for n, v in zip(names, sensitivity)},
            "ppv": {n: float(v) for n, v in zip(names, ppv)},
            "support": {n: int(v) for n, v in zip(names, support)},
            "accuracy": float(correct.sum() / total) if total else float("nan"),
            "mean_sensitivity": float(present.mean()) if present.size else float("nan"),
            "confusion": confusion.tolist()}


def _image_and_label(item):
    """(image, label) of a dataset item: a dict with ``image`` and ``label``, or a pair."""
    if isinstance(item, dict):
        return item["image"], item["label"]
    image, label = item[:2]
    return image, label


def _collate(items):
    import torch

    images, labels = zip(*(_image_and_label(item) for item in items))
    x = torch.stack([torch.as_tensor(np.asarray(im), dtype=torch.float32) for im in images])
    y = torch.as_tensor([int(label) for label in labels], dtype=torch.int64)
    return x, y


def predict_classes(model, dataset, *, batch_size: int = 16, device="auto", num_workers: int = 0,
                    amp: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of every image of a dataset, in order.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits ``(N, C)``.
    dataset : torch Dataset
        Items as :func:`fit_classifier` takes them.
    batch_size, num_workers : int
    device : str or torch.device
        ``"auto"``: CUDA when available.
    amp : bool
        Autocast to float16 on CUDA.

    Returns
    -------
    probabilities : ndarray, (N, C) float32
        Softmax of the logits.
    labels : ndarray, (N,) int64
        The items' labels.
    """
    import torch
    from torch.utils.data import DataLoader

    from .infer import resolve_device

    device = resolve_device(device)
    model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=int(batch_size), shuffle=False, num_workers=int(num_workers),
                        collate_fn=_collate)
    probabilities, labels = [], []
    with torch.inference_mode(), torch.autocast(device_type="cuda", dtype=torch.float16,
                                                 enabled=amp and device.type == "cuda"):
        for x, y in loader:
            probabilities.append(torch.softmax(model(x.to(device)).float(), dim=1).cpu().numpy())
            labels.append(y.numpy())
    if not probabilities:
        raise InvalidArgumentError("the dataset is empty")
    return np.concatenate(probabilities).astype(np.float32), np.concatenate(labels)


def evaluate_classifier(model, dataset, *, classes: dict | None = None, batch_size: int = 16, device="auto",
                        num_workers: int = 0) -> dict:
    """Sensitivity, PPV and the confusion matrix of a classifier on a labelled dataset.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier (logits ``(N, C)``); a loaded checkpoint's ``metadata``
        gives the class names when ``classes`` is not given.
    dataset : torch Dataset
        Labelled items (``{"image", "label"}`` dicts or pairs).
    classes : dict, optional
        Class name to code (default: the model's, else the dataset's).

    Returns
    -------
    dict
        :func:`classification_metrics` of the argmax predictions, plus
        ``probabilities`` (N, C) and ``labels`` (N,) as arrays.
    """
    classes = classes or getattr(model, "metadata", {}).get("classes") or getattr(dataset, "classes", None)
    if not classes:
        raise InvalidArgumentError("evaluate_classifier needs the class names: pass classes={name: code}")
    probabilities, labels = predict_classes(model, dataset, batch_size=batch_size, device=device,
                                            num_workers=num_workers)
    if probabilities.shape[1] != len(classes):
        raise InvalidArgumentError(f"the model has {probabilities.shape[1]} outputs but there are "
                                   f"{len(classes)} classes {dict(classes)}")
    confusion = confusion_matrix(labels, probabilities.argmax(axis=1), len(classes))
    return {**classification_metrics(confusion, classes), "probabilities": probabilities, "labels": labels}


def fit_classifier(dataset, out_dir, *, config: ClassifierConfig | None = None, validation=None,
                   progress: bool = True, on_epoch=None) -> dict:
    """Train a whole-image classifier (DenseNet-121 by default) on a labelled image dataset.

    Parameters
    ----------
    dataset : torch Dataset
        Items ``{"image": (1, S, S) float array or tensor, "label": int}``
        (or ``(image, label)`` pairs), already preprocessed, such as
        :class:`sxtseg.adapters.cxr.CovidxDataset`.  Used: ``classes`` (name
        to code) unless the config gives them, ``labels`` (one code per item,
        for class balancing; without it every item is read once to find them), ``preprocessing`` (a dict stored in the
        checkpoint, so inference prepares images the same way) and
        ``set_epoch(epoch)`` (reseeds its augmentation), where present.
    out_dir : str or Path
        Gets ``best.pt`` (best score), ``last.pt`` and ``training_log.csv``.
    config : ClassifierConfig, optional
    validation : torch Dataset, optional
        Held-out labelled images: sensitivity and PPV per class after every
        epoch; the score is their mean sensitivity (balanced accuracy).
        Without it the score is the negative training loss.
    progress : bool
        Show a tqdm bar with the loss.
    on_epoch : callable, optional
        Called with each epoch's row once its checkpoints are saved.

    Returns
    -------
    dict
        ``best_checkpoint``, ``last_checkpoint`` (paths), ``best_score`` and
        ``history`` (per-epoch dicts: ``epoch``, ``loss``, ``learning_rate``,
        ``seconds``, and with validation ``accuracy``,
        ``sensitivity_<class>``, ``ppv_<class>``; ``score``).

    Notes
    -----
    Checkpoints (:func:`sxtseg.models.save_checkpoint`) record ``task:
    "classification"``, ``classes``, ``input`` (``size``, ``channels``,
    ``preprocessing``) and the training configuration, so
    :func:`sxtseg.models.load_model` rebuilds the network and
    :func:`sxtseg.adapters.cxr.covid_score` prepares its input.  Every epoch
    reseeds the sampler and augmentation from ``(seed, epoch)``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> images = [{"image": np.full((1, 64, 64), i % 2, np.float32), "label": i % 2} for i in range(8)]
    >>> config = ClassifierConfig(model_config={"init_features": 8, "growth_rate": 4}, input_size=64,
    ...                           classes={"negative": 0, "positive": 1}, batch_size=4, epochs=1)
    >>> result = fit_classifier(images, tempfile.mkdtemp(), config=config, progress=False)
    >>> sorted(result), len(result["history"])
    (['best_checkpoint', 'best_score', 'history', 'last_checkpoint'], 1)
    """
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    from tqdm.auto import tqdm

    from .infer import resolve_device
    from .models import build, save_checkpoint

    config = config or ClassifierConfig()
    config.check()
    if len(dataset) == 0:
        raise InvalidArgumentError("fit_classifier needs at least one training image")
    classes = config.classes or getattr(dataset, "classes", None)
    if not classes:
        raise InvalidArgumentError("the class names are unknown: give ClassifierConfig(classes={name: code}) "
                                   "or a dataset with a 'classes' attribute")
    classes = {str(k): int(v) for k, v in classes.items()}
    _check_class_codes(classes)
    _check_classifier_input(dataset, config.input_size)
    theirs = getattr(validation, "classes", None)
    if theirs is not None and {str(k): int(v) for k, v in theirs.items()} != classes:
        raise InvalidArgumentError(f"the validation images' classes {dict(theirs)} are not the training classes "
                                   f"{classes}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"
    steps = int(config.steps_per_epoch or -(-len(dataset) // config.batch_size))

    _seed_everything(config.seed, -1)
    model = build(config.model, 2, 1, len(classes), **config.model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    labels = getattr(dataset, "labels", None)
    if labels is None:  # a dataset that does not list its labels: read every item once
        labels = [int(_image_and_label(dataset[i])[1]) for i in range(len(dataset))]
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(dataset) or (labels.size and (labels.min() < 0 or labels.max() >= len(classes))):
        raise InvalidDataError(f"the dataset's labels must be one class code 0..{len(classes) - 1} per image")
    meta = {
        "task": "classification",
        "classes": classes,
        "input": {"size": int(config.input_size), "channels": 1,
                  "preprocessing": dict(getattr(dataset, "preprocessing", None) or {})},
        "training": {"description": config.description, "images": len(dataset),
                     "class_counts": _class_counts(labels, classes),
                     "config": json.loads(json.dumps(dataclasses.asdict(config), default=list))},
    }
    best_score, history = -np.inf, []
    log_path = out_dir / "training_log.csv"
    for epoch in range(config.epochs):
        _seed_everything(config.seed, epoch)
        epoch_seed = int(np.random.SeedSequence([config.seed, epoch + 1, 7]).generate_state(1)[0])
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        if config.balance:
            sampler = balanced_sampler(labels, num_samples=steps * config.batch_size, seed=epoch_seed)
        else:
            sampler = RandomSampler(range(len(dataset)), replacement=True, num_samples=steps * config.batch_size,
                                    generator=torch.Generator().manual_seed(epoch_seed))
        loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=_collate,
                            num_workers=int(config.num_workers), drop_last=True)
        model.train()
        started = time.perf_counter()
        losses = []
        bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            losses.append(_step(model, x, y, lambda logits, y: torch.nn.functional.cross_entropy(logits.float(), y),
                                optimizer, scaler, scheduler, use_amp))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "learning_rate": scheduler.get_last_lr()[0],
               "seconds": time.perf_counter() - started}
        if validation is not None:
            metrics = evaluate_classifier(model, validation, classes=classes, batch_size=config.batch_size,
                                          device=device, num_workers=int(config.num_workers))
            row["accuracy"] = metrics["accuracy"]
            row.update({f"sensitivity_{n}": v for n, v in metrics["sensitivity"].items()})
            row.update({f"ppv_{n}": v for n, v in metrics["ppv"].items()})
            score = metrics["mean_sensitivity"]
            score = -row["loss"] if np.isnan(score) else score
        else:
            score = -row["loss"]
        row["score"] = float(score)
        history.append(row)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        meta["training"].update(epochs_done=epoch + 1, history=history)
        if score > best_score:
            best_score = score
            save_checkpoint(model, out_dir / "best.pt", {**meta, "score": float(score)})
        save_checkpoint(model, out_dir / "last.pt", {**meta, "score": float(score)})
        _write_log(log_path, history)
        if on_epoch is not None:
            on_epoch(dict(row))
    return {"best_checkpoint": out_dir / "best.pt", "last_checkpoint": out_dir / "last.pt",
            "best_score": float(best_score), "history": history}


def _check_classifier_input(dataset, size: int) -> None:
    """The first item is a (1, size, size) image: refuse a dataset prepared for another input size."""
    image, _ = _image_and_label(dataset[0])
    shape = tuple(np.shape(image))
    if shape != (1, int(size), int(size)):
        raise ShapeError(f"training images have shape {shape}; the classifier's input is (1, {size}, {size}) "
                         "(set ClassifierConfig.input_size to the dataset's size)")


def _class_counts(labels, classes: dict) -> dict | None:
    if labels is None:
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    return {name: int(counts[code]) for name, code in classes.items()}
