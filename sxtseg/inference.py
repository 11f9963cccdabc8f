"""Apply a segmentation network to an in-memory array (a volume, or one block of a larger one).

:func:`predict_array` runs MONAI's Gaussian-weighted sliding window over a
normalised (Z, Y, X) array with a 3-D network, or over its z slices (with
neighbouring slices as extra channels) with a 2-D one, and returns class
probabilities.  Training validation uses it on whole held-out volumes; the
block-wise segmentation of large volumes uses it inside each block.

Examples
--------
>>> import numpy as np, torch
>>> from sxtseg import models
>>> from sxtseg.inference import predict_array
>>> net = models.build("unet", 3, 1, 3, channels=(4, 8), strides=(2,)).eval()
>>> probs = predict_array(net, np.zeros((10, 20, 20), np.float32), patch_size=(8, 16, 16))
>>> probs.shape, bool(np.allclose(probs.sum(axis=0), 1, atol=1e-3))
((3, 10, 20, 20), True)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["context_stack", "dice_per_class", "predict_array", "resolve_device"]


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def context_stack(volume: np.ndarray, z: np.ndarray, context: int) -> np.ndarray:
    """Slices ``z - context .. z + context`` of a (Z, Y, X) array as channels: (len(z), 2 context + 1, Y, X).

    Slices past the volume's ends repeat the end slice.
    """
    offsets = np.arange(-context, context + 1)
    index = np.clip(np.asarray(z)[:, None] + offsets[None, :], 0, volume.shape[0] - 1)
    return volume[index]


@torch.no_grad()
def predict_array(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    patch_size,
    spatial_dims: int = 3,
    context: int = 0,
    overlap: float = 0.25,
    batch_size: int = 4,
    device="auto",
    amp: bool = True,
) -> np.ndarray:
    """Class probabilities (C, Z, Y, X) of a normalised (Z, Y, X) float array.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits ``(N, C, *spatial)``.
    image : ndarray
        Normalised grey values (float32), (Z, Y, X).
    patch_size : tuple of int
        Window of the network: (Z, Y, X) for 3-D, (Y, X) for 2-D.
    spatial_dims : {2, 3}
        3: one 3-D sliding window; 2: every z slice, with ``context`` slices
        on either side as channels.
    overlap : float
        Window overlap (0-1); overlapping predictions are blended with
        Gaussian weights (MONAI's ``sliding_window_inference``).
    batch_size : int
        Windows (or slices) per forward pass.
    device : str or torch.device
        ``"auto"``: CUDA when available.
    amp : bool
        Autocast to float16 on CUDA.

    Returns
    -------
    ndarray of float32
        Softmax probabilities, channels first.
    """
    from monai.inferers import sliding_window_inference

    device = resolve_device(device)
    model = model.to(device).eval()
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp and device.type == "cuda")

    def run(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            logits = sliding_window_inference(x, tuple(patch_size), batch_size, model, overlap=overlap,
                                              mode="gaussian", padding_mode="replicate")
        return torch.softmax(logits.float(), dim=1)

    image = np.ascontiguousarray(image, np.float32)
    if spatial_dims == 3:
        x = torch.from_numpy(image)[None, None].to(device)
        return run(x)[0].cpu().numpy()
    out = None
    for z0 in range(0, image.shape[0], batch_size):
        z = np.arange(z0, min(z0 + batch_size, image.shape[0]))
        probs = run(torch.from_numpy(context_stack(image, z, context)).to(device)).cpu().numpy()
        if out is None:
            out = np.empty((probs.shape[1], *image.shape), np.float32)
        out[:, z] = probs.transpose(1, 0, 2, 3)
    return out


def dice_per_class(predicted: np.ndarray, truth: np.ndarray, n_classes: int, ignore_label: int | None = 255) -> np.ndarray:
    """Dice of every class (index = class code) over the annotated voxels; NaN where a class is in neither.

    Examples
    --------
    >>> import numpy as np
    >>> dice_per_class(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 255]), 3).round(2).tolist()
    [1.0, 0.67, 0.0]
    """
    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    if ignore_label is not None:
        keep = truth != ignore_label
        predicted, truth = predicted[keep], truth[keep]
    both = np.bincount(truth[predicted == truth].astype(np.int64), minlength=n_classes)[:n_classes]
    sizes = (np.bincount(predicted.astype(np.int64), minlength=n_classes)[:n_classes]
             + np.bincount(truth.astype(np.int64), minlength=n_classes)[:n_classes])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, 2.0 * both / sizes, np.nan)
