"""The plain-PyTorch U-Net is MONAI's: same parameter names, same function, for every option of unet()."""

import subprocess
import sys

import pytest
import torch

from sxtseg.models import load_model, shipped_models
from sxtseg.models.fuse import inference_copy
from sxtseg.models.plain_unet import PlainUNet, plain_unet
from sxtseg.models.unet import unet

CASES = [
    dict(spatial_dims=3, in_channels=1, out_channels=7, channels=(8, 16, 32, 64), strides=(2, 2, 2),
         num_res_units=2, normalization="batch"),  # the shipped default's shape, smaller
    dict(spatial_dims=3, in_channels=2, out_channels=3, channels=(4, 8, 16), strides=(2, 1), num_res_units=1,
         normalization="instance", dropout=0.2),
    dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0,
         normalization=None),
    dict(spatial_dims=2, in_channels=5, out_channels=4, channels=(6, 12, 24), strides=(2, 2), num_res_units=3,
         normalization="batch", dropout=0.1),
    dict(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8, 16), strides=(2, 2), num_res_units=0,
         normalization="instance"),
]


def _randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights, and batch norms with running statistics that are not the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.25)
    return net


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['spatial_dims']}d-units{c['num_res_units']}-"
                                                      f"{c['normalization']}")
def test_same_parameters_and_function_as_monai(case):
    dims, cin, cout = case["spatial_dims"], case["in_channels"], case["out_channels"]
    options = {k: v for k, v in case.items() if k not in ("spatial_dims", "in_channels", "out_channels")}
    reference = _randomised(unet(dims, cin, cout, **options), seed=len(str(case)))
    ours = plain_unet(dims, cin, cout, **options)
    state = reference.state_dict()
    assert list(ours.state_dict()) == list(state)  # the same names in the same order
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in state.values()]
    ours.load_state_dict(state)
    x = torch.randn(2, cin, *(16,) * dims, generator=torch.Generator().manual_seed(3))
    reference.eval(), ours.eval()
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(ours(x), expected, rtol=1e-5, atol=1e-5)
        assert torch.allclose(inference_copy(ours)(x), expected, rtol=1e-4, atol=1e-4)


def test_training_mode_is_monais_too():
    """Batch statistics and dropout in training mode: the same outputs under the same random seed."""
    case = dict(channels=(4, 8, 16), strides=(2, 2), num_res_units=2, normalization="batch", dropout=0.3)
    reference = _randomised(unet(3, 1, 3, **case), seed=5)
    ours = plain_unet(3, 1, 3, **case)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    expected = reference.train()(x)
    torch.manual_seed(0)
    assert torch.allclose(ours.train()(x), expected, rtol=1e-5, atol=1e-5)


def test_fusion_folds_the_same_layers():
    """inference_copy folds plain residual units as it folds MONAI's: 13 batch norms and the last unit."""
    reference = unet(3, 1, 7, channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=2,
                     normalization="batch").eval()
    ours = plain_unet(3, 1, 7, channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=2,
                      normalization="batch").eval()
    fused_reference, fused_ours = inference_copy(reference), inference_copy(ours)
    assert fused_ours.fused == fused_reference.fused
    assert fused_ours.fused["batch_norms"] == 13 and fused_ours.fused["identity_residuals"] == 1


@pytest.mark.skipif("default" not in shipped_models(), reason="no shipped default model")
def test_default_checkpoint_loads_into_the_plain_network_without_monai():
    """load_model gives the plain network for the shipped U-Net, in a process that never imports MONAI."""
    code = ("import sys, torch\n"
            "from sxtseg.models import load_model\n"
            "net = load_model('default')\n"
            "out = net(torch.zeros(1, 1, 32, 32, 32))\n"
            "print(type(net).__name__, tuple(out.shape), 'monai' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["PlainUNet", "(1,", "9,", "32,", "32,", "32)", "False"]


@pytest.mark.skipif("default" not in shipped_models(), reason="no shipped default model")
def test_default_checkpoint_same_logits_as_monai():
    net = load_model("default")
    assert isinstance(net, PlainUNet)
    arch = net.metadata["architecture"]
    reference = unet(arch["spatial_dims"], arch["in_channels"], arch["out_channels"], **arch["config"])
    reference.load_state_dict(net.state_dict())
    x = torch.rand(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(net(x), reference.eval()(x))


@pytest.mark.skipif("default" not in shipped_models(), reason="no shipped default model")
def test_load_model_can_give_monais_network():
    from monai.networks.nets import UNet

    net = load_model("default", monai=True)
    assert isinstance(net, UNet) and net.metadata["sha256"] == load_model("default").metadata["sha256"]
