"""What lies around the cell: gold fiducials, a capillary wall, a neighbouring cell (internal).

Each is placed after the cell and its organelles, from its own random
generator, so turning one on changes nothing else.

* fiducials: gold beads 100-250 nm across in the ice (inside the capillary
  when there is one), and a quarter of them (``n // 4``) sitting on the
  cell's surface; they keep the scene's clearance from everything else;
* the capillary: a glass cylinder shell along y (the rotation axis), 300-600
  nm thick, whose inner surface clears every cell by the clearance; its axis
  is shifted off the volume's centre in x by up to 15 % of the extent, so the
  wall shows as a curved bright band near one or both x borders (not on a
  side a cell reaches, and usually nowhere with a neighbour cell, which comes
  in across a corner);
* the neighbour cell: a second bumpy cell, 70-100 % the size of the first,
  entering across a corner of the yx plane and keeping the clearance from the
  first.  It has no nucleus: one would lie outside the field of view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..classes import SXTClass
from .geometry import (
    PhantomObject,
    cell_surface_points,
    cell_volume_and_centroid,
    fibonacci_sphere,
    fraction_in_box,
    in_box,
    inside_boundary,
    random_unit_vectors,
    spheres_outside_cell,
)
from .scene import BATCH, MAX_BATCHES, Scene, field_of_view, random_roughness

FIDUCIAL_DIAMETER_NM = (100.0, 250.0)
CAPILLARY_WALL_NM = (300.0, 600.0)
_CAPILLARY_AXIS_SHIFT = 0.15  # fraction of the x extent
_NEIGHBOUR_SIZE = (0.7, 1.0)  # semi-axes relative to the cell's
_NEIGHBOUR_MIN_VISIBLE = 0.01  # least fraction of the volume the neighbour must fill


@dataclass
class Capillary:
    """A glass cylinder shell along y: axis at (z, x) = (axis_z_nm, axis_x_nm), nm."""

    axis_z_nm: float
    axis_x_nm: float
    inner_radius_nm: float
    wall_nm: float

    def distance_to_axis(self, points: np.ndarray) -> np.ndarray:
        """Distance (nm) of points (n, 3) from the axis."""
        return np.hypot(points[:, 0] - self.axis_z_nm, points[:, 2] - self.axis_x_nm)

    def as_dict(self) -> dict[str, float]:
        return {
            "axis": "y",
            "axis_z_nm": float(self.axis_z_nm),
            "axis_x_nm": float(self.axis_x_nm),
            "inner_radius_nm": float(self.inner_radius_nm),
            "wall_nm": float(self.wall_nm),
        }


def _clear_of_each_other(first: PhantomObject, second: PhantomObject, clearance: float) -> bool:
    """Whether two cells keep ``clearance`` apart (tested on 3000 boundary points of each)."""
    u = fibonacci_sphere(3000)
    for a, b in ((first, second), (second, first)):
        surface = a.center + a.semi_axes * u * (1 + a.roughness(u))[:, None]
        grown = surface + clearance * u
        if inside_boundary(b, np.concatenate([surface, grown])).any():
            return False
    return True


def place_neighbour_cell(
    rng: np.random.Generator, cell: PhantomObject, shape: tuple[int, int, int], v: np.ndarray, clearance: float
) -> PhantomObject | None:
    """A second cell entering the volume across a yx corner, clear of ``cell``; None when none fits."""
    box = field_of_view(shape, v)
    size = np.concatenate([[rng.uniform(0.8, 1.0)], rng.uniform(*_NEIGHBOUR_SIZE, 2)])
    neighbour = PhantomObject(
        SXTClass.CYTOPLASM, "cell", cell.center.copy(), cell.semi_axes * size, kind="neighbour_cell",
        material="cytoplasm", roughness=random_roughness(rng),
    )  # fmt: skip
    volume = cell_volume_and_centroid(neighbour)[0]
    box_volume = float(np.prod(box[1] - box[0]))
    for corner in rng.permutation(4):
        angle = math.radians(45 + 90 * int(corner) + rng.uniform(-20, 20))
        direction = np.array([0.0, math.sin(angle), math.cos(angle)])
        near, far = 0.0, 2.5 * float(np.linalg.norm(cell.semi_axes[1:] + neighbour.semi_axes[1:]))
        neighbour.center = cell.center + far * direction
        if not _clear_of_each_other(cell, neighbour, clearance):
            continue
        for _ in range(30):  # bisection: the nearest clear position along the direction
            middle = (near + far) / 2
            neighbour.center = cell.center + middle * direction
            if _clear_of_each_other(cell, neighbour, clearance):
                far = middle
            else:
                near = middle
        neighbour.center = cell.center + far * direction
        if volume * fraction_in_box(neighbour, box) >= _NEIGHBOUR_MIN_VISIBLE * box_volume:
            return neighbour
    return None


def place_capillary(
    rng: np.random.Generator, cells: list[PhantomObject], shape: tuple[int, int, int], v: np.ndarray,
    clearance: float,
) -> Capillary:
    """A capillary wall along y whose inner surface clears every cell (within the volume's y range)."""
    lo, hi = field_of_view(shape, v)
    axis_z = (lo[0] + hi[0]) / 2
    axis_x = (lo[2] + hi[2]) / 2 + rng.uniform(-1, 1) * _CAPILLARY_AXIS_SHIFT * (hi[2] - lo[2])
    capillary = Capillary(axis_z, axis_x, 0.0, rng.uniform(*CAPILLARY_WALL_NM))
    reach = 0.0
    for cell in cells:
        surface = cell_surface_points(cell, 20000)
        within = (surface[:, 1] >= lo[1] - clearance) & (surface[:, 1] <= hi[1] + clearance)
        if within.any():
            reach = max(reach, float(capillary.distance_to_axis(surface[within]).max()))
    capillary.inner_radius_nm = 1.01 * reach + clearance  # 1 % for the bumps between the sampled points
    return capillary


def _fiducial_radius(rng: np.random.Generator) -> float:
    return rng.uniform(*FIDUCIAL_DIAMETER_NM) / 2


def _outward_normals(cell: PhantomObject, points: np.ndarray) -> np.ndarray:
    """Unit outward normals of the bumpy boundary at points (n, 3), by central differences."""

    def level(p: np.ndarray) -> np.ndarray:  # < 0 inside, > 0 outside, scaled coordinates
        q = (p - cell.center) / cell.semi_axes
        rho = np.linalg.norm(q, axis=1)
        return rho - 1 - cell.roughness(q / np.maximum(rho, 1e-12)[:, None])

    step = 1.0  # nm
    gradient = np.stack(
        [level(points + step * e) - level(points - step * e) for e in np.eye(3)], axis=1
    )
    return gradient / np.linalg.norm(gradient, axis=1, keepdims=True)


def place_fiducials(
    rng: np.random.Generator,
    scene: Scene,
    n: int,
    shape: tuple[int, int, int],
    v: np.ndarray,
    neighbour: PhantomObject | None,
    capillary: Capillary | None,
) -> list[PhantomObject]:
    """``n`` gold beads: ``n - n // 4`` in the ice, ``n // 4`` on the cell's surface."""
    lo, hi = field_of_view(shape, v)
    cell, clearance = scene.cell, scene.clearance

    def allowed(centers: np.ndarray, radius: float) -> np.ndarray:
        ok = in_box((lo + radius, hi - radius), centers)
        if neighbour is not None:
            ok &= spheres_outside_cell(neighbour, centers, np.full(len(centers), radius + clearance))
        if capillary is not None:
            ok &= capillary.distance_to_axis(centers) + radius + clearance <= capillary.inner_radius_nm
        return ok

    def in_ice(r: np.random.Generator, radius: float) -> np.ndarray:
        centers = r.uniform(lo + radius, hi - radius, (BATCH, 3))
        radii = np.full(BATCH, radius + clearance)
        return centers[allowed(centers, radius) & spheres_outside_cell(cell, centers, radii)]

    def on_cell(r: np.random.Generator, radius: float) -> np.ndarray:
        u = random_unit_vectors(r, BATCH)
        surface = cell.center + cell.semi_axes * u * (1 + cell.roughness(u))[:, None]
        centers = surface + radius * _outward_normals(cell, surface)
        return centers[allowed(centers, radius)]

    placed = []
    n_on_cell = n // 4
    for i in range(n):
        candidates = in_ice if i < n - n_on_cell else on_cell
        found = None
        for _ in range(MAX_BATCHES):
            radius = _fiducial_radius(rng)
            free = (c for c in candidates(rng, radius) if scene.is_free(c[None, :], np.array([radius])))
            found = next(free, None)
            if found is not None:
                break
        if found is None:
            continue  # no room for this one; a bead on the cell may still fit
        scene.add_obstacle(found, np.array([radius]))
        placed.append(PhantomObject(
            SXTClass.FIDUCIAL, "sphere", found, np.full(3, radius), kind="fiducial", material="gold",
            partial_volume=True,
        ))  # fmt: skip
    return placed
