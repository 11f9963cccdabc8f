"""label_classes and split_touching: components per class, touching vesicles separated."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from sxtseg import SXTClass, Volume, label_classes, make_infected_cell, measure, split_touching
from sxtseg.errors import InvalidArgumentError, InvalidDataError, VoxelSizeError


def _balls(centres, radii, shape, spacing=(1.0, 1.0, 1.0)):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    out = np.zeros(shape, np.uint8)
    for c, r in zip(centres, radii):
        out[sum((g - ci) ** 2 for g, ci in zip(grids, c)) <= r * r] = SXTClass.DMV
    return out


def test_label_classes_never_crosses_classes():
    classes = np.zeros((4, 6, 6), np.uint8)
    classes[:, :, :3] = SXTClass.DMV
    classes[:, :, 3:] = SXTClass.LIPID_DROPLET
    instances = label_classes(Volume(classes, voxel_size=30.0)).to_numpy()
    assert set(np.unique(instances)) == {1, 2}
    assert len(np.unique(classes[instances == 1])) == 1


@pytest.mark.parametrize("spacing", [(30.0, 30.0, 30.0), (45.0, 30.0, 30.0)])
def test_two_touching_vesicles_become_two(spacing):
    radius = 150.0
    shape = tuple(int(1200 / s) for s in spacing)
    centre = np.array([600.0, 600.0, 420.0])
    other = centre + [0.0, 0.0, 0.92 * 2 * radius]  # overlapping a little, as touching DMVs do
    classes = _balls([centre, other], [radius, radius], shape, spacing)
    assert label_classes(Volume(classes, voxel_size=spacing)).to_numpy().max() == 1  # one blob
    split = split_touching(Volume(classes, voxel_size=spacing), SXTClass.DMV)
    table = measure(split)
    assert len(table) == 2
    # each half near its ball's centre, with the volume of about one ball
    np.testing.assert_allclose(sorted(table["centroid_x_nm"]), [centre[2], other[2]], atol=2 * spacing[2])
    np.testing.assert_allclose(table["volume_um3"], 4 / 3 * np.pi * 0.15**3, rtol=0.15)


def test_a_shallow_bulge_is_not_cut_off():
    """A 180 nm bulge on a 360 nm vesicle: its own distance peak, but the saddle to the main peak is shallow."""
    centre = np.array([450.0, 450.0, 360.0])
    classes = Volume(_balls([centre, centre + [0, 0, 240.0]], [180.0, 90.0], (30, 30, 36), (30.0,) * 3),
                     voxel_size=30.0)
    assert split_touching(classes, SXTClass.DMV, min_depth_nm=0).to_numpy().max() == 2  # peaks alone cut it
    kept = split_touching(classes, SXTClass.DMV)  # default depth: half a voxel, 15 nm
    assert kept.to_numpy().max() == 1 and kept.metadata["instances"]["min_depth_nm"] == 15.0
    with pytest.raises(InvalidArgumentError, match="min_depth_nm"):
        split_touching(classes, SXTClass.DMV, min_depth_nm=-1.0)


def test_a_single_ball_is_not_split():
    classes = _balls([(20.0, 20.0, 20.0)], [12.5], (40, 40, 40))
    assert split_touching(Volume(classes, voxel_size=30.0), SXTClass.DMV).to_numpy().max() == 1


@pytest.mark.parametrize("seed", [0, 5])
def test_phantom_dmvs_counted_exactly(seed):
    image, classes, instances, objects = make_infected_cell((80, 224, 224), seed=seed)
    split = split_touching(classes, SXTClass.DMV).to_numpy()
    truth = objects[objects["class_name"] == "dmv"]
    assert split.max() == len(truth)
    # every true DMV is covered mostly by one split label, and touching partners by different ones
    true_ids = instances.to_numpy()
    owner = {}
    for instance_id in truth["instance_id"]:
        values, counts = np.unique(split[true_ids == instance_id], return_counts=True)
        assert counts.max() / counts.sum() > 0.9
        owner[instance_id] = values[np.argmax(counts)]
    assert len(set(owner.values())) == len(truth)
    assert truth["touching"].sum() > 0


def test_bad_input():
    with pytest.raises(InvalidDataError):
        split_touching(Volume(np.zeros((4, 4, 4), np.float32), voxel_size=30.0), 6)
    with pytest.raises(InvalidArgumentError):
        split_touching(Volume(np.zeros((4, 4, 4), np.uint8), voxel_size=30.0), 6, min_distance_nm=0)
    with pytest.raises(VoxelSizeError):
        split_touching(Volume(np.zeros((4, 4, 4), np.uint8)), 6)
    assert split_touching(Volume(np.zeros((4, 4, 4), np.uint8), voxel_size=30.0), 6).to_numpy().max() == 0


@pytest.mark.parametrize("chunks", [(32, 64, 64), (20, 50, 90), (80, 17, 224)])
def test_split_touching_block_by_block_equals_in_memory(chunks):
    _, classes, _, objects = make_infected_cell((80, 160, 160), seed=3, n_dmv=40)
    want = split_touching(classes, SXTClass.DMV)
    lazy = split_touching(classes.rechunk(chunks), SXTClass.DMV)
    assert lazy.data.npartitions > 1  # returned lazily, block by block
    assert lazy.metadata["instances"]["count"] == want.metadata["instances"]["count"]
    np.testing.assert_array_equal(lazy.to_numpy(), want.to_numpy())
    assert want.to_numpy().max() == (objects["class_name"] == "dmv").sum()


def test_a_small_neighbour_stays_its_own_object():
    # a ball and, two voxels away, a two-voxel blob without a strict peak: one object each
    classes = _balls([(20.0, 20.0, 14.0)], [8.0], (40, 40, 40))
    classes[20, 20, 24:26] = SXTClass.DMV
    split = split_touching(Volume(classes, voxel_size=30.0), SXTClass.DMV).to_numpy()
    assert split.max() == 2
    assert len(np.unique(split[20, 20, 24:26])) == 1


@pytest.mark.slow
def test_split_touching_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    _, classes, _, _ = make_infected_cell((64, 128, 128), seed=8, n_dmv=25)
    want = split_touching(classes, SXTClass.DMV).to_numpy()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        got = split_touching(classes.rechunk(32), SXTClass.DMV).to_numpy()
    np.testing.assert_array_equal(got, want)


def test_every_voxel_of_the_class_gets_a_label():
    # random speckle: many components joined only through edges and corners (26-connectivity)
    rng = np.random.default_rng(0)
    classes = (rng.random((40, 60, 60)) < 0.25).astype(np.uint8) * SXTClass.DMV
    split = split_touching(Volume(classes, voxel_size=30.0), SXTClass.DMV).to_numpy()
    np.testing.assert_array_equal(split > 0, classes > 0)
    # pieces never join voxels of different components
    components = label_classes(Volume(classes, voxel_size=30.0)).to_numpy()
    pairs = np.unique(np.stack([split[split > 0], components[split > 0]]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1]


def test_merge_fragments_joins_specks_to_the_class_around_them():
    from sxtseg.instances import merge_fragments

    classes = np.ones((24, 40, 40), np.uint8)  # cytoplasm, 100 nm voxels: 0.001 um^3 per voxel
    classes[:, :, :4] = 0  # ice along one side
    classes[4:20, 8:32, 8:32] = 2  # a nucleus of 9.2 um^3
    classes[10:13, 12:15, 12:15] = 1  # a cytoplasm speck inside it (0.027 um^3)
    classes[2:4, 34:37, 34:37] = 2  # a nucleus speck in the cytoplasm (0.018 um^3)
    classes[3:4, 37:39, 35:37] = 3  # a nucleolus speck (0.004 um^3) touching it: must not swap classes with it
    classes[20:22, 1:3, 1:3] = 1  # a cytoplasm speck in the ice
    vol = Volume(classes, voxel_size=100.0)
    merged = merge_fragments(vol)
    out = merged.to_numpy()
    assert out[11, 13, 13] == 2 and out[3, 35, 35] == 1 and out[3, 38, 35] == 1 and out[21, 2, 2] == 0
    assert merged.metadata["fragments"]["merged"] == {"cytoplasm": 2, "nucleus": 1, "nucleolus": 1}
    assert out.dtype == np.uint8
    # block by block: the same answer
    chunked = merge_fragments(Volume(da.from_array(classes, chunks=(8, 16, 16)), voxel_size=100.0))
    assert not chunked.in_memory
    np.testing.assert_array_equal(chunked.to_numpy(), out)
    # a larger floor for the nucleus makes the nucleus itself a fragment; 0 turns a class off
    assert (merge_fragments(vol, {"nucleus": 20.0}).to_numpy() == 2).sum() == 0
    assert (merge_fragments(vol, {"nucleus": 0, "cytoplasm": 0}).to_numpy() == classes).all()
    with pytest.raises(InvalidArgumentError, match="nucleus"):
        merge_fragments(vol, {"nucleus": -1})


def test_merge_fragments_fills_holes_of_fragments_with_what_the_fragment_becomes():
    """A speck of nucleus in the cytoplasm with a one-voxel hole of cytoplasm (seen on a 256x512x512
    phantom: 14 one-voxel "nuclei" left): the hole takes the speck's new class, it does not swap with it."""
    from sxtseg.instances import merge_fragments

    classes = np.ones((20, 30, 30), np.uint8)  # cytoplasm, 100 nm voxels
    classes[2:18, 2:16, 2:16] = 2  # a nucleus of 3.1 um^3
    classes[5:8, 20:23, 20:23] = 2  # a nucleus speck in the cytoplasm (0.027 um^3)...
    classes[6, 21, 21] = 1  # ... with a hole of cytoplasm, touched by the speck only
    classes[10:15, 19:24, 19:24] = 2  # a speck with a cytoplasm hole holding a nucleus voxel
    classes[11:14, 20:23, 20:23] = 1
    classes[12, 21, 21] = 2
    for volume in (Volume(classes, voxel_size=100.0), Volume(da.from_array(classes, chunks=(8, 16, 16)), voxel_size=100.0)):
        merged = merge_fragments(volume)
        out = merged.to_numpy()
        assert (out[5:8, 20:23, 20:23] == 1).all() and (out[10:15, 19:24, 19:24] == 1).all()
        np.testing.assert_array_equal(out[2:18, 2:16, 2:16], 2)
        assert merged.metadata["fragments"]["merged"] == {"nucleus": 3, "cytoplasm": 2}


def test_quality_flags_of_implausible_segmentations():
    from sxtseg.quality import segmentation_flags

    good = np.zeros((64, 32, 32), np.uint8)  # a cell 1.68 um thick: not a thin cell
    good[4:60, 8:24, 8:24] = 1
    good[16:48, 12:20, 12:20] = 2
    assert segmentation_flags(Volume(good, voxel_size=30.0)) == []
    nothing = segmentation_flags(Volume(np.zeros((8, 8, 8), np.uint8), voxel_size=30.0))
    assert [f["flag"] for f in nothing] == ["no_cell"]
    nucleus_only = np.where(good > 0, 2, 0).astype(np.uint8)
    flags = {f["flag"]: f["message"] for f in segmentation_flags(Volume(nucleus_only, voxel_size=30.0))}
    assert set(flags) == {"no_cytoplasm", "dominant_class"} and "nucleus holds 100%" in flags["dominant_class"]


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..N by first voxel in raster order (0 stays 0): equal up to renumbering."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].reshape(labels.shape)


def test_instances_stage_in_memory_equals_block_by_block():
    """The in-memory instances stage (DMV pieces painted straight into the labels) against the block-wise one."""
    from sxtseg.pipeline import _instances

    _, classes, _, _ = make_infected_cell((40, 96, 112), voxel_size_nm=35.0, seed=11, n_dmv=10,
                                          touching_fraction=0.5)
    classes = classes.to_numpy().copy()
    classes[1:3, 1:3, 1:3] = SXTClass.DMV  # a DMV speck (under the 180 nm ball): no instance of its own
    in_memory = _instances(Volume(classes, voxel_size=35.0))
    chunked = _instances(Volume(da.from_array(classes, chunks=(20, 48, 56)), voxel_size=35.0))
    assert in_memory.in_memory and not chunked.in_memory
    a, b = in_memory.to_numpy(), chunked.to_numpy()
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(_canonical(a), _canonical(b))
    assert in_memory.metadata["instances"] == chunked.metadata["instances"]
    meta = in_memory.metadata["instances"]
    assert meta["dmv_specks_dropped"] >= 1 and meta["dmv_split"]["count"] > 10  # touching pairs split
    assert a[1:3, 1:3, 1:3].max() == 0  # the speck keeps its class, not an instance
    dmv = classes == SXTClass.DMV
    assert len(np.unique(a[dmv & (a > 0)])) == meta["dmv_split"]["count"] - meta["dmv_specks_dropped"]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32])
def test_keep_classes_is_isin_where(dtype):
    from sxtseg.instances import _keep_classes

    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    classes = rng.integers(max(info.min, -300), min(info.max, 300), (10, 20, 30), endpoint=True).astype(dtype)
    for codes in ([1, 2, 3, 4, 5], [1, 2, 3, -1, 200, 7], [0, 255], [127, 128, -128], [9]):
        expected = np.where(np.isin(classes, np.asarray(codes, np.int64)), classes, 0)
        got = _keep_classes(classes, codes)
        assert got.dtype == classes.dtype
        np.testing.assert_array_equal(got, expected)


def test_merge_fragments_removes_specks_of_other_vesicles_but_keeps_a_small_lysosome():
    from sxtseg.instances import merge_fragments

    classes = np.full((48, 64, 64), int(SXTClass.CYTOPLASM), np.uint8)  # 5.3 µm³ of cytoplasm
    classes[3, 4, 5] = SXTClass.OTHER_VESICLE  # a one-voxel speck at 30 nm: 2.7e-5 µm³
    z, y, x = np.ogrid[:48, :64, :64]
    ball = (z - 24) ** 2 + (y - 32) ** 2 + (x - 32) ** 2 <= (100 / 30) ** 2  # a 200 nm lysosome: 0.004 µm³
    classes[ball] = SXTClass.OTHER_VESICLE
    merged = merge_fragments(Volume(classes, voxel_size=30.0)).to_numpy()
    assert merged[3, 4, 5] == SXTClass.CYTOPLASM
    assert (merged == SXTClass.OTHER_VESICLE).sum() == ball.sum()
