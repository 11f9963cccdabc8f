"""sxtseg.histogram_peaks finds SciPy's peaks, prominences and widths, on smooth, noisy and flat signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from sxtseg.histogram_peaks import find_peaks, peak_widths, prominences


def _signals():
    rng = np.random.default_rng(21)
    for k in range(60):
        n = int(rng.integers(3, 500))
        if k % 3 == 0:  # a smoothed histogram, as calibrate() makes
            values = np.concatenate([rng.normal(rng.uniform(0, 1), rng.uniform(0.01, 0.2), int(rng.integers(10, 5000)))
                                     for _ in range(int(rng.integers(1, 5)))])
            counts, _ = np.histogram(values, bins=n)
            yield gaussian_filter1d(counts.astype(float), float(rng.uniform(0, 3)))
        elif k % 3 == 1:  # few integer levels: flat tops, flat valleys and ties everywhere
            yield rng.integers(0, 4, n).astype(float)
        else:
            yield rng.standard_normal(n).cumsum()
    yield np.array([1.0, 1.0, 1.0])
    yield np.array([0.0, 5.0, 5.0, 5.0, 5.0])  # a flat top reaching the end: no peak
    yield np.zeros(10)


@pytest.mark.parametrize("x", list(_signals()), ids=lambda x: f"n{len(x)}")
def test_equals_scipy(x):
    for fraction in (0.0, 0.01, 0.2):
        threshold = fraction * max(float(x.max()), 0.0)
        expected, _ = signal.find_peaks(x, prominence=threshold)
        got = find_peaks(x, min_prominence=threshold)
        np.testing.assert_array_equal(got, expected)
        if len(expected):
            for got_part, expected_part in zip(prominences(x, got), signal.peak_prominences(x, expected)):
                np.testing.assert_array_equal(got_part, expected_part)
            for rel in (0.5, 1.0, 0.1):
                np.testing.assert_allclose(peak_widths(x, got, rel_height=rel),
                                           signal.peak_widths(x, expected, rel_height=rel)[0], rtol=1e-12)
