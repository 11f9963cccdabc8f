"""Overlap of two label volumes: how many voxels each pair of labels (a, b) shares.

The contingency table of two segmentations, the input of object matching
(which found object covers which true one) and of per-class Dice.  NumPy
would combine the two labels into one key per voxel and sort or count them
all; this kernel first compresses the volume into runs of voxels with the same
pair (objects are many voxels wide, so there are tens of times fewer runs than
voxels), in one pass, and sorts only the runs.

>>> import numpy as np
>>> from sxtseg.kernels import overlap_counts
>>> a = np.array([[0, 1, 1, 1, 2, 2]], np.uint8)
>>> b = np.array([[0, 0, 5, 5, 5, 0]], np.uint32)
>>> [x.tolist() for x in overlap_counts(a, b)]
[[0, 1, 1, 2, 2], [0, 0, 5, 0, 5], [1, 1, 2, 1, 1]]
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["overlap_counts"]


@numba.njit(cache=True, nogil=True)
def _count_runs(a, b):  # pragma: no cover - compiled
    """How many runs of equal (a, b) pairs there are in flat order."""
    n = 1 if a.shape[0] else 0
    for i in range(1, a.shape[0]):
        if a[i] != a[i - 1] or b[i] != b[i - 1]:
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _runs(a, b, run_a, run_b, run_n):  # pragma: no cover - compiled
    """The runs of equal (a, b) pairs in flat order: their pair and length, into the run arrays."""
    n = 0
    i = 0
    size = a.shape[0]
    while i < size:
        va, vb = a[i], b[i]
        j = i + 1
        while j < size and a[j] == va and b[j] == vb:
            j += 1
        run_a[n], run_b[n], run_n[n] = va, vb, j - i
        n += 1
        i = j


def overlap_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of labels that shares voxels in ``a`` and ``b``, with how many (0 counts as a label).

    Parameters
    ----------
    a, b : ndarray of integers, same shape
        Two label volumes (any integer types, both of at most 64 bits).

    Returns
    -------
    tuple of 3 ndarrays
        The labels of ``a`` (``a``'s dtype), the labels of ``b`` (``b``'s
        dtype) and the voxel counts (int64) of each pair, sorted by ``a``
        then ``b``.  The counts add up to ``a.size``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"overlap_counts: shapes differ, {a.shape} and {b.shape}")
    for name, x in (("a", a), ("b", b)):
        if x.dtype.kind not in "iub":
            raise TypeError(f"overlap_counts: {name} must hold integer labels, got {x.dtype}")
    flat_a, flat_b = np.ravel(a), np.ravel(b)  # a copy only when the arrays are not contiguous
    n = _count_runs(flat_a, flat_b)  # a second pass, so that only the runs are held, not a voxel's worth
    run_a, run_b, run_n = np.empty(n, a.dtype), np.empty(n, b.dtype), np.empty(n, np.int64)
    _runs(flat_a, flat_b, run_a, run_b, run_n)
    order = np.lexsort((run_b, run_a))
    run_a, run_b, run_n = run_a[order], run_b[order], run_n[order]
    first = np.ones(n, bool)
    first[1:] = (run_a[1:] != run_a[:-1]) | (run_b[1:] != run_b[:-1])
    starts = np.flatnonzero(first)
    return run_a[starts], run_b[starts], np.add.reduceat(run_n, starts) if n else run_n
