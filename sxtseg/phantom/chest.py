"""A synthetic chest CT with exact truth: body, table, two lungs with vessels, airways and lesions.

:func:`make_chest_phantom` draws, in Hounsfield units on a (z, y, x) grid whose
axes run towards Superior, Posterior and Left (the convention of
:func:`sxtseg.adapters.ct.open_ct`):

- air around the patient (-1000 HU) and a patient table with a foam mattress
  (+250 HU shell, -900 HU foam) under the back;
- an elliptic body of soft tissue (+40 HU) inside a fat layer (-100 HU);
- two lungs (-850 HU parenchyma): half-ellipsoids, flat at the base,
  rounded at the apex, the right one (towards smaller x) larger, as in people;
- pulmonary vessels (+40 HU): straight tubes of 1-2.5 mm radius from each
  hilum towards the periphery, part of the lung in the truth;
- the trachea and two main bronchi (-1000 HU lumen); the truth lungs are the ellipsoids
  (the bronchi inside them are lung, the trachea is not);
- ground-glass opacities (-550 HU) and consolidations (-20 HU): balls well
  inside the lungs, whose voxel volumes are the truth.

Gaussian noise (``noise_hu``) is added; the values are rounded to integer HU
as a scanner stores them.  Nothing here is a claim about real anatomy beyond
these round numbers: it is a test object with known answers.

Examples
--------
>>> ct, truth = make_chest_phantom(shape=(24, 96, 128), seed=0)
>>> ct.unit, ct.metadata["ct"]["axes_patient"]
('mm', 'SPL')
>>> sorted(truth)
['consolidation', 'consolidation_ml', 'ggo', 'ggo_ml', 'lungs', 'lungs_ml']
"""

from __future__ import annotations

import math

import numpy as np

from ..volume import Volume

__all__ = ["make_chest_phantom", "CHEST_HU"]

#: Hounsfield units of the phantom's materials.
CHEST_HU = {"air": -1000.0, "fat": -100.0, "soft_tissue": 40.0, "lung": -850.0, "vessel": 40.0,
            "ggo": -550.0, "consolidation": -20.0, "table": 250.0, "mattress": -900.0}


def _grid(shape, voxel_size):
    return np.ogrid[tuple(slice(0, n) for n in shape)], np.asarray(voxel_size, float)


def _tube(mask_shape, voxel_size, start_mm, end_mm, radius_mm) -> np.ndarray:
    """Voxels within ``radius_mm`` of the segment from ``start_mm`` to ``end_mm`` (z, y, x in mm)."""
    (z, y, x), size = _grid(mask_shape, voxel_size)
    p = [z * size[0], y * size[1], x * size[2]]
    a, b = np.asarray(start_mm, float), np.asarray(end_mm, float)
    d = b - a
    t = sum((p[i] - a[i]) * d[i] for i in range(3)) / float(d @ d)
    t = np.clip(t, 0.0, 1.0)
    return sum((p[i] - (a[i] + t * d[i])) ** 2 for i in range(3)) <= radius_mm ** 2


def _ball(mask_shape, voxel_size, centre_mm, radius_mm) -> np.ndarray:
    (z, y, x), size = _grid(mask_shape, voxel_size)
    return ((z * size[0] - centre_mm[0]) ** 2 + (y * size[1] - centre_mm[1]) ** 2
            + (x * size[2] - centre_mm[2]) ** 2) <= radius_mm ** 2


def _lung(shape, voxel_size, centre_yx_mm, semi_axes_mm, base_z_mm, height_mm) -> np.ndarray:
    """A half-ellipsoid: flat base at ``base_z_mm``, apex ``height_mm`` above it."""
    (z, y, x), size = _grid(shape, voxel_size)
    zz = (z * size[0] - base_z_mm) / height_mm
    inside = ((y * size[1] - centre_yx_mm[0]) / semi_axes_mm[0]) ** 2 + \
             ((x * size[2] - centre_yx_mm[1]) / semi_axes_mm[1]) ** 2 + zz ** 2
    return (inside <= 1.0) & (zz >= 0)


def make_chest_phantom(
    shape: tuple[int, int, int] = (40, 160, 192),
    voxel_size: tuple[float, float, float] = (5.0, 2.0, 2.0),
    *,
    seed: int = 0,
    n_ggo: int = 3,
    n_consolidation: int = 2,
    n_vessels: int = 10,
    noise_hu: float = 15.0,
    touching: bool = False,
) -> tuple[Volume, dict]:
    """A chest CT phantom in HU with its truth.

    Parameters
    ----------
    shape : (int, int, int)
        Voxels along (z, y, x) = (towards Superior, Posterior, Left).
    voxel_size : (float, float, float)
        Slice spacing and pixel spacing in mm.
    seed : int
        Seeds the lesion and vessel positions and the noise.
    n_ggo, n_consolidation : int
        Ground-glass and consolidation balls (split between the lungs).
    n_vessels : int
        Vessel tubes per lung.
    noise_hu : float
        Standard deviation of the Gaussian noise (HU).
    touching : bool
        Join the lungs in front of the heart (an anterior junction of lung
        tissue over the middle third of their height), as thin patients'
        lungs meet; the truth gives each side of the midline to its lung.

    Returns
    -------
    ct : Volume
        float32 HU, unit ``"mm"``, ``metadata["ct"]`` as :func:`open_ct` gives.
    truth : dict
        ``lungs`` (uint8: 0, 1 right, 2 left), ``ggo`` and ``consolidation``
        (bool arrays) and their volumes in mL (``lungs_ml`` a dict per lung).
    """
    rng = np.random.default_rng(seed)
    size = np.asarray(voxel_size, float)
    extent = np.asarray(shape) * size  # mm
    zc, yc, xc = extent / 2.0
    body_axes = (0.36 * extent[1], 0.44 * extent[2])  # (y, x) semi-axes, mm
    hu = np.full(shape, CHEST_HU["air"], np.float32)

    (_, y, x), _ = _grid(shape, size)
    y, x = y[0] * size[1], x[0] * size[2]  # (ny, 1) and (1, nx), mm
    r_body = ((y - yc) / body_axes[0]) ** 2 + ((x - xc) / body_axes[1]) ** 2
    hu[:, (r_body <= 1.0)] = CHEST_HU["fat"]
    hu[:, (r_body <= 0.85)] = CHEST_HU["soft_tissue"]
    back = yc + body_axes[0]
    table = np.broadcast_to((y > back + 6.0) & (y < back + 18.0), r_body.shape)
    mattress = (y > back + 8.0) & (y < back + 16.0) & (np.abs(x - xc) < 0.8 * body_axes[1])
    hu[:, table] = CHEST_HU["table"]
    hu[:, mattress] = CHEST_HU["mattress"]

    base_z = 0.12 * extent[0]
    height = 0.8 * extent[0]
    lung_axes = {1: (0.55 * body_axes[0], 0.30 * body_axes[1]), 2: (0.52 * body_axes[0], 0.27 * body_axes[1])}
    lung_centres = {1: (yc, xc - 0.45 * body_axes[1]), 2: (yc, xc + 0.47 * body_axes[1])}
    lungs = np.zeros(shape, np.uint8)
    for code in (1, 2):
        lungs[_lung(shape, size, lung_centres[code], lung_axes[code], base_z, height)] = code
    if touching:
        (z, y3, x3), _ = _grid(shape, size)
        bridge = ((z * size[0] > base_z + 0.3 * height) & (z * size[0] < base_z + 0.6 * height)
                  & (np.abs(y3 * size[1] - (yc - 0.35 * lung_axes[1][0])) < 8.0)
                  & (x3 * size[2] > lung_centres[1][1]) & (x3 * size[2] < lung_centres[2][1]))
        lungs[bridge & (lungs == 0)] = np.where(np.broadcast_to(x3 * size[2] < xc, shape), 1, 2)[bridge & (lungs == 0)]
    hu[lungs > 0] = CHEST_HU["lung"]

    # vessels: from the hilum (medial, mid-height) outwards, inside the lung only
    for code in (1, 2):
        cy, cx = lung_centres[code]
        medial = cx + (0.6 if code == 1 else -0.6) * lung_axes[code][1]
        hilum = np.array([base_z + 0.35 * height, cy, medial])
        for _ in range(n_vessels):
            direction = rng.normal(size=3)
            direction[2] = -abs(direction[2]) if code == 1 else abs(direction[2])
            direction /= math.hypot(*direction)
            end = hilum + direction * rng.uniform(0.5, 0.9) * lung_axes[code][1] * 1.6
            tube = _tube(shape, size, hilum, end, rng.uniform(1.0, 2.5)) & (lungs == code)
            hu[tube] = CHEST_HU["vessel"]

    # trachea down the midline to the carina, main bronchi into each lung (lumen outside the lung truth)
    carina = np.array([base_z + 0.55 * height, yc - 0.15 * body_axes[0], xc])
    airway = _tube(shape, size, [extent[0] + 10.0, carina[1], xc], carina, 7.0)
    for code in (1, 2):
        cy, cx = lung_centres[code]
        target = np.array([base_z + 0.45 * height, cy, cx + (0.5 if code == 1 else -0.5) * lung_axes[code][1]])
        airway |= _tube(shape, size, carina, target, 4.5)
    hu[airway] = CHEST_HU["air"]  # the truth keeps the ellipsoids: intrapulmonary bronchi are lung

    # lesions: balls well inside one lung (their whole ball and a 4 mm rim inside, clear of the airways)
    ggo = np.zeros(shape, bool)
    consolidation = np.zeros(shape, bool)
    for kind, count, target in (("ggo", n_ggo, ggo), ("consolidation", n_consolidation, consolidation)):
        placed = 0
        for _ in range(400):
            if placed == count:
                break
            code = 1 + placed % 2
            radius = rng.uniform(9.0, 14.0)
            centre = np.array([rng.uniform(base_z, base_z + height), rng.uniform(0, extent[1]),
                               rng.uniform(0, extent[2])])
            ball = _ball(shape, size, centre, radius)
            rim = _ball(shape, size, centre, radius + 4.0)
            if not ball.any() or not np.all(lungs[rim] == code) or (airway & rim).any() or ((ggo | consolidation) & rim).any():
                continue
            target |= ball
            hu[ball] = CHEST_HU[kind]
            placed += 1
    hu += rng.normal(0.0, noise_hu, shape).astype(np.float32)
    hu = np.round(hu)

    voxel_ml = float(np.prod(size)) / 1000.0
    truth = {"lungs": lungs, "ggo": ggo, "consolidation": consolidation,
             "lungs_ml": {"right_lung": float((lungs == 1).sum() * voxel_ml), "left_lung": float((lungs == 2).sum() * voxel_ml)},
             "ggo_ml": float(ggo.sum() * voxel_ml), "consolidation_ml": float(consolidation.sum() * voxel_ml)}
    affine = np.diag([size[0], size[1], size[2], 1.0])[[2, 1, 0, 3]]  # (z, y, x) -> LPS (x, y, z)
    metadata = {"source": {"path": f"chest phantom (seed {seed})", "reader": "phantom"},
                "ct": {"axes_patient": "SPL", "affine_lps": affine.tolist(), "intensity_unit": "HU",
                       "patient_id": f"PHANTOM-{seed}", "modality": "CT"}}
    return Volume(hu, voxel_size=tuple(float(s) for s in size), unit="mm", axes="zyx", metadata=metadata), truth

