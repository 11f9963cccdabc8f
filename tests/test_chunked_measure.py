"""measure on dask volumes, block by block, equals measure in memory; distances equal distance transforms."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sxtseg import SXTClass, Volume, label_classes, make_infected_cell, measure, summarize


def random_scene(shape=(30, 34, 38), seed=0):
    """Classes with a nucleus block, blobs of two classes, and labels with large, sparse numbers."""
    rng = np.random.default_rng(seed)
    classes = np.ones(shape, np.uint8)  # cytoplasm
    classes[:, :3] = 0
    classes[-4:] = 0  # background at two sides
    classes[8:20, 10:22, 5:17] = SXTClass.NUCLEUS
    blobs = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.53
    classes[blobs & (classes == 1)] = SXTClass.DMV
    classes[(rng.random(shape) < 0.02) & (classes == 1)] = SXTClass.LIPID_DROPLET
    image = rng.normal(0.3, 0.05, shape).astype(np.float32)
    return classes, image


def chunked(array, chunks, voxel_size):
    return Volume(da.from_array(array, chunks=chunks), voxel_size=voxel_size)


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == list(want.columns)
    assert got["label"].tolist() == want["label"].tolist()
    for column in want.columns:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=column)
        else:
            np.testing.assert_array_equal(a, b, err_msg=column)


@pytest.mark.parametrize("chunks", [(7, 9, 11), (16, 16, 16), (30, 5, 40), (1, 34, 38)])
@pytest.mark.parametrize("voxel_size", [30.0, (60.0, 25.0, 25.0)])
def test_chunked_table_equals_in_memory(chunks, voxel_size):
    classes, image = random_scene(seed=sum(chunks))
    instances = label_classes(Volume(classes, voxel_size=voxel_size)).to_numpy()
    # large, sparse label numbers: the blocks must compact them
    labels = np.where(instances > 0, instances.astype(np.int64) * 7919 + 2**33, 0)
    want = measure(Volume(labels, voxel_size=voxel_size), Volume(image, voxel_size=voxel_size),
                   Volume(classes, voxel_size=voxel_size))
    got = measure(chunked(labels, chunks, voxel_size), chunked(image, chunks, voxel_size),
                  chunked(classes, chunks, voxel_size))
    assert len(want) > 50
    assert_same_table(got, want)
    assert got.attrs["units"] == want.attrs["units"]


def test_objects_spanning_every_block_and_class_at_first_voxel():
    labels = np.zeros((20, 20, 20), np.uint16)
    labels[2:18, 2:18, 2:18] = 5  # one object through all 8 blocks of 10^3
    labels[9:11, 9:11, 9:11] = 0
    labels[0, 0, 0] = 3
    # an L whose first voxel in raster order, (3, 19, 12), lies in a block merged after the one with its foot
    labels[3:9, 19, 12] = 7
    labels[8, 19, 5:13] = 7
    classes = np.where(labels > 0, SXTClass.MITOCHONDRION, 0).astype(np.uint8)
    classes[0, 0, 0] = 0
    classes[2, 2, 2] = SXTClass.DMV  # the class at an object's first voxel is its class
    classes[3, 19, 12] = SXTClass.LIPID_DROPLET
    want = measure(Volume(labels, voxel_size=30.0), classes=Volume(classes, voxel_size=30.0))
    got = measure(chunked(labels, 10, 30.0), classes=chunked(classes, 10, 30.0))
    assert_same_table(got, want)
    assert got["class_id"].tolist() == [0, SXTClass.DMV, SXTClass.LIPID_DROPLET]


def test_distances_equal_distance_transforms():
    classes, _ = random_scene(seed=4)
    spacing = np.array([45.0, 30.0, 30.0])
    instances = label_classes(Volume(classes, voxel_size=tuple(spacing)))
    table = measure(instances, classes=Volume(classes, voxel_size=tuple(spacing)))
    voxel = tuple(np.rint(table[["centroid_z_vox", "centroid_y_vox", "centroid_x_vox"]].to_numpy()).astype(int).T)
    nucleus = np.isin(classes, (SXTClass.NUCLEUS, SXTClass.NUCLEOLUS))
    to_nucleus = ndimage.distance_transform_edt(~nucleus, sampling=spacing)[voxel]
    to_boundary = ndimage.distance_transform_edt(classes != 0, sampling=spacing)[voxel]
    np.testing.assert_allclose(table["distance_to_nucleus_nm"], to_nucleus, rtol=1e-12)
    np.testing.assert_allclose(table["distance_to_cell_boundary_nm"], to_boundary, rtol=1e-12)
    assert (to_boundary > 0).any() and (to_nucleus > 0).any()


def test_phantom_chunked_equals_in_memory_with_summary():
    image, classes, _, _ = make_infected_cell(shape=(48, 96, 96), seed=5, n_dmv=12)
    instances = label_classes(classes)
    want = measure(instances, image, classes)
    lazy_classes = classes.rechunk((16, 40, 40))
    lazy_instances = label_classes(lazy_classes)
    assert lazy_instances.data.npartitions > 1
    got = measure(lazy_instances, image.rechunk((16, 40, 40)), lazy_classes)
    # block-wise labelling numbers objects by block: compare in the order of the first voxels
    key = ["bbox_z0", "centroid_z_vox", "centroid_y_vox", "centroid_x_vox"]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    got["label"] = want["label"]
    assert_same_table(got, want)
    assert summarize(got, lazy_classes) == summarize(want, classes)


def test_block_tasks_never_see_the_whole_volume():
    """With the synchronous scheduler, every array a task gets is at most a block plus halos."""
    seen = []
    labels = np.zeros((40, 40, 40), np.uint32)
    labels[5:35, 5:35, 5:35] = 1

    def record(block):
        seen.append(block.shape)
        return block

    lazy = da.from_array(labels, chunks=10).map_blocks(record, dtype=np.uint32)
    with dask.config.set(scheduler="synchronous"):
        table = measure(Volume(lazy, voxel_size=10.0))
    assert table["voxel_count"].tolist() == [30**3]
    assert max(np.prod(s) for s in seen) == 10**3


@pytest.mark.slow
def test_runs_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    classes, image = random_scene(seed=11)
    instances = label_classes(Volume(classes, voxel_size=30.0)).to_numpy()
    want = measure(Volume(instances, voxel_size=30.0), Volume(image, voxel_size=30.0), Volume(classes, voxel_size=30.0))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        got = measure(chunked(instances, (12, 12, 12), 30.0), chunked(image, (12, 12, 12), 30.0),
                      chunked(classes, (12, 12, 12), 30.0))
    assert_same_table(got, want)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 9), (6, 1, 5), (12, 17, 23)])
def test_boundary_is_scipys_erosion(shape):
    """_boundary: the voxels SciPy's face erosion (border counted inside) takes off the mask."""
    from scipy import ndimage

    from sxtseg._chunked_measure import _boundary

    rng = np.random.default_rng(sum(shape))
    mask = ndimage.median_filter(rng.integers(0, 2, shape).astype(np.uint8), 3).astype(bool)
    expected = mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1), border_value=1)
    np.testing.assert_array_equal(_boundary(mask), expected)
