"""Export a Volume to a single TIFF (ImageJ hyperstack) or MRC file.

OME-Zarr (:func:`sxtseg.save_volume`) is the native format; these writers
exist to hand volumes to tools that want one file (Fiji, IMOD, Amira).  The
whole volume is written from memory one z-plane at a time, to a temporary
sibling that is renamed into place at the end.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from ..errors import UnsupportedFormatError, VoxelSizeError
from ..volume import Volume
from ._write import _check_output_path

__all__ = ["export_volume"]

_TIFF = (".tif", ".tiff")
_MRC = (".mrc", ".rec", ".map")
_MRC_DTYPES = {np.dtype(t) for t in ("int8", "int16", "uint16", "float32", "float16", "uint8")}


def export_volume(volume: Volume, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a volume as one ImageJ TIFF or MRC file, with its voxel size.

    Parameters
    ----------
    volume : Volume
        The volume, (Z, Y, X) or (Y, X).  Its voxel size is written to the
        ImageJ tags (µm) or the MRC header (Å).
    path : str or path-like
        Output file; the suffix chooses the format (``.tif``, ``.mrc``).
    overwrite : bool
        Replace an existing file (never one of the inputs).

    Returns
    -------
    pathlib.Path
        The written path.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sxtseg import Volume, open_volume
    >>> vol = Volume(np.ones((4, 8, 8), np.float32), voxel_size=25.0)
    >>> out = export_volume(vol, os.path.join(tempfile.mkdtemp(), "cell.mrc"))
    >>> open_volume(out).voxel_size
    (25.0, 25.0, 25.0)
    """
    path = Path(path).expanduser()
    name = path.name.lower()
    if not name.endswith(_TIFF + _MRC):
        raise UnsupportedFormatError(f"{path}: export_volume writes .tif or .mrc files")
    _check_output_path(path, [volume], overwrite)
    if volume.voxel_size is None:
        raise VoxelSizeError(f"{path}: the volume's voxel size is unknown; set it before exporting")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.sxtseg-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        if name.endswith(_TIFF):
            _write_tiff(volume, tmp)
        else:
            _write_mrc(volume, tmp, path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_tiff(volume: Volume, tmp: Path) -> None:
    import tifffile

    size_um = volume.voxel_size_in("um")
    metadata = {"unit": "um", "axes": volume.axes.upper()}
    if volume.ndim == 3:
        metadata["spacing"] = size_um[0]
    with tifffile.TiffWriter(tmp, imagej=True) as tif:
        planes = (np.asarray(volume.data[z].compute()) for z in range(volume.shape[0])) if volume.ndim == 3 else None
        if planes is None:
            tif.write(volume.to_numpy(), resolution=(1 / size_um[-1], 1 / size_um[-2]), metadata=metadata)
        else:
            tif.write(
                planes,
                shape=volume.shape,
                dtype=volume.dtype,
                resolution=(1 / size_um[-1], 1 / size_um[-2]),
                metadata=metadata,
            )


def _write_mrc(volume: Volume, tmp: Path, path: Path) -> None:
    import mrcfile

    if volume.dtype not in _MRC_DTYPES:
        raise UnsupportedFormatError(f"{path}: MRC cannot store {volume.dtype}; cast to float32 first")
    size_angstrom = [v * 10.0 for v in volume.voxel_size_in("nm")]
    shape = volume.shape if volume.ndim == 3 else (1, *volume.shape)
    mode = {np.dtype("int8"): 0, np.dtype("uint8"): 0, np.dtype("int16"): 1, np.dtype("float32"): 2,
            np.dtype("uint16"): 6, np.dtype("float16"): 12}[volume.dtype]
    with mrcfile.new_mmap(tmp, shape=shape, mrc_mode=mode, overwrite=True) as mrc:
        for z in range(shape[0]):
            plane = volume.data[z] if volume.ndim == 3 else volume.data
            mrc.data[z] = np.asarray(plane.compute())
        if volume.ndim == 3:
            mrc.voxel_size = (size_angstrom[2], size_angstrom[1], size_angstrom[0])  # x, y, z
        else:
            mrc.voxel_size = (size_angstrom[1], size_angstrom[0], size_angstrom[0])
        mrc.update_header_stats()
