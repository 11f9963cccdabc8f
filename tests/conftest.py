"""Shared fixtures: small volumes written in every format sxtseg reads."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def small_volume(rng):
    """A (12, 40, 56) float32 volume: odd sizes so chunk edges are exercised."""
    return rng.random((12, 40, 56), dtype=np.float32)
