"""MRC reader: IMOD's byte rule, modes, extended headers, tilt series, byte order, headers without a tag.

Files are written with mrcfile (an independent implementation of the format)
and then edited byte by byte where a writer would have done something
mrcfile does not (an IMOD stamp, a big-endian file, no ``MAP `` tag).
"""

from __future__ import annotations

import struct
import warnings

import mrcfile
import mrcfile.dtypes
import numpy as np
import pytest

from sxtseg import measure, open_volume
from sxtseg.errors import CorruptFileError, UnsupportedFormatError

IMOD_STAMP = 1146047817


def mrc(path, data, *, voxel_angstrom=300.0, extended: bytes | None = None, exttyp: bytes = b"", **fields):
    """An MRC file written by mrcfile, then ``fields`` (header names) set in its header."""
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel_angstrom
        if extended is not None:
            m.set_extended_header(np.frombuffer(extended, np.uint8))
            m.header.exttyp = exttyp
        for name, value in fields.items():
            setattr(m.header, name, value)
    return path


def poke(path, offset: int, fmt: str, *values) -> None:
    """Overwrite bytes at ``offset`` with ``struct.pack(fmt, *values)``."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack(fmt, *values))


def byte_mrc(tmp_path, name, *, stamp: int = 0, flags: int = 0, nversion: int = 20141):
    """A mode-0 file holding the byte 200 (and 5), with IMOD's stamp/flags and nversion as given."""
    path = mrc(tmp_path / name, np.array([[[200, 5], [200, 5]]] * 2, np.uint8).view(np.int8))
    poke(path, 108, "<i", nversion)
    poke(path, 152, "<ii", stamp, flags)
    return path


# ------------------------------------------------------------------ mode 0 (bytes)


def test_imod_byte_file_without_signed_flag_reads_unsigned(tmp_path):
    # the failure: IMOD writes unsigned bytes without its signed flag; byte 200 came back as -56
    vol = open_volume(byte_mrc(tmp_path, "imod.mrc", stamp=IMOD_STAMP, flags=0))
    assert vol.dtype == np.uint8
    assert vol.to_numpy().max() == 200
    assert "unsigned" in vol.metadata["header"]["mode0"]


def test_imod_byte_file_with_signed_flag_reads_signed(tmp_path):
    vol = open_volume(byte_mrc(tmp_path, "imod_signed.mrc", stamp=IMOD_STAMP, flags=1))
    assert vol.dtype == np.int8
    assert vol.to_numpy().min() == -56


def test_pre_2014_byte_file_without_stamp_reads_unsigned_and_mrc2014_signed(tmp_path):
    old = open_volume(byte_mrc(tmp_path, "old.mrc", nversion=0))
    assert old.dtype == np.uint8 and old.to_numpy().max() == 200
    new = open_volume(byte_mrc(tmp_path, "new.mrc", nversion=20140))
    assert new.dtype == np.int8 and new.to_numpy().min() == -56  # MRC2014: mode 0 is signed


# ------------------------------------------------------------------ modes


@pytest.mark.parametrize("mode, what", [(3, "complex int16"), (4, "complex float32")])
def test_complex_modes_are_refused_clearly(tmp_path, mode, what):
    data = np.zeros((2, 4, 4), np.complex64)
    path = mrc(tmp_path / f"fft{mode}.mrc", data)
    if mode == 3:  # mrcfile writes complex64 as mode 4: make it mode 3 with the matching size
        poke(path, 12, "<i", 3)
        with open(path, "r+b") as fh:
            fh.truncate(1024 + data.size * 4)
    with pytest.raises(UnsupportedFormatError, match=rf"fft{mode}\.mrc.*mode {mode} \({what}"):
        open_volume(path)


def test_unknown_mode_is_refused_naming_it(tmp_path):
    path = mrc(tmp_path / "m.mrc", np.zeros((2, 4, 4), np.float32))
    poke(path, 12, "<i", 9)
    with pytest.raises(UnsupportedFormatError, match=r"m\.mrc: unknown MRC data mode 9"):
        open_volume(path)


# ------------------------------------------------------------------ tilt series and image stacks


def test_tilt_series_suffix_is_refused(tmp_path):
    # the failure: `sxtseg run tilt.st` segmented projections
    for suffix in (".st", ".ali", ".mrcs"):
        path = mrc(tmp_path / f"tilt{suffix}", np.zeros((5, 8, 8), np.float32))
        with pytest.raises(UnsupportedFormatError, match=rf"tilt\{suffix}: is a tilt series.*reconstruct it"):
            open_volume(path)


def fei_extended_header(tilts, pixel_m=3e-9) -> bytes:
    records = []
    for tilt in tilts:
        record = bytearray(768)
        struct.pack_into("<ii", record, 0, 768, 1)
        struct.pack_into("<d", record, 84, 300000.0)  # high tension, V
        struct.pack_into("<d", record, 100, tilt)  # alpha tilt, degrees
        struct.pack_into("<d", record, 156, pixel_m)  # pixel size x, m
        records.append(bytes(record))
    return b"".join(records)


def test_fei_extended_header_with_a_tilt_range_is_refused_as_tilt_series(tmp_path):
    tilts = np.linspace(-60, 60, 5)
    path = mrc(tmp_path / "stack.mrc", np.zeros((5, 8, 8), np.float32), extended=fei_extended_header(tilts),
               exttyp=b"FEI1")
    with pytest.raises(UnsupportedFormatError, match=r"stack\.mrc.*FEI1 extended header.*-60 to 60 degrees"):
        open_volume(path)


def test_fei_extended_header_of_a_volume_is_skipped_and_kept_in_metadata(tmp_path):
    data = np.arange(5 * 8 * 8, dtype=np.float32).reshape(5, 8, 8)
    path = mrc(tmp_path / "vol.mrc", data, extended=fei_extended_header([0.0] * 5), exttyp=b"FEI1")
    vol = open_volume(path)
    np.testing.assert_array_equal(vol.to_numpy(), data)  # the 3840 bytes of extended header are skipped
    ext = vol.metadata["header"]["extended_header"]
    assert ext["type"] == "FEI1" and ext["bytes"] == 5 * 768
    assert ext["high_tension_kv"] == pytest.approx(300.0)
    assert ext["pixel_size_nm"] == pytest.approx(3.0)


def test_imod_extended_header_with_tilt_angles_is_refused(tmp_path):
    tilts = (np.array([-40.0, -20.0, 0.0, 20.0]) * 100).astype("<i2")
    path = mrc(tmp_path / "imod.mrc", np.zeros((4, 8, 8), np.float32), extended=tilts.tobytes(), exttyp=b"SERI")
    poke(path, 128, "<hh", 2, 1)  # nint: 2 bytes per section; nreal: bit 1, tilt angle
    poke(path, 152, "<i", IMOD_STAMP)
    with pytest.raises(UnsupportedFormatError, match=r"imod\.mrc.*tilt angles from -40 to 20 degrees"):
        open_volume(path)


def test_mrc2014_image_stack_space_group_is_refused(tmp_path):
    path = mrc(tmp_path / "images.mrc", np.zeros((3, 8, 8), np.float32), ispg=0)
    with pytest.raises(UnsupportedFormatError, match=r"space group 0"):
        open_volume(path)
    # an IMOD file with space group 0 is a volume (IMOD writes 0 for reconstructions too)
    poke(path, 152, "<i", IMOD_STAMP)
    assert open_volume(path).shape == (3, 8, 8)


# ------------------------------------------------------------------ byte order


def big_endian_copy(src, dst):
    """``src`` rewritten big-endian: header fields and voxels byte-swapped, machine stamp 0x11 0x11."""
    raw = open(src, "rb").read()
    header = np.frombuffer(raw[:1024], mrcfile.dtypes.HEADER_DTYPE.newbyteorder("<")).copy()
    big = header.astype(mrcfile.dtypes.HEADER_DTYPE.newbyteorder(">"))
    big["machst"] = np.frombuffer(b"\x11\x11\x00\x00", np.uint8)
    voxels = np.frombuffer(raw[1024:], "<f4").astype(">f4")
    with open(dst, "wb") as fh:
        fh.write(big.tobytes() + voxels.tobytes())
    return dst


def test_big_endian_mrc_reads_native_and_measures(tmp_path):
    # the failure: big-endian voxels segmented, then measure() failed with a raw Numba TypingError
    data = np.zeros((6, 10, 10), np.float32)
    data[2:4, 3:7, 3:7] = 1.0
    big = big_endian_copy(mrc(tmp_path / "le.mrc", data), tmp_path / "be.mrc")
    with mrcfile.open(big) as check:  # mrcfile agrees that the file is a valid big-endian MRC
        assert check.data.dtype.byteorder == ">"
    vol = open_volume(big)
    assert vol.dtype.isnative and vol.metadata["header"]["byte_order"] == "big"
    array = vol.to_numpy()
    assert array.dtype.isnative
    np.testing.assert_array_equal(array, data)
    labels = vol.with_data((vol.data > 0.5).astype(np.uint8))
    table = measure(labels, vol)
    assert len(table) == 1 and table["voxel_count"].iloc[0] == 32 and table["intensity_mean"].iloc[0] == 1.0


def test_big_endian_npy_and_array_become_native(tmp_path):
    from sxtseg import Volume

    data = np.arange(60, dtype=">f4").reshape(3, 4, 5)
    np.save(tmp_path / "be.npy", data)
    vol = open_volume(tmp_path / "be.npy", voxel_size=30.0)
    assert vol.dtype == np.float32 and vol.dtype.isnative
    assert vol.to_numpy().dtype.isnative
    in_memory = Volume(data, voxel_size=30.0)
    assert in_memory.dtype.isnative and in_memory.to_numpy().dtype.isnative
    np.testing.assert_array_equal(in_memory.to_numpy(), data)


# ------------------------------------------------------------------ headers without tag or stamp


def test_mrc_without_map_tag_and_machine_stamp_opens_with_a_warning(tmp_path):
    data = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    path = mrc(tmp_path / "lab.mrc", data)
    poke(path, 208, "<4s4s", b"\0\0\0\0", b"\0\0\0\0")
    with pytest.warns(UserWarning, match=r"lab\.mrc: MRC header has no 'MAP ' tag .* unknown machine stamp"):
        vol = open_volume(path)
    np.testing.assert_array_equal(vol.to_numpy(), data)
    assert vol.voxel_size == pytest.approx((30.0, 30.0, 30.0))


def test_mrc_without_tag_whose_header_disagrees_with_the_size_is_refused(tmp_path):
    path = mrc(tmp_path / "junk.mrc", np.zeros((4, 6, 8), np.float32))
    poke(path, 208, "<4s4s", b"\0\0\0\0", b"\0\0\0\0")
    with open(path, "ab") as fh:
        fh.write(b"\0" * 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CorruptFileError, match=r"junk\.mrc: not an MRC file: it has no 'MAP ' tag"):
            open_volume(path)


# ------------------------------------------------------------------ axis order and origin


def test_emdb_style_axis_order_and_origin(tmp_path):
    # An EMDB-style header (as X-PLOR/CCP4 conversions write): columns along y, rows along x, sections
    # along z (MAPC/MAPR/MAPS = 2/1/3), a start index per axis and an origin in Å.
    stored = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)  # (sections z, rows x, columns y)
    path = mrc(tmp_path / "emd.map", stored, mapc=2, mapr=1, maps=3, nxstart=-2, nystart=7, nzstart=1,
               origin=(12.5, -30.0, 600.0))
    vol = open_volume(path)
    assert vol.shape == (3, 5, 4)  # (z, y, x)
    np.testing.assert_array_equal(vol.to_numpy(), stored.transpose(0, 2, 1))
    header = vol.metadata["header"]
    assert header["origin_zyx_nm"] == pytest.approx([60.0, -3.0, 1.25])
    # nxstart counts columns (y here), nystart rows (x), nzstart sections (z)
    assert header["start_voxel_zyx"] == [1, -2, 7]


def test_real_emdb_header_with_permuted_axes_symmetry_records_and_start_indices(tmp_path):
    # The header of EMD-3001 as deposited in EMDB (MicroED map of an alpha-synuclein peptide; the file is
    # in mrcfile's test data): columns along z, rows along x, sections along y (MAPC/MAPR/MAPS = 3/1/2),
    # start indices 0/-21/-12, 160 bytes of symmetry records (space group 4, P21), nversion 0. The voxels
    # here are random; the header values are the deposited ones.
    rng = np.random.default_rng(3001)
    stored = rng.random((25, 43, 73), dtype=np.float32)  # (sections, rows, columns) as the file stores them
    symmetry = b"X,Y,Z".ljust(80) + b"-X,Y+1/2,-Z".ljust(80)
    path = tmp_path / "EMD-3001.map"
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(stored)
        m.set_extended_header(np.frombuffer(symmetry, np.uint8))
        h = m.header
        h.mapc, h.mapr, h.maps = 3, 1, 2
        h.nxstart, h.nystart, h.nzstart = 0, -21, -12
        h.mx, h.my, h.mz = 40, 12, 72
        h.cella = (17.93, 4.71, 33.03)
        h.ispg = 4
        h.nversion = 0
        h.exttyp = b"\0\0\0\0"
    vol = open_volume(path)
    assert vol.shape == (73, 25, 43)  # (z, y, x)
    np.testing.assert_array_equal(vol.to_numpy(), stored.transpose(2, 0, 1))  # out[z, y, x] = stored[y, x, z]
    assert vol.voxel_size == pytest.approx((33.03 / 72 / 10, 4.71 / 12 / 10, 17.93 / 40 / 10))
    header = vol.metadata["header"]
    assert header["start_voxel_zyx"] == [0, -12, -21]
    assert header["space_group"] == 4 and header["extended_header_bytes"] == 160
    assert header["extended_header"] == {"type": None, "bytes": 160}  # symmetry records: skipped, not decoded
