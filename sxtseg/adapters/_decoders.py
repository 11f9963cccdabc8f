"""Compressed DICOM pixel data: refuse early, naming what to install, when pydicom cannot decode it here."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsupportedFormatError

__all__ = ["check_decoder"]

#: What to install for each family of compressed transfer syntaxes (pydicom's plugins).
_DECODER_PACKAGES = {
    "JPEG 2000": "pylibjpeg pylibjpeg-openjpeg",
    "JPEG-LS": "pylibjpeg pylibjpeg-libjpeg",
    "JPEG": "pylibjpeg pylibjpeg-libjpeg",
    "RLE": "pylibjpeg pylibjpeg-rle",
    "Deflate": "(zlib, part of Python)",
}


def check_decoder(path: Path, ds) -> None:
    """Refuse a compressed transfer syntax pydicom cannot decode here, naming what to install."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedFormatError(
            f"{path}: pixel data compressed as {syntax.name} ({syntax}), which no pydicom decoder reads; "
            "convert it to an uncompressed transfer syntax first (e.g. `gdcmconv --raw`)") from exc
    if decoder.is_available:
        return
    family = next((k for k in _DECODER_PACKAGES if syntax.name.startswith(k)), None)
    install = _DECODER_PACKAGES.get(family, "a pydicom pixel-data plugin")
    raise UnsupportedFormatError(
        f"{path}: pixel data compressed as {syntax.name} and no decoder for it is installed; "
        f"pip install {install} (or pip install \"sxtseg[ct]\"). pydicom's options: "
        + "; ".join(decoder.missing_dependencies))
