"""Noise matching (sxtseg.denoise): the noise read right, the smoothing chosen right, applied only when needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

import sxtseg
from sxtseg import Volume, make_infected_cell
from sxtseg.denoise import SHIPPED_TRAINING_NOISE, match_noise, noise_sigma, parse_denoise, smoothing_sigma
from sxtseg.errors import InvalidArgumentError
from sxtseg.infer import dice_per_class
from sxtseg.phantom import ImagingModel

DEFAULT_META = {"sha256": next(iter(SHIPPED_TRAINING_NOISE))}


def _noisy_cell(noise: float, seed: int = 7010):
    imaging = ImagingModel(psf_sigma_xy_nm=30.0, psf_sigma_z_nm=45.0, photon_noise=noise)
    return make_infected_cell((32, 112, 112), seed=seed, imaging=imaging)


@pytest.mark.parametrize("sigma", [0.004, 0.02])
def test_noise_is_read_through_edges_and_smooth_structure(sigma):
    rng = np.random.default_rng(1)
    z, y, x = np.mgrid[:16, :96, :96]
    clean = 0.22 + 0.03 * (x > 40) + 0.1 * (np.hypot(y - 48, x - 70) < 12) + 0.01 * np.sin(y / 9.0)
    volume = Volume((clean + rng.normal(0, sigma, clean.shape)).astype(np.float32), voxel_size=30.0)
    assert noise_sigma(volume) == pytest.approx(sigma, rel=0.06)


@pytest.mark.parametrize("noise, target", [(0.0208, 0.00705), (0.012, 0.01), (0.05, 0.005)])
def test_the_chosen_sigma_brings_white_noise_to_the_target(noise, target):
    sigma = smoothing_sigma(noise, target)
    white = np.random.default_rng(2).normal(0, noise, (64, 64, 64))
    smoothed = ndimage.gaussian_filter(white, sigma, mode="nearest")
    assert smoothed[8:-8, 8:-8, 8:-8].std() == pytest.approx(target, rel=0.05)
    assert smoothing_sigma(target, noise) == 0.0  # already below: nothing to do


def test_match_noise_smooths_only_noise_beyond_the_training_range():
    nominal, *_ = _noisy_cell(0.04)
    noisy, *_ = _noisy_cell(0.12)
    kept = match_noise(nominal, DEFAULT_META)
    assert kept["sigma_voxels"] == 0.0 and kept["method"] == "none"
    assert 0.0036 < kept["noise_1_per_um"] < 0.0105  # the phantom's default noise is inside the trained range
    smoothed = match_noise(noisy, DEFAULT_META)
    assert smoothed["method"] == "auto" and 0.4 < smoothed["sigma_voxels"] < 0.9
    assert smoothed["noise_1_per_um"] > 2.5 * kept["noise_1_per_um"]
    json.dumps(smoothed)  # goes to summary.json as it is
    # on request, and for a model that does not say what noise it was trained on
    assert match_noise(noisy, DEFAULT_META, "none")["sigma_voxels"] == 0.0
    assert match_noise(noisy, DEFAULT_META, 0.8) == {**match_noise(noisy, DEFAULT_META, 0.8), "method": "explicit",
                                                     "sigma_voxels": 0.8}
    unknown = match_noise(noisy, {"sha256": "0" * 64})
    assert unknown["sigma_voxels"] == 0.0 and "does not record" in unknown["note"]
    recorded = match_noise(noisy, {"training_noise_1_per_um": [0.01, 0.03]})  # a checkpoint's own range
    assert recorded["sigma_voxels"] == 0.0


def test_bad_denoise_arguments():
    assert parse_denoise("AUTO") == "auto" and parse_denoise(1) == 1.0
    for bad in ("blur", "-1", "nan", "12"):
        with pytest.raises(InvalidArgumentError, match="denoise"):
            parse_denoise(bad)


def test_segment_of_a_noisy_cell_smooths_and_finds_the_nucleus_again():
    # the "plain" model records the noise it was trained on (SHIPPED_TRAINING_NOISE); the default records none
    image, classes, _, _ = _noisy_cell(0.12)
    truth = classes.to_numpy()
    plain = sxtseg.segment(image, "plain", progress=False, denoise="none", mirror=False)  # as measured
    matched = sxtseg.segment(image, "plain", progress=False, mirror=False)
    assert plain.metadata["denoise"]["sigma_voxels"] == 0.0
    record = matched.metadata["denoise"]
    assert record["sigma_voxels"] > 0
    assert matched.metadata["segmentation"]["parameters"]["smooth_sigma_voxels"] == record["sigma_voxels"]
    before = dice_per_class(plain.to_numpy(), truth, 7)
    after = dice_per_class(matched.to_numpy(), truth, 7)
    assert after[2] > before[2] + 0.03  # nucleus
    assert after[6] >= before[6] - 0.01  # DMVs not lost to the blur


def test_run_reports_the_smoothing_and_flags_it(tmp_path):
    image, *_ = _noisy_cell(0.12)
    report = sxtseg.run(image, tmp_path / "out", "plain", progress=False, mirror=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["denoise"]["method"] == "auto" and summary["denoise"]["sigma_voxels"] > 0
    assert "noise_smoothed" in [flag["flag"] for flag in summary["quality"]]
    assert report["samples"]  # the run finished
