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


def _reference_mean(image, factors):
    fz, fy, fx = factors
    nz, ny, nx = (s // f for s, f in zip(image.shape, factors))
    blocks = image[: nz * fz, : ny * fy, : nx * fx].astype(np.float64).reshape(nz, fz, ny, fy, nx, fx)
    return blocks.mean(axis=(1, 3, 5))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 2), (3, 1, 2)])
def test_mean_matches_numpy(dtype, factors):
    from sxtseg.kernels import downsample_mean

    rng = np.random.default_rng(1)
    image = (rng.random((9, 11, 13)) * 200 - (100 if np.dtype(dtype).kind in "if" else 0)).astype(dtype)
    out = downsample_mean(image, factors)
    expected = _reference_mean(image, factors)
    assert out.dtype == image.dtype and out.shape == expected.shape
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    else:  # exact, rounded half up (also for negative means)
        np.testing.assert_array_equal(out, np.floor(expected + 0.5).astype(dtype))


def test_mean_does_not_overflow_narrow_integers():
    from sxtseg.kernels import downsample_mean

    image = np.full((2, 2, 2), 65535, np.uint16)
    assert downsample_mean(image)[0, 0, 0] == 65535
    image = np.full((2, 2, 2), -128, np.int8)
    assert downsample_mean(image)[0, 0, 0] == -128
