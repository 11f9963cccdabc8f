"""A 2D/3D U-Net with SXT defaults: MONAI's :class:`monai.networks.nets.UNet`, configured.

Ronneberger, Fischer & Brox (2015), "U-Net: convolutional networks for biomedical image
segmentation", MICCAI, https://doi.org/10.1007/978-3-319-24574-4_28; Çiçek et al. (2016),
"3D U-Net", MICCAI, https://doi.org/10.1007/978-3-319-46723-8_49.  MONAI's variant uses
strided convolutions for downsampling and residual units (Kerfoot et al. 2018).

Examples
--------
>>> import torch
>>> from sxtseg.models.unet import unet
>>> net = unet(3, in_channels=1, out_channels=3)
>>> net(torch.zeros(1, 1, 16, 16, 16)).shape
torch.Size([1, 3, 16, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from ..errors import InvalidArgumentError

__all__ = ["unet", "unet_options"]


def unet(
    spatial_dims: Literal[2, 3],
    in_channels: int,
    out_channels: int,
    *,
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] | None = None,
    num_res_units: int = 2,
    normalization: Literal["batch", "instance"] | None = "instance",
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI's residual U-Net with defaults for SXT segmentation.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for (Y, X) images, 3 for (Z, Y, X) volumes.
    in_channels, out_channels : int
        Input channels and output channels (classes; logits).
    channels : sequence of int, optional
        Feature maps per level, finest first.  The default (16, 32, 64, 128) gives 4
        levels and about 1.2 M parameters in 3D (0.4 M in 2D).
    strides : sequence of int, optional
        Downsampling factor between levels (``len(channels) - 1`` values; default 2 each).
        Each spatial size should be divisible by their product (8 by default); use
        sliding-window inference for other sizes.
    num_res_units : int, optional
        Residual units per block.
    normalization : {"instance", "batch", None}, optional
        Normalisation after each convolution.
    dropout : float, optional
        Dropout probability in [0, 1).

    Returns
    -------
    monai.networks.nets.UNet
        ``forward`` maps ``(N, in_channels, *spatial)`` to ``(N, out_channels, *spatial)``.

    See Also
    --------
    sxtseg.models.plain_unet.plain_unet : the same network without MONAI, which
        :func:`sxtseg.models.load_model` uses to run checkpoints.
    """
    channels, strides = unet_options(spatial_dims, in_channels, out_channels, channels=channels, strides=strides,
                                     num_res_units=num_res_units, normalization=normalization, dropout=dropout)
    from monai.networks.nets import UNet

    norms = {"instance": "INSTANCE", "batch": "BATCH", None: None}
    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, channels=channels,
                strides=strides, num_res_units=num_res_units, norm=norms[normalization], dropout=dropout)


def unet_options(spatial_dims, in_channels, out_channels, *, channels, strides, num_res_units, normalization,
                 dropout) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check the options of :func:`unet`; returns ``(channels, strides)`` as tuples (default strides filled in).

    Raises
    ------
    InvalidArgumentError
        An option out of range, naming it.
    """
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise InvalidArgumentError(f"unet: spatial_dims must be 2 or 3, got {spatial_dims!r}")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"unet: {name} must be an integer >= 1, got {value!r}")
    channels = tuple(channels)
    if len(channels) < 2 or any(not isinstance(c, int) or c < 1 for c in channels):
        raise InvalidArgumentError(f"unet: channels must list at least two positive integers, got {channels}")
    strides = (2,) * (len(channels) - 1) if strides is None else tuple(strides)
    if len(strides) != len(channels) - 1 or any(not isinstance(s, int) or s < 1 for s in strides):
        raise InvalidArgumentError(
            f"unet: strides must be {len(channels) - 1} positive integers (one fewer than channels), got {strides}")
    if isinstance(num_res_units, bool) or not isinstance(num_res_units, int) or num_res_units < 0:
        raise InvalidArgumentError(f"unet: num_res_units must be an integer >= 0, got {num_res_units!r}")
    if normalization not in ("instance", "batch", None):
        raise InvalidArgumentError(
            f"unet: normalization must be 'instance', 'batch' or None, got {normalization!r}")
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(f"unet: dropout must be in [0, 1), got {dropout!r}")
    return channels, strides
