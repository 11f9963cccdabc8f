"""sxtseg.kernels.local_maxima and dilate_within against scikit-image and SciPy, which they replace in seeding."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.feature import peak_local_max

from sxtseg.instances import _footprints, _peaks
from sxtseg.kernels import dilate_within, local_maxima


def _blobs(seed: int, shape=(24, 40, 40), n=12) -> np.ndarray:
    """Touching balls and ellipsoids of random sizes: distance maps with ties, saddles and flat tops."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = rng.uniform(0, shape)
        radii = rng.uniform(2, 7, 3)
        mask |= ((zz - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2 + (
            (xx - centre[2]) / radii[2]) ** 2 <= 1
    return mask


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [(30.0, 30.0, 30.0), (60.0, 30.0, 30.0)])
def test_peaks_are_peak_local_max_per_component(seed, spacing):
    spacing = np.array(spacing)
    footprint, _ = _footprints(spacing, 100.0)
    mask = _blobs(seed)
    components, n = ndimage.label(mask, np.ones((3, 3, 3)))
    assert n >= 2
    checked = 0
    for number, box in enumerate(ndimage.find_objects(components), start=1):
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)  # the crop instances.py splits
        component = components[grown] == number
        distance = ndimage.distance_transform_edt(component, sampling=spacing)
        expected = np.zeros(component.shape, bool)
        peaks = peak_local_max(distance, footprint=footprint, labels=component.astype(np.uint8),
                               threshold_abs=0.0, exclude_border=False)
        expected[tuple(peaks.T)] = True
        np.testing.assert_array_equal(_peaks(distance, component, footprint), expected)
        checked += int(expected.sum())
    assert checked > n  # ties: more peaks than components


def test_flat_distance_map_takes_the_isolated_voxels_as_scikit_image_does():
    # a one-voxel-thick plate with a stub: every voxel is 1 voxel from the background, all maxima
    component = np.zeros((5, 9, 9), bool)
    component[2, 2:7, 2:7] = True
    component[2, 1, 4] = True
    distance = ndimage.distance_transform_edt(component, sampling=30.0)
    footprint, _ = _footprints(np.array([30.0] * 3), 100.0)
    _, count = local_maxima(distance, footprint, component, 0.0)
    assert count == component.sum()
    expected = np.zeros(component.shape, bool)
    expected[tuple(peak_local_max(distance, footprint=footprint, labels=component.astype(np.uint8),
                                  threshold_abs=0.0, exclude_border=False).T)] = True
    assert expected.any()
    np.testing.assert_array_equal(_peaks(distance, component, footprint), expected)


def test_local_maxima_ignores_neighbours_outside_the_mask_and_the_array():
    image = np.zeros((1, 1, 6))
    image[0, 0] = [4, 1, 9, 2, 3, 3]
    mask = np.ones(image.shape, bool)
    mask[0, 0, 2] = False  # the 9 is not in the mask: its neighbours are maxima against the rest only
    peaks, count = local_maxima(image, np.ones((1, 1, 3), bool), mask)
    assert np.flatnonzero(peaks[0, 0]).tolist() == [0, 4, 5] and count == 3  # 2 < 3; the two 3s tie
    peaks, count = local_maxima(image, np.ones((1, 1, 3), bool), mask, threshold=3.5)
    assert np.flatnonzero(peaks[0, 0]).tolist() == [0] and count == 3  # counted before the threshold


def test_local_maxima_refuses_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        local_maxima(np.full((2, 2, 2), np.nan), np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match="odd sides"):
        local_maxima(np.zeros((2, 2, 2)), np.ones((2, 3, 3), bool))
    with pytest.raises(ValueError, match="shape"):
        local_maxima(np.zeros((2, 2, 2)), np.ones((3, 3, 3), bool), np.ones((2, 2, 3), bool))
    with pytest.raises(ValueError, match="symmetric"):
        dilate_within(np.ones((2, 2, 2), bool), np.tril(np.ones((3, 3), bool))[None].repeat(3, 0),
                      np.ones((2, 2, 2), bool))


@pytest.mark.parametrize("seed", range(4))
def test_dilate_within_is_binary_dilation_inside_the_mask(seed):
    rng = np.random.default_rng(seed)
    seeds = rng.random((20, 30, 30)) < 0.01
    seeds[0, 0, 0] = seeds[-1, -1, -1] = True  # on the array's corners
    mask = _blobs(seed, (20, 30, 30), 20)
    for spacing in ((30.0, 30.0, 30.0), (60.0, 30.0, 30.0)):
        _, ball = _footprints(np.array(spacing), 100.0)
        np.testing.assert_array_equal(dilate_within(seeds, ball, mask),
                                      ndimage.binary_dilation(seeds, structure=ball) & mask)
