"""Test-time mirroring: logits averaged over flipped inputs, flipped back; recorded in segment's manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sxtseg import Volume, make_infected_cell, segment
from sxtseg.errors import OutputExistsError
from sxtseg.infer import predict_array
from sxtseg.models.mirror import MirrorMean, mirror_axes


def test_mirror_axes_are_every_subset_once():
    three = mirror_axes(3)
    assert three[0] == () and len(three) == 8 and len(set(three)) == 8
    assert set(three) == {(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)}
    assert mirror_axes(2) == [(), (2,), (3,), (2, 3)]
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        MirrorMean(torch.nn.Identity(), 1)


def test_identity_comes_back_unchanged():
    # each mirror image is flipped back before the mean: an identity network returns its input
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(1, 2, 3, 4, 5)
    torch.testing.assert_close(MirrorMean(torch.nn.Identity(), 3)(x), x)


def test_mean_of_mirrors_is_mirror_equivariant():
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 3, 3, padding=1)  # a random kernel: not symmetric under any flip
    x = torch.randn(2, 1, 6, 7, 8)
    mirrored = MirrorMean(net, 3)
    with torch.no_grad():
        out = mirrored(x)
        by_hand = sum(torch.flip(net(torch.flip(x, a)), a) if a else net(x) for a in mirror_axes(3)) / 8
        torch.testing.assert_close(out, by_hand)
        for axes in ((2,), (4,), (2, 3)):
            assert not torch.allclose(net(torch.flip(x, axes)), torch.flip(net(x), axes), atol=1e-4)
            torch.testing.assert_close(mirrored(torch.flip(x, axes)), torch.flip(out, axes), atol=1e-5, rtol=1e-5)


def test_predict_array_mirrors_2d_models_in_plane():
    torch.manual_seed(1)
    net = torch.nn.Conv2d(3, 2, 3, padding=1)  # 2-D with one context slice either side (3 channels)
    image = np.random.default_rng(0).random((5, 16, 16)).astype(np.float32)
    settings = dict(patch_size=(16, 16), spatial_dims=2, context=1, device="cpu", softmax=False, fuse=False)
    plain = predict_array(net, image, **settings)
    mirrored = predict_array(net, image, mirror=True, **settings)
    flipped = predict_array(net, image[:, :, ::-1], mirror=True, **settings)
    assert not np.allclose(plain, mirrored, atol=1e-4)
    np.testing.assert_allclose(flipped[:, :, :, ::-1], mirrored, atol=1e-5)


def test_segment_mirrors_by_default_and_records_it(tmp_path):
    image, truth, _, _ = make_infected_cell((48, 96, 96), seed=7206)  # not a training seed (100-199, 900)
    volume = Volume(image.to_numpy(), voxel_size=30.0)
    mirrored = segment(volume, output=tmp_path / "mirrored.zarr", progress=False)
    once = segment(volume, output=tmp_path / "once.zarr", mirror=False, progress=False)
    for name, expected in (("mirrored", True), ("once", False)):
        manifest = json.loads((tmp_path / f"{name}.zarr" / "segment.json").read_text())
        assert manifest["parameters"]["mirror"] is expected
    a, b = mirrored.to_numpy(), once.to_numpy()
    assert not np.array_equal(a, b)  # the mirror images did change some voxels...
    assert (a == b).mean() > 0.97  # ...at the margins of the classes
    truth = truth.to_numpy()
    assert (a == truth).mean() >= (b == truth).mean() - 0.002
    # a folder made with the other setting is not taken for this run's
    with pytest.raises(OutputExistsError, match="mirror"):
        segment(volume, output=tmp_path / "once.zarr", progress=False)
