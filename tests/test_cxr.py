"""Chest X-ray adapter: reading real radiographs, COVID-Net preprocessing, COVIDx data, training, ranking."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pydicom = pytest.importorskip("pydicom")
PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from conftest import shared_data  # noqa: E402

from sxtseg.adapters import cxr  # noqa: E402
from sxtseg.errors import (  # noqa: E402
    CorruptFileError,
    InputNotFoundError,
    InvalidArgumentError,
    OutputExistsError,
    SxtsegError,
    UnsupportedFormatError,
)
from sxtseg.models import load_model  # noqa: E402
from sxtseg.train import (  # noqa: E402
    ClassifierConfig,
    TrainingConfig,
    balanced_sampler,
    classification_metrics,
    confusion_matrix,
    fit,
    fit_classifier,
)

FOLDER = "cxr-torchxrayvision-tests"
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
PILLOW_IMAGES = ["00000001_000.png", "00027426_000.png", "16747_3_1.jpg", "covid-19-pneumonia-58-prior.jpg",
                 "tbx11k_test_data/imgs/health/h0001.png", "tbx11k_test_data/imgs/tb/tb0005.png",
                 "tbx11k_test_data/imgs/tb/tb0007.png"]
CT_SLICE = ("ct-lung-pet-ct-dx-A0002", "A0002_thorax_B40f_series3", "1-01.dcm")
TINY_NET = {"init_features": 8, "growth_rate": 4}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_cxr_classifier.py"


def _real(name: str) -> Path:
    return shared_data(FOLDER, *name.split("/"))


def _mediastinum_minus_lungs(image: np.ndarray) -> tuple[float, float]:
    """Central column band (mediastinum) minus the darker quarter of the columns left and right of it (lungs).

    Over the rows 30-60 % of the height: the median of the columns' mean
    values in the middle 10 % of the width, minus the 25th percentile of the
    columns in 10-45 % and 55-90 % of the width.  Positive on a normally
    displayed chest radiograph (bright mediastinum, dark lungs).
    """
    h, w = image.shape
    profile = image[int(0.3 * h):int(0.6 * h)].mean(axis=0)
    middle = np.median(profile[int(0.45 * w):int(0.55 * w)])
    left = np.percentile(profile[int(0.10 * w):int(0.45 * w)], 25)
    right = np.percentile(profile[int(0.55 * w):int(0.90 * w)], 25)
    return float(middle - left), float(middle - right)


# ------------------------------------------------------------------------------ reading real files
@pytest.mark.parametrize("name", PILLOW_IMAGES)
def test_real_png_and_jpeg_open_upright_in_unit_range(name):
    path = _real(name)
    image = cxr.open_cxr(path)
    with Image.open(path) as im:
        mode, (width, height) = im.mode, im.size
        first_channel = np.asarray(im)[..., 0] if im.mode == "RGB" else np.asarray(im)
    pixels = image.to_numpy()
    assert image.axes == "yx" and image.shape == (height, width) and pixels.dtype == np.float32
    assert image.voxel_size is None and image.unit == "mm" and image.metadata["pixel_spacing_mm"] is None
    assert image.metadata["bit_depth"] == 8 and image.metadata["pillow_mode"] == mode
    assert image.metadata["source"]["format"] == ("PNG" if name.endswith(".png") else "JPEG")
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0 and pixels.max() > 0.9
    # the grey channel of the file, row 0 at the top, scaled by 1/255 (RGB files hold grey: R = G = B)
    np.testing.assert_allclose(pixels, first_channel / 255.0, atol=1e-6)
    assert min(_mediastinum_minus_lungs(pixels)) > 0.15


def test_real_dicom_jpeg_baseline_and_its_monochrome1_copy():
    mono2 = cxr.open_cxr(_real(SIIM))
    mono1 = cxr.open_cxr(_real("Fake_MONOHR1.dcm"))
    for image, photometric in ((mono2, "MONOCHROME2"), (mono1, "MONOCHROME1")):
        assert image.shape == (1024, 1024) and image.voxel_size == (0.168, 0.168) and image.unit == "mm"
        assert image.metadata["photometric_interpretation"] == photometric
        assert image.metadata["modality"] == "CR" and image.metadata["bit_depth"] == 8
        assert image.metadata["transfer_syntax"] == "1.2.840.10008.1.2.4.50"  # JPEG baseline, decoded
        assert image.metadata["pixel_spacing_source"] == "PixelSpacing" and image.metadata["voi"] is None
    a, b = mono2.to_numpy(), mono1.to_numpy()
    assert 0.0 <= a.min() and a.max() == 1.0
    assert mono1.metadata["inverted"] and not mono2.metadata["inverted"]
    assert min(_mediastinum_minus_lungs(a)) > 0.2  # MONOCHROME2: lungs dark, mediastinum bright
    # Fake_MONOHR1.dcm is the same pixel data with only the header changed to MONOCHROME1 (the
    # torchxrayvision authors' test file): read as its header says, it is the exact negative
    assert pydicom.dcmread(_real(SIIM)).PixelData == pydicom.dcmread(_real("Fake_MONOHR1.dcm")).PixelData
    np.testing.assert_allclose(b, 1.0 - a, atol=1e-6)
    np.testing.assert_allclose(1.0 - b, a, atol=1e-6)  # inverted back, the two agree
    assert max(_mediastinum_minus_lungs(b)) < 0.0


def test_pydicom_chest_cr_monochrome1_15_bit_zero_spacing():
    path = pydicom.data.get_testdata_file("RG1_UNCR.dcm")
    with pytest.warns(cxr.CxrWarning, match=r"RG1_UNCR\.dcm: PixelSpacing is .*0\.000.*left unset \(None\)"):
        image = cxr.open_cxr(path)
    meta = image.metadata
    assert image.shape == (1955, 1841) and image.voxel_size is None and meta["pixel_spacing_mm"] is None
    assert meta["bit_depth"] == 15 and meta["photometric_interpretation"] == "MONOCHROME1" and meta["inverted"]
    assert meta["voi"] == {"kind": "window", "center": 15000.0, "width": 30000.0, "function": "LINEAR"}
    assert meta["display_range"] == [0.0, 32767.0]  # the window's output range for 15 bits
    pixels = image.to_numpy()
    # DICOM PS3.3 C.11.2.1.2 LINEAR window, by hand: ((x - (c - 0.5)) / (w - 1) + 0.5), clipped; then inverted
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    expected = 1.0 - np.clip((stored - 14999.5) / 29999.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(pixels, expected, atol=2e-5)
    assert min(_mediastinum_minus_lungs(pixels)) > 0.15  # inverted: lungs darker than the mediastinum


def test_rgba_colour_and_16_bit_png(tmp_path):
    with Image.open(_real("00000001_000.png")) as im:
        grey = np.asarray(im)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = cxr.open_cxr(tmp_path / "rgba.png")
    assert image.shape == grey.shape and image.metadata["pillow_mode"] == "RGBA"
    np.testing.assert_allclose(image.to_numpy(), grey / 255.0, atol=1e-6)

    colour = np.dstack([grey, grey // 2, grey // 4])  # a real colour image: luminance, with a warning
    Image.fromarray(colour, "RGB").save(tmp_path / "colour.png")
    with pytest.warns(cxr.CxrWarning, match="colour image"):
        image = cxr.open_cxr(tmp_path / "colour.png")
    np.testing.assert_allclose(image.to_numpy(), (colour @ [0.299, 0.587, 0.114]) / 255.0, atol=1e-5)

    deep = grey.astype(np.uint16) * 257  # 8 -> 16 bits
    Image.fromarray(deep).save(tmp_path / "deep.png")
    image = cxr.open_cxr(tmp_path / "deep.png")
    assert image.metadata["bit_depth"] == 16
    np.testing.assert_allclose(image.to_numpy(), grey / 255.0, atol=1e-6)


# ------------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_raise_errors_naming_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UnsupportedFormatError, match=r"notes\.png: not a chest X-ray file"):
        cxr.open_cxr(text)
    with pytest.raises(InputNotFoundError, match="absent.dcm: no such file"):
        cxr.open_cxr(tmp_path / "absent.dcm")

    ds = pydicom.dcmread(_real(SIIM))
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm", enforce_file_format=True)
    with pytest.raises(UnsupportedFormatError, match=r"no_pixels\.dcm: a DICOM file without pixel data"):
        cxr.open_cxr(tmp_path / "no_pixels.dcm")

    ct = shared_data(*CT_SLICE)
    with pytest.raises(UnsupportedFormatError, match=r"1-01\.dcm: Modality CT, not a projection radiograph"):
        cxr.open_cxr(ct)

    data = _real("00000001_000.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.png: damaged PNG"):
        cxr.open_cxr(tmp_path / "cut.png")

    data = _real(SIIM).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.dcm: a damaged or truncated DICOM file"):
        cxr.open_cxr(tmp_path / "cut.dcm")


def test_compressed_dicom_without_decoder_names_the_package(tmp_path, monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGBaseline8Bit

    decoder = get_decoder(JPEGBaseline8Bit)
    monkeypatch.setattr(decoder, "_available", {})  # as if pillow and pylibjpeg were not installed
    with pytest.raises(UnsupportedFormatError, match=r"850819\.dcm: .*JPEG Baseline.*no decoder for it is "
                                                      r"installed; pip install pylibjpeg pylibjpeg-libjpeg"):
        cxr.open_cxr(_real(SIIM))
    monkeypatch.undo()

    ds = pydicom.dcmread(_real(SIIM))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.92"  # JPEG 2000 Part 2: pydicom 3.0 has no decoder
    ds.save_as(tmp_path / "part2.dcm")
    with pytest.raises(UnsupportedFormatError, match=r"part2\.dcm: pixel data compressed as JPEG 2000 Part 2"
                                                      r".*which no pydicom decoder reads"):
        cxr.open_cxr(tmp_path / "part2.dcm")


# --------------------------------------------------------------------------------- preprocessing
def test_to_model_input_follows_covidnet_crops_and_bilinear_resize():
    # rows 0..99 of a vertical ramp: the top int(100 * 0.08) = 8 rows go, then the centred 80 x 80
    # square of the 92 left starts (92 - 80) // 2 = 6 rows lower: source rows 14..93
    ramp = np.repeat(np.arange(100, dtype=np.float32)[:, None] / 99.0, 80, axis=1)
    same = cxr.to_model_input(ramp, size=80)
    assert same.shape == (1, 80, 80) and same.dtype == np.float32
    np.testing.assert_allclose(same[0, :, 0], np.arange(14, 94) / 99.0, atol=1e-6)
    # halving samples between source rows 2i and 2i+1 (half-pixel centres, as OpenCV's INTER_LINEAR)
    half = cxr.to_model_input(ramp, size=40)
    np.testing.assert_allclose(half[0, :, 0], (14 + 2 * np.arange(40) + 0.5) / 99.0, atol=1e-6)
    # a wide image loses equal bands left and right (offset rounded down)
    wide = np.zeros((50, 71), np.float32)
    wide[:, :12] = wide[:, -11:] = 1.0
    assert cxr.to_model_input(wide, size=46).max() == 0.0  # 46 rows left; columns 12..57 kept
    tensor = cxr.to_model_input(cxr.open_cxr(_real(SIIM)), size=224, as_tensor=True)
    assert tuple(tensor.shape) == (1, 224, 224) and str(tensor.dtype) == "torch.float32"
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    with pytest.raises(InvalidArgumentError, match="size must be"):
        cxr.to_model_input(ramp, size=0)


# ---------------------------------------------------------------------------------------- COVIDx
def test_covidx_label_files_three_class_and_binary(tmp_path):
    three = tmp_path / "train.txt"
    three.write_text("3 SARS-10.1148rg.242035193-g04mr34g0-Fig8a-day0.jpeg COVID-19 cohen\n"
                     "\n"
                     "8a3f0b3e 8a3f0b3e-59f8-4ee0.png normal rsna\n"
                     "19 pneumonia_19.jpg PNEUMONIA sirm\n")
    table = cxr.read_covidx_labels(three)
    assert table["label"].tolist() == ["COVID-19", "normal", "pneumonia"]  # canonical spelling
    assert table["filename"].tolist()[0] == "SARS-10.1148rg.242035193-g04mr34g0-Fig8a-day0.jpeg"
    assert table["source"].tolist() == ["cohen", "rsna", "sirm"] and table["line"].tolist() == [1, 3, 4]
    binary = tmp_path / "test.txt"
    binary.write_text("419639-003251 MIDRC-RICORD-1C-419639-003251-46647-0.png positive rsna\n"
                      "a1 a1.png negative bimcv\n")
    assert cxr.read_covidx_labels(binary)["label"].tolist() == ["positive", "negative"]

    bad = tmp_path / "bad.txt"
    bad.write_text("a1 a1.png normal rsna\nb2 b2.png normal\n")
    with pytest.raises(CorruptFileError, match=r"bad\.txt, line 2: .* has 3 fields"):
        cxr.read_covidx_labels(bad)
    bad.write_text("a1 a1.png tuberculosis rsna\n")
    with pytest.raises(CorruptFileError, match=r"bad\.txt, line 1: unknown label 'tuberculosis'"):
        cxr.read_covidx_labels(bad)


def test_covidx_dataset_reports_missing_images(tmp_path):
    label_file = cxr.make_demo_covidx(tmp_path, per_class=3, size=48)
    lines = label_file.read_text().splitlines()
    lines += [f"ghost{i} ghost_{i}.png COVID-19 nowhere" for i in range(7)]
    label_file.write_text("\n".join(lines) + "\n")
    with pytest.warns(cxr.CxrWarning, match=r"7 listed image\(s\) are missing .*ghost_0\.png, ghost_1\.png, "
                                            r"ghost_2\.png, ghost_3\.png, ghost_4\.png, \.\.\."):
        data = cxr.CovidxDataset(label_file, tmp_path / "images", size=32)
    assert len(data) == 9 and len(data.missing) == 7 and data.classes == cxr.THREE_CLASSES
    assert data.class_counts() == {"normal": 3, "pneumonia": 3, "COVID-19": 3}
    item = data[4]
    assert tuple(item["image"].shape) == (1, 32, 32) and item["label"] == 1 and "pneumonia" in item["path"]
    with pytest.raises(InputNotFoundError, match=r"train\.txt: 7 listed image\(s\) are missing"):
        cxr.CovidxDataset(label_file, tmp_path / "images", size=32, strict=True)

    binary = cxr.make_demo_covidx(tmp_path / "binary", per_class=2, size=48, binary=True)
    data = cxr.CovidxDataset(binary, tmp_path / "binary" / "images", size=32)
    assert data.classes == cxr.BINARY_CLASSES and data.class_counts() == {"negative": 4, "positive": 2}


def test_augmentation_is_seeded_per_epoch_and_image(tmp_path):
    label_file = cxr.make_demo_covidx(tmp_path, per_class=1, size=48)
    a = cxr.CovidxDataset(label_file, tmp_path / "images", size=32, augment=True, seed=3)
    b = cxr.CovidxDataset(label_file, tmp_path / "images", size=32, augment=True, seed=3)
    plain = cxr.CovidxDataset(label_file, tmp_path / "images", size=32)
    first = a[0]["image"]
    assert np.array_equal(first.numpy(), b[0]["image"].numpy())  # same seed, epoch and image
    assert not np.allclose(first.numpy(), plain[0]["image"].numpy())  # augmented
    a.set_epoch(1)
    assert not np.allclose(a[0]["image"].numpy(), first.numpy())  # another epoch, other draws
    assert 0.0 <= float(first.min()) and float(first.max()) <= 1.0


def test_balanced_sampler_draws_classes_equally_often(tmp_path):
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    drawn = labels[list(balanced_sampler(labels, num_samples=3000, seed=5))]
    frequencies = np.bincount(drawn, minlength=3) / drawn.size
    np.testing.assert_allclose(frequencies, 1 / 3, atol=0.04)
    assert list(balanced_sampler(labels, num_samples=50, seed=5)) == list(balanced_sampler(labels, num_samples=50,
                                                                                           seed=5))
    label_file = cxr.make_demo_covidx(tmp_path, per_class=4, size=48, binary=True)  # 8 negative, 4 positive
    data = cxr.CovidxDataset(label_file, tmp_path / "images", size=32)
    drawn = data.labels[list(data.sampler(num_samples=2000, seed=1))]
    assert abs(drawn.mean() - 0.5) < 0.04  # uniform sampling would give 1/3 positive


# --------------------------------------------------------------------------------------- metrics
def test_metrics_of_a_known_confusion_matrix():
    confusion = [[90, 8, 2],   # true normal
                 [5, 85, 10],  # true pneumonia
                 [1, 4, 95]]   # true COVID-19
    m = classification_metrics(confusion, cxr.THREE_CLASSES)
    assert m["classes"] == ["normal", "pneumonia", "COVID-19"]
    # sensitivity = diagonal / row sum; PPV = diagonal / column sum
    assert m["sensitivity"] == pytest.approx({"normal": 0.90, "pneumonia": 0.85, "COVID-19": 0.95})
    assert m["ppv"] == pytest.approx({"normal": 90 / 96, "pneumonia": 85 / 97, "COVID-19": 95 / 107})
    assert m["ppv"]["COVID-19"] == pytest.approx(0.8878504672897196)
    assert m["accuracy"] == pytest.approx(0.9) and m["mean_sensitivity"] == pytest.approx(0.9)
    assert m["support"] == {"normal": 100, "pneumonia": 100, "COVID-19": 100}

    true = [0, 0, 0, 1, 1, 2]
    predicted = [0, 1, 1, 1, 1, 1]
    matrix = confusion_matrix(true, predicted, 3)
    assert matrix.tolist() == [[1, 2, 0], [0, 2, 0], [0, 1, 0]]
    m = classification_metrics(matrix, ["normal", "pneumonia", "COVID-19"])
    assert m["sensitivity"] == pytest.approx({"normal": 1 / 3, "pneumonia": 1.0, "COVID-19": 0.0})
    assert m["ppv"]["normal"] == 1.0 and m["ppv"]["pneumonia"] == 0.4 and np.isnan(m["ppv"]["COVID-19"])


# ------------------------------------------------------------------------------ training, scoring
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny DenseNet-121 trained on generated COVIDx-format images (shared by the tests below)."""
    folder = tmp_path_factory.mktemp("covidx")
    label_file = cxr.make_demo_covidx(folder, per_class=8, size=64, seed=2, masks=True)
    data = cxr.CovidxDataset(label_file, folder / "images", size=64, augment=False, seed=0)
    config = ClassifierConfig(model_config=TINY_NET, input_size=64, batch_size=8, epochs=6, steps_per_epoch=8,
                              learning_rate=3e-3, seed=0)
    result = fit_classifier(data, folder / "run", config=config, validation=data, progress=False)
    return {"folder": folder, "data": data, "result": result, "checkpoint": result["last_checkpoint"]}


def test_tiny_classifier_training_lowers_the_loss(trained):
    history = trained["result"]["history"]
    losses = [row["loss"] for row in history]
    assert len(history) == 6 and losses[-1] < 0.5 * losses[0]
    assert {"accuracy", "sensitivity_COVID-19", "ppv_normal", "score"} <= set(history[-1])
    model = load_model(trained["checkpoint"])
    meta = model.metadata
    assert meta["task"] == "classification" and meta["classes"] == cxr.THREE_CLASSES
    assert meta["architecture"]["name"] == "densenet121" and meta["architecture"]["config"] == TINY_NET
    assert meta["input"]["size"] == 64 and meta["input"]["preprocessing"]["top_percent"] == 0.08
    assert meta["training"]["class_counts"] == {"normal": 8, "pneumonia": 8, "COVID-19": 8}
    assert (Path(trained["checkpoint"]).parent / "training_log.csv").exists()


def test_training_is_deterministic(tmp_path):
    images = [{"image": np.full((1, 64, 64), (i % 3) / 2, np.float32), "label": i % 3} for i in range(9)]
    config = ClassifierConfig(model_config=TINY_NET, input_size=64, classes=cxr.THREE_CLASSES, batch_size=3,
                              epochs=1, steps_per_epoch=2, seed=4)
    a = fit_classifier(images, tmp_path / "a", config=config, progress=False)
    b = fit_classifier(images, tmp_path / "b", config=config, progress=False)
    assert a["history"][0]["loss"] == b["history"][0]["loss"]
    assert load_model(a["last_checkpoint"]).metadata["sha256"] == load_model(b["last_checkpoint"]).metadata["sha256"]
    with pytest.raises(SxtsegError, match=r"shape \(1, 64, 64\).*input is \(1, 32, 32\)"):
        fit_classifier(images, tmp_path / "c", config=ClassifierConfig(input_size=32, classes=cxr.THREE_CLASSES))


def test_evaluate_and_covid_score(trained):
    data = trained["data"]
    metrics = cxr.evaluate(trained["checkpoint"], data)
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == len(data)
    assert confusion.sum(axis=1).tolist() == [8, 8, 8]
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / len(data))
    assert metrics["sensitivity"]["COVID-19"] == pytest.approx(confusion[2, 2] / 8)
    # the cartoon classes are easy: on its own training images the tiny model is nearly always right
    assert metrics["accuracy"] >= 0.75 and metrics["sensitivity"]["COVID-19"] >= 0.75
    path = data.items["path"][20]  # a COVID-19 image
    probabilities = cxr.predict_probabilities(path, trained["checkpoint"])
    assert list(probabilities) == ["normal", "pneumonia", "COVID-19"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    score = cxr.covid_score(cxr.open_cxr(path), load_model(trained["checkpoint"]))
    assert score == pytest.approx(probabilities["COVID-19"], abs=1e-6)
    np.testing.assert_allclose(metrics["probabilities"][20], list(probabilities.values()), atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="trained on 64 x 64 inputs, not 480 x 480"):
        cxr.covid_score(path, trained["checkpoint"], size=480)


def test_rank_images_end_to_end(trained, tmp_path):
    images = trained["folder"] / "images"
    inputs = [images / "demo_normal_000.png", images / "demo_covid-19_001.png", _real(SIIM),
              _real("16747_3_1.jpg"), images / "demo_pneumonia_002.png"]
    out = tmp_path / "ranked"
    table = cxr.rank_images(inputs, trained["checkpoint"], out, size=64, progress=False)
    assert list(table.columns) == ["path", "covid_probability", "rank", "probability_normal",
                                   "probability_pneumonia", "probability_COVID-19", "pixel_spacing_y_mm",
                                   "pixel_spacing_x_mm"]
    assert len(table) == 5 and table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (np.diff(table["covid_probability"]) <= 0).all()  # ranked by the probability, highest first
    assert (table["covid_probability"] == table["probability_COVID-19"]).all()
    for path in inputs:  # each score is the image's own COVID-19 probability
        row = table[table["path"] == str(path.resolve())].iloc[0]
        assert row["covid_probability"] == pytest.approx(cxr.covid_score(path, trained["checkpoint"]), abs=1e-6)
    demo = {Path(p).name.split("_")[1]: prob for p, prob in zip(table["path"], table["covid_probability"])
            if Path(p).name.startswith("demo_")}
    assert demo["covid-19"] > max(demo["normal"], demo["pneumonia"])  # the COVID-19 cartoon ranks first of them
    dicom = table[table["path"].str.endswith(".dcm")].iloc[0]
    assert dicom["pixel_spacing_y_mm"] == 0.168 and table["pixel_spacing_x_mm"].isna().sum() == 4
    on_disk = pd.read_csv(out / "ranking.csv")
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    assert sorted(p.name for p in out.iterdir()) == ["ranking.csv"]  # no temporary file left

    with pytest.raises(OutputExistsError, match="ranked: exists"):
        cxr.rank_images(inputs, trained["checkpoint"], out, size=64, progress=False)
    again = cxr.rank_images(inputs[:2], trained["checkpoint"], out, size=None, overwrite=True, progress=False)
    assert len(pd.read_csv(out / "ranking.csv")) == len(again) == 2
    victim = tmp_path / "ranking.csv"
    shutil.copy(inputs[0], victim)
    with pytest.raises(OutputExistsError, match="write over an input"):
        cxr.rank_images([victim], trained["checkpoint"], tmp_path, size=64, overwrite=True, progress=False)
    assert victim.read_bytes() == inputs[0].read_bytes()
    bad = tmp_path / "report.jpg"
    bad.write_text("not an image")
    with pytest.raises(UnsupportedFormatError, match=r"report\.jpg"):
        cxr.rank_images([inputs[0], bad], trained["checkpoint"], tmp_path / "bad", size=64, progress=False)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(InvalidArgumentError, match="trained on 64 x 64"):
        cxr.rank_images(inputs, trained["checkpoint"], tmp_path / "size", progress=False)  # default 480


def test_cxr_command_ranks_and_refuses_bad_outputs(trained, tmp_path, capsys):
    from sxtseg.cli import main

    images = trained["folder"] / "images"
    out = tmp_path / "cli"
    inputs = [str(images / "demo_normal_000.png"), str(images / "demo_covid-19_001.png")]
    assert main(["cxr", *inputs, "--model", str(trained["checkpoint"]), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "ranking of 2 image(s)" in printed and "COVID-19 probability" in printed
    assert len(pd.read_csv(out / "ranking.csv")) == 2
    assert main(["cxr", *inputs, "--model", str(trained["checkpoint"]), "-o", str(out), "-q"]) == 2
    assert "exists" in capsys.readouterr().err
    ct_slice = shared_data("ct-lung-pet-ct-dx-A0002", "A0002_thorax_B40f_series3", "1-01.dcm")
    assert main(["cxr", str(ct_slice), "--model", str(trained["checkpoint"]), "-o", str(tmp_path / "x")]) == 2
    assert "1-01.dcm: Modality CT" in capsys.readouterr().err


def test_lung_segmenter_trained_with_fit_adds_opacity_fraction(trained, tmp_path):
    folder = trained["folder"]
    names = ["demo_covid-19_000.png", "demo_normal_000.png"]
    pairs = [cxr.lung_training_pair(cxr.open_cxr(folder / "images" / n),
                                    np.asarray(Image.open(folder / "masks" / n)), size=64) for n in names]
    image, labels = pairs[0]
    assert image.shape == labels.shape == (1, 64, 64) and labels.dtype == np.uint8
    assert set(np.unique(labels.to_numpy())) == {0, 1, 2}
    config = TrainingConfig(model="msdnet", model_config={"depth": 6}, spatial_dims=2, patch_size=(64, 64),
                            classes={"background": 0, "lung": 1, "opacity": 2}, epochs=1, steps_per_epoch=2,
                            batch_size=2, augment=False, calibration="none",
                            intensity={"method": "fixed", "low": 0.0, "high": 1.0})
    result = fit(pairs, tmp_path / "lung", config=config, progress=False)
    table = cxr.rank_images([folder / "images" / n for n in names], trained["checkpoint"], tmp_path / "out",
                            size=64, lung_model=result["last_checkpoint"], progress=False)
    fractions = table["lung_opacity_fraction"].to_numpy()
    assert fractions.shape == (2,) and np.all((np.isnan(fractions)) | ((fractions >= 0) & (fractions <= 1)))
    assert "lung_opacity_fraction" in pd.read_csv(tmp_path / "out" / "ranking.csv").columns
    # the fraction itself, on known labels
    labels = np.array([[0, 1, 1, 1], [2, 1, 0, 0]])
    assert cxr.lung_opacity_fraction(labels, {"background": 0, "lung": 1, "opacity": 2}) == 1 / 5  # 4 lung, 1 opaque
    assert np.isnan(cxr.lung_opacity_fraction(np.zeros((3, 3)), {"background": 0, "lung": 1, "opacity": 2}))
    with pytest.raises(InvalidArgumentError, match="lack opacity"):
        cxr.lung_opacity_fraction(labels, {"background": 0, "lung": 1})
    with pytest.raises(InvalidArgumentError, match="not a classifier"):
        cxr.rank_images([folder / "images" / names[0]], result["last_checkpoint"], tmp_path / "x", progress=False)


def test_rank_images_reads_folders_and_skips_other_files(trained, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(trained["folder"] / "images" / "demo_normal_001.png", folder / "a.png")
    shutil.copy(_real(SIIM), folder / "b")  # a DICOM without a suffix
    (folder / "readme.txt").write_text("notes")
    with pytest.warns(cxr.CxrWarning, match=r"1 file\(s\) that are not DICOM, PNG or JPEG were ignored: readme\.txt"):
        table = cxr.rank_images([folder], trained["checkpoint"], tmp_path / "out", size=64, progress=False)
    assert sorted(Path(p).name for p in table["path"]) == ["a.png", "b"]


def test_example_trains_on_a_generated_covidx_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--make-demo-data", str(tmp_path / "demo"), "--out", str(tmp_path / "run"),
         "--tiny", "--size", "64", "--epochs", "1", "--steps", "2", "--per-class", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "best.pt").exists() and "sensitivity" in result.stdout
    assert load_model(tmp_path / "run" / "best.pt").metadata["task"] == "classification"


def test_segmentation_code_refuses_a_classifier(trained):
    from sxtseg import Volume, segment
    from sxtseg.train import TrainingConfig, inherit_checkpoint

    with pytest.raises(InvalidArgumentError, match="a classification model"):
        segment(Volume(np.zeros((8, 16, 16), np.float32), voxel_size=30.0), model=trained["checkpoint"],
                calibration="none")
    with pytest.raises(InvalidArgumentError, match="a classification checkpoint"):
        inherit_checkpoint(TrainingConfig(init_checkpoint=str(trained["checkpoint"])))
