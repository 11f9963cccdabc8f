"""``open_ct``: a CT scan (DICOM series, multi-frame DICOM or NIfTI) as a Volume in Hounsfield units."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputNotFoundError, SxtsegError, UnsupportedFormatError
from ...io._read import is_dicom_file
from ...volume import Volume
from ._geometry import to_spl
from ._nifti import NIFTI_SUFFIXES

__all__ = ["open_ct", "is_ct_path", "AXES_PATIENT"]

#: Patient directions of the (z, y, x) axes of every CT Volume: towards Superior, Posterior, Left.
AXES_PATIENT = "SPL"

# header fields kept in metadata["ct"] (identifiers, acquisition); absent ones are left out
_FIELDS = {
    "patient_id": "PatientID",
    "patient_sex": "PatientSex",
    "patient_age": "PatientAge",
    "study_instance_uid": "StudyInstanceUID",
    "study_date": "StudyDate",
    "study_description": "StudyDescription",
    "series_instance_uid": "SeriesInstanceUID",
    "series_number": "SeriesNumber",
    "series_description": "SeriesDescription",
    "frame_of_reference_uid": "FrameOfReferenceUID",
    "modality": "Modality",
    "manufacturer": "Manufacturer",
    "manufacturer_model_name": "ManufacturerModelName",
    "body_part_examined": "BodyPartExamined",
    "convolution_kernel": "ConvolutionKernel",
    "kvp": "KVP",
    "exposure_mas": "Exposure",
    "slice_thickness_mm": "SliceThickness",
    "contrast_bolus_agent": "ContrastBolusAgent",
    "transfer_syntax": None,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_jsonable(v) for v in value]
    if isinstance(value, float) or type(value).__name__ in ("DSfloat", "DSdecimal"):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


def _header_fields(ds) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, keyword in _FIELDS.items():
        if keyword is None:
            syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
            if syntax is not None:
                fields[name] = str(syntax.name)
            continue
        value = ds.get(keyword)
        if value is not None and value != "":
            fields[name] = _jsonable(value)
    return fields


def is_ct_path(path: str | os.PathLike) -> str | None:
    """``"dicom"`` or ``"nifti"`` when ``path`` is a file or folder :func:`open_ct` reads, else None."""
    path = Path(path)
    if path.is_dir():
        return "dicom" if any(p.is_file() and is_dicom_file(p) for p in path.iterdir()) else None
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith((".dcm", ".dicom")) or (path.is_file() and is_dicom_file(path)):
        return "dicom"
    return None


def _check_hounsfield(path: Path, data) -> None:
    """Warn when the central slice does not look like CT in HU (no air, or unsigned stored values)."""
    middle = np.asarray(data[data.shape[0] // 2])
    low, high = np.percentile(middle, [1, 99.9])
    if low > -500:
        warnings.warn(f"{path}: the central slice has no air (1st percentile {low:.0f}, expected about -1000 HU); "
                      "the values may not be Hounsfield units (a missing RescaleIntercept?) or the field of view "
                      "holds no air", UserWarning, stacklevel=3)
    elif high > 32000:
        warnings.warn(f"{path}: values up to {high:.0f} HU; check the rescale slope", UserWarning, stacklevel=3)


def open_ct(path: str | os.PathLike, *, series_uid: str | None = None) -> Volume:
    """Open a CT scan as a Volume in Hounsfield units, axes (z, y, x) = (S, P, L), voxel size in mm.

    Parameters
    ----------
    path : str or path-like
        A folder of DICOM slices (one series, or choose with ``series_uid``),
        a single DICOM file (a multi-frame CT, or one slice), or a NIfTI file
        (``.nii``, ``.nii.gz``).
    series_uid : str, optional
        SeriesInstanceUID to read when a folder holds several series.

    Returns
    -------
    Volume
        float32 HU (through the modality LUT: RescaleSlope/Intercept), lazy
        for DICOM (one slice per chunk).  Axes follow the patient: index
        ``z`` grows towards the head, ``y`` towards the back, ``x`` towards
        the patient's left (DICOM's LPS frame, slices sorted along it; a NIfTI
        in RAS is flipped to match).  ``voxel_size`` is (slice step, row
        spacing, column spacing) in mm, the slice step measured from the
        slice positions, not SliceThickness.  ``metadata["ct"]`` holds the
        identifiers (patient, study, series), acquisition fields (kernel,
        vendor, kVp, slice thickness), the slice spacing, any uneven steps or
        duplicate positions, and ``affine_lps``: the 4x4 matrix mapping
        ``(z, y, x, 1)`` voxel indices to patient LPS coordinates in mm.

    Raises
    ------
    SxtsegError
        Naming the file: not DICOM/NIfTI, no pixel data, a compressed
        transfer syntax without its decoder (the message says what to
        install), several series without ``series_uid``, a projection X-ray
        (CR/DX: use :func:`sxtseg.adapters.cxr.open_cxr`), slices of
        different sizes or orientations.

    Warns
    -----
    UserWarning
        Uneven slice spacing or missing slices (naming the files and steps),
        slices at duplicate positions (left out, named), a single slice,
        values that do not look like HU.

    Examples
    --------
    >>> import numpy as np, nibabel as nib, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ct.nii.gz")
    >>> hu = np.full((4, 5, 6), -1000, np.int16)  # NIfTI axes run towards Right, Anterior, Superior
    >>> nib.save(nib.Nifti1Image(hu, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    >>> scan = open_ct(path)
    >>> scan.shape, scan.voxel_size, scan.unit, scan.metadata["ct"]["axes_patient"]
    ((6, 5, 4), (3.0, 2.0, 2.0), 'mm', 'SPL')
    """
    from ._dicom import read_dicom
    from ._nifti import read_nifti

    path = Path(path).expanduser()
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder")
    kind = is_ct_path(path)
    if kind is None:
        raise UnsupportedFormatError(f"{path}: not a DICOM file, a folder of DICOM files, or NIfTI (.nii, .nii.gz)")
    try:
        if kind == "nifti":
            data, affine, notes = read_nifti(path)
            fields: dict[str, Any] = {}
        else:
            data, affine, header, notes = read_dicom(path, series_uid)
            fields = _header_fields(header)
    except SxtsegError as exc:
        if str(path) not in str(exc):
            raise type(exc)(f"{path}: {exc}") from exc
        raise
    data, affine = to_spl(data, affine, str(path))
    voxel_size = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    _check_hounsfield(path, data)
    ct = {**fields, **notes, "axes_patient": AXES_PATIENT, "affine_lps": affine.tolist(), "intensity_unit": "HU"}
    metadata = {"source": {"path": str(path.resolve()), "reader": kind}, "ct": ct}
    if series_uid is not None:
        metadata["source"]["series_uid"] = series_uid
    return Volume(data, voxel_size=voxel_size, unit="mm", axes="zyx", metadata=metadata)
