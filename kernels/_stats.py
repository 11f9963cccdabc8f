"""Per-label statistics in one pass: counts, boxes, moments, intensities, surface area.

The pass walks the 2x2x2 cubes of the volume padded by one background voxel
on every side.  Each voxel is the upper corner of exactly one cube, where it
is accumulated into its label's count, bounding box, first and second
moments and intensity sums; and every label present in a cube gets the
surface-area weight of its 2x2x2 configuration from a 256-entry lookup table
(see ``sxtseg.kernels._surface``).  Moments are accumulated relative to a
per-label origin (the label's first voxel seen), so centroids and variances
do not lose digits to cancellation far from the volume's corner.

z-slabs run on parallel threads, each with its own accumulators; the
results are merged (sums added after shifting moments to one origin,
extremes combined).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._surface import add_cube_areas
from ._threads import default_threads

#: Bytes of accumulators each thread keeps per label (10 int64 and 14 float64 sums).
SCRATCH_BYTES_PER_LABEL = 8 * (10 + 14)
#: Per-thread accumulators of all threads together stay under this (fewer threads for many labels).
SCRATCH_BUDGET_BYTES = 1 << 30

__all__ = ["region_stats", "STAT_FIELDS"]

#: Arrays returned by :func:`region_stats`, one entry per label 0..max_label.
STAT_FIELDS = (
    "count", "bbox_min", "bbox_max", "origin", "first_moment", "second_moment",
    "intensity_sum", "intensity_sum_sq", "intensity_min", "intensity_max", "surface_area",
)


@numba.njit(cache=True, nogil=True)
def _accumulate_voxel(lab, z, y, x, value, acc_i, acc_f, have_intensity):  # pragma: no cover - compiled
    # acc_i columns: 0 count, 1-3 bbox min, 4-6 bbox max, 7-9 origin
    # acc_f columns: 0-2 first moment, 3-8 second moment (zz, yy, xx, zy, zx, yx),
    #                9 sum, 10 sum of squares, 11 min, 12 max, 13 surface area
    if acc_i[lab, 0] == 0:
        acc_i[lab, 1] = z
        acc_i[lab, 2] = y
        acc_i[lab, 3] = x
        acc_i[lab, 4] = z
        acc_i[lab, 5] = y
        acc_i[lab, 6] = x
        acc_i[lab, 7] = z
        acc_i[lab, 8] = y
        acc_i[lab, 9] = x
        acc_f[lab, 11] = np.inf
        acc_f[lab, 12] = -np.inf
    acc_i[lab, 0] += 1
    if z < acc_i[lab, 1]:
        acc_i[lab, 1] = z
    if y < acc_i[lab, 2]:
        acc_i[lab, 2] = y
    if x < acc_i[lab, 3]:
        acc_i[lab, 3] = x
    if z > acc_i[lab, 4]:
        acc_i[lab, 4] = z
    if y > acc_i[lab, 5]:
        acc_i[lab, 5] = y
    if x > acc_i[lab, 6]:
        acc_i[lab, 6] = x
    dz = float(z - acc_i[lab, 7])
    dy = float(y - acc_i[lab, 8])
    dx = float(x - acc_i[lab, 9])
    acc_f[lab, 0] += dz
    acc_f[lab, 1] += dy
    acc_f[lab, 2] += dx
    acc_f[lab, 3] += dz * dz
    acc_f[lab, 4] += dy * dy
    acc_f[lab, 5] += dx * dx
    acc_f[lab, 6] += dz * dy
    acc_f[lab, 7] += dz * dx
    acc_f[lab, 8] += dy * dx
    if have_intensity:
        acc_f[lab, 9] += value
        acc_f[lab, 10] += value * value
        if value < acc_f[lab, 11]:
            acc_f[lab, 11] = value
        if value > acc_f[lab, 12]:
            acc_f[lab, 12] = value


@numba.njit(cache=True, nogil=True)
def _stats_box(labels, intensity, have_intensity, lut, have_surface, count_voxels, cubes, surface_from,
               acc_i, acc_f):  # pragma: no cover - compiled
    """Walk the cubes whose upper corner (z, y, x) lies in ``cubes`` (per axis [lo, hi)).

    Upper corners run from 0 to n along each axis (n is the padding plane
    past the last voxel); corners outside the array are background.  Each
    cube's upper voxel is accumulated when ``count_voxels``; its surface
    weights are added when ``have_surface`` and its upper corner is at least
    ``surface_from`` along every axis (a block of a larger volume leaves the
    cubes that straddle its lower faces to the boundary pass).
    """
    nz, ny, nx = labels.shape
    corner = np.zeros(8, labels.dtype)
    surface = acc_f[:, 13]  # a view: areas go straight into the accumulator
    for z in range(cubes[0, 0] - 1, cubes[0, 1] - 1):  # lower corner of the cube; the upper corner is z+1
        for y in range(cubes[1, 0] - 1, cubes[1, 1] - 1):
            for x in range(cubes[2, 0] - 1, cubes[2, 1] - 1):
                # the 8 corners, background outside the volume; bit = dz*4 + dy*2 + dx
                for k in range(8):
                    cz = z + (k >> 2)
                    cy = y + ((k >> 1) & 1)
                    cx = x + (k & 1)
                    if 0 <= cz < nz and 0 <= cy < ny and 0 <= cx < nx:
                        corner[k] = labels[cz, cy, cx]
                    else:
                        corner[k] = 0
                top = corner[7]
                if top != 0 and count_voxels:
                    value = float(intensity[z + 1, y + 1, x + 1]) if have_intensity else 0.0
                    _accumulate_voxel(top, z + 1, y + 1, x + 1, value, acc_i, acc_f, have_intensity)
                if not have_surface or z + 1 < surface_from[0] or y + 1 < surface_from[1] or x + 1 < surface_from[2]:
                    continue
                first = corner[0]
                uniform = True
                for k in range(1, 8):
                    if corner[k] != first:
                        uniform = False
                        break
                if uniform:
                    continue  # all background, or inside one object: no surface
                add_cube_areas(corner, lut, surface)


def _merge(acc_i: np.ndarray, acc_f: np.ndarray, part_i: np.ndarray, part_f: np.ndarray) -> None:
    """Merge one part's accumulators into the running totals (in place, rows aligned).

    A label's merged origin is the earlier of the two in raster order, so the
    result does not depend on the order parts are merged in.  Extra columns of
    ``acc_i`` past the ten used here (a caller's per-origin value) follow the
    origin.
    """
    # a part can hold surface cubes of a label whose voxels all lie in another part
    surface = acc_f[:, 13] + part_f[:, 13]
    new = (part_i[:, 0] > 0) & (acc_i[:, 0] == 0)
    acc_i[new] = part_i[new]
    acc_f[new] = part_f[new]
    both = np.nonzero((part_i[:, 0] > 0) & (acc_i[:, 0] > 0) & ~new)[0]
    if len(both):
        a_i, a_f, p_i, p_f = acc_i[both], acc_f[both], part_i[both], part_f[both]
        swap = _raster_before(p_i[:, 7:10], a_i[:, 7:10])
        a_i[swap], p_i[swap] = p_i[swap], a_i[swap].copy()
        a_f[swap], p_f[swap] = p_f[swap], a_f[swap].copy()
        _add_voxel_sums(a_i, a_f, p_i, p_f)
        acc_i[both] = a_i
        acc_f[both] = a_f
    acc_f[:, 13] = surface


def _raster_before(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows where voxel index a comes before b in raster (z, y, x) order."""
    return (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & ((a[:, 1] < b[:, 1]) | ((a[:, 1] == b[:, 1]) & (a[:, 2] < b[:, 2]))))


def _add_voxel_sums(a_i, a_f, p_i, p_f) -> None:
    """Add the voxel sums of p into a (both non-empty), keeping a's origin."""
    n_p = p_i[:, 0].astype(np.float64)
    shift = (p_i[:, 7:10] - a_i[:, 7:10]).astype(np.float64)  # part origin relative to total origin
    s1 = p_f[:, 0:3]
    # sums of (c - o_a) = sums of (c - o_p) + n * (o_p - o_a); likewise for products
    a_f[:, 0:3] += s1 + n_p[:, None] * shift
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    for col, (i, j) in enumerate(pairs):
        a_f[:, 3 + col] += p_f[:, 3 + col] + shift[:, i] * s1[:, j] + shift[:, j] * s1[:, i] + n_p * shift[:, i] * shift[:, j]
    a_f[:, 9:11] += p_f[:, 9:11]
    a_f[:, 11] = np.minimum(a_f[:, 11], p_f[:, 11])
    a_f[:, 12] = np.maximum(a_f[:, 12], p_f[:, 12])
    a_i[:, 0] += p_i[:, 0]
    a_i[:, 1:4] = np.minimum(a_i[:, 1:4], p_i[:, 1:4])
    a_i[:, 4:7] = np.maximum(a_i[:, 4:7], p_i[:, 4:7])


def _accumulate(labels, intensity, lut, cubes, n, threads, *, count_voxels=True, surface_from=(0, 0, 0)):
    """Packed accumulators ``(acc_i (n, 10) int64, acc_f (n, 14) float64)`` over the cubes, split in z over threads.

    See :func:`_stats_box` for ``count_voxels`` and ``surface_from``.
    """
    surface_from = np.asarray(surface_from, np.int64)
    # every thread keeps its own accumulators (SCRATCH_BYTES_PER_LABEL per label): bounded in all
    threads = max(1, min(int(threads), SCRATCH_BUDGET_BYTES // (SCRATCH_BYTES_PER_LABEL * max(n, 1))))
    have_intensity = intensity is not None
    if not have_intensity:
        intensity = np.zeros((1, 1, 1), np.float32)
    have_surface = lut is not None
    lut = np.zeros(256) if lut is None else lut
    z_edges = np.linspace(cubes[0, 0], cubes[0, 1], max(1, min(threads, cubes[0, 1] - cubes[0, 0])) + 1)
    z_edges = z_edges.round().astype(np.int64)

    def run(k):
        box = cubes.copy()
        box[0] = z_edges[k], z_edges[k + 1]
        acc_i = np.zeros((n, 10), np.int64)
        acc_f = np.zeros((n, 14), np.float64)
        if box[0, 1] > box[0, 0]:
            _stats_box(labels, intensity, have_intensity, lut, have_surface, count_voxels, box, surface_from,
                       acc_i, acc_f)
        return acc_i, acc_f

    if len(z_edges) == 2:
        parts = [run(0)]
    else:
        with ThreadPoolExecutor(len(z_edges) - 1) as pool:
            parts = list(pool.map(run, range(len(z_edges) - 1)))
    acc_i, acc_f = parts[0]
    for part_i, part_f in parts[1:]:
        _merge(acc_i, acc_f, part_i, part_f)
    return acc_i, acc_f


def _as_dict(acc_i: np.ndarray, acc_f: np.ndarray, have_intensity: bool) -> dict[str, np.ndarray]:
    """The packed accumulators as :func:`region_stats` returns them."""
    acc_f = acc_f.copy()
    acc_f[acc_i[:, 0] == 0, 11:13] = np.nan
    if not have_intensity:
        acc_f[:, 9:13] = np.nan
    return {
        "count": acc_i[:, 0].copy(),
        "bbox_min": acc_i[:, 1:4].copy(),
        "bbox_max": acc_i[:, 4:7].copy(),
        "origin": acc_i[:, 7:10].copy(),
        "first_moment": acc_f[:, 0:3].copy(),
        "second_moment": acc_f[:, 3:9].copy(),
        "intensity_sum": acc_f[:, 9].copy(),
        "intensity_sum_sq": acc_f[:, 10].copy(),
        "intensity_min": acc_f[:, 11].copy(),
        "intensity_max": acc_f[:, 12].copy(),
        "surface_area": acc_f[:, 13].copy(),
    }


def _check_inputs(labels, intensity, surface_lut):
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3-D, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    if intensity is not None:
        intensity = np.asarray(intensity)
        if intensity.shape != labels.shape:
            raise ValueError(f"intensity has shape {intensity.shape}, labels {labels.shape}")
        if intensity.dtype.kind not in "biuf":
            raise ValueError(f"intensity must be numeric, got {intensity.dtype}")
        intensity = np.ascontiguousarray(intensity)
        intensity = intensity.view(np.uint8) if intensity.dtype == bool else intensity
    if surface_lut is not None:
        surface_lut = np.ascontiguousarray(surface_lut, dtype=np.float64)
        if surface_lut.shape != (256,):
            raise ValueError(f"surface_lut must have 256 entries, got shape {surface_lut.shape}")
    labels = np.ascontiguousarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    return labels, intensity, surface_lut


def _cube_range(shape, cubes) -> np.ndarray:
    if cubes is None:
        return np.array([[0, n + 1] for n in shape], np.int64)
    cubes = np.array(cubes, np.int64)
    if cubes.shape != (3, 2) or (cubes[:, 0] < 0).any() or (cubes[:, 1] > np.array(shape) + 1).any():
        raise ValueError(f"cubes must be three (lo, hi) ranges within 0..n+1 of shape {shape}, got {cubes.tolist()}")
    return cubes


def region_stats(
    labels: np.ndarray,
    intensity: np.ndarray | None = None,
    *,
    surface_lut: np.ndarray | None = None,
    max_label: int | None = None,
    cubes=None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Accumulate per-label statistics of a label volume in one pass.

    Everything is in voxel units; :func:`sxtseg.measure` turns it into a
    table in physical units.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of integers
        Label volume, 0 is background.
    intensity : (Z, Y, X) ndarray, optional
        Grey values (e.g. LAC), same shape as ``labels``.
    surface_lut : (256,) ndarray of float64, optional
        Surface-area weight of each 2x2x2 configuration (bit ``dz*4 + dy*2 + dx``
        set where the corner belongs to the label), in the caller's area unit.
        Without it, ``surface_area`` is all zero and the cube bookkeeping is skipped.
    max_label : int, optional
        Largest label (default: ``labels.max()``).
    cubes : ((z0, z1), (y0, y1), (x0, x1)), optional
        Accumulate only the 2x2x2 cubes whose upper corner lies in these
        ranges, and only the voxels that are such upper corners.  Upper
        corners run from 0 to n along an axis of n voxels (corners outside
        the array count as background).  Default: all, ``((0, Z+1), (0, Y+1),
        (0, X+1))``.  A block of a larger volume, read with one voxel of its
        lower neighbours, is measured exactly once with ``(1, 1 + size)``
        along each axis that has a lower neighbour (``(0, size)`` otherwise,
        and one more at the volume's far end): see
        :mod:`sxtseg._chunked_measure`.
    threads : int, optional
        Number of z-slabs accumulated in parallel (default:
        :func:`default_threads`).  Each thread keeps its own accumulators,
        :data:`SCRATCH_BYTES_PER_LABEL` (192) bytes per label, and the
        threads are cut so that all together stay under
        :data:`SCRATCH_BUDGET_BYTES` (1 GiB): 10 million labels run on
        at most one thread's worth of 1.9 GB.

    Returns
    -------
    dict of ndarray
        One entry per label 0..max_label (row 0, the background, is left
        empty): ``count`` (voxels), ``bbox_min`` and ``bbox_max`` (inclusive,
        (z, y, x) voxel indices), ``origin`` (the label's first voxel in
        raster order, the reference of the moments), ``first_moment`` (sum of
        (z, y, x) - origin), ``second_moment`` (sums of products of
        (c - origin) in the order zz, yy, xx, zy, zx, yx), ``intensity_sum``,
        ``intensity_sum_sq``, ``intensity_min``, ``intensity_max`` and
        ``surface_area``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((3, 4, 4), np.uint8)
    >>> labels[1, 1:3, 1:3] = 1
    >>> stats = region_stats(labels, intensity=labels * 2.0)
    >>> int(stats["count"][1]), stats["bbox_min"][1].tolist(), stats["bbox_max"][1].tolist()
    (4, [1, 1, 1], [1, 2, 2])
    >>> float(stats["intensity_sum"][1]), (stats["origin"][1] + stats["first_moment"][1] / 4).tolist()
    (8.0, [1.0, 1.5, 1.5])
    """
    labels, intensity, surface_lut = _check_inputs(labels, intensity, surface_lut)
    largest = int(labels.max()) if labels.size else 0
    if max_label is None:
        max_label = largest
    elif largest > max_label:
        raise ValueError(f"labels hold {largest}, above max_label={max_label}")
    box = _cube_range(labels.shape, cubes)
    threads = default_threads(threads, voxels=labels.size)
    acc_i, acc_f = _accumulate(labels, intensity, surface_lut, box, int(max_label) + 1, threads)
    return _as_dict(acc_i, acc_f, intensity is not None)
