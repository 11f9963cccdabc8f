import dask.array as da
import numpy as np
import pytest

from sxtseg import Volume
from sxtseg.errors import ShapeError, VoxelSizeError


def test_volume_wraps_numpy_and_reports_shape(small_volume):
    vol = Volume(small_volume, voxel_size=(40.0, 30.0, 30.0))
    assert isinstance(vol.data, da.Array)
    assert vol.shape == (12, 40, 56) and vol.ndim == 3 and vol.dtype == np.float32
    assert vol.physical_shape == (480.0, 1200.0, 1680.0)
    assert vol.nbytes == small_volume.nbytes
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)


def test_scalar_voxel_size_is_isotropic():
    assert Volume(np.zeros((2, 3, 4)), voxel_size=25).voxel_size == (25.0, 25.0, 25.0)


@pytest.mark.parametrize("bad", [(0.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (np.nan, 1.0, 1.0), (1.0, 1.0)])
def test_bad_voxel_size_is_refused(bad):
    with pytest.raises(VoxelSizeError):
        Volume(np.zeros((2, 3, 4)), voxel_size=bad)


def test_axes_must_match_dimensions():
    with pytest.raises(ShapeError):
        Volume(np.zeros((2, 3)), axes="zyx")
    with pytest.raises(ShapeError):
        Volume(np.zeros((2, 3, 4, 5)))
    image = Volume(np.zeros((3, 4)), voxel_size=0.5, unit="mm", axes="yx")
    assert image.voxel_size == (0.5, 0.5) and image.unit == "mm"


def test_unknown_unit_is_refused():
    with pytest.raises(VoxelSizeError):
        Volume(np.zeros((2, 3, 4)), voxel_size=1.0, unit="furlong")


def test_slicing_keeps_voxel_size_and_tracks_origin(small_volume):
    vol = Volume(small_volume, voxel_size=(40.0, 30.0, 30.0))
    crop = vol[2:10, 5:, ::2]
    assert crop.shape == (8, 35, 28)
    assert crop.voxel_size == (40.0, 30.0, 60.0)
    assert crop.metadata["origin_voxel"] == (2, 5, 0)
    np.testing.assert_array_equal(crop.to_numpy(), small_volume[2:10, 5:, ::2])
    # origins accumulate over nested crops
    assert crop[1:, 3:].metadata["origin_voxel"] == (3, 8, 0)
    # an integer z index gives a 2D image
    plane = vol[4]
    assert plane.axes == "yx" and plane.voxel_size == (30.0, 30.0)
    np.testing.assert_array_equal(plane.to_numpy(), small_volume[4])


def test_isel_and_crop_match_slicing(small_volume):
    vol = Volume(small_volume, voxel_size=30.0)
    a = vol.isel(z=slice(1, 4), x=slice(10, 20))
    b = vol.crop((1, 0, 10), (4, 40, 20))
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    with pytest.raises(ValueError, match="unknown axes"):
        vol.isel(q=1)
    with pytest.raises(IndexError):
        vol[20]


def test_compute_returns_loaded_volume_with_same_chunks(small_volume):
    lazy = Volume(da.from_array(small_volume, chunks=(4, 20, 28)), voxel_size=30.0, metadata={"a": 1})
    loaded = lazy.compute()
    assert loaded.chunks == lazy.chunks
    assert loaded.metadata == {"a": 1}
    # the loaded graph has one task per chunk that only slices memory: no source tasks left
    np.testing.assert_array_equal(loaded.to_numpy(), small_volume)


def test_rechunk_astype_with_data_keep_metadata(small_volume):
    vol = Volume(small_volume, voxel_size=30.0, metadata={"source": {"path": "x"}})
    assert vol.rechunk((6, 20, 28)).chunks[0] == (6, 6)
    as_int = vol.astype(np.uint16)
    assert as_int.dtype == np.uint16 and as_int.voxel_size == vol.voxel_size
    labels = vol.with_data(np.zeros(vol.shape, np.uint8))
    assert labels.metadata["source"] == {"path": "x"} and labels.dtype == np.uint8
    labels.metadata["source"]["path"] = "changed"
    assert vol.metadata["source"]["path"] == "x"  # metadata is copied, not shared


def test_voxel_size_in_other_units():
    vol = Volume(np.zeros((2, 2, 2)), voxel_size=30.0)
    assert vol.voxel_size_in("um") == pytest.approx((0.03, 0.03, 0.03))
    with pytest.raises(VoxelSizeError, match="unknown"):
        Volume(np.zeros((2, 2, 2))).voxel_size_in("nm")


def test_repr_names_source():
    vol = Volume(np.zeros((2, 2, 2), np.uint8), voxel_size=30.0, metadata={"source": {"path": "/data/cell.mrc"}})
    assert "cell.mrc" in repr(vol) and "30x30x30 nm" in repr(vol)


def test_to_numpy_of_an_in_memory_volume_is_a_read_only_view(small_volume):
    vol = Volume(small_volume, voxel_size=30.0)
    view = vol.to_numpy()
    assert np.shares_memory(view, small_volume) and not view.flags.writeable
    # once the data is replaced, the cached array no longer applies
    doubled = vol.with_data(vol.data * 2)
    np.testing.assert_array_equal(doubled.to_numpy(), small_volume * 2)
    vol.data = vol.data + 1
    np.testing.assert_array_equal(vol.to_numpy(), small_volume + 1)
    loaded = Volume(da.from_array(small_volume, chunks=(4, 20, 28)), voxel_size=30.0).compute()
    assert np.shares_memory(loaded.to_numpy(), loaded.to_numpy())


def test_in_memory_tells_whether_the_voxels_are_already_loaded(small_volume):
    assert Volume(small_volume, voxel_size=30.0).in_memory
    lazy = Volume(da.from_array(small_volume, chunks=(4, 20, 28)), voxel_size=30.0)
    assert not lazy.in_memory and lazy.data.npartitions > 1
    loaded = lazy.compute()
    assert loaded.in_memory and loaded.data.npartitions == lazy.data.npartitions  # chunks kept
    assert not loaded.rechunk(8).in_memory and not loaded.with_data(loaded.data + 1).in_memory


def test_a_volume_of_a_numpy_array_does_not_copy_it():
    import tracemalloc

    array = np.zeros((64, 256, 256), np.float32)  # 16 MiB
    tracemalloc.start()
    vol = Volume(array, voxel_size=30.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2**20  # dask.array.from_array(array) alone would copy all 16 MiB
    loaded = Volume(da.from_array(array, chunks=32), voxel_size=30.0).compute()
    assert vol.in_memory and np.shares_memory(vol.to_numpy(), array)
    assert loaded.in_memory
    np.testing.assert_array_equal(loaded.to_numpy(), array)
    np.testing.assert_array_equal(vol.data[::7, ::9, ::5].compute(), array[::7, ::9, ::5])


def test_loading_a_lazy_volume_holds_the_array_once():
    import tracemalloc

    import dask

    lazy = da.arange(64 * 256 * 256, dtype=np.float32, chunks=4 * 256 * 256).reshape(64, 256, 256) * 2  # 16 MiB, 16 chunks
    vol = Volume(lazy, voxel_size=30.0)
    expected = np.arange(64 * 256 * 256, dtype=np.float32).reshape(64, 256, 256) * 2
    np.testing.assert_array_equal(vol.to_numpy(scheduler="sync"), expected)  # also warms dask's thread pool up
    tracemalloc.start()
    array = vol.to_numpy()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(array, expected)
    # chunks written into the result as they come; dask's compute() holds them all, then concatenates (2x)
    assert peak < 1.5 * expected.nbytes
    with dask.config.set(scheduler="processes"):  # workers hold copies: the chunks must come back, not be stored
        np.testing.assert_array_equal(vol.to_numpy(), expected)
