"""TIFF stacks, OME-TIFF, ImageJ hyperstacks and folders of numbered 2D TIFFs.

Voxels are read through tifffile's Zarr interface, page by page, never with
``imread`` of the whole stack.  The voxel size comes from OME metadata
(``PhysicalSizeX/Y/Z`` with units) or ImageJ tags (``XResolution``,
``YResolution``, ``spacing``, ``unit``) where present.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, ShapeError, UnsupportedFormatError, VoxelSizeError
from ..units import convert_length
from ._opened import Opened
from ._source import HandleSource, to_dask

SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")

# tifffile axis codes -> sxtseg axis letters
_AXIS_CODES = {"Z": "z", "I": "z", "Q": "z", "Y": "y", "X": "x", "T": "t", "C": "c", "S": "c"}


def _open_tiff_zarr(path: str, series: int):
    import tifffile
    import zarr

    store = tifffile.imread(path, aszarr=True, series=series, level=0)
    return store, zarr.open(store, mode="r")


def _open_sequence_zarr(files: tuple[str, ...]):
    import tifffile
    import zarr

    store = tifffile.TiffSequence(list(files), pattern=None).aszarr(axestiled=None)
    return store, zarr.open(store, mode="r")


class _TiffErrors(logging.Handler):
    """Collects the errors tifffile logs (it logs, rather than raises, on a broken IFD chain)."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("tifffile").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("tifffile").removeHandler(self)

    def raise_if_any(self, path: Path) -> None:
        if self.messages:
            raise CorruptFileError(f"{path}: damaged or truncated TIFF ({'; '.join(self.messages[:3])})")


def _map_axes(path: Path, codes: str) -> str:
    axes = "".join(_AXIS_CODES.get(c, "?") for c in codes.upper())
    if "?" in axes:
        raise ShapeError(f"{path}: TIFF axes {codes!r} are not understood")
    return axes


def _check_not_truncated(path: Path, tif) -> None:
    size = os.path.getsize(path)
    for index, page in enumerate(tif.pages):
        offsets, counts = page.dataoffsets, page.databytecounts
        if not offsets:
            continue
        end = max(o + c for o, c in zip(offsets, counts))
        if end > size or 0 in counts:
            raise CorruptFileError(
                f"{path}: truncated: page {index} stores data up to byte {end} but the file has {size} bytes"
            )


def _ome_voxel_size(xml: str) -> tuple[tuple[float | None, float | None, float | None], str] | None:
    """(z, y, x) physical sizes in nm from OME-XML Pixels attributes."""
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    sizes = []
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        sizes.append(None if value is None else convert_length(float(value), unit, "nm"))
    return tuple(sizes), "nm"


def _imagej_voxel_size(tif) -> tuple[float | None, float | None, float | None] | None:
    meta = tif.imagej_metadata or {}
    unit = meta.get("unit")
    if not unit or unit in ("pixel", "pixels"):
        return None
    page = tif.pages[0]

    def from_resolution(tag: str) -> float | None:
        if tag not in page.tags:
            return None
        num, den = page.tags[tag].value
        if num == 0:
            return None
        return convert_length(den / num, unit, "nm")  # resolution is pixels per unit

    z = meta.get("spacing")
    return (
        convert_length(float(z), unit, "nm") if z else None,
        from_resolution("YResolution"),
        from_resolution("XResolution"),
    )


def _voxel_size_from_tags(path: Path, tif, axes: str) -> tuple[tuple[float, ...] | None, dict[str, Any]]:
    found: tuple | None = None
    info: dict[str, Any] = {}
    if tif.is_ome and tif.ome_metadata:
        try:
            parsed = _ome_voxel_size(tif.ome_metadata)
        except VoxelSizeError as exc:  # a unit sxtseg does not know: no voxel size, with a warning
            parsed, info["voxel_size_missing"] = None, f"the OME metadata gives the voxel size in an {exc}"
        if parsed:
            found, _ = parsed
            info["voxel_size_from"] = "OME PhysicalSize"
    if found is None and tif.is_imagej:
        try:
            found = _imagej_voxel_size(tif)
        except VoxelSizeError as exc:
            found, info["voxel_size_missing"] = None, f"the ImageJ tags give the voxel size in an {exc}"
        if found:
            info["voxel_size_from"] = "ImageJ tags"
        info["imagej"] = {k: v for k, v in (tif.imagej_metadata or {}).items() if isinstance(v, (int, float, str))}
    spatial = [a for a in axes if a in "zyx"]
    if found is not None:
        by_axis = dict(zip("zyx", found))
        values = [by_axis[a] for a in spatial]
        if len(spatial) == 3 and values[0] is None and values[1] is not None and values[1] == values[2]:
            values[0] = None  # a z spacing is not recorded: do not guess it
        if all(v is not None and v > 0 for v in values):
            return tuple(float(v) for v in values), info
    return None, info


def read_tiff(path: Path, chunks="auto", series: int = 0) -> Opened:
    import tifffile

    try:
        with _TiffErrors() as errors, tifffile.TiffFile(path) as tif:
            if series >= len(tif.series):
                raise ShapeError(f"{path}: has {len(tif.series)} image series; series={series} does not exist")
            s = tif.series[series]
            shape, dtype, codes = tuple(s.shape), s.dtype, s.axes
            _check_not_truncated(path, tif)
            axes = _map_axes(path, codes)
            voxel_size, info = _voxel_size_from_tags(path, tif, axes)
            compression = str(tif.pages[0].compression.name)
        errors.raise_if_any(path)
    except (ShapeError, CorruptFileError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: not a readable TIFF file ({exc})") from exc
    if compression not in ("NONE",):
        try:
            import imagecodecs  # noqa: F401
        except ImportError as exc:
            raise UnsupportedFormatError(
                f"{path}: is {compression}-compressed; reading it needs the imagecodecs package "
                "(pip install 'sxtseg[tiff]')"
            ) from exc
    source = HandleSource(path, shape, dtype, opener=partial(_open_tiff_zarr, str(path), series))
    source.reader = "tiff"
    data = to_dask(source, chunks, token_extra=series)
    missing = info.pop("voxel_size_missing", None)
    metadata = {"voxel_size_missing": missing,
                "tiff": {"axes": codes, "series": series, "compression": compression, **info}}
    return Opened(data=data, axes=axes, voxel_size=_spatial(voxel_size, axes), unit="nm", metadata=metadata)


def _spatial(voxel_size, axes):
    """Expand spatial voxel sizes to one entry per axis (1.0 for c/t, dropped later)."""
    if voxel_size is None:
        return None
    it = iter(voxel_size)
    return tuple(next(it) if a in "zyx" else 1.0 for a in axes)


_NUMBER = re.compile(r"(\d+)")


def numbered_tiffs(folder: Path) -> list[Path]:
    """The TIFF files of a folder, sorted by the last number in their names."""
    files = [p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith((".tif", ".tiff"))]
    if not files:
        raise UnsupportedFormatError(f"{folder}: folder holds no .tif/.tiff files")
    keyed = []
    for p in files:
        numbers = _NUMBER.findall(p.stem)
        if not numbers:
            raise UnsupportedFormatError(
                f"{folder}: file {p.name!r} has no slice number in its name; "
                "a folder is read as a stack of numbered 2D TIFFs"
            )
        keyed.append((int(numbers[-1]), p))
    keyed.sort()
    numbers = [n for n, _ in keyed]
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})[:5]
        raise UnsupportedFormatError(f"{folder}: several files share slice numbers {dup}")
    return [p for _, p in keyed]


def read_tiff_folder(folder: Path, chunks="auto") -> Opened:
    import tifffile

    files = numbered_tiffs(folder)
    first_shape = first_dtype = None
    voxel_size, info = None, {}
    for i, f in enumerate(files):
        try:
            with _TiffErrors() as errors, tifffile.TiffFile(f) as tif:
                s = tif.series[0]
                _check_not_truncated(f, tif)
                errors.raise_if_any(f)
                if i == 0:
                    first_shape, first_dtype = tuple(s.shape), s.dtype
                    if len(first_shape) != 2:
                        raise ShapeError(f"{f}: a folder stack needs 2D slices, this one has shape {first_shape}")
                    yx, info = _voxel_size_from_tags(f, tif, "yx")
                    voxel_size = yx
                elif tuple(s.shape) != first_shape or s.dtype != first_dtype:
                    raise ShapeError(
                        f"{f}: slice has shape {tuple(s.shape)} {s.dtype}, "
                        f"but {files[0].name} has {first_shape} {first_dtype}"
                    )
        except (ShapeError, CorruptFileError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise CorruptFileError(f"{f}: not a readable TIFF file ({exc})") from exc
    shape = (len(files), *first_shape)
    source = HandleSource(folder, shape, first_dtype, opener=partial(_open_sequence_zarr, tuple(map(str, files))))
    source.reader = "tiff-folder"
    data = to_dask(source, chunks, token_extra=[f.name for f in files])
    metadata = {"tiff": {"files": len(files), "first": files[0].name, "last": files[-1].name, **info}}
    if voxel_size is not None:
        metadata["tiff"]["pixel_size_yx_nm"] = list(voxel_size)
        metadata["voxel_size_missing"] = "the slices give an in-plane pixel size but no slice spacing"
    return Opened(data=data, axes="zyx", voxel_size=None, unit="nm", metadata=metadata)
