"""What the napari widgets compute, without the widgets: segment an image layer, measure a labels layer.

Each function takes layer data and the layer's metadata (as napari's
``layer.as_layer_data_tuple()`` gives them, or a dict with ``scale``,
``units``, ``translate`` and ``metadata``) and returns a layer data tuple or
a table, so it runs and is tested without napari or Qt; the widgets in
:mod:`sxtseg.napari._widgets` only collect the arguments, run these in a
worker thread and add the results to the viewer.
"""

from __future__ import annotations

__all__ = ["Cancelled", "segment_layer", "measure_layer"]


class Cancelled(Exception):
    """Raised from a progress callback to stop a long computation (a widget's Cancel button)."""


def segment_layer(data, meta: dict, *, model="default", calibration="auto", device="auto",
                  block_shape=(128, 512, 512), on_block=None, name: str | None = None) -> tuple:
    """Segment an image layer's data (level 0 of a pyramid; dask stays lazy) into a class labels layer.

    Parameters
    ----------
    data : array, dask array, or list of them (a pyramid)
        The image layer's data.
    meta : dict
        The layer's ``scale`` and ``units`` (the voxel size, nm when no unit),
        ``translate`` and ``metadata``.
    model, calibration, device, block_shape
        As :func:`sxtseg.segment` takes them.
    on_block : callable, optional
        ``on_block(done, total)`` after each block; raise :class:`Cancelled`
        from it to stop.
    name : str, optional
        Name of the labels layer (default: ``"<image name> classes"``).

    Returns
    -------
    tuple
        A labels layer data tuple: uint8 class codes with class colours and
        names, the image's scale and translation.
    """
    from sxtseg import segment

    from ._reader import labels_layer
    from ._writer import layer_volume

    volume = layer_volume(data, meta)
    classes = segment(volume, model, calibration=calibration, device=device, block_shape=block_shape,
                      progress=False, on_block=on_block)
    codes = {int(code): str(label) for label, code in classes.metadata["segmentation"]["classes"].items()}
    from sxtseg.classes import CLASS_COLORS

    classes.metadata.update(label_names={str(k): v for k, v in codes.items()},
                            label_colors={str(k): list(CLASS_COLORS.get(k, (128, 128, 128, 200))) for k in codes})
    classes.metadata["origin_voxel"] = volume.metadata.get("origin_voxel", (0,) * volume.ndim)
    return labels_layer(classes, name=name or f"{meta.get('name') or 'image'} classes")


def measure_layer(labels, labels_meta: dict, image=None, image_meta: dict | None = None, classes=None):
    """:func:`sxtseg.measure` of a labels layer (and an image layer for intensities) as a napari features table.

    Returns
    -------
    pandas.DataFrame
        One row per object, the columns of :func:`sxtseg.measure`, plus
        ``index`` (= the label value, as napari's ``features`` expect).
    """
    import numpy as np

    from sxtseg import measure

    from ._writer import layer_volume

    label_volume = layer_volume(labels, labels_meta)
    label_volume = label_volume.with_data(label_volume.data.astype(np.uint32)
                                          if label_volume.dtype.kind == "i" else label_volume.data)
    image_volume = None if image is None else layer_volume(image, image_meta or labels_meta)
    class_volume = None if classes is None else layer_volume(classes, labels_meta)
    table = measure(label_volume.compute(), None if image_volume is None else image_volume.compute(),
                    None if class_volume is None else class_volume.compute())
    table.insert(0, "index", table["label"].astype(np.int64))
    return table.reset_index(drop=True)
