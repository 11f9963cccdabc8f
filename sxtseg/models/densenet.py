"""A DenseNet-121 image classifier: MONAI's :class:`monai.networks.nets.DenseNet121`, configured.

Huang, Liu, van der Maaten & Weinberger (2017), "Densely connected convolutional
networks", CVPR, https://doi.org/10.1109/CVPR.2017.243.  The chest X-ray adapter
(:mod:`sxtseg.adapters.cxr`) trains it as a 2-D, one-channel COVID-19 classifier.
Unlike the segmentation networks it returns one logit vector per image,
``(N, out_channels)``, whatever the input size (global average pooling).

Examples
--------
>>> import torch
>>> from sxtseg.models.densenet import densenet121
>>> net = densenet121(2, in_channels=1, out_channels=3, init_features=8, growth_rate=4)
>>> net(torch.zeros(2, 1, 64, 64)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from ..errors import InvalidArgumentError

__all__ = ["densenet121"]


def densenet121(
    spatial_dims: Literal[2, 3],
    in_channels: int,
    out_channels: int,
    *,
    init_features: int = 64,
    growth_rate: int = 32,
    bn_size: int = 4,
    dropout_prob: float = 0.0,
) -> nn.Module:
    """MONAI's DenseNet-121 (dense blocks of 6, 12, 24 and 16 layers), trained from scratch.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for (Y, X) images (chest X-rays), 3 for volumes.
    in_channels, out_channels : int
        Input channels (1 for grey images) and classes (the network returns logits).
    init_features : int, optional
        Feature maps of the first convolution (64 in the paper).
    growth_rate : int, optional
        Feature maps each dense layer adds (32 in the paper; 8 million
        parameters).  ``init_features=8, growth_rate=4`` gives 0.1 million,
        enough for tests.
    bn_size : int, optional
        Bottleneck width, as a multiple of ``growth_rate``.
    dropout_prob : float, optional
        Dropout after each dense layer, in [0, 1).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, *spatial)`` to ``(N, out_channels)`` logits.
        No ImageNet weights are loaded (``pretrained=False``).
    """
    from monai.networks.nets import DenseNet121

    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise InvalidArgumentError(f"spatial_dims must be 2 or 3, not {spatial_dims!r}")
    for name, value in (("init_features", init_features), ("growth_rate", growth_rate), ("bn_size", bn_size)):
        if int(value) < 1:
            raise InvalidArgumentError(f"densenet121 {name} must be at least 1, not {value!r}")
    if not 0.0 <= float(dropout_prob) < 1.0:
        raise InvalidArgumentError(f"densenet121 dropout_prob must be in [0, 1), not {dropout_prob!r}")
    return DenseNet121(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                       init_features=int(init_features), growth_rate=int(growth_rate), bn_size=int(bn_size),
                       dropout_prob=float(dropout_prob), pretrained=False)
