"""``lung_mask``: classical, training-free segmentation of the two lungs in a chest CT.

The steps, each on the Hounsfield units of a Volume from :func:`open_ct`:

1. Smooth in-plane (Gaussian, ``smoothing_mm``) so that the noise of sharp
   kernels (B70f) does not break the thresholds.
2. Body: the largest 3-D piece of dense tissue (above -500 HU, opened per
   slice so the table and its mattress come off), and per slice its convex
   hull.
3. Outside air: air (below -500 HU) touching the slice border whose median is
   pure air (below -950 HU), or that lies outside the body's hull (air under
   and around the table).  Lungs cut by a cropped field of view touch the
   border too, but their median is parenchyma (about -850 HU), so they stay.
4. Lung candidates: below ``air_threshold_hu`` (-320 HU, the usual lung
   threshold) inside the body, outside air removed; 3-D pieces whose median is
   pure gas (bowel, stomach) or that are smaller than ``min_component_ml``
   are dropped.
5. Airways: the trachea is found as a pure-air, tube-sized piece near the
   midline of the highest slices, and grown down through the lumen (below
   -950 HU) into the main bronchi; it is removed.
6. Left and right: two large pieces are the two lungs; one piece (lungs
   touching at the anterior junction) is split by eroding until it falls
   apart and growing the parts back (watershed on the distance map).  The
   lung whose centre lies towards the patient's left (larger x, axes S, P, L)
   is the left lung.
7. Filling: per slice, holes in each lung (vessels, nodules, airway walls)
   are filled, then a closing of ``fill_radius_mm`` takes in vessels and
   lesions that bulge into the lung from its border, within the body.

Limitations: tuned on the two reconstructions of one Siemens chest CT
(TCIA Lung-PET-CT-Dx A0002) and checked on a contrast chest crop and the lung
bases of an abdomen CT (TotalSegmentator's test data, with its reference
lobes); lungs whose median is below -950 HU (severe emphysema) read as gas
and are dropped, and dense consolidation against the chest wall beyond
``fill_radius_mm`` stays outside the mask.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi

from ...errors import InvalidArgumentError, InvalidDataError, ShapeError
from ...volume import Volume

__all__ = ["lung_mask", "NoLungsError", "LUNG_CLASSES", "RIGHT_LUNG", "LEFT_LUNG"]

#: Label codes of :func:`lung_mask` (the convention of lungmask and TotalSegmentator's lung task).
RIGHT_LUNG, LEFT_LUNG = 1, 2
LUNG_CLASSES = {"background": 0, "right_lung": RIGHT_LUNG, "left_lung": LEFT_LUNG}
LUNG_COLORS = {RIGHT_LUNG: (51, 153, 255, 110), LEFT_LUNG: (255, 153, 51, 110)}  # RGBA 0-255, translucent

_DENSE_HU = -500.0
_PURE_AIR_HU = -950.0


def label_metadata(classes: dict[str, int], colors: dict[int, tuple]) -> dict:
    """``label_names`` / ``label_colors`` metadata (what save_volume writes and napari shows)."""
    return {"label_names": {str(code): name for name, code in classes.items()},
            "label_colors": {str(code): list(colors.get(code, (0, 0, 0, 0))) for code in classes.values()}}


class NoLungsError(InvalidDataError):
    """The scan holds no lungs (an abdomen CT, a head CT, a scan of the lung bases only)."""


def _ellipse(radius_mm: float, spacing: tuple[float, float]) -> np.ndarray:
    ry, rx = (max(0, int(round(radius_mm / s))) for s in spacing)
    y, x = np.ogrid[-ry:ry + 1, -rx:rx + 1]
    return (y / max(ry, 0.5)) ** 2 + (x / max(rx, 0.5)) ** 2 <= 1.0


def _ellipsoid(radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    radii = [max(0, int(round(radius_mm / s))) for s in spacing]
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radii)]
    return sum((g / max(r, 0.5)) ** 2 for g, r in zip(grids, radii)) <= 1.0


def _largest(mask: np.ndarray, structure=None) -> np.ndarray:
    labels, n = ndi.label(mask, structure=structure)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a 2-D mask (polygon fill of scipy's hull: faster than a point-in-polygon grid)."""
    from scipy.spatial import ConvexHull, QhullError
    from skimage.draw import polygon

    edge = mask & ~ndi.binary_erosion(mask)
    points = np.argwhere(edge).astype(float)
    hull = mask.copy()
    try:
        vertices = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # a line or a few pixels: the mask is its own hull
        return hull
    rr, cc = polygon(vertices[:, 0], vertices[:, 1], mask.shape)
    hull[rr, cc] = True
    return hull


def _body(smooth: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """The body's dense tissue (largest 3-D piece) and, per slice, its convex hull."""
    disk = _ellipse(3.0, spacing[1:])
    dense = smooth > _DENSE_HU
    opened = np.stack([ndi.binary_opening(s, disk) for s in dense])
    body = _largest(opened)
    hull = np.stack([_convex_hull(s) if s.any() else s for s in body])
    return body, hull


def _fraction(mask: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Fraction of each labelled piece (index 0..n) where ``mask`` holds."""
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    hits = np.bincount(labels.ravel(), weights=mask.ravel(), minlength=n + 1)
    return hits / np.maximum(counts, 1)


def _outside_air(hu: np.ndarray, smooth: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """Air around the patient, slice by slice (see the module docstring, step 3)."""
    outside = np.zeros(hu.shape, bool)
    for k in range(hu.shape[0]):
        air = smooth[k] < _DENSE_HU
        labels, n = ndi.label(air)
        if n == 0:
            continue
        edge = np.zeros(n + 1, bool)
        edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
        pure = _fraction(hu[k] < _PURE_AIR_HU, labels, n)  # > 0.5: the median is pure air
        inside_hull = _fraction(hull[k], labels, n)
        out = (edge & (pure > 0.5)) | (inside_hull < 0.5)
        out[0] = False
        outside[k] = out[labels]
    return outside


def _trachea_seed(candidates: np.ndarray, smooth: np.ndarray, body: np.ndarray, spacing) -> np.ndarray | None:
    """A pure-air, tube-sized piece near the midline in the highest slices with air in the body."""
    pixel_mm2 = spacing[1] * spacing[2]
    lumen = candidates & (smooth < _PURE_AIR_HU)
    slices = np.nonzero(candidates.any(axis=(1, 2)))[0]
    for k in slices[::-1][: max(3, int(round(30.0 / spacing[0])))]:  # the top 30 mm of air
        xs = np.nonzero(body[k].any(axis=0))[0]
        if xs.size == 0:
            continue
        centre, half_width = (xs[0] + xs[-1]) / 2.0, (xs[-1] - xs[0]) / 2.0
        labels, n = ndi.label(lumen[k])
        for i, (area, (cy, cx)) in enumerate(zip(ndi.sum(lumen[k], labels, range(1, n + 1)),
                                                 ndi.center_of_mass(lumen[k], labels, range(1, n + 1))), start=1):
            if 50.0 <= area * pixel_mm2 <= 800.0 and abs(cx - centre) < 0.2 * half_width:
                seed = np.zeros_like(candidates)
                seed[k] = labels == i
                return seed
    return None


def _airways(candidates: np.ndarray, smooth: np.ndarray, body: np.ndarray, spacing) -> np.ndarray:
    """Trachea and main bronchi: the lumen grown from the trachea seed (empty when none is found)."""
    seed = _trachea_seed(candidates, smooth, body, spacing)
    if seed is None:
        return np.zeros_like(candidates)
    lumen = candidates & (smooth < _PURE_AIR_HU)
    labels, _ = ndi.label(lumen)  # 6-connected: the lumen does not leak through thin walls
    grown = np.unique(labels[seed & lumen])
    airway = np.isin(labels, grown[grown > 0])
    # the wall's partial-volume ring (thick slices): fill and widen the lumen in-plane by 2.5 mm
    disk = _ellipse(2.5, spacing[1:])
    airway = np.stack([ndi.binary_dilation(ndi.binary_fill_holes(s), disk) if s.any() else s for s in airway])
    return airway & candidates


def _split_two(mask: np.ndarray, spacing) -> np.ndarray | None:
    """Split one piece holding both lungs: erode (per slice) until two large parts appear, grow them back."""
    from skimage.segmentation import watershed

    distance = np.stack([ndi.distance_transform_edt(s, sampling=spacing[1:]) for s in mask])  # mm to the edge
    for depth_mm in np.arange(1.0, 21.0, 1.0):
        labels, n = ndi.label(distance > depth_mm)
        if n < 2:
            if n == 0:
                return None
            continue
        sizes = np.bincount(labels.ravel())[1:]
        big = np.argsort(sizes)[::-1][:2]
        if sizes[big[1]] >= 0.1 * sizes[big[0]]:
            markers = np.zeros(mask.shape, np.int32)
            markers[labels == big[0] + 1] = 1
            markers[labels == big[1] + 1] = 2
            return watershed(-distance, markers, mask=mask)
    return None


def _fill(lung: np.ndarray, allowed: np.ndarray, spacing, radius_mm: float) -> np.ndarray:
    """Per-slice hole filling, then a closing of ``radius_mm`` (kept inside ``allowed``), then holes again.

    Works in the lung's bounding box, padded by the closing's radius.
    """
    ball = _ellipsoid(radius_mm, spacing) if radius_mm > 0 else None
    margin = np.array(ball.shape) // 2 if ball is not None else np.zeros(3, int)
    (lo, hi) = _bbox(lung)
    lo = np.maximum(lo - margin, 0)
    hi = np.minimum(hi + margin + 1, lung.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop = np.stack([ndi.binary_fill_holes(s) for s in lung[box]])
    if ball is not None:
        pad = [(int(m), int(m)) for m in margin]
        closed = ndi.binary_closing(np.pad(crop, pad), ball)[tuple(slice(m, m + n) for m, n in zip(margin, crop.shape))]
        crop |= closed & allowed[box]
        crop = np.stack([ndi.binary_fill_holes(s) for s in crop])
    out = np.zeros_like(lung)
    out[box] = crop
    return out


def _bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of ``mask`` along each axis."""
    where = [np.nonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != i)))[0] for i in range(mask.ndim)]
    return np.array([w[0] for w in where]), np.array([w[-1] for w in where])


def _lung_volume(ct: Volume, out: np.ndarray, lungs_info: dict) -> Volume:
    """The label Volume of :func:`lung_mask`, with each lung's volume (mL) in ``metadata["lungs"]``."""
    voxel_ml = float(np.prod(ct.voxel_size)) / 1000.0
    volumes = {name: float((out == code).sum() * voxel_ml) for name, code in LUNG_CLASSES.items() if code}
    metadata = {"source": ct.metadata.get("source"), "ct": ct.metadata.get("ct"),
                **label_metadata(LUNG_CLASSES, LUNG_COLORS),
                "lungs": {"volume_ml": {k: v for k, v in volumes.items() if v > 0}, **lungs_info}}
    return ct.with_data(out, metadata=metadata)


def _model_lungs(ct: Volume, model, device, min_lung_fraction: float) -> Volume:
    """Lungs from a trained segmentation model (see ``model`` in :func:`lung_mask`)."""
    from ...infer import segment
    from ...models import load_model

    net = load_model(model, device=device) if not hasattr(model, "metadata") else model
    classes = {str(k): int(v) for k, v in net.metadata.get("classes", {}).items()}
    if not ({"right_lung", "left_lung"} <= set(classes) or "lung" in classes):
        raise InvalidArgumentError(f"{model}: a lung model needs classes right_lung and left_lung, or lung; "
                                   f"it has {sorted(classes)}")
    predicted = segment(ct, model=net, device=device, calibration="none", progress=False).to_numpy()
    out = np.zeros(ct.shape, np.uint8)
    method = "model"
    if "lung" in classes:
        whole = predicted == classes["lung"]
        split = _split_two(whole, tuple(float(s) for s in ct.voxel_size)) if whole.any() else None
        if split is None:
            raise NoLungsError(f"{ct.metadata.get('source', {}).get('path', 'the scan')}: the model found no "
                               "two lungs")
        centre = [ndi.center_of_mass(split == k)[2] for k in (1, 2)]
        right = 1 if centre[0] < centre[1] else 2
        out[split == right] = RIGHT_LUNG
        out[(split > 0) & (split != right)] = LEFT_LUNG
        method = "model, split by erosion"
    else:
        out[predicted == classes["right_lung"]] = RIGHT_LUNG
        out[predicted == classes["left_lung"]] = LEFT_LUNG
    body_ml = float((ct.to_numpy() > _DENSE_HU).sum() + (out > 0).sum()) * float(np.prod(ct.voxel_size)) / 1000
    lungs_ml = float((out > 0).sum()) * float(np.prod(ct.voxel_size)) / 1000
    if lungs_ml < min_lung_fraction * body_ml:
        raise NoLungsError(f"{ct.metadata.get('source', {}).get('path', 'the scan')}: holds no lungs: the model "
                           f"found {lungs_ml:.0f} mL of lung in {body_ml:.0f} mL of body")
    return _lung_volume(ct, out, {"separation": method, "model_sha256": net.metadata.get("sha256")})


def lung_mask(
    ct: Volume,
    *,
    air_threshold_hu: float = -320.0,
    smoothing_mm: float = 1.0,
    fill_radius_mm: float = 4.0,
    min_component_ml: float = 5.0,
    min_lung_fraction: float = 0.05,
    model=None,
    device="auto",
) -> Volume:
    """Segment the right and left lungs of a chest CT, without a trained model.

    Parameters
    ----------
    ct : Volume
        A CT in Hounsfield units with axes (S, P, L), as :func:`open_ct` returns (unit mm).
    air_threshold_hu : float
        Lung parenchyma is below this (HU); -320 HU is the common choice of
        threshold-based lung segmentation (Hu, Hoffman & Reinhardt, IEEE TMI 20:490, 2001,
        use an optimal threshold near it).
    smoothing_mm : float
        In-plane Gaussian sigma applied before thresholding (mm).
    fill_radius_mm : float
        Radius of the closing that takes in vessels and lesions at the lung border (mm).
    min_component_ml : float
        Air pieces smaller than this (mL) are not lung.
    min_lung_fraction : float
        When the lung-like air is less than this fraction of the body's
        volume, the scan is said to hold no lungs (lungs fill 20-40% of the
        body in the slices of a chest CT; the lung bases at the top of an
        abdomen CT about 1%).
    model : str, Path or torch.nn.Module, optional
        A trained lung segmentation model instead of the classical steps: a
        checkpoint of :func:`sxtseg.train.fit` (trained on CT volumes in HU
        with ``calibration="none"`` and a fixed HU intensity window) whose
        classes include ``right_lung`` and ``left_lung``, or one ``lung``
        class (split into left and right as above).  Run through
        :func:`sxtseg.segment`; no CT lung weights ship with sxtseg.  The
        other parameters except ``min_lung_fraction`` do not apply.
    device : str
        Device of ``model`` (``"auto"``: CUDA when available).

    Returns
    -------
    Volume
        uint8 labels on the CT's grid: 0 background, 1 right lung, 2 left lung
        (:data:`LUNG_CLASSES`); ``metadata["lungs"]`` has each lung's volume
        (mL) and how the two were separated.

    Raises
    ------
    NoLungsError
        When the lung-like air is less than ``min_lung_fraction`` of the body:
        the message says how much was found (an abdomen CT, or the lung bases only).
    ShapeError
        If ``ct`` is not a 3-D volume in mm.

    Examples
    --------
    >>> from sxtseg.phantom.chest import make_chest_phantom
    >>> ct, truth = make_chest_phantom(shape=(24, 96, 128), seed=0)
    >>> lungs = lung_mask(ct)
    >>> sorted(lungs.metadata["lungs"]["volume_ml"])
    ['left_lung', 'right_lung']
    """
    if ct.ndim != 3 or ct.unit != "mm" or ct.voxel_size is None:
        raise ShapeError(f"lung_mask needs a 3-D CT with its voxel size in mm (from open_ct), not {ct!r}")
    if model is not None:
        return _model_lungs(ct, model, device, min_lung_fraction)
    spacing = tuple(float(s) for s in ct.voxel_size)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    hu = np.asarray(ct.to_numpy(), dtype=np.float32)
    smooth = ndi.gaussian_filter(hu, (0.0, smoothing_mm / spacing[1], smoothing_mm / spacing[2]))

    body, hull = _body(smooth, spacing)
    outside = _outside_air(hu, smooth, hull)
    candidates = (smooth < air_threshold_hu) & hull & ~outside
    candidates &= hu > -1100.0  # outside a circular field of view (-2048, -3024)

    airway = _airways(candidates, smooth, body, spacing)
    lungish = candidates & ~airway
    labels, n = ndi.label(lungish)
    index = np.arange(1, n + 1)
    volume_ml = np.bincount(labels.ravel(), minlength=n + 1)[1:] * voxel_ml
    pure = _fraction(hu < _PURE_AIR_HU, labels, n)[1:]  # > 0.5: the median is pure gas (bowel, stomach)
    keep = index[(volume_ml >= min_component_ml) & (pure <= 0.5)]
    total_ml = float(volume_ml[keep - 1].sum()) if keep.size else 0.0
    body_ml = float(hull.sum()) * voxel_ml
    if total_ml < max(min_component_ml, min_lung_fraction * body_ml):
        raise NoLungsError(
            f"{ct.metadata.get('source', {}).get('path', 'the scan')}: holds no lungs: {total_ml:.0f} mL of "
            f"lung-like air in {body_ml:.0f} mL of body ({total_ml / max(body_ml, 1e-9):.1%}; a chest CT has at "
            f"least {min_lung_fraction:.0%}): an abdomen or other non-chest CT, or only the lung bases")

    kept_sizes = volume_ml[keep - 1]
    order = keep[np.argsort(kept_sizes)[::-1]]
    method = "two pieces"
    if len(order) >= 2 and volume_ml[order[1] - 1] >= 0.1 * volume_ml[order[0] - 1]:
        pieces = [labels == order[0], labels == order[1]]
    else:
        whole = labels == order[0]
        split = _split_two(whole, spacing)
        if split is not None:
            pieces, method = [split == 1, split == 2], "split by erosion"
        else:
            pieces, method = [whole], "one lung"
    centres_x = [ndi.center_of_mass(p)[2] for p in pieces]
    out = np.zeros(hu.shape, np.uint8)
    if len(pieces) == 1:
        body_x = ndi.center_of_mass(body)[2]
        side = LEFT_LUNG if centres_x[0] > body_x else RIGHT_LUNG
        warnings.warn(f"lung_mask: one lung found ({'left' if side == LEFT_LUNG else 'right'}, by its side of "
                      "the body's centre)", UserWarning, stacklevel=2)
        out[_fill(pieces[0], hull, spacing, fill_radius_mm)] = side
    else:
        right, left = (pieces if centres_x[0] < centres_x[1] else pieces[::-1])
        for code, piece in ((RIGHT_LUNG, right), (LEFT_LUNG, left)):
            filled = _fill(piece, hull & ~(left if code == RIGHT_LUNG else right), spacing, fill_radius_mm)
            out[filled & (out == 0)] = code
    return _lung_volume(ct, out, {"separation": method, "airway_voxels": int(airway.sum()),
                                  "air_threshold_hu": air_threshold_hu, "fill_radius_mm": fill_radius_mm})
