"""MRC/REC/MAP tomograms (the cryo-EM/ET format).

The voxels are memory-mapped chunk by chunk: opening a file reads only its
1024-byte header (and the extended header, when there is one).  The voxel
size comes from the header (cell size over sampling, in ångström) and is
converted to nanometres.  What the reader decides, and why:

- **Byte order** from the machine stamp (bytes 212-213); voxels always come
  back in the machine's native order.  A file without the ``MAP `` tag or
  with an unknown (zero) stamp, as some SXT labs' tools write, opens with a
  warning when exactly one byte order makes the header agree with the file
  size, and is refused otherwise.
- **Modes** 0 (bytes), 1 (int16), 2 (float32), 6 (uint16) and 12 (float16)
  are read; complex modes 3 and 4 and IMOD's packed 4-bit mode 101 are
  refused with the reason.
- **Mode 0** follows IMOD: bytes are *signed* when the file carries IMOD's
  stamp with the signed flag (bit 0 of ``imodFlags``), or carries no IMOD
  stamp but declares MRC2014 (``nversion`` 20140 or later: the standard says
  signed); otherwise, IMOD's files without the flag and pre-2014 files,
  *unsigned*.  ``metadata["header"]["mode0"]`` says which rule applied.
- **Axis order** MAPC/MAPR/MAPS other than 1, 2, 3 is transposed to (z, y, x);
  the origin (Å) and the start indices are kept, in (z, y, x) order.
- **Extended headers** (``nsymbt`` bytes after the main header) are skipped;
  FEI (``FEI1``/``FEI2``) and IMOD (``nint``/``nreal``) records are decoded
  for the values worth keeping: tilt angles, stage tilt, high tension,
  pixel size.
- **Tilt series and image stacks** are refused, since sxtseg analyses
  reconstructed volumes: files named ``.st``, ``.ali``, ``.preali`` or
  ``.mrcs`` (with more than one section), files whose extended header gives
  the sections different tilt angles, and MRC2014 files (no IMOD stamp)
  whose space group 0 declares an image stack.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, UnsupportedFormatError
from ._opened import Opened
from ._source import MemmapSource, to_dask

SUFFIXES = (".mrc", ".rec", ".map", ".mrcs", ".st", ".ali", ".preali")
#: Suffixes that name projections (tilt series, aligned stacks) or image stacks, not reconstructions.
STACK_SUFFIXES = (".st", ".ali", ".preali", ".mrcs")

#: MRC data mode -> voxel dtype (mode 0 is decided per file, see :func:`_mode0_dtype`).
MODE_DTYPES = {1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}
UNSUPPORTED_MODES = {
    3: "complex int16 (a Fourier transform, not a volume of grey values)",
    4: "complex float32 (a Fourier transform, not a volume of grey values)",
    101: "IMOD's packed 4-bit integers",
}
#: IMOD writes this number at bytes 152-155 (the ASCII letters "IMOD" read as an int32).
IMOD_STAMP = 1146047817

_AXIS_LETTER = {1: "x", 2: "y", 3: "z"}


def _header_dtype(order: str) -> np.dtype:
    """The 1024-byte MRC header as a structured dtype in byte order ``order`` ('<' or '>')."""
    i4, f4, i2 = f"{order}i4", f"{order}f4", f"{order}i2"
    return np.dtype([
        ("nx", i4), ("ny", i4), ("nz", i4), ("mode", i4),
        ("nxstart", i4), ("nystart", i4), ("nzstart", i4),
        ("mx", i4), ("my", i4), ("mz", i4),
        ("cella", f4, 3), ("cellb", f4, 3),
        ("mapc", i4), ("mapr", i4), ("maps", i4),
        ("dmin", f4), ("dmax", f4), ("dmean", f4),
        ("ispg", i4), ("nsymbt", i4),
        ("extra1", "V8"), ("exttyp", "S4"), ("nversion", i4),
        ("extra2a", "V16"), ("nint", i2), ("nreal", i2), ("extra2b", "V20"),
        ("imod_stamp", i4), ("imod_flags", i4), ("extra2c", "V36"),
        ("origin", f4, 3), ("map", "S4"), ("machst", "u1", 4), ("rms", f4),
        ("nlabl", i4), ("label", "S80", 10),
    ])


def _file_order(header_bytes: bytes) -> str | None:
    """'<' or '>' from the machine stamp, or None when the stamp is not a known one."""
    first = header_bytes[212]
    if first in (0x44, 0x41):  # little-endian IEEE (0x44 0x44 or 0x44 0x41; 0x41 from old writers)
        return "<"
    if first == 0x11:
        return ">"
    return None


def _expected_size(header) -> int | None:
    """Bytes the header promises (main + extended header + voxels), or None if it makes no sense."""
    nx, ny, nz, mode, nsymbt = (int(header[k]) for k in ("nx", "ny", "nz", "mode", "nsymbt"))
    if min(nx, ny, nz) < 1 or nsymbt < 0 or (mode != 0 and mode not in MODE_DTYPES):
        return None
    itemsize = 1 if mode == 0 else np.dtype(MODE_DTYPES[mode]).itemsize
    return 1024 + nsymbt + nx * ny * nz * itemsize


def _read_header(path: Path, raw: bytes, size: int):
    """The header in the file's byte order, and the byte order, with the checks on tag and stamp."""
    order = _file_order(raw)
    has_tag = raw[208:212] == b"MAP "
    if order is not None and has_tag:
        return np.frombuffer(raw, _header_dtype(order), count=1)[0], order
    # No tag or an unknown stamp: accept only if exactly one byte order makes the header agree with the size.
    candidates = [o for o in ("<", ">") if order in (None, o)]
    agreeing = [o for o in candidates if _expected_size(np.frombuffer(raw, _header_dtype(o), count=1)[0]) == size]
    what = " and ".join(p for p, bad in (("no 'MAP ' tag at byte 208", not has_tag),
                                         (f"an unknown machine stamp {bytes(raw[212:216]).hex()}", order is None))
                        if bad)
    if len(agreeing) != 1:
        raise CorruptFileError(
            f"{path}: not an MRC file: it has {what}, and its header does not agree with the file size "
            f"({size} bytes) in {'either byte order' if len(candidates) > 1 else 'its byte order'}")
    order = agreeing[0]
    warnings.warn(f"{path}: MRC header has {what}; read as {'little' if order == '<' else 'big'}-endian, "
                  "the byte order in which the header agrees with the file size", UserWarning, stacklevel=4)
    return np.frombuffer(raw, _header_dtype(order), count=1)[0], order


def _mode0_dtype(header) -> tuple[np.dtype, str]:
    """int8 or uint8 for a mode-0 file, and the rule that decided it."""
    imod = int(header["imod_stamp"]) == IMOD_STAMP
    if imod:
        if int(header["imod_flags"]) & 1:
            return np.dtype(np.int8), "signed: IMOD file with the signed-bytes flag"
        return np.dtype(np.uint8), "unsigned: IMOD file without the signed-bytes flag"
    if int(header["nversion"]) >= 20140:
        return np.dtype(np.int8), "signed: MRC2014 file (nversion >= 20140) without an IMOD stamp"
    return np.dtype(np.uint8), "unsigned: pre-MRC2014 file without an IMOD stamp (IMOD's rule)"


def _extended_header(path: Path, header, order: str, n_sections: int) -> dict:
    """Values decoded from an FEI or IMOD extended header (empty when there is none or it is unknown)."""
    nsymbt = int(header["nsymbt"])
    if nsymbt == 0:
        return {}
    with open(path, "rb") as fh:
        fh.seek(1024)
        ext = fh.read(nsymbt)
    exttyp = bytes(header["exttyp"]).decode("ascii", "replace").strip("\x00 ")
    info: dict = {"type": exttyp or None, "bytes": nsymbt}
    if exttyp in ("FEI1", "FEI2") and len(ext) >= 4:
        record = int(np.frombuffer(ext[:4], f"{order}i4")[0])
        if record >= 172 and n_sections * record <= len(ext):
            rows = np.frombuffer(ext[: n_sections * record], np.uint8).reshape(n_sections, record)

            def f8(offset):
                return rows[:, offset:offset + 8].copy().view(f"{order}f8")[:, 0]

            info.update(tilt_angles_deg=[float(a) for a in f8(100)], beta_tilt_deg=float(f8(108)[0]),
                        high_tension_kv=float(f8(84)[0]) / 1000.0, pixel_size_nm=float(f8(156)[0]) * 1e9)
    else:
        nint, nreal = int(header["nint"]), int(header["nreal"])
        if nint > 0 and nreal & 1 and n_sections * nint <= len(ext):  # IMOD: tilt angle x 100 comes first
            rows = np.frombuffer(ext[: n_sections * nint], np.uint8).reshape(n_sections, nint)
            tilt = rows[:, :2].copy().view(f"{order}i2")[:, 0] / 100.0
            info.update(tilt_angles_deg=[float(a) for a in tilt])
    return info


def _refuse_projections(path: Path, header, nz: int, extended: dict, imod: bool) -> None:
    """Refuse tilt series and image stacks: sxtseg analyses reconstructed volumes."""
    reason = None
    tilts = extended.get("tilt_angles_deg")
    if nz > 1 and path.name.lower().endswith(STACK_SUFFIXES):
        reason = f"its suffix {path.suffix!r} names a tilt series or image stack"
    elif nz > 1 and tilts and np.ptp(tilts) > 0.5:
        reason = (f"its {extended['type'] or 'IMOD'} extended header gives its {nz} sections tilt angles from "
                  f"{min(tilts):g} to {max(tilts):g} degrees")
    elif nz > 1 and int(header["ispg"]) == 0 and int(header["nversion"]) >= 20140 and not imod:
        reason = "its MRC2014 header declares an image stack (space group 0)"
    if reason:
        raise UnsupportedFormatError(
            f"{path}: is a tilt series or image stack, not a reconstructed volume ({reason}); sxtseg segments "
            "tomograms: reconstruct it first (IMOD etomo/tilt, AreTomo, tomo3d), or, if it is a volume, "
            "save it as .mrc/.rec with space group 1")


def read_mrc(path: Path, chunks="auto") -> Opened:
    size = os.path.getsize(path)
    if size < 1024:
        raise CorruptFileError(f"{path}: only {size} bytes; an MRC file needs a 1024-byte header")
    with open(path, "rb") as fh:
        raw = fh.read(1024)
    header, order = _read_header(path, raw, size)

    mode = int(header["mode"])
    mode0_rule = None
    if mode == 0:
        dtype, mode0_rule = _mode0_dtype(header)
    elif mode in MODE_DTYPES:
        dtype = np.dtype(MODE_DTYPES[mode])
    elif mode in UNSUPPORTED_MODES:
        raise UnsupportedFormatError(f"{path}: MRC mode {mode} ({UNSUPPORTED_MODES[mode]}) is not supported; "
                                     "sxtseg reads modes 0, 1, 2, 6 and 12")
    else:
        raise UnsupportedFormatError(f"{path}: unknown MRC data mode {mode}; sxtseg reads modes 0, 1, 2, 6 and 12")
    dtype = dtype.newbyteorder(order)
    nx, ny, nz, nsymbt = (int(header[k]) for k in ("nx", "ny", "nz", "nsymbt"))
    if min(nx, ny, nz) < 1:
        raise CorruptFileError(f"{path}: the MRC header gives a shape of {nx} x {ny} x {nz} (nx, ny, nz) voxels")
    if nsymbt < 0:
        raise CorruptFileError(f"{path}: the MRC header gives a negative extended header size ({nsymbt} bytes)")
    shape = (nz, ny, nx) if nz > 1 else (ny, nx)
    offset = 1024 + nsymbt
    expected = _expected_size(header)
    if size < expected:
        raise CorruptFileError(
            f"{path}: truncated: the header promises {nx} x {ny} x {nz} voxels of {dtype.name} "
            f"({expected} bytes with the header) but the file has {size} bytes")
    if size > expected:
        raise CorruptFileError(
            f"{path}: the header (shape {nx} x {ny} x {nz}, {dtype.name}) disagrees with the file size: "
            f"{size - expected} bytes more than expected ({expected})")

    imod = int(header["imod_stamp"]) == IMOD_STAMP
    extended = _extended_header(path, header, order, nz)
    _refuse_projections(path, header, nz, extended, imod)

    source = MemmapSource(path, shape, dtype, offset=offset)
    source.reader = "mrc"
    data = to_dask(source, chunks)
    mapc, mapr, maps = (int(header[k]) for k in ("mapc", "mapr", "maps"))
    file_axes = "yx"
    if data.ndim == 3:
        # sections are stored along axis `maps`, rows along `mapr`, columns along `mapc`
        file_axes = "".join(_AXIS_LETTER.get(a, "?") for a in (maps, mapr, mapc))
        if sorted(file_axes) != ["x", "y", "z"]:
            raise CorruptFileError(f"{path}: invalid axis order MAPC/MAPR/MAPS = {mapc}/{mapr}/{maps}")
        if file_axes != "zyx":
            data = data.transpose([file_axes.index(a) for a in "zyx"])

    cella = np.asarray(header["cella"], float)[::-1]  # (z, y, x) Å
    sampling = np.array([int(header["mz"]), int(header["my"]), int(header["mx"])])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        size_angstrom = np.where(sampling > 0, cella / np.maximum(sampling, 1), 0.0)
    axes = "zyx" if data.ndim == 3 else "yx"
    voxel_size, missing = None, None
    if np.all(size_angstrom[-data.ndim:] > 0) and np.all(np.isfinite(size_angstrom)):
        voxel_size = tuple(float(v) / 10.0 for v in size_angstrom[-data.ndim:])  # Å -> nm
    else:
        missing = f"the MRC header has no voxel size (cell {tuple(cella[::-1])} Å, sampling {tuple(sampling[::-1])})"
    origin = np.asarray(header["origin"], float)  # (x, y, z) Å
    start = {"x": int(header["nxstart"]), "y": int(header["nystart"]), "z": int(header["nzstart"])}
    # nxstart/nystart/nzstart count columns, rows and sections: the axes MAPC, MAPR, MAPS name
    start_by_axis = dict(zip([_AXIS_LETTER.get(a, "?") for a in (mapc, mapr, maps)],
                             [start["x"], start["y"], start["z"]]))
    nlabl = max(0, min(int(header["nlabl"]), 10))
    metadata = {
        "voxel_size_missing": missing,
        "header": {
            "mode": mode,
            "mode0": mode0_rule,
            "byte_order": "little" if order == "<" else "big",
            "nx_ny_nz": [nx, ny, nz],
            "mx_my_mz": [int(header["mx"]), int(header["my"]), int(header["mz"])],
            "cella_angstrom": [float(c) for c in np.asarray(header["cella"], float)],
            "mapc_mapr_maps": [mapc, mapr, maps],
            "origin_angstrom": [float(o) for o in origin],
            "origin_zyx_nm": [float(o) / 10.0 for o in origin[::-1]],
            "start_voxel_zyx": [start_by_axis.get(a, 0) for a in "zyx"],
            "space_group": int(header["ispg"]),
            "nversion": int(header["nversion"]),
            "imod": imod,
            "dmin_dmax_dmean": [float(header["dmin"]), float(header["dmax"]), float(header["dmean"])],
            "extended_header_bytes": nsymbt,
            "extended_header": extended or None,
            "labels": [bytes(label).decode("ascii", "replace").strip() for label in header["label"][:nlabl]],
        },
    }
    return Opened(data=data, axes=axes, voxel_size=voxel_size, unit="nm", metadata=metadata)
