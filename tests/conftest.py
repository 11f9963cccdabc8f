"""Shared fixtures: small volumes written in every format sxtseg reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def small_volume(rng):
    """A (12, 40, 56) float32 volume: odd sizes so chunk edges are exercised."""
    return rng.random((12, 40, 56), dtype=np.float32)


#: Metadata of the untrained 7-class checkpoints the pipeline tests use.
TINY_META = {"classes": {name: code for code, name in enumerate(
                 ["background", "cytoplasm", "nucleus", "nucleolus", "mitochondrion", "lipid_droplet", "dmv"])},
             "voxel_size_nm": [30.0, 30.0, 30.0],
             "intensity": {"method": "percentile", "low": 1.0, "high": 99.0},
             "input": {"patch_size": [16, 32, 32], "context_slices": 0}}


def make_tiny_model(path, seed: int = 0):
    """An untrained small U-Net checkpoint at ``path``: enough to test the mechanics, not the accuracy."""
    import torch

    from sxtseg.models import build, save_checkpoint

    torch.manual_seed(seed)
    net = build("unet", 3, 1, 7, channels=(4, 8), strides=(2,), num_res_units=0)
    save_checkpoint(net, path, TINY_META)
    return path


#: Real scans shared with the project (see ../shared/data/README.md); CI has them.
#: ``SXTSEG_SHARED_DATA`` points elsewhere.
SHARED_DATA = Path(os.environ.get("SXTSEG_SHARED_DATA", "") or Path(__file__).resolve().parents[2] / "shared" / "data")


def shared_data(*parts: str):
    """Path of a file or folder in ``../shared/data``: skips loudly when absent, fails under ``CI=true``."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = (f"REAL DATA MISSING: {path} is absent (the shared scans live in ../shared/data beside the "
                   "checkout); this test of real scans did not run")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
