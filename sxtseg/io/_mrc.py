"""MRC/REC/MAP tomograms (the cryo-EM/ET format; mrcfile reads the header).

The voxels are memory-mapped chunk by chunk: opening a file reads only its
1024-byte header.  The voxel size comes from the header (cell size over
sampling, in ångström) and is converted to nanometres.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, UnsupportedFormatError
from ._opened import Opened
from ._source import MemmapSource, to_dask

SUFFIXES = (".mrc", ".rec", ".map", ".mrcs", ".st", ".ali")

_AXIS_LETTER = {1: "x", 2: "y", 3: "z"}


def read_mrc(path: Path, chunks="auto") -> Opened:
    import mrcfile
    import mrcfile.utils

    size = os.path.getsize(path)
    if size < 1024:
        raise CorruptFileError(f"{path}: only {size} bytes; an MRC file needs a 1024-byte header")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # we check the size below, with a clearer message
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                header = mrc.header.copy()
                extended = int(header.nsymbt)
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: not a readable MRC file ({exc})") from exc
    if bytes(header.map) != b"MAP ":
        raise CorruptFileError(f"{path}: not an MRC file (no 'MAP ' tag at byte 208)")
    try:
        dtype = mrcfile.utils.data_dtype_from_header(header)
        shape = mrcfile.utils.data_shape_from_header(header)
    except ValueError as exc:
        raise UnsupportedFormatError(f"{path}: unsupported MRC data mode {int(header.mode)} ({exc})") from exc

    offset = 1024 + extended
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if size < expected:
        raise CorruptFileError(
            f"{path}: truncated: the header promises {shape} voxels of {dtype} "
            f"({expected} bytes with the header) but the file has {size} bytes"
        )
    if size > expected:
        raise CorruptFileError(
            f"{path}: the header (shape {shape}, {dtype}) disagrees with the file size: "
            f"{size - expected} bytes more than expected ({expected})"
        )

    source = MemmapSource(path, shape, dtype, offset=offset)
    source.reader = "mrc"
    data = to_dask(source, chunks)
    if data.ndim == 2:
        file_axes = "yx"
    else:
        # sections are stored along axis `maps`, rows along `mapr`, columns along `mapc`
        file_axes = "".join(_AXIS_LETTER.get(int(a), "?") for a in (header.maps, header.mapr, header.mapc))
        if sorted(file_axes) != ["x", "y", "z"]:
            raise CorruptFileError(
                f"{path}: invalid axis order MAPC/MAPR/MAPS = "
                f"{int(header.mapc)}/{int(header.mapr)}/{int(header.maps)}"
            )
        if file_axes != "zyx":
            data = data.transpose([file_axes.index(a) for a in "zyx"])

    cella = np.array([float(header.cella.z), float(header.cella.y), float(header.cella.x)])
    sampling = np.array([int(header.mz), int(header.my), int(header.mx)])
    with np.errstate(divide="ignore", invalid="ignore"):
        size_angstrom = np.where(sampling > 0, cella / np.maximum(sampling, 1), 0.0)
    axes = "zyx" if data.ndim == 3 else "yx"
    voxel_size, missing = None, None
    if np.all(size_angstrom[-data.ndim :] > 0) and np.all(np.isfinite(size_angstrom)):
        voxel_size = tuple(float(v) / 10.0 for v in size_angstrom[-data.ndim :])  # Å -> nm
    else:
        missing = f"the MRC header has no voxel size (cell {tuple(cella)} Å, sampling {tuple(sampling)})"
    metadata = {
        "voxel_size_missing": missing,
        "header": {
            "mode": int(header.mode),
            "nx_ny_nz": [int(header.nx), int(header.ny), int(header.nz)],
            "mx_my_mz": [int(header.mx), int(header.my), int(header.mz)],
            "cella_angstrom": [float(header.cella.x), float(header.cella.y), float(header.cella.z)],
            "mapc_mapr_maps": [int(header.mapc), int(header.mapr), int(header.maps)],
            "origin_angstrom": [float(header.origin.x), float(header.origin.y), float(header.origin.z)],
            "dmin_dmax_dmean": [float(header.dmin), float(header.dmax), float(header.dmean)],
            "extended_header_bytes": extended,
            "labels": [bytes(l).decode("ascii", "replace").strip() for l in header.label[: int(header.nlabl)]],
        }
    }
    return Opened(data=data, axes=axes, voxel_size=voxel_size, unit="nm", metadata=metadata)
