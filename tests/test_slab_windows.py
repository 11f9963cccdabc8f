"""Slab-wise window blending (sxtseg.slab_windows): the classes of MONAI's sliding window, less memory held."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

import sxtseg
import sxtseg.slab_windows as slab_windows
from sxtseg import make_infected_cell
from sxtseg.slab_windows import fits, window_classes


def _net(classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, classes, 5, padding=2), torch.nn.PReLU(),
                               torch.nn.Conv3d(classes, classes, 3, padding=1)).eval()


@pytest.mark.parametrize("shape, roi, overlap, batch", [
    ((40, 48, 48), (32, 32, 32), 0.25, 4),
    ((70, 61, 90), (32, 32, 32), 0.25, 3),  # rows of windows that a batch straddles; last windows flush with the end
    ((64, 64, 64), (64, 64, 64), 0.25, 4),  # one window
    ((100, 40, 33), (32, 32, 32), 0.5, 2),
    ((33, 33, 33), (16, 16, 16), 0.0, 5),  # no overlap: rows of windows do not share planes
])
def test_classes_are_monais_argmax(shape, roi, overlap, batch):
    net = _net()
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    with torch.no_grad():
        logits = sliding_window_inference(torch.from_numpy(image)[None, None], roi, batch, net, overlap=overlap,
                                          mode="gaussian")
    expected = logits.argmax(1)[0].numpy()
    np.testing.assert_array_equal(window_classes(net, image, patch_size=roi, overlap=overlap, batch_size=batch),
                                  expected)
    keep = (slice(3, shape[0] - 2), slice(5, None), slice(0, shape[2] - 1))  # a block inside its halo
    np.testing.assert_array_equal(window_classes(net, image, patch_size=roi, overlap=overlap, batch_size=batch,
                                                 keep=keep), expected[keep])


def test_what_it_takes():
    assert fits((64, 100, 100), (64, 64, 64))
    assert not fits((63, 100, 100), (64, 64, 64))  # smaller than a window: MONAI pads it
    assert not fits((100, 100), (64, 64))  # 2-D
    with pytest.raises(ValueError, match="at least"):
        window_classes(_net(), np.zeros((8, 40, 40), np.float32), patch_size=(16, 16, 16))


def test_segment_gives_the_classes_of_monais_blending(monkeypatch):
    image, *_ = make_infected_cell((64, 128, 128), seed=11)
    image = image.compute()
    slabs = sxtseg.segment(image, progress=False, precision="float32").to_numpy()
    monkeypatch.setattr(slab_windows, "fits", lambda *args: False)  # every block through predict_array (MONAI)
    whole = sxtseg.segment(image, progress=False, precision="float32").to_numpy()
    assert (slabs == whole).mean() > 1 - 1e-5  # exact ties apart (MONAI divides by the summed weights)


@pytest.mark.parametrize("roi", [(64, 64, 64), (32, 48, 16), (7, 8, 9), (1, 5, 2)])
def test_gaussian_weights_are_monais(roi):
    from monai.data.utils import compute_importance_map

    from sxtseg.slab_windows import gaussian_weights

    expected = compute_importance_map(roi, mode="gaussian", sigma_scale=0.125, device="cpu", dtype=torch.float32)
    got = gaussian_weights(roi)
    assert got.dtype == expected.dtype and torch.equal(got, expected)


@pytest.mark.parametrize("shape, roi", [((64, 64, 64), (64, 64, 64)), ((96, 256, 256), (64, 64, 64)),
                                        ((144, 200, 131), (64, 64, 64)), ((65, 64, 70), (64, 64, 64)),
                                        ((30, 41, 17), (8, 12, 5))])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_window_slices_are_monais(shape, roi, overlap):
    from monai.data.utils import dense_patch_slices

    from sxtseg.slab_windows import _scan_interval, window_slices

    assert window_slices(shape, roi, overlap) == dense_patch_slices(shape, roi, _scan_interval(shape, roi, overlap))
