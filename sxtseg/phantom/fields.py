"""Smooth random fields: the within-class texture and correlated noise (internal)."""

from __future__ import annotations

import math

import numpy as np


def _interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights of linear interpolation from ``n_in`` nodes to ``n_out`` points."""
    position = np.linspace(0, n_in - 1, n_out)
    left = np.clip(np.floor(position).astype(int), 0, n_in - 2)
    weight = (position - left).astype(np.float32)
    matrix = np.zeros((n_out, n_in), np.float32)
    matrix[np.arange(n_out), left] = 1 - weight
    matrix[np.arange(n_out), left + 1] = weight
    return matrix


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, int, int], voxel_size_nm: np.ndarray, length_nm: float
) -> np.ndarray:
    """A smooth random field (float32, std ~1) with a correlation length of about ``length_nm``.

    Gaussian noise on a coarse grid (nodes ``length_nm`` apart, at least two
    voxels), linearly interpolated to the full grid one axis at a time.
    """
    steps = [max(2.0, length_nm / float(v)) for v in voxel_size_nm]
    coarse_shape = tuple(int(math.ceil(n / step)) + 2 for n, step in zip(shape, steps))
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    mz, my, mx = (_interpolation_matrix(n, c) for n, c in zip(shape, coarse_shape))
    field = np.einsum("ijk,xk->ijx", coarse, mx)
    field = np.einsum("ijx,yj->iyx", field, my)
    # no optimize=True: that hands the contraction to BLAS, whose summation order (so the last bits) depends on the CPU
    return np.einsum("iyx,zi->zyx", field, mz)
