"""Inference copies (sxtseg.models.fuse): the same function as the network they copy, the network untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.networks.blocks import ResidualUnit
from torch import nn

from sxtseg import make_infected_cell, segment
from sxtseg.infer import predict_array
from sxtseg.models import load_model, unet
from sxtseg.models.checkpoint import normalization_range
from sxtseg.models.fuse import fold_batch_norm, fold_identity_residuals, inference_copy
from sxtseg.models.msdnet import MSDNet


def _randomise_batch_norms(net: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine parameters far from the identity, so that a wrong fold shows."""
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) * 3 + 0.2)
            module.weight.data.copy_(torch.randn(n, generator=generator))
            module.bias.data.copy_(torch.randn(n, generator=generator))
    return net.eval()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_small_unet_with_batch_norm_is_the_same_function(spatial_dims):
    torch.manual_seed(1)
    net = _randomise_batch_norms(unet(spatial_dims, 1, 4, channels=(4, 8, 16), strides=(2, 2),
                                      normalization="batch"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = inference_copy(net)
    # 2 levels x 2 res units x 2 convs + 1 transposed conv per up level..., every conv-then-norm pair
    norms = sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in net.modules())
    assert fast.fused["batch_norms"] == norms > 0
    assert fast.fused["identity_residuals"] == 1  # MONAI's last up unit: conv_only + identity
    assert fast.fused["channels_last"] is (spatial_dims == 3)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in fast.modules())
    x = torch.randn(2, 1, *(16,) * spatial_dims)
    with torch.no_grad():
        expected, got = net(x), fast(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    # the original is untouched: same weights, norms still there, still channels-first
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in net.modules())
    assert all(p.is_contiguous() for p in net.parameters())


def test_instance_norm_and_msdnet_are_left_as_they_are():
    torch.manual_seed(2)
    net = unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="instance").eval()
    fast = inference_copy(net)
    assert fast.fused["batch_norms"] == 0
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-5)
    msd = MSDNet(3, 1, 3, depth=4, width=2, normalization="batch").eval()
    fast = inference_copy(msd)
    assert fast.fused == {"batch_norms": 0, "identity_residuals": 0, "channels_last": False}
    with torch.no_grad():
        assert torch.allclose(fast(x), msd(x), atol=1e-5)


def test_transposed_convolution_then_norm_folds():
    torch.manual_seed(3)
    seq = _randomise_batch_norms(nn.Sequential(nn.ConvTranspose3d(3, 5, 3, stride=2, padding=1, output_padding=1),
                                               nn.BatchNorm3d(5), nn.PReLU()))
    fast = inference_copy(seq)
    assert fast.fused["batch_norms"] == 1 and isinstance(fast[1], nn.Identity)
    x = torch.randn(2, 3, 6, 7, 8)
    with torch.no_grad():
        assert torch.allclose(fast(x), seq(x), atol=1e-5)


def test_norm_not_directly_after_a_convolution_is_not_folded():
    seq = _randomise_batch_norms(nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.PReLU(), nn.BatchNorm3d(4)))
    assert fold_batch_norm(seq) == 0
    with pytest.raises(ValueError, match="training mode"):
        fold_batch_norm(seq.train())


def test_identity_residual_fold_only_where_exact():
    torch.manual_seed(4)
    plain = ResidualUnit(3, 4, 4, strides=1, subunits=1, last_conv_only=True).eval()
    strided = ResidualUnit(3, 4, 4, strides=2, subunits=1, last_conv_only=True).eval()  # residual is a conv
    normed = ResidualUnit(3, 4, 4, strides=1, subunits=1, norm="batch").eval()  # norm and activation in the unit
    x = torch.randn(2, 4, 8, 8, 8)
    for unit, folds in ((plain, 1), (strided, 0), (normed, 0)):
        holder = nn.Sequential(unit)
        with torch.no_grad():
            expected = holder(x)
        assert fold_identity_residuals(holder) == folds
        assert isinstance(holder[0], nn.Conv3d) is bool(folds)
        with torch.no_grad():
            assert torch.allclose(holder(x), expected, atol=1e-5)


@pytest.fixture(scope="module")
def phantom_image():
    image, _, _, _ = make_infected_cell((64, 128, 128), seed=7203)  # not a training seed (100-199, 900)
    return image.to_numpy().astype(np.float32)


def test_shipped_model_predictions_agree(phantom_image):
    net = load_model("default")
    meta = net.metadata
    low, high = normalization_range(phantom_image[::2, ::2, ::2], meta["intensity"])
    image = (phantom_image - low) / (high - low)
    settings = dict(patch_size=meta["input"]["patch_size"], device="cpu")
    reference = predict_array(net, image, fuse=False, **settings)
    fused = predict_array(net, image, **settings)
    logits = predict_array(net, image, softmax=False, **settings)
    assert np.abs(fused - reference).max() < 1e-3
    assert (fused.argmax(0) == reference.argmax(0)).mean() > 0.9999
    assert np.allclose(torch.softmax(torch.from_numpy(logits), 0).numpy(), fused, atol=1e-5)
    assert any(isinstance(m, nn.BatchNorm3d) for m in net.modules())  # the cached model is not the copy


def test_segment_takes_a_small_volume_as_one_block(phantom_image, tmp_path):
    from sxtseg import Volume

    volume = Volume(phantom_image, voxel_size=30.0)
    segment(volume, "default", output=tmp_path / "one.zarr", calibration="none", mirror=False, progress=False)
    manifest = json.loads((tmp_path / "one.zarr" / "segment.json").read_text())
    assert manifest["parameters"]["block_shape"] == [64, 128, 128]
    assert len(list((tmp_path / "one.zarr" / "blocks").iterdir())) == 1


def test_inference_copy_is_reused_until_the_network_changes():
    from sxtseg.infer import _inference_net

    torch.manual_seed(3)
    net = _randomise_batch_norms(unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="batch"))
    cpu = torch.device("cpu")
    x = torch.randn(1, 1, 16, 16, 16)

    def fresh_and_right(previous):
        copy = _inference_net(net, cpu)
        with torch.no_grad():
            expected = net(x)
            assert copy is not previous
            assert torch.allclose(copy(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
        return copy

    first = _inference_net(net, cpu)
    assert _inference_net(net, cpu) is first  # folded once
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv3d))
    norm = next(m for m in net.modules() if isinstance(m, nn.BatchNorm3d))
    edits = [
        lambda: conv.weight.data.mul_(2.0),  # through .data: its version counter is not the parameter's
        lambda: setattr(conv.weight, "data", conv.weight.data * 1.5),
        lambda: conv.weight.detach().numpy().__imul__(0.5),  # through NumPy
        lambda: norm.running_var.data.fill_(4.0),
        lambda: setattr(norm, "eps", 0.5),  # not a tensor
        lambda: net.load_state_dict({k: v * 0.9 if v.is_floating_point() else v for k, v in net.state_dict().items()}),
    ]
    copy = first
    for edit in edits:
        with torch.no_grad():
            edit()
        copy = fresh_and_right(copy)
    # a parameter-free layer swapped: the same tensors, another function
    activation = next(name for name, m in net.named_modules() if isinstance(m, nn.PReLU))
    parent_name, _, child = activation.rpartition(".")
    net.get_submodule(parent_name)._modules[child] = nn.Tanh()
    copy = fresh_and_right(copy)
    assert _inference_net(net, cpu) is copy


def test_inference_copies_do_not_keep_networks_alive():
    import gc
    import weakref

    from sxtseg.infer import _inference_net

    cpu = torch.device("cpu")
    net = unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="batch").eval()
    seen = []
    net.register_forward_hook(lambda module, inputs, output: seen.append(net.training))  # a closure over the net
    alive = weakref.ref(net)
    _inference_net(net, cpu)
    del net
    _inference_net(unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="batch").eval(), cpu)  # one copy kept
    gc.collect()
    assert alive() is None
