"""region_stats equals scikit-image regionprops and brute force, for any number of threads."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops_table

from sxtseg.kernels import label, region_stats


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(7)
    labels, _ = label(rng.random((26, 33, 41)) < 0.35, 26)
    intensity = rng.normal(0.3, 0.05, labels.shape)
    return labels, intensity


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_matches_regionprops(labelled, threads):
    labels, intensity = labelled
    stats = region_stats(labels, intensity, threads=threads)
    ref = regionprops_table(labels, intensity, properties=(
        "label", "area", "centroid", "bbox", "intensity_mean", "intensity_min", "intensity_max"))
    rows = ref["label"]
    n = stats["count"][rows]
    np.testing.assert_array_equal(n, ref["area"])
    centroid = stats["origin"][rows] + stats["first_moment"][rows] / n[:, None]
    for axis in range(3):
        np.testing.assert_allclose(centroid[:, axis], ref[f"centroid-{axis}"], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(stats["bbox_min"][rows, axis], ref[f"bbox-{axis}"])
        np.testing.assert_array_equal(stats["bbox_max"][rows, axis] + 1, ref[f"bbox-{axis + 3}"])
    np.testing.assert_allclose(stats["intensity_sum"][rows] / n, ref["intensity_mean"], rtol=1e-12)
    np.testing.assert_array_equal(stats["intensity_min"][rows], ref["intensity_min"])
    np.testing.assert_array_equal(stats["intensity_max"][rows], ref["intensity_max"])


def test_moments_are_exact_far_from_the_origin():
    """A small object at z ~ 1e5 keeps its variance: moments are relative to the label's origin."""
    labels = np.zeros((3, 3, 4), np.uint32)
    labels[1, 1, 1:3] = 5
    stats = region_stats(labels, threads=1)
    assert stats["count"][5] == 2
    s1, s2 = stats["first_moment"][5], stats["second_moment"][5]
    # x coordinates relative to the first voxel: 0 and 1 -> sum 1, sum of squares 1
    assert s1.tolist() == [0.0, 0.0, 1.0] and s2.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_merging_slabs_shifts_moments_correctly(labelled):
    labels, _ = labelled
    one = region_stats(labels, threads=1)
    many = region_stats(labels, threads=5)
    for key in ("count", "bbox_min", "bbox_max"):
        np.testing.assert_array_equal(one[key], many[key])
    rows = np.nonzero(one["count"])[0][1:]
    n = one["count"][rows][:, None]
    # central moments agree although the slab origins differ
    for stats_a, stats_b in ((one, many),):
        ca = stats_a["second_moment"][rows][:, :3] / n - (stats_a["first_moment"][rows] / n) ** 2
        cb = stats_b["second_moment"][rows][:, :3] / n - (stats_b["first_moment"][rows] / n) ** 2
        np.testing.assert_allclose(ca, cb, atol=1e-9)


def test_surface_lut_is_applied_per_label_and_configuration():
    """With a LUT that counts exposed corner patterns, a lone voxel gets the weight of 8 one-corner cubes."""
    lut = np.zeros(256)
    for config in range(1, 255):
        lut[config] = 1.0
    labels = np.zeros((3, 3, 3), np.uint8)
    labels[1, 1, 1] = 3
    stats = region_stats(labels, surface_lut=lut, threads=2)
    assert stats["surface_area"][3] == 8.0
    labels[1, 1, 2] = 4  # a touching neighbour of another label: both still see 8 mixed cubes
    for threads in (1, 2, 3):
        stats = region_stats(labels, surface_lut=lut, threads=threads)
        assert stats["surface_area"][3] == 8.0 and stats["surface_area"][4] == 8.0


def test_empty_and_bad_input():
    stats = region_stats(np.zeros((4, 4, 4), np.uint16))
    assert stats["count"].tolist() == [0]
    assert np.isnan(stats["intensity_min"][0])
    with pytest.raises(ValueError, match="integer"):
        region_stats(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="intensity has shape"):
        region_stats(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="256"):
        region_stats(np.zeros((2, 2, 2), np.uint8), surface_lut=np.zeros(10))
    with pytest.raises(ValueError, match="max_label"):
        region_stats(np.full((2, 2, 2), 9, np.uint8), max_label=3)


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_surface_does_not_depend_on_threads(labelled, threads):
    labels, _ = labelled
    lut = np.random.default_rng(0).random(256)
    lut[0] = lut[255] = 0
    one = region_stats(labels, surface_lut=lut, threads=1)["surface_area"]
    np.testing.assert_allclose(region_stats(labels, surface_lut=lut, threads=threads)["surface_area"], one, rtol=1e-12)


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.uint32, np.int64])
def test_label_boxes_agree_with_region_stats(dtype):
    from sxtseg.kernels import label_boxes

    rng = np.random.default_rng(7)
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 14, 3))
        labels = rng.integers(0, 2 if dtype is bool else 6, shape).astype(dtype)
        boxes, stats = label_boxes(labels), region_stats(labels.astype(np.uint8) if dtype is bool else labels)
        present = stats["count"] > 0
        np.testing.assert_array_equal(boxes["count"], stats["count"])
        for ours, theirs in (("bbox_min", "bbox_min"), ("bbox_max", "bbox_max"), ("first", "origin")):
            np.testing.assert_array_equal(boxes[ours][present], stats[theirs][present])
    assert label_boxes(np.zeros((2, 3, 4), np.uint8), max_label=3)["count"].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="above max_label"):
        label_boxes(np.full((2, 2, 2), 5, np.uint8), max_label=4)
    with pytest.raises(ValueError, match="non-negative"):
        label_boxes(np.full((2, 2, 2), -1, np.int32))
