"""sxtseg.kernels.label gives the same labels as scipy.ndimage.label and cc3d, number for number."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from scipy import ndimage as ndi

from sxtseg.kernels import label

STRUCTURES = {6: ndi.generate_binary_structure(3, 1), 18: ndi.generate_binary_structure(3, 2), 26: np.ones((3, 3, 3))}


def _check(image, connectivity, threads):
    ours, n = label(image, connectivity, threads=threads)
    assert ours.dtype == np.uint32 and ours.shape == image.shape
    cc = cc3d.connected_components(image, connectivity=connectivity, out_dtype=np.uint32)
    np.testing.assert_array_equal(ours, cc)
    assert n == int(cc.max())
    if image.dtype == bool or (image.min() >= 0 and image.max() <= 1):  # a 0/1 mask: scipy sees the same
        ref, n_ref = ndi.label(image, STRUCTURES[connectivity])
        np.testing.assert_array_equal(ours, ref)
        assert n == n_ref
    return ours, n


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("density", [0.1, 0.3, 0.6])
def test_random_masks(connectivity, threads, density):
    rng = np.random.default_rng(int(density * 10) + threads)
    _check(rng.random((23, 31, 29)) < density, connectivity, threads)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64])
def test_multiclass_components_never_cross_classes(connectivity, dtype):
    rng = np.random.default_rng(5)
    classes = rng.integers(0, 4, size=(17, 19, 23)).astype(dtype)
    ours, _ = _check(classes, connectivity, threads=3)
    # every component holds exactly one class
    for lab in np.unique(ours)[1:20]:
        assert len(np.unique(classes[ours == lab])) == 1


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_one_object_spanning_every_slab(connectivity):
    image = np.zeros((40, 20, 20), bool)
    image[:, 10, 10] = True  # a rod through all slabs
    image[5, 2:18, 3] = True  # a side branch
    image[5, 10, 3:11] = True
    ours, n = _check(image, connectivity, threads=7)
    assert n == 1


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_spiral(connectivity):
    """A 3D spiral staircase: one component only through diagonal steps under 18/26."""
    image = np.zeros((48, 21, 21), bool)
    angle = np.linspace(0, 6 * np.pi, 48)
    for z, a in enumerate(angle):
        image[z, int(round(10 + 8 * np.sin(a))), int(round(10 + 8 * np.cos(a)))] = True
    _check(image, connectivity, threads=5)


@pytest.mark.parametrize("connectivity", [18, 26])
def test_objects_touching_only_at_slab_boundary_corners(connectivity):
    """Two voxels meeting corner to corner exactly across a slab boundary (threads=2 splits at z=5)."""
    image = np.zeros((10, 6, 6), bool)
    image[4, 2, 2] = True
    image[5, 3, 3] = True  # corner neighbour: joined under 26, not under 18
    image[4, 0, 0] = True
    image[5, 0, 1] = True  # edge neighbour: joined under 18 and 26
    ours, n = _check(image, connectivity, threads=2)
    assert n == (2 if connectivity == 26 else 3)


def test_empty_full_2d_and_fortran_order():
    assert label(np.zeros((4, 5, 6), bool))[1] == 0
    full, n = label(np.ones((4, 5, 6), np.uint8), threads=3)
    assert n == 1 and (full == 1).all()
    image = np.random.default_rng(2).random((30, 40)) < 0.4
    labels2d, n2d = label(image, 6)
    ref, n_ref = ndi.label(image)
    np.testing.assert_array_equal(labels2d, ref)
    volume = np.asfortranarray(np.random.default_rng(3).random((9, 10, 11)) < 0.4)
    _check(volume, 26, threads=2)
    assert label(np.zeros((0, 4, 4), bool))[1] == 0


def test_bad_input():
    with pytest.raises(ValueError, match="integer"):
        label(np.zeros((3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="connectivity"):
        label(np.zeros((3, 3, 3), bool), connectivity=8)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        label(np.zeros((2, 3, 3, 3), bool))


@pytest.mark.parametrize("threads", [1, 3])
def test_every_voxel_its_own_run(threads):
    """Classes that change at every step along x: as many runs as voxels, so the run and label stores grow."""
    rng = np.random.default_rng(11)
    steps = rng.integers(1, 4, size=(6, 9, 700))
    classes = (np.cumsum(steps, axis=2) % 4 + 1).astype(np.uint8)  # never equal to the left neighbour
    assert (classes[..., 1:] != classes[..., :-1]).all()
    ours, n = _check(classes, 26, threads)
    assert n == int(cc3d.connected_components(classes, connectivity=26).max())


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("threads", [1, 2])
def test_smooth_multiclass_volumes(connectivity, threads):
    # Blobs of several classes, nested and touching: runs spanning the run above them are common, so the
    # shortcut that skips neighbour rows covered by a spanning run is taken all the time.
    rng = np.random.default_rng(11)
    coarse = rng.integers(0, 5, size=(5, 6, 7))
    classes = ndi.zoom(coarse, (5, 6, 7), order=0)[:23, :31, :41].astype(np.uint16)
    classes[rng.random(classes.shape) < 0.02] = 0  # holes: runs split inside blobs
    _check(classes, connectivity, threads)
    # shifted copies: the spanning run is offset from the run it covers
    _check(np.ascontiguousarray(classes[:, 1:, 2:]), connectivity, threads)


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.uint32, np.int64])
@pytest.mark.parametrize("offset", [0, 1])
def test_sparse_rows_skip_background_by_words(dtype, offset):
    # long rows of mostly background, runs starting and ending at every position relative to the 8-byte
    # words the scan skips background by; offset 1 makes the array unaligned (no word view: voxel by voxel)
    rng = np.random.default_rng(3)
    mask = rng.random((6, 9, 203)) < 0.01
    mask = ndi.binary_dilation(mask, np.ones((1, 1, 3)))
    image = (mask * rng.integers(1, 3, mask.shape)).astype(dtype)
    buffer = np.zeros(image.nbytes + offset, np.uint8)
    unaligned = np.frombuffer(buffer.data, dtype, count=image.size, offset=offset).reshape(image.shape)
    unaligned[...] = image
    assert unaligned.flags.c_contiguous and (offset == 0 or unaligned.__array_interface__["data"][0] % 8)
    for connectivity in (6, 26):
        _check(unaligned, connectivity, 1)



@pytest.mark.parametrize("dtype", [bool, np.uint8])
@pytest.mark.parametrize("nx", [8, 64, 128, 200])
@pytest.mark.parametrize("threads", [1, 3])
def test_masks_packed_to_bits(dtype, nx, threads):
    # 0/1 masks whose rows are whole 8-byte words take the packed-bits path: runs of 1 to 150 voxels back to
    # back, so they start and end at every bit of a 64-voxel word, cross words and reach the row's end
    # (200 voxels: three full words and a partial one); rows all foreground and all background too
    rng = np.random.default_rng(nx + threads)
    lengths = rng.integers(1, 151, size=3000)
    flat = np.repeat(np.arange(lengths.size) % 2, lengths)  # alternating background and foreground runs
    image = flat[: 6 * 11 * nx].reshape(6, 11, nx).astype(dtype)
    image[1, 3] = 1
    image[2, 4] = 0
    image[3, :, -1] = 1
    offset = 1  # an unaligned copy has no word view: voxel by voxel, the reference for the bits
    buffer = np.zeros(image.nbytes + offset, np.uint8)
    unaligned = np.frombuffer(buffer.data, image.dtype, count=image.size, offset=offset).reshape(image.shape)
    unaligned[...] = image
    for connectivity in (6, 18, 26):
        ours, _ = _check(image, connectivity, threads)
        np.testing.assert_array_equal(label(unaligned, connectivity, threads=threads)[0], ours)
    for density in (0.05, 0.5, 0.9):
        _check(rng.random((9, 13, nx)) < density, 26, threads)

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32])
@pytest.mark.parametrize("offset", [0, 2])
def test_runs_end_found_by_words(dtype, offset):
    # runs of 1 to 40 voxels of values that include negative ones and values whose bytes repeat (257, -1),
    # packed back to back, so runs end at every position in a word, cross word boundaries and rows' ends;
    # offset 2 makes the array unaligned (voxel by voxel), the reference for the word path
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    values = np.array([v for v in (1, 2, 3, 255, 257, -1, -2, 300, 65535) if info.min <= v <= info.max], dtype)
    lengths = rng.integers(1, 41, size=4000)
    runs = np.repeat(rng.choice(values, size=lengths.size), lengths)
    runs[np.repeat(rng.random(lengths.size) < 0.15, lengths)] = 0  # background runs between some
    image = runs[: 5 * 7 * 131].reshape(5, 7, 131)
    buffer = np.zeros(image.nbytes + offset, np.uint8)
    placed = np.frombuffer(buffer.data, dtype, count=image.size, offset=offset).reshape(image.shape)
    placed[...] = image
    for connectivity in (6, 26):
        ours, n = _check(placed, connectivity, 1)
        words = label(image, connectivity, threads=1)  # aligned copy: the word path
        np.testing.assert_array_equal(words[0], ours)


def test_signed_bytes_are_values_not_a_mask():
    # int8 -1 and 1 are different classes even though no value exceeds 1: never joined as a 0/1 mask
    image = np.zeros((2, 3, 4), np.int8)
    image[0, 0, 1] = image[1, 1, 2] = -1
    image[0, 1, 1] = image[1, 0, 1] = 1
    _, n = _check(image, 26, 1)
    assert n == 2  # the -1s touch across a corner, the 1s across an edge; as a 0/1 mask all four would be one


# ---- the voxel-by-voxel path for dense volumes with short runs (kernels/_label_voxels.py) ----

def _label_voxels(image, threads):
    """The voxel path on any input, wired as ``label`` wires it (``label`` takes it only for large dense inputs)."""
    from sxtseg.kernels._label import _map, _slab_bounds, _words
    from sxtseg.kernels._label_voxels import label_voxels

    src = image.view(np.uint8) if image.dtype == bool else image
    out = np.zeros(image.shape, np.uint32)
    return out, label_voxels(src, _words(src.reshape(-1)), out, _slab_bounds(image.shape[0], threads), _map)


def _check_voxels(image, threads):
    ours, n = _label_voxels(image, threads)
    cc = cc3d.connected_components(image, connectivity=26, out_dtype=np.uint32)
    np.testing.assert_array_equal(ours, cc)
    assert n == int(cc.max())


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.uint32, np.int64])
def test_voxel_path_random_volumes(threads, dtype):
    rng = np.random.default_rng(threads * 10 + np.dtype(dtype).itemsize)
    for shape in [(1, 1, 1), (1, 7, 9), (5, 1, 13), (4, 6, 1), (9, 17, 23), (23, 8, 41)]:
        for n_values in (2, 3, 6):
            if dtype is bool and n_values > 2:
                continue
            image = rng.integers(0, n_values, shape).astype(dtype)
            _check_voxels(image, threads)
            # blobs with holes: long runs, voxels below of the same value, and stretches in the neighbour rows
            coarse = rng.integers(0, n_values, (3, 4, 5))
            blobs = ndi.zoom(coarse, (8, 5, 9), order=0)[: shape[0] + 3, : shape[1] + 5, : shape[2] + 7].astype(dtype)
            blobs[rng.random(blobs.shape) < 0.05] = 0
            _check_voxels(np.ascontiguousarray(blobs), threads)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("nx", [8, 29, 64, 203])
def test_voxel_path_copies_stretches_equal_to_the_row_below(threads, nx):
    # each plane is the one below with a few voxels changed, as in a dense segmentation: most 8-voxel stretches
    # equal the stretch below (their labels are copied), others differ in one voxel; runs of 1-6 voxels start
    # and end inside copied stretches and cross their ends; row lengths that are and are not whole stretches
    from sxtseg.kernels._label_voxels import SEGMENT

    rng = np.random.default_rng(nx + threads)
    plane = rng.integers(0, 5, (13, nx)).repeat(rng.integers(1, 7, nx), axis=1)[:, :nx]  # runs along x
    planes = [plane]
    for _ in range(11):
        plane = plane.copy()
        changed = rng.random(plane.shape) < 0.03
        plane[changed] = rng.integers(0, 5, int(changed.sum()))
        planes.append(plane)
    image = np.stack(planes).astype(np.uint16)
    above = image[1:, 1:-1, : nx // SEGMENT * SEGMENT].reshape(11, 11, -1, SEGMENT)
    below = image[:-1, 1:-1, : nx // SEGMENT * SEGMENT].reshape(11, 11, -1, SEGMENT)
    equal = (above == below).all(axis=-1)  # aligned stretches stand in for the scan's (which start after runs)
    assert 0.3 < equal.mean() < 0.95  # both kinds of stretch, many of each
    _check_voxels(image, threads)


@pytest.mark.parametrize("offset", [0, 1])
def test_voxel_path_skips_background_by_words(offset):
    # sparse rows, aligned (background a word at a time) and unaligned (voxel by voxel)
    rng = np.random.default_rng(4)
    mask = ndi.binary_dilation(rng.random((7, 9, 203)) < 0.01, np.ones((1, 2, 3)))
    image = (mask * rng.integers(1, 4, mask.shape)).astype(np.uint16)
    buffer = np.zeros(image.nbytes + offset, np.uint8)
    placed = np.frombuffer(buffer.data, np.uint16, count=image.size, offset=offset).reshape(image.shape)
    placed[...] = image
    for threads in (1, 2):
        _check_voxels(placed, threads)


def test_voxel_path_grows_its_label_store():
    # every voxel differs from all 26 neighbours: one provisional label per voxel, 16x the first store
    z, y, x = np.indices((12, 40, 50))
    image = (1 + x % 2 + 2 * (y % 2) + 4 * (z % 2)).astype(np.uint8)
    for threads in (1, 3):
        ours, n = _label_voxels(image, threads)
        assert n == image.size
        np.testing.assert_array_equal(ours.ravel(), np.arange(1, image.size + 1))


def test_label_chooses_the_voxel_path_for_dense_short_runs():
    from sxtseg.kernels._label import _short_runs

    rng = np.random.default_rng(8)
    coarse = rng.integers(1, 200, (9, 40, 130), dtype=np.uint32)
    dense = ndi.zoom(coarse, (4, 4, 4), order=0)[:34, :128, :500]  # 2.2 million voxels, runs of 4 in x
    dense = np.ascontiguousarray(dense)
    assert dense.size >= 2 * (1 << 20) and _short_runs(dense, binary=False)
    for threads in (1, 2):
        _check(dense, 26, threads)
    sparse = np.zeros_like(dense, dtype=np.uint8)
    sparse[::7, ::5, ::3] = 1
    assert not _short_runs(sparse, binary=False)  # 2% foreground: the run path
    assert not _short_runs(dense.astype(bool).view(np.uint8), binary=True)  # masks: the run path
    long_runs = np.ascontiguousarray(ndi.zoom(coarse[:, :10, :2], (4, 13, 250), order=0))  # runs of 250
    assert long_runs.size >= 2 * (1 << 20) and not _short_runs(long_runs, binary=False)
    assert not _short_runs(dense[:10, :10], binary=False)  # small: the run path's fixed cost is lower
