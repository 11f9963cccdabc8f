"""napari widgets in a real viewer (napari, PyQt6, Xvfb through pytest-xvfb): segment, measure, screenshots.

Skipped when napari or a Qt binding is not installed, except under CI (CI=true), where a missing GUI
stack is a failure: the README's test command installs it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("CI", "").lower() == "true":
    import napari  # noqa: F401 - under CI the GUI stack must be there
    import qtpy  # noqa: F401
else:
    pytest.importorskip("napari", reason="the napari extra is not installed")
    pytest.importorskip("qtpy", reason="no Qt binding installed")

from sxtseg import SXTClass  # noqa: E402
from sxtseg.infer import dice_per_class  # noqa: E402
from sxtseg.napari import infected_cell  # noqa: E402


@pytest.fixture
def viewer_with_cell(make_napari_viewer):
    viewer = make_napari_viewer(show=True)  # a hidden canvas screenshots as one flat colour
    data, kwargs, _ = infected_cell()[0]
    viewer.add_image(data, **kwargs)
    return viewer


def grey(shot):
    return shot[..., :3].mean(axis=-1)


def test_segment_widget_adds_a_coloured_labels_layer_and_the_screenshot_changes(viewer_with_cell, qtbot):
    from sxtseg.napari._widgets import SegmentWidget

    viewer = viewer_with_cell
    before = viewer.screenshot(canvas_only=True)
    values = grey(before)
    assert values.std() > 5  # not blank
    # contrast inside the cell: the image is not a saturated disc (robust contrast limits)
    assert (values >= 250).mean() < 0.05, (values >= 250).mean()
    widget = SegmentWidget(viewer)
    assert widget.image.currentText() == "infected cell (phantom)"
    widget.block_shape.setText("32,128,128")
    widget.device.setCurrentText("cpu")
    widget.mirror.setChecked(False)  # one pass per window: the test is about the widget
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    layer = viewer.layers["infected cell (phantom) classes"]
    assert layer._type_string == "labels" and layer.data.shape == (64, 128, 128)
    truth = np.asarray(infected_cell()[1][0])
    dice = dice_per_class(np.asarray(layer.data), truth, 9)
    # the sample's compartments are found (its nucleus was at Dice 0.12 in a 32-slice sample)
    assert dice[SXTClass.CYTOPLASM] > 0.95 and dice[SXTClass.NUCLEUS] > 0.9 and dice[SXTClass.DMV] > 0.85, dice
    assert tuple(layer.scale) == (30.0, 30.0, 30.0)
    assert layer.metadata["sxtseg"]["quality"] == [] and widget.status.text() == f"added {layer.name}"
    assert layer.colormap.map(1)[3] < 0.5  # translucent cytoplasm
    after = viewer.screenshot(canvas_only=True)
    h, w = min(after.shape[0], before.shape[0]), min(after.shape[1], before.shape[1])  # a pixel may differ
    assert np.abs(grey(after)[:h, :w] - grey(before)[:h, :w]).mean() > 1  # the labels show


def test_segment_widget_cancel_stops_between_blocks(viewer_with_cell, qtbot):
    from sxtseg.napari._widgets import SegmentWidget

    viewer = viewer_with_cell
    widget = SegmentWidget(viewer)
    widget.block_shape.setText("16,32,32")  # 64 blocks: the cancel lands long before the last one
    widget.device.setCurrentText("cpu")
    worker = widget.run()
    worker.yielded.connect(widget.cancel)  # press Cancel as soon as the first block is reported
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    assert "cancelled after" in widget.status.text() and "of 64 blocks" in widget.status.text()
    assert len(viewer.layers) == 1  # no half result added
    assert widget.run_button.isEnabled()


def test_measure_widget_features_equal_sxtseg_measure_and_rows_centre_the_view(make_napari_viewer, qtbot,
                                                                              tmp_path):
    import pandas as pd

    from sxtseg import Volume, measure
    from sxtseg.napari._widgets import MeasureWidget

    viewer = make_napari_viewer()
    layers = infected_cell()
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = MeasureWidget(viewer)
    widget.labels.setCurrentText("instances")
    widget.image.setCurrentText("infected cell (phantom)")
    worker = widget.measure()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    expected = measure(Volume(np.asarray(layers[2][0]), voxel_size=30.0), Volume(np.asarray(layers[0][0]),
                       voxel_size=30.0))
    features = viewer.layers["instances"].features
    assert len(features) == len(expected) and (features["index"] == expected["label"]).all()
    np.testing.assert_allclose(features["volume_um3"], expected["volume_um3"])
    np.testing.assert_allclose(features["intensity_mean"], expected["intensity_mean"])
    assert widget.table.rowCount() == len(expected)
    widget.centre_on_row(3)
    obj = expected.iloc[3]
    assert viewer.camera.center[-1] == pytest.approx(obj["centroid_x_vox"] * 30.0)
    assert viewer.dims.point[0] == pytest.approx(obj["centroid_z_vox"] * 30.0, abs=30.0)
    assert viewer.layers["instances"].selected_label == int(obj["label"])
    saved = pd.read_csv(widget.export_csv(tmp_path / "objects.csv"))
    assert list(saved["label"]) == list(expected["label"])


def test_reader_and_sample_through_napari(make_napari_viewer, tmp_path):
    from sxtseg import make_infected_cell, save_volume

    image, classes, _, _ = make_infected_cell((32, 64, 64), seed=9)
    path = save_volume(image, tmp_path / "cell.ome.zarr", labels={"classes": classes})
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="sxtseg")
    assert [layer.name for layer in layers] == ["cell", "classes"]
    assert [str(u) for u in layers[0].units] == ["nanometer"] * 3
    assert layers[1].visible and layers[1].colormap.map(6)[3] > 0.8  # DMVs nearly opaque
    viewer.open_sample("sxtseg", "infected_cell")
    assert "infected cell (phantom)" in viewer.layers


def test_finetune_widget_paints_trains_and_resegments(make_napari_viewer, qtbot, tmp_path):
    from sxtseg import make_infected_cell
    from sxtseg.models import load_model
    from sxtseg.napari import image_layer
    from sxtseg.napari._widgets import FineTuneWidget
    from sxtseg.phantom import ImagingModel

    # an imaging model the default weights never saw: a +-45 degree wedge, a wide z PSF, rings, noise
    unseen = ImagingModel(psf_sigma_xy_nm=36.0, psf_sigma_z_nm=120.0, tilt_range_deg=(-45.0, 45.0),
                          photon_noise=0.10, ring_amplitude=0.015)
    image, classes, _, _ = make_infected_cell((32, 96, 96), seed=6200, imaging=unseen)
    viewer = make_napari_viewer()
    data, kwargs, _ = image_layer(image.compute(), name="cell")
    viewer.add_image(data, **kwargs)
    widget = FineTuneWidget(viewer)
    corrections = widget.new_corrections()
    assert corrections.name == "cell corrections" and corrections.data.max() == 0
    widget.paint_class.setCurrentIndex(6)  # "6: dmv"
    assert corrections.selected_label == 7  # class code + 1: 0 stays "unpainted"
    truth = classes.to_numpy()
    for z in (8, 16, 24):  # the user paints three slices (here: the truth)
        corrections.data[z] = truth[z] + 1
    widget.epochs.setText("3")
    widget.steps.setText("4")
    widget.output.setText(str(tmp_path / "finetuned"))
    widget.device.setCurrentText("cpu")
    worker = widget.train()
    with qtbot.waitSignal(worker.finished, timeout=300_000):
        pass
    assert [row["epoch"] for row in widget.history] == [1, 2, 3]
    assert widget.history[-1]["loss"] < widget.history[0]["loss"]  # the loss went down
    model = load_model(tmp_path / "finetuned" / "last.pt")  # a loadable checkpoint, with its provenance
    assert "z slices [8, 16, 24] of cell" in model.metadata["training"]["description"]
    layer = viewer.layers["cell classes (fine-tuned)"]
    assert layer.data.shape == (32, 96, 96) and layer.data.max() > 0


def test_segment_widget_on_a_multiscale_dask_layer_uses_level_0(make_napari_viewer, qtbot, tmp_path):
    import dask.array as da

    from sxtseg import Volume, make_infected_cell, save_volume
    from sxtseg.napari._widgets import SegmentWidget

    image, _, _, _ = make_infected_cell((32, 512, 512), seed=12)  # big enough in y, x for a 2-level pyramid
    path = save_volume(Volume(image.to_numpy(), voxel_size=30.0), tmp_path / "big.ome.zarr", levels=2)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="sxtseg")
    assert layer.multiscale and isinstance(layer.data[0], da.Array) and layer.data[1].shape == (32, 256, 256)
    widget = SegmentWidget(viewer)
    widget.block_shape.setText("32,256,256")
    widget.device.setCurrentText("cpu")
    assert widget.mirror.isChecked()  # segment()'s default
    widget.mirror.setChecked(False)  # one pass per window: this test is about the pyramid's level
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=300_000):
        pass
    result = viewer.layers["big classes"]
    assert result.metadata["sxtseg"]["segmentation"]["parameters"]["mirror"] is False
    assert result.data.shape == (32, 512, 512) and tuple(result.scale) == (30.0, 30.0, 30.0)
    assert set(np.unique(result.data[16])) >= {0, 1}
    # 32 slices of 30 nm hold a cell under 1 um thick, thinner than the models know: the widget says so
    assert "thin_cell" in [flag["flag"] for flag in result.metadata["sxtseg"]["quality"]]
    assert f"quality: thin_cell: {path}: the cell is 0." in widget.status.text()  # named by its file
