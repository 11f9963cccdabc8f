"""sxtseg.calibrate: every grey-value convention back to LAC, flags where it cannot be trusted; input guards."""

from __future__ import annotations

import numpy as np
import pytest

from sxtseg import Volume, make_infected_cell
from sxtseg.calibration import REFERENCE_LAC, CalibrationRecord, CalibrationWarning, calibrate, parse_calibration
from sxtseg.errors import InvalidArgumentError, InvalidDataError, VoxelSizeError


@pytest.fixture(scope="module")
def cell():
    image, classes, _, _ = make_infected_cell((48, 144, 144), seed=31)
    return image.to_numpy(), classes.to_numpy()


# (name, forward map from LAC, true scale of the inverse map lac = s * value + o, true offset)
CONVENTIONS = [
    ("lac", lambda a: a, 1.0, 0.0),
    ("lac x0.6", lambda a: a * 0.6, 1 / 0.6, 0.0),
    ("lac x1.6", lambda a: a * 1.6, 1 / 1.6, 0.0),
    ("offset -0.08", lambda a: a - 0.08, 1.0, 0.08),
    ("offset +0.08", lambda a: a + 0.08, 1.0, -0.08),
    ("attenuation per voxel", lambda a: a * 0.030, 1 / 0.030, 0.0),
    ("uint16 grey", lambda a: (a * 40000 + 2000).round().astype(np.uint16), 1 / 40000, -2000 / 40000),
    ("int16 grey, negative offset", lambda a: (a * 20000 - 4000).round().astype(np.int16), 1 / 20000, 0.2),
]


@pytest.mark.parametrize("name, forward, scale, offset", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_auto_recovers_scale_and_offset_to_3_percent(cell, name, forward, scale, offset):
    lac, classes = cell
    volume = Volume(forward(lac), voxel_size=30.0)
    calibrated, record = calibrate(volume)
    assert record.method == "two-point" and record.confidence > 0.8, record
    assert record.scale == pytest.approx(scale, rel=0.03), record
    # the offset as LAC: what a grey value of 0 maps to, relative to the cytoplasm-ice span
    assert abs(record.offset - offset) < 0.03 * (REFERENCE_LAC["cytoplasm"] - REFERENCE_LAC["ice"]) / 0.11 * 0.22
    out = calibrated.to_numpy()
    assert out.dtype == np.float32
    assert np.median(out[classes == 0]) == pytest.approx(0.109, rel=0.03)
    assert np.median(out[classes == 1]) == pytest.approx(0.22, rel=0.03)
    assert np.median(out[classes == 2]) == pytest.approx(0.25, rel=0.03)  # not a reference: checks the line
    assert calibrated.metadata["calibration"]["scale"] == record.scale
    assert calibrated.metadata["quantity"] == "linear_absorption_coefficient"


def test_a_zero_background_is_set_aside(cell):
    lac, _ = cell
    padded = lac.copy()
    yy, xx = np.mgrid[: lac.shape[1], : lac.shape[2]]
    padded[:, (yy - 72) ** 2 + (xx - 72) ** 2 > 66**2] = 0  # outside the reconstructed circle
    _, record = calibrate(Volume(padded, voxel_size=30.0))
    assert "padding_excluded" in record.flags and record.padding_value == 0.0
    assert record.scale == pytest.approx(1.0, rel=0.03)


def test_no_ice_keeps_lac_and_flags_it(cell):
    lac, classes = cell
    crop = lac[12:36, 50:94, 50:94]
    assert (classes[12:36, 50:94, 50:94] == 0).sum() == 0  # inside the cell only
    _, record = calibrate(Volume(crop, voxel_size=30.0))
    assert record.method == "identity" and "no_ice_reference" in record.flags
    assert record.scale == 1.0 and record.offset == 0.0


def test_grey_values_without_ice_are_flagged_not_trusted(cell):
    lac, _ = cell
    crop = (lac[12:36, 50:94, 50:94] * 40000 + 2000).astype(np.uint16)
    with pytest.warns(CalibrationWarning, match="low_confidence"):
        _, record = calibrate(Volume(crop, voxel_size=30.0))
    assert {"no_ice_reference", "low_confidence"} <= set(record.flags) and record.confidence < 0.5


def test_a_volume_without_structure_is_uncalibrated_with_a_warning():
    flat = Volume(np.full((16, 32, 32), 1234, np.uint16), voxel_size=30.0, metadata={"source": {"path": "f.tif"}})
    with pytest.warns(CalibrationWarning, match="f.tif.*uncalibrated"):
        _, record = calibrate(flat)
    assert record.method == "guess" and record.confidence == 0.0 and "uncalibrated" in record.flags


def test_explicit_reference_none_and_record_round_trip(cell):
    lac, classes = cell
    grey = Volume((lac * 1000).astype(np.float32), voxel_size=30.0)
    _, explicit = calibrate(grey, (0.001, 0.0))
    assert explicit.method == "explicit" and explicit.scale == 0.001
    ice_box = (slice(0, 4), slice(0, 8), slice(0, 8))
    _, ref = calibrate(grey, "reference", references=[(ice_box, 0.109), (classes == 1, 0.22)])
    assert ref.scale == pytest.approx(0.001, rel=0.05)  # region means include blurred edges
    none, record = calibrate(grey, "none")
    assert record.method == "none" and np.array_equal(none.to_numpy(), grey.to_numpy())
    again, _ = calibrate(grey, ref.to_dict())  # a record (as summary.json holds it) applies as it is
    assert CalibrationRecord.from_dict(ref.to_dict()) == ref
    np.testing.assert_allclose(again.to_numpy(), grey.to_numpy() * ref.scale + ref.offset, rtol=1e-5)


def test_bad_calibration_arguments():
    vol = Volume(np.zeros((4, 8, 8), np.float32), voxel_size=30.0)
    with pytest.raises(InvalidArgumentError, match="unknown calibration"):
        calibrate(vol, "magic")
    with pytest.raises(InvalidArgumentError, match="scale"):
        calibrate(vol, (0.0, 1.0))
    with pytest.raises(InvalidArgumentError, match="SCALE,OFFSET"):
        parse_calibration("1,2,3")
    nan = np.zeros((8, 16, 16), np.float32)
    nan[2, 3, 4] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        calibrate(Volume(nan, voxel_size=30.0))


def test_segment_refuses_absurd_resampling_naming_the_file(cell):
    from sxtseg import segment

    lac, _ = cell
    tiff_default = Volume(lac, voxel_size=(1000.0, 30.0, 30.0), metadata={"source": {"path": "stack.tif"}})
    with pytest.raises(VoxelSizeError, match=r"stack\.tif.*z x2[0-9]\.\d+.*TIFF.*allow_large_resampling"):
        segment(tiff_default, progress=False)
    tiny = Volume(lac, voxel_size=5.0, metadata={"source": {"path": "tiny.mrc"}})
    with pytest.raises(VoxelSizeError, match=r"tiny\.mrc.*x0\.20"):  # 5 nm against the finest trained, 25 nm
        segment(tiny, progress=False)


def test_resampling_targets_of_voxel_sizes_outside_the_training_range():
    from sxtseg.infer import check_voxel_size

    meta = {"voxel_size_nm": [35.0] * 3, "voxel_size_range_nm": [[30.0] * 3, [40.0] * 3]}

    def zoom(*voxel_nm):
        found = check_voxel_size(Volume(np.zeros((4, 4, 4), np.float32), voxel_size=voxel_nm), meta)
        return None if found is None else [round(float(f), 4) for f in found]

    assert zoom(35.0, 35.0, 35.0) is None and zoom(42.0, 28.0, 43.0) is None  # within 10% of the range
    assert zoom(60.0, 60.0, 60.0) == [round(60 / 35, 4)] * 3  # coarser on every axis: to the median, 35 nm
    assert zoom(60.0, 30.0, 30.0) == [1.5, 1.0, 1.0]  # coarser z only: to the coarsest, 40 nm
    assert zoom(50.0, 42.0, 42.0) == [1.25, 1.0, 1.0]  # axes within tolerance are left alone
    assert zoom(20.0, 20.0, 20.0) == [round(20 / 30, 4)] * 3  # finer: to the finest, 30 nm
    # the limit is on the distance from the range (75 nm: 1.9x off 40 nm), not on the zoom to 35 nm (2.1x)
    assert zoom(75.0, 75.0, 75.0) == [round(75 / 35, 4)] * 3
    with pytest.raises(VoxelSizeError, match=r"z x2\.12 off"):
        zoom(85.0, 35.0, 35.0)


def test_a_checkpoint_segment_voxel_size_sets_the_grid_inside_the_training_range():
    from sxtseg.infer import check_voxel_size

    meta = {"voxel_size_nm": [35.0] * 3, "voxel_size_range_nm": [[25.0] * 3, [40.0] * 3],
            "segment_voxel_size_nm": [30.0] * 3}

    def zoom(*voxel_nm):
        found = check_voxel_size(Volume(np.zeros((4, 4, 4), np.float32), voxel_size=voxel_nm), meta)
        return None if found is None else [round(float(f), 4) for f in found]

    assert zoom(30.0, 32.0, 28.0) is None  # within 10% of 30 nm
    assert zoom(40.0, 40.0, 40.0) == [round(40 / 30, 4)] * 3  # inside the training range, still to 30 nm
    assert zoom(25.0, 30.0, 30.0) == [round(25 / 30, 4), 1.0, 1.0]
    assert zoom(60.0, 60.0, 60.0) == [2.0] * 3
    # the refusal still measures the distance from the training range, not from 30 nm
    assert zoom(75.0, 75.0, 75.0) == [2.5] * 3
    with pytest.raises(VoxelSizeError, match=r"z x2\.12 off"):
        zoom(85.0, 30.0, 30.0)


def test_uint16_phantom_segments_like_its_lac_twin(cell):
    from sxtseg import segment

    lac, classes = cell
    crop = (slice(8, 40), slice(24, 120), slice(24, 120))
    twin = Volume(np.ascontiguousarray(lac[crop]), voxel_size=30.0)
    grey = Volume((lac[crop] * 40000 + 2000).round().astype(np.uint16), voxel_size=30.0)
    a = segment(twin, mirror=False, progress=False).to_numpy()  # one pass per window: calibration is the point
    b = segment(grey, mirror=False, progress=False).to_numpy()
    assert (a == b).mean() > 0.995
    # and without calibration the same grey values fail: what auto calibration prevents
    with pytest.warns(UserWarning, match="outside the model's input range"):
        c = segment(grey, calibration="none", mirror=False, progress=False).to_numpy()
    assert (c == a).mean() < 0.5


def test_boundary_bumps_between_ice_and_cytoplasm_are_not_the_cytoplasm():
    # 60 nm z voxels: the blurred cell boundary leaves small histogram bumps between ice and cytoplasm
    image, classes, _, _ = make_infected_cell((32, 192, 192), voxel_size_nm=(60.0, 30.0, 30.0), seed=6013)
    lac, record = calibrate(Volume(image.to_numpy() * 0.7, voxel_size=image.voxel_size))
    assert record.method == "two-point" and record.scale == pytest.approx(1 / 0.7, rel=0.03), record
    assert np.median(lac.to_numpy()[classes.to_numpy() == 1]) == pytest.approx(0.22, rel=0.03)


def _padding_by_sorting(sample):
    """The definition: the most frequent exact value of (up to 2 million voxels of) the sample, over 5 %."""
    values, counts = np.unique(sample[:: max(1, sample.size // 2_000_000)], return_counts=True)  # every k-th z slice
    best = int(np.argmax(counts))
    fraction = counts[best] / counts.sum()
    return (float(values[best]) + 0.0, float(fraction)) if fraction > 0.05 else (None, 0.0)


@pytest.mark.parametrize("layout", ["none", "block_4pct", "block_6pct", "rows_7pct", "two_values", "ties", "ints",
                                    "large_last_slices", "signed_zeros"])
def test_padding_found_from_a_probe_is_the_sorted_definition(layout):
    from sxtseg.calibration import _padding

    rng = np.random.default_rng(5)
    sample = rng.normal(0.2, 0.02, (40, 96, 122))
    if layout == "large_last_slices":  # 4 million voxels or more: every other z slice is counted
        sample = rng.normal(0.2, 0.02, (5, 1000, 1000))
        sample[-1] = 0.0  # in a counted slice: 1/3 of the counted voxels, 1/5 of all
    elif layout == "signed_zeros":
        sample[:, :, :4] = -0.0
        sample[:, :, -4:] = 0.0
    if layout == "block_4pct":
        sample[:, :, :5] = 0.0
    elif layout == "block_6pct":
        sample[:, -6:, :] = -1.5
    elif layout == "rows_7pct":
        sample.reshape(-1, 122)[::14] = 0.0  # every 14th image row: a layout with a period of its own
    elif layout == "two_values":
        sample[:, :, :8] = 0.0
        sample[:, :, -9:] = 1.0  # the larger one wins
    elif layout == "ties":
        sample[:, :, :8] = 2.0
        sample[:, :, -8:] = 1.0  # equal counts: the lower value, as np.unique then argmax gives
    elif layout == "ints":
        sample = rng.integers(0, 7, sample.shape).astype(np.float64)  # every value over 5 %
    found = _padding(sample)
    assert found == _padding_by_sorting(sample)
    assert (found[0] is None) == (layout in ("none", "block_4pct"))
    if layout == "large_last_slices":
        assert found == (0.0, pytest.approx(1 / 3))
    if layout == "signed_zeros":
        assert found[0] == 0.0 and str(found[0]) == "0.0"


@pytest.mark.parametrize("forward, lac_per_unit", [(lambda a: a, 1.0),
                                                  (lambda a: (a * 40000 + 2000).round().astype(np.uint16), 1 / 40000)],
                         ids=["lac", "uint16"])
def test_a_mild_missing_wedge_does_not_make_the_darkened_ice_the_reference(forward, lac_per_unit):
    # a ±80° wedge darkens the ice beside the cell into a small peak below the true ice; that peak is not ice
    from sxtseg.phantom import ImagingModel

    imaging = ImagingModel(psf_sigma_xy_nm=30.0, psf_sigma_z_nm=45.0, photon_noise=0.04, tilt_range_deg=(-80, 80))
    image, classes, _, _ = make_infected_cell((64, 160, 160), seed=31, imaging=imaging)
    lac, truth = image.to_numpy(), classes.to_numpy()
    out, record = calibrate(Volume(forward(lac), voxel_size=30.0))
    assert record.method == "two-point" and record.references[0]["name"] == "ice"
    ice_lac = record.scale * record.references[0]["value"] + record.offset
    assert ice_lac == pytest.approx(REFERENCE_LAC["ice"], rel=1e-6)
    # the value taken for ice is the ice far from the cell (the volume's corners), not the darkened ice
    far_ice = np.median(forward(lac)[:, :12, :12][truth[:, :12, :12] == 0].astype(float))
    assert record.references[0]["value"] == pytest.approx(far_ice, rel=0.05)
    # the wedge compresses contrast: the map stretches it back, but not threefold as the darkened ice made it
    assert 1.2 < record.scale / lac_per_unit < 2.0, record.scale / lac_per_unit
    cytoplasm = np.median(out.to_numpy()[truth == 1])
    assert 0.2 < cytoplasm < 0.26


def test_ice_and_cytoplasm_peaks_are_the_large_pair():
    from sxtseg.calibration import _ice_and_cytoplasm

    def peaks(*rows):
        return [{"value": v, "area": a, "width": 0.004} for v, a in rows]

    # a ±80° wedge: darkened ice (7 %) below the true ice (59 %), cytoplasm (34 %) above
    low, high, _ = _ice_and_cytoplasm(peaks((0.073, 0.07), (0.109, 0.59), (0.181, 0.34)), offset_free=True)
    assert (low["value"], high["value"]) == (0.109, 0.181)
    # a crop with a little ice: the cytoplasm (60 %) holds more than the ice (5 %), but the peak above it is a
    # dense organelle (10 %), not cytoplasm: the ice stays the ice
    low, high, _ = _ice_and_cytoplasm(peaks((0.109, 0.05), (0.22, 0.60), (0.25, 0.08), (0.33, 0.10)), offset_free=True)
    assert (low["value"], high["value"]) == (0.109, 0.22)
    # inside a cell: cytoplasm and nucleus only 14 % apart, and a small dense peak: no ice
    assert _ice_and_cytoplasm(peaks((0.22, 0.50), (0.245, 0.42), (0.33, 0.04)), offset_free=True) is None
