"""From class labels to instance labels: connected components, and touching round organelles split.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> from sxtseg.instances import label_classes
>>> classes = np.zeros((1, 3, 6), np.uint8)
>>> classes[0, :, 0:2] = 6; classes[0, :, 2:4] = 5; classes[0, :, 5] = 6
>>> instances = label_classes(Volume(classes, voxel_size=30.0))
>>> instances.to_numpy()[0, 0].tolist()
[1, 1, 2, 2, 0, 3]
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import InvalidArgumentError, InvalidDataError, ShapeError
from .volume import Volume

__all__ = ["label_classes", "split_touching"]


def _class_array(class_labels: Volume) -> np.ndarray:
    if not isinstance(class_labels, Volume):
        raise TypeError("class_labels must be a sxtseg.Volume")
    if class_labels.dtype.kind not in "biu":
        raise InvalidDataError(f"{class_labels._name()}: class labels must be integers, got {class_labels.dtype}")
    if class_labels.ndim != 3:
        raise ShapeError(f"{class_labels._name()}: a 3-D class volume is needed, got shape {class_labels.shape}")
    return class_labels.to_numpy()


def label_classes(class_labels: Volume, connectivity: int = 26) -> Volume:
    """Instance labels: one label per connected piece of each nonzero class.

    Parameters
    ----------
    class_labels : Volume
        Class codes (:class:`sxtseg.SXTClass`), 0 background.
    connectivity : {6, 18, 26}
        Neighbourhood of the connected components.

    Returns
    -------
    Volume
        uint32 instance labels, with the class volume's voxel size;
        ``metadata["instances"]`` records the count.  An in-memory volume
        (one chunk) is numbered in raster order.  A volume of several dask
        chunks is labelled block by block on the active dask scheduler and
        returned lazily, numbered by block (same partition), so volumes larger
        than memory work; see :mod:`sxtseg._chunked_label`.
    """
    from sxtseg.kernels import label

    if class_labels.data.npartitions > 1:
        from ._chunked_label import label_dask

        if class_labels.dtype.kind not in "biu":
            raise InvalidDataError(f"{class_labels._name()}: class labels must be integers, got {class_labels.dtype}")
        if class_labels.ndim != 3:
            raise ShapeError(f"{class_labels._name()}: a 3-D class volume is needed, got shape {class_labels.shape}")
        labels, count = label_dask(class_labels.data, connectivity)
    else:
        labels, count = label(_class_array(class_labels), connectivity)
    return class_labels.with_data(labels, metadata={
        **class_labels.metadata, "instances": {"count": count, "connectivity": connectivity}})


def split_touching(
    class_labels: Volume,
    class_id: int,
    *,
    min_distance_nm: float = 100.0,
    connectivity: int = 26,
) -> Volume:
    """Separate touching round organelles (DMVs) of one class with a seeded watershed.

    The Euclidean distance to the background of the class mask (with the
    voxel size as sampling, so anisotropic voxels are handled) peaks at the
    centre of every round object; peaks at least ``min_distance_nm`` apart
    seed a watershed of the negated distance, restricted to the mask, so that
    two touching vesicles meeting at a neck become two labels.

    Parameters
    ----------
    class_labels : Volume
        Class codes; needs a voxel size.
    class_id : int
        The class to split (``SXTClass.DMV`` for double-membrane vesicles).
    min_distance_nm : float
        Smallest distance between two object centres, in nm: about the
        radius of the smallest object (DMVs: 200-400 nm across, so 100 nm).
    connectivity : {6, 18, 26}
        Connectivity of the objects that are never split further apart
        (a component with one peak stays one object).

    Returns
    -------
    Volume
        uint32 instance labels of that class only (0 elsewhere), numbered
        1..N in raster order of the objects' first voxels.

    Raises
    ------
    VoxelSizeError
        The voxel size is unknown.
    InvalidArgumentError
        ``min_distance_nm`` is not positive.
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    from sxtseg.kernels import label

    classes = _class_array(class_labels)
    spacing = np.array(class_labels.voxel_size_in("nm"))
    if not min_distance_nm > 0:
        raise InvalidArgumentError(f"min_distance_nm must be positive, not {min_distance_nm!r}")
    mask = classes == class_id
    components, count = label(mask, connectivity)
    out = np.zeros(mask.shape, np.uint32)
    if count:
        distance = ndimage.distance_transform_edt(mask, sampling=spacing)
        radius = np.maximum(np.round(min_distance_nm / spacing).astype(int), 1)
        zz, yy, xx = np.ogrid[-radius[0] : radius[0] + 1, -radius[1] : radius[1] + 1, -radius[2] : radius[2] + 1]
        footprint = (zz * spacing[0]) ** 2 + (yy * spacing[1]) ** 2 + (xx * spacing[2]) ** 2 <= min_distance_nm**2
        peaks = peak_local_max(distance, footprint=footprint, labels=components, exclude_border=False)
        # a ball's distance map often ties at several neighbouring maxima: grow the peaks by half
        # the minimum distance and take each connected group (within one component) as one seed
        half = np.maximum(radius // 2, 1)
        zz, yy, xx = np.ogrid[-half[0] : half[0] + 1, -half[1] : half[1] + 1, -half[2] : half[2] + 1]
        ball = (zz * spacing[0]) ** 2 + (yy * spacing[1]) ** 2 + (xx * spacing[2]) ** 2 <= (min_distance_nm / 2) ** 2
        peak_mask = np.zeros(mask.shape, bool)
        peak_mask[tuple(peaks.T)] = True
        grown = ndimage.binary_dilation(peak_mask, structure=ball) & mask
        markers, n_markers = label(np.where(grown, components, 0).astype(np.uint32), connectivity)
        markers = markers.astype(np.int64)
        # every component gets at least one seed, even one without a strict peak
        seeded = np.zeros(count + 1, bool)
        seeded[components[grown]] = True
        unseeded = np.nonzero(~seeded[1:])[0] + 1
        if len(unseeded):
            flat = components.ravel()
            nonzero = np.flatnonzero(flat)
            comps, first = np.unique(flat[nonzero], return_index=True)
            first_voxel = dict(zip(comps.tolist(), nonzero[first].tolist()))
            for offset, comp in enumerate(unseeded, start=n_markers + 1):
                markers.flat[first_voxel[int(comp)]] = offset
        split = watershed(-distance, markers, mask=mask)
        out, _ = label(split.astype(np.uint32), connectivity)  # renumber in raster order; pieces stay separate
    return class_labels.with_data(out, metadata={
        **class_labels.metadata,
        "instances": {"class_id": int(class_id), "split": "distance-transform watershed",
                      "min_distance_nm": float(min_distance_nm), "count": int(out.max())}})
