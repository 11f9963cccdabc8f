"""Inference copies of segmentation networks: the same function in fewer, faster operations.

:func:`inference_copy` returns a copy of a network in evaluation mode with

* every batch normalisation that directly follows a convolution folded into
  that convolution's weights and bias (in evaluation mode batch norm is an
  affine map per channel: ``conv`` then ``bn`` is one ``conv``);
* every residual unit (MONAI's ``ResidualUnit``, or that of
  :mod:`sxtseg.models.plain_unet`) that is one plain convolution plus the
  identity (the U-Net's last unit) folded into that convolution (``conv(x) + x``
  is ``conv'(x)`` with 1 added at the centre tap of each channel's own kernel);
* for 3-D convolutional networks on a CPU, weights in channels-last memory
  order (oneDNN's fast layout for 3-D convolutions with few channels).

The copy computes the same function up to float rounding (about 1e-4 on
logits of order 10; ``tests/test_models_fuse.py``); the original is not
changed.  On the shipped U-Net on a 2-core AVX2 CPU one forward pass of four
64^3 windows takes 0.24 s instead of 0.40 s (``benchmarks/bench_pipeline.py``).

>>> import torch
>>> from sxtseg.models import unet
>>> from sxtseg.models.fuse import inference_copy
>>> net = unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="batch").eval()
>>> fast = inference_copy(net)
>>> x = torch.randn(1, 1, 16, 16, 16)
>>> bool(torch.allclose(fast(x), net(x), atol=1e-5))
True
"""

from __future__ import annotations

import copy
import sys

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batch_norm", "fold_identity_residuals", "inference_copy"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batch_norm(net: nn.Module) -> int:
    """Fold each batch norm that directly follows a convolution into it, in place.

    "Directly follows" means the next module of the same ``nn.Sequential``, or
    the first module of the next one (MONAI's ``Convolution`` is ``conv`` then
    an ``ADN`` block whose first module is the norm when its ordering starts
    with ``N``).  Norms without running statistics are left alone.

    Parameters
    ----------
    net : torch.nn.Module
        In evaluation mode.

    Returns
    -------
    int
        How many norms were folded (each replaced by ``nn.Identity``).
    """
    if net.training:
        raise ValueError("fold_batch_norm: the network is in training mode; call .eval() first")
    folded = 0
    for sequence in list(net.modules()):
        if not isinstance(sequence, nn.Sequential):
            continue
        names = list(sequence._modules)
        for name, following in zip(names, names[1:]):
            conv, after = sequence._modules[name], sequence._modules[following]
            if not isinstance(conv, _CONV):
                continue
            holder, key = sequence, following
            if isinstance(after, nn.Sequential) and len(after):
                holder, key = after, next(iter(after._modules))
            norm = holder._modules[key]
            if not isinstance(norm, _BATCH_NORM) or norm.running_mean is None:
                continue
            sequence._modules[name] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, _TRANSPOSED))
            holder._modules[key] = nn.Identity()
            folded += 1
    return folded


def _plain_same_size_conv(module: nn.Module) -> nn.Module | None:
    """The convolution of a MONAI ``Convolution`` that is nothing but a stride-1, size-keeping convolution."""
    if not isinstance(module, nn.Sequential) or list(module._modules) != ["conv"]:
        return None
    conv = module.conv
    if (type(conv) not in (nn.Conv1d, nn.Conv2d, nn.Conv3d) or conv.in_channels != conv.out_channels
            or conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str)
            or any(s != 1 for s in conv.stride) or any(d != 1 for d in conv.dilation)
            or any(k % 2 == 0 or p != k // 2 for k, p in zip(conv.kernel_size, conv.padding))):
        return None
    return conv


def _residual_unit_types() -> tuple[type, ...]:
    """The residual units :func:`fold_identity_residuals` knows: sxtseg's plain one, and MONAI's once imported.

    (A MONAI network exists only after MONAI was imported; a plain one must not import it.)
    """
    from .plain_unet import ResidualUnit

    monai_blocks = sys.modules.get("monai.networks.blocks")
    return (ResidualUnit,) if monai_blocks is None else (ResidualUnit, monai_blocks.ResidualUnit)


def fold_identity_residuals(net: nn.Module) -> int:
    """Replace each residual unit computing ``conv(x) + x`` by one convolution, in place (MONAI's or sxtseg's).

    Only units whose residual path is the identity and whose main path is a
    single plain convolution (no norm, no activation: MONAI's ``conv_only``
    last unit) that keeps the size are folded.

    Returns
    -------
    int
        How many units were replaced.
    """
    unit_types = _residual_unit_types()
    replaced = 0
    for parent in list(net.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, unit_types) or not isinstance(child.residual, nn.Identity):
                continue
            units = list(child.conv.children())
            conv = _plain_same_size_conv(units[0]) if len(units) == 1 else None
            if conv is None:
                continue
            with torch.no_grad():
                centre = tuple(k // 2 for k in conv.kernel_size)
                channels = torch.arange(conv.out_channels)
                conv.weight[(channels, channels, *centre)] += 1.0
            parent._modules[name] = conv
            replaced += 1
    return replaced


def inference_copy(net: nn.Module, *, channels_last: bool | None = None) -> nn.Module:
    """A copy of ``net`` for inference: evaluation mode, batch norms and identity residuals folded.

    Parameters
    ----------
    net : torch.nn.Module
        Any network; the parts that match nothing above are copied unchanged.
    channels_last : bool, optional
        Store the weights channels-last.  Default: for networks whose weights
        are on the CPU and that contain 3-D convolutions, except MSD-net (its
        layers are matrix products over channels-first buffers).

    Returns
    -------
    torch.nn.Module
        The copy, with the original's ``metadata`` attribute (if any) and the
        counts of what was folded in ``fused``.
    """
    from .msdnet import MSDNet

    fast = copy.deepcopy(net).eval()
    fast.fused = {"batch_norms": fold_batch_norm(fast), "identity_residuals": fold_identity_residuals(fast)}
    if channels_last is None:
        weight = next(fast.parameters(), None)
        channels_last = (weight is not None and weight.device.type == "cpu" and not isinstance(fast, MSDNet)
                         and any(isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)) for m in fast.modules()))
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last_3d)
    fast.fused["channels_last"] = bool(channels_last)
    return fast
