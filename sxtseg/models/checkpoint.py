"""Checkpoints: a model's weights with everything needed to use it again.

A checkpoint is one file written by :func:`torch.save` holding only tensors,
strings and plain containers, so :func:`load_model` reads it with
``torch.load(weights_only=True)``: nothing in it is unpickled as code.  It
holds the ``state_dict`` and a JSON header (``metadata``):

- ``architecture``: ``name``, ``spatial_dims``, ``in_channels``,
  ``out_channels`` and ``config``, as :func:`sxtseg.models.build` takes them;
- ``classes``: class name to code (the output channels, in order);
- ``voxel_size_nm``: the (z, y, x) voxel size the model was trained at;
- ``intensity``: how input grey values are normalised (see
  :func:`normalization_range`);
- ``input``: for 2-D models, ``context_slices`` (the neighbouring z slices
  fed as channels);
- ``training``: a description of the training data and run;
- ``sxtseg_version``, ``created`` (UTC, ISO 8601) and ``sha256``: a hash of
  the tensors (names, dtypes, shapes and bytes), checked on loading.

Examples
--------
>>> import tempfile, pathlib
>>> from sxtseg import models
>>> net = models.build("unet", 3, 1, 7, channels=(4, 8), strides=(2,))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.pt"
>>> meta = models.save_checkpoint(net, path, {"classes": {"background": 0, "dmv": 6},
...                               "voxel_size_nm": [30, 30, 30]})
>>> models.load_model(path).metadata["architecture"]["out_channels"]
7
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CorruptFileError, InputNotFoundError, InvalidArgumentError, OutputExistsError

__all__ = ["load_model", "normalization_range", "save_checkpoint", "shipped_models", "tensor_hash"]

FORMAT = "sxtseg-checkpoint"
FORMAT_VERSION = 1
_WEIGHTS_DIR = Path(__file__).parent / "weights"


def tensor_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's tensors (sorted names, dtypes, shapes, bytes): the same weights, the same hash."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _architecture(model: nn.Module) -> dict:
    spec = getattr(model, "sxtseg_architecture", None)
    if spec is None:
        raise InvalidArgumentError(
            "the model does not say how it was built: make it with sxtseg.models.build(...) "
            "(which records its architecture) before saving a checkpoint")
    return spec


def save_checkpoint(model: nn.Module, path, metadata: dict | None = None, *, overwrite: bool = True) -> dict:
    """Write a model's weights and metadata to one file, atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A network made by :func:`sxtseg.models.build` (it knows its architecture).
    path : str or Path
        Output file (``.pt``).  Written to a hidden temporary file next to it,
        then renamed, so a reader never sees half a checkpoint.
    metadata : dict, optional
        JSON-serialisable fields to store (``classes``, ``voxel_size_nm``,
        ``intensity``, ``input``, ``training``...); ``architecture``,
        ``sxtseg_version``, ``created`` and ``sha256`` are filled in.
    overwrite : bool
        Replace an existing file (the training loop rewrites its best checkpoint).

    Returns
    -------
    dict
        The metadata as stored.
    """
    from .. import __version__

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists; pass overwrite=True to replace it")
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    meta = dict(metadata or {})
    meta.update(architecture=_architecture(model), sxtseg_version=__version__,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                sha256=tensor_hash(state))
    try:
        header = json.dumps(meta, sort_keys=True)
    except TypeError as exc:
        raise InvalidArgumentError(f"{path}: checkpoint metadata must be JSON-serialisable ({exc})") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": header, "state_dict": state}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def shipped_models() -> dict[str, Path]:
    """Names and files of the weights shipped with sxtseg (``"default"`` among them)."""
    return {p.stem: p for p in sorted(_WEIGHTS_DIR.glob("*.pt"))}


def _resolve(path_or_name) -> Path:
    shipped = shipped_models()
    if isinstance(path_or_name, str) and path_or_name in shipped:
        return shipped[path_or_name]
    path = Path(path_or_name)
    if not path.exists():
        names = ", ".join(shipped) or "none"
        raise InputNotFoundError(f"{path}: no such checkpoint file, and not a shipped model name (shipped: {names})")
    return path


def load_model(path_or_name="default", *, device="cpu", spatial_dims: int | None = None,
               out_channels: int | None = None, classes: dict | None = None, monai: bool = False) -> nn.Module:
    """Load a checkpoint written by :func:`save_checkpoint`, or a shipped model by name.

    Parameters
    ----------
    path_or_name : str or Path
        A ``.pt`` file, or the name of a shipped model (``"default"``; see
        :func:`shipped_models`).
    device : str or torch.device
        Where to put the weights.
    spatial_dims, out_channels : int, optional
        What the caller needs; a checkpoint built otherwise is refused with a
        clear error instead of failing later on shapes.
    classes : dict, optional
        Class name to code the caller needs; refused if the checkpoint's differ.
    monai : bool, optional
        Build a U-Net with MONAI's own classes (for MONAI's tools, or to compare
        with plain MONAI) instead of :mod:`sxtseg.models.plain_unet`'s, which
        compute the same function without importing MONAI.

    Returns
    -------
    torch.nn.Module
        The network in eval mode, with the checkpoint's metadata (a dict) as
        ``model.metadata``.

    Raises
    ------
    InputNotFoundError
        No such file or shipped name.
    CorruptFileError
        Not a checkpoint, unreadable, weights that do not match the stored
        architecture, or a hash that does not match the weights.
    InvalidArgumentError
        The checkpoint is for other spatial dims, channels or classes.
    """
    path = _resolve(path_or_name)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise CorruptFileError(f"{path}: not a readable sxtseg checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not an sxtseg checkpoint (no '{FORMAT}' header)")
    if blob.get("format_version", 0) > FORMAT_VERSION:
        raise CorruptFileError(f"{path}: checkpoint format {blob['format_version']} is newer than this sxtseg reads")
    try:
        meta = json.loads(blob["metadata"])
        arch = meta["architecture"]
        state = blob["state_dict"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path}: checkpoint header is damaged ({exc})") from None
    if tensor_hash(state) != meta.get("sha256"):
        raise CorruptFileError(f"{path}: the weights do not match the checkpoint's sha256 (damaged file?)")
    for what, wanted, stored in (("spatial dims", spatial_dims, arch["spatial_dims"]),
                                 ("output channels (classes)", out_channels, arch["out_channels"])):
        if wanted is not None and wanted != stored:
            raise InvalidArgumentError(f"{path}: the checkpoint was built for {stored} {what}, not {wanted}")
    if classes is not None and {str(k): int(v) for k, v in classes.items()} != meta.get("classes"):
        raise InvalidArgumentError(f"{path}: the checkpoint's classes {meta.get('classes')} are not {classes}")
    try:
        model = _network(arch, monai=monai)
    except TypeError as exc:  # an option the builder does not know
        raise CorruptFileError(f"{path}: checkpoint architecture {arch} is not one sxtseg builds ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CorruptFileError(f"{path}: weights do not fit the stored architecture ({exc})") from None
    model.metadata = meta
    return model.to(device).eval()


def _network(arch: dict, *, monai: bool = False) -> nn.Module:
    """The untrained network of a checkpoint's ``architecture``.

    A U-Net is built by :func:`~sxtseg.models.plain_unet.plain_unet`: MONAI's
    network with the same parameter names, out of plain PyTorch modules, so
    that running a checkpoint does not import MONAI (1.5 s of start-up).
    """
    from . import build

    if arch["name"] != "unet" or monai:
        return build(arch["name"], arch["spatial_dims"], arch["in_channels"], arch["out_channels"], **arch["config"])
    from .plain_unet import plain_unet

    model = plain_unet(arch["spatial_dims"], arch["in_channels"], arch["out_channels"], **arch["config"])
    model.sxtseg_architecture = arch
    return model


def normalization_range(sample, method: dict) -> tuple[float, float]:
    """The (low, high) grey values mapped to 0 and 1 by an intensity normalisation.

    Parameters
    ----------
    sample : array-like
        Grey values of the volume (a subsample is enough).
    method : dict
        ``{"method": "percentile", "low": 1.0, "high": 99.0}``: the volume's
        own percentiles, robust to calibration differences between
        microscopes; or ``{"method": "fixed", "low": a, "high": b}`` in the
        image's unit (LAC, 1/µm).

    Returns
    -------
    tuple of float
    """
    import numpy as np

    kind = method.get("method")
    if kind == "percentile":
        low, high = np.percentile(np.asarray(sample, np.float64), [method["low"], method["high"]])
    elif kind == "fixed":
        low, high = method["low"], method["high"]
    else:
        raise InvalidArgumentError(f"unknown intensity normalisation {method!r}")
    if not high > low:
        high = low + 1.0  # a constant image: map it to 0
    return float(low), float(high)
