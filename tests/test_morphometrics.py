"""sxtseg.measure: physical units, agreement with scikit-image, analytic shapes, the phantom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.measure import regionprops_table

from sxtseg import Volume, make_infected_cell, measure
from sxtseg.errors import InvalidDataError, ShapeError, VoxelSizeError
from sxtseg.kernels import label
from sxtseg.morphometrics import COLUMNS


def _sphere(radius, centre, shape=(64, 64, 64), spacing=(1.0, 1.0, 1.0)):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    return (sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius**2).astype(np.uint8)


def test_matches_skimage_regionprops():
    rng = np.random.default_rng(11)
    labels, _ = label(rng.random((24, 30, 36)) < 0.33, 26)
    image = rng.normal(0.3, 0.05, labels.shape)
    table = measure(Volume(labels, voxel_size=30.0), Volume(image, voxel_size=30.0))
    ref = regionprops_table(labels, image, properties=(
        "label", "area", "centroid", "bbox", "inertia_tensor_eigvals", "intensity_mean", "intensity_std"))
    np.testing.assert_array_equal(table["label"], ref["label"])
    np.testing.assert_array_equal(table["voxel_count"], ref["area"])
    for k in range(3):
        np.testing.assert_allclose(table[f"inertia_eig_{k}"], ref[f"inertia_tensor_eigvals-{k}"], atol=1e-9)
        np.testing.assert_allclose(table[f"centroid_{'zyx'[k]}_vox"], ref[f"centroid-{k}"], atol=1e-9)
        np.testing.assert_array_equal(table[f"bbox_{'zyx'[k]}1"], ref[f"bbox-{k + 3}"])
    np.testing.assert_allclose(table["intensity_mean"], ref["intensity_mean"], rtol=1e-12)
    np.testing.assert_allclose(table["intensity_std"], ref["intensity_std"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(table["centroid_y_nm"], table["centroid_y_vox"] * 30.0)
    assert list(table.columns) == list(COLUMNS)


@pytest.mark.parametrize("radius", [5, 8, 12, 20])
def test_spheres_isotropic(radius):
    rng = np.random.default_rng(radius)
    centre = 32 + rng.uniform(-0.5, 0.5, 3)
    table = measure(Volume(_sphere(radius, centre), voxel_size=25.0))
    r_um = radius * 0.025
    assert table.loc[0, "volume_um3"] == pytest.approx(4 / 3 * np.pi * r_um**3, rel=0.02)
    assert table.loc[0, "surface_area_um2"] == pytest.approx(4 * np.pi * r_um**2, rel=0.03)
    assert table.loc[0, "sphericity"] == pytest.approx(1.0, abs=0.03)
    for axis in ("major", "mid", "minor"):
        assert table.loc[0, f"principal_axis_{axis}_nm"] == pytest.approx(2 * radius * 25.0, rel=0.03)
    assert not table.loc[0, "touches_border"]


@pytest.mark.parametrize("spacing", [(50.0, 25.0, 25.0), (30.0, 20.0, 20.0)])
def test_sphere_anisotropic_voxels(spacing):
    radius_nm = 500.0
    shape = tuple(int(2.6 * radius_nm / s) for s in spacing)
    centre = [n * s / 2 + 3.1 for n, s in zip(shape, spacing)]
    table = measure(Volume(_sphere(radius_nm, centre, shape, spacing), voxel_size=spacing))
    r_um = radius_nm / 1000
    assert table.loc[0, "volume_um3"] == pytest.approx(4 / 3 * np.pi * r_um**3, rel=0.02)
    assert table.loc[0, "surface_area_um2"] == pytest.approx(4 * np.pi * r_um**2, rel=0.03)
    assert table.loc[0, "sphericity"] == pytest.approx(1.0, abs=0.03)


def test_ellipsoid_axes_and_shape_factors():
    zz, yy, xx = np.mgrid[:60, :60, :60]
    labels = ((((zz - 30) / 8.0) ** 2 + ((yy - 30) / 14.0) ** 2 + ((xx - 30) / 24.0) ** 2) <= 1).astype(np.uint8)
    table = measure(Volume(labels, voxel_size=10.0))
    assert table.loc[0, "principal_axis_major_nm"] == pytest.approx(480, rel=0.03)
    assert table.loc[0, "principal_axis_mid_nm"] == pytest.approx(280, rel=0.03)
    assert table.loc[0, "principal_axis_minor_nm"] == pytest.approx(160, rel=0.03)
    assert table.loc[0, "elongation"] == pytest.approx(14 / 24, rel=0.04)
    assert table.loc[0, "flatness"] == pytest.approx(8 / 14, rel=0.04)


def test_classes_units_and_border():
    labels = np.zeros((10, 10, 10), np.uint16)
    labels[0:3, 0:3, 0:3] = 1
    labels[5:8, 5:8, 5:8] = 2
    classes = np.where(labels == 1, 6, np.where(labels == 2, 5, 0)).astype(np.uint8)
    image = Volume(np.full(labels.shape, 0.25), voxel_size=30.0, metadata={"intensity_unit": "1/um"})
    table = measure(Volume(labels, voxel_size=30.0), image, Volume(classes, voxel_size=30.0))
    assert table["class_id"].tolist() == [6, 5]
    assert table["touches_border"].tolist() == [True, False]
    assert table.attrs["units"]["intensity_mean"] == "1/um" and table.attrs["units"]["volume_um3"] == "um^3"
    assert table["volume_um3"].tolist() == pytest.approx([27 * 0.03**3] * 2)


def test_phantom_dmv_sizes_match_ground_truth():
    image, classes, instances, objects = make_infected_cell((64, 160, 160), seed=4)
    table = measure(instances, image, classes)
    truth = objects.set_index("instance_id")
    dmv = table[table["class_id"] == 6].set_index("label")
    assert len(dmv) == (objects["class_name"] == "dmv").sum()
    np.testing.assert_allclose(dmv["volume_um3"], truth.loc[dmv.index, "voxel_volume_um3"], rtol=1e-9)
    # equivalent diameters of the drawn DMVs within 10% of their true outer diameters
    ratio = dmv["equivalent_diameter_nm"] / truth.loc[dmv.index, "diameter_nm"]
    assert ratio.between(0.85, 1.1).mean() > 0.9, ratio.describe()
    # centroids within one voxel of the true centres
    for axis in "zyx":
        err = (dmv[f"centroid_{axis}_nm"] - truth.loc[dmv.index, f"centroid_{axis}_nm"]).abs()
        assert (err < 30.0).all(), err.max()


def test_empty_volume_gives_an_empty_table():
    table = measure(Volume(np.zeros((5, 6, 7), np.uint32), voxel_size=30.0))
    assert isinstance(table, pd.DataFrame) and len(table) == 0 and list(table.columns) == list(COLUMNS)


def test_bad_input():
    with pytest.raises(InvalidDataError, match="labels must be integers"):
        measure(Volume(np.zeros((4, 4, 4), np.float32), voxel_size=30.0))
    with pytest.raises(VoxelSizeError, match="voxel size is unknown"):
        measure(Volume(np.zeros((4, 4, 4), np.uint8)))
    with pytest.raises(ShapeError, match="image has shape"):
        measure(Volume(np.zeros((4, 4, 4), np.uint8), voxel_size=1.0), Volume(np.zeros((4, 4, 5)), voxel_size=1.0))


def _cell_with_nucleus():
    """A box cell (class 1) with a nucleus slab and two DMV cubes at known places, 10 nm voxels."""
    classes = np.zeros((20, 40, 40), np.uint8)
    classes[2:18, 2:38, 2:38] = 1
    classes[2:18, 2:38, 2:10] = 2  # nucleus: x < 10
    classes[9:12, 19:22, 19:22] = 6  # DMV centred at x = 20: 11 voxels from the nucleus edge at x = 9
    classes[9:12, 19:22, 29:32] = 6  # DMV centred at x = 30
    instances, _ = label(np.where(classes == 1, 0, classes), 26)
    return Volume(classes, voxel_size=10.0), Volume(instances, voxel_size=10.0)


def test_distances_to_nucleus_boundary_and_neighbour():
    classes, instances = _cell_with_nucleus()
    table = measure(instances, classes=classes)
    dmv = table[table["class_id"] == 6].sort_values("centroid_x_nm")
    assert dmv["distance_to_nucleus_nm"].tolist() == pytest.approx([110.0, 210.0])
    assert dmv["nearest_neighbour_nm"].tolist() == pytest.approx([100.0, 100.0])
    # centroid (z 10, y 20, x 20/30): nearest background is the cell's z faces, 8 voxels away
    assert dmv["distance_to_cell_boundary_nm"].tolist() == pytest.approx([80.0, 80.0])
    nucleus_row = table[table["class_id"] == 2]
    assert nucleus_row["distance_to_nucleus_nm"].tolist() == [0.0]
    assert table.attrs["units"]["nearest_neighbour_nm"] == "nm"


def test_summarize_counts_and_dmv_fraction():
    from sxtseg import summarize

    classes, instances = _cell_with_nucleus()
    table = measure(instances, classes=classes)
    summary = summarize(table, classes)
    assert summary["dmv_count"] == 2 and summary["classes"]["dmv"]["count"] == 2
    voxel_um3 = 0.01**3
    cytoplasm = (16 * 36 * 36 - 16 * 36 * 8) * voxel_um3
    assert summary["cytoplasm_volume_um3"] == pytest.approx(cytoplasm)
    assert summary["dmv_volume_fraction_of_cytoplasm"] == pytest.approx(2 * 27 * voxel_um3 / cytoplasm)
    assert summary["dmv_median_distance_to_nucleus_nm"] == pytest.approx(160.0)
    with pytest.raises(InvalidDataError, match="classes="):
        summarize(measure(instances), classes)


def test_volumes_in_memory_are_measured_whole_whatever_their_chunks(monkeypatch):
    """A loaded Volume keeps its dask chunks, but block-by-block work would only cost time."""
    import dask.array as da

    from sxtseg import _chunked_measure
    from sxtseg.instances import label_classes

    _, truth, _, _ = make_infected_cell((32, 48, 48), seed=3)
    classes = Volume(da.from_array(truth.to_numpy(), chunks=16), voxel_size=30.0).compute()
    assert classes.in_memory and classes.data.npartitions > 1
    instances = label_classes(classes)
    assert instances.in_memory  # labelled as one array, not lazily by block

    def refuse(*args, **kwargs):
        raise AssertionError("in-memory volumes must not go through the block-by-block path")

    monkeypatch.setattr(_chunked_measure, "chunked_stats", refuse)
    table = measure(instances, classes=classes)
    assert len(table) == instances.metadata["instances"]["count"]


def test_class_voxel_counts_in_memory_and_lazy_without_a_volume_sized_copy():
    import tracemalloc

    import dask.array as da

    from sxtseg.morphometrics import class_voxel_counts

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 7, (64, 128, 128), dtype=np.uint8)  # 1 MiB
    expected = np.bincount(codes.ravel(), minlength=256)
    lazy = Volume(da.from_array(codes, chunks=(16, 64, 64)), voxel_size=30.0)
    np.testing.assert_array_equal(class_voxel_counts(lazy), expected)
    in_memory = Volume(codes, voxel_size=30.0)
    class_voxel_counts(in_memory)
    tracemalloc.start()
    counts = class_voxel_counts(in_memory)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(counts, expected)
    assert peak < codes.nbytes  # np.bincount of the whole volume copies it as int64: 8x its size
    wide = codes.astype(np.uint16)
    wide[0, 0, :3] = 300  # codes above 255 are counted too
    got = class_voxel_counts(Volume(da.from_array(wide, chunks=32), voxel_size=30.0))
    np.testing.assert_array_equal(got, np.bincount(wide.ravel()))
    with pytest.raises(InvalidDataError, match="non-negative integers"):
        class_voxel_counts(Volume(codes.astype(np.float32), voxel_size=30.0))


def test_block_voxel_counts_per_chunk_and_negative_codes_refused():
    import dask.array as da

    from sxtseg.morphometrics import block_voxel_counts, class_voxel_counts

    codes = np.zeros((4, 6, 6), np.int16)
    codes[:2] = 3  # the first chunk along z: all 3; the second: all 0
    codes[3, 0, 0] = 300
    counts = block_voxel_counts(da.from_array(codes, chunks=(2, 6, 6)))
    assert counts.shape == (2, 301)
    assert counts[0, 3] == 72 and counts[0].sum() == 72
    assert counts[1, 0] == 71 and counts[1, 300] == 1
    codes[0, 0, 0] = -1
    with pytest.raises(InvalidDataError, match="non-negative"):
        class_voxel_counts(Volume(da.from_array(codes, chunks=(2, 6, 6)), voxel_size=30.0))


@pytest.mark.parametrize("shape", [(7, 9, 11), (13, 5), (4, 0, 3)])
def test_nonzero_points_equal_argwhere(shape):
    from sxtseg._chunked_measure import nonzero_points

    rng = np.random.default_rng(3)
    mask = rng.random(shape) < 0.3
    for m in (mask, np.zeros(shape, bool), np.ones(shape, bool), mask[..., ::2], mask.T):  # strided views too
        got = nonzero_points(m)
        assert got.shape == (int(m.sum()), m.ndim) and got.dtype == np.intp
        np.testing.assert_array_equal(got, np.argwhere(m))
