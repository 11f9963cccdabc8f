"""Decoy vesicles: round, dense-looking objects that are not DMVs (internal).

They get class :attr:`~sxtseg.classes.SXTClass.OTHER_VESICLE` and are placed
after every other organelle, each kind from its own random generator, so the
cell, its organelles and the DMVs are the same with or without them.  They
keep the scene's clearance from everything (they never overlap or touch a
DMV).  A third of each kind is placed in the DMV factory zone when there is
room, the rest anywhere in the cytoplasm.

* lysosomes (and late endosomes): uniform dense balls, 200-800 nm across
  (uniform in diameter, so about a third fall in the DMVs' 200-400 nm),
  LAC 0.30-0.40 /µm;
* multivesicular bodies: a vesicle 400-800 nm across with a dense limiting
  membrane around a lumen holding 5-20 small vesicles 40-80 nm across;
* vacuoles: low-LAC (0.13-0.17 /µm, lighter than cytoplasm) balls
  300-1000 nm across.
"""

from __future__ import annotations

import math

import numpy as np

from ..classes import SXTClass
from .geometry import PhantomObject, membrane_thickness_nm
from .lac import LAC
from .scene import LAC_JITTER, Scene, find_sphere_in_cytoplasm, find_sphere_in_factory

LYSOSOME_DIAMETER_NM = (200.0, 800.0)
LYSOSOME_LAC = (0.30, 0.40)
MVB_DIAMETER_NM = (400.0, 800.0)
MVB_INNER_DIAMETER_NM = (40.0, 80.0)
MVB_INNER_COUNT = (5, 20)
VACUOLE_DIAMETER_NM = (300.0, 1000.0)
VACUOLE_LAC = (0.13, 0.17)
_NEAR_FACTORY = 1 / 3  # fraction of each kind placed in the DMV factory zone


def _place(rng: np.random.Generator, scene: Scene, n: int, diameter_nm: tuple[float, float]):
    """Up to ``n`` free (centre, radius) spheres, a third near the factory; each becomes an obstacle."""

    def draw_radius(r: np.random.Generator) -> float:
        return r.uniform(*diameter_nm) / 2

    n_near = int(round(_NEAR_FACTORY * n))
    found = []
    for i in range(n):
        spot = find_sphere_in_factory(rng, scene, draw_radius) if i < n_near else None
        if spot is None:
            spot = find_sphere_in_cytoplasm(rng, scene, draw_radius)
        if spot is None:
            break
        scene.add_obstacle(spot[0], np.array([spot[1]]))
        found.append(spot)
    return found


def _uniform_balls(rng: np.random.Generator, scene: Scene, n: int, diameter_nm, lac_range,
                   kind: str) -> list[PhantomObject]:
    """``n`` balls of one material (``kind``), diameters and LAC drawn uniformly from the ranges."""
    placed = []
    for center, radius in _place(rng, scene, n, diameter_nm):
        factor = rng.uniform(*lac_range) / LAC[kind]
        placed.append(PhantomObject(
            SXTClass.OTHER_VESICLE, "sphere", center, np.full(3, radius), kind=kind,
            material=kind, lac_factor=factor, partial_volume=True, parent=scene.cell,
        ))  # fmt: skip
    return placed


def place_lysosomes(rng: np.random.Generator, scene: Scene, n: int) -> list[PhantomObject]:
    """``n`` lysosomes: uniform dense balls (LAC 0.30-0.40 /µm), 200-800 nm across."""
    return _uniform_balls(rng, scene, n, LYSOSOME_DIAMETER_NM, LYSOSOME_LAC, "lysosome")


def place_vacuoles(rng: np.random.Generator, scene: Scene, n: int) -> list[PhantomObject]:
    """``n`` vacuoles: low-LAC balls (0.13-0.17 /µm), 300-1000 nm across."""
    return _uniform_balls(rng, scene, n, VACUOLE_DIAMETER_NM, VACUOLE_LAC, "vacuole")


def place_multivesicular_bodies(
    rng: np.random.Generator, scene: Scene, n: int, v: np.ndarray
) -> list[PhantomObject]:
    """``n`` multivesicular bodies, 400-800 nm, each holding 5-20 vesicles of 40-80 nm (fewer if they do not fit).

    The small vesicles lie inside the lumen, under the limiting membrane
    (as thick as drawn at voxel size ``v``), apart from each other.
    """
    placed = []
    for center, radius in _place(rng, scene, n, MVB_DIAMETER_NM):
        membrane_nm = membrane_thickness_nm(v, radius)
        wanted = int(rng.integers(MVB_INNER_COUNT[0], MVB_INNER_COUNT[1] + 1))
        inner: list[tuple[np.ndarray, float]] = []
        for _ in range(wanted):
            r = rng.uniform(*MVB_INNER_DIAMETER_NM) / 2
            room = radius - 2 * membrane_nm - r  # the centre stays this close to the MVB's centre
            for _ in range(50):
                offset = rng.uniform(-room, room, 3)
                if math.hypot(*offset) > room:
                    continue
                c = center + offset
                if all(np.linalg.norm(c - c2) >= r + r2 + membrane_nm for c2, r2 in inner):
                    inner.append((c, r))
                    break
        factor = 1 + rng.uniform(-LAC_JITTER, LAC_JITTER)
        vesicles = np.array([[*c, r] for c, r in inner]).reshape(-1, 4)
        placed.append(PhantomObject(
            SXTClass.OTHER_VESICLE, "mvb", center, np.full(3, radius), kind="mvb", material="mvb",
            inner_vesicles=vesicles, lac_factor=factor, partial_volume=True, parent=scene.cell,
        ))  # fmt: skip
    return placed
