"""Connected-component labelling: run-based union-find over z-slabs in parallel threads.

Each row of the volume (fixed z and y) is cut into *runs*: maximal stretches
of voxels with the same nonzero value.  A run is joined to the runs of the
already-scanned neighbour rows it touches; for 26-connectivity those are the
rows (z, y-1), (z-1, y-1), (z-1, y) and (z-1, y+1), and two runs touch when
their x ranges, widened by one voxel for diagonal neighbours, overlap.
Working on runs instead of voxels means the image is read once, neighbours
are compared a run at a time, and only the runs are written to the output
(zeroed pages from the allocator: background is never written), once the
equivalences are resolved (the run-based two-scan idea of He, Chao and
Suzuki, 2008).

Two shortcuts: background, and the runs of a mask or a uint8/uint16 class volume, are
found a word (8 bytes) at a time (a word XOR the run's value repeated, then
its trailing zero bits); a 0/1 mask whose rows are whole words is packed row
by row to one bit per voxel (one multiplication turns a word of eight 0/1
bytes into a byte), and its runs are found 64 voxels at a time.  And when a
same-valued run of an earlier row spans the whole run, the rows that run was
itself joined to need not be scanned (see :func:`_neighbour_rows`), so inside
a large object a run is compared with one neighbour row, not four.

Slabs of planes are scanned on their own threads (the kernels release the
GIL); equivalences across slab boundaries are then merged, and one more
parallel pass writes the final labels, numbered in raster (C) order of each
component's first voxel.

Dense label volumes with short runs (a multi-label segmentation whose fast
axis is the coarse one) are labelled voxel by voxel
instead, for 26-connectivity (:mod:`._label_voxels`): :func:`_short_runs`
decides from a sample of rows.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from ._threads import MIN_VOXELS_PER_THREAD, default_threads

__all__ = ["label"]

# Neighbour rows scanned before row (z, y): (dz, dy), and for each connectivity
# whether runs there touch across a one-voxel diagonal step in x (1) or only
# when their x ranges overlap (0); rows absent from a connectivity are left out.
_ROWS = {
    6: ((0, -1, 0), (-1, 0, 0)),
    18: ((0, -1, 1), (-1, -1, 0), (-1, 0, 1), (-1, 1, 0)),
    26: ((0, -1, 1), (-1, -1, 1), (-1, 0, 1), (-1, 1, 1)),
}


def _touch_widening(connectivity: int, dz: int, dy: int) -> int:
    """How runs in two rows (dz, dy) apart touch: 1 across a diagonal x step, 0 only by overlap, -1 never."""
    steps = abs(dz) + abs(dy)
    if steps == 0 or abs(dz) > 1 or abs(dy) > 1:
        return -1
    if connectivity == 26:
        return 1
    if connectivity == 18:
        return 1 if steps == 1 else 0
    return 0 if steps == 1 else -1


@lru_cache(maxsize=None)  # small crops are labelled by the thousand: build the tables once
def _neighbour_rows(connectivity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dz, dy, widen, covers) of the earlier rows whose runs can touch a run of row (z, y).

    Bit m of ``covers[k]`` says that a same-valued run in row k spanning a
    run's whole x range makes row m redundant for it: every run of row m that
    touches the run also touches the spanning run, and the two were joined
    when the later of their rows was scanned.  Row (z-1, y) comes first: for
    26-connectivity a spanning run there covers all three other rows.
    """
    rows = sorted(_ROWS[connectivity], key=lambda r: (r[:2] != (-1, 0), r[0] != 0))
    rows = np.array(rows, dtype=np.int64)
    covers = np.zeros(len(rows), np.int64)
    for k, (dz_k, dy_k, _) in enumerate(rows):
        for m, (dz_m, dy_m, widen_m) in enumerate(rows):
            if m != k and _touch_widening(connectivity, dz_m - dz_k, dy_m - dy_k) >= widen_m:
                covers[k] |= 1 << m
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy(), covers


@numba.njit(cache=True, nogil=True)
def _find(parent, a):  # pragma: no cover - compiled
    while parent[a] != a:
        parent[a] = parent[parent[a]]  # path halving
        a = parent[a]
    return a


@numba.njit(cache=True, nogil=True)
def _union(parent, a, b):  # pragma: no cover - compiled
    """Join the sets of a and b; the smaller root wins, so roots are each set's first label."""
    a = _find(parent, a)
    b = _find(parent, b)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b
    return a if a < b else b


@numba.njit(cache=True, nogil=True, inline="always")
def _next_other(flat, words, q, limit, value, fill, word_shift, word_mask, voxel_shift):  # pragma: no cover - compiled
    """First flat index in ``q..limit-1`` whose voxel is not ``value`` (``limit`` when there is none).

    ``words`` is ``flat`` read 8 bytes at a time (``word_mask + 1`` voxels of
    ``2**voxel_shift`` bits each) and ``fill`` a word of ``value`` repeated:
    a word XOR ``fill`` is nonzero where a voxel differs, and its trailing
    zero bits count the equal voxels before the first that differs (the
    words are little-endian).  Without ``words``, voxel by voxel.
    """
    n_words = words.shape[0]
    if n_words > 0 and q < limit:
        i = q >> word_shift
        if i < n_words:
            w = (words[i] ^ fill) >> np.uint64((q & word_mask) << voxel_shift)  # drop the voxels before q
            if w == 0:
                i += 1
                q = i << word_shift
                while q < limit and i < n_words:
                    w = words[i] ^ fill
                    if w != 0:
                        break
                    i += 1
                    q += word_mask + 1
            if w != 0:
                q += np.int64(trailing_zeros(w)) >> voxel_shift
                return q if q < limit else limit
    while q < limit and flat[q] == value:  # no words, or the partial word at the end of the image
        q += 1
    return q if q < limit else limit


#: Multiplying a word of eight 0/1 bytes by this moves byte j's low bit to bit 56 + j (the partial products
#: land on distinct bits, so nothing carries): the top byte then holds the eight voxels as bits.
_PACK_BYTES = np.uint64(0x0102040810204080)


@numba.njit(cache=True, nogil=True, inline="always")
def _pack_row(words, first, n_words, bits):  # pragma: no cover - compiled
    """Bit x of ``bits[x >> 6]`` = voxel x of a row of 0/1 bytes, ``words[first:first + n_words]``.

    Bits past the row's end are 0.
    """
    full = n_words >> 3
    for m in range(full):
        v = np.uint64(0)
        for i in range(8):
            v |= ((words[first + 8 * m + i] * _PACK_BYTES) >> np.uint64(56)) << np.uint64(8 * i)
        bits[m] = v
    if full < bits.shape[0]:
        v = np.uint64(0)
        for i in range(n_words - 8 * full):
            v |= ((words[first + 8 * full + i] * _PACK_BYTES) >> np.uint64(56)) << np.uint64(8 * i)
        bits[full] = v


@numba.njit(cache=True, nogil=True, inline="always")
def _next_run_bits(bits, x, nx):  # pragma: no cover - compiled
    """(start, end) of the first run of set bits at or after ``x`` in a packed row; (nx, nx) when there is none.

    64 voxels a step, each end found by counting trailing zero bits (of the
    row's bits for the start, of their complement for the end).
    """
    nw = bits.shape[0]
    m = x >> 6
    if m >= nw:
        return nx, nx
    w = bits[m] >> np.uint64(x & 63)
    while w == 0:
        m += 1
        if m == nw:
            return nx, nx
        w = bits[m]
        x = m << 6
    x += np.int64(trailing_zeros(w))
    start = x
    w = ~bits[m] >> np.uint64(x & 63)
    while w == 0:
        m += 1
        if m == nw:
            return start, nx
        w = ~bits[m]
        x = m << 6
    x += np.int64(trailing_zeros(w))
    return start, x if x < nx else nx


@numba.njit(cache=True, nogil=True)
def _scan_rows(image, words, z0, z1, row_dz, row_dy, widen, covers, binary, row_from, runs, values, parent, row_ptr,
               n_runs, n):  # pragma: no cover - compiled
    """Cut rows ``row_from``.. of planes z0..z1-1 into runs and join them to touching earlier runs.

    ``runs`` is a (3, capacity) array of run start x, end x (exclusive) and
    provisional label, ``values`` the image value of each run (unused for a
    ``binary`` mask); ``row_ptr[row]:row_ptr[row + 1]`` are the runs of slab
    row ``row = (z - z0) * ny + y``.  ``words`` is the image read 8 bytes at a
    time (empty when it cannot be), to skip background a word at a time; the
    runs of a ``binary`` mask of whole-word rows come from the row packed to
    bits (:func:`_pack_row`).
    Labels start at 1 in each slab; their equivalences are kept in
    ``parent``.  Stops early, before a row that might not fit in ``runs`` or
    ``parent``, so the caller can grow them and resume.  Returns (runs used,
    labels used, next row).
    """
    _, ny, nx = image.shape
    n_rows = (z1 - z0) * ny
    flat = image.reshape(-1)
    per_word = 8 // flat.itemsize if words.shape[0] > 0 else 0  # voxels per word: 8, 4 or 2
    word_mask = per_word - 1
    word_shift = 3 if per_word == 8 else (2 if per_word == 4 else 1)  # shifts and masks, not divisions
    voxel_shift = 6 - word_shift  # log2 of the bits per voxel
    voxel_bits = np.uint64((1 << (64 // per_word)) - 1) if per_word > 1 else np.uint64(0)
    repeat = np.uint64(0x0101010101010101 if per_word == 8 else (0x0001000100010001 if per_word == 4 else
                                                                  0x0000000100000001))  # value -> fill word
    starts = runs[0]
    ends = runs[1]
    labels = runs[2]
    n_kinds = row_dz.shape[0]
    # a 0/1 mask whose rows start on a word: each row packed to one bit a voxel first
    use_bits = binary and per_word == 8 and nx % 8 == 0
    bits = np.zeros((nx + 63) >> 6 if use_bits else 0, np.uint64)
    first = np.empty(n_kinds, np.int64)  # per neighbour row: first run that may still touch
    stop = np.empty(n_kinds, np.int64)
    for row in range(row_from, n_rows):
        if n_runs + nx > starts.shape[0] or n + nx >= parent.shape[0]:
            return n_runs, n, row
        z = z0 + row // ny
        y = row % ny
        for k in range(n_kinds):
            zz = z + row_dz[k]
            yy = y + row_dy[k]
            if zz < z0 or yy < 0 or yy >= ny:
                first[k] = stop[k] = 0
            else:
                other = (zz - z0) * ny + yy
                first[k] = row_ptr[other]
                stop[k] = row_ptr[other + 1]
        here = (z * ny + y) * nx
        zero = flat[here] - flat[here]
        if use_bits:
            _pack_row(words, here >> 3, nx >> 3, bits)
        x = 0
        while x < nx:
            if use_bits:  # a 0/1 mask: its runs from the row's bits, 64 voxels a step
                start, x = _next_run_bits(bits, x, nx)
                if start == nx:
                    break
                value = flat[here + start]
            else:
                value = flat[here + x]
                if value == zero:  # background: on to the next foreground voxel, a word at a time
                    x = _next_other(flat, words, here + x + 1, here + nx, value, np.uint64(0), word_shift, word_mask,
                                    voxel_shift) - here
                    continue
                start = x  # a run of `value` from here to the next other value
                x += 1
                if per_word >= 4:  # its end a word at a time (uint32 runs, 2 voxels a word, are faster voxel by voxel)
                    fill = (np.uint64(value) & voxel_bits) * repeat
                    x = _next_other(flat, words, here + x, here + nx, value, fill, word_shift, word_mask,
                                    voxel_shift) - here
                else:
                    while x < nx and flat[here + x] == value:
                        x += 1
            current = np.int64(0)
            skipped = np.int64(0)  # bit k: row k need not be scanned for this run
            for k in range(n_kinds):
                if skipped & (np.int64(1) << k):
                    continue
                w = widen[k]
                j = first[k]
                end_j = stop[k]
                while j < end_j and ends[j] + w <= start:  # ends before this run: never touches again
                    j += 1
                first[k] = j
                while j < end_j and starts[j] < x + w:
                    if binary or values[j] == value:
                        other = np.int64(labels[j])
                        if current == 0:
                            current = _find(parent, other)  # store roots: fewer unions later
                        elif other != current:
                            current = _union(parent, current, other)
                        if starts[j] <= start and ends[j] >= x:  # spans this run: no other run of it touches,
                            skipped |= covers[k]  # and the rows it covers are already joined to it
                            break
                    j += 1
            if current == 0:
                n += 1
                parent[n] = n
                current = n
            starts[n_runs] = start
            ends[n_runs] = x
            labels[n_runs] = current
            if not binary:
                values[n_runs] = value
            n_runs += 1
        row_ptr[row + 1] = n_runs
    return n_runs, n, n_rows


def _label_slab(image, words, z0, z1, neighbours, binary):
    """Runs and provisional labels of planes z0..z1-1: (runs, row_ptr, parent, number of labels)."""
    ny, nx = image.shape[1:]
    n_rows = (z1 - z0) * ny
    # x positions fit in int32; labels do too unless the slab is huge
    run_dtype = np.int32 if (z1 - z0) * ny * nx < 2**31 - 1 else np.int64
    runs = np.empty((3, 2 * n_rows + nx), run_dtype)
    values = np.empty(0 if binary else runs.shape[1], image.dtype)
    parent = np.empty(n_rows // 2 + nx + 1, np.int64)
    parent[0] = 0
    row_ptr = np.zeros(n_rows + 1, np.int64)
    n_runs = n = row = 0
    while True:
        n_runs, n, row = _scan_rows(image, words, z0, z1, *neighbours, binary, row, runs, values, parent, row_ptr,
                                    n_runs, n)
        if row == n_rows:
            return runs[:, :n_runs], row_ptr, parent[: n + 1], n
        # grow outside the compiled loop: reassigning arrays inside it makes Numba's code much slower
        if n_runs + nx > runs.shape[1]:
            grown = np.empty((3, 2 * runs.shape[1]), run_dtype)
            grown[:, :n_runs] = runs[:, :n_runs]
            runs = grown
            if not binary:
                values = np.concatenate([values[:n_runs], np.empty(runs.shape[1] - n_runs, image.dtype)])
        if n + nx >= parent.shape[0]:
            parent = np.concatenate([parent[: n + 1], np.empty(parent.shape[0] + nx, np.int64)])


def _words(flat: np.ndarray) -> np.ndarray:
    """``flat`` read as 8-byte words (its last partial word left out); empty when it is not aligned or not little-endian."""
    if flat.itemsize > 4 or flat.__array_interface__["data"][0] % 8 or sys.byteorder != "little":
        return np.empty(0, np.uint64)
    per_word = 8 // flat.itemsize
    return flat[: flat.size // per_word * per_word].view(np.uint64)


@numba.njit(cache=True, nogil=True)
def _merge_boundary(image, z, row_dz, row_dy, widen, runs_below, ptr_below, z0_below, offset_below, runs_here,
                    ptr_here, offset_here, parent):  # pragma: no cover - compiled
    """Join runs of plane z (first plane of a slab) to touching runs of plane z-1 (last of the slab below)."""
    _, ny, nx = image.shape
    flat = image.reshape(-1)
    for y in range(ny):
        row_here = y  # plane z is the slab's first
        for k in range(row_dz.shape[0]):
            if row_dz[k] != -1:
                continue
            yy = y + row_dy[k]
            if yy < 0 or yy >= ny:
                continue
            row_below = (z - 1 - z0_below) * ny + yy
            base = ((z - 1) * ny + yy) * nx
            w = widen[k]
            j = ptr_below[row_below]
            end_j = ptr_below[row_below + 1]
            for i in range(ptr_here[row_here], ptr_here[row_here + 1]):
                start = runs_here[0, i]
                end = runs_here[1, i]
                value = flat[(z * ny + y) * nx + start]
                while j < end_j and runs_below[1, j] + w <= start:
                    j += 1
                m = j
                while m < end_j and runs_below[0, m] < end + w:
                    if flat[base + runs_below[0, m]] == value:
                        _union(parent, offset_here + np.int64(runs_here[2, i]),
                               offset_below + np.int64(runs_below[2, m]))
                    m += 1


@numba.njit(cache=True, nogil=True)
def _union_pairs(parent, pairs):  # pragma: no cover - compiled
    """Join every pair (a, b) of labels in ``parent``."""
    for k in range(pairs.shape[0]):
        _union(parent, pairs[k, 0], pairs[k, 1])


@numba.njit(cache=True, nogil=True)
def _final_table(parent):  # pragma: no cover - compiled
    """Final label of every provisional label: roots numbered 1, 2, ... in increasing order."""
    n = parent.shape[0]
    table = np.zeros(n, np.int64)
    count = 0
    for a in range(1, n):
        root = _find(parent, a)
        if root == a:
            count += 1
            table[a] = count
        else:
            table[a] = table[root]  # root < a: already numbered
    return table, count


@numba.njit(cache=True, nogil=True)
def _write_labels(out, z0, z1, runs, row_ptr, offset, table):  # pragma: no cover - compiled
    """Write final labels of the runs of planes z0..z1-1 into ``out``, which holds zeros (background)."""
    _, ny, nx = out.shape
    flat = out.reshape(-1)
    starts = runs[0]
    ends = runs[1]
    labels = runs[2]
    for row in range((z1 - z0) * ny):
        here = (z0 * ny + row) * nx
        for j in range(row_ptr[row], row_ptr[row + 1]):
            flat[here + starts[j]: here + ends[j]] = table[offset + np.int64(labels[j])]


#: Label volumes are uint32 below this many labels, uint64 from it on (0 is background).
UINT32_LABELS = 2**32 - 1


def label_dtype(count: int) -> np.dtype:
    """uint32 for label numbers below :data:`UINT32_LABELS`, uint64 above: every label path uses this rule.

    >>> label_dtype(10).name, label_dtype(2**32).name
    ('uint32', 'uint64')
    """
    return np.dtype(np.uint32 if int(count) < UINT32_LABELS else np.uint64)


def _slab_bounds(nz: int, threads: int) -> list[tuple[int, int]]:
    n = max(1, min(threads, nz))
    edges = np.linspace(0, nz, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def label(
    image: np.ndarray,
    connectivity: int = 26,
    *,
    threads: int | None = None,
) -> tuple[np.ndarray, int]:
    """Label connected components of a mask or of a multi-class label volume.

    Two voxels are connected when they are neighbours (``connectivity``) and
    hold the same nonzero value, so components never cross classes: a class
    volume (0 background, 1 cytoplasm, 6 DMV, ...) gives one label per
    connected piece of each class.  Labels are numbered 1..N in raster (C)
    order of each component's first voxel, as ``scipy.ndimage.label`` does.

    Parameters
    ----------
    image : (Z, Y, X) ndarray of bool or integers
        Mask or class volume; 0 is background.  2-D images are treated as
        one plane.
    connectivity : {6, 18, 26}
        Face, face+edge, or face+edge+corner neighbours.
    threads : int, optional
        Number of z-slabs labelled in parallel (default:
        :func:`default_threads`: the CPUs this process was given, one per
        million voxels at most).

    Returns
    -------
    labels : (Z, Y, X) ndarray of uint32
        Component labels (uint64 if the volume has more than 2**32 - 1 voxels).
    count : int
        Number of components N.

    Notes
    -----
    Besides the output, labelling keeps 12 bytes per run (start, end,
    provisional label; plus the run's value for a class volume) and 16 per
    provisional label (union-find and final
    table): about 0.2 bytes per voxel for round organelles, at most 14 bytes
    per voxel for a mask of salt-and-pepper noise, and 28 for a class volume
    whose every voxel differs from its left neighbour.  Dense label volumes
    with short runs (26-connectivity) are labelled voxel by voxel, keeping 8 bytes
    per provisional label only.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((1, 3, 5), bool)
    >>> mask[0, 0, 0] = mask[0, 1, 1] = mask[0, 0, 4] = True
    >>> labels, n = label(mask, connectivity=26)
    >>> n, labels[0].tolist()
    (2, [[1, 0, 0, 0, 2], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    >>> label(mask, connectivity=6)[1]
    3
    """
    image = np.asarray(image)
    if image.ndim == 2:
        labels, n = label(image[None], connectivity, threads=threads)
        return labels[0], n
    if image.ndim != 3:
        raise ValueError(f"image must be 2-D or 3-D, got shape {image.shape}")
    if image.dtype.kind not in "biu":
        raise ValueError(f"image must be a bool or integer mask/label volume, got dtype {image.dtype}")
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, not {connectivity!r}")
    src = np.ascontiguousarray(image)  # the scan walks flat C-order indices
    src = src.view(np.uint8) if src.dtype == bool else src
    out_dtype = label_dtype(image.size)  # the count is known only at the end; voxels bound it
    if image.size == 0:
        return np.zeros(image.shape, out_dtype), 0
    neighbours = _neighbour_rows(connectivity)
    row_dz, row_dy, widen, _ = neighbours
    # a 0/1 mask needs no value comparisons between runs (int8 is not one: -1 and 1 differ)
    binary = image.dtype == bool or (src.dtype == np.uint8 and bool(src.max() <= 1))
    words = _words(src.reshape(-1))
    threads = default_threads(threads, voxels=image.size)
    # np.zeros: freshly mapped pages are zero already, so background is never written (only the runs are)
    out = np.zeros(image.shape, out_dtype)
    if connectivity == 26 and _short_runs(src, binary):
        from ._label_voxels import label_voxels  # here: that module imports this one

        return out, label_voxels(src, words, out, _slab_bounds(image.shape[0], threads), _map)
    if threads == 1 or image.shape[0] == 1:  # one slab: no offsets, no boundaries, no thread pool
        runs, row_ptr, parent, _ = _label_slab(src, words, 0, image.shape[0], neighbours, binary)
        table, count = _final_table(parent)
        _write_labels(out, 0, image.shape[0], runs, row_ptr, 0, table)
        return out, int(count)
    bounds = _slab_bounds(image.shape[0], threads)

    def first_pass(bound):
        return _label_slab(src, words, bound[0], bound[1], neighbours, binary)

    results = _map(first_pass, bounds)

    parent, slab_offsets = _joined_parents([(local, n) for _, _, local, n in results])
    results = [(runs, row_ptr) for runs, row_ptr, _, _ in results]  # free the slabs' own parent arrays
    for k in range(1, len(bounds)):
        (runs_below, ptr_below), (runs_here, ptr_here) = results[k - 1], results[k]
        _merge_boundary(src, bounds[k][0], row_dz, row_dy, widen, runs_below, ptr_below, bounds[k - 1][0],
                        slab_offsets[k - 1], runs_here, ptr_here, slab_offsets[k], parent)
    table, count = _final_table(parent)

    def last_pass(k):
        runs, row_ptr = results[k]
        _write_labels(out, bounds[k][0], bounds[k][1], runs, row_ptr, slab_offsets[k], table)

    _map(last_pass, range(len(bounds)))
    return out, int(count)


def _joined_parents(slabs) -> tuple[np.ndarray, np.ndarray]:
    """One union-find array for all slabs: slab k's label a becomes offsets[k] + a.

    ``slabs`` lists each slab's (parent array, number of labels); returns
    (parent, offsets).
    """
    counts = [n for _, n in slabs]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    parent = np.empty(int(sum(counts)) + 1, np.int64)
    parent[0] = 0
    for (local, n), off in zip(slabs, offsets):
        parent[off + 1 : off + n + 1] = local[1:] + off
    return parent, offsets


def _map(function, items) -> list:
    """``function`` over ``items``, on one thread per item when there are several."""
    items = list(items)
    if len(items) == 1:
        return [function(items[0])]
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(function, items))


#: The voxel-by-voxel path (:mod:`._label_voxels`) is taken for a class or label volume (not a 0/1 mask) under
#: 26-connectivity when at least this fraction of sampled voxels is foreground and its runs along x are at most
#: :data:`VOXEL_PATH_MAX_RUN` voxels on average.
VOXEL_PATH_MIN_FOREGROUND = 0.1
VOXEL_PATH_MAX_RUN = 16.0


def _short_runs(src: np.ndarray, binary: bool, n_rows: int = 512) -> bool:
    """Whether ``src`` is a dense label volume with short runs along x, judged on ``n_rows`` rows spread through it.

    Run-based labelling pays per run and skips background well; voxel-by-voxel
    labelling pays per foreground voxel.  Measured on 512^3 inputs (2-core AMD
    EPYC, docs/benchmarks.md): the voxel path is 1.8-3x faster on cc3d's
    connectomics volume (99% foreground, runs of 12 voxels in the sample),
    1.6-1.7x slower on a sparse mask (2% foreground) and on a class volume
    (runs of 50).  0/1 masks keep the run path, which compares their runs
    without reading values: it was as fast or faster on balls (runs of 14) and
    on balls with 1% salt noise (runs of 10).
    """
    if binary or src.size < 2 * MIN_VOXELS_PER_THREAD:  # crops: the run path has the lower fixed cost
        return False
    rows = src.reshape(-1, src.shape[-1])
    sample = rows[np.linspace(0, rows.shape[0] - 1, min(n_rows, rows.shape[0])).astype(np.int64)]
    foreground = sample != 0
    n_foreground = int(foreground.sum())
    if n_foreground < VOXEL_PATH_MIN_FOREGROUND * sample.size:
        return False
    starts = foreground.copy()
    starts[:, 1:] &= sample[:, 1:] != sample[:, :-1]  # a run starts where the value changes to a foreground one
    return n_foreground <= VOXEL_PATH_MAX_RUN * int(starts.sum())
