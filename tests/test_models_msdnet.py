"""MSD-net against a plain torch.cat implementation; the U-Net factory; models.build()."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sxtseg import models
from sxtseg.errors import InvalidArgumentError, InvalidDataError, ShapeError
from sxtseg.models.msdnet import MSDNet


class CatMSDNet(nn.Module):
    """The textbook MSD-net: nn.Conv layers over torch.cat of all earlier maps.

    Built from an MSDNet and sharing its Parameter objects; norms are copies (own
    running statistics) whose affine parameters are the MSDNet's.
    """

    def __init__(self, net: MSDNet):
        super().__init__()
        conv = nn.Conv2d if net.spatial_dims == 2 else nn.Conv3d
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        for layer in net.layers:
            width, channels = layer.weight.shape[:2]
            c = conv(channels, width, 3, padding=layer.dilation, dilation=layer.dilation, bias=layer.bias is not None)
            c.weight = layer.weight
            if layer.bias is not None:
                c.bias = layer.bias
            self.convs.append(c)
            if layer.norm is None:
                self.norms.append(nn.Identity())
            else:
                norm = copy.deepcopy(layer.norm)
                norm.weight, norm.bias = layer.norm.weight, layer.norm.bias
                self.norms.append(norm)
        self.final = net.final

    def forward(self, x):
        features = x
        for conv, norm in zip(self.convs, self.norms):
            features = torch.cat([features, F.relu(norm(conv(features)))], dim=1)
        return self.final(features)


CASES = [  # spatial_dims, normalization, width, batch, spatial shape (odd sizes, one below a dilation)
    (2, None, 1, 2, (7, 9)),
    (2, "batch", 2, 3, (6, 9)),
    (2, "instance", 1, 2, (9, 5)),
    (3, None, 2, 1, (5, 6, 7)),
    (3, "batch", 1, 2, (5, 4, 7)),
    (3, "instance", 2, 2, (7, 5, 3)),
]


def _pair(spatial_dims, normalization, width, seed=0, in_channels=2, depth=6):
    torch.manual_seed(seed)
    net = MSDNet(spatial_dims, in_channels, 3, depth, width=width, dilations=[1, 2, 3, 8],
                 normalization=normalization).double()
    with torch.no_grad():  # non-trivial norm affine parameters and biases
        for p in net.parameters():
            if p.ndim == 1:
                p.uniform_(0.5, 1.5)
    return net, CatMSDNet(net)


def _grads(net, x, grad_out, parameters):
    out = net(x)
    inputs = ([x] if x.requires_grad else []) + parameters
    return out, torch.autograd.grad(out, inputs, grad_out)


@pytest.mark.parametrize("spatial_dims,normalization,width,batch,shape", CASES)
def test_output_and_every_gradient_equal_the_torch_cat_reference(spatial_dims, normalization, width, batch, shape):
    net, reference = _pair(spatial_dims, normalization, width)
    x = torch.randn(batch, 2, *shape, dtype=torch.float64, requires_grad=True)
    parameters = list(net.parameters())
    for _ in range(2):  # a second call reuses nothing stale from the first
        grad_out = torch.randn(batch, 3, *shape, dtype=torch.float64)
        out, grads = _grads(net, x, grad_out, parameters)
        expected, expected_grads = _grads(reference, x, grad_out, parameters)
    assert out.shape == (batch, 3, *shape)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    names = ["input"] + [name for name, _ in net.named_parameters()]
    for name, got, want in zip(names, grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")
    if normalization == "batch":  # running statistics are updated as nn.BatchNorm does (two forwards each)
        for layer, norm in zip(net.layers, reference.norms):
            torch.testing.assert_close(layer.norm.running_mean, norm.running_mean)
            torch.testing.assert_close(layer.norm.running_var, norm.running_var)
            assert layer.norm.num_batches_tracked == norm.num_batches_tracked == 2


def test_batch_norm_in_eval_mode_and_input_without_gradient():
    net, reference = _pair(3, "batch", 1)
    x = torch.randn(2, 2, 5, 6, 7, dtype=torch.float64)
    net(x), reference(x)  # one training step of running statistics
    net.eval(), reference.eval()
    parameters = list(net.parameters())
    grad_out = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64)
    out, grads = _grads(net, x, grad_out, parameters)
    expected, expected_grads = _grads(reference, x, grad_out, parameters)
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("spatial_dims,shape", [(2, (1, 1)), (2, (33, 17)), (3, (3, 1, 2)), (3, (11, 12, 13))])
def test_shapes_with_default_dilations(spatial_dims, shape):
    net = MSDNet(spatial_dims, 1, 4, depth=12)
    assert [layer.dilation for layer in net.layers] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]
    assert net.receptive_field == 1 + 2 * (55 + 3)
    out = net(torch.randn(2, 1, *shape))
    assert out.shape == (2, 4, *shape) and out.dtype == torch.float32
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_float32_matches_reference_and_no_grad_inference():
    net, reference = _pair(3, None, 1)
    net, reference = net.float(), reference.float()
    x = torch.randn(1, 2, 9, 8, 7)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5)


def test_saved_activations_grow_linearly_with_depth():
    """What autograd keeps for backward is one buffer of all maps (plus the parameters)."""
    saved = {}

    def count(depth):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel()
            return t

        net = MSDNet(3, 1, 2, depth)
        x = torch.randn(1, 1, 8, 8, 8, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
        return total - sum(p.numel() for p in net.parameters())

    for depth in (10, 40):
        saved[depth] = count(depth)
        assert saved[depth] == (1 + depth) * 8**3  # the (N, 1 + depth, 8, 8, 8) buffer, nothing else


def test_autocast_uses_its_dtype_for_the_buffer_and_float32_gradients():
    torch.manual_seed(0)
    net = MSDNet(3, 1, 3, depth=8, normalization="instance")
    x = torch.randn(1, 1, 9, 10, 11)
    expected = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=0.1, atol=0.1)
    out.float().square().mean().backward()
    for p in net.parameters():
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_reference_and_runs_under_autocast():
    net, reference = _pair(3, "batch", 2)
    net, reference = net.cuda(), reference.cuda()
    x = torch.randn(2, 2, 17, 18, 19, device="cuda", dtype=torch.float64, requires_grad=True)
    parameters = list(net.parameters())
    grad_out = torch.randn(2, 3, 17, 18, 19, device="cuda", dtype=torch.float64)
    out, grads = _grads(net, x, grad_out, parameters)
    expected, expected_grads = _grads(reference, x, grad_out, parameters)
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)
    net.float()
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cuda", dtype=dtype):
            half = net(x.detach().float())
        assert half.dtype == dtype
        half.float().mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_state_dict_round_trip_and_repr():
    net = MSDNet(2, 1, 2, depth=3, normalization="batch")
    clone = MSDNet(2, 1, 2, depth=3, normalization="batch")
    clone.load_state_dict(net.state_dict())
    x = torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(net.eval()(x), clone.eval()(x))
    assert "layers.2.norm.running_mean" in net.state_dict()
    assert "depth=3" in repr(net) and "3 -> 1, dilation=3" in repr(net)


def test_build_and_available():
    assert models.available() == ["densenet121", "msdnet", "unet"]
    net = models.build("MSDNet", 3, 1, 3)
    assert isinstance(net, MSDNet) and net.depth == 100
    unet = models.build("unet", spatial_dims=3, in_channels=1, out_channels=3)
    assert 1_000_000 <= sum(p.numel() for p in unet.parameters()) <= 5_000_000
    assert unet(torch.zeros(1, 1, 8, 16, 24)).shape == (1, 3, 8, 16, 24)
    small = models.build("unet", 2, 2, 4, channels=(4, 8), num_res_units=0, normalization=None)
    assert small(torch.zeros(3, 2, 12, 10)).shape == (3, 4, 12, 10)


@pytest.mark.parametrize("call,message", [
    (lambda: models.build("vnet", 3, 1, 2), "unknown model 'vnet'; available: densenet121, msdnet, unet"),
    (lambda: models.build("msdnet", 3, 1, 2, layers=5), "no option 'layers'"),
    (lambda: models.build("unet", 3, 1, 2, depth=5), "no option 'depth'"),
    (lambda: models.build("msdnet", 4, 1, 2), "spatial_dims must be 2 or 3"),
    (lambda: MSDNet(3, 1, 2, depth=0), "depth must be an integer >= 1"),
    (lambda: MSDNet(3, 1, 2, depth=2, width=1.5), "width must be an integer >= 1"),
    (lambda: MSDNet(3, 1, 2, depth=2, dilations=[]), "dilations must be a non-empty"),
    (lambda: MSDNet(3, 1, 2, depth=2, dilations=[1, 0]), "dilations must be a non-empty"),
    (lambda: MSDNet(3, 1, 2, depth=2, normalization="group"), "normalization must be None, 'batch' or 'instance'"),
    (lambda: models.build("unet", 3, 1, 2, channels=(8,)), "channels must list at least two"),
    (lambda: models.build("unet", 3, 1, 2, strides=(2,)), "strides must be 3 positive integers"),
    (lambda: models.build("unet", 3, 1, 2, normalization="layer"), "normalization must be 'instance'"),
])
def test_bad_configs_raise_invalid_argument(call, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace("[", r"\[")):
        call()


def test_bad_inputs_raise_clear_errors():
    net = MSDNet(3, 2, 2, depth=2)
    with pytest.raises(ShapeError, match=r"expected input of shape \(N, 2, Z, Y, X\), got \(2, 8, 8, 8\)"):
        net(torch.zeros(2, 8, 8, 8))
    with pytest.raises(ShapeError, match="got"):
        net(torch.zeros(1, 1, 8, 8, 8))
    with pytest.raises(InvalidDataError, match="input dtype torch.float64 differs"):
        net(torch.zeros(1, 2, 4, 4, 4, dtype=torch.float64))
