"""26-connected labelling voxel by voxel, for volumes whose runs are short.

:mod:`._label` joins *runs* (stretches of one value along x) to the runs of
earlier rows.  That pays per run: when runs are short, as in a dense
multi-label segmentation whose fast axis is the coarse one (cc3d's
connectomics volume: 10 voxels a run), finding and comparing runs costs more
than looking at the voxels themselves.  This module scans voxel by voxel and
writes each voxel's provisional label into the output, then renumbers the
output in place (the classic two-scan algorithm with union-find), with
shortcuts that make most voxels cost two comparisons or less:

* the voxel below, (z-1, y, x), touches every other earlier neighbour of
  (z, y, x) under 26-connectivity: when it has the same value, joining it is
  all there is to do for the voxel;
* inside a run, voxel x+1 has only one new column of earlier neighbours
  (x+2) beyond those of voxel x, and when the voxel below x was of the run's
  value, it touches that whole column: nothing to do;
* by the first shortcut, a voxel equal to the one below may take that
  voxel's provisional label and needs nothing else.  Where a stretch of
  :data:`SEGMENT` voxels equals the stretch below, compared at once, their
  labels are copied from below, whatever runs start or end inside it.  In a
  dense segmentation most of a row is such stretches (cc3d's connectomics
  volume: 96% of voxels equal the one below, 79% of 8-voxel stretches),
  and each run end in them would otherwise cost a mispredicted branch.

Background is skipped a word (8 bytes) at a time, as in :mod:`._label`.
Indices are unsigned: with signed ones Numba checks every index for
wraparound (a negative index counts from the end), which made the scan 1.5x
slower.  Slabs of planes are labelled on their own threads and joined across
their boundary planes, as in :mod:`._label`.
"""

from __future__ import annotations

import numba
import numpy as np

from ._label import _final_table, _joined_parents, _next_other, _union

__all__ = ["label_voxels"]

#: Voxels compared at once with the row below (inner rows); equal stretches copy their labels from below.
#: 8 and 16 were 15-25% faster than none on cc3d's connectomics volume, 32 less so (in-process, one thread).
SEGMENT = 8


@numba.njit(cache=True, nogil=True, inline="always")
def _join(parent, lab, idx, cur):  # pragma: no cover - compiled
    """Join the label at flat index ``idx`` of ``lab`` to ``cur`` (0: none yet); returns the label to carry."""
    other = np.int64(lab[idx])
    if cur == 0:
        return other
    if other != cur:
        return _union(parent, cur, other)
    return cur


@numba.njit(cache=True, nogil=True, inline="always")
def _join_row(flat, lab, parent, r, x, nx, v, cur):  # pragma: no cover - compiled
    """Join the voxels x-1..x+1 of row ``r`` holding ``v``: one join per stretch of them (a stretch is joined already)."""
    one = np.uint64(1)
    before = False
    if x > np.uint64(0) and flat[r + x - one] == v:
        cur = _join(parent, lab, r + x - one, cur)
        before = True
    if flat[r + x] == v:
        if not before:
            cur = _join(parent, lab, r + x, cur)
        before = True
    else:
        before = False
    if x + one < nx and flat[r + x + one] == v and not before:
        cur = _join(parent, lab, r + x + one, cur)
    return cur


@numba.njit(cache=True, nogil=True)
def _skip(flat, words, q, limit, word_shift, word_mask, voxel_shift):  # pragma: no cover - compiled
    """First foreground flat index in ``q..limit-1`` (``limit`` when none), a word at a time.

    Not inlined: inside the row scan's loop it made the foreground path slower.
    """
    zero = flat[0] - flat[0]
    return _next_other(flat, words, q, limit, zero, np.uint64(0), word_shift, word_mask, voxel_shift)


@numba.njit(cache=True, nogil=True)
def _scan_inner_row(flat, words, lab, here, nx, below, parent, n, word_shift, word_mask, voxel_shift):  # pragma: no cover
    """Label row ``here`` (a flat index) of a plane with a plane below it and rows on both sides in y.

    ``below`` is the flat index of row (z-1, y); the other neighbour rows are
    (z, y-1) = here - nx, (z-1, y-1) = below - nx and (z-1, y+1) = below + nx.
    Returns the number of provisional labels used.
    """
    one = np.uint64(1)
    r0 = here - nx  # (z, y-1)
    r1 = below - nx  # (z-1, y-1)
    r2 = below  # (z-1, y)
    r3 = below + nx  # (z-1, y+1)
    zero = flat[here] - flat[here]
    last = nx - one
    segment = np.uint64(SEGMENT)
    x = np.uint64(0)
    while x < nx:
        if x + segment <= nx:  # voxels equal to those below take their labels (background included: 0)
            same = True
            for k in range(SEGMENT):
                same &= flat[here + x + np.uint64(k)] == flat[r2 + x + np.uint64(k)]
            if same:
                for k in range(SEGMENT):
                    lab[here + x + np.uint64(k)] = lab[r2 + x + np.uint64(k)]
                x += segment
                continue
        v = flat[here + x]
        if v == zero:
            x = np.uint64(_skip(flat, words, np.int64(here + x + one), np.int64(here + nx), word_shift, word_mask,
                                voxel_shift)) - here
            continue
        # the first voxel of a run: its earlier neighbours are x-1..x+1 of rows r0..r3.  Voxel x-1 of its own
        # row differs, or was copied from below (it equals the voxel below it, which the checks below reach)
        cur = np.int64(0)
        if flat[r2 + x] == v:  # below: touches all the others
            cur = _join(parent, lab, r2 + x, cur)
        else:
            all_rows = flat[r0 + x] != v
            if not all_rows:  # (z, y-1, x) touches rows r0, r1 and r2: only row r3 is left
                cur = _join(parent, lab, r0 + x, cur)
            else:
                if x > np.uint64(0) and flat[r2 + x - one] == v:
                    cur = _join(parent, lab, r2 + x - one, cur)
                if x < last and flat[r2 + x + one] == v:
                    cur = _join(parent, lab, r2 + x + one, cur)
            for k, r in enumerate((r3, r0, r1)):  # written out: calling _join_row here was 7% slower
                if k > 0 and not all_rows:
                    break
                before = False
                if x > np.uint64(0) and flat[r + x - one] == v:
                    cur = _join(parent, lab, r + x - one, cur)
                    before = True
                if flat[r + x] == v:
                    if not before:
                        cur = _join(parent, lab, r + x, cur)
                    before = True
                else:
                    before = False
                if x < last and flat[r + x + one] == v and not before:
                    cur = _join(parent, lab, r + x + one, cur)
        if cur == 0:
            n += 1
            parent[n] = n
            cur = n
        lab[here + x] = cur
        if x == last:
            break
        l2 = flat[r2 + x + one]
        x += one
        # the rest of the run: only column x+1 is new
        while x < last and flat[here + x] == v:
            a2 = flat[r2 + x + one]
            if l2 != v:  # else the voxel below x-1 touches the whole new column, and it is joined
                if a2 == v:
                    cur = _join(parent, lab, r2 + x + one, cur)
                else:
                    if flat[r0 + x + one] == v:  # touches r1's column too
                        if flat[r0 + x] != v:
                            cur = _join(parent, lab, r0 + x + one, cur)
                    elif flat[r1 + x + one] == v and flat[r1 + x] != v:
                        cur = _join(parent, lab, r1 + x + one, cur)
                    if flat[r3 + x + one] == v and flat[r3 + x] != v:
                        cur = _join(parent, lab, r3 + x + one, cur)
            l2 = a2
            lab[here + x] = cur
            x += one
        if x == last and flat[here + x] == v:  # the last voxel of the row has no new column
            lab[here + x] = cur
            x += one
    return n


@numba.njit(cache=True, nogil=True)
def _scan_border_row(flat, words, lab, here, nx, rows, present, parent, n, word_shift, word_mask,
                     voxel_shift):  # pragma: no cover - compiled
    """Label a row that lacks some neighbour rows (first plane of a slab, first or last row of a plane).

    ``rows`` holds the flat indices of rows (z, y-1), (z-1, y-1), (z-1, y),
    (z-1, y+1) and ``present`` which of them exist.  Every voxel is checked
    against all its present neighbours (one join per stretch of a row).
    """
    one = np.uint64(1)
    zero = flat[here] - flat[here]
    x = np.uint64(0)
    while x < nx:
        v = flat[here + x]
        if v == zero:
            x = np.uint64(_skip(flat, words, np.int64(here + x + one), np.int64(here + nx), word_shift, word_mask,
                                voxel_shift)) - here
            continue
        cur = np.int64(0)
        for k in range(4):
            if present[k]:
                cur = _join_row(flat, lab, parent, np.uint64(rows[k]), x, nx, v, cur)
        if cur == 0:
            n += 1
            parent[n] = n
            cur = n
        lab[here + x] = cur
        x += one
        while x < nx and flat[here + x] == v:
            if x + one < nx:
                for k in range(4):
                    if present[k]:
                        r = np.uint64(rows[k])
                        if flat[r + x + one] == v and flat[r + x] != v:
                            cur = _join(parent, lab, r + x + one, cur)
            lab[here + x] = cur
            x += one
    return n


@numba.njit(cache=True, nogil=True)
def _scan_planes(image, words, out, z0, z1, row_from, parent, n):  # pragma: no cover - compiled
    """Provisional labels of rows ``row_from``.. of planes z0..z1-1 into ``out``; equivalences in ``parent``.

    Labels start at 1 in each slab.  Stops before a row that might not fit in
    ``parent`` so the caller can grow it and resume.  Returns (labels used,
    next row).
    """
    _, ny, nx = image.shape
    flat = image.reshape(-1)
    lab = out.reshape(-1)
    per_word = 8 // flat.itemsize if words.shape[0] > 0 else 0
    word_mask = per_word - 1
    word_shift = 3 if per_word == 8 else (2 if per_word == 4 else 1)
    voxel_shift = 6 - word_shift
    rows = np.empty(4, np.int64)
    present = np.empty(4, np.bool_)
    plane = ny * nx
    n_rows = (z1 - z0) * ny
    for row in range(row_from, n_rows):
        if n + nx >= parent.shape[0]:
            return n, row
        z = z0 + row // ny
        y = row % ny
        here = (z * ny + y) * nx
        if z > z0 and 0 < y < ny - 1:
            n = _scan_inner_row(flat, words, lab, np.uint64(here), np.uint64(nx), np.uint64(here - plane), parent, n,
                                word_shift, word_mask, voxel_shift)
        else:
            rows[0] = here - nx
            rows[1] = here - plane - nx
            rows[2] = here - plane
            rows[3] = here - plane + nx
            present[0] = y > 0
            present[1] = z > z0 and y > 0
            present[2] = z > z0
            present[3] = z > z0 and y + 1 < ny
            n = _scan_border_row(flat, words, lab, np.uint64(here), np.uint64(nx), rows, present, parent, n,
                                 word_shift, word_mask, voxel_shift)
    return n, n_rows


@numba.njit(cache=True, nogil=True)
def _merge_planes(image, out, z, offset_below, offset_here, parent):  # pragma: no cover - compiled
    """Join the labels of plane z (a slab's first) to touching same-valued voxels of plane z-1 (the slab below's last)."""
    _, ny, nx = image.shape
    flat = image.reshape(-1)
    lab = out.reshape(-1)
    plane = ny * nx
    for y in range(ny):
        here = z * plane + y * nx
        for x in range(nx):
            v = flat[here + x]
            if v == 0:
                continue
            a = offset_here + np.int64(lab[here + x])
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= ny:
                    continue
                row = here - plane + dy * nx
                for dx in range(-1, 2):
                    xx = x + dx
                    if 0 <= xx < nx and flat[row + xx] == v:
                        _union(parent, a, offset_below + np.int64(lab[row + xx]))


@numba.njit(cache=True, nogil=True)
def _renumber(out, z0, z1, table):  # pragma: no cover - compiled
    """Replace the provisional labels of planes z0..z1-1 by their final labels ``table[label]`` (``table[0]`` is 0).

    Every voxel is looked up, background included, with no branch: the loop
    vectorises (a gather), twice as fast as testing for background first.
    """
    _, ny, nx = out.shape
    lab = out.reshape(-1)[z0 * ny * nx: z1 * ny * nx]
    for i in range(lab.shape[0]):
        lab[i] = table[lab[i]]


def _label_slab(src, words, out, z0, z1):
    """Provisional labels of planes z0..z1-1 written to ``out``: (parent, number of labels)."""
    ny, nx = src.shape[1:]
    n_rows = (z1 - z0) * ny
    parent = np.empty(min((z1 - z0) * ny * nx // 16, 1 << 24) + 2 * nx + 2, np.int64)
    parent[0] = 0
    n = row = 0
    while True:
        n, row = _scan_planes(src, words, out, z0, z1, row, parent, n)
        if row == n_rows:
            return parent[: n + 1], n
        parent = np.concatenate([parent[: n + 1], np.empty(parent.shape[0] + nx, np.int64)])  # grow and resume


def label_voxels(src: np.ndarray, words: np.ndarray, out: np.ndarray, bounds: list[tuple[int, int]], pool_map) -> int:
    """26-connected labels of ``src`` written into ``out`` (zeros); returns the number of components.

    ``bounds`` are the z-slabs, labelled by ``pool_map`` (one thread each
    when there are several); labels are numbered in raster order of each
    component's first voxel.  :func:`sxtseg.kernels.label` calls it for
    dense label volumes with short runs.

    Examples
    --------
    >>> import numpy as np
    >>> from sxtseg.kernels._label import _map, _words
    >>> image = np.array([[[1, 1, 2, 0], [0, 2, 2, 1]], [[1, 0, 0, 1], [0, 0, 0, 0]]], np.uint8)
    >>> out = np.zeros(image.shape, np.uint32)
    >>> label_voxels(image, _words(image.reshape(-1)), out, [(0, 1), (1, 2)], _map)
    3
    >>> out.tolist()
    [[[1, 1, 2, 0], [0, 2, 2, 3]], [[1, 0, 0, 3], [0, 0, 0, 0]]]
    """
    results = pool_map(lambda b: _label_slab(src, words, out, b[0], b[1]), bounds)
    counts = [n for _, n in results]
    if len(bounds) == 1:
        parent, offsets = results[0][0], np.zeros(1, np.int64)
    else:
        parent, offsets = _joined_parents(results)
        for k in range(1, len(bounds)):
            _merge_planes(src, out, bounds[k][0], offsets[k - 1], offsets[k], parent)
    table, count = _final_table(parent)

    def renumber(k):
        # this slab's labels 1..n as the output's type, with 0 (background) staying 0
        local = table[offsets[k]: offsets[k] + counts[k] + 1].astype(out.dtype)
        local[0] = 0
        _renumber(out, bounds[k][0], bounds[k][1], local)

    pool_map(renumber, range(len(bounds)))
    return int(count)
