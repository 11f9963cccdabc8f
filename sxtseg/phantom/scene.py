"""Placing the cell and its organelles (internal; nothing is drawn here).

The cell and nucleus scale with the volume; organelles have physical sizes
(nm), whatever the voxel size.  Every placement step takes its own random
generator, so a step never changes what another draws.  The rules:

* the cell is an ellipsoid nearly spanning the volume (at least 3 voxels and
  4 % of the extent of ice on each side), its boundary bumped by up to ±8 %;
* the nucleus is an axis-aligned ellipsoid shifted off-centre in the yx
  plane, holding one or two nucleoli;
* mitochondria are bent capsules (250-500 nm thick, 1-3 µm long) lying
  mostly in the yx plane and running around the nucleus;
* DMVs (200-400 nm outer diameter) fill a "replication factory" 0.2-1.3 µm
  (centre) from the nuclear envelope, within 60° of the direction away from
  the nucleus shift; a fraction come in touching pairs;
* lipid droplets (300-800 nm) go anywhere in the cytoplasm;
* objects never overlap and keep a gap of ``clearance`` (at least two voxels
  and 50 nm) between them, touching DMV pairs excepted.

With ``cut_by_field_of_view`` the cell is shifted across one or two borders
(:func:`shift_across_borders`); with ``ice=False`` it is grown past every
border (:func:`fill_field_of_view`).  Organelles then go only where the cell
lies inside the volume (its ``placement_box``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..classes import SXTClass
from ..errors import ShapeError
from .geometry import (
    CELL_ROUGHNESS,
    PhantomObject,
    Roughness,
    bezier_path,
    distance_to_ellipsoid,
    fibonacci_sphere,
    inside_cell,
    random_unit_vectors,
    resample_path,
    spheres_inside_cell,
)

MIN_SIDE_VOXELS = 32
ICE_MARGIN = 0.04  # least ice between the cell and each border, fraction of the extent
ICE_MARGIN_VOXELS = 3  # ... and in voxels
MIN_CELL_DIAMETER_NM = 500.0  # below this there is no room for a nucleus and cytoplasm
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
DMV_ZONE_NM = (200.0, 1300.0)  # distance nuclear envelope -> DMV centre
_DMV_ZONE_HALF_ANGLE_DEG = 60.0  # the factory is on one side of the nucleus
_DMV_PAIR_DISTANCE = (0.90, 0.95)  # centre distance of a touching pair / sum of radii
# default counts per µm³ of cytoplasm
DMV_PER_UM3 = 0.8
MITO_PER_UM3 = 1 / 4
LIPID_PER_UM3 = 1 / 10
LAC_JITTER = 0.04  # each organelle's LAC varies by up to ±4 %
BATCH = 64  # candidate positions tried at once
MAX_BATCHES = 20  # per object, before giving up on placing more of its kind
# how far a cut cell's smooth ellipsoid reaches past a border, fraction of its semi-axis
_CUT_DEPTH = (0.10, 0.25)


@dataclass
class Scene:
    """Everything the placement steps need to know about the cell drawn so far."""

    clearance: float  # smallest gap between two objects, nm
    cell: PhantomObject
    nucleus: PhantomObject
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


def field_of_view(shape: tuple[int, int, int], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box (lo, hi) in nm spanned by the voxel centres of a volume."""
    return np.zeros(3), (np.array(shape, float) - 1) * v


def sampling_box(cell: PhantomObject) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-widths of the box candidate positions in the cytoplasm are drawn from.

    The cell's box ``center ± semi_axes``, cut to its placement box when it has one.
    """
    if cell.placement_box is None:
        return cell.center, cell.semi_axes
    lo = np.maximum(cell.center - cell.semi_axes, cell.placement_box[0])
    hi = np.minimum(cell.center + cell.semi_axes, cell.placement_box[1])
    return (lo + hi) / 2, (hi - lo) / 2


# ======================================================================
# the cell and the nucleus
# ======================================================================
def make_cell(rng: np.random.Generator, shape: tuple[int, int, int], v: np.ndarray) -> PhantomObject:
    """The cell: an ellipsoid nearly spanning the volume, boundary bumped by low-frequency noise."""
    extent = np.array(shape, float) * v
    margin = np.maximum(ICE_MARGIN_VOXELS * v, ICE_MARGIN * extent)  # ice between cell and border
    room = extent / 2 - margin  # largest distance from the centre the bumpy boundary may reach
    semi_axes = room / (1 + CELL_ROUGHNESS) * rng.uniform(0.96, 1.0, 3)
    slack = room - semi_axes * (1 + CELL_ROUGHNESS)
    center = (np.array(shape, float) - 1) / 2 * v + rng.uniform(-1, 1, 3) * slack
    return PhantomObject(
        SXTClass.CYTOPLASM, "cell", center, semi_axes, kind="cell", material="cytoplasm",
        roughness=random_roughness(rng),
    )  # fmt: skip


def random_roughness(rng: np.random.Generator) -> Roughness:
    """Eight low-frequency bumps, scaled so the largest is ``CELL_ROUGHNESS`` of the radius."""
    n_terms = 8
    frequencies = random_unit_vectors(rng, n_terms) * rng.uniform(0.3, 0.8, (n_terms, 1))
    roughness = Roughness(frequencies, rng.uniform(0, 2 * np.pi, n_terms), rng.standard_normal(n_terms))
    roughness.weights *= CELL_ROUGHNESS / np.abs(roughness(fibonacci_sphere(4000))).max()
    return roughness


def shift_across_borders(
    rng: np.random.Generator, cell: PhantomObject, shape: tuple[int, int, int], v: np.ndarray
) -> list[str]:
    """Shift the cell across one or two y/x borders of the volume; return those faces.

    The faces are named ``"y-"``, ``"y+"``, ``"x-"``, ``"x+"``; two faces are
    perpendicular (a corner).  The smooth ellipsoid reaches 10-25 % of its
    semi-axis past each, so the bumpy boundary (±8 %) always crosses it.
    Organelles are then placed only inside the volume.
    """
    box = field_of_view(shape, v)
    faces = [("y", "-"), ("y", "+"), ("x", "-"), ("x", "+")]
    first = faces[int(rng.integers(4))]
    chosen = [first]
    if rng.integers(1, 3) == 2:
        others = [f for f in faces if f[0] != first[0]]
        chosen.append(others[int(rng.integers(2))])
    for axis_name, side in chosen:
        axis = 1 if axis_name == "y" else 2
        a = cell.semi_axes[axis]
        depth = a * rng.uniform(*_CUT_DEPTH)
        if side == "+":
            cell.center[axis] = box[1][axis] - a + depth
        else:
            cell.center[axis] = box[0][axis] + a - depth
    cell.placement_box = box
    return [name + side for name, side in chosen]


def fill_field_of_view(cell: PhantomObject, shape: tuple[int, int, int], v: np.ndarray) -> None:
    """Grow the cell about its centre until even its deepest dent lies past every corner of the volume.

    Nothing of the ice is left.  Call it after the nucleus is placed, so the
    nucleus keeps the size it has in a cell with ice around it.
    """
    lo, hi = field_of_view(shape, v)
    corners = np.array([[(lo, hi)[k][axis] for axis, k in enumerate(bits)] for bits in np.ndindex(2, 2, 2)])
    reach = np.linalg.norm((corners - cell.center) / cell.semi_axes, axis=1).max()
    # the bumps are scaled on 4000 directions: allow 10 % more between them
    cell.semi_axes = cell.semi_axes * (1.02 * reach / (1 - 1.1 * CELL_ROUGHNESS))
    cell.placement_box = (lo, hi)


def make_nucleus(
    rng: np.random.Generator, cell: PhantomObject, clearance: float
) -> tuple[PhantomObject, np.ndarray]:
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
    offset = _NUCLEUS_OFFSET / math.hypot(*(direction[1:] / a_cell[1:]))
    margin = max(0.1 * a_cell.min(), clearance)
    surface = fibonacci_sphere(400)
    for _ in range(12):
        center = cell.center + offset * direction
        points = center + surface * (semi_axes + margin)
        if inside_cell(cell, points).all():
            break
        offset *= 0.7
    else:
        raise ShapeError("the volume is too small to hold a cell with a nucleus")
    nucleus = PhantomObject(
        SXTClass.NUCLEUS, "ellipsoid", center, semi_axes, kind="nucleus", material="nucleus", parent=cell
    )
    # DMVs gather on the side with more cytoplasm: away from the shift
    return nucleus, -direction


def place_nucleoli(rng: np.random.Generator, nucleus: PhantomObject, clearance: float) -> list[PhantomObject]:
    """One or two nucleoli (ellipsoids) inside the nucleus, apart from each other."""
    wanted = int(rng.integers(1, 3))
    surface = fibonacci_sphere(100)
    placed: list[PhantomObject] = []
    for _ in range(wanted):
        base = nucleus.semi_axes.min() * rng.uniform(*_NUCLEOLUS_FRACTION)
        semi_axes = base * rng.uniform(0.85, 1.15, 3)
        for _ in range(200):
            center = nucleus.center + nucleus.semi_axes * 0.6 * rng.uniform(-1, 1, 3)
            points = center + surface * (semi_axes + clearance)
            inside = (((points - nucleus.center) / nucleus.semi_axes) ** 2).sum(axis=1) <= 1
            apart = all(
                math.hypot(*(center - other.center)) >= other.radius + semi_axes.max() + clearance
                for other in placed
            )
            if inside.all() and apart:
                factor = 1 + rng.uniform(-LAC_JITTER, LAC_JITTER)
                nucleolus = PhantomObject(
                    SXTClass.NUCLEOLUS, "ellipsoid", center, semi_axes, kind="nucleolus",
                    material="nucleolus", lac_factor=factor, parent=nucleus,
                )  # fmt: skip
                placed.append(nucleolus)
                break
    if not placed:
        raise ShapeError("the nucleus is too small to hold a nucleolus; use a larger shape or voxel size")
    return placed


# ======================================================================
# spheres: the factory zone and the open cytoplasm
# ======================================================================
def factory_candidates(rng: np.random.Generator, scene: Scene, n: int) -> np.ndarray:
    """Candidate centres, uniform in the factory cone on one side of the nucleus.

    Points are drawn uniformly in the box around the nucleus that the zone can
    reach (cut to the cell's box); those outside the cone are dropped here,
    those too near or too far from the envelope by :func:`fits_in_factory`.
    """
    nucleus, cell = scene.nucleus, scene.cell
    reach = nucleus.semi_axes + DMV_ZONE_NM[1]
    cell_reach = cell.semi_axes * (1 + CELL_ROUGHNESS)
    lo = np.maximum(nucleus.center - reach, cell.center - cell_reach)
    hi = np.minimum(nucleus.center + reach, cell.center + cell_reach)
    points = rng.uniform(lo, hi, (n, 3))
    offset = points - nucleus.center
    direction = scene.factory_direction  # the dot product written out: the same bits on every CPU (not BLAS)
    cos_angle = (offset[:, 0] * direction[0] + offset[:, 1] * direction[1] + offset[:, 2] * direction[2]) / (
        np.linalg.norm(offset, axis=1))
    return points[cos_angle >= math.cos(math.radians(_DMV_ZONE_HALF_ANGLE_DEG))]


def fits_in_factory(scene: Scene, centers: np.ndarray, radius: float) -> np.ndarray:
    """Which candidate centres of spheres of ``radius`` lie in the cell, in the zone and clear of the nucleus."""
    radii = np.full(len(centers), radius + scene.clearance)
    in_cell = spheres_inside_cell(scene.cell, centers, radii)
    to_nucleus = distance_to_ellipsoid(centers, scene.nucleus.center, scene.nucleus.semi_axes)
    near = max(DMV_ZONE_NM[0], radius + scene.clearance)
    return in_cell & (to_nucleus >= near - 1e-6) & (to_nucleus <= DMV_ZONE_NM[1] + 1e-6)


def find_sphere_in_factory(
    rng: np.random.Generator, scene: Scene, draw_radius
) -> tuple[np.ndarray, float] | None:
    """A free centre and radius (``draw_radius(rng)``, nm) in the factory zone (not yet an obstacle), or None."""
    for _ in range(MAX_BATCHES):
        radius = draw_radius(rng)  # a new size each batch, so small ones fill gaps
        centers = factory_candidates(rng, scene, BATCH)
        for center in centers[fits_in_factory(scene, centers, radius)]:
            if scene.is_free(center[None, :], np.array([radius])):
                return center, radius
    return None


def find_sphere_in_cytoplasm(
    rng: np.random.Generator, scene: Scene, draw_radius
) -> tuple[np.ndarray, float] | None:
    """A free centre and radius (``draw_radius(rng)``, nm) anywhere in the cytoplasm, or None."""
    cell, nucleus = scene.cell, scene.nucleus
    middle, half = sampling_box(cell)
    for _ in range(MAX_BATCHES):
        radius = draw_radius(rng)  # a new size each batch, so small ones fill gaps
        centers = middle + half * rng.uniform(-1, 1, (BATCH, 3))
        radii = np.full(BATCH, radius + scene.clearance)
        ok = spheres_inside_cell(cell, centers, radii)
        to_nucleus = distance_to_ellipsoid(centers, nucleus.center, nucleus.semi_axes)
        ok &= to_nucleus >= radius + scene.clearance
        found = next((c for c in centers[ok] if scene.is_free(c[None, :], np.array([radius]))), None)
        if found is not None:
            return found, radius
    return None


# ======================================================================
# DMVs
# ======================================================================
def _dmv_radius(rng: np.random.Generator) -> float:
    return float(np.clip(rng.normal(_DMV_RADIUS_MEAN_NM, _DMV_RADIUS_SD_NM), *_DMV_RADIUS_NM))


def _new_dmv(rng: np.random.Generator, scene: Scene, center: np.ndarray, radius: float) -> PhantomObject:
    factor = 1 + rng.uniform(-LAC_JITTER, LAC_JITTER)
    return PhantomObject(
        SXTClass.DMV, "dmv", center, np.full(3, radius), kind="dmv", material="dmv",
        lac_factor=factor, partial_volume=True, parent=scene.cell,
    )  # fmt: skip


def _place_dmv_pair(rng: np.random.Generator, scene: Scene) -> list[PhantomObject]:
    """Two DMVs touching each other (centres 0.90-0.95 of the sum of radii apart), or []."""
    for _ in range(MAX_BATCHES):
        found = find_sphere_in_factory(rng, scene, _dmv_radius)
        if found is None:
            return []
        c1, r1 = found
        r2 = _dmv_radius(rng)
        distance = rng.uniform(*_DMV_PAIR_DISTANCE, BATCH) * (r1 + r2)
        centers = c1 + distance[:, None] * random_unit_vectors(rng, BATCH)
        for c2 in centers[fits_in_factory(scene, centers, r2)]:
            if scene.is_free(c2[None, :], np.array([r2])):
                first, second = _new_dmv(rng, scene, c1, r1), _new_dmv(rng, scene, c2, r2)
                first.partner, second.partner = second, first
                scene.add_obstacle(np.stack([c1, c2]), np.array([r1, r2]))
                return [first, second]
    return []


def place_dmvs(rng: np.random.Generator, scene: Scene, n: int, touching_fraction: float) -> list[PhantomObject]:
    """``n`` DMVs in the factory zone, ``touching_fraction`` of them in touching pairs."""
    placed: list[PhantomObject] = []
    n_pairs = int(round(touching_fraction * n / 2))
    for _ in range(n_pairs):
        pair = _place_dmv_pair(rng, scene)
        if not pair:
            break
        placed.extend(pair)
    while len(placed) < n:
        found = find_sphere_in_factory(rng, scene, _dmv_radius)
        if found is None:
            break
        center, radius = found
        scene.add_obstacle(center, np.array([radius]))
        placed.append(_new_dmv(rng, scene, center, radius))
    return placed


# ======================================================================
# lipid droplets and mitochondria
# ======================================================================
def _lipid_radius(rng: np.random.Generator) -> float:
    return rng.uniform(*_LIPID_RADIUS_NM)


def place_lipid_droplets(rng: np.random.Generator, scene: Scene, n: int) -> list[PhantomObject]:
    """``n`` spherical lipid droplets anywhere in the cytoplasm."""
    placed: list[PhantomObject] = []
    for _ in range(n):
        found = find_sphere_in_cytoplasm(rng, scene, _lipid_radius)
        if found is None:
            break
        center, radius = found
        scene.add_obstacle(center, np.array([radius]))
        factor = 1 + rng.uniform(-LAC_JITTER, LAC_JITTER)
        droplet = PhantomObject(
            SXTClass.LIPID_DROPLET, "sphere", center, np.full(3, radius), kind="lipid_droplet",
            material="lipid_droplet", lac_factor=factor, parent=scene.cell,
        )  # fmt: skip
        placed.append(droplet)
    return placed


def _random_tube(rng: np.random.Generator, scene: Scene) -> tuple[np.ndarray, float]:
    """A random mitochondrion centre line (Bézier polyline, nm) and tube radius (nm).

    Cells are flat, so the tube lies mostly in the yx plane, in the thicker
    middle of the cell, and runs roughly around the nucleus (within ±45° of
    the tangent direction), the way mitochondria line up in a crowded cell.
    """
    cell, nucleus = scene.cell, scene.nucleus
    middle_of_cell, half = sampling_box(cell)
    radius = rng.uniform(*_MITO_RADIUS_NM)
    path_length = rng.uniform(*_MITO_LENGTH_NM) - 2 * radius
    middle = middle_of_cell + half * rng.uniform([-0.5, -0.9, -0.9], [0.5, 0.9, 0.9])
    angle = math.atan2(middle[1] - nucleus.center[1], middle[2] - nucleus.center[2])
    angle += math.pi / 2 + rng.uniform(-math.pi / 4, math.pi / 4)
    direction = np.array([rng.normal(0, 0.15), math.sin(angle), math.cos(angle)])
    direction /= math.hypot(*direction)  # lengths of single vectors by math.hypot, not BLAS: the same bits on any CPU
    sideways = np.cross(direction, random_unit_vectors(rng, 1)[0])
    sideways /= math.hypot(*sideways)
    bend = rng.uniform(0, _MITO_MAX_BEND) * path_length
    start, end = middle - direction * path_length / 2, middle + direction * path_length / 2
    return bezier_path(start, middle + sideways * bend, end), radius


def place_mitochondria(rng: np.random.Generator, scene: Scene, n: int) -> list[PhantomObject]:
    """``n`` mitochondria: bent capsule-shaped tubes in the cytoplasm."""
    cell, nucleus = scene.cell, scene.nucleus
    placed: list[PhantomObject] = []
    for _ in range(n):
        found = None
        for _ in range(MAX_BATCHES * BATCH // 4):
            path, radius = _random_tube(rng, scene)
            # the tube as a chain of spheres r/3 apart; their union is at most 1.4 % thinner between centres
            centers = resample_path(path, radius / 3)
            radii = np.full(len(centers), radius)
            if not inside_cell(cell, path[[0, len(path) // 2, -1]]).all():
                continue  # cheap test first
            if not spheres_inside_cell(cell, centers, radii + scene.clearance).all():
                continue
            to_nucleus = distance_to_ellipsoid(centers, nucleus.center, nucleus.semi_axes)
            if (to_nucleus < radius + scene.clearance).any():
                continue
            if scene.is_free(centers, radii):
                found = (path, radius, centers, radii)
                break
        if found is None:
            break
        path, radius, centers, radii = found
        scene.add_obstacle(centers, radii)
        factor = 1 + rng.uniform(-LAC_JITTER, LAC_JITTER)
        middle = (path[0] + path[-1]) / 2
        mitochondrion = PhantomObject(
            SXTClass.MITOCHONDRION, "tube", middle, np.full(3, radius), kind="mitochondrion",
            material="mitochondrion", path=path, lac_factor=factor, parent=cell,
        )  # fmt: skip
        placed.append(mitochondrion)
    return placed
