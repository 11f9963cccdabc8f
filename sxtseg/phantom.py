"""Synthetic SXT volumes of a SARS-CoV-2-infected cell, with exact ground truth.

:func:`make_infected_cell` draws one cell in vitreous ice: an ellipsoidal cell
with an irregular boundary, an off-centre nucleus with one or two nucleoli,
tubular mitochondria, lipid droplets, and a perinuclear "replication factory"
of double-membrane vesicles (DMVs), some of them touching in pairs.  It
returns the reconstructed-looking image (linear absorption coefficients,
blurred and noisy), the class labels, the instance labels and a table of every
object with its true geometry.  Later stages (segmentation, instance
splitting, morphometrics) are tested against it.

Linear absorption coefficients
------------------------------
The grey values are linear absorption coefficients (LAC, 1/µm) in the water
window (~510-517 eV), chosen inside the published ranges for cryo-SXT of
eukaryotic cells, see :data:`LAC`:

* vitreous ice ~0.109 /µm at 517 eV (Weiss et al. 2000, Ultramicroscopy
  84:185; Le Gros, McDermott & Larabell 2005, Curr. Opin. Struct. Biol.
  15:593);
* cytoplasm ~0.20-0.25, nucleus slightly above it, nucleolus and mitochondria
  ~0.30-0.40, lipid droplets the highest (~0.55-0.75) (Parkinson et al. 2008,
  J. Struct. Biol. 162:380, "Quantitative 3-D imaging of eukaryotic cells
  using soft X-ray tomography"; Uchida et al. 2009, PNAS 106:19375);
* DMVs in SARS-CoV-2-infected cells: dense membranes around a lumen slightly
  denser than cytoplasm (Loconte et al. 2021, Cell Rep. Methods 1:100117,
  "Using soft X-ray tomography for rapid whole-cell quantitative imaging of
  SARS-CoV-2-infected cells").

The values are representative, not a measurement: each paper reports a spread
that depends on cell type, photon energy and reconstruction.

Coordinates
-----------
Positions are physical, in nanometres, with the *centre* of voxel ``(i, j, k)``
at ``(i * v, j * v, k * v)`` for voxel size ``v``: the same convention as
``scipy.ndimage.center_of_mass(mask) * v``.  A voxel belongs to an object when
its centre lies inside the object's analytic shape.

Examples
--------
>>> from sxtseg.phantom import make_infected_cell
>>> image, classes, instances, objects = make_infected_cell((32, 64, 64), seed=1)
>>> image.shape, str(image.dtype), image.voxel_size, image.unit
((32, 64, 64), 'float32', (30.0, 30.0, 30.0), 'nm')
>>> str(classes.dtype), str(instances.dtype)
('uint8', 'uint32')
>>> objects.loc[0, "class_name"], objects.loc[1, "class_name"]
('cytoplasm', 'nucleus')
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from .classes import CLASS_COLORS, CLASS_NAMES, SXTClass
from .errors import InvalidArgumentError, ShapeError, VoxelSizeError
from .volume import Volume, dask_view

__all__ = ["LAC", "make_infected_cell"]

logger = logging.getLogger(__name__)

#: Linear absorption coefficient (1/µm, water window ~510-517 eV) of each
#: compartment drawn by :func:`make_infected_cell`; sources in the module docstring.
LAC: dict[str, float] = {
    "ice": 0.109,
    "cytoplasm": 0.22,
    "nucleus": 0.25,
    "nucleolus": 0.36,
    "mitochondrion": 0.33,
    "lipid_droplet": 0.65,
    "dmv_membrane": 0.40,
    "dmv_lumen": 0.28,
}

# ------------------------------------------------------------ geometry rules
# The cell and nucleus scale with the volume; organelles have physical sizes (nm).
_MIN_SIDE_VOXELS = 32
_ICE_MARGIN = 0.04  # least ice between the cell and each border, fraction of the extent
_ICE_MARGIN_VOXELS = 3  # ... and in voxels
_CELL_ROUGHNESS = 0.08  # largest relative bump of the cell boundary
_MIN_CELL_DIAMETER_NM = 500.0  # below this there is no room for a nucleus and cytoplasm
_NUCLEUS_FRACTION_Z = (0.55, 0.65)  # nucleus semi-axis / cell semi-axis along z
_NUCLEUS_FRACTION_YX = (0.42, 0.52)  # along y and x (of the smaller cell semi-axis)
_NUCLEUS_OFFSET = 0.3  # off-centre shift in the yx plane, fraction of the cell semi-axis
_NUCLEOLUS_FRACTION = (0.22, 0.32)  # nucleolus radius / smallest nucleus semi-axis
_MITO_RADIUS_NM = (125.0, 250.0)  # tube radius: 250-500 nm thick
_MITO_LENGTH_NM = (1000.0, 3000.0)  # end-to-end capsule length along the tube
_MITO_MAX_BEND = 0.25  # sideways bow of the centre line, fraction of its length
_LIPID_RADIUS_NM = (150.0, 400.0)  # 300-800 nm diameter
_DMV_RADIUS_NM = (100.0, 200.0)  # outer radius: 200-400 nm outer diameter
_DMV_RADIUS_MEAN_NM, _DMV_RADIUS_SD_NM = 150.0, 25.0
_DMV_ZONE_NM = (200.0, 1300.0)  # distance nuclear envelope -> DMV centre
_DMV_ZONE_HALF_ANGLE_DEG = 60.0  # the factory is on one side of the nucleus
_DMV_PAIR_DISTANCE = (0.90, 0.95)  # centre distance of a touching pair / sum of radii
_DMV_SUPERSAMPLING = 3  # sub-samples per axis for the partial-volume DMV image
# default counts per µm³ of cytoplasm
_DMV_PER_UM3 = 0.8
_MITO_PER_UM3 = 1 / 4
_LIPID_PER_UM3 = 1 / 10
_LAC_JITTER = 0.04  # each organelle's LAC varies by up to ±4 %
# relative amplitude of the smooth within-class texture, per class code
_TEXTURE_AMPLITUDE = {0: 0.01, 1: 0.03, 2: 0.05, 3: 0.03, 4: 0.03, 5: 0.02, 6: 0.02}
_TEXTURE_LENGTH_NM = 200.0  # correlation length of the texture
_Z_BLUR_FACTOR = 1.5  # missing-wedge elongation: sigma_z = 1.5 * sigma_xy
_BATCH = 64  # candidate positions tried at once
_MAX_BATCHES = 20  # per object, before giving up on placing more of its kind

# the 26 directions to the neighbours of a voxel, as unit vectors
_DIRECTIONS_26 = np.array(
    [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)],
    dtype=float,
)
_DIRECTIONS_26 /= np.linalg.norm(_DIRECTIONS_26, axis=1, keepdims=True)


# ======================================================================
# the objects
# ======================================================================
@dataclass
class _Roughness:
    """Low-frequency bumps on the unit sphere: the relative radius change of the cell."""

    frequencies: np.ndarray  # (K, 3) cycles per unit length
    phases: np.ndarray  # (K,)
    weights: np.ndarray  # (K,)

    def __call__(self, directions: np.ndarray) -> np.ndarray:
        """Relative radius change for unit vectors ``directions`` (..., 3)."""
        angles = 2 * np.pi * (directions @ self.frequencies.T) + self.phases
        return np.cos(angles) @ self.weights


@dataclass
class _Object:
    """One object of the phantom, in physical coordinates (nm, (z, y, x))."""

    class_id: int
    kind: str  # "cell", "ellipsoid", "sphere", "dmv" or "tube"
    center: np.ndarray  # defining centre: ellipsoid/sphere centre, tube chord midpoint
    semi_axes: np.ndarray  # ellipsoid semi-axes; sphere/DMV/tube: the radius three times
    path: np.ndarray | None = None  # tube centre line, (n, 3) points
    roughness: _Roughness | None = None  # cell boundary
    lac_factor: float = 1.0  # this object's LAC relative to its class LAC
    parent: "_Object | None" = None  # the object it lies inside (cell, or nucleus for nucleoli)
    partner: "_Object | None" = None  # the DMV it was placed touching
    # filled in while drawing
    instance_id: int = 0
    n_voxels: int = 0  # voxels of the whole body, objects inside it included
    clipped: bool = False
    touching: bool = False

    @property
    def radius(self) -> float:
        return float(self.semi_axes.max())


@dataclass
class _Scene:
    """Everything the placement steps need to know about the cell drawn so far."""

    clearance: float  # smallest gap between two objects, nm
    cell: _Object
    nucleus: _Object
    factory_direction: np.ndarray  # unit vector from the nucleus centre into the DMV zone
    centers: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))  # obstacle spheres
    radii: np.ndarray = field(default_factory=lambda: np.empty(0))

    def add_obstacle(self, centers: np.ndarray, radii: np.ndarray) -> None:
        self.centers = np.vstack([self.centers, np.reshape(centers, (-1, 3))])
        self.radii = np.concatenate([self.radii, np.ravel(radii)])

    def is_free(self, centers: np.ndarray, radii: np.ndarray) -> bool:
        """True when spheres (centers, radii) keep the clearance from every obstacle."""
        if len(self.radii) == 0:
            return True
        dist = np.linalg.norm(centers[:, None, :] - self.centers[None, :, :], axis=-1)
        gap = dist - radii[:, None] - self.radii[None, :]
        return bool(gap.min() >= self.clearance)


# ======================================================================
# small geometry helpers
# ======================================================================
def _random_unit_vectors(rng: np.random.Generator, n: int, z_scale: float = 1.0) -> np.ndarray:
    """``n`` random unit vectors; ``z_scale < 1`` tilts them toward the yx plane."""
    v = rng.standard_normal((n, 3))
    v[:, 0] *= z_scale
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spread unit vectors (z, y, x)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z**2)
    phi = np.pi * (1 + 5**0.5) * i
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


def _inside_cell(cell: _Object, points: np.ndarray) -> np.ndarray:
    """Whether each point (n, 3) lies inside the cell's irregular boundary."""
    q = (points - cell.center) / cell.semi_axes
    rho = np.linalg.norm(q, axis=1)
    directions = q / np.maximum(rho, 1e-12)[:, None]
    return rho <= 1 + cell.roughness(directions)


def _spheres_inside_cell(cell: _Object, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each sphere lies inside the cell: its centre and 26 surface points."""
    points = centers[:, None, :] + radii[:, None, None] * _DIRECTIONS_26[None, :, :]
    points = np.concatenate([centers[:, None, :], points], axis=1)
    inside = _inside_cell(cell, points.reshape(-1, 3)).reshape(len(centers), -1)
    return inside.all(axis=1)


def _distance_to_ellipsoid(points: np.ndarray, center: np.ndarray, semi_axes: np.ndarray) -> np.ndarray:
    """Euclidean distance (nm) from points (n, 3) to an axis-aligned ellipsoid; 0 inside.

    The closest surface point is ``x_i = a_i² p_i / (a_i² + t)`` where ``t > 0``
    solves ``sum((a_i p_i / (a_i² + t))²) = 1``; ``t`` is found by bisection.
    """
    p = np.abs(points - center)
    a2 = semi_axes**2
    outside = ((p / semi_axes) ** 2).sum(axis=1) > 1
    lo = np.zeros(len(p))
    hi = np.linalg.norm(semi_axes * p, axis=1)  # the sum is <= 1 there
    for _ in range(60):
        t = (lo + hi) / 2
        too_small = ((semi_axes * p / (a2 + t[:, None])) ** 2).sum(axis=1) > 1
        lo = np.where(too_small, t, lo)
        hi = np.where(too_small, hi, t)
    closest = a2 * p / (a2 + hi[:, None])
    return np.where(outside, np.linalg.norm(p - closest, axis=1), 0.0)


def _resample_path(path: np.ndarray, spacing: float) -> np.ndarray:
    """Points along a polyline, at most ``spacing`` apart, both ends included."""
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    n = max(2, int(math.ceil(cumulative[-1] / spacing)) + 1)
    s = np.linspace(0, cumulative[-1], n)
    return np.stack([np.interp(s, cumulative, path[:, k]) for k in range(3)], axis=1)


def _bezier_path(start: np.ndarray, control: np.ndarray, end: np.ndarray, n_points: int = 9) -> np.ndarray:
    """Points on the quadratic Bézier curve start -> end bowed toward ``control``."""
    t = np.linspace(0, 1, n_points)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


# ======================================================================
# placing the objects (all in nm, nothing drawn yet)
# ======================================================================
def _make_cell(rng: np.random.Generator, shape: tuple[int, int, int], v: float) -> _Object:
    """The cell: an ellipsoid nearly spanning the volume, boundary bumped by low-frequency noise."""
    extent = np.array(shape, float) * v
    margin = np.maximum(_ICE_MARGIN_VOXELS * v, _ICE_MARGIN * extent)  # ice between cell and border
    room = extent / 2 - margin  # largest distance from the centre the bumpy boundary may reach
    semi_axes = room / (1 + _CELL_ROUGHNESS) * rng.uniform(0.96, 1.0, 3)
    slack = room - semi_axes * (1 + _CELL_ROUGHNESS)
    center = (np.array(shape, float) - 1) / 2 * v + rng.uniform(-1, 1, 3) * slack
    n_terms = 8
    frequencies = _random_unit_vectors(rng, n_terms) * rng.uniform(0.3, 0.8, (n_terms, 1))
    roughness = _Roughness(frequencies, rng.uniform(0, 2 * np.pi, n_terms), rng.standard_normal(n_terms))
    # scale so the largest bump is _CELL_ROUGHNESS of the radius
    roughness.weights *= _CELL_ROUGHNESS / np.abs(roughness(_fibonacci_sphere(4000))).max()
    return _Object(SXTClass.CYTOPLASM, "cell", center, semi_axes, roughness=roughness)


def _cell_volume_and_centroid(cell: _Object) -> tuple[float, np.ndarray]:
    """Volume (nm³) and centroid (nm) of the bumpy cell, by quadrature over directions.

    In coordinates scaled by the semi-axes the cell is the star-shaped body
    ``rho <= 1 + roughness(u)``: its volume is the integral of ``(1 + r)³ / 3``
    over the unit sphere, its first moment that of ``u (1 + r)⁴ / 4``.
    """
    u = _fibonacci_sphere(20000)
    radius = 1 + cell.roughness(u)
    weight = 4 * np.pi / len(u)
    volume_scaled = weight * (radius**3 / 3).sum()
    moment_scaled = weight * (u * (radius**4 / 4)[:, None]).sum(axis=0)
    volume = volume_scaled * float(np.prod(cell.semi_axes))
    centroid = cell.center + cell.semi_axes * moment_scaled / volume_scaled
    return volume, centroid


def _make_nucleus(rng: np.random.Generator, cell: _Object, clearance: float) -> tuple[_Object, np.ndarray]:
    """The nucleus (axis-aligned ellipsoid, shifted off-centre in yx) and the factory direction."""
    a_cell = cell.semi_axes
    semi_axes = np.array(
        [
            a_cell[0] * rng.uniform(*_NUCLEUS_FRACTION_Z),
            a_cell[1:].min() * rng.uniform(*_NUCLEUS_FRACTION_YX),
            a_cell[1:].min() * rng.uniform(*_NUCLEUS_FRACTION_YX),
        ]
    )
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([0.0, math.sin(angle), math.cos(angle)])
    # cell radius along that direction, then shrink the shift until the nucleus fits
    offset = _NUCLEUS_OFFSET / np.linalg.norm(direction[1:] / a_cell[1:])
    margin = max(0.1 * a_cell.min(), clearance)
    surface = _fibonacci_sphere(400)
    for _ in range(12):
        center = cell.center + offset * direction
        points = center + surface * (semi_axes + margin)
        if _inside_cell(cell, points).all():
            break
        offset *= 0.7
    else:
        raise ShapeError("the volume is too small to hold a cell with a nucleus")
    nucleus = _Object(SXTClass.NUCLEUS, "ellipsoid", center, semi_axes, parent=cell)
    # DMVs gather on the side with more cytoplasm: away from the shift
    return nucleus, -direction


def _place_nucleoli(rng: np.random.Generator, nucleus: _Object, clearance: float) -> list[_Object]:
    """One or two nucleoli (ellipsoids) inside the nucleus, apart from each other."""
    wanted = int(rng.integers(1, 3))
    surface = _fibonacci_sphere(100)
    placed: list[_Object] = []
    for _ in range(wanted):
        base = nucleus.semi_axes.min() * rng.uniform(*_NUCLEOLUS_FRACTION)
        semi_axes = base * rng.uniform(0.85, 1.15, 3)
        for _ in range(200):
            center = nucleus.center + nucleus.semi_axes * 0.6 * rng.uniform(-1, 1, 3)
            points = center + surface * (semi_axes + clearance)
            inside = (((points - nucleus.center) / nucleus.semi_axes) ** 2).sum(axis=1) <= 1
            apart = all(
                np.linalg.norm(center - other.center) >= other.radius + semi_axes.max() + clearance
                for other in placed
            )
            if inside.all() and apart:
                factor = 1 + rng.uniform(-_LAC_JITTER, _LAC_JITTER)
                nucleolus = _Object(
                    SXTClass.NUCLEOLUS, "ellipsoid", center, semi_axes, lac_factor=factor, parent=nucleus
                )
                placed.append(nucleolus)
                break
    if not placed:
        raise ShapeError("the nucleus is too small to hold a nucleolus; use a larger shape or voxel size")
    return placed


def _dmv_candidates(rng: np.random.Generator, scene: _Scene, n: int) -> np.ndarray:
    """Candidate DMV centres, uniform in the factory cone on one side of the nucleus.

    Points are drawn uniformly in the box around the nucleus that the zone can
    reach (cut to the cell's box); those outside the cone are dropped here,
    those too near or too far from the envelope by :func:`_dmv_fits`.
    """
    nucleus, cell = scene.nucleus, scene.cell
    reach = nucleus.semi_axes + _DMV_ZONE_NM[1]
    cell_reach = cell.semi_axes * (1 + _CELL_ROUGHNESS)
    lo = np.maximum(nucleus.center - reach, cell.center - cell_reach)
    hi = np.minimum(nucleus.center + reach, cell.center + cell_reach)
    points = rng.uniform(lo, hi, (n, 3))
    offset = points - nucleus.center
    cos_angle = offset @ scene.factory_direction / np.linalg.norm(offset, axis=1)
    return points[cos_angle >= math.cos(math.radians(_DMV_ZONE_HALF_ANGLE_DEG))]


def _dmv_fits(scene: _Scene, centers: np.ndarray, radius: float) -> np.ndarray:
    """Which candidate DMV centres lie in the cell, in the zone and clear of the nucleus."""
    radii = np.full(len(centers), radius + scene.clearance)
    in_cell = _spheres_inside_cell(scene.cell, centers, radii)
    to_nucleus = _distance_to_ellipsoid(centers, scene.nucleus.center, scene.nucleus.semi_axes)
    near = max(_DMV_ZONE_NM[0], radius + scene.clearance)
    return in_cell & (to_nucleus >= near - 1e-6) & (to_nucleus <= _DMV_ZONE_NM[1] + 1e-6)


def _dmv_radius(rng: np.random.Generator) -> float:
    return float(np.clip(rng.normal(_DMV_RADIUS_MEAN_NM, _DMV_RADIUS_SD_NM), *_DMV_RADIUS_NM))


def _new_dmv(rng: np.random.Generator, scene: _Scene, center: np.ndarray, radius: float) -> _Object:
    factor = 1 + rng.uniform(-_LAC_JITTER, _LAC_JITTER)
    return _Object(SXTClass.DMV, "dmv", center, np.full(3, radius), lac_factor=factor, parent=scene.cell)


def _place_one_dmv(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, float] | None:
    """A free centre and radius for a DMV (not yet added to the obstacles), or None."""
    for _ in range(_MAX_BATCHES):
        radius = _dmv_radius(rng)  # a new size each batch, so small ones fill gaps
        centers = _dmv_candidates(rng, scene, _BATCH)
        for center in centers[_dmv_fits(scene, centers, radius)]:
            if scene.is_free(center[None, :], np.array([radius])):
                return center, radius
    return None


def _place_dmv_pair(rng: np.random.Generator, scene: _Scene) -> list[_Object]:
    """Two DMVs touching each other (centres 0.90-0.95 of the sum of radii apart), or []."""
    for _ in range(_MAX_BATCHES):
        found = _place_one_dmv(rng, scene)
        if found is None:
            return []
        c1, r1 = found
        r2 = _dmv_radius(rng)
        distance = rng.uniform(*_DMV_PAIR_DISTANCE, _BATCH) * (r1 + r2)
        centers = c1 + distance[:, None] * _random_unit_vectors(rng, _BATCH)
        for c2 in centers[_dmv_fits(scene, centers, r2)]:
            if scene.is_free(c2[None, :], np.array([r2])):
                first, second = _new_dmv(rng, scene, c1, r1), _new_dmv(rng, scene, c2, r2)
                first.partner, second.partner = second, first
                scene.add_obstacle(np.stack([c1, c2]), np.array([r1, r2]))
                return [first, second]
    return []


def _place_dmvs(rng: np.random.Generator, scene: _Scene, n: int, touching_fraction: float) -> list[_Object]:
    """``n`` DMVs in the factory zone, ``touching_fraction`` of them in touching pairs."""
    placed: list[_Object] = []
    n_pairs = int(round(touching_fraction * n / 2))
    for _ in range(n_pairs):
        pair = _place_dmv_pair(rng, scene)
        if not pair:
            break
        placed.extend(pair)
    while len(placed) < n:
        found = _place_one_dmv(rng, scene)
        if found is None:
            break
        center, radius = found
        scene.add_obstacle(center, np.array([radius]))
        placed.append(_new_dmv(rng, scene, center, radius))
    return placed


def _place_lipid_droplets(rng: np.random.Generator, scene: _Scene, n: int) -> list[_Object]:
    """``n`` spherical lipid droplets anywhere in the cytoplasm."""
    cell, nucleus = scene.cell, scene.nucleus
    placed: list[_Object] = []
    for _ in range(n):
        found = None
        for _ in range(_MAX_BATCHES):
            radius = rng.uniform(*_LIPID_RADIUS_NM)  # a new size each batch, so small ones fill gaps
            centers = cell.center + cell.semi_axes * rng.uniform(-1, 1, (_BATCH, 3))
            radii = np.full(_BATCH, radius + scene.clearance)
            ok = _spheres_inside_cell(cell, centers, radii)
            to_nucleus = _distance_to_ellipsoid(centers, nucleus.center, nucleus.semi_axes)
            ok &= to_nucleus >= radius + scene.clearance
            found = next((c for c in centers[ok] if scene.is_free(c[None, :], np.array([radius]))), None)
            if found is not None:
                break
        if found is None:
            break
        scene.add_obstacle(found, np.array([radius]))
        factor = 1 + rng.uniform(-_LAC_JITTER, _LAC_JITTER)
        droplet = _Object(
            SXTClass.LIPID_DROPLET, "sphere", found, np.full(3, radius), lac_factor=factor, parent=cell
        )
        placed.append(droplet)
    return placed


def _random_tube(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, float]:
    """A random mitochondrion centre line (Bézier polyline, nm) and tube radius (nm).

    Cells are flat, so the tube lies mostly in the yx plane, in the thicker
    middle of the cell, and runs roughly around the nucleus (within ±45° of
    the tangent direction), the way mitochondria line up in a crowded cell.
    """
    cell, nucleus = scene.cell, scene.nucleus
    radius = rng.uniform(*_MITO_RADIUS_NM)
    path_length = rng.uniform(*_MITO_LENGTH_NM) - 2 * radius
    middle = cell.center + cell.semi_axes * rng.uniform([-0.5, -0.9, -0.9], [0.5, 0.9, 0.9])
    angle = math.atan2(middle[1] - nucleus.center[1], middle[2] - nucleus.center[2])
    angle += math.pi / 2 + rng.uniform(-math.pi / 4, math.pi / 4)
    direction = np.array([rng.normal(0, 0.15), math.sin(angle), math.cos(angle)])
    direction /= np.linalg.norm(direction)
    sideways = np.cross(direction, _random_unit_vectors(rng, 1)[0])
    sideways /= np.linalg.norm(sideways)
    bend = rng.uniform(0, _MITO_MAX_BEND) * path_length
    start, end = middle - direction * path_length / 2, middle + direction * path_length / 2
    return _bezier_path(start, middle + sideways * bend, end), radius


def _place_mitochondria(rng: np.random.Generator, scene: _Scene, n: int) -> list[_Object]:
    """``n`` mitochondria: bent capsule-shaped tubes in the cytoplasm."""
    cell, nucleus = scene.cell, scene.nucleus
    placed: list[_Object] = []
    for _ in range(n):
        found = None
        for _ in range(_MAX_BATCHES * _BATCH // 4):
            path, radius = _random_tube(rng, scene)
            # the tube as a chain of spheres r/3 apart; their union is at most 1.4 % thinner between centres
            centers = _resample_path(path, radius / 3)
            radii = np.full(len(centers), radius)
            if not _inside_cell(cell, path[[0, len(path) // 2, -1]]).all():
                continue  # cheap test first
            if not _spheres_inside_cell(cell, centers, radii + scene.clearance).all():
                continue
            to_nucleus = _distance_to_ellipsoid(centers, nucleus.center, nucleus.semi_axes)
            if (to_nucleus < radius + scene.clearance).any():
                continue
            if scene.is_free(centers, radii):
                found = (path, radius, centers, radii)
                break
        if found is None:
            break
        path, radius, centers, radii = found
        scene.add_obstacle(centers, radii)
        factor = 1 + rng.uniform(-_LAC_JITTER, _LAC_JITTER)
        middle = (path[0] + path[-1]) / 2
        mitochondrion = _Object(
            SXTClass.MITOCHONDRION, "tube", middle, np.full(3, radius),
            path=path, lac_factor=factor, parent=cell,
        )  # fmt: skip
        placed.append(mitochondrion)
    return placed


# ======================================================================
# drawing into voxels
# ======================================================================
def _box(lo_nm: np.ndarray, hi_nm: np.ndarray, v: float, shape: tuple[int, ...]):
    """Voxel slices covering the physical box [lo, hi], clipped to the volume.

    Returns the slices, open coordinate grids (nm) of the voxel centres in the
    box, and whether the box reached beyond the volume.
    """
    start = np.floor(np.asarray(lo_nm) / v).astype(int)
    stop = np.ceil(np.asarray(hi_nm) / v).astype(int) + 1
    beyond = bool((start < 0).any() or (stop > np.array(shape)).any())
    start = np.clip(start, 0, shape)
    stop = np.clip(stop, 0, shape)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    z, y, x = (np.arange(a, b) * v for a, b in zip(start, stop))
    return slices, (z[:, None, None], y[None, :, None], x[None, None, :]), beyond


def _squared_distance_to_segment(grids, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance (nm²) from each grid point to the segment a-b."""
    z, y, x = grids
    ab = b - a
    t = ((z - a[0]) * ab[0] + (y - a[1]) * ab[1] + (x - a[2]) * ab[2]) / max(float(ab @ ab), 1e-12)
    t = np.clip(t, 0, 1)
    return (z - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (x - a[2] - t * ab[2]) ** 2


def _power_distance(grids, center: np.ndarray, radius: float) -> np.ndarray:
    """``|p - c|² - r²``: negative inside the sphere; equal for two spheres on their contact plane."""
    z, y, x = grids
    return (z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 - radius**2


def _object_mask(obj: _Object, grids) -> np.ndarray:
    """Voxels (of the grids' box) whose centres lie inside the object's shape."""
    z, y, x = grids
    if obj.kind == "tube":
        r2 = obj.semi_axes[0] ** 2
        d2 = np.full(np.broadcast_shapes(z.shape, y.shape, x.shape), np.inf)
        for a, b in zip(obj.path[:-1], obj.path[1:]):
            d2 = np.minimum(d2, _squared_distance_to_segment(grids, a, b))
        return d2 <= r2
    if obj.kind == "dmv":
        power = _power_distance(grids, obj.center, obj.radius)
        mask = power <= 0
        if obj.partner is not None:  # split the overlap with the partner along the contact plane
            partner_power = _power_distance(grids, obj.partner.center, obj.partner.radius)
            if obj.instance_id < obj.partner.instance_id:  # the lower id takes the voxels on the plane
                mask &= power <= partner_power
            else:
                mask &= power < partner_power
        return mask
    c, a = obj.center, obj.semi_axes  # ellipsoid or sphere
    return ((z - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((x - c[2]) / a[2]) ** 2 <= 1


def _object_box(obj: _Object) -> tuple[np.ndarray, np.ndarray]:
    if obj.kind == "tube":
        return obj.path.min(axis=0) - obj.radius, obj.path.max(axis=0) + obj.radius
    return obj.center - obj.semi_axes, obj.center + obj.semi_axes


def _draw_cell(
    cell: _Object, classes: np.ndarray, instances: np.ndarray, image: np.ndarray, v: float
) -> None:
    """Paint the bumpy cell as cytoplasm, a few z-slices at a time to bound memory."""
    bound = 1.1 * _CELL_ROUGHNESS
    y = (np.arange(classes.shape[1]) * v - cell.center[1]) / cell.semi_axes[1]
    x = (np.arange(classes.shape[2]) * v - cell.center[2]) / cell.semi_axes[2]
    n_voxels = 0
    for z0 in range(0, classes.shape[0], 16):
        z = (np.arange(z0, min(z0 + 16, classes.shape[0])) * v - cell.center[0]) / cell.semi_axes[0]
        rho = np.sqrt(z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2)
        inside = rho <= 1 - bound
        band = np.nonzero(np.abs(rho - 1) <= bound)
        q = np.stack([z[band[0]], y[band[1]], x[band[2]]], axis=1) / rho[band][:, None]
        inside[band] = rho[band] <= 1 + cell.roughness(q)
        sl = slice(z0, z0 + len(z))
        classes[sl][inside] = SXTClass.CYTOPLASM
        instances[sl][inside] = cell.instance_id
        image[sl][inside] = LAC["cytoplasm"]
        n_voxels += int(inside.sum())
    cell.n_voxels = n_voxels
    faces = (classes[0], classes[-1], classes[:, 0], classes[:, -1], classes[:, :, 0], classes[:, :, -1])
    cell.clipped = any(face.any() for face in faces)  # it reaches the volume border


def _dmv_image(obj: _Object, grids, old: np.ndarray, v: float) -> np.ndarray:
    """Partial-volume image of a DMV: two dense membranes around a lumen.

    Each voxel is split into 3 x 3 x 3 sub-samples; those inside the DMV take
    the radial profile (outer membrane, thin gap, inner membrane, lumen), the
    others keep the voxel's current value ``old``.
    """
    radius = obj.radius
    membrane = float(np.clip(0.6 * v, 6.0, 0.2 * radius))  # scales with the voxel size
    lumen_lac = LAC["dmv_lumen"] * obj.lac_factor
    membrane_lac = LAC["dmv_membrane"] * obj.lac_factor
    offsets = ((np.arange(_DMV_SUPERSAMPLING) + 0.5) / _DMV_SUPERSAMPLING - 0.5) * v
    total = np.zeros(old.shape)
    covered = np.zeros(old.shape)
    for dz in offsets:
        for dy in offsets:
            for dx in offsets:
                sub = (grids[0] + dz, grids[1] + dy, grids[2] + dx)
                inside = _object_mask(obj, sub)
                r = np.sqrt(np.maximum(_power_distance(sub, obj.center, radius) + radius**2, 0))
                depth = radius - r  # distance below the outer surface
                in_membrane = (depth <= membrane) | ((depth > 2 * membrane) & (depth <= 3 * membrane))
                value = np.where(in_membrane, membrane_lac, lumen_lac)
                total += np.where(inside, value, 0.0)
                covered += inside
    n = _DMV_SUPERSAMPLING**3
    return (total + (n - covered) * old) / n


def _draw_object(
    obj: _Object, classes: np.ndarray, instances: np.ndarray, image: np.ndarray, v: float
) -> None:
    """Paint one object inside its bounding box, only over its parent's voxels.

    Voxels of any other object are left alone; if the shape needed some of
    them, the object is marked ``clipped``.
    """
    lo, hi = _object_box(obj)
    slices, grids, beyond = _box(lo, hi, v, classes.shape)
    mask = _object_mask(obj, grids)
    allowed = mask & (instances[slices] == obj.parent.instance_id)
    class_view, instance_view, image_view = classes[slices], instances[slices], image[slices]
    if obj.kind == "dmv":
        # partial-volume values, also on the cytoplasm (and partner) voxels around it
        blend = instance_view == obj.parent.instance_id
        if obj.partner is not None:
            blend |= instance_view == obj.partner.instance_id
        values = _dmv_image(obj, grids, image_view.astype(float), v)
        image_view[blend] = values[blend]
    else:
        image_view[allowed] = LAC[CLASS_NAMES[int(obj.class_id)]] * obj.lac_factor
    class_view[allowed] = obj.class_id
    instance_view[allowed] = obj.instance_id
    obj.n_voxels = int(allowed.sum())
    obj.clipped = beyond or obj.n_voxels < int(mask.sum())


def _mark_touching_dmvs(dmvs: list[_Object], instances: np.ndarray, v: float) -> None:
    """Set ``touching`` on DMVs whose voxels are face-adjacent to another DMV's."""
    if len(dmvs) < 2:
        return
    boxes = [_object_box(d) for d in dmvs]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    slices, _, _ = _box(lo, hi, v, instances.shape)
    region = instances[slices]
    is_dmv = np.zeros(int(instances.max()) + 1, bool)
    by_id = {d.instance_id: d for d in dmvs}
    is_dmv[list(by_id)] = True
    for axis in range(3):
        a = np.moveaxis(region, axis, 0)[:-1]
        b = np.moveaxis(region, axis, 0)[1:]
        both = (a != b) & is_dmv[a] & is_dmv[b]
        for i in np.unique(np.concatenate([a[both], b[both]])):
            by_id[int(i)].touching = True


def _texture(rng: np.random.Generator, shape: tuple[int, int, int], v: float) -> np.ndarray:
    """A smooth random field (float32, std ~1) with a correlation length of ~200 nm.

    Gaussian noise on a coarse grid, linearly interpolated to the full grid
    one axis at a time.
    """
    step = max(2.0, _TEXTURE_LENGTH_NM / v)
    coarse_shape = tuple(int(math.ceil(n / step)) + 2 for n in shape)
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)

    def interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
        position = np.linspace(0, n_in - 1, n_out)
        left = np.clip(np.floor(position).astype(int), 0, n_in - 2)
        weight = (position - left).astype(np.float32)
        matrix = np.zeros((n_out, n_in), np.float32)
        matrix[np.arange(n_out), left] = 1 - weight
        matrix[np.arange(n_out), left + 1] = weight
        return matrix

    mz, my, mx = (interpolation_matrix(n, c) for n, c in zip(shape, coarse_shape))
    field_ = np.einsum("ijk,xk->ijx", coarse, mx)
    field_ = np.einsum("ijx,yj->iyx", field_, my)
    return np.einsum("iyx,zi->zyx", field_, mz, optimize=True)


def _imaging(rng: np.random.Generator, image: np.ndarray, blur: float, noise: float) -> np.ndarray:
    """Blur (stronger along z, like the missing wedge) then add signal-dependent noise."""
    if blur > 0:
        sigma = (_Z_BLUR_FACTOR * blur, blur, blur)
        image = ndimage.gaussian_filter(image, sigma=sigma, mode="nearest", truncate=3.0)
    if noise > 0:
        # standard deviation noise * sqrt(signal * LAC_cytoplasm); a few slices at a time to save memory
        for z0 in range(0, image.shape[0], 16):
            slab = image[z0 : z0 + 16]
            deviation = np.sqrt(np.maximum(slab, 0) * np.float32(LAC["cytoplasm"] * noise**2))
            slab += deviation * rng.standard_normal(slab.shape, dtype=np.float32)
    return image


def _draw(objects: list[_Object], shape: tuple[int, int, int], v: float):
    """Class labels, instance labels and the noiseless LAC image of all objects."""
    classes = np.zeros(shape, np.uint8)
    instances = np.zeros(shape, np.uint32)
    image = np.full(shape, LAC["ice"], np.float32)
    cell, *others = objects
    _draw_cell(cell, classes, instances, image, v)
    for obj in others:  # parents come before the objects inside them
        _draw_object(obj, classes, instances, image, v)
    _mark_touching_dmvs([obj for obj in others if obj.kind == "dmv"], instances, v)
    return classes, instances, image


def _add_texture(rng: np.random.Generator, image: np.ndarray, classes: np.ndarray, v: float) -> np.ndarray:
    """Multiply by ``1 + amplitude(class) * smooth field``: compartments are not flat."""
    amplitude = np.array([_TEXTURE_AMPLITUDE[c] for c in range(len(SXTClass))], np.float32)
    texture = _texture(rng, image.shape, v)
    texture *= amplitude[classes]
    texture += 1
    image *= texture
    return image


def _wrap(array: np.ndarray, v: float, chunks: Any, parameters: dict, **metadata: Any) -> Volume:
    """A Volume of ``array`` with the phantom's provenance in its metadata."""
    return Volume(
        dask_view(array, chunks),  # no copy: the generated array is not used elsewhere
        voxel_size=(v, v, v),
        unit="nm",
        axes="zyx",
        metadata={
            "source": {"reader": "phantom", "path": "<phantom>"},
            "phantom": copy.deepcopy(parameters),
            **metadata,
        },
    )


# ======================================================================
# the table
# ======================================================================
def _geometry(obj: _Object, cell_volume_centroid: tuple[float, np.ndarray]) -> dict[str, Any]:
    """Analytic volume (nm³), centroid (nm), semi-axes (nm) and length (nm) of the drawn shape."""
    if obj.kind == "cell":
        volume, centroid = cell_volume_centroid
        return dict(volume=volume, centroid=centroid, semi_axes=obj.semi_axes, length=2 * obj.radius)
    if obj.kind == "tube":
        return _tube_geometry(obj)
    volume = 4 / 3 * np.pi * float(np.prod(obj.semi_axes))
    centroid = obj.center.copy()
    if obj.kind == "dmv" and obj.partner is not None:
        volume, centroid = _cut_sphere(obj, obj.partner)
    return dict(volume=volume, centroid=centroid, semi_axes=obj.semi_axes, length=2 * obj.radius)


def _cut_sphere(obj: _Object, partner: _Object) -> tuple[float, np.ndarray]:
    """Volume and centroid of a sphere cut by the contact plane shared with an overlapping sphere."""
    r, c = obj.radius, obj.center
    offset = partner.center - c
    d = float(np.linalg.norm(offset))
    plane = (d**2 + r**2 - partner.radius**2) / (2 * d)  # distance from c to the contact plane
    height = r - plane  # height of the cap given to the partner
    sphere = 4 / 3 * np.pi * r**3
    if height <= 0:
        return sphere, c.copy()
    cap = np.pi * height**2 * (3 * r - height) / 3
    cap_centroid = 3 * (2 * r - height) ** 2 / (4 * (3 * r - height))  # from c, toward the partner
    centroid = c - offset / d * cap * cap_centroid / (sphere - cap)
    return sphere - cap, centroid


def _tube_geometry(obj: _Object) -> dict[str, Any]:
    """Capsule along a polyline: cylinder pieces plus two hemispherical caps.

    The kinks between pieces add and remove equal wedges to first order, so
    ``pi r² L + 4/3 pi r³`` is the volume to well under 1 %.
    """
    r, path = obj.radius, obj.path
    pieces = np.diff(path, axis=0)
    lengths = np.linalg.norm(pieces, axis=1)
    midpoints = (path[:-1] + path[1:]) / 2
    tube_volume = np.pi * r**2 * lengths
    half_ball = 2 / 3 * np.pi * r**3
    start_cap = path[0] - pieces[0] / lengths[0] * 3 * r / 8
    end_cap = path[-1] + pieces[-1] / lengths[-1] * 3 * r / 8
    volume = float(tube_volume.sum() + 2 * half_ball)
    moment = (tube_volume[:, None] * midpoints).sum(axis=0) + half_ball * (start_cap + end_cap)
    length = float(lengths.sum() + 2 * r)
    # semi-axes: half the length under the axis the tube runs along most, the radius elsewhere
    chord = path[-1] - path[0]
    semi_axes = np.full(3, r)
    semi_axes[int(np.argmax(np.abs(chord)))] = length / 2
    return dict(volume=volume, centroid=moment / volume, semi_axes=semi_axes, length=length)


def _objects_table(objects: list[_Object], cell_volume_centroid, v: float) -> pd.DataFrame:
    """One row per object (columns described in :func:`make_infected_cell`)."""
    rows = []
    for obj in objects:
        geometry = _geometry(obj, cell_volume_centroid)
        volume = geometry["volume"]
        if obj.kind in ("sphere", "dmv"):
            diameter = 2 * obj.radius
        else:
            diameter = (6 * volume / np.pi) ** (1 / 3)
        rows.append(
            {
                "instance_id": obj.instance_id,
                "class_id": int(obj.class_id),
                "class_name": CLASS_NAMES[int(obj.class_id)],
                "parent_id": obj.parent.instance_id if obj.parent is not None else 0,
                "centroid_z_nm": geometry["centroid"][0],
                "centroid_y_nm": geometry["centroid"][1],
                "centroid_x_nm": geometry["centroid"][2],
                "radius_z_nm": geometry["semi_axes"][0],
                "radius_y_nm": geometry["semi_axes"][1],
                "radius_x_nm": geometry["semi_axes"][2],
                "length_nm": geometry["length"],
                "diameter_nm": diameter,
                "volume_um3": volume * 1e-9,
                "voxel_volume_um3": obj.n_voxels * v**3 * 1e-9,
                "touching": obj.touching,
                "clipped": obj.clipped,
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"instance_id": "int64", "class_id": "int64", "parent_id": "int64"})


# ======================================================================
# arguments
# ======================================================================
def _check_shape(shape: Any) -> tuple[int, int, int]:
    try:
        values = tuple(shape)
    except TypeError:
        raise ShapeError(f"phantom shape must be three integers (z, y, x), not {shape!r}") from None
    integers = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in values)
    if len(values) != 3 or not integers:
        raise ShapeError(f"phantom shape must be three integers (z, y, x), not {shape!r}")
    if min(values) < _MIN_SIDE_VOXELS:
        raise ShapeError(
            f"phantom shape {values} is too small: every side needs at least {_MIN_SIDE_VOXELS} voxels"
        )
    return tuple(int(n) for n in values)


def _check_voxel_size(voxel_size_nm: Any) -> float:
    if isinstance(voxel_size_nm, bool) or not isinstance(voxel_size_nm, numbers.Real):
        raise VoxelSizeError(f"voxel_size_nm must be one positive number (nm), not {voxel_size_nm!r}")
    value = float(voxel_size_nm)
    if not (math.isfinite(value) and value > 0):
        raise VoxelSizeError(f"voxel_size_nm must be positive and finite, not {voxel_size_nm!r}")
    return value


def _check_count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InvalidArgumentError(f"{name} must be None or an integer >= 0, not {value!r}")
    return int(value)


def _check_nonnegative(name: str, value: Any) -> float:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _check_seed(seed: Any) -> int:
    """The seed as an int; ``None`` draws fresh entropy (so it can be recorded)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidArgumentError(f"seed must be None or an integer >= 0, not {seed!r}")
    return int(seed)


def _check_room_for_a_cell(shape: tuple[int, int, int], v: float) -> None:
    """Refuse volumes whose cell would be too small to hold a nucleus and cytoplasm."""
    extent = min(shape) * v
    margin = max(_ICE_MARGIN_VOXELS * v, _ICE_MARGIN * extent)
    smallest_cell = 0.96 * (extent - 2 * margin) / (1 + _CELL_ROUGHNESS)
    if smallest_cell < _MIN_CELL_DIAMETER_NM:
        raise ShapeError(
            f"a {shape} volume of {v:g} nm voxels is only {extent / 1000:.2f} µm across; the cell "
            f"would be under {_MIN_CELL_DIAMETER_NM / 1000:g} µm, too small for a nucleus: "
            "use more voxels or larger ones"
        )


def _jsonable(value: Any) -> Any:
    """Chunks as given, made JSON-friendly (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float)) or value is None:
        return value
    return str(value)


# ======================================================================
# the public function
# ======================================================================
def make_infected_cell(
    shape: tuple[int, int, int] = (128, 256, 256),
    voxel_size_nm: float = 30.0,
    *,
    n_dmv: int | None = None,
    n_mitochondria: int | None = None,
    n_lipid_droplets: int | None = None,
    touching_fraction: float = 0.2,
    seed: int | None = 0,
    noise: float = 0.04,
    blur: float = 1.0,
    chunks: Any = 64,
) -> tuple[Volume, Volume, Volume, pd.DataFrame]:
    """A synthetic cryo-SXT volume of a SARS-CoV-2-infected cell, with its ground truth.

    The cell is an ellipsoid spanning about 80 % of the volume along each axis
    (at least 3 voxels and 4 % of the extent of ice on every side), its
    boundary bumped by low-frequency noise (up to ±8 % of the radius).
    Inside: an off-centre nucleus (ellipsoid) holding one or two nucleoli;
    mitochondria (bent capsule-shaped tubes, 250-500 nm thick, 1-3 µm long);
    lipid droplets (spheres, 300-800 nm across); and DMVs (spheres of 200-400 nm
    outer diameter with two dense membranes around a lumen) clustered 0.2-1.3 µm
    (centre) from the nuclear envelope on the side with more cytoplasm.  A
    fraction of the DMVs come in touching pairs whose centres are 0.90-0.95 of
    the sum of their radii apart; the overlap is split along the contact
    plane.  Other objects never overlap and keep a gap of at least two voxels
    (and 50 nm), so they never touch.  The cell and nucleus scale with the
    volume, the organelles keep their physical size whatever the voxel size.

    Each compartment gets its LAC (:data:`LAC`, ±4 % per organelle) times a
    smooth low-amplitude texture; DMVs are drawn with partial-volume
    sub-sampling so their sub-voxel membranes show.  The imaging model then
    blurs with a Gaussian of ``(1.5 blur, blur, blur)`` voxels (z, y, x: the
    missing wedge stretches along z) and adds Gaussian noise of standard
    deviation ``noise * sqrt(LAC * LAC_cytoplasm)`` (Poisson-like: it grows with
    the square root of the signal and equals ``noise`` times the cytoplasm LAC
    on cytoplasm).

    Parameters
    ----------
    shape : tuple of 3 int
        Number of voxels (z, y, x); each at least 32.
    voxel_size_nm : float
        Isotropic voxel size in nm.  Organelle sizes are physical, so larger
        voxels give fewer voxels per organelle.
    n_dmv, n_mitochondria, n_lipid_droplets : int or None
        How many DMVs, mitochondria and lipid droplets to place.  ``None``
        scales the count with the cytoplasm volume (about 0.8 DMVs, 0.25
        mitochondria and 0.1 lipid droplets per µm³: 50 / 16 / 6 for the
        default shape, 114 / 35 / 14 for (128, 384, 384)).  When fewer fit
        than were asked for explicitly, a ``UserWarning`` says so (for
        default counts, only a log message).
    touching_fraction : float
        Fraction of the DMVs placed in touching pairs (0-1).
    seed : int or None
        Seed of :func:`numpy.random.default_rng`, the only source of
        randomness: the same seed gives the same volumes and table.  ``None``
        draws fresh entropy (recorded in the metadata).
    noise : float
        Relative noise level (see above); 0 gives a noiseless image.
    blur : float
        Gaussian sigma in the yx plane, in voxels (z gets 1.5 times it);
        0 disables the blur.
    chunks : int, tuple or "auto"
        Dask chunks of the returned volumes.

    Returns
    -------
    image : Volume
        float32 linear absorption coefficients in 1/µm; voxel size
        ``(v, v, v)`` nm, axes ``"zyx"``.  ``metadata`` holds ``source``
        (``{"reader": "phantom", "path": "<phantom>"}``), ``phantom`` (every
        parameter, the seed, the LAC values and what was placed),
        ``quantity`` (``"linear_absorption_coefficient"``) and
        ``intensity_unit`` (``"1/um"``).
    classes : Volume
        uint8 class codes (:class:`sxtseg.classes.SXTClass`), noiseless truth.
    instances : Volume
        uint32 instance ids, 0 for ice.  Every object has its own id: the
        cell (its cytoplasm voxels), the nucleus (nucleoli excluded), each
        nucleolus, mitochondrion, lipid droplet and DMV.
    objects : pandas.DataFrame
        One row per instance id, in id order (cell, nucleus, nucleoli,
        mitochondria, lipid droplets, DMVs).  Positions are in nm with the
        centre of voxel ``i`` at ``i * v`` (as ``scipy.ndimage.center_of_mass``
        times the voxel size).  Columns:

        ``instance_id``, ``class_id``, ``class_name``
            The id in ``instances``, the class code and its name (the cell's
            row has class ``cytoplasm``: its instance voxels are the cytoplasm).
        ``parent_id``
            The object it lies in: 0 for the cell, the nucleus for nucleoli,
            the cell for everything else.
        ``centroid_z_nm``, ``centroid_y_nm``, ``centroid_x_nm``
            Analytic centroid of the whole body as drawn (objects inside it
            included; a touching DMV without the cap its partner took).
        ``radius_z_nm``, ``radius_y_nm``, ``radius_x_nm``
            Semi-axes.  Ellipsoids are axis-aligned, so these are exact; the
            cell gives those of its smooth ellipsoid before the bumps.  For a
            mitochondrion, half its capsule length under the axis its
            end-to-end direction runs along most, and the tube radius under
            the other two.
        ``length_nm``
            Longest extent: the capsule length along a mitochondrion's centre
            line (caps included), otherwise twice the largest semi-axis.
        ``diameter_nm``
            Outer diameter of lipid droplets and DMVs; the equivalent-sphere
            diameter of ``volume_um3`` otherwise.
        ``volume_um3``
            Analytic volume of the whole body as drawn, µm³.
        ``voxel_volume_um3``
            Its voxels (instance voxels plus those of the objects inside it)
            times the voxel volume, µm³.
        ``touching``
            DMVs only: its voxels are face-adjacent to another DMV's.
        ``clipped``
            The volume border or another object cut voxels off the analytic
            shape (the planned contact plane of a touching DMV pair is part
            of the shape and does not count).

    Raises
    ------
    ShapeError
        If ``shape`` is not three integers >= 32, or the volume is too small
        at this voxel size to hold a cell (at least 0.5 µm across) with a
        nucleus.
    VoxelSizeError
        If ``voxel_size_nm`` is not a positive finite number.
    InvalidArgumentError
        If a count, ``noise``, ``blur``, ``seed`` or ``touching_fraction`` is
        out of range (a ``ValueError`` subclass).

    Examples
    --------
    >>> image, classes, instances, objects = make_infected_cell((32, 64, 64), seed=3)
    >>> image.metadata["quantity"], image.metadata["intensity_unit"]
    ('linear_absorption_coefficient', '1/um')
    >>> sorted(set(objects["class_name"]))[:2]
    ['cytoplasm', 'dmv']
    >>> objects["instance_id"].tolist() == list(range(1, len(objects) + 1))
    True
    """
    started = time.perf_counter()
    shape = _check_shape(shape)
    v = _check_voxel_size(voxel_size_nm)
    requested = {
        "n_dmv": _check_count("n_dmv", n_dmv),
        "n_mitochondria": _check_count("n_mitochondria", n_mitochondria),
        "n_lipid_droplets": _check_count("n_lipid_droplets", n_lipid_droplets),
    }
    noise = _check_nonnegative("noise", noise)
    blur = _check_nonnegative("blur", blur)
    touching_fraction = _check_nonnegative("touching_fraction", touching_fraction)
    if touching_fraction > 1:
        raise InvalidArgumentError(f"touching_fraction must be between 0 and 1, not {touching_fraction!r}")
    seed = _check_seed(seed)
    _check_room_for_a_cell(shape, v)

    # one independent stream per step, all from the one seed
    rng = np.random.default_rng(seed)
    rng_cell, rng_nucleus, rng_dmv, rng_mito, rng_lipid, rng_texture, rng_noise = rng.spawn(7)

    # --- place everything (nm)
    clearance = max(2 * v, 50.0)
    cell = _make_cell(rng_cell, shape, v)
    nucleus, factory_direction = _make_nucleus(rng_nucleus, cell, clearance)
    nucleoli = _place_nucleoli(rng_nucleus, nucleus, clearance)
    scene = _Scene(clearance, cell, nucleus, factory_direction)
    cell_volume_centroid = _cell_volume_and_centroid(cell)
    cytoplasm_um3 = (cell_volume_centroid[0] - 4 / 3 * np.pi * np.prod(nucleus.semi_axes)) * 1e-9
    target = {
        "n_dmv": round(_DMV_PER_UM3 * cytoplasm_um3),
        "n_mitochondria": round(_MITO_PER_UM3 * cytoplasm_um3),
        "n_lipid_droplets": round(_LIPID_PER_UM3 * cytoplasm_um3),
    }
    target.update({key: n for key, n in requested.items() if n is not None})
    # the long mitochondria first, while there is room; then the small, flexible DMVs
    mitochondria = _place_mitochondria(rng_mito, scene, target["n_mitochondria"])
    dmvs = _place_dmvs(rng_dmv, scene, target["n_dmv"], touching_fraction)
    lipid_droplets = _place_lipid_droplets(rng_lipid, scene, target["n_lipid_droplets"])
    placed = {
        "n_dmv": len(dmvs),
        "n_mitochondria": len(mitochondria),
        "n_lipid_droplets": len(lipid_droplets),
    }
    for key, n in placed.items():
        if n < target[key]:
            message = (
                f"make_infected_cell placed {n} of {target[key]} requested ({key}): no more room in the cell"
            )
            if requested[key] is not None:
                warnings.warn(message, stacklevel=2)
            else:
                logger.info(message)
    objects = [cell, nucleus, *nucleoli, *mitochondria, *lipid_droplets, *dmvs]
    for instance_id, obj in enumerate(objects, start=1):
        obj.instance_id = instance_id

    # --- draw (voxels), then image
    classes, instances, image = _draw(objects, shape, v)
    image = _add_texture(rng_texture, image, classes, v)
    image = _imaging(rng_noise, image, blur, noise)
    table = _objects_table(objects, cell_volume_centroid, v)

    # --- wrap
    parameters = {
        "shape": list(shape),
        "voxel_size_nm": v,
        **requested,
        "touching_fraction": touching_fraction,
        "seed": seed,
        "noise": noise,
        "blur": blur,
        "blur_sigma_voxels": [_Z_BLUR_FACTOR * blur, blur, blur],
        "chunks": _jsonable(chunks),
        "target": {key: int(n) for key, n in target.items()},  # the counts aimed at, defaults resolved
        "placed": placed,
        "lac_1_per_um": dict(LAC),
    }
    label_metadata = {
        "label_names": {str(k): name for k, name in CLASS_NAMES.items()},
        "label_colors": {str(k): list(rgba) for k, rgba in CLASS_COLORS.items()},
    }
    image_volume = _wrap(
        image, v, chunks, parameters, quantity="linear_absorption_coefficient", intensity_unit="1/um"
    )
    classes_volume = _wrap(classes, v, chunks, parameters, quantity="class_labels", **label_metadata)
    instances_volume = _wrap(instances, v, chunks, parameters, quantity="instance_labels")
    logger.debug(
        "phantom %s at %g nm: %d objects (%s) in %.2f s",
        shape, v, len(objects), placed, time.perf_counter() - started,
    )  # fmt: skip
    return image_volume, classes_volume, instances_volume, table
