"""Mixed-scale dense network (MSD-net) for 2D and 3D segmentation.

Pelt, D. M. & Sethian, J. A. (2018). "A mixed-scale dense convolutional neural
network for image analysis." PNAS 115(2):254-259. https://doi.org/10.1073/pnas.1715832114

Every layer sees the input and all earlier feature maps, applies 3x3 (3x3x3)
convolutions whose dilation cycles through ``dilations``, then optional
normalisation and ReLU; a 1x1 convolution over everything gives the classes.
The maps share one preallocated buffer and the layer stack is one autograd
node (:mod:`sxtseg.models._msd_autograd`), so training memory grows linearly
with depth and the convolutions run as large matrix products.

Examples
--------
>>> import torch
>>> from sxtseg.models.msdnet import MSDNet
>>> net = MSDNet(3, in_channels=1, out_channels=3, depth=4)
>>> net(torch.zeros(1, 1, 9, 10, 11)).shape
torch.Size([1, 3, 9, 10, 11])
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from ..errors import InvalidArgumentError, InvalidDataError, ShapeError
from ._msd_autograd import StackSpec, msd_stack

__all__ = ["MSDNet"]

_NORMS = {
    "batch": (nn.BatchNorm2d, nn.BatchNorm3d),
    "instance": (nn.InstanceNorm2d, nn.InstanceNorm3d),
}


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"MSDNet: {name} must be an integer >= {minimum}, got {value!r}")
    return value


class MSDLayer(nn.Module):
    """The parameters of one MSD-net layer (its computation is done by :class:`MSDNet`).

    Attributes
    ----------
    weight : (width, channels, 3, 3[, 3]) Parameter
        Convolution weights over the ``channels`` maps before this layer.
    bias : (width,) Parameter or None
        Convolution bias; None when the layer is normalised.
    norm : torch.nn.Module or None
        ``BatchNorm`` or affine ``InstanceNorm`` over the layer's ``width`` maps.
    dilation : int
        Dilation (and zero padding) of the convolution, in voxels.
    """

    def __init__(self, spatial_dims: int, channels: int, width: int, dilation: int, normalization: str | None):
        super().__init__()
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(width, channels, *([3] * spatial_dims)))
        if normalization is None:
            self.bias = nn.Parameter(torch.zeros(width))
            self.norm = None
        else:
            self.register_parameter("bias", None)
            kind = _NORMS[normalization][spatial_dims - 2]
            self.norm = kind(width, affine=True)
        # He et al. (2015) normal init, as Pelt & Sethian use: std = sqrt(2 / fan_in)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (channels * 3**spatial_dims)))

    def extra_repr(self) -> str:
        width, channels = self.weight.shape[:2]
        return f"{channels} -> {width}, dilation={self.dilation}"


class MSDNet(nn.Module):
    """Mixed-scale dense network (Pelt & Sethian, PNAS 2018) for 2D or 3D images.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for (Y, X) images, 3 for (Z, Y, X) volumes.
    in_channels, out_channels : int
        Input channels (1 for a tomogram) and output channels (classes; logits).
    depth : int
        Number of dense layers.
    width : int, optional
        Feature maps each layer adds (1 in the paper).
    dilations : iterable of int, optional
        Dilations in voxels; layer ``i`` uses ``dilations[i % len(dilations)]``.
        Default 1, 2, ..., 10.
    normalization : {None, "batch", "instance"}, optional
        Per-layer normalisation before the ReLU (the paper has none).  With a norm
        the convolutions have no bias.

    Notes
    -----
    ``forward(x)`` takes ``(N, in_channels, *spatial)`` and returns
    ``(N, out_channels, *spatial)`` logits; any spatial size works (the padding equals
    the dilation).  Training memory is about two buffers of
    ``N * (in_channels + depth * width)`` maps plus a few temporaries, linear in depth.
    Under autocast the buffer and matrix products use the autocast dtype, the tap
    sums and norms float32.  The receptive field spans
    ``1 + 2 * sum(dilations of the layers)`` voxels per axis, which is the halo that
    tiled inference needs for exact tiles.

    Examples
    --------
    >>> import torch
    >>> net = MSDNet(2, 1, 2, depth=3, width=2, normalization="batch")
    >>> logits = net(torch.randn(2, 1, 15, 16))
    >>> logits.shape, net.receptive_field
    (torch.Size([2, 2, 15, 16]), 13)
    """

    def __init__(
        self,
        spatial_dims: Literal[2, 3],
        in_channels: int,
        out_channels: int,
        depth: int,
        *,
        width: int = 1,
        dilations: Iterable[int] = range(1, 11),
        normalization: Literal["batch", "instance"] | None = None,
    ):
        super().__init__()
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise InvalidArgumentError(f"MSDNet: spatial_dims must be 2 or 3, got {spatial_dims!r}")
        _positive_int("in_channels", in_channels)
        _positive_int("out_channels", out_channels)
        _positive_int("depth", depth)
        _positive_int("width", width)
        try:
            dilations = [int(d) for d in dilations]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"MSDNet: dilations must be integers, got {dilations!r}") from None
        if not dilations or min(dilations) < 1:
            raise InvalidArgumentError(f"MSDNet: dilations must be a non-empty list of integers >= 1, got {dilations}")
        if normalization not in (None, *_NORMS):
            raise InvalidArgumentError(
                f"MSDNet: normalization must be None, 'batch' or 'instance', got {normalization!r}")
        self.spatial_dims = spatial_dims
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth, self.width = depth, width
        self.dilations = tuple(dilations)
        self.normalization = normalization
        self.layers = nn.ModuleList(
            MSDLayer(spatial_dims, in_channels + i * width, width, dilations[i % len(dilations)], normalization)
            for i in range(depth)
        )
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.final = conv(in_channels + depth * width, out_channels, kernel_size=1)

    @property
    def receptive_field(self) -> int:
        """Edge of the receptive field of one output voxel, in voxels."""
        return 1 + 2 * sum(layer.dilation for layer in self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"MSDNet: expected input of shape (N, {self.in_channels}, "
                f"{', '.join('ZYX'[3 - self.spatial_dims:])}), got {tuple(x.shape)}")
        device = x.device.type
        if torch.is_autocast_enabled(device) and x.is_floating_point():
            dtype = torch.get_autocast_dtype(device)
        else:
            dtype = self.final.weight.dtype
            if x.dtype != dtype:
                raise InvalidDataError(
                    f"MSDNet: input dtype {x.dtype} differs from the parameters' {dtype}; "
                    "convert one of them (for example model.to(x.dtype))")
        params = []
        for layer in self.layers:
            params += [layer.weight, layer.bias] if layer.norm is None else [
                layer.weight, layer.norm.weight, layer.norm.bias]
        norms = None if self.normalization is None else [layer.norm for layer in self.layers]
        spec = StackSpec(self.in_channels, self.width, [layer.dilation for layer in self.layers], norms, dtype)
        return msd_stack(spec, x, self.final.weight, self.final.bias, params)

    def extra_repr(self) -> str:
        return (f"spatial_dims={self.spatial_dims}, in_channels={self.in_channels}, "
                f"out_channels={self.out_channels}, depth={self.depth}, width={self.width}, "
                f"dilations={list(self.dilations)}, normalization={self.normalization!r}")
