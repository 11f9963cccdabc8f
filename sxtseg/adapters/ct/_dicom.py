"""DICOM CT reading: one series from a folder of slices, or one multi-frame file.

Slices are ordered by their ImagePositionPatient projected on the slice normal
(never by file name or InstanceNumber), pixel values become Hounsfield units
through the modality LUT (RescaleSlope/Intercept, or a Modality LUT Sequence),
and the slice spacing comes from the positions (SliceThickness is recorded,
not used: overlapping reconstructions have thickness > spacing).  Pixel data
are decoded lazily, one slice per dask chunk.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from ...io._read import is_dicom_file
from .._decoders import check_decoder
from ...errors import (AmbiguousDatasetError, CorruptFileError, InputNotFoundError, ShapeError,
                       UnsupportedFormatError)

logger = logging.getLogger(__name__)

__all__ = ["is_dicom_file", "read_dicom"]

#: Modalities that are projection X-rays, not CT: refused with a pointer to open_cxr.
XRAY_MODALITIES = {"CR", "DX", "RG", "MG", "XA", "RF", "IO", "PX"}

# relative spacing tolerance: positions off by more than this from the median step are "uneven"
_SPACING_TOLERANCE = 0.01
_DUPLICATE_MM = 1e-3


def _dcmread(path: Path, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError as exc:
        raise UnsupportedFormatError(f"{path}: not a DICOM file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - truncated files fail deep inside pydicom
        raise CorruptFileError(f"{path}: could not be read as DICOM ({type(exc).__name__}: {exc})") from exc


def _float_list(ds, keyword: str, path: Path, length: int) -> np.ndarray | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    values = [value] if isinstance(value, (str, int, float)) else list(value)  # one number, or a MultiValue
    try:
        out = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path}: {keyword} {value!r} is not numeric") from exc
    if out.size != length:
        raise CorruptFileError(f"{path}: {keyword} has {out.size} values, expected {length}")
    return out


def _check_modality(path: Path, ds) -> bool:
    """Refuse X-rays and non-CT modalities; False when the Modality tag is missing (read as CT)."""
    modality = str(ds.get("Modality", "") or "")
    if modality in XRAY_MODALITIES:
        raise UnsupportedFormatError(
            f"{path}: is a {modality} image (a projection X-ray), not CT; open it with sxtseg.adapters.cxr.open_cxr")
    if modality and modality != "CT":
        raise UnsupportedFormatError(f"{path}: Modality {modality!r}; open_ct reads CT (Hounsfield units) only")
    return bool(modality)


def _hounsfield(pixels: np.ndarray, ds, slope_intercept: tuple[float, float] | None = None) -> np.ndarray:
    """Stored values to HU: an explicit (slope, intercept), else pydicom's modality LUT."""
    if slope_intercept is not None:
        slope, intercept = slope_intercept
        return (pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)
    from pydicom.pixels import apply_modality_lut

    return np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)


def _decoded(path: str):
    """The data set of ``path`` and its decoded pixel array."""
    ds = _dcmread(Path(path))
    try:
        return ds, ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many kinds
        raise CorruptFileError(f"{path}: pixel data could not be decoded ({type(exc).__name__}: {exc})") from exc


def _read_slice(path: str) -> np.ndarray:
    ds, pixels = _decoded(path)
    if pixels.ndim != 2:
        raise ShapeError(f"{path}: a slice of a series has pixel data of shape {pixels.shape}, not (rows, columns)")
    return _hounsfield(pixels, ds)


def _series_listing(groups: dict[str, list]) -> str:
    lines = []
    for uid, members in groups.items():
        ds = members[0][1]
        lines.append(f"  {uid or '(no SeriesInstanceUID)'}: {ds.get('SeriesDescription', '') or '(no description)'}, "
                     f"{ds.get('Modality', '?')}, {len(members)} file(s), e.g. {members[0][0].name}")
    return "\n".join(lines)


def _headers(folder: Path) -> list[tuple[Path, Any]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    dicom = [p for p in files if is_dicom_file(p)]
    if not dicom:
        raise UnsupportedFormatError(f"{folder}: holds no DICOM files (none of its {len(files)} files starts "
                                     "with the DICOM preamble)")
    skipped = [p.name for p in files if p not in dicom and p.name.upper() != "DICOMDIR"
               and p.suffix.lower() not in (".txt", ".json", ".md", ".png", ".jpg", ".csv", ".xml")]
    if skipped:
        warnings.warn(f"{folder}: {len(skipped)} file(s) that are not DICOM were ignored: {', '.join(skipped[:5])}",
                      UserWarning, stacklevel=4)
    # defer_size: large values (the pixel data) stay on disk until asked for
    return [(p, _dcmread(p, defer_size="4 KB")) for p in dicom]


def _choose_series(folder: Path, headers, series_uid: str | None):
    groups: dict[str, list] = {}
    for path, ds in headers:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "") or ""), []).append((path, ds))
    if series_uid is not None:
        if series_uid not in groups:
            raise AmbiguousDatasetError(f"{folder}: no series {series_uid!r}; the folder holds:\n{_series_listing(groups)}")
        return groups[series_uid]
    if len(groups) > 1:
        raise AmbiguousDatasetError(f"{folder}: holds {len(groups)} series; choose one with series_uid=:\n"
                                    f"{_series_listing(groups)}")
    return next(iter(groups.values()))


def _orientation(path: Path, ds) -> np.ndarray:
    cosines = _float_list(ds, "ImageOrientationPatient", path, 6)
    if cosines is None:
        warnings.warn(f"{path}: no ImageOrientationPatient; assuming axial slices (1,0,0 / 0,1,0)",
                      UserWarning, stacklevel=5)
        cosines = np.array([1.0, 0, 0, 0, 1.0, 0])
    return cosines


def _pixel_spacing(path: Path, ds) -> np.ndarray:
    spacing = _float_list(ds, "PixelSpacing", path, 2)
    if spacing is None or not np.all(spacing > 0):
        raise CorruptFileError(f"{path}: PixelSpacing is {ds.get('PixelSpacing')!r}; a CT slice needs a positive "
                               "pixel spacing (mm)")
    return spacing


def _affine(row_cosine, column_cosine, normal, spacing_rc, step_mm, origin) -> np.ndarray:
    """Voxel index (slice, row, column) -> LPS mm."""
    affine = np.eye(4)
    affine[:3, 0] = normal * step_mm
    affine[:3, 1] = column_cosine * spacing_rc[0]  # moving down a row follows the column direction
    affine[:3, 2] = row_cosine * spacing_rc[1]
    affine[:3, 3] = origin
    return affine


def _spacing_report(names: list[str], offsets: np.ndarray, where: Path) -> tuple[float, dict]:
    """The slice step (median of the position differences), with warnings for gaps and uneven steps."""
    steps = np.diff(offsets)
    step = float(np.median(steps))
    info: dict[str, Any] = {"slice_spacing_mm": step}
    uneven = np.abs(steps - step) > _SPACING_TOLERANCE * step + 1e-3
    if uneven.any():
        gaps = [(names[i], names[i + 1], float(steps[i])) for i in np.nonzero(uneven)[0]]
        missing = [g for g in gaps if g[2] > 1.5 * step]
        info["uneven_spacing"] = [{"between": [a, b], "step_mm": s} for a, b, s in gaps]
        described = "; ".join(f"{a} -> {b}: {s:g} mm" for a, b, s in gaps[:6])
        more = f" and {len(gaps) - 6} more" if len(gaps) > 6 else ""
        kind = (f"{len(missing)} gap(s) look like missing slices" if missing
                else "the steps differ")
        warnings.warn(f"{where}: uneven slice spacing ({kind}; the median step {step:g} mm is used as the voxel "
                      f"size, so distances across these steps are off): {described}{more}",
                      UserWarning, stacklevel=5)
    return step, info


def _read_series(folder: Path, members) -> tuple[da.Array, np.ndarray, Any, dict]:
    first_path, first = members[0]
    untagged = [path.name for path, ds in members if not _check_modality(path, ds)]
    if untagged:
        warnings.warn(f"{folder}: {len(untagged)} file(s) have no Modality tag (e.g. {untagged[0]}); read as CT",
                      UserWarning, stacklevel=4)
    cosines = _orientation(first_path, first)
    row_cosine, column_cosine = cosines[:3], cosines[3:]
    normal = np.cross(row_cosine, column_cosine)
    rows, columns = int(first.Rows), int(first.Columns)
    spacing = _pixel_spacing(first_path, first)
    entries = []
    for path, ds in members:
        if "PixelData" not in ds:
            raise CorruptFileError(f"{path}: has no pixel data (a DICOM header only)")
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise ShapeError(f"{path}: slice of {ds.Rows}x{ds.Columns} pixels in a series of {rows}x{columns} "
                             f"({first_path.name})")
        if not np.allclose(_orientation(path, ds), cosines, atol=1e-3):
            raise ShapeError(f"{path}: slice orientation differs from {first_path.name}'s; not one stack")
        if not np.allclose(_pixel_spacing(path, ds), spacing, rtol=1e-3):
            raise ShapeError(f"{path}: PixelSpacing differs from {first_path.name}'s")
        position = _float_list(ds, "ImagePositionPatient", path, 3)
        if position is None:
            if len(members) > 1:
                raise CorruptFileError(f"{path}: no ImagePositionPatient; the slices of {folder} cannot be ordered")
            position = np.zeros(3)
        entries.append((float(position @ normal), path, position, ds))
    entries.sort(key=lambda e: (e[0], e[1].name))

    kept = [entries[0]]
    duplicates = []
    for entry in entries[1:]:
        if abs(entry[0] - kept[-1][0]) < _DUPLICATE_MM:
            duplicates.append((kept[-1][1].name, entry[1].name))
        else:
            kept.append(entry)
    if duplicates:
        warnings.warn(f"{folder}: {len(duplicates)} slice(s) share a position with another and were left out "
                      f"(kept the first by file name): " + "; ".join(f"{b} duplicates {a}" for a, b in duplicates[:6]),
                      UserWarning, stacklevel=4)
    offsets = np.array([e[0] for e in kept])
    names = [e[1].name for e in kept]
    thickness = first.get("SliceThickness")
    if len(kept) > 1:
        step, info = _spacing_report(names, offsets, folder)
    else:
        if thickness is None or float(thickness) <= 0:
            raise CorruptFileError(f"{kept[0][1]}: a single slice without SliceThickness; its z size is unknown")
        step, info = float(thickness), {"slice_spacing_mm": None}
        warnings.warn(f"{folder}: one slice only; its z voxel size is the SliceThickness ({float(thickness):g} mm)",
                      UserWarning, stacklevel=4)
    if duplicates:
        info["duplicate_positions"] = [list(d) for d in duplicates]

    check_decoder(kept[0][1], kept[0][3])
    chunks = [da.from_delayed(dask.delayed(_read_slice)(str(e[1])), shape=(rows, columns), dtype=np.float32)
              for e in kept]
    data = da.stack(chunks)
    affine = _affine(row_cosine, column_cosine, normal, spacing, step, kept[0][2])
    info["files"] = names
    return data, affine, kept[0][3], info


def _frame_value(ds, frame: int, sequence: str, keyword: str):
    """A value from the per-frame functional groups, else the shared ones, else None."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq is None or len(seq) <= index:
            continue
        inner = seq[index].get(sequence)
        if inner is not None and len(inner) and keyword in inner[0]:
            return inner[0].get(keyword)
    return None


def _read_multiframe(path: Path, ds) -> tuple[da.Array, np.ndarray, Any, dict]:
    _check_modality(path, ds)
    if "PixelData" not in ds:
        raise CorruptFileError(f"{path}: has no pixel data (a DICOM header only)")
    frames = int(ds.NumberOfFrames)
    rows, columns = int(ds.Rows), int(ds.Columns)
    cosines = _frame_value(ds, 0, "PlaneOrientationSequence", "ImageOrientationPatient")
    cosines = np.array([float(v) for v in cosines]) if cosines is not None else _orientation(path, ds)
    spacing = _frame_value(ds, 0, "PixelMeasuresSequence", "PixelSpacing") or ds.get("PixelSpacing")
    if spacing is None:
        raise CorruptFileError(f"{path}: multi-frame CT without PixelSpacing")
    spacing = np.array([float(v) for v in spacing])
    row_cosine, column_cosine = cosines[:3], cosines[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = []
    for frame in range(frames):
        value = _frame_value(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
        if value is None:
            raise CorruptFileError(f"{path}: frame {frame + 1} of {frames} has no ImagePositionPatient "
                                   "(PlanePositionSequence); the frames cannot be placed")
        positions.append(np.array([float(v) for v in value]))
    rescale = []
    for frame in range(frames):
        slope = _frame_value(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _frame_value(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
        if slope is None:
            slope, intercept = ds.get("RescaleSlope", 1.0), ds.get("RescaleIntercept", 0.0)
        rescale.append((float(slope), float(intercept or 0.0)))
    offsets = np.array([p @ normal for p in positions])
    order = np.argsort(offsets, kind="stable")
    names = [f"frame {i + 1}" for i in order]
    if np.any(np.diff(offsets[order]) < _DUPLICATE_MM):
        raise CorruptFileError(f"{path}: frames share a position; not one volume")
    step, info = _spacing_report(names, offsets[order], path) if frames > 1 else (
        float(ds.get("SliceThickness") or 0) or 1.0, {"slice_spacing_mm": None})
    check_decoder(path, ds)

    def decode(p: str) -> np.ndarray:
        full, pixels = _decoded(p)
        pixels = pixels.reshape(frames, rows, columns)
        return np.stack([_hounsfield(pixels[i], full, rescale[i]) for i in order])

    data = da.from_delayed(dask.delayed(decode)(str(path)), shape=(frames, rows, columns), dtype=np.float32)
    affine = _affine(row_cosine, column_cosine, normal, spacing, step, positions[order[0]])
    info["frames"] = frames
    return data, affine, ds, info


def read_dicom(path: Path, series_uid: str | None = None) -> tuple[da.Array, np.ndarray, Any, dict]:
    """Read a CT series: (HU array (slice, row, column), affine to LPS mm, a header, geometry notes)."""
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        members = _choose_series(path, _headers(path), series_uid)
        if len(members) == 1 and int(members[0][1].get("NumberOfFrames", 1) or 1) > 1:
            return _read_multiframe(*members[0])
        return _read_series(path, members)
    ds = _dcmread(path, defer_size="4 KB")
    if series_uid is not None and str(ds.get("SeriesInstanceUID", "")) != series_uid:
        raise AmbiguousDatasetError(f"{path}: belongs to series {ds.get('SeriesInstanceUID')}, not {series_uid}")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return _read_multiframe(path, ds)
    return _read_series(path, [(path, ds)])
