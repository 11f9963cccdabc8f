"""What the napari widgets compute, without the widgets: segment an image layer, measure a labels layer.

Each function takes layer data and the layer's metadata (as napari's
``layer.as_layer_data_tuple()`` gives them, or a dict with ``scale``,
``units``, ``translate`` and ``metadata``) and returns a layer data tuple or
a table, so it runs and is tested without napari or Qt; the widgets in
:mod:`sxtseg.napari._widgets` only collect the arguments, run these in a
worker thread and add the results to the viewer.
"""

from __future__ import annotations

__all__ = ["Cancelled", "segment_layer", "measure_layer", "corrections_layer", "painted_to_labels",
           "finetune_from_painting"]


class Cancelled(Exception):
    """Raised from a progress callback to stop a long computation (a widget's Cancel button)."""


def segment_layer(data, meta: dict, *, model="default", calibration="auto", device="auto",
                  block_shape=(128, 512, 512), mirror: bool = True, on_block=None, name: str | None = None) -> tuple:
    """Segment an image layer's data (level 0 of a pyramid; dask stays lazy) into a class labels layer.

    Parameters
    ----------
    data : array, dask array, or list of them (a pyramid)
        The image layer's data.
    meta : dict
        The layer's ``scale`` and ``units`` (the voxel size, nm when no unit),
        ``translate`` and ``metadata``.
    model, calibration, device, block_shape, mirror
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
        names, the image's scale and translation; its metadata's ``sxtseg``
        entry holds the segmentation's records and ``quality``, the flags of
        :func:`sxtseg.quality.quality_flags` (a thin cell, coarse voxels, a
        missing wedge, an untrusted calibration...).
    """
    from sxtseg import segment
    from sxtseg.quality import quality_flags

    from ._reader import labels_layer
    from ._writer import layer_volume

    volume = layer_volume(data, meta)
    classes = segment(volume, model, calibration=calibration, device=device, block_shape=block_shape,
                      mirror=mirror, progress=False, on_block=on_block)
    from sxtseg.classes import label_metadata

    names = {int(code): str(name) for name, code in classes.metadata["segmentation"]["classes"].items()}
    classes.metadata.update(label_metadata(names), label_names={str(c): n for c, n in names.items()})  # model's names
    classes.metadata["origin_voxel"] = volume.metadata.get("origin_voxel", (0,) * volume.ndim)
    source = volume.metadata.get("source")
    classes.metadata["quality"] = quality_flags(classes, name=None if source else f"layer '{meta.get('name')}'",
                                                image=volume)
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


def corrections_layer(shape, meta: dict, classes: dict | None = None, name: str = "corrections") -> tuple:
    """An empty labels layer to paint corrections on: value ``code + 1`` paints class ``code``, 0 is unpainted.

    0 means "not painted" in napari and ilastik, so background (class 0)
    is painted with value 1, cytoplasm with 2, and so on.  The colormap
    shows each value in its class colour (opaque, to see what was painted)
    and the features name it.
    """
    import numpy as np
    import pandas as pd

    from sxtseg.classes import CLASS_COLORS, CLASS_NAMES

    classes = classes or CLASS_NAMES
    colormap = {int(code) + 1: tuple(c / 255.0 for c in (*CLASS_COLORS.get(int(code), (128, 128, 128, 255))[:3], 255))
                for code in classes}
    colormap[int(list(classes)[0]) + 1] = (1.0, 1.0, 1.0, 1.0)  # background painted: white, not invisible
    colormap[0] = (0.0, 0.0, 0.0, 0.0)
    colormap[None] = (0.5, 0.5, 0.5, 1.0)
    features = pd.DataFrame({"index": [int(c) + 1 for c in classes], "class_name": list(classes.values())})
    kwargs = {"name": name, "scale": meta.get("scale"), "translate": meta.get("translate"), "colormap": colormap,
              "features": features, "opacity": 0.9}
    if meta.get("units"):
        kwargs["units"] = meta["units"]
    return (np.zeros(shape, np.uint8), {k: v for k, v in kwargs.items() if v is not None}, "labels")


def painted_to_labels(painted, ignore_label: int = 255):
    """Training labels from painted corrections: value v > 0 becomes class v - 1, unpainted 0 becomes ``ignore_label``.

    >>> import numpy as np
    >>> painted_to_labels(np.array([0, 1, 3, 7])).tolist()
    [255, 0, 2, 6]
    """
    import numpy as np

    painted = np.asarray(painted)
    labels = np.full(painted.shape, ignore_label, np.uint8)
    labels[painted > 0] = (painted[painted > 0] - 1).astype(np.uint8)
    return labels


def finetune_from_painting(image, image_meta: dict, painted, *, model="default", out_dir, epochs: int = 6,
                           steps_per_epoch: int = 40, learning_rate: float = 5e-4, on_epoch=None) -> dict:
    """Fine-tune ``model`` on the painted voxels of an image layer; unpainted voxels are ignored.

    Parameters
    ----------
    image, image_meta
        The image layer's data (level 0) and metadata (scale, units, name).
    painted : array
        The corrections layer: 0 unpainted, ``code + 1`` for class ``code``
        (:func:`corrections_layer`).
    model : str or Path
        The model to start from (its architecture, classes and
        normalisation are kept: ``TrainingConfig(init_checkpoint=model)``).
    out_dir : str or Path
        Where ``best.pt``, ``last.pt`` and ``training_log.csv`` go; the
        checkpoint records the image, the painted slices and the start model.
    on_epoch : callable, optional
        Called with each epoch's row (``loss``...); raise :class:`Cancelled` to stop.

    Returns
    -------
    dict
        :func:`sxtseg.train.fit`'s result, plus ``painted_slices`` (z indices)
        and ``painted_voxels``.

    Raises
    ------
    InvalidArgumentError
        Nothing is painted, or the painting and the image differ in shape.
    """
    import numpy as np

    from sxtseg import Volume
    from sxtseg.errors import InvalidArgumentError
    from sxtseg.train import TrainingConfig, fit

    from ._writer import layer_volume

    volume = layer_volume(image, image_meta).compute()
    painted = np.asarray(painted)
    if painted.shape != volume.shape:
        raise InvalidArgumentError(f"the corrections layer has shape {painted.shape}, the image {volume.shape}")
    labels = painted_to_labels(painted)
    annotated = labels != 255
    if not annotated.any():
        raise InvalidArgumentError("nothing is painted: paint corrections (value = class code + 1) first")
    slices = [int(z) for z in np.nonzero(annotated.any(axis=(1, 2)))[0]]
    config = TrainingConfig(
        init_checkpoint=str(model), epochs=int(epochs), steps_per_epoch=int(steps_per_epoch), batch_size=2,
        learning_rate=float(learning_rate), seed=0,
        description=(f"fine-tuned in napari from {model} on {int(annotated.sum())} painted voxels in z slices "
                     f"{slices} of {image_meta.get('name') or 'an image'}"))
    result = fit([(volume, Volume(labels, voxel_size=volume.voxel_size, unit=volume.unit))], out_dir, config=config,
                 progress=False, on_epoch=on_epoch)
    return {**result, "painted_slices": slices, "painted_voxels": int(annotated.sum())}
