"""Block mean and block mode downsampling (for OME-Zarr image and label pyramids).

Both read each input voxel once and allocate only the output, which is what
makes them fast: a NumPy reshape-and-mean makes full-size temporaries, and
first-touching fresh memory costs as much as the arithmetic.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["downsample_mode", "downsample_mean"]


def _downsample(array, factors, kinds: str, what: str, kernel) -> np.ndarray:
    """Check the arguments, allocate the output and run a block kernel on it."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{what} must be 3-D, got shape {array.shape}")
    if array.dtype.kind not in kinds:
        raise ValueError(f"{what} must have an integer{' or float' if 'f' in kinds else ''} or bool dtype, got {array.dtype}")
    fz, fy, fx = (int(f) for f in factors)
    if min(fz, fy, fx) < 1:
        raise ValueError(f"factors must be >= 1, got {factors}")
    src = array.view(np.uint8) if array.dtype == bool else np.ascontiguousarray(array)
    out = np.empty((array.shape[0] // fz, array.shape[1] // fy, array.shape[2] // fx), src.dtype)
    if out.size:
        kernel(src, fz, fy, fx, out)
    return out.view(bool) if array.dtype == bool else out


@numba.njit(cache=True, nogil=True)
def _mode_blocks(labels, fz, fy, fx, out):  # pragma: no cover - compiled
    nz, ny, nx = out.shape
    n = fz * fy * fx
    values = np.empty(n, labels.dtype)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                k = 0
                for dz in range(fz):
                    for dy in range(fy):
                        for dx in range(fx):
                            values[k] = labels[z * fz + dz, y * fy + dy, x * fx + dx]
                            k += 1
                # most frequent value; ties go to the smallest label, so the
                # result does not depend on the order of voxels in the block
                best = values[0]
                best_count = 0
                for i in range(n):
                    v = values[i]
                    count = 0
                    for j in range(n):
                        if values[j] == v:
                            count += 1
                    if count > best_count or (count == best_count and v < best):
                        best = v
                        best_count = count
                out[z, y, x] = best
    return out


def downsample_mode(labels: np.ndarray, factors: tuple[int, int, int] = (2, 2, 2)) -> np.ndarray:
    """Downsample a label volume by taking the most frequent label in each block.

    Mean or linear interpolation would invent labels that are not there;
    the block mode keeps every output voxel a label that occurs in its block.
    Ties go to the smallest label.  Trailing voxels that do not fill a whole
    block are dropped (the output shape is ``shape // factors``).

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of integers
        Label volume.
    factors : tuple of int
        Block size along (z, y, x), in voxels.

    Returns
    -------
    (Z // fz, Y // fy, X // fx) ndarray
        Same dtype as ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 2, 4), np.uint8); a[:, :, 2:] = 7; a[0, 0, 2] = 1
    >>> downsample_mode(a).tolist()
    [[[0, 7]]]
    """
    return _downsample(labels, factors, "biu", "labels", _mode_blocks)


@numba.njit(cache=True, nogil=True)
def _mean_blocks_int(image, fz, fy, fx, out):  # pragma: no cover - compiled
    nz, ny, nx = out.shape
    n = fz * fy * fx
    half = n // 2
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                total = 0
                for dz in range(fz):
                    for dy in range(fy):
                        for dx in range(fx):
                            total += np.int64(image[z * fz + dz, y * fy + dy, x * fx + dx])
                # round half up, exactly, for negative sums too
                out[z, y, x] = (total + half) // n
    return out


@numba.njit(cache=True, nogil=True)
def _mean_blocks_float(image, fz, fy, fx, out):  # pragma: no cover - compiled
    nz, ny, nx = out.shape
    n = fz * fy * fx
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                total = 0.0
                for dz in range(fz):
                    for dy in range(fy):
                        for dx in range(fx):
                            total += image[z * fz + dz, y * fy + dy, x * fx + dx]
                out[z, y, x] = total / n
    return out


def downsample_mean(image: np.ndarray, factors: tuple[int, int, int] = (2, 2, 2)) -> np.ndarray:
    """Downsample an image by the mean of each block, keeping its dtype.

    Integer images are summed exactly (64-bit) and rounded half up; float
    images are summed in float64.  Trailing voxels that do not fill a whole
    block are dropped (the output shape is ``shape // factors``).

    Parameters
    ----------
    image : (Z, Y, X) ndarray
        Integer or float image.
    factors : tuple of int
        Block size along (z, y, x), in voxels.

    Returns
    -------
    (Z // fz, Y // fy, X // fx) ndarray
        Same dtype as ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(16, dtype=np.uint8).reshape(2, 2, 4)
    >>> downsample_mean(a).tolist()   # the two blocks average 6.5 and 8.5: half up
    [[[7, 9]]]
    """
    kernel = _mean_blocks_float if np.asarray(image).dtype.kind == "f" else _mean_blocks_int
    return _downsample(image, factors, "biuf", "image", kernel)
