"""Chest X-rays (CXR) into sxtseg: reading, COVID-Net preprocessing, COVIDx datasets, scores, rankings.

- :func:`open_cxr` reads one radiograph (DICOM, PNG or JPEG) into a 2-D
  :class:`~sxtseg.Volume` of display intensities in [0, 1] (bright = dense,
  as a radiologist views it), with the pixel spacing in millimetres when the
  file gives one;
- :func:`to_model_input` prepares it for a network as COVID-Net does (crop
  the top 8 % of rows, centre-crop to a square, resize to 480 x 480 or 224 x 224);
- :class:`CovidxDataset` reads a COVIDx label file and its image folder into
  a torch Dataset (MONAI augmentation, class-balanced sampling);
  :func:`sxtseg.train.fit_classifier` trains a DenseNet-121 on it and
  :func:`evaluate` reports sensitivity and PPV per class;
- :func:`covid_score` is a trained classifier's COVID-19 probability for one
  image, and :func:`rank_images` writes ``ranking.csv`` for many (what
  ``sxtseg cxr`` runs), with the lung opacity fraction when a lung-field
  segmenter (an MSD-net trained with :func:`sxtseg.train.fit`) is given.

No weights are shipped: there is no licence-clean labelled COVID-19 chest
X-ray set to train them on, and nothing here has been validated on real
COVID-19 labels.  Train your own (``examples/train_cxr_classifier.py``).

Needs the ``ct`` extra (pydicom, Pillow and the JPEG decoders of compressed DICOM).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> label_file = make_demo_covidx(folder, per_class=1, size=64)
>>> image = open_cxr(folder / "images" / "demo_covid-19_000.png")
>>> image.shape, image.axes, image.dtype, image.metadata["bit_depth"]
((64, 64), 'yx', dtype('float32'), 8)
>>> to_model_input(image, size=32).shape
(1, 32, 32)
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import (
    CorruptFileError,
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    OutputExistsError,
    ShapeError,
    SxtsegError,
    UnsupportedFormatError,
)
from ..volume import Volume
from ._decoders import check_decoder

if TYPE_CHECKING:
    import pandas

__all__ = [
    "BINARY_CLASSES",
    "COVIDNET_TOP_PERCENT",
    "CovidxDataset",
    "CxrWarning",
    "THREE_CLASSES",
    "covid_score",
    "evaluate",
    "lung_opacity_fraction",
    "lung_training_pair",
    "make_demo_covidx",
    "open_cxr",
    "predict_probabilities",
    "rank_images",
    "read_covidx_labels",
    "to_model_input",
]

log = logging.getLogger(__name__)

#: COVIDx three-class labels (COVIDx up to version 8A) and their class codes.
THREE_CLASSES = {"normal": 0, "pneumonia": 1, "COVID-19": 2}
#: COVIDx binary labels (COVIDx CXR-3 and later: COVID-19 negative / positive).
BINARY_CLASSES = {"negative": 0, "positive": 1}
#: The classes whose probability is the COVID-19 score, in the order looked for.
COVID_CLASS_NAMES = ("COVID-19", "positive")
#: Share of the image rows COVID-Net crops off the top (``top_percent`` of its ``process_image_file``).
COVIDNET_TOP_PERCENT = 0.08
#: DICOM modalities of projection radiographs that :func:`open_cxr` reads (plus none given).
RADIOGRAPH_MODALITIES = ("CR", "DX", "DR", "RG", "OT", "SC")
#: Classes a lung-field segmenter must have for :func:`lung_opacity_fraction`.
LUNG_CLASSES = ("lung", "opacity")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, the weights of Pillow's convert("L")


class CxrWarning(UserWarning):
    """Something in a chest X-ray file was unusual and was handled as the message says."""


# --------------------------------------------------------------------------------------- reading
def open_cxr(path) -> Volume:
    """Read a chest radiograph (DICOM, PNG or JPEG) as a 2-D Volume of display intensities in [0, 1].

    The format is recognised by content, not by suffix.

    - **DICOM** (CR, DX and secondary-capture radiographs; CT, MR and other
      modalities are refused): pixels decoded by pydicom (compressed transfer
      syntaxes need their decoder: a missing one is named), then the modality
      LUT / rescale and the VOI LUT or window (``pydicom.pixels.apply_modality_lut``
      and ``apply_voi_lut``, first window when several are given).  The
      display range is every value the file can store passed through the same
      transforms; its minimum maps to 0 and its maximum to 1.  MONOCHROME1
      images (where the stored 0 is white) are inverted, so bright is always
      dense (bone, mediastinum) and the lungs are dark.  RGB / YBR images are
      reduced to grey.  ``PixelSpacing`` (else ``ImagerPixelSpacing``, the
      spacing at the detector) gives the pixel spacing in mm; a zero or
      malformed value is treated as missing, with a :class:`CxrWarning`.
    - **PNG and JPEG** (Pillow): 1, 8 and 16-bit grey images are divided by
      ``2**bits - 1``; RGB and RGBA images whose channels are equal (grey
      stored as colour) keep one channel, other colour images are reduced to
      luminance (ITU-R BT.601) with a warning, and the alpha channel is
      dropped.  An EXIF orientation is applied.  These formats carry no
      pixel spacing: it is ``None``.

    Parameters
    ----------
    path : str or path-like
        One image file.

    Returns
    -------
    Volume
        float32, axes ``"yx"`` (row 0 at the top of the image as displayed),
        ``voxel_size`` the (row, column) pixel spacing in mm or ``None``,
        unit ``"mm"``.  ``metadata`` holds ``source`` (path, reader, format),
        ``bit_depth`` (bits per stored sample of the file), ``pixel_spacing_mm``
        and where it came from, ``inverted``, and for DICOM the modality,
        photometric interpretation, the VOI applied and the display range.

    Raises
    ------
    InputNotFoundError
        No such file.
    UnsupportedFormatError
        Not a DICOM, PNG or JPEG file, a DICOM of another modality (CT...) or
        without pixel data, or a compression whose decoder is not installed.
    CorruptFileError
        A file that cannot be decoded (truncated, damaged).
    ShapeError, InvalidDataError
        A multi-frame DICOM, or values that cannot be displayed.

    Examples
    --------
    A computed radiograph of pydicom's test files (MONOCHROME1, 15 bits, a window, PixelSpacing 0):

    >>> import warnings, pydicom.data
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     cr = open_cxr(pydicom.data.get_testdata_file("RG1_UNCR.dcm"))
    >>> cr.shape, cr.metadata["bit_depth"], cr.metadata["inverted"], cr.voxel_size
    ((1955, 1841), 15, True, None)
    >>> "PixelSpacing is" in str(caught[0].message)
    True
    """
    path = Path(path).expanduser()
    kind = _sniff(path)
    if kind == "DICOM":
        pixels, spacing, meta = _read_dicom(path)
    else:
        pixels, spacing, meta = _read_pillow(path, kind)
    if not np.isfinite(pixels).all():
        raise InvalidDataError(f"{path}: the image holds NaN or infinite values")
    meta = {"source": {"path": str(path), "reader": "sxtseg.adapters.cxr.open_cxr", "format": kind},
            "quantity": "grey_value", "intensity_unit": "1", "intensity_range": [0.0, 1.0],
            "pixel_spacing_mm": list(spacing) if spacing is not None else None, **meta}
    return Volume(np.ascontiguousarray(pixels, dtype=np.float32), voxel_size=spacing, unit="mm", axes="yx",
                  metadata=meta)


def _sniff(path: Path) -> str:
    """``"DICOM"``, ``"PNG"`` or ``"JPEG"``, from the first bytes of the file."""
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UnsupportedFormatError(f"{path}: a folder; open_cxr reads one image file (DICOM, PNG or JPEG)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot be read ({exc})") from None
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if head.startswith(_JPEG_MAGIC):
        return "JPEG"
    if head[128:132] == b"DICM" or _is_dicom_without_preamble(path):
        return "DICOM"
    raise UnsupportedFormatError(f"{path}: not a chest X-ray file open_cxr reads (DICOM, PNG or JPEG); "
                                 f"it starts with {head[:8]!r}")


def _is_dicom_without_preamble(path: Path) -> bool:
    """A DICOM data set without the 128-byte preamble (old files): pydicom reads it with ``force``."""
    if path.suffix.lower() not in (".dcm", ".dicom", ".dic"):
        return False
    pydicom = _import("pydicom")
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - anything pydicom cannot parse is simply not DICOM
        return False
    return "SOPClassUID" in ds or "Modality" in ds


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"reading chest X-rays needs {name}: pip install 'sxtseg[ct]'") from None


# ------------------------------------------------------------------------------------------ DICOM
def _read_dicom(path: Path) -> tuple[np.ndarray, tuple[float, float] | None, dict]:
    pydicom = _import("pydicom")
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, force=path.suffix.lower() in (".dcm", ".dicom", ".dic"))
    except InvalidDicomError as exc:
        raise UnsupportedFormatError(f"{path}: not a DICOM file ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for damaged files
        raise CorruptFileError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    truncated = [str(w.message) for w in caught if "end of file" in str(w.message).lower()]
    if truncated or len(ds) == 0:
        reason = truncated[0] if truncated else "no data element could be read"
        raise CorruptFileError(f"{path}: a damaged or truncated DICOM file ({reason})")
    for w in caught:  # anything else pydicom had to say, passed on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = getattr(ds.get("SOPClassUID"), "name", ds.get("SOPClassUID", "unknown"))
        raise UnsupportedFormatError(f"{path}: a DICOM file without pixel data (SOP class {sop}, modality "
                                     f"{ds.get('Modality', 'none')}); open_cxr needs a radiograph image")
    _check_modality(path, ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise ShapeError(f"{path}: a multi-frame DICOM ({frames} frames); open_cxr reads single radiographs")
    check_decoder(path, ds)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many kinds
        raise CorruptFileError(f"{path}: the pixel data could not be decoded ({type(exc).__name__}: {exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    bits = int(ds.get("BitsStored", pixels.dtype.itemsize * 8))
    meta: dict[str, Any] = {"modality": str(ds.get("Modality", "")), "photometric_interpretation": photometric,
                            "bit_depth": bits, "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")),
                            "view_position": str(ds.get("ViewPosition", "")),
                            "body_part": str(ds.get("BodyPartExamined", "")),
                            "sop_instance_uid": str(ds.get("SOPInstanceUID", ""))}
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if pixels.ndim != 2:
            raise ShapeError(f"{path}: expected one grey image, got pixel data of shape {pixels.shape}")
        display, voi, display_range = _display_values(path, ds, pixels, bits)
        inverted = photometric == "MONOCHROME1"
        if inverted:
            display = 1.0 - display
        meta.update(voi=voi, display_range=display_range, inverted=inverted)
    elif photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420"):
        # pydicom hands colour data back as RGB
        display = _grey(path, pixels.astype(np.float64) / (2**bits - 1))
        meta.update(voi=None, display_range=[0.0, float(2**bits - 1)], inverted=False)
    else:
        raise UnsupportedFormatError(f"{path}: photometric interpretation {photometric} is not a grey or RGB "
                                     "radiograph")
    spacing, source = _pixel_spacing_mm(path, ds)
    meta["pixel_spacing_source"] = source
    return np.clip(display, 0.0, 1.0), spacing, meta


def _check_modality(path: Path, ds) -> None:
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        hint = "; open CT series with sxtseg.adapters.ct.open_ct" if modality == "CT" else ""
        raise UnsupportedFormatError(f"{path}: Modality {modality}, not a projection radiograph "
                                     f"({', '.join(RADIOGRAPH_MODALITIES)}); open_cxr reads chest X-rays{hint}")


def _stored_values(ds, bits: int) -> np.ndarray:
    """Every value the file can store (or 65536 evenly spaced ones when that is too many)."""
    if int(ds.get("PixelRepresentation", 0)) == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2**bits - 1
    if high - low < 2**20:
        return np.arange(low, high + 1, dtype=np.int64)
    return np.linspace(low, high, 2**16)


def _display_values(path: Path, ds, pixels: np.ndarray, bits: int) -> tuple[np.ndarray, dict | None, list]:
    """Modality LUT, then VOI LUT or window, scaled to [0, 1] by the file's display range."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    voi = _voi_description(ds)
    try:
        values = apply_modality_lut(pixels, ds)
        probe = apply_modality_lut(_stored_values(ds, bits), ds)
        if voi is not None:
            values = apply_voi_lut(values, ds, index=0)
            probe = apply_voi_lut(probe, ds, index=0)
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise InvalidDataError(f"{path}: its modality or VOI LUT cannot be applied ({exc})") from None
    low, high = float(np.min(probe)), float(np.max(probe))
    if not high > low:
        raise InvalidDataError(f"{path}: the VOI maps every stored value to {low:g}; nothing to display")
    return (np.asarray(values, np.float64) - low) / (high - low), voi, [low, high]


def _voi_description(ds) -> dict | None:
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        return {"kind": "lut", "explanation": str(ds.VOILUTSequence[0].get("LUTExplanation", ""))}
    if "WindowCenter" in ds and "WindowWidth" in ds:
        first = [v[0] if ds[k].VM > 1 else v for k, v in (("WindowCenter", ds.WindowCenter),
                                                          ("WindowWidth", ds.WindowWidth))]
        return {"kind": "window", "center": float(first[0]), "width": float(first[1]),
                "function": str(ds.get("VOILUTFunction", "LINEAR"))}
    return None


def _pixel_spacing_mm(path: Path, ds) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing; a zero one means unknown."""
    rejected = []
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword not in ds:
            continue
        try:
            values = [float(v) for v in ds[keyword].value]
        except (TypeError, ValueError):
            values = []
        if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
            if rejected:
                warnings.warn(f"{path}: {rejected[0]}; using {keyword} {values} mm instead", CxrWarning, stacklevel=4)
            return (values[0], values[1]), keyword
        rejected.append(f"{keyword} is {ds[keyword].value!r}")
    if rejected:
        warnings.warn(f"{path}: {'; '.join(rejected)}: a zero or malformed spacing means unknown, so the pixel "
                      "spacing is left unset (None)", CxrWarning, stacklevel=4)
    return None, None


# ------------------------------------------------------------------------------------ PNG / JPEG
def _read_pillow(path: Path, kind: str) -> tuple[np.ndarray, None, dict]:
    _import("PIL")
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            orientation = im.getexif().get(0x0112, 1)
            im = ImageOps.exif_transpose(im)
    except UnidentifiedImageError as exc:
        raise UnsupportedFormatError(f"{path}: Pillow does not recognise it as {kind} ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptFileError(f"{path}: damaged {kind} file ({exc})") from None
    mode = im.mode
    if mode in ("CMYK", "YCbCr", "P", "PA", "HSV", "LAB"):
        im = im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB")
    pixels = np.asarray(im)
    if im.mode == "1":
        bits, grey = 1, pixels.astype(np.float64)
    elif im.mode in ("L", "LA", "RGB", "RGBA", "RGBX"):
        bits = 8
        grey = _pillow_grey(path, pixels, im.mode) / 255.0
    elif im.mode.startswith("I"):
        if pixels.min() < 0 or pixels.max() > 65535:
            raise InvalidDataError(f"{path}: {mode} pixel values {pixels.min()}..{pixels.max()} are outside 16 bits")
        bits, grey = 16, pixels.astype(np.float64) / 65535.0
    else:
        raise UnsupportedFormatError(f"{path}: Pillow image mode {mode} is not a grey or RGB radiograph")
    meta = {"bit_depth": bits, "pillow_mode": mode, "inverted": False, "exif_orientation": int(orientation),
            "pixel_spacing_source": None}
    return grey, None, meta


def _pillow_grey(path: Path, pixels: np.ndarray, mode: str) -> np.ndarray:
    """One grey channel of an L, LA, RGB or RGBA array (alpha dropped, with a warning if not opaque)."""
    if mode == "L":
        return pixels.astype(np.float64)
    if mode in ("LA", "RGBA") and pixels[..., -1].min() < 255:
        warnings.warn(f"{path}: the image is partly transparent; the alpha channel is ignored", CxrWarning,
                      stacklevel=5)
    if mode == "LA":
        return pixels[..., 0].astype(np.float64)
    return _grey(path, pixels[..., :3].astype(np.float64) / 255.0) * 255.0


def _grey(path: Path, rgb: np.ndarray) -> np.ndarray:
    """Grey from RGB in [0, 1]: one channel if the three are equal, else luminance (with a warning)."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    spread = float(np.max(rgb.max(axis=-1) - rgb.min(axis=-1)))
    if spread > 8 / 255:
        warnings.warn(f"{path}: a colour image (channels differ by up to {spread:.2f}); reduced to luminance "
                      "(ITU-R BT.601): colour annotations become grey", CxrWarning, stacklevel=5)
    return rgb @ np.array(_LUMA)


# ---------------------------------------------------------------------------------- preprocessing
def preprocessing_record(size: int, top_percent: float = COVIDNET_TOP_PERCENT) -> dict:
    """How :func:`to_model_input` prepared an image: stored in classifier checkpoints."""
    return {"method": "covidnet", "top_percent": float(top_percent), "center_crop": True, "resize": "bilinear",
            "size": int(size), "range": [0.0, 1.0],
            "reference": "Wang, Lin & Wong (2020) COVID-Net, data.py process_image_file / crop_top"}


def _covidnet_crop(array: np.ndarray, top_percent: float) -> np.ndarray:
    """Drop the top ``top_percent`` of the rows, then the centred square (COVID-Net's crops)."""
    rows = array.shape[0]
    array = array[int(rows * top_percent):]
    side = min(array.shape)
    if side < 1:
        raise ShapeError(f"an image of shape {array.shape} after cropping the top {top_percent:.0%} is empty")
    top = (array.shape[0] - side) // 2
    left = (array.shape[1] - side) // 2
    return array[top:top + side, left:left + side]


def _as_array(image, what: str = "image") -> tuple[np.ndarray, str]:
    if isinstance(image, (str, Path)):
        image = open_cxr(image)
    if isinstance(image, Volume):
        name = image._name()
        image = image.to_numpy()
    else:
        name = f"<{what} array>"
        image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ShapeError(f"{name}: a chest X-ray is one 2-D (Y, X) image, got shape {image.shape}")
    return image, name


def to_model_input(image, size: int = 480, *, top_percent: float = COVIDNET_TOP_PERCENT,
                   as_tensor: bool = False):
    """Crop and resize a chest X-ray as COVID-Net does, for a classifier or the lung segmenter.

    Follows COVID-Net (Wang, Lin & Wong 2020, "COVID-Net: a tailored deep
    convolutional neural network design for detection of COVID-19 cases from
    chest X-ray images", Sci. Rep. 10:19549; github.com/lindawangg/COVID-Net,
    ``data.py``, ``process_image_file`` and ``crop_top``): drop the top
    ``int(rows * top_percent)`` rows (8 %: labels, markers and the neck),
    take the centred square of the rest (offsets rounded down), and resize it
    bilinearly to ``size`` x ``size`` (MONAI ``Resize``, half-pixel centres
    without anti-aliasing, as OpenCV's ``INTER_LINEAR`` that COVID-Net uses).
    COVID-Net then divides 8-bit values by 255; :func:`open_cxr` images are
    already in [0, 1].  ``size=480`` is COVID-Net CXR's input, ``size=224``
    that of its smaller variants and of ImageNet-style networks.

    Parameters
    ----------
    image : Volume, ndarray or path
        A 2-D (Y, X) image in [0, 1], as :func:`open_cxr` returns (a path is opened with it).
    size : int
        Edge of the output square, in pixels.
    top_percent : float
        Share of the rows cropped off the top, in [0, 1).
    as_tensor : bool
        Return a ``torch.Tensor`` instead of a NumPy array.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, shape ``(1, size, size)`` (one channel first).  Pixel spacing
        is not kept: the resize changes it by ``side / size``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((100, 120), np.float32)
    >>> image[:8] = 1.0                       # a label strip in the top 8 % of the rows
    >>> out = to_model_input(image, size=46)
    >>> out.shape, out.dtype, float(out.max())
    ((1, 46, 46), dtype('float32'), 0.0)
    """
    from monai.transforms import Resize

    if int(size) < 1:
        raise InvalidArgumentError(f"size must be a positive number of pixels, not {size!r}")
    if not 0.0 <= float(top_percent) < 1.0:
        raise InvalidArgumentError(f"top_percent must be in [0, 1), not {top_percent!r}")
    array, _ = _as_array(image)
    square = np.ascontiguousarray(_covidnet_crop(array.astype(np.float32, copy=False), float(top_percent)))
    resize = Resize((int(size), int(size)), mode="bilinear", align_corners=False, anti_aliasing=False)
    out = torch.as_tensor(resize(torch.from_numpy(square)[None]), dtype=torch.float32).as_subclass(torch.Tensor)
    out = out.clamp_(0.0, 1.0).contiguous()
    return out if as_tensor else out.numpy()


# --------------------------------------------------------------------------------------- COVIDx
def read_covidx_labels(path) -> pandas.DataFrame:
    """Parse a COVIDx label file: one image per line, ``patient_id filename label source``, no header.

    Labels are ``normal``, ``pneumonia`` and ``COVID-19`` (three-class files)
    or ``negative`` and ``positive`` (the binary files of COVIDx CXR-3 and
    later), in any letter case; they are returned spelled as in
    :data:`THREE_CLASSES` and :data:`BINARY_CLASSES`.  Fields are separated
    by white space; a file name with spaces is read as everything between the
    first field and the last two.  Blank lines are skipped.

    Parameters
    ----------
    path : str or path-like
        The label file (``train.txt``, ``test.txt``...).

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``filename``, ``label``, ``source`` and
        ``line`` (1-based line number), one row per image.

    Raises
    ------
    InputNotFoundError
        No such file.
    CorruptFileError
        A line without four fields, or a label that is none of the above.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "test.txt"
    >>> _ = f.write_text("419639-003251 MIDRC-RICORD-1C-419639-003251-46647-0.png positive rsna\\n")
    >>> read_covidx_labels(f)[["filename", "label"]].values.tolist()
    [['MIDRC-RICORD-1C-419639-003251-46647-0.png', 'positive']]
    """
    import pandas as pd

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such COVIDx label file")
    canonical = {name.lower(): name for name in (*THREE_CLASSES, *BINARY_CLASSES)}
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: cannot be read as a text label file ({exc})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 4:
            raise CorruptFileError(f"{path}, line {number}: {line.strip()!r} has {len(fields)} fields; a COVIDx "
                                   "label line has four: patient_id filename label source")
        label = canonical.get(fields[-2].lower())
        if label is None:
            raise CorruptFileError(f"{path}, line {number}: unknown label {fields[-2]!r}; COVIDx labels are "
                                   f"{', '.join(THREE_CLASSES)} or {', '.join(BINARY_CLASSES)}")
        rows.append({"patient_id": fields[0], "filename": " ".join(fields[1:-2]), "label": label,
                     "source": fields[-1], "line": number})
    return pd.DataFrame(rows, columns=["patient_id", "filename", "label", "source", "line"])


def _classes_of(labels: Iterable[str], path: Path) -> dict[str, int]:
    found = set(labels)
    if found and found <= set(BINARY_CLASSES):
        return dict(BINARY_CLASSES)
    if found <= set(THREE_CLASSES):
        return dict(THREE_CLASSES)
    raise CorruptFileError(f"{path}: mixes three-class labels ({', '.join(sorted(found & set(THREE_CLASSES)))}) "
                           f"with binary ones ({', '.join(sorted(found & set(BINARY_CLASSES)))})")


class CovidxDataset(torch.utils.data.Dataset):
    """A COVIDx label file and its image folder as a torch Dataset of preprocessed, labelled images.

    Parameters
    ----------
    label_file : str or path-like
        COVIDx label file (:func:`read_covidx_labels`).
    image_dir : str or path-like
        Folder holding the images the file names.
    size : int
        Edge of the network input, in pixels (:func:`to_model_input`).
    classes : dict, optional
        Class name to code; default :data:`THREE_CLASSES` or
        :data:`BINARY_CLASSES`, whichever the file's labels are.  Labels not
        in it are refused.
    augment : bool
        Random MONAI augmentation of every training image, as COVID-Net's
        training: rotation up to 10 degrees, translation and zoom up to 10 %,
        horizontal flip, brightness scaled by up to 10 %.  Each image's
        randomness is seeded from ``(seed, epoch, index)``: the same every
        run, whatever the order or the DataLoader workers.
    seed : int
        Seeds the augmentation.
    strict : bool
        Raise :class:`~sxtseg.errors.InputNotFoundError` when listed images are
        missing.  Otherwise they are left out with a :class:`CxrWarning`
        giving their count and first names (and listed in ``missing``).
    transform : callable, optional
        Applied to each ``(1, size, size)`` float32 tensor after the
        augmentation (a MONAI transform, for example).

    Attributes
    ----------
    items : pandas.DataFrame
        The images present: ``patient_id``, ``filename``, ``label``,
        ``source``, ``line``, ``path`` and ``code`` (the class code).
    classes : dict
        Class name to code.
    labels : ndarray of int64
        The class code of each item, in order (for :meth:`sampler`).
    missing : list of str
        File names listed but absent.
    preprocessing : dict
        What :func:`to_model_input` does (stored in checkpoints).

    Items are dicts: ``image`` (float32 tensor ``(1, size, size)`` in [0, 1]),
    ``label`` (int) and ``path`` (str).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> label_file = make_demo_covidx(folder, per_class=2, size=64)
    >>> data = CovidxDataset(label_file, folder / "images", size=32)
    >>> len(data), data.class_counts(), data[0]["image"].shape
    (6, {'normal': 2, 'pneumonia': 2, 'COVID-19': 2}, torch.Size([1, 32, 32]))
    """

    def __init__(self, label_file, image_dir, *, size: int = 480, classes: Mapping[str, int] | None = None,
                 augment: bool = False, seed: int = 0, strict: bool = False, transform=None):
        self.label_file = Path(label_file).expanduser()
        self.image_dir = Path(image_dir).expanduser()
        if not self.image_dir.is_dir():
            raise InputNotFoundError(f"{self.image_dir}: no such image folder")
        if int(size) < 1:
            raise InvalidArgumentError(f"size must be a positive number of pixels, not {size!r}")
        self.size = int(size)
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform
        self.preprocessing = preprocessing_record(self.size)
        table = read_covidx_labels(self.label_file)
        if table.empty:
            raise InvalidDataError(f"{self.label_file}: lists no images")
        self.classes = ({str(k): int(v) for k, v in classes.items()} if classes is not None
                        else _classes_of(table["label"], self.label_file))
        unknown = sorted(set(table["label"]) - set(self.classes))
        if unknown:
            raise InvalidDataError(f"{self.label_file}: labels {unknown} are not among the classes "
                                   f"{list(self.classes)}")
        table["path"] = [str(self.image_dir / name) for name in table["filename"]]
        present = np.array([Path(p).is_file() for p in table["path"]], bool)
        self.missing = table.loc[~present, "filename"].tolist()
        if self.missing:
            self._report_missing(strict)
        self.items = table.loc[present].reset_index(drop=True)
        if self.items.empty:
            raise InputNotFoundError(f"{self.image_dir}: none of the {len(table)} images {self.label_file} "
                                     "lists is there")
        self.items["code"] = [self.classes[label] for label in self.items["label"]]
        self.labels = self.items["code"].to_numpy(np.int64)
        self._augment = _augmentation(self.size) if augment else None

    def _report_missing(self, strict: bool) -> None:
        first = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
        message = (f"{self.label_file}: {len(self.missing)} listed image(s) are missing from {self.image_dir}: "
                   f"{first}")
        if strict:
            raise InputNotFoundError(message)
        warnings.warn(message + " (left out; strict=True raises instead)", CxrWarning, stacklevel=3)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        row = self.items.iloc[index]
        image = to_model_input(open_cxr(row["path"]), self.size, as_tensor=True)
        if self._augment is not None:
            key = [self.seed, self.epoch, int(index) % len(self)]
            self._augment.set_random_state(seed=int(np.random.SeedSequence(key).generate_state(1)[0]))
            image = torch.as_tensor(self._augment(image)).as_subclass(torch.Tensor).clamp(0.0, 1.0)
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image.float(), "label": int(row["code"]), "path": str(row["path"])}

    def set_epoch(self, epoch: int) -> None:
        """Reseed the augmentation for an epoch (:func:`sxtseg.train.fit_classifier` calls it)."""
        self.epoch = int(epoch)

    def class_counts(self) -> dict[str, int]:
        """Images per class (name to count), every class listed."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(counts[code]) for name, code in self.classes.items()}

    def sampler(self, num_samples: int | None = None, seed: int | None = None):
        """A class-balanced ``WeightedRandomSampler`` over this dataset (:func:`sxtseg.train.balanced_sampler`)."""
        from ..train import balanced_sampler

        return balanced_sampler(self.labels, num_samples=num_samples, seed=self.seed if seed is None else seed)


def _augmentation(size: int):
    from monai.transforms import Compose, RandAffine, RandFlip, RandScaleIntensity

    return Compose([
        RandAffine(prob=1.0, rotate_range=(math.radians(10),), translate_range=(0.1 * size, 0.1 * size),
                   scale_range=(0.1, 0.1), mode="bilinear", padding_mode="zeros"),
        RandFlip(prob=0.5, spatial_axis=1),
        RandScaleIntensity(factors=0.1, prob=1.0),
    ])


# --------------------------------------------------------------------------------------- models
def _classifier(model, device="cpu"):
    """(network, metadata) of a classification checkpoint or loaded model."""
    from ..models import load_model

    given = model
    if not isinstance(model, torch.nn.Module):
        model = load_model(model, device=device)
    meta = getattr(model, "metadata", None) or {}
    where = str(given) if isinstance(given, (str, Path)) else "the model"
    if meta.get("task") != "classification":
        raise InvalidArgumentError(f"{where}: not a classifier checkpoint (task {meta.get('task')!r}); train one "
                                   "with sxtseg.train.fit_classifier (examples/train_cxr_classifier.py)")
    return model.to(device).eval(), meta


def _covid_class(classes: Mapping[str, int]) -> str:
    for name in COVID_CLASS_NAMES:
        if name in classes:
            return name
    raise InvalidArgumentError(f"the classifier's classes {list(classes)} have no COVID-19 class "
                               f"({' or '.join(COVID_CLASS_NAMES)})")


def _input_size(meta: dict, size: int | None) -> int:
    trained = meta.get("input", {}).get("size")
    if size is None:
        if trained is None:
            raise InvalidArgumentError("the checkpoint does not record its input size; pass size=")
        return int(trained)
    if trained is not None and int(trained) != int(size):
        raise InvalidArgumentError(f"the classifier was trained on {trained} x {trained} inputs, not {size} x {size}; "
                                   f"pass size={trained} (or size=None for the checkpoint's)")
    return int(size)


def _probabilities(net, meta: dict, image, size: int, device) -> np.ndarray:
    top = float(meta.get("input", {}).get("preprocessing", {}).get("top_percent", COVIDNET_TOP_PERCENT))
    x = to_model_input(image, size, top_percent=top, as_tensor=True)[None].to(device)
    with torch.inference_mode():
        return torch.softmax(net(x).float(), dim=1)[0].cpu().numpy()


def predict_probabilities(image, model, *, size: int | None = None, device="auto") -> dict[str, float]:
    """A classifier's probability of every class for one chest X-ray.

    Parameters
    ----------
    image : Volume, ndarray or path
        As :func:`open_cxr` returns it (a path is opened with it).
    model : torch.nn.Module or path
        A classifier checkpoint from :func:`sxtseg.train.fit_classifier`, or
        its loaded model.
    size : int, optional
        Input size; default the checkpoint's (another one is refused).
    device : str
        ``"auto"``: CUDA when available.

    Returns
    -------
    dict
        Class name to probability (softmax), summing to 1.
    """
    from ..infer import resolve_device

    device = resolve_device(device)
    net, meta = _classifier(model, device)
    probs = _probabilities(net, meta, image, _input_size(meta, size), device)
    return {name: float(probs[code]) for name, code in sorted(meta["classes"].items(), key=lambda kv: kv[1])}


def covid_score(image, model, *, size: int | None = None, device="auto") -> float:
    """The COVID-19 probability a trained classifier gives a chest X-ray: a score for ranking.

    It is the softmax probability of the class ``COVID-19`` (three-class
    models) or ``positive`` (binary models).  It ranks images for review; it
    is not a diagnosis, and no model shipped with sxtseg has been validated
    on real COVID-19 labels.

    Parameters
    ----------
    image : Volume, ndarray or path
        As :func:`open_cxr` returns it.
    model : torch.nn.Module or path
        A classifier checkpoint (:func:`sxtseg.train.fit_classifier`).
    size : int, optional
        Input size; default the checkpoint's.
    device : str
        ``"auto"``: CUDA when available.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> score = covid_score("chest.png", "runs/cxr/best.pt")  # doctest: +SKIP
    """
    probabilities = predict_probabilities(image, model, size=size, device=device)
    return probabilities[_covid_class(probabilities)]


def evaluate(model, dataset, *, batch_size: int = 16, device="auto", num_workers: int = 0) -> dict:
    """Sensitivity and positive predictive value per class, and the confusion matrix, on a labelled dataset.

    The metrics COVID-Net reports (:func:`sxtseg.train.classification_metrics`).

    Parameters
    ----------
    model : torch.nn.Module or path
        A classifier checkpoint.
    dataset : CovidxDataset
        Labelled images, prepared at the checkpoint's input size.

    Returns
    -------
    dict
        ``sensitivity``, ``ppv``, ``support`` (class name to value),
        ``accuracy``, ``mean_sensitivity``, ``confusion`` (rows the truth,
        columns the prediction), ``classes``, ``probabilities``, ``labels``.
    """
    from ..infer import resolve_device
    from ..train import evaluate_classifier

    device = resolve_device(device)
    net, meta = _classifier(model, device)
    classes = meta["classes"]
    if getattr(dataset, "classes", None) and dict(dataset.classes) != dict(classes):
        raise InvalidArgumentError(f"the dataset's classes {dataset.classes} are not the model's {classes}")
    if getattr(dataset, "size", None) is not None:
        _input_size(meta, dataset.size)
    return evaluate_classifier(net, dataset, classes=classes, batch_size=batch_size, device=device,
                               num_workers=num_workers)


# ----------------------------------------------------------------------------------- lung fields
def lung_opacity_fraction(labels, classes: Mapping[str, int]) -> float:
    """Share of the lung field that is opaque: ``opacity`` pixels over ``lung`` plus ``opacity`` pixels.

    Parameters
    ----------
    labels : array-like of int
        Class codes of a lung-field segmentation.
    classes : dict
        Class name to code; must name ``lung`` (aerated lung) and ``opacity``
        (opacified lung: consolidation, ground glass).

    Returns
    -------
    float
        In [0, 1]; NaN when no lung field was found.

    Examples
    --------
    >>> lung_opacity_fraction([[0, 1, 1, 2]], {"background": 0, "lung": 1, "opacity": 2})
    0.3333333333333333
    """
    missing = [name for name in LUNG_CLASSES if name not in classes]
    if missing:
        raise InvalidArgumentError(f"a lung-field segmenter needs the classes {', '.join(LUNG_CLASSES)}; "
                                   f"its classes {list(classes)} lack {', '.join(missing)}")
    labels = np.asarray(labels)
    lung = int(np.count_nonzero(labels == classes["lung"]))
    opaque = int(np.count_nonzero(labels == classes["opacity"]))
    return opaque / (lung + opaque) if lung + opaque else float("nan")


def lung_training_pair(image, labels, *, size: int = 480) -> tuple[Volume, Volume]:
    """An image and its lung-field labels prepared as :func:`sxtseg.train.fit` trains a 2-D segmenter.

    Both go through COVID-Net's crops (:func:`to_model_input`; the labels
    resized nearest-neighbour) and become ``(1, size, size)`` Volumes, one z
    slice each, so ``fit`` with ``TrainingConfig(model="msdnet",
    spatial_dims=2, calibration="none", classes={"background": 0, "lung": 1,
    "opacity": 2})`` trains the lung-field segmenter that
    :func:`rank_images` takes as ``lung_model``.

    Parameters
    ----------
    image : Volume, ndarray or path
        The radiograph.
    labels : Volume or ndarray of int
        Class codes of the same shape (255 where not annotated).
    size : int
        Working size, in pixels: use the ``size`` given to :func:`rank_images`.

    Returns
    -------
    (Volume, Volume)
        float32 image and uint8 labels; voxel size in mm: 1 along z, in y and
        x the radiograph's pixel spacing (1 mm when unknown: the segmenter
        does not use it) times the resize factor.
    """
    from monai.transforms import Resize

    if isinstance(image, (str, Path)):
        image = open_cxr(image)
    array, name = _as_array(image)
    codes, _ = _as_array(labels, "labels")
    if codes.shape != array.shape:
        raise ShapeError(f"{name}: labels of shape {codes.shape} do not match the image {array.shape}")
    if codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() > 255:
        raise InvalidDataError(f"{name}: labels must be integer class codes 0..255, got {codes.dtype}")
    square = _covidnet_crop(codes.astype(np.float32), COVIDNET_TOP_PERCENT)
    side = square.shape[0]
    resized = Resize((int(size), int(size)), mode="nearest")(torch.from_numpy(np.ascontiguousarray(square))[None])
    label_array = np.asarray(torch.as_tensor(resized).as_subclass(torch.Tensor).numpy(), np.uint8)
    spacing = image.voxel_size if isinstance(image, Volume) and image.voxel_size is not None else (1.0, 1.0)
    voxel = (1.0, spacing[0] * side / size, spacing[1] * side / size)
    meta = {"source": {"path": name, "reader": "sxtseg.adapters.cxr.lung_training_pair"},
            "preprocessing": preprocessing_record(size)}
    return (Volume(to_model_input(array, size), voxel_size=voxel, unit="mm", metadata=meta),
            Volume(label_array, voxel_size=voxel, unit="mm", metadata=meta))


def _lung_segmenter(lung_model, device):
    from ..models import load_model

    net = lung_model if isinstance(lung_model, torch.nn.Module) else load_model(lung_model, device=device,
                                                                                spatial_dims=2)
    meta = getattr(net, "metadata", None) or {}
    if meta.get("task", "segmentation") != "segmentation" or "classes" not in meta:
        raise InvalidArgumentError(f"{lung_model}: not a segmentation checkpoint; train the lung-field segmenter "
                                   "with sxtseg.train.fit (see lung_training_pair)")
    lung_opacity_fraction([], meta["classes"])  # refuses a segmenter without lung and opacity classes
    if int(meta.get("input", {}).get("context_slices", 0)):
        raise InvalidArgumentError(f"{lung_model}: a lung-field segmenter reads one image (context_slices=0)")
    return net.to(device).eval(), meta


def _lung_fraction(net, meta: dict, image, size: int, device) -> float:
    from ..infer import predict_array
    from ..models.checkpoint import normalization_range

    x = to_model_input(image, size)
    low, high = normalization_range(x, meta.get("intensity", {"method": "fixed", "low": 0.0, "high": 1.0}))
    normalised = ((x - low) / (high - low)).astype(np.float32)
    probs = predict_array(net, normalised, patch_size=tuple(meta["input"]["patch_size"]), spatial_dims=2, context=0,
                          device=device)
    return lung_opacity_fraction(probs.argmax(axis=0)[0], meta["classes"])


# -------------------------------------------------------------------------------------- ranking
def _expand_inputs(inputs) -> list[Path]:
    """Files as given; folders replaced by the DICOM, PNG and JPEG files in them (sorted, recursive)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise InputNotFoundError(f"{path}: no such file or folder")
        if not path.is_dir():
            paths.append(path)
            continue
        found, skipped = [], []
        for member in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            try:
                _sniff(member)
                found.append(member)
            except SxtsegError:
                skipped.append(member.name)
        if skipped:
            warnings.warn(f"{path}: {len(skipped)} file(s) that are not DICOM, PNG or JPEG were ignored: "
                          f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}", CxrWarning, stacklevel=3)
        if not found:
            raise UnsupportedFormatError(f"{path}: a folder with no DICOM, PNG or JPEG file")
        paths.extend(found)
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    if not unique:
        raise InvalidArgumentError("rank_images needs at least one input image")
    return unique


def _check_output(output_dir: Path, inputs: list[Path], overwrite: bool) -> Path:
    csv_path = output_dir / "ranking.csv"
    resolved = output_dir.resolve()
    if resolved in inputs or csv_path.resolve() in inputs:
        raise OutputExistsError(f"{output_dir}: the output would write over an input; choose another -o folder")
    if output_dir.exists():
        if not output_dir.is_dir():
            raise OutputExistsError(f"{output_dir}: exists and is not a folder")
        if not overwrite:
            raise OutputExistsError(f"{output_dir}: exists; pass overwrite=True (--overwrite) to replace its "
                                    "ranking.csv")
    return csv_path


def rank_images(inputs, model, output_dir, *, overwrite: bool = False, lung_model=None, size: int | None = 480,
                device="auto", progress: bool = True) -> pandas.DataFrame:
    """Score chest X-rays with a classifier and write them, most likely COVID-19 first, to ``ranking.csv``.

    Every image is read (:func:`open_cxr`) and scored before anything is
    written, so a bad file stops the run with an error naming it and leaves
    no partial output.  ``OUTDIR/ranking.csv`` is written atomically.

    Parameters
    ----------
    inputs : path or iterable of paths
        Image files (DICOM, PNG, JPEG), or folders: their DICOM, PNG and
        JPEG files, recursively (other files are skipped with a warning).
        The same file given twice is scored once.
    model : path or torch.nn.Module
        A classifier checkpoint (:func:`sxtseg.train.fit_classifier`).  No
        weights ship with sxtseg.
    output_dir : path
        Folder for ``ranking.csv``; created.
    overwrite : bool
        Allow an existing ``output_dir`` (its ``ranking.csv`` is replaced).
        An input is never written over.
    lung_model : path or torch.nn.Module, optional
        A 2-D lung-field segmenter with classes ``lung`` and ``opacity``
        (trained with :func:`sxtseg.train.fit` on :func:`lung_training_pair`
        pairs): adds ``lung_opacity_fraction``.
    size : int or None
        Input size in pixels (480: COVID-Net CXR); None: the checkpoint's.
        A size other than the checkpoint's is refused.
    device : str
        ``"auto"``: CUDA when available.
    progress : bool
        A tqdm bar over the images.

    Returns
    -------
    pandas.DataFrame
        One row per image, sorted by ``rank``: ``path``, ``covid_probability``,
        ``rank`` (1 = highest probability; ties keep the input order),
        ``probability_<class>`` for every class, ``pixel_spacing_y_mm`` and
        ``pixel_spacing_x_mm`` (row and column spacing, NaN when unknown) and,
        with ``lung_model``, ``lung_opacity_fraction``.

    Raises
    ------
    OutputExistsError
        ``output_dir`` exists (without ``overwrite``), or is an input.
    SxtsegError
        A bad input file (named), or a checkpoint that is not a classifier.

    Examples
    --------
    >>> table = rank_images(["a.dcm", "b.png"], "runs/cxr/best.pt", "ranked")  # doctest: +SKIP
    >>> table[["path", "covid_probability", "rank"]]  # doctest: +SKIP
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ..infer import resolve_device
    from ..io._write import write_text_atomically

    paths = _expand_inputs(inputs)
    output_dir = Path(output_dir).expanduser()
    csv_path = _check_output(output_dir, paths, overwrite)
    device = resolve_device(device)
    net, meta = _classifier(model, device)
    size = _input_size(meta, size)
    covid = _covid_class(meta["classes"])
    names = [name for name, _ in sorted(meta["classes"].items(), key=lambda kv: kv[1])]
    lung = _lung_segmenter(lung_model, device) if lung_model is not None else None
    rows = []
    for path in tqdm(paths, desc="cxr", unit="image", disable=not progress):
        image = open_cxr(path)
        probs = _probabilities(net, meta, image, size, device)
        spacing = image.voxel_size or (float("nan"), float("nan"))
        row = {"path": str(path), "covid_probability": float(probs[meta["classes"][covid]])}
        row.update({f"probability_{name}": float(probs[meta["classes"][name]]) for name in names})
        row.update(pixel_spacing_y_mm=float(spacing[0]), pixel_spacing_x_mm=float(spacing[1]))
        if lung is not None:
            row["lung_opacity_fraction"] = _lung_fraction(*lung, image, size, device)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(2, "rank", table["covid_probability"].rank(ascending=False, method="first").astype(int))
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(csv_path, table.to_csv(index=False))
    log.info("wrote %s (%d images)", csv_path, len(table))
    return table


# ------------------------------------------------------------------------------------ demo data
def make_demo_covidx(folder, *, per_class: int = 8, size: int = 96, seed: int = 0, binary: bool = False,
                     masks: bool = False) -> Path:
    """Write a tiny COVIDx-format folder of generated toy chest images, to try the training code.

    The images are cartoons, not a model of disease: a bright body with two
    dark lung fields either side of a bright mediastinum; ``pneumonia``
    images get one bright blob in one lung, ``COVID-19`` images bright
    patches low in both lungs (bilateral, peripheral), ``normal`` none.  A
    network learns to tell them apart in a few steps; that shows the
    mechanics work, nothing about real chest X-rays.

    Parameters
    ----------
    folder : path
        Gets ``images/`` (8-bit PNGs), ``train.txt`` (the COVIDx label file)
        and, with ``masks``, ``masks/`` (uint8 PNGs: 0 background, 1 lung,
        2 opacity, of the same names).
    per_class : int
        Images per class.
    size : int
        Image edge, in pixels.
    seed : int
        Seeds positions, sizes and noise.
    binary : bool
        Labels ``negative`` (normal and pneumonia images) and ``positive``
        (COVID-19 images), as COVIDx CXR-3 and later.
    masks : bool
        Also write the lung-field label images.

    Returns
    -------
    Path
        The label file.
    """
    from PIL import Image

    folder = Path(folder).expanduser()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    if masks:
        (folder / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for kind in THREE_CLASSES:
        for i in range(int(per_class)):
            image, labels = _toy_cxr(kind, int(size), rng)
            name = f"demo_{kind.lower()}_{i:03d}.png"
            Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / "images" / name)
            if masks:
                Image.fromarray(labels).save(folder / "masks" / name)
            label = ("positive" if kind == "COVID-19" else "negative") if binary else kind
            lines.append(f"demo{kind[:1]}{i:03d} {name} {label} sxtseg-demo")
    label_file = folder / "train.txt"
    label_file.write_text("\n".join(lines) + "\n")
    return label_file


def _toy_cxr(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One cartoon chest image in [0, 1] and its labels (0 background, 1 lung, 2 opacity)."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    dx, dy = rng.uniform(-0.05, 0.05, 2)
    x, y = x - dx, y - dy
    image = np.where((x / 0.9) ** 2 + (y / 1.05) ** 2 < 1, 0.6, 0.05)
    labels = np.zeros((size, size), np.uint8)
    opacity = np.zeros((size, size))
    for side in (-1, 1):
        lung = ((x - side * 0.4) / 0.27) ** 2 + ((y + 0.05) / 0.55) ** 2 < 1
        image[lung] = 0.2
        labels[lung] = 1
        blobs = []
        if kind == "COVID-19":
            blobs = [(side * rng.uniform(0.5, 0.58), rng.uniform(0.15, 0.3), rng.uniform(0.1, 0.14))]
        elif kind == "pneumonia" and side == (1 if rng.random() < 0.5 else -1):
            blobs = [(side * rng.uniform(0.3, 0.45), rng.uniform(-0.3, 0.1), rng.uniform(0.12, 0.16))]
        for bx, by, radius in blobs:
            opacity = np.maximum(opacity, np.where(lung, np.exp(-((x - bx) ** 2 + (y - by) ** 2) / radius**2), 0))
    image = image + 0.45 * opacity
    labels[(labels == 1) & (opacity > 0.5)] = 2
    image = image + rng.normal(0.0, 0.02, image.shape)
    return np.clip(image, 0.0, 1.0), labels
