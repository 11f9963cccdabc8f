"""NIfTI CT reading (``.nii``, ``.nii.gz``) with nibabel: HU array and affine in LPS mm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import CorruptFileError, ShapeError
from ._geometry import LPS_FROM_RAS

__all__ = ["read_nifti", "NIFTI_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")

# NIfTI xyzt spatial units -> factor to millimetres ("unknown" is read as mm, as ITK and nibabel do)
_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}


def read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a NIfTI CT: (HU array in file axis order, affine index -> LPS mm, header notes).

    The whole image is read at once: a gzipped file cannot be read in parts
    without decompressing from its start, and CT volumes fit in memory.
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)  # applies scl_slope / scl_inter
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for a bad file
        raise CorruptFileError(f"{path}: could not be read as NIfTI ({type(exc).__name__}: {exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ShapeError(f"{path}: NIfTI image of shape {data.shape}; a CT volume has 3 dimensions")
    spatial_unit = image.header.get_xyzt_units()[0]
    scale = _TO_MM.get(spatial_unit)
    if scale is None:
        raise CorruptFileError(f"{path}: unknown NIfTI spatial unit {spatial_unit!r}")
    affine = LPS_FROM_RAS @ image.affine
    affine[:3, :4] *= scale
    notes = {"nifti_affine_ras": image.affine.tolist(), "nifti_spatial_unit": spatial_unit,
             "nifti_axcodes": "".join(nib.aff2axcodes(image.affine))}
    return data, affine, notes
