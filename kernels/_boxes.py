"""Voxel count, bounding box and first voxel of every label, in one pass.

What splitting and merging objects need before they crop each one, and
nothing more: :func:`region_stats` gives the same three plus moments,
intensities and surface areas, at several times the cost, walking 2x2x2
cubes.  This walks the voxels once, in raster order, so the first voxel of a
label is the first time it is seen.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["label_boxes"]


@numba.njit(cache=True, nogil=True)
def _boxes(labels, count, lo, hi, first):  # pragma: no cover - compiled
    nz, ny, nx = labels.shape
    for z in range(nz):
        for y in range(ny):
            row = labels[z, y]
            x = 0
            while x < nx:
                lab = row[x]
                if lab == 0:
                    x += 1
                    continue
                start = x  # a run of one label: one update of its box for the whole run
                while x < nx and row[x] == lab:
                    x += 1
                if count[lab] == 0:  # first seen: its first voxel, and a box of this run
                    first[lab, 0] = lo[lab, 0] = hi[lab, 0] = z
                    first[lab, 1] = lo[lab, 1] = hi[lab, 1] = y
                    first[lab, 2] = lo[lab, 2] = start
                    hi[lab, 2] = x - 1
                else:
                    # z only grows in raster order; y and x may go either way
                    hi[lab, 0] = z
                    if y < lo[lab, 1]:
                        lo[lab, 1] = y
                    if y > hi[lab, 1]:
                        hi[lab, 1] = y
                    if start < lo[lab, 2]:
                        lo[lab, 2] = start
                    if x - 1 > hi[lab, 2]:
                        hi[lab, 2] = x - 1
                count[lab] += x - start


def label_boxes(labels: np.ndarray, max_label: int | None = None) -> dict[str, np.ndarray]:
    """Voxel count, bounding box and first voxel (raster order) of labels 0..max_label.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of non-negative integers
        Label volume, 0 is background.
    max_label : int, optional
        Largest label (default: ``labels.max()``).

    Returns
    -------
    dict of ndarray
        ``count`` (voxels, int64, ``(max_label + 1,)``), ``bbox_min`` and
        ``bbox_max`` (inclusive (z, y, x) voxel indices) and ``first`` (the
        first voxel in raster order), each ``(max_label + 1, 3)`` int64.  Rows
        of absent labels (and row 0) have count 0 and meaningless boxes; they
        agree with :func:`region_stats`' ``count``, ``bbox_min``, ``bbox_max``
        and ``origin``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((3, 4, 5), np.uint8)
    >>> labels[1, 1:3, 2:4] = 1
    >>> labels[2, 3, 0] = 1
    >>> boxes = label_boxes(labels)
    >>> int(boxes["count"][1]), boxes["bbox_min"][1].tolist(), boxes["bbox_max"][1].tolist()
    (5, [1, 1, 0], [2, 3, 3])
    >>> boxes["first"][1].tolist()
    [1, 1, 2]
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3-D, got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "ui" or (labels.dtype.kind == "i" and labels.size and labels.min() < 0):
        raise ValueError(f"labels must be non-negative integers, got {labels.dtype}")
    largest = int(labels.max()) if labels.size else 0
    if max_label is None:
        max_label = largest
    elif largest > max_label:
        raise ValueError(f"labels hold {largest}, above max_label={max_label}")
    n = int(max_label) + 1
    count = np.zeros(n, np.int64)
    lo, hi, first = (np.zeros((n, 3), np.int64) for _ in range(3))
    if labels.size:
        _boxes(np.ascontiguousarray(labels), count, lo, hi, first)
    return {"count": count, "bbox_min": lo, "bbox_max": hi, "first": first}
