"""Sliding-window classes of a 3-D volume, blended one z slab at a time.

MONAI's ``sliding_window_inference`` (what :func:`sxtseg.infer.predict_array`
runs) keeps the blended logits of the whole input, C float32 values per voxel
(1.06 GiB for 7 classes in a 144x512x512 block with its halo), and a count map,
until the last window is added.  :func:`window_classes` runs the same windows
in the same order with the same Gaussian weights (:func:`window_slices` and
:func:`gaussian_weights`, tested equal to MONAI's ``dense_patch_slices`` and
``compute_importance_map``; without importing MONAI), so every voxel gets
the same float32 sum, but it keeps only the planes that windows still to come
can reach: one window's depth (64 planes), and no count map.  As soon as a
row of windows of one z start is done, the planes before the next start are
final: their argmax is taken and they are dropped.  The classes are those of
MONAI's blending (its division by the summed weights, the same for every
class of a voxel, does not change the argmax; exact ties apart), with about
half the memory per block (docs/benchmarks.md, "Peak memory").

Only class labels come out: probabilities, resampled blocks, 2-D models and
inputs smaller than a window go through MONAI's function
(:func:`sxtseg.infer.predict_array`).

Examples
--------
>>> import numpy as np, torch
>>> net = torch.nn.Conv3d(1, 3, 3, padding=1)
>>> image = np.random.default_rng(0).random((40, 48, 48), dtype=np.float32)
>>> window_classes(net, image, patch_size=(32, 32, 32)).shape
(40, 48, 48)
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["fits", "gaussian_weights", "window_classes", "window_slices"]


def fits(image_shape, patch_size) -> bool:
    """Whether :func:`window_classes` can take an image: 3-D and at least one window in every dimension."""
    return len(image_shape) == 3 == len(patch_size) and all(n >= p for n, p in zip(image_shape, patch_size))


def _scan_interval(image_size, roi_size, overlap: float) -> tuple[int, ...]:
    """MONAI's window step: ``int(roi * (1 - overlap))`` (at least 1), the whole axis when the window spans it."""
    return tuple(r if r == n else max(int(r * (1 - overlap)), 1) for n, r in zip(image_size, roi_size))


def window_slices(image_size, roi_size, overlap: float) -> list[tuple[slice, ...]]:
    """The windows of MONAI's ``sliding_window_inference``, in its order (C order of the window starts).

    Along each axis a window starts every step (:func:`_scan_interval`) until
    one reaches the end; the last is moved back to end at the border.  The
    image must be at least one window in every dimension (:func:`fits`).

    Examples
    --------
    >>> [s[0] for s in window_slices((10, 4), (4, 4), 0.25)]
    [slice(0, 4, None), slice(3, 7, None), slice(6, 10, None)]
    """
    steps = _scan_interval(image_size, roi_size, overlap)
    starts = [[min(k * step, n - r) for k in range(-(-(n - r) // step) + 1)]  # ceil((n - r) / step) + 1 windows
              for n, r, step in zip(image_size, roi_size, steps)]
    return [tuple(slice(a, a + r) for a, r in zip(corner, roi_size)) for corner in itertools.product(*starts)]


def gaussian_weights(roi_size) -> torch.Tensor:
    """MONAI's Gaussian importance map of a window: sigma = size / 8 along each axis, floor max(smallest, 1e-3).

    The same float32 values as ``monai.data.utils.compute_importance_map(roi_size, "gaussian",
    sigma_scale=0.125)``, computed the same way (tested equal), without importing MONAI.
    """
    weight = None
    for n in roi_size:
        x = torch.arange(-(n - 1) / 2.0, (n - 1) / 2.0 + 1, dtype=torch.float)
        x = torch.exp(x**2 / (-2 * (n * 0.125) ** 2))
        weight = x if weight is None else weight.unsqueeze(-1) * x[(None,) * weight.ndim]
    return weight.clamp_(min=max(weight.min().item(), 1e-3))


@torch.no_grad()
def window_classes(net: torch.nn.Module, image: np.ndarray, *, patch_size, overlap: float = 0.25,
                   batch_size: int = 4, keep: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """The argmax class (uint8) of every voxel of ``image`` after Gaussian sliding-window blending.

    Parameters
    ----------
    net : torch.nn.Module
        On the CPU; returns logits (N, C, *patch) for windows (N, 1, *patch); C at most 256.
    image : (Z, Y, X) float32 ndarray
        The normalised input, at least ``patch_size`` in every dimension.
    patch_size : tuple of 3 int
        Window (z, y, x) in voxels.
    overlap : float
        Window overlap (0 to <1), as MONAI's.
    batch_size : int
        Windows per forward pass.
    keep : tuple of 3 slices, optional
        Only this part of the image is returned (a block without its halo);
        default: all of it.

    Returns
    -------
    ndarray of uint8
        Classes of ``image[keep]``.
    """
    from sxtseg.kernels import argmax_channels

    roi = tuple(int(p) for p in patch_size)
    if not fits(image.shape, roi):
        raise ValueError(f"window_classes needs a 3-D image at least {roi}, got {image.shape}")
    keep = keep or tuple(slice(0, n) for n in image.shape)
    keep = tuple(slice(*s.indices(n)[:2]) for s, n in zip(keep, image.shape))
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    slices = window_slices(image.shape, roi, overlap)
    weight = gaussian_weights(roi)
    _, ny, nx = image.shape
    out = np.zeros(tuple(s.stop - s.start for s in keep), np.uint8)
    depth = roi[0]
    logits = None  # (C, depth, Y, X): planes start .. start + depth of the blended sums
    start = slices[0][0].start

    def emit(z0: int, z1: int) -> None:
        """Planes z0..z1-1 (in the image) are final: their classes into ``out``."""
        lo, hi = max(z0, keep[0].start), min(z1, keep[0].stop)
        if lo >= hi:
            return
        region = (slice(lo - start, hi - start), keep[1], keep[2])
        out[lo - keep[0].start: hi - keep[0].start] = argmax_channels(logits.numpy(), region=region)

    for first in range(0, len(slices), batch_size):
        batch = slices[first: first + batch_size]
        windows = torch.cat([x[(slice(None), slice(None), *s)] for s in batch])
        result = net(windows).to(dtype=torch.float32, memory_format=torch.contiguous_format)
        result *= weight  # as MONAI weighs a batch: in place, then each window added
        for window, s in zip(result, batch):
            z = s[0].start
            if logits is None:
                logits = torch.zeros((window.shape[0], depth, ny, nx), dtype=torch.float32)
            if z != start:  # a new row of windows: the planes before it are final
                emit(start, z)
                shift = z - start
                kept = depth - shift  # planes the new row shares with the old one move to the front
                if kept > 0:
                    source = logits[:, shift:]
                    logits[:, :kept] = source if shift >= kept else source.clone()  # clone only if they overlap
                logits[:, max(kept, 0):] = 0
                start = z
            logits[(slice(None), slice(z - start, z - start + depth), s[1], s[2])] += window
    emit(start, image.shape[0])
    return out
