"""Screenshots of sxtseg's napari widgets for docs/napari.md (needs the napari extra and a display, or Xvfb).

Run::

    xvfb-run -a python examples/napari_screenshots.py docs/images

It loads the phantom sample, segments it with the Segment widget (shipped
model, CPU), measures the instances with the Measure widget, paints one
slice of corrections and fine-tunes briefly with the Correct and fine-tune
widget, and saves one screenshot of the viewer with each widget docked.
"""

from __future__ import annotations

import sys
from pathlib import Path


def wait(worker) -> None:
    """Run the Qt event loop until a widget's worker has finished (and its results are in the viewer)."""
    from qtpy.QtWidgets import QApplication

    finished = []
    worker.finished.connect(lambda: finished.append(True))
    while not finished:
        QApplication.processEvents()
    QApplication.processEvents()


def main(out: Path) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from sxtseg.napari import infected_cell
    from sxtseg.napari._sample import SAMPLE_SHAPE
    from sxtseg.napari._widgets import FineTuneWidget, MeasureWidget, SegmentWidget

    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 850)
    layers = infected_cell()
    image, _, instances = layers
    viewer.add_image(image[0], **image[1])
    middle = SAMPLE_SHAPE[0] // 2
    viewer.dims.set_point(0, middle * 30.0)
    segment = SegmentWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Segment (sxtseg)", area="right")
    segment.device.setCurrentText("cpu")
    segment.block_shape.setText("64,128,128")
    wait(segment.run())
    viewer.screenshot(str(out / "napari_segment.png"), canvas_only=False)
    viewer.add_labels(instances[0], **{**instances[1], "visible": True})
    measure = MeasureWidget(viewer)
    viewer.window.add_dock_widget(measure, name="Measure (sxtseg)", area="right")
    measure.labels.setCurrentText("instances")
    measure.image.setCurrentText(image[1]["name"])
    measure.classes.setCurrentText(f"{image[1]['name']} classes")  # the Segment widget's result
    wait(measure.measure())
    dmv_row = int((measure.result["class_name"] == "dmv").to_numpy().argmax())
    measure.centre_on_row(dmv_row)
    viewer.camera.zoom *= 2
    QApplication.processEvents()
    viewer.screenshot(str(out / "napari_measure.png"), canvas_only=False)

    # Correct and fine-tune: paint the nucleus on the middle slice, train briefly, re-segment
    for name in list(viewer.layers):
        if name.name != image[1]["name"]:
            viewer.layers.remove(name)
    viewer.window.remove_dock_widget(measure)
    finetune = FineTuneWidget(viewer)
    viewer.window.add_dock_widget(finetune, name="Correct and fine-tune (sxtseg)", area="right")
    corrections = finetune.new_corrections()
    truth = layers[1][0]
    corrections.data[middle] = truth[middle] + 1  # the user's painting (here: the truth of one slice)
    corrections.refresh()
    finetune.epochs.setText("2")
    finetune.steps.setText("4")
    finetune.device.setCurrentText("cpu")
    viewer.camera.zoom /= 2
    viewer.dims.set_point(0, middle * 30.0)  # the painted slice (the Measure widget moved the view)
    wait(finetune.train())
    viewer.screenshot(str(out / "napari_finetune.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
