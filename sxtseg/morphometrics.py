"""Per-object measurements in physical units, built on the one-pass Numba kernels.

:func:`measure` turns a label volume (and optionally the grey-value image and
the class volume) into a :class:`pandas.DataFrame` with one row per object:
size, surface area, shape, position, bounding box and grey-value statistics,
with the unit in every column name (and in ``DataFrame.attrs["units"]``).

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume, measure
>>> labels = np.zeros((20, 20, 20), np.uint8)
>>> zz, yy, xx = np.mgrid[:20, :20, :20]
>>> labels[(zz - 10) ** 2 + (yy - 10) ** 2 + (xx - 10) ** 2 <= 36] = 1
>>> table = measure(Volume(labels, voxel_size=30.0))
>>> round(float(table.loc[0, "equivalent_diameter_nm"]))  # a 360 nm ball of 30 nm voxels
363
>>> round(float(table.loc[0, "sphericity"]), 2)
1.01
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd

from .errors import InvalidDataError, ShapeError, VoxelSizeError
from .volume import Volume, block_by_block

__all__ = ["block_voxel_counts", "class_voxel_counts", "measure", "nearest_same_class", "summarize", "COLUMNS",
           "DISTANCE_COLUMNS"]

#: Columns of the table :func:`measure` returns, with their units.
COLUMNS: dict[str, str] = {
    "label": "",
    "class_id": "",
    "voxel_count": "voxels",
    "volume_um3": "um^3",
    "surface_area_um2": "um^2",
    "equivalent_diameter_nm": "nm",
    "sphericity": "1",
    "principal_axis_major_nm": "nm",
    "principal_axis_mid_nm": "nm",
    "principal_axis_minor_nm": "nm",
    "elongation": "1",
    "flatness": "1",
    "centroid_z_vox": "voxels",
    "centroid_y_vox": "voxels",
    "centroid_x_vox": "voxels",
    "centroid_z_nm": "nm",
    "centroid_y_nm": "nm",
    "centroid_x_nm": "nm",
    "bbox_z0": "voxels",
    "bbox_y0": "voxels",
    "bbox_x0": "voxels",
    "bbox_z1": "voxels",
    "bbox_y1": "voxels",
    "bbox_x1": "voxels",
    "inertia_eig_0": "voxels^2",
    "inertia_eig_1": "voxels^2",
    "inertia_eig_2": "voxels^2",
    "intensity_mean": "image unit",
    "intensity_std": "image unit",
    "intensity_min": "image unit",
    "intensity_max": "image unit",
    "touches_border": "",
}

#: Columns added when ``classes`` is given: distances from each object's centroid.
DISTANCE_COLUMNS: dict[str, str] = {
    "distance_to_nucleus_nm": "nm",
    "distance_to_cell_boundary_nm": "nm",
    "nearest_neighbour_nm": "nm",
}


def _distances(table: pd.DataFrame, class_at_centroid: np.ndarray, nucleus_points: np.ndarray,
               cell_points: np.ndarray, spacing_nm: np.ndarray) -> None:
    """Add distance columns (in place): centroid to nucleus, to the cell boundary, to the nearest same-class object.

    Distances run from the centroid's voxel to the nearest nucleus voxel (0
    inside the nucleus) and to the nearest background voxel (0 outside the
    cell), as Euclidean distance transforms with the voxel size as sampling
    would give them.  Only boundary voxels can be nearest, so a k-d tree of
    the boundary voxels (a surface, not the volume) answers exactly, with no
    volume-sized float arrays.
    """
    from scipy.spatial import cKDTree

    from .classes import SXTClass

    n = len(table)
    centres_vox = np.rint(table[["centroid_z_vox", "centroid_y_vox", "centroid_x_vox"]].to_numpy())
    for column, points, inside_is_zero in (
        ("distance_to_nucleus_nm", nucleus_points, np.isin(class_at_centroid, (SXTClass.NUCLEUS, SXTClass.NUCLEOLUS))),
        ("distance_to_cell_boundary_nm", cell_points, class_at_centroid == SXTClass.BACKGROUND),
    ):
        distance = np.full(n, np.nan)
        if len(points) and n:
            distance, _ = cKDTree(points * spacing_nm).query(centres_vox * spacing_nm)
            distance[inside_is_zero] = 0.0
        table[column] = distance
    nearest_same_class(table)


def nearest_same_class(table: pd.DataFrame) -> None:
    """Set ``nearest_neighbour_nm`` (in place): centroid distance to the nearest other object of the same class.

    NaN for an object alone in its class.  :func:`measure` calls it; call it
    again after changing ``class_id`` (as :mod:`sxtseg.object_checks` does).

    Examples
    --------
    >>> t = pd.DataFrame({"class_id": [6, 6, 5], "centroid_z_nm": [0.0, 0.0, 0.0],
    ...                   "centroid_y_nm": [0.0, 300.0, 0.0], "centroid_x_nm": [0.0, 400.0, 10.0]})
    >>> nearest_same_class(t)
    >>> t["nearest_neighbour_nm"].tolist()
    [500.0, 500.0, nan]
    """
    from scipy.spatial import cKDTree

    nearest = np.full(len(table), np.nan)
    centres = table[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy()
    for class_id in np.unique(table["class_id"]):
        rows = np.nonzero(table["class_id"].to_numpy() == class_id)[0]
        if len(rows) > 1:
            dist, _ = cKDTree(centres[rows]).query(centres[rows], k=2)
            nearest[rows] = dist[:, 1]
    table["nearest_neighbour_nm"] = nearest


def _array(vol: Volume) -> np.ndarray:
    return vol.to_numpy()  # no copy for a Volume made from a NumPy array


def _central_moments(stats: dict, rows: np.ndarray) -> np.ndarray:
    """(N, 3, 3) central second moments per voxel (covariance of voxel indices)."""
    n = stats["count"][rows].astype(np.float64)[:, None]
    mean = stats["first_moment"][rows] / n  # relative to the origin
    s2 = stats["second_moment"][rows] / n
    cov = np.empty((len(rows), 3, 3))
    for col, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]):
        value = s2[:, col] - mean[:, i] * mean[:, j]
        cov[:, i, j] = value
        cov[:, j, i] = value
    return cov


def _inertia_eigenvalues(cov: np.ndarray) -> np.ndarray:
    """Eigenvalues of the inertia tensor, as ``skimage.measure.regionprops`` defines it (descending)."""
    trace = np.trace(cov, axis1=1, axis2=2)
    tensor = -cov.copy()
    for i in range(3):
        tensor[:, i, i] = trace - cov[:, i, i]
    eig = np.linalg.eigvalsh(tensor)[:, ::-1]
    return np.clip(eig, 0, None)


def measure(
    labels: Volume,
    image: Volume | None = None,
    classes: Volume | None = None,
    *,
    surface_method: str = "auto",
    threads: int | None = None,
) -> pd.DataFrame:
    """Measure every labelled object in physical units.

    Parameters
    ----------
    labels : Volume
        Instance labels (integers, 0 background), with a known voxel size.
    image : Volume, optional
        Grey values (LAC in 1/µm for SXT) of the same shape: adds
        ``intensity_mean/std/min/max`` in the image's unit.
    classes : Volume, optional
        Class codes (:class:`sxtseg.SXTClass`) of the same shape: each
        object's ``class_id`` is the class at its first voxel.
    surface_method : {"auto", "lindblad", "crofton"}
        Surface-area estimator: Lindblad's weighted 2x2x2 configurations for
        cubic voxels, a Crofton 13-direction estimator for anisotropic ones
        (``"auto"`` picks by the voxel size).
    threads : int, optional
        Threads for the one-pass kernel (default: the CPU count).

    Returns
    -------
    pandas.DataFrame
        One row per label present, ordered by label, with the columns of
        :data:`COLUMNS` (and, with ``classes``, :data:`DISTANCE_COLUMNS`:
        the distance from the centroid to the nearest nucleus or nucleolus
        voxel, 0 inside the nucleus; to the nearest background voxel, i.e.
        the cell boundary; and to the nearest centroid of another object of
        the same class).  ``principal_axis_*_nm`` are the full axis lengths
        of the ellipsoid with the same second moments (``sqrt(20 λ)``, exact
        for a solid ellipsoid); ``elongation`` is mid/major and ``flatness``
        minor/mid; ``sphericity`` is ``π^(1/3) (6V)^(2/3) / A``;
        ``inertia_eig_*`` are scikit-image's inertia-tensor eigenvalues in
        voxel units; ``bbox_*1`` are exclusive.  ``attrs["units"]`` maps
        every column to its unit.  An empty volume gives an empty table.

    Raises
    ------
    VoxelSizeError
        The label volume's voxel size is unknown.
    InvalidDataError
        The labels are not integers.
    ShapeError
        ``image`` or ``classes`` do not match the labels' shape.
    """
    from sxtseg.kernels import default_threads, surface_lut
    from sxtseg.kernels._stats import _as_dict

    from ._chunked_measure import block_stats, chunked_stats

    name = labels._name() if isinstance(labels, Volume) else "labels"
    if not isinstance(labels, Volume):
        raise TypeError("labels must be a sxtseg.Volume (wrap an array with Volume(array, voxel_size=...))")
    if labels.voxel_size is None:
        raise VoxelSizeError(f"{name}: the voxel size is unknown, and measure reports physical units; set it first")
    if labels.dtype.kind not in "biu":
        raise InvalidDataError(f"{name}: labels must be integers, got {labels.dtype} (segment or label first)")
    if labels.ndim != 3:
        raise ShapeError(f"{name}: measure needs a 3-D label volume, got shape {labels.shape}")
    for other, what in ((image, "image"), (classes, "classes")):
        if other is not None and tuple(other.shape) != labels.shape:
            raise ShapeError(f"{name}: {what} has shape {tuple(other.shape)}, the labels {labels.shape}")

    spacing_nm = np.array(labels.voxel_size_in("nm"))
    spacing_um = spacing_nm / 1000.0
    lut = surface_lut(tuple(spacing_um), surface_method)
    if block_by_block(labels):  # for volumes larger than memory
        merged = chunked_stats(labels.data, image.data if image is not None else None,
                               classes.data if classes is not None else None, lut)
    else:
        lab = _array(labels)
        lab = lab.view(np.uint8) if lab.dtype == bool else lab
        largest = int(lab.max()) if lab.size else 0
        merged = block_stats(
            lab,
            _array(image) if image is not None else None,
            _array(classes) if classes is not None else None,
            lut=lut, threads=default_threads(threads, voxels=lab.size),
            # one accumulator row (192 bytes) per label number: renumber sparse, large label numbers first
            compact=largest >= 2**16 and (largest + 1) * 192 > lab.nbytes)
    stats = _as_dict(merged["acc_i"][:, :10], merged["acc_f"], image is not None)
    rows = np.nonzero(stats["count"] > 0)[0]
    n = stats["count"][rows].astype(np.float64)
    centroid_vox = stats["origin"][rows] + stats["first_moment"][rows] / n[:, None]
    cov_vox = _central_moments(stats, rows)
    cov_nm = cov_vox * np.outer(spacing_nm, spacing_nm)[None]
    principal = np.sqrt(20.0 * np.clip(np.linalg.eigvalsh(cov_nm)[:, ::-1], 0, None)) if len(rows) else np.zeros((0, 3))
    volume_um3 = n * float(np.prod(spacing_um))
    area_um2 = stats["surface_area"][rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        sphericity = np.where(area_um2 > 0, np.pi ** (1 / 3) * (6 * volume_um3) ** (2 / 3) / area_um2, np.nan)
        elongation = principal[:, 1] / principal[:, 0]
        flatness = principal[:, 2] / principal[:, 1]
    bbox_min, bbox_max = stats["bbox_min"][rows], stats["bbox_max"][rows] + 1
    shape = np.array(labels.shape)
    table = {
        "label": merged["ids"][rows].astype(np.int64),
        "class_id": np.zeros(len(rows), np.int64),
        "voxel_count": n.astype(np.int64),
        "volume_um3": volume_um3,
        "surface_area_um2": area_um2,
        "equivalent_diameter_nm": (6.0 * volume_um3 / np.pi) ** (1 / 3) * 1000.0,
        "sphericity": sphericity,
        "principal_axis_major_nm": principal[:, 0],
        "principal_axis_mid_nm": principal[:, 1],
        "principal_axis_minor_nm": principal[:, 2],
        "elongation": elongation,
        "flatness": flatness,
    }
    for axis, letter in enumerate("zyx"):
        table[f"centroid_{letter}_vox"] = centroid_vox[:, axis]
    for axis, letter in enumerate("zyx"):
        table[f"centroid_{letter}_nm"] = centroid_vox[:, axis] * spacing_nm[axis]
    for axis, letter in enumerate("zyx"):
        table[f"bbox_{letter}0"] = bbox_min[:, axis]
    for axis, letter in enumerate("zyx"):
        table[f"bbox_{letter}1"] = bbox_max[:, axis]
    eig = _inertia_eigenvalues(cov_vox) if len(rows) else np.zeros((0, 3))
    for k in range(3):
        table[f"inertia_eig_{k}"] = eig[:, k]
    if image is not None:
        mean = stats["intensity_sum"][rows] / n
        var = np.clip(stats["intensity_sum_sq"][rows] / n - mean**2, 0, None)
        table.update(intensity_mean=mean, intensity_std=np.sqrt(var),
                     intensity_min=stats["intensity_min"][rows], intensity_max=stats["intensity_max"][rows])
    else:
        for key in ("intensity_mean", "intensity_std", "intensity_min", "intensity_max"):
            table[key] = np.full(len(rows), np.nan)
    table["touches_border"] = ((bbox_min == 0) | (bbox_max == shape)).any(axis=1)
    if classes is not None:
        table["class_id"] = merged["acc_i"][rows, 10]
    df = pd.DataFrame(table, columns=list(COLUMNS))
    units = dict(COLUMNS)
    if classes is not None:
        voxel = np.clip(np.rint(centroid_vox).astype(np.int64), 0, shape - 1)
        if len(rows) and block_by_block(classes):
            class_at_centroid = np.asarray(classes.data.vindex[tuple(voxel.T)].compute())
        else:
            class_at_centroid = _array(classes)[tuple(voxel.T)]
        _distances(df, class_at_centroid, merged["nucleus_points"], merged["cell_points"], spacing_nm)
        units.update(DISTANCE_COLUMNS)
    image_unit = (image.metadata.get("intensity_unit") if image is not None else None) or "image unit"
    for key in ("intensity_mean", "intensity_std", "intensity_min", "intensity_max"):
        units[key] = image_unit
    df.attrs["units"] = units
    df.attrs["voxel_size_nm"] = list(spacing_nm)
    return df


def _plane_counts(block: np.ndarray) -> np.ndarray:
    """Voxels of each value 0..max of a block of non-negative integers (at least 256 entries), plane by plane."""
    block = np.asarray(block)
    if block.dtype.kind == "i" and block.size and block.min() < 0:
        raise InvalidDataError("class codes are not negative")
    counts = np.zeros(256, np.int64)
    for plane in block.reshape(-1, *block.shape[-2:]) if block.ndim > 2 else [block]:
        found = np.bincount(plane.ravel(), minlength=256)  # bincount copies its input as int64: a plane at a time
        if len(found) > len(counts):
            counts = np.concatenate([counts, np.zeros(len(found) - len(counts), np.int64)])
        counts[: len(found)] += found
    return counts


def block_voxel_counts(data) -> np.ndarray:
    """Voxels of each value in every chunk of a dask array of class codes: ``(chunks, values)``, C order of chunks.

    Each chunk is counted plane by plane (see :func:`class_voxel_counts`);
    rows are padded to the largest value found.  Raises
    :class:`~sxtseg.errors.InvalidDataError` for negative values.
    """
    parts = dask.compute(*[dask.delayed(_plane_counts)(block) for block in data.to_delayed().ravel()])
    width = max(len(p) for p in parts)
    return np.array([np.pad(p, (0, width - len(p))) for p in parts])


def class_voxel_counts(classes: Volume) -> np.ndarray:
    """Voxels of each class code in a class volume.

    Counted chunk by chunk and, within a chunk, plane by plane, so the
    memory needed beyond the volume is a plane's worth (counting a whole
    256x512x512 volume with ``np.bincount`` or dask's ``count_nonzero``
    would first make a 0.5 GB int64 copy of it).

    Parameters
    ----------
    classes : Volume
        Non-negative integer class codes (:class:`sxtseg.SXTClass`, uint8).

    Returns
    -------
    numpy.ndarray
        int64 counts indexed by code: at least 256 entries, more when a
        code is larger.

    Examples
    --------
    >>> import numpy as np
    >>> from sxtseg import Volume
    >>> from sxtseg.morphometrics import class_voxel_counts
    >>> classes = Volume(np.array([[[0, 1], [6, 6]]], np.uint8), voxel_size=30.0)
    >>> class_voxel_counts(classes)[[0, 1, 6]].tolist()
    [1, 1, 2]
    """
    if classes.dtype.kind not in "biu":
        raise InvalidDataError(f"{classes._name()}: class codes must be non-negative integers, got {classes.dtype}")
    try:
        if classes.in_memory:
            return _plane_counts(classes.to_numpy())
        return block_voxel_counts(classes.data).sum(axis=0)
    except InvalidDataError as exc:
        raise InvalidDataError(f"{classes._name()}: class codes must be non-negative integers ({exc})") from None


def summarize(table: pd.DataFrame, classes: Volume) -> dict:
    """Per-cell summary of a :func:`measure` table: counts and volumes per class, DMV load.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`measure` called with ``classes`` (one cell).
    classes : Volume
        The class volume the table was measured with (gives the cytoplasm
        volume).

    Returns
    -------
    dict
        ``classes``: for every class present, ``count``, ``total_volume_um3``
        and ``mean_volume_um3``; ``cytoplasm_volume_um3`` (the cell minus
        nucleus and nucleolus); ``dmv_volume_fraction_of_cytoplasm`` (total
        DMV volume over that); ``dmv_median_distance_to_nucleus_nm``.  Plain
        numbers, ready for JSON.
    """
    from .classes import CLASS_NAMES, SXTClass

    if "class_id" not in table or "distance_to_nucleus_nm" not in table:
        raise InvalidDataError("summarize needs a table measured with classes= (class and distance columns)")
    voxel_um3 = float(np.prod(classes.voxel_size_in("um")))
    counts = class_voxel_counts(classes)  # block by block: the class volume may be larger than memory
    in_cell = int(counts.sum() - counts[SXTClass.BACKGROUND])
    nuclear = int(counts[SXTClass.NUCLEUS] + counts[SXTClass.NUCLEOLUS])
    cytoplasm_um3 = (in_cell - nuclear) * voxel_um3
    per_class = {}
    for class_id, group in table.groupby("class_id"):
        name = CLASS_NAMES.get(int(class_id), str(class_id))
        per_class[name] = {
            "count": int(len(group)),
            "total_volume_um3": float(group["volume_um3"].sum()),
            "mean_volume_um3": float(group["volume_um3"].mean()),
        }
    dmv = table[table["class_id"] == SXTClass.DMV]
    return {
        "classes": per_class,
        "cytoplasm_volume_um3": cytoplasm_um3,
        "dmv_count": int(len(dmv)),
        "dmv_volume_fraction_of_cytoplasm": float(dmv["volume_um3"].sum() / cytoplasm_um3) if cytoplasm_um3 else float("nan"),
        "dmv_median_distance_to_nucleus_nm": float(dmv["distance_to_nucleus_nm"].median()) if len(dmv) else float("nan"),
    }
