"""MONAI's residual U-Net rebuilt from plain PyTorch modules, to run a checkpoint without importing MONAI.

``import monai`` imports every MONAI subpackage (its ``__init__`` loads them
all, SciPy's signal and statistics modules and matplotlib among them): about
1.5 s on a 2-core machine, more than a third of ``sxtseg run``'s start-up.
Inference needs none of it.  :func:`plain_unet` builds the network that
:func:`sxtseg.models.unet.unet` (MONAI's :class:`monai.networks.nets.UNet`)
builds, out of ``torch.nn`` modules with the same names in the same nesting,
so that a checkpoint's state dict loads into either one unchanged and both
compute the same function (``tests/test_models_plain_unet.py`` checks both
against MONAI for every option :func:`~sxtseg.models.unet.unet` has).
:func:`sxtseg.models.load_model` loads U-Net checkpoints into it; training
(:func:`sxtseg.train.fit`) builds MONAI's own.

The structure (Kerfoot et al. 2018, as MONAI writes it): each level is
``Sequential(down, SkipConnection(next level), up)``; ``down`` is a residual
unit of ``num_res_units`` convolutions (the first one strided) with a
strided or 1x1 convolution on the residual path; ``up`` is a transposed
convolution followed by a one-convolution residual unit; every convolution
but the network's last is followed by normalisation, dropout and a PReLU
(MONAI's ``ADN`` block, in that order).

Examples
--------
>>> import torch
>>> from sxtseg.models.plain_unet import plain_unet
>>> net = plain_unet(3, 1, 3, channels=(4, 8), strides=(2,), normalization="batch").eval()
>>> net(torch.zeros(1, 1, 16, 16, 16)).shape
torch.Size([1, 3, 16, 16, 16])
>>> sorted(net.state_dict())[:2]
['model.0.conv.unit0.adn.A.weight', 'model.0.conv.unit0.adn.N.bias']
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .unet import unet_options

__all__ = ["PlainUNet", "ResidualUnit", "plain_unet"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSED = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_NORM = {("batch", 2): nn.BatchNorm2d, ("batch", 3): nn.BatchNorm3d,
         ("instance", 2): nn.InstanceNorm2d, ("instance", 3): nn.InstanceNorm3d}


def _convolution(dims: int, cin: int, cout: int, stride: int, normalization, dropout: float, *,
                 transposed: bool = False, conv_only: bool = False) -> nn.Sequential:
    """MONAI's ``Convolution``: ``conv`` (3^dims kernel, size-keeping padding), then ``adn`` (norm, dropout, PReLU)."""
    if transposed:
        conv = _CONV_TRANSPOSED[dims](cin, cout, 3, stride=stride, padding=1, output_padding=stride - 1)
    else:
        conv = _CONV[dims](cin, cout, 3, stride=stride, padding=1)
    block = nn.Sequential()
    block.add_module("conv", conv)
    if not conv_only:
        adn = nn.Sequential()
        if normalization is not None:
            adn.add_module("N", _NORM[normalization, dims](cout))
        adn.add_module("D", nn.Dropout(dropout))
        adn.add_module("A", nn.PReLU())
        block.add_module("adn", adn)
    return block


class ResidualUnit(nn.Module):
    """MONAI's ``ResidualUnit``: ``conv(x) + residual(x)``; ``conv`` holds ``unit0``, ``unit1``... in sequence.

    The residual path is the identity when the unit keeps size and channels, a
    1x1 convolution when it only changes channels, else a strided 3^dims one.
    """

    def __init__(self, dims: int, cin: int, cout: int, stride: int, subunits: int, normalization, dropout: float,
                 *, last_conv_only: bool = False):
        super().__init__()
        self.conv = nn.Sequential()
        channels, unit_stride = cin, stride
        for k in range(max(1, subunits)):
            conv_only = last_conv_only and k == max(1, subunits) - 1
            self.conv.add_module(f"unit{k}", _convolution(dims, channels, cout, unit_stride, normalization, dropout,
                                                          conv_only=conv_only))
            channels, unit_stride = cout, 1
        if stride != 1:
            self.residual = _CONV[dims](cin, cout, 3, stride=stride, padding=1)
        elif cin != cout:
            self.residual = _CONV[dims](cin, cout, 1, stride=1, padding=0)
        else:
            self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.residual(x)


class _SkipConnection(nn.Module):
    """``cat([x, submodule(x)])`` along channels (MONAI's ``SkipConnection``)."""

    def __init__(self, submodule: nn.Module):
        super().__init__()
        self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.submodule(x)], dim=1)


class PlainUNet(nn.Module):
    """The network of :func:`plain_unet`; ``forward`` maps ``(N, in, *spatial)`` to ``(N, out, *spatial)`` logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def plain_unet(spatial_dims: int, in_channels: int, out_channels: int, *, channels: Sequence[int] = (16, 32, 64, 128),
               strides: Sequence[int] | None = None, num_res_units: int = 2, normalization="instance",
               dropout: float = 0.0) -> PlainUNet:
    """The network :func:`sxtseg.models.unet.unet` builds with the same arguments, without MONAI.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, channels, strides, num_res_units, normalization, dropout
        As :func:`sxtseg.models.unet.unet` takes them (checked the same way).

    Returns
    -------
    PlainUNet
        With MONAI's parameter and buffer names (``model.0.conv.unit0.conv.weight``...).

    Raises
    ------
    InvalidArgumentError
        An option out of range.
    """
    channels, strides = unet_options(spatial_dims, in_channels, out_channels, channels=channels, strides=strides,
                                     num_res_units=num_res_units, normalization=normalization, dropout=dropout)
    norm, dims, units = normalization, spatial_dims, num_res_units

    def down(cin: int, cout: int, stride: int) -> nn.Module:
        if units > 0:
            return ResidualUnit(dims, cin, cout, stride, units, norm, dropout)
        return _convolution(dims, cin, cout, stride, norm, dropout)

    def up(cin: int, cout: int, stride: int, top: bool) -> nn.Module:
        conv = _convolution(dims, cin, cout, stride, norm, dropout, transposed=True, conv_only=top and units == 0)
        if units == 0:
            return conv
        return nn.Sequential(conv, ResidualUnit(dims, cout, cout, 1, 1, norm, dropout, last_conv_only=top))

    def level(cin: int, cout: int, chans: tuple, strides_: tuple, top: bool) -> nn.Module:
        c, s = chans[0], strides_[0]
        if len(chans) > 2:
            inner, up_in = level(c, c, chans[1:], strides_[1:], False), 2 * c
        else:
            inner, up_in = down(c, chans[1], 1), c + chans[1]  # the bottom layer
        return nn.Sequential(down(cin, c, s), _SkipConnection(inner), up(up_in, cout, s, top))

    return PlainUNet(level(in_channels, out_channels, channels, strides, True))
