"""Zarr v2/v3 arrays and OME-Zarr images (NGFF 0.4 and 0.5).

An OME-Zarr group opens at pyramid level 0 unless ``level=`` says otherwise;
the voxel size comes from the level's ``coordinateTransformations`` and the
axes' units.  A plain Zarr array has a voxel size only if its attributes
carry one (``voxel_size`` with ``unit``, or ``element_size_um``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AmbiguousDatasetError, CorruptFileError, UnsupportedFormatError
from ._ngff import detect_format, scale_from_multiscale, spatial_voxel_size
from ._opened import Opened
from ._source import HandleSource, to_dask

SUFFIXES = (".zarr", ".ome.zarr", ".zarr.zip")


def is_zarr(path: Path) -> bool:
    """True for a folder that is a Zarr v2 or v3 array or group."""
    return path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zarray", ".zgroup"))


def _open_array(path: str):
    import zarr

    return None, zarr.open_array(path, mode="r")


def attrs_voxel_size(attrs: dict, ndim: int) -> tuple[tuple[float, ...] | None, str]:
    """Voxel size recorded in plain array attributes (HDF5, plain Zarr), if any."""
    from ..units import convert_length, normalize_unit

    if "element_size_um" in attrs:  # ilastik / Fiji HDF5 convention
        values = [float(v) for v in attrs["element_size_um"]]
        if len(values) == ndim:
            return tuple(convert_length(v, "um", "nm") for v in values), "nm"
    if "voxel_size" in attrs and ("unit" in attrs or "voxel_size_unit" in attrs):
        values = [float(v) for v in attrs["voxel_size"]]
        unit = attrs.get("unit", attrs.get("voxel_size_unit"))
        if len(values) == ndim:
            return tuple(values), normalize_unit(str(unit))
    for key in ("voxel_size_nm", "pixel_size_nm"):
        if key in attrs:
            values = [float(v) for v in attrs[key]]
            if len(values) == ndim:
                return tuple(values), "nm"
    return None, "nm"


def _plain_array(path: Path, array, chunks, extra: dict[str, Any]) -> Opened:
    source = HandleSource(path, array.shape, array.dtype, opener=partial(_open_array, str(path)))
    source.reader = "zarr"
    native = getattr(array, "shards", None) or array.chunks
    data = to_dask(source, chunks, native_chunks=native)
    attrs = dict(array.attrs)
    voxel_size, unit = attrs_voxel_size(attrs, array.ndim)
    axes = {2: "yx", 3: "zyx"}.get(array.ndim, "?" * array.ndim)
    metadata = {"zarr": {"zarr_format": array.metadata.zarr_format, "chunks": list(array.chunks), **extra}}
    if voxel_size is None:
        metadata["voxel_size_missing"] = "the Zarr array's attributes record no voxel size"
    return Opened(data=data, axes=axes, voxel_size=voxel_size, unit=unit, metadata=metadata)


def _ome_image(path: Path, group, fmt, chunks, level: int) -> Opened:
    import zarr

    ome = fmt.ome(dict(group.attrs))
    multiscales = ome.get("multiscales")
    if not multiscales:
        if "labels" in ome:
            raise AmbiguousDatasetError(
                f"{path}: is an OME-Zarr labels group; open one of its label images: "
                + ", ".join(str(path / name) for name in ome["labels"])
            )
        raise UnsupportedFormatError(f"{path}: OME-Zarr group without multiscales metadata")
    info = scale_from_multiscale(multiscales[0], level, str(path))
    array_path = path / info["path"]
    try:
        array = zarr.open_array(str(array_path), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: pyramid level {info['path']!r} cannot be opened ({exc})") from exc
    if array.ndim != len(info["axes"]):
        raise CorruptFileError(
            f"{path}: level {info['path']!r} has {array.ndim} dimensions but the metadata names axes {info['axes']!r}"
        )
    source = HandleSource(array_path, array.shape, array.dtype, opener=partial(_open_array, str(array_path)))
    source.reader = "ome-zarr"
    native = getattr(array, "shards", None) or array.chunks
    data = to_dask(source, chunks, native_chunks=native)
    voxel_size, unit, missing = spatial_voxel_size(info["axes"], info["units"], info["scale"], str(path))
    full = None
    if voxel_size is not None:
        it = iter(voxel_size)
        full = tuple(next(it) if a in "zyx" else 1.0 for a in info["axes"])
    metadata: dict[str, Any] = {
        "ome": {
            "ngff_version": fmt.version,
            "level": info["path"],
            "levels": info["levels"],
            "name": multiscales[0].get("name"),
            "translation": info["translation"],
        },
        "voxel_size_missing": missing,
    }
    if info["translation"] is not None and voxel_size is not None and len(info["translation"]) == len(info["axes"]):
        # a whole number of voxels of this level: the crop's origin (level 0 of a file sxtseg wrote)
        spatial = [t for t, a in zip(info["translation"], info["axes"]) if a in "zyx"]
        in_voxels = np.asarray(spatial, float) / np.asarray(voxel_size, float)
        if np.allclose(in_voxels, np.round(in_voxels), atol=1e-6):
            metadata["origin_voxel"] = tuple(int(v) for v in np.round(in_voxels))
    if "image-label" in ome:
        metadata["ome"]["image-label"] = ome["image-label"]
    saved = dict(group.attrs).get("sxtseg")
    if isinstance(saved, dict) and isinstance(saved.get("metadata"), dict):
        metadata["saved"] = saved["metadata"]
    return Opened(data=data, axes=info["axes"], voxel_size=full, unit=unit, metadata=metadata)


def _arrays_in(group) -> list[str]:
    return sorted(name for name, _ in group.arrays())


def read_zarr(path: Path, chunks="auto", level: int = 0, dataset: str | None = None) -> Opened:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: not a readable Zarr store ({exc})") from exc
    if dataset is not None:
        if not isinstance(node, zarr.Group):
            raise AmbiguousDatasetError(f"{path}: is a single array; dataset={dataset!r} does not apply")
        if dataset not in node:
            raise AmbiguousDatasetError(
                f"{path}: has no member {dataset!r}; it holds: {', '.join(sorted(node.keys())) or 'nothing'}"
            )
        return read_zarr(path / dataset, chunks=chunks, level=level)
    if isinstance(node, zarr.Array):
        return _plain_array(path, node, chunks, {})
    fmt = detect_format(dict(node.attrs))
    if fmt is not None:
        return _ome_image(path, node, fmt, chunks, level)
    arrays = _arrays_in(node)
    if len(arrays) == 1:
        return _plain_array(path / arrays[0], node[arrays[0]], chunks, {"group": str(path), "array": arrays[0]})
    members = sorted(node.keys())
    raise AmbiguousDatasetError(
        f"{path}: Zarr group without OME metadata holding {len(arrays)} arrays; choose one with dataset=: "
        + (", ".join(members) if members else "(empty group)")
    )
