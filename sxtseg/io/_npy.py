"""NumPy ``.npy`` files, memory-mapped chunk by chunk (no voxel size in the format)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError
from ._opened import Opened
from ._source import MemmapSource, to_dask

SUFFIXES = (".npy",)


def read_npy(path: Path, chunks="auto") -> Opened:
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:  # version 3.0 (utf-8 field names) has no public reader
                shape, fortran, dtype = np.lib.format._read_array_header(fh, version)
            offset = fh.tell()
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: not a readable .npy file ({exc})") from exc
    if dtype.hasobject:
        raise CorruptFileError(f"{path}: holds Python objects, not voxels")
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise CorruptFileError(
            f"{path}: {what}: the header promises {shape} {dtype} ({expected} bytes) but the file has {size} bytes"
        )
    source = MemmapSource(path, shape, dtype, offset=offset, order="F" if fortran else "C")
    source.reader = "npy"
    data = to_dask(source, chunks)
    axes = {2: "yx", 3: "zyx"}.get(data.ndim, "?" * data.ndim)
    return Opened(data=data, axes=axes, voxel_size=None, unit="nm", metadata={})
