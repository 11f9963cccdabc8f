"""Local maxima of an image inside a mask, over a footprint, and seeds grown by a footprint.

What seeding a distance-transform watershed needs, on one object's crop:
the voxels that are the largest of their neighbourhood, and those peaks
grown into seeds.  :func:`local_maxima` gives the peaks
``skimage.feature.peak_local_max(image, footprint=..., labels=mask,
exclude_border=False)`` finds when that footprint is a ball or a box (any
footprint that holds every offset nearer the centre, axis by axis, than one
it holds; see below), as a mask, without a maximum filter over the whole
box: each voxel stops comparing at its first larger neighbour, and the
neighbours are tried nearest first.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

__all__ = ["dilate_within", "local_maxima"]


@numba.njit(cache=True, nogil=True)
def _maxima(image, mask, offsets, threshold, out):  # pragma: no cover - compiled
    nz, ny, nx = image.shape
    n_offsets = offsets.shape[0]
    maxima = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not mask[z, y, x]:
                    continue
                value = image[z, y, x]
                peak = True
                for k in range(n_offsets):
                    zz = z + offsets[k, 0]
                    yy = y + offsets[k, 1]
                    xx = x + offsets[k, 2]
                    if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx and mask[zz, yy, xx] \
                            and image[zz, yy, xx] > value:
                        peak = False
                        break
                if peak:
                    maxima += 1
                    if value > threshold:
                        out[z, y, x] = True
    return maxima


@numba.njit(cache=True, nogil=True)
def _dilate(seeds, mask, offsets, out):  # pragma: no cover - compiled
    nz, ny, nx = seeds.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not seeds[z, y, x]:
                    continue
                for k in range(offsets.shape[0]):
                    zz = z + offsets[k, 0]
                    yy = y + offsets[k, 1]
                    xx = x + offsets[k, 2]
                    if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx and mask[zz, yy, xx]:
                        out[zz, yy, xx] = True


def _offsets(footprint: np.ndarray, with_centre: bool) -> np.ndarray:
    """The footprint's offsets from its centre, nearest first (int64, shape (n, 3)); cached by content."""
    footprint = np.asarray(footprint, bool)
    if footprint.ndim != 3 or any(n % 2 == 0 for n in footprint.shape):
        raise ValueError(f"footprint must be a 3D array of odd sides, not of shape {footprint.shape}")
    return _offsets_of(footprint.shape, np.packbits(footprint).tobytes(), with_centre)


@functools.lru_cache(maxsize=32)
def _offsets_of(shape: tuple[int, ...], packed: bytes, with_centre: bool) -> np.ndarray:
    footprint = np.unpackbits(np.frombuffer(packed, np.uint8), count=int(np.prod(shape))).reshape(shape)
    offsets = np.argwhere(footprint) - np.array(shape) // 2
    if not with_centre:
        offsets = offsets[np.any(offsets != 0, axis=1)]
    order = np.argsort((offsets.astype(np.float64) ** 2).sum(axis=1), kind="stable")
    offsets = np.ascontiguousarray(offsets[order], dtype=np.int64)
    offsets.flags.writeable = False  # shared between calls
    return offsets


def _check(name: str, array: np.ndarray, shape) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or (shape is not None and array.shape != shape):
        raise ValueError(f"{name} must be a 3D array{'' if shape is None else f' of shape {shape}'}, "
                         f"not of shape {array.shape}")
    return np.ascontiguousarray(array)


def local_maxima(image: np.ndarray, footprint: np.ndarray, mask: np.ndarray | None = None,
                 threshold: float = -np.inf) -> tuple[np.ndarray, int]:
    """Voxels of ``mask`` whose value is the largest within ``footprint`` around them (inside the mask).

    A voxel is a maximum when no voxel of the mask under the footprint,
    centred on it, is larger; ties are all maxima.  Neighbours outside the
    array or outside the mask are ignored.  For a footprint that holds every
    offset nearer the centre, axis by axis, than an offset it holds (a ball,
    an ellipsoid, a box), this is the peak mask of
    ``skimage.feature.peak_local_max(image, footprint=footprint,
    labels=mask, threshold_abs=threshold, exclude_border=False)`` for one
    label, except that scikit-image replaces it by the isolated voxels of
    the mask when every voxel is a maximum (check ``count == mask.sum()``).

    Parameters
    ----------
    image : (Z, Y, X) ndarray of numbers
        The values (a distance map, in nm, for seeding a watershed); no NaN.
    footprint : (a, b, c) ndarray of bool, odd sides
        The neighbourhood, centred on the voxel.
    mask : (Z, Y, X) ndarray of bool, optional
        Where maxima are looked for and which neighbours count (default: everywhere).
    threshold : float
        Maxima must be larger than this, in the image's unit (default: no threshold).

    Returns
    -------
    peaks : (Z, Y, X) ndarray of bool
        The maxima larger than ``threshold``.
    count : int
        How many voxels of the mask are maxima, before the threshold.

    Raises
    ------
    ValueError
        Shapes that differ or are not 3D, a footprint of even side, or NaN in ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((1, 1, 7)); image[0, 0] = [1, 3, 2, 2, 5, 5, 0]
    >>> peaks, count = local_maxima(image, np.ones((1, 1, 3), bool))
    >>> np.flatnonzero(peaks[0, 0]).tolist(), count
    ([1, 4, 5], 3)
    """
    image = _check("image", image, None)
    if image.dtype.kind == "f" and np.isnan(image).any():
        raise ValueError("image holds NaN: maxima are undefined there")
    mask = np.ones(image.shape, bool) if mask is None else _check("mask", mask, image.shape).astype(bool, copy=False)
    out = np.zeros(image.shape, bool)
    count = _maxima(image, mask, _offsets(footprint, with_centre=False), float(threshold), out)
    return out, int(count)


def dilate_within(seeds: np.ndarray, footprint: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Seeds grown by a footprint, kept inside a mask.

    The same as ``scipy.ndimage.binary_dilation(seeds, structure=footprint)
    & mask`` for a footprint symmetric about its centre, painting the
    footprint around each seed instead of filtering every voxel.

    Parameters
    ----------
    seeds : (Z, Y, X) ndarray of bool
        The voxels to grow (peaks).
    footprint : (a, b, c) ndarray of bool, odd sides
        The growth around each seed, centred on it.
    mask : (Z, Y, X) ndarray of bool
        Where the grown seeds may be.

    Returns
    -------
    (Z, Y, X) ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> seeds = np.zeros((1, 1, 7), bool); seeds[0, 0, 3] = True
    >>> mask = np.ones((1, 1, 7), bool); mask[0, 0, 4] = False
    >>> dilate_within(seeds, np.ones((1, 1, 3), bool), mask)[0, 0].astype(int).tolist()
    [0, 0, 1, 1, 0, 0, 0]
    """
    seeds = _check("seeds", seeds, None).astype(bool, copy=False)
    mask = _check("mask", mask, seeds.shape).astype(bool, copy=False)
    footprint = np.asarray(footprint, bool)
    if not np.array_equal(footprint, footprint[::-1, ::-1, ::-1]):
        raise ValueError("footprint must be symmetric about its centre")
    out = np.zeros(seeds.shape, bool)
    _dilate(seeds, mask, _offsets(footprint, with_centre=True), out)
    return out
