"""Networks built by name: MSD-net (2D/3D) and a MONAI U-Net for segmentation, DenseNet-121 for classification.

:func:`build` is the single entry point (training configs name a model and its
options); :func:`available` lists the names.  Importing this subpackage imports
PyTorch; ``import sxtseg`` alone does not.

Examples
--------
>>> from sxtseg import models
>>> models.available()
['densenet121', 'msdnet', 'unet']
>>> net = models.build("msdnet", spatial_dims=2, in_channels=1, out_channels=3, depth=10)
>>> type(net).__name__, net.depth
('MSDNet', 10)
"""

from __future__ import annotations

import inspect

from torch import nn

from ..errors import InvalidArgumentError
from .checkpoint import load_model, save_checkpoint, shipped_models
from .densenet import densenet121
from .msdnet import MSDNet
from .unet import unet

__all__ = ["MSDNet", "available", "build", "densenet121", "load_model", "save_checkpoint", "shipped_models", "unet"]

# name -> (builder, defaults that differ from the builder's own)
_REGISTRY = {
    "msdnet": (MSDNet, {"depth": 100}),
    "unet": (unet, {}),
    "densenet121": (densenet121, {}),  # an image classifier: (N, C, *spatial) -> (N, classes)
}


def available() -> list[str]:
    """Names :func:`build` accepts, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY)


def _options(builder) -> list[str]:
    params = inspect.signature(builder).parameters.values()
    return [p.name for p in params if p.name not in ("self", "spatial_dims", "in_channels", "out_channels")]


def build(name: str, spatial_dims: int, in_channels: int, out_channels: int, **config) -> nn.Module:
    """Build a network by name.

    Parameters
    ----------
    name : {"msdnet", "unet", "densenet121"}
        The architecture (case-insensitive); see :func:`available`.
    spatial_dims : {2, 3}
        2 for (Y, X) images, 3 for (Z, Y, X) volumes.
    in_channels, out_channels : int
        Input channels and output channels (classes; the network returns logits).
    **config
        Options of the architecture: for ``"msdnet"`` those of
        :class:`~sxtseg.models.msdnet.MSDNet` (``depth`` defaults to 100, the paper's
        segmentation depth; ``width``, ``dilations``, ``normalization``), for ``"unet"``
        those of :func:`~sxtseg.models.unet.unet` (``channels``, ``strides``,
        ``num_res_units``, ``normalization``, ``dropout``), for ``"densenet121"`` those of
        :func:`~sxtseg.models.densenet.densenet121` (``init_features``, ``growth_rate``,
        ``bn_size``, ``dropout_prob``).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, *spatial)`` to ``(N, out_channels, *spatial)``; the
        classifier ``"densenet121"`` to ``(N, out_channels)``.

    Raises
    ------
    InvalidArgumentError
        An unknown name, an unknown option, or an option out of range.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise InvalidArgumentError(f"unknown model {name!r}; available: {', '.join(available())}")
    builder, defaults = _REGISTRY[key]
    options = _options(builder)
    unknown = sorted(set(config) - set(options))
    if unknown:
        raise InvalidArgumentError(
            f"model {key!r} has no option {', '.join(map(repr, unknown))}; its options are {', '.join(options)}")
    model = builder(spatial_dims, in_channels, out_channels, **{**defaults, **config})
    # how it was built, for checkpoints (JSON types: tuples and ranges become lists)
    model.sxtseg_architecture = {"name": key, "spatial_dims": int(spatial_dims), "in_channels": int(in_channels),
                                 "out_channels": int(out_channels), "config": _jsonable({**defaults, **config})}
    return model


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # NumPy scalars
    return value
