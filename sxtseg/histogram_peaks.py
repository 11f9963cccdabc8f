"""Peaks of a 1-D signal with their prominence and width, as SciPy's ``find_peaks`` and ``peak_widths`` find them.

:func:`sxtseg.calibrate` finds the ice and cytoplasm peaks of a 400-bin
histogram.  ``scipy.signal`` would do it, but importing it imports most of
SciPy's signal and statistics modules: 0.4 s of every ``sxtseg run`` on a
2-core machine, for a loop over 400 numbers.  The rules here are SciPy's, step
for step (``tests/test_histogram_peaks.py`` compares them on random and flat
signals):

* a peak is a sample higher than the sample before it and than the first
  different sample after it (the middle of a flat top, rounded down); the two
  ends are never peaks;
* its prominence is its height above the higher of the lowest points between
  it and the nearest higher sample (or the end) on each side: those points are
  its bases;
* its width is measured at ``rel_height`` of the prominence below the top,
  between the points where the signal crosses that height (linearly
  interpolated), searched no farther than the bases.

Examples
--------
>>> import numpy as np
>>> x = np.array([0, 2, 1, 3, 3, 3, 0, 1, 0], float)
>>> peaks = find_peaks(x, min_prominence=1.5)
>>> peaks.tolist(), prominences(x, peaks)[0].tolist()
([4], [3.0])
>>> peak_widths(x, peaks).tolist()
[3.25]
"""

from __future__ import annotations

import numpy as np

__all__ = ["find_peaks", "peak_widths", "prominences"]


def _local_maxima(x: np.ndarray) -> list[int]:
    peaks, i, last = [], 1, len(x) - 1
    while i < last:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < last and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    return peaks


def prominences(x: np.ndarray, peaks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prominence, left base and right base (indices) of each peak of ``x``.

    Parameters
    ----------
    x : 1-D ndarray
    peaks : sequence of int
        Indices of peaks of ``x`` (:func:`find_peaks`).

    Returns
    -------
    tuple of ndarray
        (prominences as float, left bases, right bases).
    """
    x = np.asarray(x, float)
    result = np.zeros(len(peaks)), np.zeros(len(peaks), int), np.zeros(len(peaks), int)
    for k, peak in enumerate(peaks):
        top, bases, lows = x[peak], [], []
        for step in (-1, 1):
            i = base = peak
            low = top
            while 0 <= i < len(x) and x[i] <= top:
                if x[i] < low:
                    low, base = x[i], i
                i += step
            bases.append(base)
            lows.append(low)
        result[0][k] = top - max(lows)
        result[1][k], result[2][k] = bases
    return result


def find_peaks(x: np.ndarray, min_prominence: float = 0.0) -> np.ndarray:
    """Indices of the peaks of ``x`` with a prominence of at least ``min_prominence``, in order.

    ``scipy.signal.find_peaks(x, prominence=min_prominence)[0]``.
    """
    x = np.asarray(x, float)
    peaks = np.asarray(_local_maxima(x), int)
    return peaks[prominences(x, peaks)[0] >= min_prominence]


def peak_widths(x: np.ndarray, peaks, rel_height: float = 0.5) -> np.ndarray:
    """Width (in samples) of each peak at ``rel_height`` of its prominence below its top.

    ``scipy.signal.peak_widths(x, peaks, rel_height)[0]``.
    """
    x = np.asarray(x, float)
    prominence, left_bases, right_bases = prominences(x, peaks)
    widths = np.zeros(len(peaks))
    for k, peak in enumerate(peaks):
        height = x[peak] - prominence[k] * rel_height
        i = peak
        while left_bases[k] < i and height < x[i]:
            i -= 1
        left = i + ((height - x[i]) / (x[i + 1] - x[i]) if x[i] < height else 0.0)
        i = peak
        while i < right_bases[k] and height < x[i]:
            i += 1
        right = i - ((height - x[i]) / (x[i - 1] - x[i]) if x[i] < height else 0.0)
        widths[k] = right - left
    return widths
