import numpy as np
import pytest
from scipy import stats

from sxtseg.kernels import downsample_mode


def _reference_mode(labels, factors):
    fz, fy, fx = factors
    nz, ny, nx = (s // f for s, f in zip(labels.shape, factors))
    blocks = labels[: nz * fz, : ny * fy, : nx * fx].reshape(nz, fz, ny, fy, nx, fx)
    blocks = blocks.transpose(0, 2, 4, 1, 3, 5).reshape(nz, ny, nx, -1)
    # scipy's mode returns the smallest of tied values, as the kernel does
    return stats.mode(blocks, axis=-1, keepdims=False).mode.astype(labels.dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.uint64])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 2), (3, 2, 1)])
def test_mode_matches_scipy(dtype, factors):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(9, 11, 13)).astype(dtype)
    np.testing.assert_array_equal(downsample_mode(labels, factors), _reference_mode(labels, factors))


def test_mode_keeps_only_existing_labels_and_handles_bool():
    labels = np.zeros((4, 4, 4), bool)
    labels[:2, :2, :2] = True
    out = downsample_mode(labels)
    assert out.dtype == bool and out.shape == (2, 2, 2)
    assert out[0, 0, 0] and out.sum() == 1


def test_mode_rejects_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        downsample_mode(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="integer"):
        downsample_mode(np.zeros((4, 4, 4), np.float32))
