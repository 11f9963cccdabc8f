"""The phantom's objects and the geometry they are built from (internal).

Everything here is physical: positions and sizes in nanometres, axes
(z, y, x).  An object is an :class:`PhantomObject` (an analytic shape plus what
drawing it found out); the functions answer geometric questions about them
(is a point inside the bumpy cell? how far is a point from the nucleus?).
Placement rules live in :mod:`~sxtseg.phantom.scene`,
:mod:`~sxtseg.phantom.decoys` and :mod:`~sxtseg.phantom.surroundings`,
drawing in :mod:`~sxtseg.phantom.raster`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Largest relative bump of a cell boundary.
CELL_ROUGHNESS = 0.08

# the 26 directions to the neighbours of a voxel, as unit vectors
DIRECTIONS_26 = np.array(
    [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)],
    dtype=float,
)
DIRECTIONS_26 /= np.linalg.norm(DIRECTIONS_26, axis=1, keepdims=True)


@dataclass
class Roughness:
    """Low-frequency bumps on the unit sphere: the relative radius change of a cell."""

    frequencies: np.ndarray  # (K, 3) cycles per unit length
    phases: np.ndarray  # (K,)
    weights: np.ndarray  # (K,)

    def __call__(self, directions: np.ndarray) -> np.ndarray:
        """Relative radius change for unit vectors ``directions`` (..., 3)."""
        # sums written out, not `@`: BLAS picks its summation order (so the last bits) by the CPU
        f = self.frequencies
        d = np.asarray(directions, float)[..., None, :]
        angles = 2 * np.pi * (d[..., 0] * f[:, 0] + d[..., 1] * f[:, 1] + d[..., 2] * f[:, 2]) + self.phases
        terms = np.cos(angles) * self.weights
        total = terms[..., 0]
        for k in range(1, terms.shape[-1]):
            total = total + terms[..., k]
        return total


@dataclass
class PhantomObject:
    """One object of the phantom, in physical coordinates (nm, (z, y, x)).

    ``shape`` says how it is drawn: ``"cell"`` (bumpy ellipsoid),
    ``"ellipsoid"``, ``"sphere"``, ``"dmv"`` (sphere with two membranes, split
    from a touching partner along the contact plane), ``"mvb"`` (sphere with a
    membrane and small vesicles inside) or ``"tube"`` (capsule along a
    polyline).  ``kind`` is what it is, the ``kind`` column of the objects
    table (``"cell"``, ``"nucleus"``, ``"dmv"``, ``"lysosome"`` ...), and
    ``material`` the key of its LAC in :data:`~sxtseg.phantom.LAC`.
    """

    class_id: int
    shape: str
    center: np.ndarray  # defining centre: ellipsoid/sphere centre, tube chord midpoint
    semi_axes: np.ndarray  # ellipsoid semi-axes; sphere/DMV/tube: the radius three times
    kind: str = ""
    material: str = ""
    path: np.ndarray | None = None  # tube centre line, (n, 3) points
    roughness: Roughness | None = None  # cell boundary
    placement_box: tuple[np.ndarray, np.ndarray] | None = None  # cell: organelles go only inside this box
    inner_vesicles: np.ndarray | None = None  # mvb: (k, 4) centres (nm) and radii (nm)
    lac_factor: float = 1.0  # this object's LAC relative to its material's LAC
    partial_volume: bool = False  # drawn with sub-voxel sampling (DMVs, decoys, fiducials)
    parent: "PhantomObject | None" = None  # the object it lies inside (cell, or nucleus for nucleoli)
    partner: "PhantomObject | None" = None  # the DMV it was placed touching
    # filled in while drawing
    instance_id: int = 0
    n_voxels: int = 0  # voxels of the whole body, objects inside it included
    clipped: bool = False
    touching: bool = False

    @property
    def radius(self) -> float:
        return float(self.semi_axes.max())

    @property
    def parent_id(self) -> int:
        """Instance id of the parent; 0 (the ice) for objects outside every cell."""
        return self.parent.instance_id if self.parent is not None else 0


# ======================================================================
# small helpers
# ======================================================================
def membrane_thickness_nm(v: np.ndarray, radius: float) -> float:
    """Thickness (nm) of a drawn vesicle membrane: 0.6 of the finest voxel edge, 6 nm to 0.2 of the radius.

    Real membranes are ~7 nm; drawn thicker they still show after partial-volume sampling.
    """
    return float(np.clip(0.6 * float(v.min()), 6.0, 0.2 * radius))


def random_unit_vectors(rng: np.random.Generator, n: int, z_scale: float = 1.0) -> np.ndarray:
    """``n`` random unit vectors; ``z_scale < 1`` tilts them toward the yx plane."""
    v = rng.standard_normal((n, 3))
    v[:, 0] *= z_scale
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spread unit vectors (z, y, x)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z**2)
    phi = np.pi * (1 + 5**0.5) * i
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


def resample_path(path: np.ndarray, spacing: float) -> np.ndarray:
    """Points along a polyline, at most ``spacing`` apart, both ends included."""
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    n = max(2, int(math.ceil(cumulative[-1] / spacing)) + 1)
    s = np.linspace(0, cumulative[-1], n)
    return np.stack([np.interp(s, cumulative, path[:, k]) for k in range(3)], axis=1)


def bezier_path(start: np.ndarray, control: np.ndarray, end: np.ndarray, n_points: int = 9) -> np.ndarray:
    """Points on the quadratic Bézier curve start -> end bowed toward ``control``."""
    t = np.linspace(0, 1, n_points)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


# ======================================================================
# cells: bumpy ellipsoids
# ======================================================================
def inside_boundary(cell: PhantomObject, points: np.ndarray) -> np.ndarray:
    """Whether each point (n, 3) lies inside the cell's irregular boundary."""
    q = (points - cell.center) / cell.semi_axes
    rho = np.linalg.norm(q, axis=1)
    directions = q / np.maximum(rho, 1e-12)[:, None]
    return rho <= 1 + cell.roughness(directions)


def in_box(box: tuple[np.ndarray, np.ndarray], points: np.ndarray) -> np.ndarray:
    """Whether each point (n, 3) lies inside the box ``(lo, hi)`` (nm, bounds included)."""
    lo, hi = box
    return ((points >= lo) & (points <= hi)).all(axis=1)


def inside_cell(cell: PhantomObject, points: np.ndarray) -> np.ndarray:
    """Whether each point (n, 3) lies where organelles may go: inside the cell (and its placement box)."""
    inside = inside_boundary(cell, points)
    if cell.placement_box is not None:
        inside &= in_box(cell.placement_box, points)
    return inside


def spheres_inside_cell(cell: PhantomObject, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each sphere lies inside the cell: its centre and 26 surface points."""
    points = sphere_points(centers, radii)
    inside = inside_cell(cell, points.reshape(-1, 3)).reshape(len(centers), -1)
    return inside.all(axis=1)


def spheres_outside_cell(cell: PhantomObject, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each sphere lies outside the cell's boundary: its centre and 26 surface points."""
    points = sphere_points(centers, radii)
    inside = inside_boundary(cell, points.reshape(-1, 3)).reshape(len(centers), -1)
    return ~inside.any(axis=1)


def sphere_points(centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """The centre and 26 surface points of each sphere, (n, 27, 3)."""
    points = centers[:, None, :] + radii[:, None, None] * DIRECTIONS_26[None, :, :]
    return np.concatenate([centers[:, None, :], points], axis=1)


def cell_surface_points(cell: PhantomObject, n: int) -> np.ndarray:
    """``n`` points (n, 3) on the cell's bumpy boundary, nearly evenly spread in direction."""
    u = fibonacci_sphere(n)
    return cell.center + cell.semi_axes * u * (1 + cell.roughness(u))[:, None]


def cell_volume_and_centroid(cell: PhantomObject) -> tuple[float, np.ndarray]:
    """Volume (nm³) and centroid (nm) of a bumpy cell, by quadrature over directions.

    In coordinates scaled by the semi-axes the cell is the star-shaped body
    ``rho <= 1 + roughness(u)``: its volume is the integral of ``(1 + r)³ / 3``
    over the unit sphere, its first moment that of ``u (1 + r)⁴ / 4``.
    """
    u = fibonacci_sphere(20000)
    radius = 1 + cell.roughness(u)
    weight = 4 * np.pi / len(u)
    volume_scaled = weight * (radius**3 / 3).sum()
    moment_scaled = weight * (u * (radius**4 / 4)[:, None]).sum(axis=0)
    volume = volume_scaled * float(np.prod(cell.semi_axes))
    centroid = cell.center + cell.semi_axes * moment_scaled / volume_scaled
    return volume, centroid


def fraction_in_box(cell: PhantomObject, box: tuple[np.ndarray, np.ndarray], n_per_axis: int = 40) -> float:
    """Fraction of the cell's volume inside ``box``, counted on a regular grid (no randomness)."""
    reach = cell.semi_axes * (1 + 1.1 * CELL_ROUGHNESS)
    axes = [np.linspace(c - r, c + r, n_per_axis) for c, r in zip(cell.center, reach)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = inside_boundary(cell, points)
    return float((inside & in_box(box, points)).sum() / max(int(inside.sum()), 1))


# ======================================================================
# ellipsoids
# ======================================================================
def distance_to_ellipsoid(points: np.ndarray, center: np.ndarray, semi_axes: np.ndarray) -> np.ndarray:
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
