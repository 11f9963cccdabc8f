"""Is a tomogram missing a wedge of Fourier space?  A reconstruction from a limited tilt range lacks it.

A tilt series about the y axis over less than ±90° samples no direction of Fourier space
near the kz axis: in the kz-kx plane, the components whose direction lies beyond the
largest tilt from the kx axis are missing (the "missing wedge").  Whatever the tilt range,
that wedge holds the kz axis itself, the line kx = 0: the Fourier components that set the
mean profile along z of every column.  A full-rotation (capillary) tomogram has them;
a flat-grid one, tilted to ±60-70°, does not.

:func:`missing_wedge` compares the power on that line, at low kz, with the power on the
lines kx = 2 and 3 beside it (summed over ky), for a tilt axis along y and, with x and y
swapped, along x.  In a tomogram with the whole of Fourier space the line holds more
power than its neighbours (the cell and the ice make a strong profile along z): 1.3-24.8
times as much on the robustness grid's 80 cells without a wedge (tuning and held-out), the
lowest with no ice or with gold beads.  With a missing wedge it holds mostly noise: 0.006-0.68
times, from ±50° to ±89°.
:data:`WEDGE_POWER_RATIO` (1.0) lies between; ``docs/calibration.md`` gives the
measurement.

Why it matters: the shipped default model loses the nucleus under any missing wedge
(``docs/models.md``), and :func:`sxtseg.quality.quality_flags` says so with a
``missing_wedge`` flag.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume, make_infected_cell
>>> from sxtseg.phantom import ImagingModel
>>> image, _, _, _ = make_infected_cell((32, 96, 96), seed=1)
>>> missing_wedge(image)["detected"]
False
>>> wedged, _, _, _ = make_infected_cell((32, 96, 96), seed=1, imaging=ImagingModel(tilt_range_deg=(-60, 60)))
>>> found = missing_wedge(wedged)
>>> found["detected"], found["tilt_axis"]
(True, 'y')
"""

from __future__ import annotations

import numpy as np

from .volume import Volume

__all__ = ["WEDGE_POWER_RATIO", "missing_wedge"]

#: Power on the kz axis over the power on the lines beside it below which a wedge is missing.
WEDGE_POWER_RATIO = 1.0

#: The largest central crop (z, y, x voxels) the test reads: enough lines for a stable ratio.
_CROP = (128, 256, 256)
_NEIGHBOURS = (2, 3)  # the lines kx = 2 and 3 (kx = 1 holds the field's own slope)
_KZ = (1, 6)  # low kz: the profile along z of the cell and the ice, where the power is


def _kz_axis_ratio(data: np.ndarray, across: int) -> float:
    """Power on the line k_across = 0 over the mean of the lines k_across = 2, 3, at kz 1-6, summed over the third axis."""
    spectrum = np.fft.rfft(data, axis=across)
    lines = np.fft.fft(np.take(spectrum, [0, *_NEIGHBOURS], axis=across), axis=0)  # and along z
    # summed over the tilt axis in real space: by Parseval, the power summed over its frequencies
    power = (np.abs(lines[_KZ[0]:_KZ[1] + 1]) ** 2).sum(axis=3 - across)  # (kz, line)
    neighbours = power[:, 1:].mean(axis=1).sum()
    return float(power[:, 0].sum() / neighbours) if neighbours > 0 else float("inf")


def missing_wedge(volume: Volume) -> dict:
    """Test a tomogram for a missing wedge about the y or the x axis.

    Parameters
    ----------
    volume : Volume
        A 3-D tomogram (z, y, x), any grey-value convention.  A central crop
        of at most 128x256x256 voxels is read.

    Returns
    -------
    dict
        ``detected`` (bool), ``tilt_axis`` (``"y"``, ``"x"``, or None when
        none is detected), ``kz_axis_power_ratio`` (the smaller of the two
        ratios: power on the kz axis over the lines beside it) and ``ratios``
        (both, by tilt axis).  A volume too small for the test (fewer than 14
        voxels along z or 8 along y or x) gives ``detected`` False and ratios
        None.
    """
    shape = volume.shape
    if len(shape) != 3 or shape[0] < 2 * _KZ[1] + 2 or min(shape[1:]) < 2 * max(_NEIGHBOURS) + 2:
        return {"detected": False, "tilt_axis": None, "kz_axis_power_ratio": None, "ratios": None}
    where = tuple(slice((n - min(n, c)) // 2, (n - min(n, c)) // 2 + min(n, c)) for n, c in zip(shape, _CROP))
    data = np.asarray(volume.data[where], dtype=np.float32)
    finite = np.isfinite(data)
    data = np.where(finite, data, 0.0).astype(np.float32)
    data -= data[finite].mean() if finite.any() else 0.0
    ratios = {"y": _kz_axis_ratio(data, across=2), "x": _kz_axis_ratio(data, across=1)}
    axis = min(ratios, key=ratios.get)
    detected = ratios[axis] < WEDGE_POWER_RATIO
    return {"detected": bool(detected), "tilt_axis": axis if detected else None,
            "kz_axis_power_ratio": round(ratios[axis], 4), "ratios": {k: round(v, 4) for k, v in ratios.items()}}
