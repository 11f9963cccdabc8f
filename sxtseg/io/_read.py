"""``open_volume``: one entry point for every format sxtseg reads."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, InputNotFoundError, ShapeError, SxtsegError, UnsupportedFormatError
from ..volume import Volume
from . import _hdf5, _mrc, _npy, _tiff, _zarr
from ._opened import Opened
from ._source import check_finite

__all__ = ["open_volume", "detect_reader", "READERS"]

#: reader name -> suffixes it claims (a folder is "zarr" or "tiff-folder")
READERS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii", ".nii.gz"),
    "mrc": _mrc.SUFFIXES,
    "tiff": _tiff.SUFFIXES,
    "zarr": _zarr.SUFFIXES,
    "hdf5": _hdf5.SUFFIXES,
    "npy": _npy.SUFFIXES,
}


def detect_reader(path: str | os.PathLike) -> str:
    """Name of the reader for ``path``: from the folder's content or the file's suffix.

    Raises
    ------
    InputNotFoundError
        If nothing exists at ``path``.
    UnsupportedFormatError
        If the suffix (or folder content) is not one sxtseg reads.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        if _zarr.is_zarr(path):
            return "zarr"
        if any(p.name.lower().endswith((".tif", ".tiff")) for p in path.iterdir()):
            return "tiff-folder"
        if any(p.is_file() and is_dicom_file(p) for p in path.iterdir()):
            return "dicom"
        raise UnsupportedFormatError(f"{path}: folder is neither a Zarr store, a stack of numbered TIFFs, "
                                     "nor a DICOM series")
    name = path.name.lower()
    for reader, suffixes in READERS.items():
        if name.endswith(suffixes):
            return reader
    if name.endswith((".dcm", ".dicom")) or is_dicom_file(path):
        return "dicom"
    known = sorted({s for suffixes in READERS.values() for s in suffixes} | {".dcm"})
    raise UnsupportedFormatError(f"{path}: unknown file type {path.suffix!r}; sxtseg reads {', '.join(known)}")


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _open_ct(path: Path, ndim: int | None, voxel_size, unit: str) -> Volume:
    """DICOM and NIfTI through :func:`sxtseg.adapters.ct.open_ct` (the ``ct`` extra)."""
    try:
        from ..adapters.ct import open_ct
    except ImportError as exc:
        raise UnsupportedFormatError(f"{path}: reading DICOM and NIfTI needs the ct extra: "
                                     f"pip install \"sxtseg[ct]\" ({exc})") from exc
    vol = open_ct(path)
    if ndim is not None and vol.ndim != ndim:
        raise ShapeError(f"{path}: holds {vol.ndim}D data of shape {vol.shape}, but {ndim}D data is required")
    if voxel_size is not None:
        vol.metadata["file_voxel_size"] = {"value": list(vol.voxel_size), "unit": vol.unit}
        vol = Volume(vol.data, voxel_size=voxel_size, unit=unit, axes=vol.axes, metadata=vol.metadata)
    return vol


def _drop_singleton_axes(path: Path, opened: Opened) -> Opened:
    """Squeeze singleton time/channel axes; refuse real ones."""
    data, axes, size = opened.data, opened.axes, opened.voxel_size
    for i in reversed(range(len(axes))):
        if axes[i] in "zyx?":  # spatial, or unnamed (NPY, HDF5): left to the ndim check
            continue
        if data.shape[i] != 1:
            kind = {"c": "channels", "t": "time points"}.get(axes[i], f"entries along axis {axes[i]!r}")
            raise ShapeError(
                f"{path}: has {data.shape[i]} {kind} (shape {data.shape}, axes {axes!r}); "
                "sxtseg reads one grey-value volume: split the file first"
            )
        data = data[tuple(0 if j == i else slice(None) for j in range(len(axes)))]
        axes = axes[:i] + axes[i + 1 :]
        size = None if size is None else size[:i] + size[i + 1 :]
    return Opened(data=data, axes=axes, voxel_size=size, unit=opened.unit, metadata=opened.metadata)


def open_volume(
    path: str | os.PathLike,
    chunks: Any = "auto",
    *,
    ndim: int | None = 3,
    level: int = 0,
    dataset: str | None = None,
    series: int = 0,
    voxel_size: float | tuple[float, ...] | None = None,
    unit: str = "nm",
    allow_nan: bool = False,
) -> Volume:
    """Open a volume lazily: nothing but headers is read until the data is computed.

    The reader is chosen by suffix (or folder content): MRC/REC/MAP, TIFF and
    OME-TIFF (or a folder of numbered 2D TIFFs), Zarr v2/v3 and OME-Zarr
    (NGFF 0.4/0.5), HDF5 and NumPy ``.npy``.  CT scans (a DICOM file or
    series folder, NIfTI ``.nii``/``.nii.gz``) go to
    :func:`sxtseg.adapters.ct.open_ct` (the ``ct`` extra): Hounsfield units,
    voxel size in mm, axes towards Superior, Posterior, Left.

    Parameters
    ----------
    path : str or path-like
        File or folder to open.
    chunks : "auto", int, tuple or dict
        Dask chunks.  ``"auto"`` follows the file's own chunks (Zarr, HDF5)
        or takes whole (Y, X) planes (TIFF, MRC, NPY), about 128 MiB each.
    ndim : {3, 2, None}
        Dimensions required: 3 for a volume, 2 for an image, None for either.
    level : int
        Pyramid level of an OME-Zarr image (0 is full resolution).
    dataset : str, optional
        Dataset inside an HDF5 file or a Zarr group; needed when there are
        several (the error lists them).
    series : int
        Image series of a multi-series TIFF.
    voxel_size : float or tuple of float, optional
        Use this voxel size (in ``unit``) instead of the file's, e.g. for a
        file that records none.
    unit : {"nm", "um", "mm"}
        Unit of ``voxel_size``.
    allow_nan : bool
        Accept NaN/infinite voxels.  By default the central chunk is checked
        when the file is opened and every chunk as it is read, and such voxels
        raise :class:`~sxtseg.errors.InvalidDataError`.

    Returns
    -------
    Volume
        Lazy volume; ``metadata["source"]`` records the path and reader, and
        the file's own header values are kept in the metadata.  A file with
        no voxel size gives a warning and ``voxel_size=None`` (never 1.0).

    Raises
    ------
    SxtsegError
        A subclass naming the file and the problem: unknown suffix, missing
        file, truncated or inconsistent file, wrong number of dimensions,
        NaN-filled data, ambiguous dataset.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.npy")
    >>> np.save(path, np.ones((8, 16, 16), np.float32))
    >>> vol = open_volume(path, voxel_size=30.0)
    >>> vol.shape, vol.voxel_size, vol.metadata["source"]["reader"]
    ((8, 16, 16), (30.0, 30.0, 30.0), 'npy')
    """
    path = Path(path).expanduser()
    reader = detect_reader(path)
    if reader in ("dicom", "nifti"):  # CT: Hounsfield units, voxel size in mm, patient axes (S, P, L)
        return _open_ct(path, ndim, voxel_size, unit)
    try:
        if reader == "mrc":
            opened = _mrc.read_mrc(path, chunks)
        elif reader == "tiff":
            opened = _tiff.read_tiff(path, chunks, series=series)
        elif reader == "tiff-folder":
            opened = _tiff.read_tiff_folder(path, chunks)
        elif reader == "zarr":
            opened = _zarr.read_zarr(path, chunks, level=level, dataset=dataset)
        elif reader == "hdf5":
            opened = _hdf5.read_hdf5(path, chunks, dataset=dataset)
        else:
            opened = _npy.read_npy(path, chunks)
        opened = _drop_singleton_axes(path, opened)
    except SxtsegError as exc:
        if str(path) not in str(exc):  # every message names the file
            raise type(exc)(f"{path}: {exc}") from exc
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's library failed in a way no check foresaw
        raise CorruptFileError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from exc

    data = opened.data
    if data.ndim not in (2, 3) or (ndim is not None and data.ndim != ndim):
        wanted = {3: "a 3D volume", 2: "a 2D image", None: "a 2D image or 3D volume"}[ndim]
        raise ShapeError(f"{path}: holds {data.ndim}D data of shape {data.shape}, but {wanted} is required")
    axes = "zyx" if data.ndim == 3 else "yx"

    metadata: dict[str, Any] = {}
    saved = opened.metadata.pop("saved", None)
    if saved:  # written by sxtseg.save_volume: restore what the writer kept
        metadata.update(copy.deepcopy(saved))
        if "source" in metadata:
            metadata["derived_from"] = metadata.pop("source")
    missing = opened.metadata.pop("voxel_size_missing", None)
    if "ome" in opened.metadata and opened.metadata["ome"]["level"] != "0" and "origin_voxel" not in opened.metadata:
        metadata.pop("origin_voxel", None)  # the saved one counts level-0 voxels; this level has no whole origin
    metadata.update(opened.metadata)
    source: dict[str, Any] = {"path": str(path.resolve()), "reader": reader}
    if dataset is not None:
        source["dataset"] = dataset
    if reader == "zarr" and "ome" in opened.metadata:
        source["level"] = opened.metadata["ome"]["level"]
    metadata["source"] = source

    size, size_unit = opened.voxel_size, opened.unit
    if voxel_size is not None:
        if size is not None:
            metadata["file_voxel_size"] = {"value": list(size), "unit": size_unit}
        size, size_unit = voxel_size, unit
    elif size is None:
        warnings.warn(
            f"{path}: {missing or 'the file records no voxel size'}; voxel_size is None "
            "(pass voxel_size= to open_volume, or --voxel-size on the command line)",
            UserWarning,
            stacklevel=2,
        )
    if not allow_nan:
        data = check_finite(data, str(path))
    try:
        return Volume(data, voxel_size=size, unit=size_unit, axes=axes, metadata=metadata)
    except SxtsegError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
