"""Noise matching: smooth a tomogram whose noise is well above what the model was trained on.

A segmentation network learns the noise of its training data.  The shipped
default model was trained on phantoms with photon noise 0.02-0.06 (relative
to the cytoplasm's LAC); with three times that noise its nucleus and
nucleolus dissolve (held-out phantom, docs/benchmarks.md: nucleus Dice 0.86,
nucleolus 0.44), because nucleus and cytoplasm differ by only 0.03 1/µm and
the noise reaches 0.02 1/µm per voxel.  :func:`match_noise` measures the
noise of the calibrated volume (:func:`noise_sigma`) and, when it is more
than :data:`TRIGGER` times the top of the model's training range, chooses a
Gaussian filter (:func:`smoothing_sigma`) that brings white noise down to
the middle of that range; :func:`sxtseg.segment` applies it to every block
before the network.  On tuning phantoms (seeds 7000-7001) that took the
nucleus Dice from 0.86 to 0.96 and the nucleolus from 0.44 and 0.00 to 0.85
and 0.73, and on data within the training range it changes nothing.

The noise is estimated as the median absolute deviation of differences of
neighbouring voxels along x (divided by sqrt 2): robust to edges, blind to
smooth structure, and in LAC units the same for every grey-value convention
once calibrated.  It sees white (per-voxel) noise; correlated noise and
missing-wedge streaks read lower than their strength (a +-60 degree wedge
read 0.012 1/µm, under the trigger, and smoothing made it worse on the
tuning phantom), so they are left alone.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> rng = np.random.default_rng(0)
>>> flat = Volume(0.22 + rng.normal(0, 0.02, (8, 64, 64)).astype("float32"), voxel_size=30.0)
>>> round(noise_sigma(flat), 3)
0.02
>>> round(smoothing_sigma(0.02, 0.007), 2)
0.6
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidArgumentError
from .volume import Volume

__all__ = ["MAX_SIGMA_VOXELS", "SHIPPED_TRAINING_NOISE", "TRIGGER", "match_noise", "noise_sigma", "parse_denoise", "smoothing_sigma"]

#: Noise (1/µm, as :func:`noise_sigma` reads it) of the data each shipped model was trained on, by weights
#: sha256.  The plain model (the default until 2026-12-07): phantoms with photon noise 0.02-0.06, which read
#: 0.0036-0.0105 1/µm (``make_infected_cell`` at 25, 30 and 40 nm voxels; noise 0.04, the phantom's default,
#: reads 0.0071).  The default model records none (trained on noise up to 0.13; nothing is smoothed for it).
SHIPPED_TRAINING_NOISE: dict[str, tuple[float, float]] = {
    "d6434e5730ee806e6f745d7bd2dc71f3486d453ffa94673b2dbed7867b57795c": (0.0036, 0.0105)}
#: Smooth when the noise is more than this many times the top of the model's training range.
TRIGGER = 1.25
#: The largest smoothing (voxels): its filter reaches 4 sigma = 12 voxels, inside segment()'s default halo.
MAX_SIGMA_VOXELS = 3.0
_SAMPLE_VOXELS = 2_000_000


def noise_sigma(volume: Volume) -> float:
    """Standard deviation (the volume's units, 1/µm for LAC) of the white noise of ``volume``.

    From whole x rows (every 4th y row of evenly spaced z slices, about 2
    million voxels): 1.4826 times the median absolute deviation of the
    differences of x neighbours, divided by sqrt(2).
    """
    nz, ny, nx = volume.shape
    per_slice = max(1, (ny // 4) * nx)
    z = np.unique(np.linspace(0, nz - 1, int(np.clip(_SAMPLE_VOXELS // per_slice, 1, nz))).round().astype(int))
    rows = volume.data[z, ::4, :]
    rows = np.asarray(rows.compute() if hasattr(rows, "compute") else rows, np.float64)
    differences = np.diff(rows, axis=-1).ravel()
    if differences.size == 0:
        return 0.0
    deviation = np.median(np.abs(differences - np.median(differences)))
    return float(1.4826 * deviation / math.sqrt(2.0))


def _white_noise_factor(sigma: float) -> float:
    """How much a 3-D ``scipy.ndimage.gaussian_filter`` of ``sigma`` voxels lowers the std of white noise."""
    if sigma <= 0:
        return 1.0
    from scipy import ndimage

    radius = int(4 * sigma + 0.5) + 1
    delta = np.zeros(2 * radius + 1)
    delta[radius] = 1.0
    weights = ndimage.gaussian_filter1d(delta, sigma)  # the filter's own discrete kernel
    return float(np.sqrt(np.sum(weights**2)) ** 3)


def smoothing_sigma(noise: float, target: float) -> float:
    """The Gaussian sigma (voxels, the same on every axis) that lowers white noise of ``noise`` to ``target``.

    Found by bisection on the filter's discrete kernel; 0 when ``noise`` is
    at or below ``target``, at most :data:`MAX_SIGMA_VOXELS`.
    """
    if not noise > target > 0:
        return 0.0
    wanted = target / noise
    low, high = 0.0, MAX_SIGMA_VOXELS
    if _white_noise_factor(high) >= wanted:
        return high
    for _ in range(40):
        middle = (low + high) / 2
        if _white_noise_factor(middle) > wanted:
            low = middle
        else:
            high = middle
    return round(high, 3)


def parse_denoise(text) -> str | float:
    """``"auto"``, ``"none"`` or a sigma in voxels (the ``--denoise`` option) as :func:`match_noise` takes it.

    >>> parse_denoise("auto"), parse_denoise("0.6")
    ('auto', 0.6)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        text = str(text).strip().lower()
        if text in ("auto", "none"):
            return text
        try:
            value = float(text)
        except ValueError:
            raise InvalidArgumentError(f"denoise must be auto, none or a sigma in voxels, not {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_SIGMA_VOXELS):
        raise InvalidArgumentError(f"denoise sigma must be between 0 and {MAX_SIGMA_VOXELS:g} voxels, got {value!r}")
    return value


def match_noise(volume: Volume, meta: dict, method="auto") -> dict:
    """The smoothing :func:`sxtseg.segment` applies before the network, and why.

    Parameters
    ----------
    volume : Volume
        The calibrated volume (LAC, 1/µm).
    meta : dict
        The model's metadata: ``training_noise_1_per_um`` ([low, high]) when
        its checkpoint records it, else its ``sha256`` looked up in
        :data:`SHIPPED_TRAINING_NOISE`.
    method : {"auto", "none"} or float
        ``"auto"``: smooth only when the noise is over :data:`TRIGGER` times
        the top of the training range, down to its middle; ``"none"``: never;
        a number: that sigma in voxels.

    Returns
    -------
    dict
        ``method``, ``sigma_voxels`` (0: no smoothing), ``noise_1_per_um``
        (measured, or None when not measured), ``training_noise_1_per_um``
        and ``note``: JSON-ready, for ``summary.json`` and the output's metadata.
    """
    method = parse_denoise(method)
    trained = meta.get("training_noise_1_per_um") or SHIPPED_TRAINING_NOISE.get(meta.get("sha256", ""))
    record = {"method": "none", "sigma_voxels": 0.0, "noise_1_per_um": None,
              "training_noise_1_per_um": None if trained is None else [float(v) for v in trained], "note": ""}
    if method == "none":
        record["note"] = "not smoothed, on request"
        return record
    if not isinstance(method, str):
        record.update(method="explicit", sigma_voxels=float(method), note="smoothed with the sigma given")
        return record
    noise = noise_sigma(volume)
    record["noise_1_per_um"] = round(noise, 6)
    if trained is None:
        record["note"] = ("the model does not record the noise it was trained on (training_noise_1_per_um): "
                          "not smoothed")
        return record
    low, high = (float(v) for v in trained)
    if noise <= TRIGGER * high:
        record["note"] = f"noise {noise:.4f} 1/um is within {TRIGGER}x of the training range {low:.4f}-{high:.4f}"
        return record
    target = (low + high) / 2
    record.update(method="auto", sigma_voxels=smoothing_sigma(noise, target),
                  note=f"noise {noise:.4f} 1/um is {noise / high:.1f}x the top of the training range "
                       f"({low:.4f}-{high:.4f}): a Gaussian filter brings white noise to {target:.4f}")
    return record
