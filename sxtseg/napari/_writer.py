"""napari writer: an image layer and its labels layers to one OME-Zarr store, through sxtseg.save_volume.

The voxel size comes from the layers' ``scale`` and ``units`` (nm when a
layer has none); labels go under ``labels/<layer name>`` with the class
names and colours sxtseg writes for class volumes.  A pyramid layer is
written from its full-resolution level.  Imports neither napari nor Qt.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from sxtseg.napari import write_ome_zarr
>>> image = (np.zeros((4, 8, 8), np.float32), {"name": "cell", "scale": (30.0, 30.0, 30.0)}, "image")
>>> labels = (np.ones((4, 8, 8), np.uint8), {"name": "classes", "scale": (30.0, 30.0, 30.0)}, "labels")
>>> [os.path.basename(p) for p in write_ome_zarr(os.path.join(tempfile.mkdtemp(), "out.ome.zarr"), [image, labels])]
['out.ome.zarr']
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_ome_zarr", "layer_volume"]


def layer_volume(data, meta: dict):
    """A sxtseg Volume from one layer's data (level 0 of a pyramid) and its metadata (scale, units, translate)."""
    from sxtseg import Volume
    from sxtseg.units import normalize_unit

    if isinstance(data, (list, tuple)):  # multiscale: the full-resolution level
        data = data[0]
    ndim = len(data.shape)
    scale = tuple(float(s) for s in (meta.get("scale") or (1.0,) * ndim))
    units = meta.get("units")
    unit = "nm"
    if units:
        first = str(units[0]) if isinstance(units, (list, tuple)) else str(units)
        try:
            unit = normalize_unit(first)
        except Exception:  # noqa: BLE001 - napari's "pixel" or a unit sxtseg does not store: keep nm
            unit = "nm"
    metadata = dict((meta.get("metadata") or {}).get("sxtseg") or {})
    translate = meta.get("translate")
    if translate is not None and any(translate):
        metadata["origin_voxel"] = tuple(int(round(t / s)) for t, s in zip(translate, scale))
    return Volume(data, voxel_size=scale, unit=unit, axes="zyx" if ndim == 3 else "yx", metadata=metadata)


def write_ome_zarr(path: str, layer_data: list[tuple]) -> list[str]:
    """npe2 writer hook: one image layer and any labels layers to ``path`` (an OME-Zarr store).

    Returns the list of written paths, as npe2 expects.  An existing store
    is replaced (napari's save dialog asks before overwriting).

    Raises
    ------
    InvalidArgumentError
        Not exactly one image layer among the layers.
    """
    from sxtseg import save_volume
    from sxtseg.errors import InvalidArgumentError

    images = [(d, m) for d, m, kind in layer_data if kind == "image"]
    if len(images) != 1:
        raise InvalidArgumentError(f"{path}: an OME-Zarr store holds one image with its labels; "
                                   f"{len(images)} image layers were selected")
    image = layer_volume(*images[0])
    labels = {}
    for data, meta, kind in layer_data:
        if kind == "labels":
            volume = layer_volume(data, meta)
            labels[str(meta.get("name") or f"labels{len(labels)}")] = volume.with_data(
                volume.data, voxel_size=image.voxel_size, unit=image.unit)
    name = images[0][1].get("name")
    save_volume(image, Path(path), labels=labels or None, overwrite=True, name=name)
    return [str(path)]
