"""Tests of sxtseg.phantom.ImagingModel: PSF, missing wedge, noise, rings, output units."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from sxtseg.classes import SXTClass
from sxtseg.errors import InvalidArgumentError, ShapeError
from sxtseg.phantom import LAC, ImagingModel, make_infected_cell
from sxtseg.phantom.imaging import (
    RANDOM_CORRELATED_NOISE,
    RANDOM_MAX_TILT_DEG,
    RANDOM_PHOTON_NOISE,
    RANDOM_PSF_SIGMA_XY_VOXELS,
    RANDOM_PSF_Z_OVER_XY,
    RANDOM_RING_AMPLITUDE,
)

SMALL = (48, 128, 128)


def _fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum (voxels) of the peak of a 1-D profile above its median."""
    p = profile - np.median(profile)
    half = p.max() / 2
    lo = hi = int(np.argmax(p))
    while lo > 0 and p[lo - 1] >= half:
        lo -= 1
    while hi < len(p) - 1 and p[hi + 1] >= half:
        hi += 1
    left = lo - (p[lo] - half) / (p[lo] - p[lo - 1])
    right = hi + (p[hi] - half) / (p[hi] - p[hi + 1])
    return float(right - left)


def _bead(n: int = 48) -> np.ndarray:
    """Ice with a gold bead of radius 1.5 voxels at the centre."""
    lac = np.full((n, n, n), LAC["ice"], np.float32)
    z, y, x = np.ogrid[:n, :n, :n]
    lac[(z - n // 2) ** 2 + (y - n // 2) ** 2 + (x - n // 2) ** 2 <= 1.5**2] = LAC["gold"]
    return lac


# ------------------------------------------------------------------ the older blur / noise
def test_default_model_at_30_nm_is_the_default_blur_and_noise():
    old = make_infected_cell(SMALL, seed=2, n_dmv=10)
    new = make_infected_cell(SMALL, seed=2, n_dmv=10, imaging=ImagingModel())
    np.testing.assert_array_equal(old[0].to_numpy(), new[0].to_numpy())


@pytest.mark.parametrize("blur, noise, voxel_size", [(1.1, 0.05, 24.0), (0.7, 0.03, 33.3), (0.0, 0.0, 30.0)])
def test_from_blur_noise_reproduces_blur_and_noise_bit_for_bit(blur, noise, voxel_size):
    """Also where blur * v / v != blur in floating point (1.1 at 24 nm): the sigma is kept in voxels."""
    kwargs = dict(shape=(32, 96, 96), voxel_size_nm=voxel_size, seed=4, n_dmv=5)
    old = make_infected_cell(**kwargs, blur=blur, noise=noise)[0].to_numpy()
    model = ImagingModel.from_blur_noise(blur, noise, voxel_size)
    new = make_infected_cell(**kwargs, imaging=model)[0].to_numpy()
    np.testing.assert_array_equal(old, new)
    assert model.psf_sigma_in_voxels(voxel_size) == (1.5 * blur, blur, blur)
    assert model.psf_sigma_xy_nm == pytest.approx(blur * voxel_size)


def test_apply_leaves_its_input_alone_and_is_seeded():
    lac = _bead(32)
    before = lac.copy()
    model = ImagingModel(photon_noise=0.05, correlated_noise=0.01, ring_amplitude=0.01, tilt_range_deg=(-60, 60))
    first = model.apply(lac, 30.0, rng=3)
    np.testing.assert_array_equal(lac, before)
    np.testing.assert_array_equal(first, model.apply(lac, 30.0, np.random.default_rng(3)))
    assert not np.array_equal(first, model.apply(lac, 30.0, rng=4))


# ------------------------------------------------------------------ missing wedge
def test_missing_wedge_elongates_a_bead_along_z_only():
    lac = _bead()
    c = lac.shape[0] // 2
    full = ImagingModel(psf_sigma_xy_nm=30, psf_sigma_z_nm=30, photon_noise=0).apply(lac, 30.0, 0)
    wedge = ImagingModel(psf_sigma_xy_nm=30, psf_sigma_z_nm=30, photon_noise=0, tilt_range_deg=(-60, 60))
    limited = wedge.apply(lac, 30.0, 0)
    widths = {name: (_fwhm(im[:, c, c]), _fwhm(im[c, c, :]), _fwhm(im[c, :, c])) for name, im in
              (("full", full), ("wedge", limited))}  # fmt: skip
    z, x, y = widths["full"]
    assert z == pytest.approx(x, rel=0.02) and y == pytest.approx(x, rel=0.02)  # an isotropic PSF
    z_w, x_w, y_w = widths["wedge"]
    assert z_w / x_w > 1.4 and z_w > 1.2 * z  # elongated along z (theory for ±60°: about 1.55)
    assert y_w == pytest.approx(y, rel=0.02)  # the tilt axis keeps its resolution
    assert 0.7 < x_w / x < 1.05  # in x only the dark halo of the wedge narrows the peak a little
    # the streaks: the lost frequencies leave negative lobes beside the bead, none without the wedge
    assert limited.min() < 0 < full.min()
    # the mean is kept, up to what leaks into the padding
    np.testing.assert_allclose(limited.mean(), lac.mean(), rtol=0.01)


def test_full_tilt_range_is_no_wedge():
    lac = _bead(32)
    base = ImagingModel(photon_noise=0)
    full = ImagingModel(photon_noise=0, tilt_range_deg=(-90, 90))
    np.testing.assert_array_equal(base.apply(lac, 30.0, 0), full.apply(lac, 30.0, 0))


def test_missing_wedge_elongates_fiducials_in_a_phantom():
    ratios = {}
    for name, tilt in (("full", None), ("wedge", (-60, 60))):
        model = ImagingModel(psf_sigma_xy_nm=30, psf_sigma_z_nm=30, photon_noise=0, tilt_range_deg=tilt)
        image, _, _, table = make_infected_cell(SMALL, seed=1, n_dmv=5, n_fiducials=4, imaging=model)
        image = image.to_numpy()
        ratios[name] = []
        for bead in table[table["class_name"] == "fiducial"].itertuples():
            z, y, x = (int(round(getattr(bead, f"centroid_{a}_nm") / 30)) for a in "zyx")
            ratios[name].append(_fwhm(image[:, y, x]) / _fwhm(image[z, :, x]))
    assert len(ratios["full"]) == 4
    assert np.all(np.abs(np.array(ratios["full"]) - 1) < 0.06)
    assert np.all(np.array(ratios["wedge"]) > 1.2)


# ------------------------------------------------------------------ noise and rings
def test_photon_and_correlated_noise_have_their_documented_size():
    flat = np.full((32, 64, 64), LAC["cytoplasm"], np.float32)
    photon = ImagingModel(psf_sigma_xy_nm=0, psf_sigma_z_nm=0, photon_noise=0.05).apply(flat, 30.0, 1)
    assert photon.std() == pytest.approx(0.05 * LAC["cytoplasm"], rel=0.03)
    smooth = ImagingModel(psf_sigma_xy_nm=0, psf_sigma_z_nm=0, photon_noise=0, correlated_noise=0.02,
                          correlated_noise_length_nm=300).apply(flat, 30.0, 1)  # fmt: skip
    noise = smooth - LAC["cytoplasm"]
    assert noise.std() == pytest.approx(0.02, rel=1e-3)
    # correlated: neighbours 1 voxel apart are nearly equal, unlike photon noise
    assert np.corrcoef(noise[:, :, :-1].ravel(), noise[:, :, 1:].ravel())[0, 1] > 0.9
    white = photon - LAC["cytoplasm"]
    assert abs(np.corrcoef(white[:, :, :-1].ravel(), white[:, :, 1:].ravel())[0, 1]) < 0.05


def test_rings_are_concentric_around_the_rotation_axis_and_constant_along_y():
    zero = np.zeros((33, 8, 65), np.float32)
    model = ImagingModel(psf_sigma_xy_nm=0, psf_sigma_z_nm=0, photon_noise=0, ring_amplitude=0.01)
    rings = model.apply(zero, 30.0, 5)
    assert np.abs(rings).max() > 0.003
    assert np.abs(rings).max() < 0.01 * 16
    np.testing.assert_array_equal(rings[:, 0], rings[:, 7])  # constant along y
    np.testing.assert_allclose(rings, rings[::-1, :, ::-1], atol=1e-7)  # symmetric about the axis
    np.testing.assert_allclose(rings[:, :, 32 - 5], rings[:, :, 32 + 5], atol=1e-7)
    z, x = np.meshgrid(np.arange(33) - 16, np.arange(65) - 32, indexing="ij")
    radius = np.hypot(z, x)
    same = np.isclose(radius, 10.0)  # (±10, 0), (0, ±10), (±6, ±8), (±8, ±6) voxels from the axis
    assert same.sum() == 12
    np.testing.assert_allclose(rings[:, 0][same], rings[:, 0][same][0], atol=1e-7)


# ------------------------------------------------------------------ output units
@pytest.mark.parametrize("voxel_size", [30.0, (60.0, 30.0, 30.0)])
def test_output_units_invert_to_lac(voxel_size):
    kwargs = dict(shape=(32, 96, 96), voxel_size_nm=voxel_size, seed=6, n_dmv=5, n_fiducials=2)
    fields = dict(tilt_range_deg=(-60, 60), photon_noise=0.04, ring_amplitude=0.005)
    lac, _, _, _ = make_infected_cell(**kwargs, imaging=ImagingModel(**fields))
    att, _, _, _ = make_infected_cell(**kwargs, imaging=ImagingModel(**fields, output_unit="attenuation"))
    grey, _, _, _ = make_infected_cell(
        **kwargs,
        imaging=ImagingModel(**fields, output_unit="grey", grey_scale=20000, grey_offset=3000, dtype="uint16"),
    )
    assert (lac.dtype, att.dtype, grey.dtype) == (np.float32, np.float32, np.uint16)
    assert (lac.metadata["quantity"], lac.metadata["intensity_unit"]) == ("linear_absorption_coefficient", "1/um")
    assert (att.metadata["quantity"], att.metadata["intensity_unit"]) == ("attenuation_per_voxel", "1")
    assert (grey.metadata["quantity"], grey.metadata["intensity_unit"]) == ("grey_value", "arbitrary")
    truth = lac.to_numpy()
    scale = att.metadata["intensity_from_lac"]["scale"]
    assert scale == pytest.approx(30.0 / 1000)  # the voxel edge along x, µm
    np.testing.assert_allclose(att.to_numpy() / scale, truth, rtol=1e-6, atol=1e-7)
    mapping = grey.metadata["intensity_from_lac"]
    assert mapping == {"scale": 20000.0, "offset": 3000.0}
    back = (grey.to_numpy().astype(np.float64) - mapping["offset"]) / mapping["scale"]
    unclipped = (grey.to_numpy() > 0) & (grey.to_numpy() < 65535)
    assert unclipped.mean() > 0.99
    assert np.abs(back - truth)[unclipped].max() <= 0.5 / 20000 + 1e-6
    # the gold beads saturate: clipped to the top of the range, as a detector would
    assert grey.to_numpy().max() == 65535
    assert grey.metadata["phantom"]["imaging"]["output_unit"] == "grey"


def test_grey_values_are_rounded_and_clipped_to_the_dtype():
    lac = np.array([-1.0, 0.0, 0.1, 0.10012, 0.3, 5.0], np.float32).reshape(1, 1, 6)
    model = ImagingModel(psf_sigma_xy_nm=0, psf_sigma_z_nm=0, photon_noise=0, output_unit="grey",
                         grey_scale=1000, grey_offset=10, dtype="uint8")  # fmt: skip
    out = model.apply(lac, 30.0, 0)
    assert out.dtype == np.uint8
    assert out.ravel().tolist() == [0, 10, 110, 110, 255, 255]
    signed = ImagingModel(psf_sigma_xy_nm=0, psf_sigma_z_nm=0, photon_noise=0, output_unit="grey",
                          grey_scale=1000, grey_offset=0, dtype="int16").apply(lac, 30.0, 0)  # fmt: skip
    assert signed.ravel().tolist() == [-1000, 0, 100, 100, 300, 5000]


# ------------------------------------------------------------------ metadata and the random model
def test_metadata_records_the_imaging_model_and_rebuilds_it():
    model = ImagingModel(psf_sigma_xy_nm=35.0, psf_sigma_z_nm=80.0, tilt_range_deg=(-55, 65), ring_amplitude=0.002)
    image, _, _, _ = make_infected_cell((32, 64, 64), seed=1, imaging=model)
    recorded = image.metadata["phantom"]["imaging"]
    json.dumps(image.metadata)
    assert recorded["tilt_range_deg"] == [-55.0, 65.0]
    assert ImagingModel(**recorded) == model
    assert image.metadata["phantom"]["blur_sigma_voxels"] == pytest.approx([80 / 30, 35 / 30, 35 / 30])
    default, _, _, _ = make_infected_cell((32, 64, 64), seed=1)
    assert ImagingModel(**default.metadata["phantom"]["imaging"]) == ImagingModel.from_blur_noise(1.0, 0.04, 30.0)


def test_random_model_is_seeded_and_inside_its_documented_ranges():
    assert ImagingModel.random(5, 30.0) == ImagingModel.random(np.random.default_rng(5), 30.0)
    assert ImagingModel.random(5, 30.0) != ImagingModel.random(6, 30.0)
    assert ImagingModel.random(5, 30.0, output_unit="grey", dtype="uint16").dtype == "uint16"
    for seed in range(40):
        m = ImagingModel.random(seed, (60.0, 25.0, 25.0))
        sigma_xy = m.psf_sigma_xy_nm / 25.0
        assert RANDOM_PSF_SIGMA_XY_VOXELS[0] <= sigma_xy <= RANDOM_PSF_SIGMA_XY_VOXELS[1]
        assert RANDOM_PSF_Z_OVER_XY[0] <= m.psf_sigma_z_nm / m.psf_sigma_xy_nm <= RANDOM_PSF_Z_OVER_XY[1]
        low, high = m.tilt_range_deg
        assert low == -high and RANDOM_MAX_TILT_DEG[0] <= high <= RANDOM_MAX_TILT_DEG[1]
        assert RANDOM_PHOTON_NOISE[0] <= m.photon_noise <= RANDOM_PHOTON_NOISE[1]
        assert RANDOM_CORRELATED_NOISE[0] <= m.correlated_noise <= RANDOM_CORRELATED_NOISE[1]
        assert RANDOM_RING_AMPLITUDE[0] <= m.ring_amplitude <= RANDOM_RING_AMPLITUDE[1]
        assert m.output_unit == "lac" and m.psf_sigma_voxels is None
    # the documented ranges
    assert RANDOM_PSF_SIGMA_XY_VOXELS == (0.5, 2.5) and RANDOM_PSF_Z_OVER_XY == (1.0, 3.0)
    assert RANDOM_MAX_TILT_DEG == (55.0, 90.0) and RANDOM_PHOTON_NOISE == (0.01, 0.12)
    assert RANDOM_CORRELATED_NOISE == (0.0, 0.02) and RANDOM_RING_AMPLITUDE == (0.0, 0.01)


def test_a_random_model_images_a_phantom():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, classes, _, _ = make_infected_cell((32, 96, 96), seed=2, imaging=ImagingModel.random(9, 30.0))
    image, classes = image.to_numpy(), classes.to_numpy()
    assert np.isfinite(image).all()
    assert np.median(image[classes == SXTClass.CYTOPLASM]) > np.median(image[classes == SXTClass.BACKGROUND])


# ------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize(
    "fields, name",
    [
        ({"psf_sigma_xy_nm": -1.0}, "psf_sigma_xy_nm"),
        ({"psf_sigma_z_nm": float("nan")}, "psf_sigma_z_nm"),
        ({"photon_noise": -0.1}, "photon_noise"),
        ({"photon_noise": "0.1"}, "photon_noise"),
        ({"correlated_noise": -1}, "correlated_noise"),
        ({"correlated_noise_length_nm": 0}, "correlated_noise_length_nm"),
        ({"ring_amplitude": float("inf")}, "ring_amplitude"),
        ({"tilt_range_deg": (60, -60)}, "tilt_range_deg"),
        ({"tilt_range_deg": (-100, 60)}, "tilt_range_deg"),
        ({"tilt_range_deg": 60}, "tilt_range_deg"),
        ({"output_unit": "hounsfield"}, "output_unit"),
        ({"dtype": "uint16"}, "dtype"),  # integers need output_unit="grey"
        ({"output_unit": "grey", "dtype": "complex64"}, "dtype"),
        ({"grey_scale": 0}, "grey_scale"),
        ({"grey_offset": float("nan")}, "grey_offset"),
        ({"psf_sigma_voxels": (1.0, 1.0)}, "psf_sigma_voxels"),
    ],
)
def test_bad_fields_raise_invalid_argument_error_naming_them(fields, name):
    with pytest.raises(InvalidArgumentError, match=name):
        ImagingModel(**fields)


def test_bad_apply_and_make_arguments():
    model = ImagingModel()
    with pytest.raises(ShapeError):
        model.apply(np.zeros((8, 8), np.float32), 30.0, 0)
    with pytest.raises(InvalidArgumentError, match="rng"):
        model.apply(np.zeros((8, 8, 8), np.float32), 30.0, "seed")
    with pytest.raises(InvalidArgumentError, match="blur_voxels"):
        ImagingModel.from_blur_noise(-1.0, 0.04, 30.0)
    with pytest.raises(InvalidArgumentError, match="imaging"):
        make_infected_cell((32, 64, 64), imaging={"photon_noise": 0.1})
