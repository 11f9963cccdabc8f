"""napari dock widgets "Segment", "Measure" and "Correct and fine-tune": thin Qt forms over :mod:`sxtseg.napari._actions`.

Imported by napari only when a widget is opened (npe2 ``widgets``
contribution); this is the one module of sxtseg that imports Qt and napari.
Long work runs in a napari ``thread_worker`` with a napari progress bar, so
the viewer stays responsive; "Cancel" stops a segmentation after the block
being computed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._actions import Cancelled, corrections_layer, finetune_from_painting, measure_layer, segment_layer

__all__ = ["SegmentWidget", "MeasureWidget", "FineTuneWidget"]


def _layer_meta(layer) -> dict:
    """What the actions need of a layer: name, scale, units, translate, metadata."""
    return {"name": layer.name, "scale": tuple(layer.scale), "units": tuple(str(u) for u in layer.units),
            "translate": tuple(layer.translate), "metadata": dict(layer.metadata)}


def _level0(layer):
    """A layer's full-resolution data (level 0 of a pyramid), None for no layer."""
    if layer is None:
        return None
    return layer.data[0] if layer.multiscale else layer.data


class _ModelChoice(QComboBox):
    """An editable combo box of the shipped models; a typed or browsed ``*.pt`` path is a checkpoint."""

    def __init__(self):
        from sxtseg.models import shipped_models

        super().__init__()
        self.setEditable(True)
        self.addItems(list(shipped_models()))

    def model(self):
        """The shipped name, or the checkpoint as a Path."""
        text = self.currentText()
        return Path(text) if text.endswith(".pt") else text


def _device_choice() -> QComboBox:
    box = QComboBox()
    box.addItems(["auto", "cpu", "cuda"])
    return box


class _LayerChoice(QComboBox):
    """A combo box of the viewer's layers of one kind, kept up to date as layers come and go."""

    def __init__(self, viewer, kind: str, optional: bool = False):
        super().__init__()
        self.viewer, self.kind, self.optional = viewer, kind, optional
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.reordered.connect(self.refresh)
        self.refresh()

    def refresh(self, *_):
        current = self.currentText()
        self.clear()
        if self.optional:
            self.addItem("(none)")
        self.addItems([layer.name for layer in self.viewer.layers if layer._type_string == self.kind])
        if current:
            self.setCurrentText(current)

    def layer(self):
        name = self.currentText()
        return self.viewer.layers[name] if name and name != "(none)" and name in self.viewer.layers else None


def _report(status: QLabel, exc: BaseException) -> None:
    """Say what went wrong in the widget; a real error (not a cancel) also as a napari notification."""
    status.setText(str(exc))
    if not isinstance(exc, Cancelled):
        from napari.utils.notifications import show_error

        show_error(f"sxtseg: {exc}")


def _reported_steps(compute):
    """Generator for a napari worker: runs ``compute(report)`` in a helper thread, yields what it reports.

    ``compute`` calls ``report(step)`` as it goes and returns the result,
    which becomes the generator's (the worker's ``returned``).  napari's
    progress bar must be driven from the GUI thread, by the worker's
    ``yielded`` signal; a callback deep inside sxtseg cannot yield, so its
    steps travel through a queue.  An exception in ``compute`` is re-raised
    here, in the worker.
    """
    import queue

    steps: queue.Queue = queue.Queue()
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = compute(steps.put)
        except BaseException as exc:  # noqa: BLE001 - handed to the worker, which reports it
            outcome["error"] = exc
        finally:
            steps.put(None)

    helper = threading.Thread(target=target, daemon=True)
    helper.start()
    while (step := steps.get()) is not None:
        yield step
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _segment_steps(data, meta: dict, options: dict, stop: threading.Event):
    """Worker generator: yields (blocks done, blocks in all), returns the labels layer tuple; ``stop`` cancels."""

    def compute(report):
        def on_block(done, total):
            report((done, total))
            if stop.is_set():
                raise Cancelled(f"segmentation of {meta.get('name')} cancelled after {done} of {total} blocks")

        return segment_layer(data, meta, on_block=on_block, **options)

    return (yield from _reported_steps(compute))


class SegmentWidget(QWidget):
    """Segment an image layer with a shipped model or a checkpoint; the classes arrive as a Labels layer."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image = _LayerChoice(napari_viewer, "image")
        self.model = _ModelChoice()  # a shipped name, or a checkpoint path (typed or browsed)
        browse = QPushButton("Checkpoint...")
        browse.clicked.connect(self._browse)
        self.calibration = QComboBox()
        self.calibration.addItems(["auto", "none"])
        self.device = _device_choice()
        self.block_shape = QLineEdit("128,512,512")
        self.mirror = QCheckBox("average 8 mirror images (better, 8x the network's work)")
        self.mirror.setChecked(True)  # segment()'s default
        self.run_button = QPushButton("Segment")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)  # quality flags are long sentences
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model)
        model_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("image", self.image)
        form.addRow("model", model_row)
        form.addRow("calibration", self.calibration)
        form.addRow("device", self.device)
        form.addRow("block (z,y,x voxels)", self.block_shape)
        form.addRow("mirroring", self.mirror)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch()
        self.worker = None
        self._stop = threading.Event()

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "sxtseg checkpoint", "", "checkpoints (*.pt)")
        if path:
            self.model.setCurrentText(path)

    def run(self):
        """Start segmenting the chosen image layer in a worker thread; returns the worker."""
        from napari.qt.threading import thread_worker

        layer = self.image.layer()
        if layer is None:
            self.status.setText("choose an image layer")
            return None
        block = tuple(int(v) for v in self.block_shape.text().split(","))
        data = _level0(layer)  # full resolution
        meta = _layer_meta(layer)
        options = dict(model=self.model.model(), calibration=self.calibration.currentText(), device=self.device.currentText(),
                       block_shape=block, mirror=self.mirror.isChecked())
        self._stop.clear()
        worker = thread_worker(_segment_steps, progress={"desc": f"sxtseg: segment {layer.name}", "total": 0},
                               ignore_errors=True)(data, meta, options, self._stop)
        worker.yielded.connect(self._progress)
        worker.returned.connect(self._add)
        worker.errored.connect(lambda exc: _report(self.status, exc))
        worker.finished.connect(self._done)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"segmenting {layer.name}...")
        worker.start()
        return worker

    def _progress(self, step):
        done, total = step
        if self.worker is not None and getattr(self.worker, "pbar", None) is not None:
            self.worker.pbar.total = total  # napari's bar advances one step per yielded block
        self.status.setText(f"block {done} of {total}")

    def cancel(self):
        self._stop.set()

    def _add(self, layer_tuple):
        data, kwargs, _ = layer_tuple
        self.viewer.add_labels(data, **kwargs)
        flags = kwargs["metadata"]["sxtseg"].get("quality", [])
        self.status.setText("\n".join([f"added {kwargs['name']}"]
                                       + [f"quality: {f['flag']}: {f['message']}" for f in flags]))
        if flags:  # a result not to trust blindly is said where it cannot be missed
            from napari.utils.notifications import show_warning

            for flag in flags:
                show_warning(f"sxtseg: {flag['message']}")

    def _done(self):
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)


class MeasureWidget(QWidget):
    """Measure a Labels layer (intensities from an image layer): the table becomes the layer's features.

    Clicking a row centres the view on that object; "Export CSV" saves the table.
    """

    COLUMNS = ("label", "class_name", "volume_um3", "equivalent_diameter_nm", "sphericity", "intensity_mean")

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.labels = _LayerChoice(napari_viewer, "labels")
        self.image = _LayerChoice(napari_viewer, "image", optional=True)
        self.classes = _LayerChoice(napari_viewer, "labels", optional=True)
        self.measure_button = QPushButton("Measure")
        self.export_button = QPushButton("Export CSV...")
        self.export_button.setEnabled(False)
        self.table = QTableWidget()
        self.status = QLabel("")
        self.measure_button.clicked.connect(self.measure)
        self.export_button.clicked.connect(self._export_dialog)
        self.table.cellClicked.connect(self.centre_on_row)
        form = QFormLayout()
        form.addRow("labels", self.labels)
        form.addRow("image (intensities)", self.image)
        form.addRow("classes (optional)", self.classes)
        buttons = QHBoxLayout()
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        self.result = None
        self.worker = None

    def measure(self):
        """Measure in a worker thread; the result lands in the layer's ``features`` and the table."""
        from napari.qt.threading import thread_worker

        layer = self.labels.layer()
        if layer is None:
            self.status.setText("choose a labels layer")
            return None
        image, classes = self.image.layer(), self.classes.layer()
        args = (_level0(layer), _layer_meta(layer), _level0(image), None if image is None else _layer_meta(image),
                _level0(classes))
        self.worker = thread_worker(measure_layer, ignore_errors=True)(*args)
        self.worker.returned.connect(lambda table: self._show(layer, table, with_classes=classes is not None))
        self.worker.errored.connect(lambda exc: _report(self.status, exc))
        self.status.setText(f"measuring {layer.name}...")
        self.worker.start()
        return self.worker

    def _show(self, layer, table, with_classes: bool = False):
        from sxtseg.classes import CLASS_NAMES

        if with_classes and "class_id" in table and "class_name" not in table:  # class_id is 0 without classes
            table.insert(2, "class_name", [CLASS_NAMES.get(int(c), str(c)) for c in table["class_id"]])
        layer.features = table
        self.result, self.layer = table, layer
        columns = [c for c in self.COLUMNS if c in table]
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(table))
        for row, values in enumerate(table[columns].itertuples(index=False)):
            for col, value in enumerate(values):
                text = f"{value:.4g}" if isinstance(value, float) else str(value)
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.export_button.setEnabled(True)
        self.status.setText(f"{len(table)} objects in {layer.name}")

    def centre_on_row(self, row: int, _column: int = 0):
        """Centre the view (and the z slider) on the object of table row ``row``."""
        if self.result is None:
            return
        obj = self.result.iloc[row]
        world = [obj[f"centroid_{a}_vox"] * s + t for a, s, t in
                 zip("zyx"[-self.layer.ndim:], self.layer.scale, self.layer.translate)]
        self.viewer.dims.set_point(range(self.layer.ndim), world)
        self.viewer.camera.center = world
        self.layer.selected_label = int(obj["label"])

    def export_csv(self, path) -> Path:
        """Write the last table to ``path`` (CSV)."""
        self.result.to_csv(path, index=False)
        return Path(path)

    def _export_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "objects table", "objects.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)


def _finetune_steps(image, image_meta: dict, painted, options: dict, segment_options: dict, stop: threading.Event):
    """Worker generator: yields each epoch's row, then re-segments; returns (fit result, labels layer tuple)."""

    def compute(report):
        def on_epoch(row):
            report(row)
            if stop.is_set():
                raise Cancelled(f"fine-tuning cancelled after epoch {row['epoch']}")

        result = finetune_from_painting(image, image_meta, painted, on_epoch=on_epoch, **options)
        report({"stage": "segment"})
        layer = segment_layer(image, image_meta, model=result["last_checkpoint"],
                              name=f"{image_meta.get('name') or 'image'} classes (fine-tuned)", **segment_options)
        return result, layer

    return (yield from _reported_steps(compute))


class FineTuneWidget(QWidget):
    """Paint corrections on a few slices, fine-tune the model on them, and re-segment with it.

    "New corrections layer" adds an empty Labels layer over the image: paint
    with value ``class code + 1`` (the "paint class" box sets it; 0 stays
    unpainted and is ignored by training, background is value 1).  "Train"
    fine-tunes the model (its architecture, classes and normalisation kept)
    on the painted voxels in a worker thread, with a progress bar and the
    live loss, saves ``best.pt`` / ``last.pt`` with their provenance in the
    output folder, and segments the image again with the new weights.
    """

    def __init__(self, napari_viewer):
        import tempfile

        from sxtseg.classes import CLASS_NAMES

        super().__init__()
        self.viewer = napari_viewer
        self.image = _LayerChoice(napari_viewer, "image")
        self.corrections = _LayerChoice(napari_viewer, "labels")
        self.new_button = QPushButton("New corrections layer")
        self.new_button.clicked.connect(self.new_corrections)
        self.paint_class = QComboBox()
        self.paint_class.addItems([f"{code}: {name}" for code, name in CLASS_NAMES.items()])
        self.paint_class.currentIndexChanged.connect(self._select_class)
        self.model = _ModelChoice()
        self.epochs = QLineEdit("6")
        self.steps = QLineEdit("40")
        self.output = QLineEdit(tempfile.mkdtemp(prefix="sxtseg-finetune-"))
        self.device = _device_choice()
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.loss = QLabel("")
        self.status = QLabel("")
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(lambda: self._stop.set())
        form = QFormLayout()
        form.addRow("image", self.image)
        form.addRow(self.new_button)
        form.addRow("corrections", self.corrections)
        form.addRow("paint class", self.paint_class)
        form.addRow("start model", self.model)
        form.addRow("epochs", self.epochs)
        form.addRow("steps per epoch", self.steps)
        form.addRow("device (re-segment)", self.device)
        form.addRow("output folder", self.output)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.loss)
        layout.addWidget(self.status)
        layout.addStretch()
        self.worker = None
        self.result = None
        self.history: list[dict] = []
        self._stop = threading.Event()

    def new_corrections(self):
        """Add an empty corrections Labels layer matching the chosen image; returns it."""
        layer = self.image.layer()
        if layer is None:
            self.status.setText("choose an image layer")
            return None
        data = _level0(layer)
        blank, kwargs, _ = corrections_layer(data.shape, _layer_meta(layer), name=f"{layer.name} corrections")
        corrections = self.viewer.add_labels(blank, **kwargs)
        corrections.mode = "paint"
        corrections.n_edit_dimensions = 2  # paint slice by slice
        self.corrections.setCurrentText(corrections.name)
        self._select_class()
        return corrections

    def _select_class(self, *_):
        layer = self.corrections.layer()
        if layer is not None:
            layer.selected_label = self.paint_class.currentIndex() + 1

    def train(self):
        """Fine-tune on the painted voxels and re-segment, in a worker thread; returns the worker."""
        from napari.qt.threading import thread_worker

        image, corrections = self.image.layer(), self.corrections.layer()
        if image is None or corrections is None:
            self.status.setText("choose an image and a corrections layer")
            return None
        data = _level0(image)
        options = dict(model=self.model.model(), out_dir=Path(self.output.text()),
                       epochs=int(self.epochs.text()), steps_per_epoch=int(self.steps.text()))
        segment_options = dict(device=self.device.currentText(), block_shape=tuple(int(n) for n in data.shape))
        self._stop.clear()
        self.history = []
        worker = thread_worker(_finetune_steps, progress={"desc": "sxtseg: fine-tune", "total": options["epochs"] + 1},
                               ignore_errors=True)(data, _layer_meta(image), corrections.data.copy(), options,
                                                   segment_options, self._stop)
        worker.yielded.connect(self._epoch)
        worker.returned.connect(self._finished)
        worker.errored.connect(lambda exc: _report(self.status, exc))
        worker.finished.connect(lambda: (self.train_button.setEnabled(True), self.cancel_button.setEnabled(False)))
        self.worker = worker
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("fine-tuning...")
        worker.start()
        return worker

    def _epoch(self, row):
        if row.get("stage") == "segment":
            self.status.setText("segmenting with the fine-tuned model...")
            return
        self.history.append(row)
        self.loss.setText(f"epoch {row['epoch']}: loss {row['loss']:.4f}")

    def _finished(self, outcome):
        result, (data, kwargs, _) = outcome
        self.result = result
        self.viewer.add_labels(data, **kwargs)
        self.status.setText(f"saved {result['last_checkpoint']}; added {kwargs['name']}")

