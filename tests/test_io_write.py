"""save_volume / export_volume: OME-Zarr layout, pyramids, labels, atomic writes, inputs protected."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import zarr
from scipy import stats

from sxtseg import Volume, open_volume, save_volume
from sxtseg.errors import InvalidDataError, OutputExistsError, ShapeError, UnsupportedFormatError, VoxelSizeError
from sxtseg.io import export_volume
from sxtseg.io._write import downsample, pyramid_factors


@pytest.fixture
def image(rng):
    data = (rng.random((40, 300, 270)) * 4000).astype(np.uint16)
    return Volume(da.from_array(data, chunks=(16, 100, 90)), voxel_size=(40.0, 30.0, 30.0))


@pytest.fixture
def classes(image):
    data = np.zeros(image.shape, np.uint8)
    data[5:30, 40:200, 50:150] = 1
    data[10:20, 80:120, 60:100] = 6
    return Volume(data, voxel_size=image.voxel_size, metadata={"label_colors": {1: (200, 200, 200, 255), 6: (255, 0, 0, 255)}})


def test_pyramid_factors_stop_near_256_and_keep_thin_axes():
    assert pyramid_factors((128, 256, 256)) == []
    assert pyramid_factors((512, 512, 512)) == [(2, 2, 2)]
    assert pyramid_factors((1024, 2048, 2048)) == [(2, 2, 2)] * 3
    assert pyramid_factors((40, 300, 270)) == [(1, 2, 2)]
    assert pyramid_factors((3000, 3000)) == [(2, 2)] * 4


def test_block_mean_and_mode_downsampling(rng):
    data = rng.integers(0, 5, size=(9, 14, 10)).astype(np.uint8)
    arr = da.from_array(data, chunks=(5, 7, 3))  # odd chunks: rechunked to whole blocks
    mean = downsample(arr, (2, 2, 2), "mean").compute()
    expected = data[:8, :14, :10].reshape(4, 2, 7, 2, 5, 2).mean(axis=(1, 3, 5))
    np.testing.assert_array_equal(mean, np.floor(expected + 0.5).astype(np.uint8))  # half up
    mode = downsample(arr, (1, 2, 2), "mode").compute()
    blocks = data[:, :14, :10].reshape(9, 7, 2, 5, 2).transpose(0, 1, 3, 2, 4).reshape(9, 7, 5, 4)
    np.testing.assert_array_equal(mode, stats.mode(blocks, axis=-1, keepdims=False).mode)


def test_round_trip_with_labels(tmp_path, image, classes):
    out = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes})
    back = open_volume(out)
    np.testing.assert_array_equal(back.to_numpy(), image.to_numpy())
    assert back.voxel_size == image.voxel_size and back.unit == "nm" and back.dtype == np.uint16
    labels = open_volume(out / "labels" / "classes")
    np.testing.assert_array_equal(labels.to_numpy(), classes.to_numpy())
    # level 1 of the labels is the 1x2x2 block mode; of the image the block mean
    lab1 = open_volume(out / "labels" / "classes", level=1)
    assert lab1.voxel_size == (40.0, 60.0, 60.0)
    assert set(np.unique(lab1.to_numpy())) == {0, 1, 6}
    img1 = open_volume(out, level=1).to_numpy()
    full = image.to_numpy()[:, :300, :270].astype(np.float64)
    np.testing.assert_array_equal(img1, np.floor(full.reshape(40, 150, 2, 135, 2).mean(axis=(2, 4)) + 0.5).astype(np.uint16))


def test_written_metadata_follows_ngff_04(tmp_path, image, classes):
    out = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes}, chunks=(16, 64, 64))
    attrs = json.loads((out / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert ms["axes"] == [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"]
    assert [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]] == [[40.0, 30.0, 30.0], [40.0, 60.0, 60.0]]
    zarray = json.loads((out / "0" / ".zarray").read_text())
    assert zarray["chunks"] == [16, 64, 64] and zarray["dimension_separator"] == "/"
    assert json.loads((out / "labels" / ".zattrs").read_text())["labels"] == ["classes"]
    image_label = json.loads((out / "labels" / "classes" / ".zattrs").read_text())["image-label"]
    assert image_label["version"] == "0.4" and image_label["source"] == {"image": "../../"}
    assert {"label-value": 6, "rgba": [255, 0, 0, 255]} in image_label["colors"]


def test_ngff_05_writes_zarr_v3(tmp_path, image, classes):
    out = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes}, ngff_version="0.5")
    meta = json.loads((out / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["attributes"]["ome"]["version"] == "0.5"
    back = open_volume(out)
    assert back.metadata["ome"]["ngff_version"] == "0.5"
    np.testing.assert_array_equal(back.to_numpy(), image.to_numpy())
    np.testing.assert_array_equal(open_volume(out / "labels" / "classes").to_numpy(), classes.to_numpy())


def test_ome_zarr_package_reads_what_we_write(tmp_path, image, classes):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    out = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes})
    nodes = list(Reader(parse_url(str(out)))())
    image_node = nodes[0]
    assert image_node.load(Multiscales) is not None
    assert [tuple(d.shape) for d in image_node.data] == [(40, 300, 270), (40, 150, 135)]
    np.testing.assert_array_equal(np.asarray(image_node.data[0]), image.to_numpy())
    # level 1 averages 2x2 voxels in y and x: scale 60 nm, centred half a level-0 voxel (15 nm) further in
    assert image_node.metadata["coordinateTransformations"][1] == [
        {"type": "scale", "scale": [40.0, 60.0, 60.0]}, {"type": "translation", "translation": [0.0, 15.0, 15.0]}]
    assert [a["unit"] for a in image_node.metadata["axes"]] == ["nanometer"] * 3
    label_nodes = [n for n in nodes if n.load(Label) is not None]
    assert len(label_nodes) == 1
    np.testing.assert_array_equal(np.asarray(label_nodes[0].data[0]), classes.to_numpy())


def test_metadata_and_provenance_survive(tmp_path, image):
    vol = image.with_data(image.data, metadata={"phantom": {"seed": 3}, "source": {"path": "/data/a.mrc", "reader": "mrc"}})
    back = open_volume(save_volume(vol, tmp_path / "m.ome.zarr"))
    assert back.metadata["phantom"] == {"seed": 3}
    assert back.metadata["derived_from"] == {"path": "/data/a.mrc", "reader": "mrc"}
    assert back.metadata["source"]["path"] == str((tmp_path / "m.ome.zarr").resolve())


def test_2d_image_round_trip(tmp_path, rng):
    data = rng.random((600, 520)).astype(np.float32)
    vol = Volume(data, voxel_size=0.15, unit="mm", axes="yx")
    out = save_volume(vol, tmp_path / "cxr.ome.zarr")
    back = open_volume(out, ndim=2)
    assert back.unit == "mm" and back.voxel_size == (0.15, 0.15) and back.axes == "yx"
    np.testing.assert_array_equal(back.to_numpy(), data)
    assert open_volume(out, ndim=2, level=1).shape == (300, 260)


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path, image):
    out = tmp_path / "cell.ome.zarr"
    save_volume(image, out)
    with pytest.raises(OutputExistsError, match="already exists"):
        save_volume(image, out)
    doubled = image.with_data(image.data // 2)
    save_volume(doubled, out, overwrite=True)
    np.testing.assert_array_equal(open_volume(out).to_numpy(), image.to_numpy() // 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.ome.zarr"]  # no temporary left


def test_never_writes_over_its_input(tmp_path, image):
    out = save_volume(image, tmp_path / "cell.ome.zarr")
    reopened = open_volume(out)
    with pytest.raises(OutputExistsError, match="would overwrite the input"):
        save_volume(reopened, out, overwrite=True)
    np.testing.assert_array_equal(open_volume(out).to_numpy(), image.to_numpy())


def test_failure_leaves_nothing_behind(tmp_path, image):
    def explode(block):
        if block.shape[0] and block.flat[0] >= 0:
            raise RuntimeError("disk on fire")
        return block

    bad = image.with_data(image.data.map_blocks(explode, dtype=image.dtype))
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_volume(bad, tmp_path / "x.ome.zarr")
    assert list(tmp_path.iterdir()) == []
    # an existing output survives a failed overwrite untouched
    save_volume(image, tmp_path / "x.ome.zarr")
    with pytest.raises(RuntimeError):
        save_volume(bad, tmp_path / "x.ome.zarr", overwrite=True)
    np.testing.assert_array_equal(open_volume(tmp_path / "x.ome.zarr").to_numpy(), image.to_numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["x.ome.zarr"]


def test_bad_arguments(tmp_path, image, classes):
    with pytest.raises(VoxelSizeError, match="voxel size of the volume is unknown|voxel size is unknown"):
        save_volume(Volume(np.zeros((4, 4, 4))), tmp_path / "a.ome.zarr")
    with pytest.raises(UnsupportedFormatError, match=r"\.ome\.zarr"):
        save_volume(image, tmp_path / "a.tif")
    with pytest.raises(ShapeError, match="labels 'classes' have shape"):
        save_volume(image, tmp_path / "b.ome.zarr", labels={"classes": classes[:10]})
    with pytest.raises(InvalidDataError, match="must be integers"):
        save_volume(image, tmp_path / "c.ome.zarr", labels={"p": classes.astype(np.float32)})
    with pytest.raises(VoxelSizeError, match="labels 'classes' have voxel size"):
        save_volume(image, tmp_path / "d.ome.zarr", labels={"classes": classes.with_data(classes.data, voxel_size=10.0)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".tif", ".mrc"])
def test_export_single_file_round_trip(tmp_path, image, suffix):
    out = export_volume(image, tmp_path / f"cell{suffix}")
    back = open_volume(out)
    assert back.voxel_size == pytest.approx(image.voxel_size, rel=1e-5)
    np.testing.assert_array_equal(back.to_numpy(), image.to_numpy())
    with pytest.raises(OutputExistsError):
        export_volume(image, out)
    with pytest.raises(OutputExistsError, match="input"):
        export_volume(back, out, overwrite=True)


@pytest.mark.parametrize("budget", [32 * 2**10, 512 * 2**10, None], ids=["unfused", "fused-slabs", "one-slab"])
def test_pyramid_is_the_same_whatever_the_write_blocks(tmp_path, rng, monkeypatch, budget):
    """Level 1 written from in-memory slabs (fused) or read back from level 0 gives the same voxels."""
    import sxtseg.io._write as writer
    from sxtseg.kernels import downsample_mean, downsample_mode

    if budget is not None:
        monkeypatch.setattr(writer, "WRITE_BLOCK_BYTES", budget)
    shape, chunks = (67, 96, 264), (16, 16, 16)
    block = writer.write_blocks(shape, chunks, 2)
    fused = writer._fusable(shape, block, (2, 2, 2), chunks)
    assert fused == (budget != 32 * 2**10), (block, fused)
    assert writer.pyramid_factors(shape) == [(2, 2, 2)]
    data = rng.integers(0, 5000, size=shape).astype(np.uint16)
    labels = rng.integers(0, 4, size=shape).astype(np.uint8)
    out = save_volume(Volume(data, voxel_size=30.0), tmp_path / "p.ome.zarr",
                      labels={"l": Volume(labels, voxel_size=30.0)}, chunks=chunks)
    np.testing.assert_array_equal(open_volume(out, level=1).to_numpy(), downsample_mean(data, (2, 2, 2)))
    np.testing.assert_array_equal(
        open_volume(out / "labels" / "l", level=1).to_numpy(), downsample_mode(labels, (2, 2, 2))
    )
    np.testing.assert_array_equal(open_volume(out).to_numpy(), data)


def test_pyramid_levels_overlay_level_zero_exactly(tmp_path):
    # the failure: levels carried a scale but no translation, so level k sat (2^k - 1)/2 voxels off
    from sxtseg import Volume, open_volume, save_volume

    data = np.zeros((16, 1024, 1024), np.uint8)
    data[:, 200:264, 300:364] = 200  # a bright square: its centre must land at the same place on every level
    path = save_volume(Volume(data, voxel_size=(40.0, 30.0, 30.0)), tmp_path / "p.ome.zarr", levels=3)
    centres = []
    for level in range(3):
        vol = open_volume(path, level=level)
        ms = zarr.open_group(str(path), mode="r").attrs
        ms = (ms.get("ome") or ms)["multiscales"][0]["datasets"][level]["coordinateTransformations"]
        scale, translation = ms[0]["scale"], ms[1]["translation"]
        assert ms[0]["type"] == "scale" and ms[1]["type"] == "translation"
        assert tuple(scale) == vol.voxel_size
        image = vol.to_numpy()
        index = np.argwhere(image > 100).mean(axis=0)  # in this level's voxels
        centres.append(np.asarray(translation) + index * np.asarray(scale))  # physical nm
    for centre in centres[1:]:
        np.testing.assert_allclose(centre, centres[0], atol=1e-6)
    np.testing.assert_allclose(centres[0][1:], [231.5 * 30, 331.5 * 30])


def test_crop_origin_is_written_as_a_translation_and_read_back(tmp_path):
    from sxtseg import Volume, open_volume, save_volume

    whole = Volume(np.arange(16 * 64 * 64, dtype=np.uint16).reshape(16, 64, 64), voxel_size=(40.0, 30.0, 30.0))
    crop = whole[4:12, 10:50, 20:60]
    assert crop.metadata["origin_voxel"] == (4, 10, 20)
    path = save_volume(crop, tmp_path / "crop.ome.zarr", labels={"mask": crop.with_data(crop.data > 9000)})
    attrs = zarr.open_group(str(path), mode="r").attrs
    ms = (attrs.get("ome") or attrs)["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][1]["translation"] == [160.0, 300.0, 600.0]
    # the origin comes from the translation, not from sxtseg's own saved metadata
    group = zarr.open_group(str(path), mode="r+")
    saved = dict(group.attrs["sxtseg"])
    saved["metadata"] = {k: v for k, v in saved["metadata"].items() if k != "origin_voxel"}
    group.attrs["sxtseg"] = saved
    back = open_volume(path)
    assert back.metadata["origin_voxel"] == (4, 10, 20)
    mask = open_volume(path / "labels" / "mask")
    assert mask.metadata["origin_voxel"] == (4, 10, 20)
