"""Connected components of dask volumes larger than memory, block by block.

1. Each block is labelled on its own (``sxtseg.kernels.label``); the task
   returns only the block's label count and its six face planes (labels and
   values), never the block's labels.
2. For every plane between two layers of blocks along z, y and x, a task
   assembles the two facing planes from the blocks' faces and compares them
   with every in-plane offset the connectivity allows (this also joins
   objects that cross an edge or a corner of four or eight blocks); it
   returns the distinct pairs of (block, local label) that touch.
3. Block labels get global ids (block offset + local label), and union-find
   runs over the pairs only.
4. The label volume is returned lazily: each block is labelled again when
   computed and mapped through the final table.

Every step is a dask computation, so it runs on any scheduler, including
``dask.distributed``; a worker holds a few blocks at a time.
"""

from __future__ import annotations


import dask
import dask.array as da
import numpy as np
import pandas as pd

__all__ = ["label_dask"]


def _block_summary(block: np.ndarray, connectivity: int) -> tuple[int, dict]:
    """The block's label count, and its six face planes (labels and values)."""
    from sxtseg.kernels import label

    labels, n = label(block, connectivity, threads=1)
    faces = {}
    for axis in range(3):
        first = tuple(0 if a == axis else slice(None) for a in range(3))
        last = tuple(-1 if a == axis else slice(None) for a in range(3))
        # copies: a view would keep the whole block alive until its planes are done
        faces[axis] = tuple(a[s].copy() for a, s in ((labels, first), (labels, last), (block, first), (block, last)))
    return n, faces


def _in_plane_offsets(connectivity: int) -> list[tuple[int, int]]:
    """Offsets within a boundary plane between neighbours that sit on the two sides of it."""
    limit = {6: 0, 18: 1, 26: 2}[connectivity]  # |d1| + |d2| allowed besides the step across
    return [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if abs(a) + abs(b) <= limit]


def _plane_pairs(columns: list, axis: int, plane_shape: tuple[int, int], connectivity: int) -> np.ndarray:
    """Distinct pairs of labels facing each other across the plane between two layers of blocks.

    ``columns`` holds, for every column of blocks crossing the plane, its
    in-plane offset and the flat index and faces of the block below and
    above.  Labels are returned as ``block index << 32 | local label``, as
    the global numbering is not known yet.
    """
    planes = {}
    for side in ("low", "high"):
        planes[side + "_labels"] = np.zeros(plane_shape, np.int64)
        planes[side + "_values"] = np.zeros(plane_shape, columns[0][2][axis][2].dtype)
    for (r0, r1), below_index, below, above_index, above in columns:
        h, w = below[axis][1].shape
        where = (slice(r0, r0 + h), slice(r1, r1 + w))
        for side, block_index, labels, values in (("low", below_index, below[axis][1], below[axis][3]),
                                                  ("high", above_index, above[axis][0], above[axis][2])):
            planes[side + "_labels"][where] = np.where(labels > 0, (block_index << 32) | labels.astype(np.int64), 0)
            planes[side + "_values"][where] = values
    pairs = []
    h, w = plane_shape
    for d1, d2 in _in_plane_offsets(connectivity):
        a = (slice(max(0, -d1), h - max(0, d1)), slice(max(0, -d2), w - max(0, d2)))
        b = (slice(max(0, d1), h - max(0, -d1)), slice(max(0, d2), w - max(0, -d2)))
        same = (planes["low_values"][a] == planes["high_values"][b]) & (planes["low_values"][a] != 0)
        if same.any():
            pairs.append(_distinct_pairs(planes["low_labels"][a][same], planes["high_labels"][b][same]))
    return _distinct_pairs(*np.concatenate(pairs).T) if pairs else np.zeros((0, 2), np.int64)


def _distinct_pairs(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The distinct (low, high) label pairs, as an (N, 2) int64 array.

    One object covering the plane gives a pair per voxel, so pairs are
    deduplicated by hashing: each side is numbered by ``pandas.factorize``
    and the pair of numbers packed into one int64 key (a sort of the pairs
    as rows, ``np.unique(axis=0)``, took seconds per plane).
    """
    low_codes, low_ids = pd.factorize(low)
    high_codes, high_ids = pd.factorize(high)
    keys = pd.unique(low_codes.astype(np.int64) * len(high_ids) + high_codes)
    return np.stack([low_ids[keys // len(high_ids)], high_ids[keys % len(high_ids)]], axis=1).astype(np.int64)


def plane_columns(grid, starts, axis: int, k: int):
    """The block columns crossing the plane after layer ``k`` along ``axis``.

    Yields ``(where, below, above)``: the in-plane offset (voxels) of the
    column, and the grid indices of its blocks on either side of the plane.
    ``starts`` holds each axis' block start offsets.
    """
    other = [a for a in range(3) if a != axis]
    for below in np.ndindex(*grid):
        if below[axis] == k:
            above = tuple(j + 1 if a == axis else j for a, j in enumerate(below))
            yield (int(starts[other[0]][below[other[0]]]), int(starts[other[1]][below[other[1]]])), below, above


def label_dask(data: da.Array, connectivity: int = 26) -> tuple[da.Array, int]:
    """Label a dask array block by block; returns the lazy labels (uint32, uint64 past 2^32 - 2 labels) and the count.

    Labels are numbered 1..N by block (C order) and, within a block, by the
    raster order of each object's first voxel there.  The partition is the
    same as labelling the whole volume at once.
    """
    from sxtseg.kernels import label_dtype
    from sxtseg.kernels._label import _final_table, _union_pairs

    if data.ndim != 3:
        raise ValueError(f"need a 3-D array, got shape {data.shape}")
    grid = data.numblocks
    blocks = data.to_delayed()
    index = {i: k for k, i in enumerate(np.ndindex(grid))}
    counts, faces = {}, {}
    for i in np.ndindex(grid):
        counts[i], faces[i] = dask.delayed(_block_summary, nout=2)(blocks[i], connectivity)
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in data.chunks]
    planes = []
    for axis in range(3):
        other = [a for a in range(3) if a != axis]
        for k in range(grid[axis] - 1):
            columns = [(where, index[below], faces[below], index[above], faces[above])
                       for where, below, above in plane_columns(grid, starts, axis, k)]
            planes.append(dask.delayed(_plane_pairs)(
                columns, axis, (data.shape[other[0]], data.shape[other[1]]), connectivity))
    # the faces are intermediate results: dropped as soon as both planes they border are done
    results = dask.compute(*counts.values(), *planes)
    counts = np.array(results[: len(counts)], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = int(counts.sum())
    parent = np.arange(total + 1, dtype=np.int64)
    for pairs in results[len(counts):]:
        if len(pairs):
            glob = offsets[pairs >> 32] + (pairs & 0xFFFFFFFF)
            _union_pairs(parent, glob)
    table, count = _final_table(parent)
    out_dtype = label_dtype(count)
    table = table.astype(out_dtype)
    offset_grid = offsets.reshape(grid)

    def relabel(block, block_info=None):
        from sxtseg.kernels import label

        labels, n = label(block, connectivity, threads=1)
        off = offset_grid[tuple(block_info[0]["chunk-location"])]
        # final label of each local label 0..n (0 stays background): one gather, no int64 copy of the block
        return np.concatenate([[0], table[off + 1 : off + n + 1]]).astype(out_dtype)[labels]

    out = data.map_blocks(relabel, dtype=out_dtype, meta=np.empty((0, 0, 0), out_dtype))
    return out, int(count)
