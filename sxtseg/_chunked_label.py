"""Connected components of dask volumes larger than memory, block by block.

1. Each block is labelled on its own (``sxtseg.kernels.label``); the task
   returns only the block's label count and its six face planes (labels and
   values), never the block's labels.
2. Block labels get global ids (block offset + local label).  At every
   boundary between blocks along z, y and x, the two *global* planes on
   either side are assembled from the blocks' faces and compared with every
   in-plane offset the connectivity allows: this also joins objects that
   cross an edge or a corner of four or eight blocks.  Union-find runs over
   these global ids only.
3. The label volume is returned lazily: each block is labelled again when
   computed and mapped through the final table.

Every step is a dask computation, so it runs on any scheduler, including
``dask.distributed``; a worker holds a few blocks at a time.
"""

from __future__ import annotations


import dask
import dask.array as da
import numpy as np

__all__ = ["label_dask"]


def _block_summary(block: np.ndarray, connectivity: int) -> dict:
    from sxtseg.kernels import label

    labels, n = label(block, connectivity, threads=1)
    faces = {}
    for axis in range(3):
        first = tuple(slice(0, 1) if a == axis else slice(None) for a in range(3))
        last = tuple(slice(-1, None) if a == axis else slice(None) for a in range(3))
        faces[axis] = (labels[first].squeeze(axis), labels[last].squeeze(axis),
                       block[first].squeeze(axis), block[last].squeeze(axis))
    return {"count": n, "faces": faces}


def _in_plane_offsets(connectivity: int) -> list[tuple[int, int]]:
    """Offsets within a boundary plane between neighbours that sit on the two sides of it."""
    limit = {6: 0, 18: 1, 26: 2}[connectivity]  # |d1| + |d2| allowed besides the step across
    return [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if abs(a) + abs(b) <= limit]


def _pairs_across(low_labels, low_values, high_labels, high_values, offsets) -> np.ndarray:
    """(global id, global id) pairs of equal nonzero values facing each other across a boundary."""
    pairs = []
    h, w = low_labels.shape
    for d1, d2 in offsets:
        a = (slice(max(0, -d1), h - max(0, d1)), slice(max(0, -d2), w - max(0, d2)))
        b = (slice(max(0, d1), h - max(0, -d1)), slice(max(0, d2), w - max(0, -d2)))
        same = (low_values[a] == high_values[b]) & (low_values[a] != 0)
        if same.any():
            pairs.append(np.stack([low_labels[a][same], high_labels[b][same]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def label_dask(data: da.Array, connectivity: int = 26) -> tuple[da.Array, int]:
    """Label a dask array block by block; returns the lazy uint32 labels and the count.

    Labels are numbered 1..N by block (C order) and, within a block, by the
    raster order of each object's first voxel there.  The partition is the
    same as labelling the whole volume at once.
    """
    from sxtseg.kernels._label import _final_table, _union_pairs

    if data.ndim != 3:
        raise ValueError(f"need a 3-D array, got shape {data.shape}")
    grid = data.numblocks
    blocks = data.to_delayed()
    summaries = dask.compute(*[dask.delayed(_block_summary)(blocks[i], connectivity)
                               for i in np.ndindex(grid)])
    index = {i: k for k, i in enumerate(np.ndindex(grid))}
    counts = np.array([s["count"] for s in summaries], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = int(counts.sum())

    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in data.chunks]
    pairs = []
    plane_offsets = _in_plane_offsets(connectivity)
    for axis in range(3):
        other = [a for a in range(3) if a != axis]
        shape2d = (data.shape[other[0]], data.shape[other[1]])
        for k in range(grid[axis] - 1):
            planes = {name: np.zeros(shape2d, np.int64 if "labels" in name else data.dtype)
                      for name in ("low_labels", "low_values", "high_labels", "high_values")}
            for i in np.ndindex(grid):
                if i[axis] not in (k, k + 1):
                    continue
                s = summaries[index[i]]
                first_l, last_l, first_v, last_v = s["faces"][axis]
                r0, r1 = starts[other[0]][i[other[0]]], starts[other[1]][i[other[1]]]
                where = (slice(r0, r0 + first_l.shape[0]), slice(r1, r1 + first_l.shape[1]))
                off = offsets[index[i]]
                if i[axis] == k:  # the last plane of the lower block faces the boundary
                    planes["low_labels"][where] = np.where(last_l > 0, last_l.astype(np.int64) + off, 0)
                    planes["low_values"][where] = last_v
                else:
                    planes["high_labels"][where] = np.where(first_l > 0, first_l.astype(np.int64) + off, 0)
                    planes["high_values"][where] = first_v
            pairs.append(_pairs_across(planes["low_labels"], planes["low_values"],
                                       planes["high_labels"], planes["high_values"], plane_offsets))
    parent = np.arange(total + 1, dtype=np.int64)
    if pairs:
        _union_pairs(parent, np.concatenate(pairs).astype(np.int64))
    table, count = _final_table(parent)
    table = table.astype(np.uint32)
    offset_grid = offsets.reshape(grid)

    def relabel(block, block_info=None):
        from sxtseg.kernels import label

        labels, _ = label(block, connectivity, threads=1)
        off = offset_grid[tuple(block_info[0]["chunk-location"])]
        return np.where(labels > 0, table[labels.astype(np.int64) + off], 0).astype(np.uint32)

    out = data.map_blocks(relabel, dtype=np.uint32, meta=np.empty((0, 0, 0), np.uint32))
    return out, int(count)
