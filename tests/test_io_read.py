"""open_volume: every reader round-trips data and voxel size; every bad case names the file."""

from __future__ import annotations

import os
import pickle
import warnings

import dask
import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

from sxtseg import open_volume
from sxtseg.errors import (
    AmbiguousDatasetError,
    CorruptFileError,
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    ShapeError,
    SxtsegError,
    UnsupportedFormatError,
)

# ---------------------------------------------------------------- writers used by the tests


def write_mrc(path, data, voxel_size_angstrom=(300.0, 300.0, 400.0)):
    """voxel_size_angstrom is (x, y, z) as MRC stores it."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if voxel_size_angstrom is not None:
            mrc.voxel_size = voxel_size_angstrom
    return path


def write_imagej_tiff(path, data, xy_um=0.03, z_um=0.04):
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / xy_um, 1 / xy_um), metadata={"spacing": z_um, "unit": "micron", "axes": "ZYX"}
    )
    return path


def write_ome_tiff(path, data, sizes=(0.04, 0.03, 0.03), unit="µm"):
    z, y, x = sizes
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeZ": z, "PhysicalSizeY": y, "PhysicalSizeX": x,
            "PhysicalSizeZUnit": unit, "PhysicalSizeYUnit": unit, "PhysicalSizeXUnit": unit,
        },
    )
    return path


def write_ome_zarr_04(path, data, scale=(40.0, 30.0, 30.0), unit="nanometer"):
    """A minimal NGFF 0.4 image written by hand with zarr (not by sxtseg)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    levels = [data, data[::2, ::2, ::2]]
    datasets = []
    for i, level in enumerate(levels):
        arr = root.create_array(str(i), shape=level.shape, chunks=(4, 16, 16), dtype=level.dtype,
                                chunk_key_encoding={"name": "v2", "separator": "/"})
        arr[:] = level
        datasets.append({"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": [s * 2**i for s in scale]}]})
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a, "type": "space", "unit": unit} for a in "zyx"],
        "datasets": datasets,
    }]
    return path


def write_ome_zarr_05_5d(path, data, scale=(40.0, 30.0, 30.0)):
    """An NGFF 0.5 (Zarr v3) image with singleton t and c axes, as many microscopes write."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    arr = root.create_array("s0", shape=(1, 1, *data.shape), chunks=(1, 1, 8, 16, 16), dtype=data.dtype)
    arr[:] = data[None, None]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{
            "axes": [{"name": "t", "type": "time", "unit": "second"}, {"name": "c", "type": "channel"}]
            + [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
            "datasets": [{"path": "s0", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0, *[s / 1000 for s in scale]]}]}],
        }],
    }
    return path


# ---------------------------------------------------------------- round trips


def test_mrc_round_trip_with_voxel_size_in_nm(tmp_path, small_volume):
    path = write_mrc(tmp_path / "cell.mrc", small_volume)
    vol = open_volume(path)
    assert vol.voxel_size == pytest.approx((40.0, 30.0, 30.0))  # Å (x, y, z) -> nm (z, y, x)
    assert vol.unit == "nm" and vol.axes == "zyx"
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    assert vol.metadata["source"]["reader"] == "mrc"
    assert vol.metadata["header"]["mode"] == 2


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16, np.float32])
def test_mrc_dtypes(tmp_path, dtype, rng):
    data = (rng.random((5, 9, 7)) * 100).astype(dtype)
    vol = open_volume(write_mrc(tmp_path / "d.rec", data))
    assert vol.dtype == data.dtype
    np.testing.assert_array_equal(vol.to_numpy(), data)


def test_mrc_with_permuted_axes_is_reoriented(tmp_path, small_volume):
    path = write_mrc(tmp_path / "p.mrc", small_volume)
    with mrcfile.open(path, mode="r+") as mrc:
        # declare that sections run along y and rows along z: the file stores (y, z, x)
        mrc.header.mapr, mrc.header.maps = 3, 2
    vol = open_volume(path)
    assert vol.shape == (40, 12, 56)
    np.testing.assert_array_equal(vol.to_numpy(), small_volume.transpose(1, 0, 2))


def test_mrc_without_voxel_size_warns_and_gives_none(tmp_path, small_volume):
    path = write_mrc(tmp_path / "nosize.mrc", small_volume, voxel_size_angstrom=(0.0, 0.0, 0.0))
    with pytest.warns(UserWarning, match="no voxel size"):
        vol = open_volume(path)
    assert vol.voxel_size is None
    # an explicit voxel size wins and the file's (missing) one is not invented
    vol = open_volume(path, voxel_size=25.0)
    assert vol.voxel_size == (25.0, 25.0, 25.0)


def test_imagej_tiff_round_trip(tmp_path, small_volume):
    vol = open_volume(write_imagej_tiff(tmp_path / "stack.tif", small_volume))
    assert vol.voxel_size == pytest.approx((40.0, 30.0, 30.0), rel=1e-6)
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    assert vol.metadata["tiff"]["voxel_size_from"] == "ImageJ tags"


@pytest.mark.parametrize("unit, factor", [("µm", 1000.0), ("nm", 1.0)])
def test_ome_tiff_physical_size(tmp_path, small_volume, unit, factor):
    sizes = (0.04, 0.03, 0.03) if unit == "µm" else (40.0, 30.0, 30.0)
    vol = open_volume(write_ome_tiff(tmp_path / "cell.ome.tif", small_volume, sizes, unit))
    assert vol.voxel_size == pytest.approx(tuple(s * factor for s in sizes))
    assert vol.metadata["tiff"]["voxel_size_from"] == "OME PhysicalSize"
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_plain_tiff_has_no_voxel_size(tmp_path, small_volume):
    tifffile.imwrite(tmp_path / "plain.tiff", small_volume)
    with pytest.warns(UserWarning, match="voxel size"):
        vol = open_volume(tmp_path / "plain.tiff")
    assert vol.voxel_size is None
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_compressed_tiff_reads_by_pages(tmp_path, small_volume):
    tifffile.imwrite(tmp_path / "z.tif", small_volume, compression="zlib")
    with pytest.warns(UserWarning):
        vol = open_volume(tmp_path / "z.tif", chunks=(5, 40, 56))
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_folder_of_numbered_tiffs_in_numeric_order(tmp_path, small_volume):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(small_volume.shape[0]):  # slice_2 must come before slice_10
        tifffile.imwrite(folder / f"slice_{z}.tif", small_volume[z])
    with pytest.warns(UserWarning, match="voxel size"):
        vol = open_volume(folder)
    assert vol.shape == small_volume.shape
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    np.testing.assert_array_equal(vol[3:9, 10:20].to_numpy(), small_volume[3:9, 10:20])


def test_folder_with_a_slice_of_another_shape_names_it(tmp_path, small_volume):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(4):
        tifffile.imwrite(folder / f"s{z:03d}.tif", small_volume[z])
    tifffile.imwrite(folder / "s004.tif", small_volume[4, :30])
    with pytest.raises(ShapeError, match="s004.tif"):
        open_volume(folder)


def test_folder_with_unnumbered_file_is_refused(tmp_path, small_volume):
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s1.tif", small_volume[0])
    tifffile.imwrite(folder / "notes.tif", small_volume[1])
    with pytest.raises(UnsupportedFormatError, match="notes.tif"):
        open_volume(folder)


def test_ome_zarr_04_levels_and_scale(tmp_path, small_volume):
    path = write_ome_zarr_04(tmp_path / "img.ome.zarr", small_volume)
    vol = open_volume(path)
    assert vol.voxel_size == (40.0, 30.0, 30.0) and vol.unit == "nm"
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    level1 = open_volume(path, level=1)
    assert level1.voxel_size == (80.0, 60.0, 60.0)
    np.testing.assert_array_equal(level1.to_numpy(), small_volume[::2, ::2, ::2])
    assert vol.chunks[0][0] % 4 == 0  # aligned with the zarr chunks
    with pytest.raises(InvalidArgumentError, match="level=5 requested but the pyramid has 2 levels"):
        open_volume(path, level=5)
    np.testing.assert_array_equal(open_volume(path, level=-1).to_numpy(), small_volume[::2, ::2, ::2])


def test_ome_zarr_05_drops_singleton_t_and_c(tmp_path, small_volume):
    path = write_ome_zarr_05_5d(tmp_path / "img.zarr", small_volume)
    vol = open_volume(path)
    assert vol.shape == small_volume.shape
    assert vol.voxel_size == pytest.approx((0.04, 0.03, 0.03)) and vol.unit == "um"
    assert vol.metadata["ome"]["ngff_version"] == "0.5"
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_ome_zarr_with_channels_is_refused(tmp_path, small_volume):
    root = zarr.open_group(str(tmp_path / "c.zarr"), mode="w", zarr_format=2)
    root.create_array("0", shape=(2, *small_volume.shape), dtype="f4", chunks=(1, 6, 20, 28))
    root.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"}]
                                  + [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
                                  "datasets": [{"path": "0", "coordinateTransformations": [
                                      {"type": "scale", "scale": [1, 30, 30, 30]}]}]}]
    with pytest.raises(ShapeError, match="2 channels"):
        open_volume(tmp_path / "c.zarr")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_arrays(tmp_path, small_volume, zarr_format):
    arr = zarr.create_array(str(tmp_path / "a.zarr"), shape=small_volume.shape, chunks=(5, 16, 16),
                            dtype="f4", zarr_format=zarr_format)
    arr[:] = small_volume
    arr.attrs.update({"voxel_size": [40, 30, 30], "unit": "nm"})
    vol = open_volume(tmp_path / "a.zarr")
    assert vol.voxel_size == (40.0, 30.0, 30.0)
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_zarr_group_with_several_arrays_lists_them(tmp_path, small_volume):
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    root.create_array("raw", data=small_volume)
    root.create_array("mask", data=small_volume > 0.5)
    with pytest.raises(AmbiguousDatasetError, match="mask, raw"):
        open_volume(tmp_path / "g.zarr")
    with pytest.warns(UserWarning):
        vol = open_volume(tmp_path / "g.zarr", dataset="raw")
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_hdf5_dataset_selection_and_element_size(tmp_path, small_volume):
    path = tmp_path / "cell.h5"
    with h5py.File(path, "w") as fh:
        d = fh.create_dataset("volumes/raw", data=small_volume, chunks=(4, 20, 28))
        d.attrs["element_size_um"] = [0.04, 0.03, 0.03]
        fh.create_dataset("volumes/labels", data=(small_volume > 0.5).astype(np.uint8))
        fh.create_dataset("meta/angles", data=np.arange(10.0))
    with pytest.raises(AmbiguousDatasetError) as err:
        open_volume(path)
    assert "/volumes/labels" in str(err.value) and "/volumes/raw" in str(err.value) and str(path) in str(err.value)
    vol = open_volume(path, dataset="/volumes/raw")
    assert vol.voxel_size == pytest.approx((40.0, 30.0, 30.0))
    assert vol.chunks[0][0] % 4 == 0
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    with pytest.raises(AmbiguousDatasetError, match="no dataset"):
        open_volume(path, dataset="/nope")


def test_hdf5_single_dataset_is_chosen(tmp_path, small_volume):
    with h5py.File(tmp_path / "one.hdf5", "w") as fh:
        fh["data"] = small_volume
    with pytest.warns(UserWarning):
        vol = open_volume(tmp_path / "one.hdf5")
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_memory_mapped(tmp_path, small_volume, order):
    np.save(tmp_path / "v.npy", np.asarray(small_volume, order=order))
    vol = open_volume(tmp_path / "v.npy", voxel_size=(40, 30, 30), chunks=(5, 17, 56))
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    np.testing.assert_array_equal(vol[2:7, 3:30].to_numpy(), small_volume[2:7, 3:30])


def test_2d_images_open_with_ndim_2(tmp_path, rng):
    image = rng.random((30, 40)).astype(np.float32)
    np.save(tmp_path / "img.npy", image)
    vol = open_volume(tmp_path / "img.npy", ndim=2, voxel_size=0.2, unit="mm")
    assert vol.axes == "yx" and vol.voxel_size == (0.2, 0.2) and vol.unit == "mm"


@pytest.mark.parametrize(
    "maker",
    [
        lambda p, d: write_mrc(p / "x.mrc", d),
        lambda p, d: write_imagej_tiff(p / "x.tif", d),
        lambda p, d: write_ome_zarr_04(p / "x.ome.zarr", d),
    ],
    ids=["mrc", "tiff", "zarr"],
)
def test_sources_pickle_for_distributed_workers(tmp_path, small_volume, maker):
    vol = open_volume(maker(tmp_path, small_volume))
    clone = pickle.loads(pickle.dumps(vol.data))
    # a pickled graph holds the path, not the voxels
    assert len(pickle.dumps(vol.data)) < small_volume.nbytes / 4
    np.testing.assert_array_equal(clone.compute(scheduler="processes" if os.name != "nt" else "sync"), small_volume)


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope.mrc"):
        open_volume(tmp_path / "nope.mrc")


def test_unknown_suffix(tmp_path):
    (tmp_path / "cell.xyz").write_bytes(b"12345")
    with pytest.raises(UnsupportedFormatError, match=r"cell\.xyz.*unknown file type"):
        open_volume(tmp_path / "cell.xyz")


def test_truncated_mrc(tmp_path, small_volume):
    path = write_mrc(tmp_path / "t.mrc", small_volume)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(size - 1000)
    with pytest.raises(CorruptFileError, match=r"t\.mrc: truncated"):
        open_volume(path)


def test_mrc_header_disagrees_with_file_size(tmp_path, small_volume):
    path = write_mrc(tmp_path / "long.mrc", small_volume)
    with open(path, "ab") as fh:
        fh.write(b"\0" * 4096)
    with pytest.raises(CorruptFileError, match=r"long\.mrc: the header .* disagrees with the file size"):
        open_volume(path)


def test_mrc_with_garbage_header(tmp_path):
    (tmp_path / "g.mrc").write_bytes(os.urandom(2048))
    with pytest.raises(CorruptFileError, match=r"g\.mrc"):
        open_volume(tmp_path / "g.mrc")


def test_tiny_mrc(tmp_path):
    (tmp_path / "tiny.mrc").write_bytes(b"MAP ")
    with pytest.raises(CorruptFileError, match="1024-byte header"):
        open_volume(tmp_path / "tiny.mrc")


def test_truncated_tiff(tmp_path, small_volume):
    path = write_imagej_tiff(tmp_path / "t.tif", small_volume)
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CorruptFileError, match=r"t\.tif"):
        open_volume(path)


def test_not_a_tiff(tmp_path):
    (tmp_path / "fake.tif").write_bytes(b"this is not a tiff file at all")
    with pytest.raises(CorruptFileError, match=r"fake\.tif: not a readable TIFF"):
        open_volume(tmp_path / "fake.tif")


def test_truncated_npy(tmp_path, small_volume):
    np.save(tmp_path / "t.npy", small_volume)
    with open(tmp_path / "t.npy", "r+b") as fh:
        fh.truncate(500)
    with pytest.raises(CorruptFileError, match=r"t\.npy: truncated"):
        open_volume(tmp_path / "t.npy")


def test_corrupt_hdf5(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(100))
    with pytest.raises(CorruptFileError, match=r"bad\.h5: not a readable HDF5"):
        open_volume(tmp_path / "bad.h5")


def test_corrupt_zarr_chunk_fails_on_read_naming_the_file(tmp_path, small_volume):
    path = write_ome_zarr_04(tmp_path / "c.ome.zarr", small_volume)
    (path / "0" / "1" / "1" / "1").write_bytes(b"garbage")
    vol = open_volume(path, chunks=(4, 16, 16))
    with pytest.raises(CorruptFileError, match=r"c\.ome\.zarr"):
        vol.to_numpy()


def test_folder_that_is_not_a_volume(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnsupportedFormatError, match="neither a Zarr store"):
        open_volume(tmp_path / "empty")


@pytest.mark.parametrize("shape", [(100,), (2, 3, 4, 5)])
def test_1d_and_4d_data_are_refused(tmp_path, shape):
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
    with pytest.raises(ShapeError, match=r"bad\.npy: holds \dD data"):
        open_volume(tmp_path / "bad.npy", voxel_size=1.0)


def test_2d_image_where_volume_is_required(tmp_path, rng):
    tifffile.imwrite(tmp_path / "image.tif", rng.random((30, 40)).astype(np.float32))
    with pytest.raises(ShapeError, match=r"image\.tif: holds 2D data .* a 3D volume is required"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            open_volume(tmp_path / "image.tif")


def test_nan_filled_volume_is_refused_when_opened(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((6, 10, 10), np.nan, np.float32))
    with pytest.raises(InvalidDataError, match=r"nan\.npy: 100\.0% .* NaN-filled"):
        open_volume(tmp_path / "nan.npy", voxel_size=30.0)
    vol = open_volume(tmp_path / "nan.npy", voxel_size=30.0, allow_nan=True)
    assert np.isnan(vol.to_numpy()).all()


def test_nan_outside_the_checked_chunk_fails_when_read(tmp_path, small_volume):
    data = small_volume.copy()
    data[0, 0, 0] = np.nan
    path = write_mrc(tmp_path / "somenan.mrc", data)
    vol = open_volume(path, chunks=(4, 40, 56))  # the central chunk (z 4..8) is clean
    with pytest.raises(InvalidDataError, match=r"somenan\.mrc: 1 of .* voxels .* NaN"):
        vol.to_numpy()
    # a crop that avoids the bad voxel reads fine
    assert np.isfinite(vol[4:].to_numpy()).all()


def test_every_error_is_an_sxtseg_error():
    for cls in (AmbiguousDatasetError, CorruptFileError, InputNotFoundError, InvalidDataError, ShapeError,
                UnsupportedFormatError):
        assert issubclass(cls, SxtsegError)


def test_opening_does_not_compute(tmp_path, small_volume):
    """Opening builds a graph only: no task of the data runs (the NaN check reads one chunk)."""
    path = write_ome_zarr_04(tmp_path / "lazy.ome.zarr", small_volume)
    calls = []

    class Counter(dask.callbacks.Callback):
        def _start(self, dsk):
            calls.append(len(dsk))

    with Counter():
        vol = open_volume(path, chunks=(4, 16, 16))
    # exactly one compute (the central-chunk NaN check) of a small graph
    assert len(calls) == 1 and calls[0] < 10
    assert vol.data.npartitions == 3 * 3 * 4


@pytest.mark.parametrize("unit", ["inch", "parsec"])
def test_tiff_with_unknown_unit_opens_with_a_warning_and_no_voxel_size(tmp_path, small_volume, unit):
    # the failure: an ImageJ TIFF in "inch" was rejected as "not a readable TIFF file"
    path = tmp_path / "inch.tif"
    tifffile.imwrite(path, small_volume, imagej=True, resolution=(72.0, 72.0),
                     metadata={"spacing": 0.5, "unit": unit, "axes": "ZYX"})
    with pytest.warns(UserWarning, match=rf"inch\.tif: the ImageJ tags give the voxel size in an unknown length unit '{unit}'"):
        vol = open_volume(path)
    assert vol.voxel_size is None
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_ome_tiff_with_unknown_unit_opens_with_a_warning(tmp_path, small_volume):
    path = write_ome_tiff(tmp_path / "odd.ome.tif", small_volume, unit="furlong")
    with pytest.warns(UserWarning, match=r"odd\.ome\.tif: the OME metadata .* unknown length unit 'furlong'"):
        vol = open_volume(path)
    assert vol.voxel_size is None


@pytest.mark.parametrize("fmt", ["hdf5", "tiff", "zarr", "npy"])
def test_every_reader_returns_native_byte_order(tmp_path, small_volume, fmt):
    big = small_volume.astype(">f4")
    if fmt == "hdf5":
        path = tmp_path / "be.h5"
        with h5py.File(path, "w") as fh:
            fh.create_dataset("volume", data=big)
    elif fmt == "tiff":
        path = tmp_path / "be.tif"
        tifffile.imwrite(path, big, byteorder=">")
    elif fmt == "zarr":
        path = tmp_path / "be.zarr"
        array = zarr.create_array(str(path), shape=big.shape, dtype=big.dtype, zarr_format=2)
        array[:] = big
    else:
        path = tmp_path / "be.npy"
        np.save(path, big)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no voxel size in these files
        vol = open_volume(path)
    array = vol.to_numpy()
    assert vol.dtype.isnative and array.dtype.isnative and array.dtype == np.float32
    np.testing.assert_array_equal(array, small_volume)
