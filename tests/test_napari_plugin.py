"""napari plugin without a GUI: manifest, reader, writer and sample data as layer data tuples.

The plugin's functions import neither napari nor Qt (checked here), so these
tests run everywhere; the widgets and screenshots need napari and Xvfb.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import zarr

from sxtseg import Volume, make_infected_cell, open_volume, save_volume
from sxtseg.classes import CLASS_COLORS, CLASS_NAMES
from sxtseg.napari import get_reader, infected_cell, read_layers, write_ome_zarr
from sxtseg.napari._sample import SAMPLE_SHAPE


@pytest.fixture(scope="module")
def cell():
    image, classes, instances, objects = make_infected_cell((32, 96, 96), seed=4)
    return image.compute(), classes.compute(), instances.compute(), objects


def test_manifest_validates_and_is_registered():
    npe2 = pytest.importorskip("npe2")
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="napari.manifest") if e.name == "sxtseg"]
    manifest = npe2.PluginManifest.from_distribution("sxtseg")
    assert entry.value == "sxtseg.napari:napari.yaml" and manifest.name == "sxtseg"
    assert {c.id for c in manifest.contributions.commands} == {
        "sxtseg.get_reader", "sxtseg.write_ome_zarr", "sxtseg.sample_infected_cell", "sxtseg.segment_widget",
        "sxtseg.measure_widget", "sxtseg.finetune_widget"}
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "sxtseg"], capture_output=True, text=True)
    assert result.returncode == 0 and "valid" in result.stdout + result.stderr


def test_plugin_imports_neither_napari_nor_qt():
    code = ("import sys, sxtseg.napari as p; p.infected_cell(); "
            "print([m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'vispy')])")
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


def test_ome_zarr_opens_as_image_and_visible_coloured_labels(cell, tmp_path):
    # the failure with napari-ome-zarr: contrast from the z=0 plane (all ice: a saturated disc), an image named
    # after the file, an opaque cytoplasm, hidden label layers named labels/labels/classes
    image, classes, instances, _ = cell
    path = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes, "instances": instances},
                       chunks=(16, 64, 64), name="infected cell 4")
    assert get_reader(path) is read_layers
    layers = read_layers(path)
    assert [(kwargs["name"], kind) for _, kwargs, kind in layers] == [
        ("infected cell 4", "image"), ("classes", "labels"), ("instances", "labels")]
    data, kwargs, _ = layers[0]
    assert kwargs["scale"] == (30.0, 30.0, 30.0) and kwargs["units"] == ("nm", "nm", "nm")
    low, high = kwargs["contrast_limits"]
    values = image.to_numpy()
    plane0 = values[0]
    assert high > np.percentile(plane0, 99.9)  # not the ice plane's range
    inside = values[values > 0.18]  # cytoplasm and denser
    assert low < np.median(inside) < high and high < values.max()  # contrast inside the cell
    assert kwargs["multiscale"] is False  # a 96-voxel image has no pyramid
    _, label_kwargs, _ = layers[1]
    assert label_kwargs["visible"] is True
    cytoplasm = label_kwargs["colormap"][1]
    assert cytoplasm[3] < 0.5  # translucent over the image
    assert label_kwargs["features"].set_index("index")["class_name"].to_dict() == CLASS_NAMES
    assert label_kwargs["scale"] == (30.0, 30.0, 30.0)


def test_multiscale_lazy_and_translated(tmp_path):
    data = np.zeros((16, 1024, 1024), np.uint16)
    data[:, 300:400, 500:600] = 1000
    crop = Volume(data, voxel_size=(40.0, 30.0, 30.0))[2:14, 100:, 200:]
    path = save_volume(crop, tmp_path / "big.ome.zarr")
    (levels, kwargs, kind), = read_layers(path)
    assert kind == "image" and kwargs["multiscale"] is True and len(levels) >= 2
    assert all(hasattr(level, "dask") for level in levels)  # lazy
    assert kwargs["translate"] == (80.0, 3000.0, 6000.0)  # the crop's origin, in nm
    assert kwargs["contrast_limits"][1] > kwargs["contrast_limits"][0]


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".h5"])
def test_tomogram_files_open_with_scale_and_name(cell, tmp_path, suffix):
    import h5py
    import mrcfile
    import tifffile

    image = cell[0].to_numpy()
    path = tmp_path / f"tomo{suffix}"
    if suffix == ".mrc":
        with mrcfile.new(path) as m:
            m.set_data(image)
            m.voxel_size = 300.0
    elif suffix == ".tif":
        tifffile.imwrite(path, image, imagej=True, resolution=(1 / 0.03, 1 / 0.03),
                         metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"})
    else:
        with h5py.File(path, "w") as fh:
            fh.create_dataset("volume", data=image).attrs["element_size_um"] = [0.03, 0.03, 0.03]
    assert get_reader(path) is read_layers
    ((data, kwargs, kind),) = read_layers(path)
    assert kind == "image" and kwargs["name"] == "tomo" and kwargs["scale"] == pytest.approx((30.0,) * 3)
    assert hasattr(data, "dask")


def test_reader_declines_what_it_cannot_open(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    assert get_reader(tmp_path / "notes.txt") is None
    assert get_reader(tmp_path / "folder") is None  # not a results folder: left to other plugins
    assert get_reader([str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc")]) is None


def test_results_folder_opens_with_the_object_table_as_features(cell, tmp_path):
    # a results folder as `sxtseg run` writes it, made here without running a model
    image, classes, instances, _ = cell
    from sxtseg import measure

    folder = tmp_path / "results"
    folder.mkdir()
    named = classes.with_data(classes.data, metadata={
        "label_names": {str(k): v for k, v in CLASS_NAMES.items()},
        "label_colors": {str(k): list(v) for k, v in CLASS_COLORS.items()}})
    save_volume(image, folder / "volume.ome.zarr", labels={"classes": named, "instances": instances})
    table = measure(instances, image, classes)
    table.to_csv(folder / "objects.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({"sample": "cell4"}))
    for path in (folder, folder / "summary.json"):
        assert get_reader(path) is read_layers
        layers = read_layers(path)
        assert [(k["name"], kind) for _, k, kind in layers] == [
            ("cell4", "image"), ("classes", "labels"), ("instances", "labels")]
        features = layers[2][1]["features"]
        assert len(features) == len(table)
        assert (features["index"] == table["label"]).all() and "volume_um3" in features


def test_writer_round_trips_image_and_labels_with_scale(cell, tmp_path):
    image, classes, _, _ = cell
    layers = infected_cell(seed=2)
    out = write_ome_zarr(str(tmp_path / "saved.ome.zarr"), [layers[0], layers[1]])
    assert out == [str(tmp_path / "saved.ome.zarr")]
    back = read_layers(tmp_path / "saved.ome.zarr")
    assert [(k["name"], kind) for _, k, kind in back] == [("infected cell (phantom)", "image"), ("classes", "labels")]
    np.testing.assert_array_equal(np.asarray(back[0][0]), np.asarray(layers[0][0]))
    np.testing.assert_array_equal(np.asarray(back[1][0]), np.asarray(layers[1][0]))
    assert back[0][1]["scale"] == (30.0, 30.0, 30.0)
    assert back[1][1]["colormap"][6] == pytest.approx(tuple(c / 255 for c in CLASS_COLORS[6]))
    from sxtseg.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="one image"):
        write_ome_zarr(str(tmp_path / "two.ome.zarr"), [layers[0], layers[0]])


def test_sample_data_is_a_small_phantom_made_offline():
    layers = infected_cell()
    assert [kind for _, _, kind in layers] == ["image", "labels", "labels"]
    image, classes = np.asarray(layers[0][0]), np.asarray(layers[1][0])
    assert image.shape == classes.shape == SAMPLE_SHAPE == (64, 128, 128)
    assert set(np.unique(classes)) >= {0, 1, 2, 6}  # background, cytoplasm, nucleus, DMVs
    instances = layers[2][1]["features"]
    assert {"index", "label", "class_name"} <= set(instances) and (instances["class_name"] == "dmv").any()


def test_save_volume_writes_omero_rendering_settings(cell, tmp_path):
    image, _, _, _ = cell
    path = save_volume(image, tmp_path / "o.ome.zarr")
    omero = zarr.open_group(str(path), mode="r").attrs["omero"]
    (channel,) = omero["channels"]
    assert channel["color"] == "FFFFFF" and channel["label"] == "LAC (1/um)"
    window = channel["window"]
    values = image.to_numpy()
    assert window["min"] <= window["start"] < np.median(values[values > 0.18]) < window["end"] <= window["max"]
    assert omero["rdefs"]["model"] == "greyscale"


def test_segment_layer_keeps_quality_flags_named_by_the_layer():
    # an in-memory layer (no file) is named in the flags by its layer name; a 32-slice cell is a thin one
    from sxtseg.napari._actions import segment_layer

    image, _, _, _ = make_infected_cell((32, 64, 64), voxel_size_nm=30.0, seed=2)
    meta = {"name": "thin", "scale": (30.0, 30.0, 30.0), "units": ("nm",) * 3, "metadata": {}}
    data, kwargs, kind = segment_layer(image.to_numpy(), meta, mirror=False, block_shape=(32, 64, 64))
    assert kind == "labels" and kwargs["name"] == "thin classes" and data.shape == (32, 64, 64)
    flags = {f["flag"]: f["message"] for f in kwargs["metadata"]["sxtseg"]["quality"]}
    assert flags["thin_cell"].startswith("layer 'thin': the cell is 0.")
