"""napari reader: tomograms, OME-Zarr with labels, and `sxtseg run` results folders as layer data.

Everything here returns napari *layer data tuples* ``(data, kwargs, layer_type)``
and imports neither napari nor Qt, so it is tested without a GUI.  Layers
are lazy (dask), carry the physical scale and unit (nm) of the voxel size,
take their contrast limits from robust percentiles of the whole volume (not
of one plane, which in SXT is mostly ice), and are named from the file's
metadata.  Label layers are visible, translucent, and coloured and named by
class (:data:`sxtseg.CLASS_COLORS`).

Examples
--------
>>> import tempfile, os
>>> from sxtseg import make_infected_cell, save_volume
>>> from sxtseg.napari import read_layers
>>> image, classes, _, _ = make_infected_cell((32, 64, 64), seed=1)
>>> path = save_volume(image, os.path.join(tempfile.mkdtemp(), "cell.ome.zarr"), labels={"classes": classes})
>>> [(kwargs["name"], kind) for _, kwargs, kind in read_layers(path)]
[('cell', 'image'), ('classes', 'labels')]
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sxtseg.io._write import _jsonable  # metadata as plain JSON types (napari copies layer metadata)

__all__ = ["get_reader", "read_layers", "image_layer", "labels_layer", "DISPLAY_PERCENTILES"]

#: Percentiles of the grey values that set an image layer's contrast limits.
DISPLAY_PERCENTILES = (0.5, 99.5)
_SUFFIXES = (".mrc", ".rec", ".map", ".tif", ".tiff", ".h5", ".hdf5", ".zarr")


def get_reader(path) -> Callable | None:
    """npe2 reader hook: :func:`read_layers` if sxtseg can open ``path``, else None (another plugin may).

    A list of paths is declined (napari asks again path by path).
    """
    if isinstance(path, (list, tuple)):
        return None
    path = Path(path)
    if _results_folder(path) is not None:
        return read_layers
    if path.name.lower().endswith(_SUFFIXES) and path.exists():
        return read_layers
    return None


def _results_folder(path: Path) -> Path | None:
    """The `sxtseg run` results folder ``path`` is (or whose summary.json it is), or None."""
    folder = path.parent if path.name == "summary.json" else path
    if (folder / "summary.json").is_file() and (folder / "volume.ome.zarr").is_dir():
        return folder
    return None


def read_layers(path) -> list[tuple]:
    """Layer data tuples for a file, an OME-Zarr store (image and every label group) or a results folder.

    Raises
    ------
    SxtsegError
        The file cannot be read (the message names it).
    """
    path = Path(path)
    folder = _results_folder(path)
    if folder is not None:
        return _results_layers(folder)
    return _store_layers(path)


def _volume_levels(path: Path):
    """(level-0 Volume, list of the pyramid's dask arrays) of a file or OME-Zarr image."""
    from sxtseg import open_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing voxel size is shown as scale 1 (said in the metadata)
        volume = open_volume(path, ndim=None)
    levels = [volume.data]
    n_levels = (volume.metadata.get("ome") or {}).get("levels", 1)
    for level in range(1, n_levels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            levels.append(open_volume(path, ndim=None, level=level).data)
    return volume, levels


def _store_layers(path: Path) -> list[tuple]:
    volume, levels = _volume_levels(path)
    layers = [image_layer(volume, levels)]
    labels_group = path / "labels"
    if path.is_dir() and labels_group.is_dir():
        for name in _label_names(labels_group):
            label_volume, label_levels = _volume_levels(labels_group / name)
            layers.append(labels_layer(label_volume, label_levels, name=name))
    return layers


def _label_names(labels_group: Path) -> list[str]:
    """The label images an OME-Zarr ``labels`` group lists (NGFF 0.4 or 0.5 attributes)."""
    import zarr

    attrs = dict(zarr.open_group(str(labels_group), mode="r").attrs)
    return list((attrs.get("ome") or attrs).get("labels", []))


def _physical(volume) -> dict[str, Any]:
    """scale, translate, units and axis labels of a Volume for napari (scale 1 and no unit if unknown)."""
    ndim = volume.ndim
    if volume.voxel_size is None:
        return {"scale": (1.0,) * ndim, "axis_labels": tuple(volume.axes)}
    scale = tuple(float(v) for v in volume.voxel_size_in("nm"))
    origin = volume.metadata.get("origin_voxel") or (0,) * ndim
    return {"scale": scale, "translate": tuple(float(o) * s for o, s in zip(origin, scale)),
            "units": ("nm",) * ndim, "axis_labels": tuple(volume.axes)}


def _layer_name(volume, fallback: str) -> str:
    ome = volume.metadata.get("ome") or {}
    if ome.get("name"):
        return str(ome["name"])
    source = (volume.metadata.get("source") or {}).get("path")
    if source:
        name = Path(source).name
        for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif", ".mrc", ".rec", ".map",
                       ".hdf5", ".h5"):
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
        return name
    return fallback


def contrast_limits(levels) -> tuple[float, float]:
    """Robust (:data:`DISPLAY_PERCENTILES`) limits of the whole volume, from its smallest level.

    The smallest pyramid level (or a strided sample of about 4 M voxels of a
    volume without a pyramid) stands for the whole volume, so the limits
    cost little to compute and are not those of one plane.
    """
    from sxtseg.fingerprint import strided_sample

    sample = strided_sample(levels[-1]).astype(np.float64)
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return 0.0, 1.0
    low, high = np.percentile(sample, DISPLAY_PERCENTILES)
    return float(low), float(high if high > low else low + 1.0)


def image_layer(volume, levels=None, *, name: str | None = None) -> tuple:
    """An image layer data tuple for a Volume (and, optionally, the dask arrays of its pyramid levels)."""
    levels = levels or [_array(volume)]
    kwargs = {"name": name or _layer_name(volume, "image"), "contrast_limits": contrast_limits(levels),
              "colormap": "gray", "multiscale": len(levels) > 1, **_physical(volume),
              "metadata": {"sxtseg": _jsonable(volume.metadata)}}
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")


def labels_layer(volume, levels=None, *, name: str | None = None, features=None) -> tuple:
    """A labels layer data tuple: visible, translucent, class colours and names from the metadata.

    Class volumes (with ``label_colors`` / ``label_names`` in their metadata,
    or from an OME-Zarr ``image-label`` block) get a direct colormap and a
    features table (``index`` = class code, ``class_name``); ``features``
    (an object table with a ``label`` column) replaces it, e.g. for
    instance labels.
    """
    import pandas as pd

    levels = levels or [_array(volume)]
    colors, names = _class_colors_and_names(volume.metadata)
    kwargs = {"name": name or _layer_name(volume, "labels"), "visible": True, "opacity": 0.8,
              "multiscale": len(levels) > 1, **_physical(volume), "metadata": {"sxtseg": _jsonable(volume.metadata)}}
    if colors:
        colormap = {int(k): tuple(c / 255.0 for c in rgba) for k, rgba in colors.items()}
        colormap[None] = (0.0, 0.0, 0.0, 0.0)  # values without a class colour: transparent
        kwargs["colormap"] = colormap
    if features is not None:
        table = features.copy()
        table.insert(0, "index", table["label"].astype(np.int64))
        kwargs["features"] = table.reset_index(drop=True)
    elif names:
        kwargs["features"] = pd.DataFrame({"index": [int(k) for k in names], "class_name": list(names.values())})
    return (levels if len(levels) > 1 else levels[0], kwargs, "labels")


def _array(volume):
    """The voxels for a layer: the NumPy array of a volume in memory (paintable), else the lazy dask array."""
    return volume.to_numpy() if volume.in_memory else volume.data


def _class_colors_and_names(metadata: dict) -> tuple[dict, dict]:
    colors = metadata.get("label_colors") or {}
    names = metadata.get("label_names") or {}
    image_label = (metadata.get("ome") or {}).get("image-label") or {}
    if not colors and image_label.get("colors"):
        colors = {str(c["label-value"]): c["rgba"] for c in image_label["colors"]}
    if not names and image_label.get("properties"):
        names = {str(p["label-value"]): p.get("name") for p in image_label["properties"] if "name" in p}
    return colors, names


def _results_layers(folder: Path) -> list[tuple]:
    """image + classes + instances of an `sxtseg run` results folder; the object table as the instances' features."""
    import pandas as pd

    summary = json.loads((folder / "summary.json").read_text())
    store = folder / "volume.ome.zarr"
    volume, levels = _volume_levels(store)
    layers = [image_layer(volume, levels, name=summary.get("sample") or folder.name)]
    classes, class_levels = _volume_levels(store / "labels" / "classes")
    layers.append(labels_layer(classes, class_levels, name="classes"))
    instances, instance_levels = _volume_levels(store / "labels" / "instances")
    table = pd.read_csv(folder / "objects.csv") if (folder / "objects.csv").exists() else None
    layer = labels_layer(instances, instance_levels, name="instances", features=table)
    layer[1].pop("colormap", None)  # instances: napari's random colours tell neighbours apart
    layer[1]["opacity"] = 0.5
    layers.append(layer)
    return layers
