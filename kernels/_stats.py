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

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

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
def _stats_slab(labels, intensity, have_intensity, lut, have_surface, z0, z1, acc_i, acc_f):  # pragma: no cover
    """Accumulate voxels of planes z0..z1-1 and the cubes whose upper corner lies there."""
    nz, ny, nx = labels.shape
    corner = np.zeros(8, labels.dtype)
    for z in range(z0 - 1, z1 - 1):  # lower corner of the cube; the upper corner plane is z+1
        for y in range(-1, ny):
            for x in range(-1, nx):
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
                if top != 0:
                    value = float(intensity[z + 1, y + 1, x + 1]) if have_intensity else 0.0
                    _accumulate_voxel(top, z + 1, y + 1, x + 1, value, acc_i, acc_f, have_intensity)
                if not have_surface:
                    continue
                first = corner[0]
                uniform = True
                for k in range(1, 8):
                    if corner[k] != first:
                        uniform = False
                        break
                if uniform:
                    continue  # all background, or inside one object: no surface
                for k in range(8):
                    lab = corner[k]
                    if lab == 0:
                        continue
                    seen = False
                    for m in range(k):
                        if corner[m] == lab:
                            seen = True
                            break
                    if seen:
                        continue
                    config = 0
                    for m in range(k, 8):
                        if corner[m] == lab:
                            config |= 1 << m
                    acc_f[lab, 13] += lut[config]


def _merge(acc_i: np.ndarray, acc_f: np.ndarray, part_i: np.ndarray, part_f: np.ndarray) -> None:
    """Merge one slab's accumulators into the running totals (in place)."""
    # a slab can hold surface cubes of a label whose voxels all lie in another slab
    surface = acc_f[:, 13] + part_f[:, 13]
    _merge_voxel_sums(acc_i, acc_f, part_i, part_f)
    acc_f[:, 13] = surface


def _merge_voxel_sums(acc_i, acc_f, part_i, part_f) -> None:
    new = (part_i[:, 0] > 0) & (acc_i[:, 0] == 0)
    acc_i[new] = part_i[new]
    acc_f[new] = part_f[new]
    both = (part_i[:, 0] > 0) & (acc_i[:, 0] > 0) & ~new
    if not both.any():
        return
    a_i, a_f, p_i, p_f = acc_i[both], acc_f[both], part_i[both], part_f[both]
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
    acc_i[both] = a_i
    acc_f[both] = a_f


def region_stats(
    labels: np.ndarray,
    intensity: np.ndarray | None = None,
    *,
    surface_lut: np.ndarray | None = None,
    max_label: int | None = None,
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
    threads : int, optional
        Number of z-slabs accumulated in parallel (default: the CPU count).

    Returns
    -------
    dict of ndarray
        One entry per label 0..max_label (row 0, the background, is left
        empty): ``count`` (voxels), ``bbox_min`` and ``bbox_max`` (inclusive,
        (z, y, x) voxel indices), ``origin`` (the label's first voxel, the
        reference of the moments), ``first_moment`` (sum of (z, y, x) - origin),
        ``second_moment`` (sums of products of (c - origin) in the order
        zz, yy, xx, zy, zx, yx), ``intensity_sum``, ``intensity_sum_sq``,
        ``intensity_min``, ``intensity_max`` and ``surface_area``.

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
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3-D, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    have_intensity = intensity is not None
    if have_intensity:
        intensity = np.asarray(intensity)
        if intensity.shape != labels.shape:
            raise ValueError(f"intensity has shape {intensity.shape}, labels {labels.shape}")
        if intensity.dtype.kind not in "biuf":
            raise ValueError(f"intensity must be numeric, got {intensity.dtype}")
        intensity = np.ascontiguousarray(intensity)
        intensity = intensity.view(np.uint8) if intensity.dtype == bool else intensity
    else:
        intensity = np.zeros((1, 1, 1), np.float32)
    have_surface = surface_lut is not None
    lut = np.zeros(256) if surface_lut is None else np.ascontiguousarray(surface_lut, dtype=np.float64)
    if lut.shape != (256,):
        raise ValueError(f"surface_lut must have 256 entries, got shape {lut.shape}")
    labels = np.ascontiguousarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    largest = int(labels.max()) if labels.size else 0
    if max_label is None:
        max_label = largest
    elif largest > max_label:
        raise ValueError(f"labels hold {largest}, above max_label={max_label}")
    n = int(max_label) + 1

    threads = threads or int(os.environ.get("SXTSEG_THREADS", 0)) or (os.cpu_count() or 1)
    nz = labels.shape[0]
    edges = np.linspace(0, nz + 1, max(1, min(threads, nz + 1)) + 1).round().astype(int)
    # slab k covers upper-corner planes edges[k]..edges[k+1]-1 of the padded grid (plane nz+1 is padding)
    bounds = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def run(bound):
        acc_i = np.zeros((n, 10), np.int64)
        acc_f = np.zeros((n, 14), np.float64)
        _stats_slab(labels, intensity, have_intensity, lut, have_surface, bound[0], bound[1], acc_i, acc_f)
        return acc_i, acc_f

    if len(bounds) == 1:
        parts = [run(bounds[0])]
    else:
        with ThreadPoolExecutor(len(bounds)) as pool:
            parts = list(pool.map(run, bounds))
    acc_i, acc_f = parts[0]
    for part_i, part_f in parts[1:]:
        _merge(acc_i, acc_f, part_i, part_f)
    empty = acc_i[:, 0] == 0
    acc_f[empty, 11:13] = np.nan
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
