"""Inference: a network applied to arrays, and block-wise segmentation of volumes of any size.

:func:`predict_array` runs MONAI's Gaussian-weighted sliding window over a
normalised (Z, Y, X) array with a 3-D network, or over its z slices (with
neighbouring slices as extra channels) with a 2-D one, and returns class
probabilities.  Training validation uses it on whole held-out volumes.

:func:`segment` cuts a volume into blocks (aligned with the output's zarr
chunks), reads each with a halo of neighbouring voxels, normalises it with
the volume's own intensity range, resamples it to the model's voxel size
when the two differ by more than 10%, runs :func:`predict_array` inside it
(by default on the 8 mirror images of every window, their logits averaged:
:mod:`sxtseg.models.mirror`), drops the halo and writes the block's class
labels (uint8), and optionally its class probabilities (float16), to zarr.
Only then is the block marked complete (an empty file in ``blocks/``), so an
interrupted run given the same arguments again skips the finished blocks and
ends with the same output as an uninterrupted one.  Host memory stays a few
blocks; GPU memory stays one batch of windows.

Examples
--------
>>> import numpy as np, tempfile
>>> from sxtseg import make_infected_cell, models
>>> from sxtseg.infer import predict_array, segment
>>> net = models.build("unet", 3, 1, 7, channels=(4, 8), strides=(2,)).eval()
>>> probs = predict_array(net, np.zeros((10, 20, 20), np.float32), patch_size=(8, 16, 16))
>>> probs.shape, bool(np.allclose(probs.sum(axis=0), 1, atol=1e-3))
((7, 10, 20, 20), True)
>>> image, classes, _, _ = make_infected_cell((32, 64, 64), seed=3, n_dmv=2)
>>> net.metadata = {"classes": {str(i): i for i in range(7)}, "voxel_size_nm": [30.0] * 3,
...                 "intensity": {"method": "percentile", "low": 1.0, "high": 99.0},
...                 "input": {"patch_size": [16, 32, 32], "context_slices": 0}, "sha256": "untrained"}
>>> labels = segment(image, net, output=tempfile.mkdtemp() + "/seg.zarr", progress=False)
>>> labels.shape, labels.dtype.name
((32, 64, 64), 'uint8')
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import weakref
from pathlib import Path

import dask.array as da
import numpy as np
import torch

from .errors import InvalidArgumentError, OutputExistsError, ShapeError, VoxelSizeError
from .volume import Volume

__all__ = ["DEFAULT_BLOCK_SHAPE", "DEFAULT_HALO", "PRECISIONS", "context_stack", "cpu_has_native_bfloat16",
           "dice_per_class", "predict_array", "resolve_device", "resolve_precision", "segment",
           "segmentation_voxel_size_nm"]




def resolve_device(device="auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512_BF16 or AMX), the CPUs where it pays.

    >>> isinstance(cpu_has_native_bfloat16(), bool)
    True
    """
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a PyTorch without these queries: assume not
        return False


#: What ``precision=`` accepts.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic a network runs in: ``"auto"`` is float16 on CUDA, bfloat16 on CPUs with native bfloat16, else float32.

    >>> resolve_precision("float32", torch.device("cuda"))
    'float32'
    >>> resolve_precision("auto", torch.device("cpu")) in ("bfloat16", "float32")
    True
    """
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "float16"
        return "bfloat16" if device.type == "cpu" and cpu_has_native_bfloat16() else "float32"
    if precision == "float16" and device.type != "cuda":
        raise InvalidArgumentError(f"float16 inference needs a CUDA device, not {device}; use bfloat16 or float32")
    return precision


def _precision_for(precision: str, device: torch.device, on_cluster: bool) -> str:
    """``precision`` resolved for ``device`` here; on a cluster only checked (each worker resolves "auto" itself)."""
    if not on_cluster:
        return resolve_precision(precision, device)
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


class _Float32Logits(torch.nn.Module):
    """A network (under autocast unless ``dtype`` is None) whose logits come back as MONAI blends them fastest.

    That is float32 (blended in float32) and channels-first contiguous: a channels-last copy's
    output, blended as it is, costs 1.6x as long to weigh and add into the volume (75 ms of a
    96x256x256 cell on 2 cores), as the strided add walks the channels innermost.
    """

    def __init__(self, net: torch.nn.Module, device_type: str, dtype: torch.dtype | None = None):
        super().__init__()
        self.net, self.device_type, self.dtype = net, device_type, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype is None:
            logits = self.net(x)
        else:
            with torch.autocast(device_type=self.device_type, dtype=self.dtype):
                logits = self.net(x)
        return logits.to(torch.float32, memory_format=torch.contiguous_format)


def _runnable(model: torch.nn.Module, device: torch.device, *, fuse: bool = True, amp: bool = True,
              precision: str | None = None, mirror_dims: int = 0) -> torch.nn.Module:
    """``model`` as the sliding window runs it on ``device``: evaluation mode, inference copy, precision.

    See :func:`predict_array` for ``fuse``, ``amp`` and ``precision``.  ``mirror_dims``: the
    model's spatial dimensions (2 or 3), to average its logits over the mirror images of the
    input (:class:`sxtseg.models.mirror.MirrorMean`); 0: no mirroring.
    """
    model = model.to(device).eval()
    if fuse:
        model = _inference_net(model, device)
    if precision is None:
        precision = "float16" if amp and device.type == "cuda" else "float32"
    precision = resolve_precision(precision, device)
    if precision != "float32":
        model = _Float32Logits(model, device.type, getattr(torch, precision))
    elif device.type == "cpu":
        model = _Float32Logits(model, device.type)  # channels-first logits for the blending (a no-op if they are)
    if mirror_dims:
        from .models.mirror import MirrorMean

        model = MirrorMean(model, mirror_dims)
    return model


def context_stack(volume: np.ndarray, z: np.ndarray, context: int) -> np.ndarray:
    """Slices ``z - context .. z + context`` of a (Z, Y, X) array as channels: (len(z), 2 context + 1, Y, X).

    Slices past the volume's ends repeat the end slice.
    """
    offsets = np.arange(-context, context + 1)
    index = np.clip(np.asarray(z)[:, None] + offsets[None, :], 0, volume.shape[0] - 1)
    return volume[index]


@torch.no_grad()
def predict_array(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    patch_size,
    spatial_dims: int = 3,
    context: int = 0,
    overlap: float = 0.25,
    batch_size: int = 4,
    device="auto",
    amp: bool = True,
    fuse: bool = True,
    softmax: bool = True,
    precision: str | None = None,
    mirror: bool = False,
) -> np.ndarray:
    """Class probabilities (C, Z, Y, X) of a normalised (Z, Y, X) float array.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits ``(N, C, *spatial)``.
    image : ndarray
        Normalised grey values (float32), (Z, Y, X).
    patch_size : tuple of int
        Window of the network: (Z, Y, X) for 3-D, (Y, X) for 2-D.
    spatial_dims : {2, 3}
        3: one 3-D sliding window; 2: every z slice, with ``context`` slices
        on either side as channels.
    overlap : float
        Window overlap (0-1); overlapping predictions are blended with
        Gaussian weights (MONAI's ``sliding_window_inference``).
    batch_size : int
        Windows (or slices) per forward pass.
    device : str or torch.device
        ``"auto"``: CUDA when available.
    amp : bool
        Autocast to float16 on CUDA.
    fuse : bool
        On a CPU, run :func:`sxtseg.models.fuse.inference_copy` of the model
        (batch norms folded into convolutions, channels-last weights): the
        same function up to float rounding, 1.6x faster for the shipped U-Net.
        The model itself is not changed.
    softmax : bool
        False: return the blended logits instead of probabilities (the same
        argmax, without a softmax over the whole volume).
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Arithmetic of the network (:func:`resolve_precision`; the blending
        is float32 in every case).  ``"auto"``: float16 on CUDA, bfloat16 on
        a CPU with native bfloat16 (AVX512_BF16 or AMX), else float32.
        None (default): ``amp`` decides (float16 on CUDA, float32 on a CPU).
    mirror : bool
        Average the network's logits over the mirror images of every window
        (every combination of flipped spatial axes: 8 passes in 3-D, 4 in
        2-D; :class:`sxtseg.models.mirror.MirrorMean`).

    Returns
    -------
    ndarray of float32
        Softmax probabilities (or logits), channels first.
    """
    from monai.inferers import sliding_window_inference

    device = resolve_device(device)
    model = _runnable(model, device, fuse=fuse, amp=amp, precision=precision,
                      mirror_dims=spatial_dims if mirror else 0)

    def run(x: torch.Tensor) -> torch.Tensor:
        logits = sliding_window_inference(x, tuple(patch_size), batch_size, model, overlap=overlap,
                                          mode="gaussian", padding_mode="replicate")
        return torch.softmax(logits.float(), dim=1) if softmax else logits.float()

    image = np.ascontiguousarray(image, np.float32)
    if spatial_dims == 3:
        x = torch.from_numpy(image)[None, None].to(device)
        return run(x)[0].cpu().numpy()
    out = None
    for z0 in range(0, image.shape[0], batch_size):
        z = np.arange(z0, min(z0 + batch_size, image.shape[0]))
        probs = run(torch.from_numpy(context_stack(image, z, context)).to(device)).cpu().numpy()
        if out is None:
            out = np.empty((probs.shape[1], *image.shape), np.float32)
        out[:, z] = probs.transpose(1, 0, 2, 3)
    return out


def dice_per_class(predicted: np.ndarray, truth: np.ndarray, n_classes: int, ignore_label: int | None = 255) -> np.ndarray:
    """Dice of every class (index = class code) over the annotated voxels; NaN where a class is in neither.

    Examples
    --------
    >>> import numpy as np
    >>> dice_per_class(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 255]), 3).round(2).tolist()
    [1.0, 0.67, 0.0]
    """
    from sxtseg.kernels import overlap_counts

    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    if predicted.dtype.kind in "iub" and truth.dtype.kind in "iub":
        # the (predicted, true) class pairs with their voxel counts: one pass over runs of voxels
        predicted, truth, voxels = overlap_counts(predicted, truth)
    else:
        voxels = np.ones(predicted.shape, np.int64)
    if ignore_label is not None:
        keep = truth != ignore_label
        predicted, truth, voxels = predicted[keep], truth[keep], voxels[keep]
    predicted, truth = predicted.astype(np.int64), truth.astype(np.int64)
    same = predicted == truth
    both = np.bincount(truth[same], weights=voxels[same], minlength=n_classes)[:n_classes]
    sizes = (np.bincount(predicted, weights=voxels, minlength=n_classes)[:n_classes]
             + np.bincount(truth, weights=voxels, minlength=n_classes)[:n_classes])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, 2.0 * both / sizes, np.nan)

log = logging.getLogger("sxtseg.infer")

#: Halo (voxels per side, z y x) read around every block by default.
DEFAULT_HALO = (16, 32, 32)
#: Block (z y x voxels) of segment() for volumes larger than one block: about 1 GiB of float32 logits of 7 classes.
DEFAULT_BLOCK_SHAPE = (128, 512, 512)
#: Relative difference between the volume's and the model's voxel size above which blocks are resampled.
RESAMPLE_TOLERANCE = 0.10


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, size: int, mtime_ns: int, inode: int, device: str):
    """A loaded model, cached on the file's path, size, modification time and inode (a retrained file reloads)."""
    from .models import load_model

    return load_model(path, device=device)


def _load_cached(model, device) -> torch.nn.Module:
    """``load_model(model)``, reusing the last load of the same file in this process while it is unchanged."""
    from .models.checkpoint import _resolve

    path = _resolve(model)
    stat = os.stat(path)
    return _cached_model(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, str(device))


def _limit_torch_threads() -> None:
    """Lower PyTorch's CPU threads to the CPUs this job was given (affinity, cgroup, SLURM, SXTSEG_NUM_THREADS)."""
    from sxtseg.kernels import default_threads

    allowed = default_threads()
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)


def _model_and_meta(model, device):
    device = resolve_device(device)
    if device.type == "cpu":
        _limit_torch_threads()
    if isinstance(model, (str, os.PathLike)):
        net = _load_cached(model, device)
    else:
        net = model.to(device).eval()
    meta = getattr(net, "metadata", None)
    if not meta:
        raise InvalidArgumentError("the model carries no metadata: load it with sxtseg.models.load_model")
    if meta.get("task", "segmentation") != "segmentation":
        raise InvalidArgumentError(f"{model if isinstance(model, (str, os.PathLike)) else 'the model'}: a "
                                   f"{meta['task']} model (classes {sorted(meta.get('classes', {}))}), not a "
                                   "segmentation model; use it with sxtseg.adapters.cxr")
    return net, meta, device


def _normalization(volume: Volume, meta: dict) -> tuple[float, float, np.ndarray]:
    """The model's (low, high) normalisation of the volume, and the strided sample it came from."""
    from .fingerprint import strided_sample
    from .models.checkpoint import normalization_range

    sample = strided_sample(volume)  # about 4 M voxels
    if not np.isfinite(sample).all():
        raise InvalidArgumentError(f"{volume._name()}: the volume holds NaN or infinite values")
    low, high = normalization_range(sample, meta["intensity"])
    return low, high, sample


#: Resampling factors (input voxel / model voxel) outside this range are refused unless forced.
RESAMPLE_LIMITS = (0.5, 2.0)
#: SXT voxel edges (nm) outside this range are taken for a wrong unit or a file default (TIFF's 1 µm).
PLAUSIBLE_SXT_VOXEL_NM = (2.0, 300.0)


def check_voxel_size(volume: Volume, meta: dict, *, allow_large_resampling: bool = False) -> np.ndarray | None:
    """The zoom factors :func:`segment` will use, after checking that the voxel size makes sense.

    Raises
    ------
    VoxelSizeError
        The voxel size lies a factor outside :data:`RESAMPLE_LIMITS` off the
        model's training range on some axis (the model would see structures
        at a scale it never learnt, or a volume blown up many times), unless
        ``allow_large_resampling``.  The message names the file, the factor
        and a likely cause (a voxel size in the wrong unit, or a file
        format's default such as 1 µm for TIFF).
    """
    voxel_nm = np.array(volume.voxel_size_in("nm"), float)
    low_nm, high_nm = PLAUSIBLE_SXT_VOXEL_NM
    suspicious = [f"{axis} {v:g} nm" for axis, v in zip("zyx", voxel_nm) if not low_nm <= v <= high_nm]
    hint = ""
    if suspicious:
        hint = (f"; {', '.join(suspicious)} is not an SXT voxel size (25-50 nm is usual): a unit mix-up or a "
                "file default (1 um is TIFF's) rather than the microscope's value? Give the right one with "
                "open_volume(..., voxel_size=(z, y, x), unit='nm') or --voxel-size")
        log.warning("%s: voxel size %s%s", volume._name(), [float(v) for v in voxel_nm], hint)
    zoom = _zoom(voxel_nm, meta)
    if zoom is not None:
        lo, hi = RESAMPLE_LIMITS
        bad = [f"{axis} x{factor:.2f}" for axis, factor in zip("zyx", _range_factor(voxel_nm, meta))
               if not lo <= factor <= hi]
        if bad and not allow_large_resampling:
            raise VoxelSizeError(
                f"{volume._name()}: voxel size {[float(v) for v in voxel_nm]} nm is {', '.join(bad)} off "
                "the model's training voxel sizes "
                f"{meta.get('voxel_size_range_nm', meta['voxel_size_nm'])} nm; beyond {lo:g}-{hi:g}x the model "
                f"sees structures at scales it never learnt{hint}. Pass allow_large_resampling=True "
                "(--allow-large-resampling) to run anyway")
    return zoom


def check_input_values(volume: Volume, sample: np.ndarray, low: float, high: float) -> dict:
    """Warn when calibrated grey values do not look like what the model was trained on.

    ``sample`` holds voxels of ``volume`` (after calibration) and ``low``,
    ``high`` the model's normalisation window for it.  Returns the fractions
    of sampled voxels below and above the window by more than its width
    (``{"below": f, "above": f}``); over 10 % together give a warning naming
    the file.
    """
    import warnings

    width = high - low
    fractions = {"below": float(np.mean(sample < low - width)), "above": float(np.mean(sample > high + width))}
    outside = fractions["below"] + fractions["above"]
    if outside > 0.10:
        warnings.warn(f"{volume._name()}: {100 * outside:.0f}% of the voxels lie far outside the model's input "
                      f"range {low:.3g}-{high:.3g} after calibration; this does not look like the data the "
                      "model knows, and the segmentation is unlikely to be right", UserWarning, stacklevel=3)
    return fractions


def _training_range(meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (finest, median, coarsest) training voxel sizes (z y x nm) of a model's metadata."""
    median = np.array(meta["voxel_size_nm"], float)
    low, high = (np.array(r, float) for r in meta.get("voxel_size_range_nm", [median, median]))
    return low, median, high


def segmentation_voxel_size_nm(voxel_size_nm, metadata: dict) -> np.ndarray:
    """The voxel size (z, y, x nm) at which :func:`segment` runs a model on a volume of ``voxel_size_nm``.

    An axis inside the range of voxel sizes the model was trained at
    (``voxel_size_range_nm``; a single ``voxel_size_nm`` for checkpoints
    without a range), give or take :data:`RESAMPLE_TOLERANCE`, keeps its voxel
    size.  An axis finer than the range is resampled to the range's finest
    voxel size.  An axis coarser than it is resampled to the range's coarsest,
    unless every axis is coarser: then the volume goes to the model's median
    training voxel size (``voxel_size_nm``).  Chosen on tuning phantoms
    (docs/benchmarks.md, "Resampling coarse voxels"), with the default model
    (30-40 nm, median 35 nm): 50 and 60 nm volumes scored higher DMV and
    nucleus Dice at 35 nm than at 40 nm in 8 cells of 8, 60 nm z voxels under
    30 nm xy voxels lower at (35, 30, 30) nm than at (40, 30, 30) nm in 4 of
    4, and 20 and 25 nm volumes did best at 30 nm.

    A checkpoint that names a ``segment_voxel_size_nm``
    (:class:`sxtseg.train.TrainingConfig`) is run at that voxel size on every
    axis that differs from it by more than the tolerance, whatever the
    training range.

    Parameters
    ----------
    voxel_size_nm : sequence of 3 float
        The volume's voxel size, (z, y, x) in nm.
    metadata : dict
        A checkpoint's metadata (``load_model(...).metadata``).

    Returns
    -------
    numpy.ndarray
        (z, y, x) voxel size in nm; equal to ``voxel_size_nm`` where no resampling happens.

    Examples
    --------
    >>> meta = {"voxel_size_nm": [35.0] * 3, "voxel_size_range_nm": [[30.0] * 3, [40.0] * 3]}
    >>> segmentation_voxel_size_nm([60.0, 60.0, 60.0], meta).tolist()
    [35.0, 35.0, 35.0]
    >>> segmentation_voxel_size_nm([60.0, 30.0, 30.0], meta).tolist()
    [40.0, 30.0, 30.0]
    >>> segmentation_voxel_size_nm([40.0, 32.0, 32.0], {**meta, "segment_voxel_size_nm": [30.0] * 3}).tolist()
    [30.0, 32.0, 32.0]
    """
    voxel_nm = np.asarray(voxel_size_nm, float)
    if metadata.get("segment_voxel_size_nm") is not None:
        preferred = np.asarray(metadata["segment_voxel_size_nm"], float)
        return np.where(np.abs(voxel_nm - preferred) > RESAMPLE_TOLERANCE * preferred, preferred, voxel_nm)
    low, median, high = _training_range(metadata)
    coarse = voxel_nm > high * (1 + RESAMPLE_TOLERANCE)
    target = np.where(voxel_nm < low * (1 - RESAMPLE_TOLERANCE), low, voxel_nm)
    return np.where(coarse, median if coarse.all() else high, target)


def _zoom(voxel_nm: np.ndarray, meta: dict) -> np.ndarray | None:
    """Zoom factors from the volume's grid to the grid the model segments it on
    (:func:`segmentation_voxel_size_nm`), or None when within tolerance."""
    ratio = voxel_nm / segmentation_voxel_size_nm(voxel_nm, meta)
    return ratio if np.any(ratio != 1) else None


def _voxel_sizes_record(volume: Volume, meta: dict) -> dict | None:
    """The volume's voxel size, the one the model ran at and the model's training range (z y x nm)."""
    if volume.voxel_size is None:
        return None
    voxel_nm = np.array(volume.voxel_size_in("nm"), float)
    low, _, high = _training_range(meta)
    return {"input": voxel_nm.tolist(), "segmented": segmentation_voxel_size_nm(voxel_nm, meta).tolist(),
            "training_range": [low.tolist(), high.tolist()]}


def _range_factor(voxel_nm: np.ndarray, meta: dict) -> np.ndarray:
    """How far each axis lies outside the training range: voxel size / the nearest trained voxel size."""
    low, _, high = _training_range(meta)
    return voxel_nm / np.clip(voxel_nm, low, high)


#: The inference copy made last: (a weak reference to its network, :func:`_network_key` of it, the copy).
_LAST_COPY: list = [None]


def _network_key(net: torch.nn.Module) -> tuple:
    """What an inference copy of ``net`` is made from: its weights and buffers, its modules and their hooks.

    The tensors are hashed by content (4.6 ms for the shipped U-Net, against 30-50 ms to fold a new
    copy), so any change of a weight is seen, however it was made (an optimiser step, an edit
    through ``.data`` or NumPy, ``load_state_dict``); the modules by name, type, ``extra_repr``
    (kernel sizes, ``eps``, dropout rates...) and hook handles, so a swapped layer or a changed
    setting is seen too.  Python attributes that a module's ``extra_repr`` does not show are not.
    """
    from .models.checkpoint import tensor_hash

    tensors = dict(net.named_parameters())
    tensors.update(("buffer:" + name, buffer) for name, buffer in net.named_buffers())  # persistent or not
    modules = tuple((name, type(m), m.extra_repr(), tuple(m._forward_hooks), tuple(m._forward_pre_hooks))
                    for name, m in net.named_modules())
    return tensor_hash(tensors), modules


def _inference_net(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The network to run: on a CPU its inference copy (a copy is not copied again).

    The copy made last is reused while it is of the same network with the same
    :func:`_network_key`, so that calling ``segment`` on many cells does not fold the
    network again for each (30-50 ms for the shipped U-Net, 2-3 % of a 96x256x256 cell).  One
    copy is kept, the last: memory for one more network, whatever the number of networks used.
    """
    if device.type != "cpu" or hasattr(net, "fused"):
        return net
    from .models.fuse import inference_copy

    key = _network_key(net)
    last = _LAST_COPY[0]
    if last is not None and last[0]() is net and last[1] == key:
        return last[2]
    fast = inference_copy(net)
    _LAST_COPY[0] = (weakref.ref(net), key, fast)
    return fast


def _blocks(shape, block_shape):
    for index in np.ndindex(*[-(-n // b) for n, b in zip(shape, block_shape)]):
        lo = np.array(index) * block_shape
        yield index, lo, np.minimum(lo + block_shape, shape)


def _predict_block(region: np.ndarray, inner: tuple[slice, ...], net, meta: dict, device, *, low: float,
                   high: float, zoom: np.ndarray | None, overlap: float, batch_size: int,
                   softmax: bool = True, precision: str = "float32", smooth_sigma: float = 0.0,
                   mirror: bool = False) -> np.ndarray:
    """Classes (uint8, inner shape) or probabilities (C, *inner shape) of the inner part of a haloed region.

    On a CPU without ``softmax``, a 3-D model on a region of at least one window gets its classes from
    :func:`sxtseg.slab_windows.window_classes` (the same blending, one window's depth of logits
    held at a time); other cases get MONAI's ``sliding_window_inference`` through
    :func:`predict_array`: probabilities with ``softmax``, else logits.  Resampled blocks always get
    probabilities: their linear interpolation (:func:`resample_linear`) is what is argmaxed.
    ``smooth_sigma`` (voxels): a Gaussian filter first (:mod:`sxtseg.denoise`; the halo covers its
    reach).  ``mirror``: logits averaged over the mirror images of every window (:func:`predict_array`).
    """
    from scipy import ndimage

    from .slab_windows import fits, window_classes

    image = region.astype(np.float32)  # a copy: the region may be a view of the caller's array
    if smooth_sigma > 0:
        image = ndimage.gaussian_filter(image, smooth_sigma, mode="nearest")
    image -= low  # in place: one block-sized buffer fewer (the same float32 arithmetic)
    image /= high - low
    if zoom is not None:
        image = resample_linear(image, [int(round(n * z)) for n, z in zip(image.shape, zoom)])
    patch = meta["input"]["patch_size"]
    spatial_dims = meta["architecture"]["spatial_dims"] if "architecture" in meta else len(patch)
    device = resolve_device(device)
    if device.type == "cpu" and not softmax and zoom is None and spatial_dims == 3 and fits(image.shape, patch):
        # (a GPU blends on the GPU, in MONAI's function)
        runnable = _runnable(net, device, precision=precision, mirror_dims=spatial_dims if mirror else 0)
        return window_classes(runnable, image, patch_size=patch, overlap=overlap, batch_size=batch_size, keep=inner)
    probs = predict_array(net, image, patch_size=patch, spatial_dims=spatial_dims,
                          context=meta["input"].get("context_slices", 0), overlap=overlap,
                          batch_size=batch_size, device=device, softmax=softmax or zoom is not None,
                          precision=precision, mirror=mirror)
    if zoom is not None:
        probs = resample_linear(probs, region.shape)
    return probs[(slice(None), *inner)]


def resample_linear(array: np.ndarray, shape) -> np.ndarray:
    """``array`` (Z, Y, X, or C, Z, Y, X channel by channel) resampled linearly to ``shape`` (Z, Y, X), float32.

    Voxels are areas: output voxel centres map to input coordinates as
    ``(i + 0.5) * n_in / n_out - 0.5``, and coordinates past the border take
    the border voxel: ``scipy.ndimage.zoom(array, order=1, grid_mode=True,
    mode="nearest")`` to an output of ``shape``, computed by PyTorch's
    trilinear interpolation (``align_corners=False``) on every core.  It
    agrees with SciPy's to float32 rounding (within 1e-5 of values of order
    1, tested) and took 0.56 s instead of 9.5 s for 9 probability maps of
    171x512x512 to 128x384x384 on 2 cores.

    Examples
    --------
    >>> import numpy as np
    >>> resample_linear(np.arange(8, dtype=np.float32).reshape(2, 2, 2), (4, 4, 4))[0, 0].tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array, np.float32))
    batch = tensor[None, None] if tensor.ndim == 3 else tensor[None]
    with torch.no_grad():
        out = torch.nn.functional.interpolate(batch, size=tuple(int(n) for n in shape), mode="trilinear",
                                              align_corners=False)
    return out[0, 0].numpy() if tensor.ndim == 3 else out[0].numpy()


#: Version of the resume manifest (``segment.json``); a manifest of another version is not resumed.
MANIFEST_FORMAT = 2
#: What segment() writes into its output folder (anything else there is someone else's data).
_OWN_FILES = {"classes", "probabilities", "blocks", "compartments", "segment.json", "segment.json.tmp"}


def _weights_hash(model, net, meta: dict) -> str:
    """sha256 of the weights: the checkpoint's (verified when loaded) or, for a module in memory, computed."""
    from .models.checkpoint import tensor_hash

    if isinstance(model, (str, os.PathLike)) and meta.get("sha256"):
        return meta["sha256"]
    return tensor_hash(net.state_dict())  # a module in memory may have been trained since it was loaded


def _manifest(volume: Volume, sample: np.ndarray, model, net, meta: dict, device, block_shape, halo, overlap,
              probabilities, low, high, zoom, calibration, precision: str, smooth_sigma: float = 0.0,
              mirror: bool = False) -> dict:
    """Everything that decides segment()'s output: input content, weights, parameters, device and precision."""
    from .fingerprint import content_fingerprint

    return {"format": MANIFEST_FORMAT,
            "input": {"name": volume._name(), "voxel_size": list(volume.voxel_size) if volume.voxel_size else None,
                      "unit": volume.unit, **content_fingerprint(volume, sample)},
            "model_sha256": _weights_hash(model, net, meta),
            "parameters": {"block_shape": [int(b) for b in block_shape], "halo": [int(h) for h in halo],
                           "overlap": float(overlap), "probabilities": bool(probabilities),
                           "intensity_range": [float(low), float(high)],
                           "zoom": None if zoom is None else [float(z) for z in zoom],
                           "calibration": {"method": calibration.method, "scale": calibration.scale,
                                           "offset": calibration.offset},
                           "smooth_sigma_voxels": float(smooth_sigma), "mirror": bool(mirror)},
            "device": {"type": device.type, "precision": precision}}


def _prepare_output(output: Path, manifest: dict, overwrite: bool) -> None:
    """Start ``output`` afresh, or check that it holds an unfinished run of exactly this work.

    Raises
    ------
    OutputExistsError
        ``output`` holds other data, or a run whose manifest differs (the
        message lists what changed), and not ``overwrite``.
    """
    from .fingerprint import explain

    manifest_path = output / "segment.json"
    if output.exists() and overwrite:
        shutil.rmtree(output)
    if output.exists() and not manifest_path.exists():
        foreign = sorted(p.name for p in output.iterdir() if p.name not in _OWN_FILES)
        if foreign:
            raise OutputExistsError(f"{output}: holds other data ({', '.join(foreign[:5])}); choose another output "
                                    "or pass overwrite=True to replace it")
        shutil.rmtree(output)  # a run stopped before its manifest was written: nothing to resume
    if output.exists():
        try:
            previous = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            previous = None
        if not isinstance(previous, dict) or previous.get("format") != MANIFEST_FORMAT:
            what = ["its manifest is unreadable or from another sxtseg version"]
        else:
            what = explain(previous, manifest)
        if what:
            raise OutputExistsError(
                f"{output}: holds an unfinished segmentation of other work, so it cannot be resumed: "
                f"{'; '.join(what[:6])}{'; ...' if len(what) > 6 else ''}. Pass overwrite=True (--overwrite) "
                f"to start over, or delete {output}")
        return


def segment(
    volume: Volume,
    model="default",
    *,
    output=None,
    device="auto",
    block_shape=None,
    halo=DEFAULT_HALO,
    overlap: float = 0.25,
    batch_size: int = 4,
    probabilities: bool = False,
    client=None,
    calibration="auto",
    denoise="auto",
    allow_large_resampling: bool = False,
    precision: str = "auto",
    mirror: bool = True,
    compartment_model="auto",
    overwrite: bool = False,
    progress: bool = True,
    on_block=None,
) -> Volume:
    """Segment a volume into classes, block by block.

    Parameters
    ----------
    volume : Volume
        A tomogram (3-D, lazy or in memory, with a known voxel size) in any
        grey-value convention: it is calibrated to LAC first (``calibration``).
    model : str, Path or torch.nn.Module
        A shipped model name (``"default"``), a checkpoint file, or a network
        loaded with :func:`sxtseg.models.load_model` (its ``metadata`` gives
        classes, voxel size, normalisation and patch size).
    output : str or Path, optional
        Zarr folder for ``classes`` (uint8, chunks = ``block_shape``),
        ``probabilities`` (float16, (C, Z, Y, X)) and the resume bookkeeping
        (``segment.json``, ``blocks/``).  Default: a temporary folder, and the
        result is loaded into memory.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    block_shape : tuple of int, optional
        Voxels per block (z, y, x), clipped to the volume.  Default: the
        whole volume as one block when it has no more voxels than
        :data:`DEFAULT_BLOCK_SHAPE` (128x512x512) and no ``client`` is given
        (no halo windows: a 256^3 volume takes 125 windows instead of 150),
        otherwise blocks of that shape.  Both are counted on the grid the
        model runs on: a volume upsampled by 4/3 per axis (40 nm segmented at
        30 nm) gets blocks of 96x384x384 of its own voxels.
    halo : tuple of int
        Voxels read on every side of a block and dropped after inference, so
        that blocks agree with whole-volume inference at their borders.
    overlap : float
        Overlap of the sliding windows inside a block.
    batch_size : int
        Windows per forward pass (bounds GPU memory).
    probabilities : bool
        Also write class probabilities.
    client : dask.distributed.Client, optional
        Run the blocks on this cluster (one block per task; give each worker
        one GPU); by default blocks run one after another here, with the
        model using every core.
    calibration : str, tuple, dict or CalibrationRecord
        How grey values are brought to LAC (1/µm) before the model's own
        normalisation: ``"auto"`` (default; see :func:`sxtseg.calibrate`),
        ``"none"`` (the volume is already in LAC), ``(scale, offset)``, or a
        record from :func:`sxtseg.calibrate`.
    denoise : {"auto", "none"}, float or dict
        Smoothing of the calibrated volume before the network
        (:func:`sxtseg.denoise.match_noise`): ``"auto"`` (default) smooths
        only a volume whose noise is over 1.25x the top of what the model was
        trained on, down to the middle of that range; ``"none"``; a sigma in
        voxels; or a record (dict) from an earlier run, applied as it is.
        The record is in ``metadata["denoise"]``.
    allow_large_resampling : bool
        Run even when the voxel size needs resampling by more than 2x (or
        less than 0.5x) on some axis to reach the model's training voxel
        sizes; refused by default (:func:`check_voxel_size`).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Arithmetic of the network (:func:`resolve_precision`): ``"auto"``
        is float16 on CUDA, bfloat16 on a CPU with native bfloat16
        (AVX512_BF16 or AMX: the network about 2x faster there, 99.99% of
        voxels as in float32 on held-out phantoms, docs/benchmarks.md),
        else float32.  Recorded in ``segment.json``: a resume runs in the same.
    mirror : bool
        Test-time mirroring (default): the network's logits averaged over
        the 8 mirror images of every window (:mod:`sxtseg.models.mirror`).
        Better Dice on held-out phantoms (docs/benchmarks.md, "Test-time
        mirroring") for 8x the network's arithmetic; False runs each window
        once (6-7x faster on a CPU).
    compartment_model : "auto", None, str or Path
        A second model whose background, cytoplasm, nucleus and nucleolus
        replace the main model's where both call a voxel a compartment
        (:mod:`sxtseg.compartments`).  ``"auto"`` (default): for the shipped
        ``"default"`` model and a volume coarser than its training voxels or
        a cell thinner than 1.4 µm in its segmentation (with ice found by the
        calibration and no missing wedge), the shipped ``"plain"`` model,
        whose nucleus was better on such volumes (on coarse volumes its
        DMV voxels touching the default model's DMVs are added to them);
        None: the main model alone; a name or a path: that model, always.
        It runs with the same settings (into ``output``/compartments), for
        up to twice the time (1.0-1.6x a run on coarse phantoms).
        ``metadata["segmentation"]["compartments"]`` says which model, if
        any, and why.  ``probabilities`` stay the main model's.
    overwrite : bool
        Start again even if ``output`` holds a run with other settings.
    progress : bool
        A tqdm bar over the blocks.
    on_block : callable, optional
        Called as ``on_block(done, total)`` after every block written (blocks
        finished before a resume count as done).  An exception it raises
        stops the segmentation there, the finished blocks kept for a resume:
        a GUI's cancel button raises one.  With a compartment model it is
        called through that model's pass too, counting its blocks afresh.

    Returns
    -------
    Volume
        uint8 class codes (lazy, read from ``output``), with the input's
        voxel size; ``metadata["segmentation"]`` records the settings,
        ``metadata["calibration"]`` the calibration record and
        ``metadata["denoise"]`` the smoothing and the noise measured.

    Raises
    ------
    ShapeError
        The volume is not 3-D.
    VoxelSizeError
        The voxel size is unknown, or needs resampling beyond
        :data:`RESAMPLE_LIMITS` (and not ``allow_large_resampling``).
    InvalidDataError
        The volume holds NaN or infinite values.
    OutputExistsError
        ``output`` holds an unfinished run with other settings (and not ``overwrite``).
    """
    import zarr

    if not isinstance(volume, Volume):
        raise TypeError("volume must be a sxtseg.Volume")
    if volume.ndim != 3:
        raise ShapeError(f"{volume._name()}: segmentation needs a 3-D volume, got shape {volume.shape}")
    if volume.voxel_size is None:
        raise VoxelSizeError(f"{volume._name()}: the voxel size is unknown; give it when opening "
                             "(open_volume(..., voxel_size=...)) so the model sees the scale it was trained at")
    requested_device, requested_precision, requested_blocks = device, precision, block_shape
    net, meta, device = _model_and_meta(model, device)
    precision = _precision_for(precision, device, on_cluster=client is not None)
    in_memory = output is None
    if in_memory:
        import tempfile

        output = Path(tempfile.mkdtemp(prefix="sxtseg-segment-")) / "segmentation.zarr"
    output = Path(output)
    zoom = check_voxel_size(volume, meta, allow_large_resampling=allow_large_resampling)
    if block_shape is None:
        # a block is bounded on the grid the network runs on: upsampled (a 40 nm volume segmented at
        # 30 nm), it holds fewer of the volume's voxels
        growth = np.ones(3) if zoom is None else np.maximum(zoom, 1.0)
        fits = client is None and np.prod(np.ceil(np.array(volume.shape) * growth)) <= np.prod(DEFAULT_BLOCK_SHAPE)
        block_shape = volume.shape if fits else np.maximum(np.array(DEFAULT_BLOCK_SHAPE) // growth, 1)
    block_shape = np.minimum(np.array(block_shape, int), volume.shape)
    halo = np.array(halo, int)
    from .calibration import calibrate
    from .heap import return_large_buffers_to_os, wanted
    from .io._write import write_text_atomically

    if wanted():  # SXTSEG_MALLOC_TUNING=on: less peak memory per block, 30-35% slower on a CPU (sxtseg.heap)
        return_large_buffers_to_os()
    source = volume
    volume, record = calibrate(volume, calibration)
    if zoom is not None:
        voxel_nm = np.array(volume.voxel_size_in("nm"), float)
        outside = bool(np.any(_range_factor(voxel_nm, meta) != 1))
        (log.warning if outside else log.info)(
            "%s: voxel size %s nm (the model's training voxel sizes: %s nm); the model segments it at %s nm: "
            "resampling each block", volume._name(), voxel_nm.tolist(),
            meta.get("voxel_size_range_nm", meta["voxel_size_nm"]),
            segmentation_voxel_size_nm(voxel_nm, meta).tolist())
    low, high, sample = _normalization(volume, meta)  # one strided read serves both
    check_input_values(volume, sample, low, high)
    from .denoise import match_noise

    smoothing = dict(denoise) if isinstance(denoise, dict) else match_noise(volume, meta, denoise)
    if smoothing["sigma_voxels"] > 0:
        log.info("%s: smoothed before the network, Gaussian sigma %.3g voxels: %s", volume._name(),
                 smoothing["sigma_voxels"], smoothing["note"])
    manifest = _manifest(source, sample, model, net, meta, device, block_shape, halo, overlap, probabilities, low, high,
                         zoom, record, precision, smoothing["sigma_voxels"], mirror)
    n_classes = len(meta["classes"])

    manifest_path = output / "segment.json"
    source_path = (source.metadata.get("source") or {}).get("path")
    if source_path:
        inside = Path(source_path).resolve()
        if inside == output.resolve() or output.resolve() in inside.parents:
            raise OutputExistsError(f"{output}: is (or holds) the input {source_path}; choose another output")
    _prepare_output(output, manifest, overwrite)
    if not manifest_path.exists():
        output.mkdir(parents=True, exist_ok=True)
        zarr.create_array(output / "classes", shape=volume.shape, chunks=tuple(block_shape), dtype="uint8",
                          fill_value=0, overwrite=True)
        if probabilities:
            zarr.create_array(output / "probabilities", shape=(n_classes, *volume.shape),
                              chunks=(n_classes, *block_shape), dtype="float16", fill_value=0, overwrite=True)
        (output / "blocks").mkdir(exist_ok=True)
        write_text_atomically(manifest_path, json.dumps(manifest, indent=1))  # last: ready for blocks

    every_block = list(_blocks(volume.shape, block_shape))
    todo = [(index, lo, hi) for index, lo, hi in every_block if not (output / "blocks" / _marker(index)).exists()]
    settings = {"low": low, "high": high, "zoom": zoom, "overlap": overlap, "batch_size": batch_size,
                "precision": precision, "smooth_sigma": float(smoothing["sigma_voxels"]), "mirror": bool(mirror)}
    scattered = None
    if client is not None and todo and source.in_memory:
        # sent to the cluster once; each block task slices its region there (a dask slice of an in-memory
        # array would pickle the whole array into every task)
        scattered = client.scatter(source.to_numpy(), hash=False)
    jobs = []
    for index, lo, hi in todo:
        r_lo = np.maximum(lo - halo, 0)
        r_hi = np.minimum(hi + halo, volume.shape)
        where = tuple(slice(int(a), int(b)) for a, b in zip(r_lo, r_hi))
        if scattered is not None:
            region = ("scattered", scattered, where, record)
        else:  # a lazy slice: read from the file by whoever computes it
            region = volume.data[where]
        inner = tuple(slice(int(a), int(b)) for a, b in zip(lo - r_lo, hi - r_lo))
        jobs.append((index, lo, hi, region, inner))
    done_before = len(every_block) - len(jobs)  # blocks finished before a resume count as done

    def report(done):
        if on_block is not None:
            on_block(done_before + done, len(every_block))
    try:
        # here: one inference copy for every block (predict_array would make one per block)
        runner = model if client is not None else _inference_net(net, device)
        _run_jobs(jobs, output, runner, meta,
                  requested_device if client is not None else device, settings, probabilities, client, progress,
                  on_block=report)
    except BaseException:
        if in_memory:  # nothing to resume from a temporary folder
            shutil.rmtree(output.parent, ignore_errors=True)
        raise

    classes = da.from_zarr(str(output / "classes"))
    from .compartments import (COMPARTMENT_MODELS, DMV_GROWTH_DEPTH, GROW_DMVS_WHEN_COARSE, combine,
                               compartment_model_for)
    from .quality import cell_thickness_um, coarse_axes

    voxel_nm, coarsest_nm = volume.voxel_size_in("nm"), _training_range(meta)[2]
    coarse = bool(coarse_axes(voxel_nm, coarsest_nm))
    thickness = None  # measured only where it decides: the automatic rule, on a volume that is not coarse
    paired = isinstance(model, str) and model in COMPARTMENT_MODELS
    if compartment_model == "auto" and not coarse and paired:
        thickness = cell_thickness_um(Volume(classes, voxel_size=volume.voxel_size, unit=volume.unit))
    second, reason = compartment_model_for(model, compartment_model, voxel_nm, coarsest_nm, record, volume,
                                           thickness_um=thickness)
    compartments = {"model": None if second is None else str(second), "reason": reason}
    if second is not None:
        log.info("%s: %s", volume._name(), reason)
        try:
            other = segment(source, second, output=None if in_memory else output / "compartments",
                            device=requested_device, block_shape=requested_blocks, halo=halo, overlap=overlap,
                            batch_size=batch_size, client=client, calibration=record, denoise=denoise,
                            allow_large_resampling=allow_large_resampling, precision=requested_precision,
                            mirror=mirror, compartment_model=None, overwrite=overwrite, progress=progress,
                            on_block=on_block)
        except BaseException:
            if in_memory:
                shutil.rmtree(output.parent, ignore_errors=True)
            raise
        # the main model's DMVs with the second model's boundaries, on coarse volumes under the automatic rule
        grow = compartment_model == "auto" and GROW_DMVS_WHEN_COARSE and coarse
        classes = da.map_overlap(combine, classes, other.data.rechunk(classes.chunks),
                                 depth=DMV_GROWTH_DEPTH if grow else 0, boundary="none", dtype=classes.dtype,
                                 grow_dmvs=grow)
        compartments.update(model_sha256=other.metadata["segmentation"]["model_sha256"], dmvs_grown=grow)
    result = Volume(classes, voxel_size=volume.voxel_size, unit=volume.unit, axes=volume.axes,
                    metadata={"segmentation": {**manifest, "output": str(output),
                                               "classes": meta["classes"],
                                               "voxel_sizes_nm": _voxel_sizes_record(volume, meta),
                                               "compartments": compartments},
                              "calibration": record.to_dict(), "denoise": smoothing})
    if in_memory:
        result = result.compute()
        shutil.rmtree(output.parent, ignore_errors=True)
    return result


def _marker(index) -> str:
    return "block-" + "-".join(str(int(i)) for i in index)


def _write_block(output: Path, index, lo, hi, probs: np.ndarray, probabilities: bool) -> None:
    """Write one block's classes (given, or the argmax of its probabilities or logits; and the probabilities), then mark it."""
    import zarr

    from sxtseg.kernels import argmax_channels

    where = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    classes = probs if probs.ndim == len(where) else argmax_channels(probs)
    zarr.open_array(output / "classes", mode="r+")[where] = classes
    if probabilities:
        zarr.open_array(output / "probabilities", mode="r+")[(slice(None), *where)] = probs.astype(np.float16)
    (output / "blocks" / _marker(index)).touch()  # only after the data is written


def _block_job(region, inner, index, lo, hi, output, model, meta, device, settings, probabilities):
    """One block, start to finish (runs on a dask worker; loads the model once per process)."""
    if isinstance(model, (str, os.PathLike)):
        net, meta, device = _model_and_meta(model, device)
    else:
        net = model
    if isinstance(region, tuple):  # ("scattered", the input array, region, calibration record): calibrate here
        _, array, where, record = region
        region = record.to_lac(np.asarray(array[where]))
    elif hasattr(region, "compute"):  # a dask array slice of the input: read it here, on this worker
        region = region.compute(scheduler="sync")
    probs = _predict_block(np.asarray(region), inner, net, meta, device, softmax=probabilities, **settings)
    _write_block(Path(output), index, lo, hi, probs, probabilities)
    return index


def _run_jobs(jobs, output, model, meta, device, settings, probabilities, client, progress, on_block=None):
    from tqdm.auto import tqdm

    from .heap import release_free_memory

    bar = tqdm(total=len(jobs), desc="segment", unit="block", disable=not progress)
    if client is None:
        for done, (index, lo, hi, region, inner) in enumerate(jobs, start=1):
            _block_job(region.compute(), inner, index, lo, hi, output, model, meta, device, settings, probabilities)
            if len(jobs) > 1:  # what a block freed goes back to the system: not held through the next block
                release_free_memory()  # and the later stages (one block: nothing to gain, pages to fault again)
            bar.update()
            if on_block is not None:
                on_block(done)
    else:
        from distributed import as_completed

        if not isinstance(model, (str, os.PathLike)):
            raise InvalidArgumentError("with a dask cluster, give the model as a name or checkpoint path "
                                       "(each worker loads it once)")
        workers = client.scheduler_info().get("workers", {}).values()
        # workers started with --resources GPU=1 run one block at a time each (one model per GPU)
        resources = {"GPU": 1} if any("GPU" in w.get("resources", {}) for w in workers) else None
        futures = [client.submit(_block_job, region, inner, index, lo, hi, str(output), str(model), None,
                                 str(device), settings, probabilities, pure=False, resources=resources)
                   for index, lo, hi, region, inner in jobs]
        for done, future in enumerate(as_completed(futures), start=1):
            future.result()
            bar.update()
            if on_block is not None:
                on_block(done)
    bar.close()
