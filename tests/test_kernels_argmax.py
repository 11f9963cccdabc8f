"""argmax_channels equals NumPy's argmax over axis 0, ties, NaNs and strides included."""

from __future__ import annotations

import numpy as np
import pytest

from sxtseg.kernels import argmax_channels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_equals_numpy_with_ties_and_nans(dtype, threads):
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 4, size=(7, 9, 13, 17)).astype(dtype)  # few values: many ties
    scores[rng.random(scores.shape) < 0.02] = np.nan
    scores[:, 0, 0, :3] = np.nan  # all-NaN voxels, and NaN first
    scores[3, 1, 2, 4] = np.inf
    got = argmax_channels(scores, threads=threads)
    assert got.dtype == np.uint8 and got.shape == scores.shape[1:]
    np.testing.assert_array_equal(got, np.argmax(scores, axis=0))


def test_strided_views_and_one_class():
    rng = np.random.default_rng(12)
    scores = rng.standard_normal((5, 40, 30, 20), dtype=np.float32)
    view = scores[:, 3:-3, ::2, 1:-1]  # as segment() hands over the inner part of a haloed block
    np.testing.assert_array_equal(argmax_channels(view, threads=2), view.argmax(axis=0))
    one = scores[:1]
    assert not argmax_channels(one).any()
    big = rng.standard_normal((3, 130, 64, 64), dtype=np.float32)  # over MIN_VOXELS_PER_THREAD: threaded
    np.testing.assert_array_equal(argmax_channels(big), big.argmax(axis=0))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("region", [(slice(3, 37), slice(None), slice(None)), (slice(0, 40), slice(2, 29), slice(1, 19)),
                                    (slice(-5, None), slice(7, 8), slice(None, 4)), (slice(10, 10), slice(None), slice(None))])
def test_region_is_the_view(region, threads):
    """argmax over a region read in place equals the argmax of that view (and NumPy's), empty regions included."""
    rng = np.random.default_rng(13)
    scores = rng.integers(0, 3, size=(6, 40, 30, 20)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.01] = np.nan
    view = scores[(slice(None), *region)]
    got = argmax_channels(scores, region=region, threads=threads)
    assert got.shape == view.shape[1:]
    np.testing.assert_array_equal(got, view.argmax(axis=0) if view.size else np.zeros(view.shape[1:]))
    np.testing.assert_array_equal(got, argmax_channels(view, threads=threads))


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        argmax_channels(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(TypeError, match="int64"):
        argmax_channels(np.zeros((3, 4, 5, 6), np.int64))
    with pytest.raises(ValueError, match="uint8"):
        argmax_channels(np.zeros((257, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="step 1"):
        argmax_channels(np.zeros((3, 4, 5, 6), np.float32), region=(slice(None), slice(None, None, 2), slice(None)))
