"""Tests of sxtseg.phantom: the synthetic infected cell used as ground truth everywhere."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sxtseg.classes import CLASS_COLORS, CLASS_NAMES, SXTClass
from sxtseg.errors import ShapeError, VoxelSizeError
from sxtseg.phantom import LAC, make_infected_cell
from sxtseg.volume import Volume

SMALL = (64, 128, 128)
SMALL_COUNTS = dict(n_dmv=12, n_mitochondria=1, n_lipid_droplets=2)


@pytest.fixture(scope="module")
def default_phantom():
    """The default phantom, loaded into NumPy: (image, classes, instances, table, voxel size)."""
    image, classes, instances, table = make_infected_cell()
    return image.to_numpy(), classes.to_numpy(), instances.to_numpy(), table, image.voxel_size[0]


@pytest.fixture(scope="module")
def clean_phantom():
    """The default geometry without blur and noise."""
    image, classes, _, _ = make_infected_cell(noise=0, blur=0)
    return image.to_numpy(), classes.to_numpy()


def _face_adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Every pair (a, b), a < b, of different labels that share a voxel face."""
    pairs = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)[:-1]
        b = np.moveaxis(labels, axis, 0)[1:]
        differ = a != b
        low = np.minimum(a[differ], b[differ]).astype(np.int64)
        high = np.maximum(a[differ], b[differ]).astype(np.int64)
        pairs |= set(zip(low.tolist(), high.tolist()))
    return pairs


def _rows(table: pd.DataFrame, cls: SXTClass) -> pd.DataFrame:
    return table[table["class_id"] == int(cls)]


# ------------------------------------------------------------------ classes
def test_class_codes_names_and_colors():
    assert [int(c) for c in SXTClass] == list(range(9))
    assert CLASS_NAMES[int(SXTClass.OTHER_VESICLE)] == "other_vesicle"
    assert CLASS_NAMES[int(SXTClass.FIDUCIAL)] == "fiducial"
    assert CLASS_NAMES[int(SXTClass.LIPID_DROPLET)] == "lipid_droplet"
    assert CLASS_NAMES[int(SXTClass.DMV)] == "dmv"
    assert SXTClass.from_label("nucleolus") is SXTClass.NUCLEOLUS
    with pytest.raises(ValueError, match="unknown SXT class"):
        SXTClass.from_label("golgi")
    assert all(c.__doc__ and c.__doc__ != SXTClass.__doc__ for c in SXTClass)
    assert set(CLASS_COLORS) == set(CLASS_NAMES)
    colors = list(CLASS_COLORS.values())
    assert len(set(colors)) == len(colors)
    assert all(len(rgba) == 4 and all(0 <= x <= 255 for x in rgba) for rgba in colors)
    assert CLASS_COLORS[0][3] == 0  # background is transparent


# ------------------------------------------------------------------ types and metadata
def test_returns_volumes_with_types_voxel_size_and_metadata():
    image, classes, instances, table = make_infected_cell(SMALL, 25.0, seed=4, chunks=32, **SMALL_COUNTS)
    for vol, dtype in ((image, np.float32), (classes, np.uint8), (instances, np.uint32)):
        assert isinstance(vol, Volume)
        assert vol.shape == SMALL
        assert vol.dtype == dtype
        assert vol.voxel_size == (25.0, 25.0, 25.0)
        assert vol.unit == "nm"
        assert vol.axes == "zyx"
        assert vol.chunks[0][0] == 32
        assert vol.metadata["source"] == {"reader": "phantom", "path": "<phantom>"}
        json.dumps(vol.metadata)  # metadata must survive being written as JSON attributes
    assert image.metadata["quantity"] == "linear_absorption_coefficient"
    assert image.metadata["intensity_unit"] == "1/um"
    parameters = image.metadata["phantom"]
    assert parameters["seed"] == 4
    assert parameters["voxel_size_nm"] == 25.0
    assert parameters["shape"] == list(SMALL)
    assert parameters["n_dmv"] == 12
    assert parameters["placed"]["n_dmv"] == len(_rows(table, SXTClass.DMV))
    assert classes.metadata["label_names"]["6"] == "dmv"
    expected_columns = {
        "instance_id", "class_id", "class_name", "parent_id",
        "centroid_z_nm", "centroid_y_nm", "centroid_x_nm",
        "radius_z_nm", "radius_y_nm", "radius_x_nm", "length_nm",
        "diameter_nm", "volume_um3", "voxel_volume_um3", "touching", "clipped",
    }  # fmt: skip
    assert expected_columns <= set(table.columns)
    assert table["touching"].dtype == bool and table["clipped"].dtype == bool


# ------------------------------------------------------------------ bit-identical to before the package split
# SHA-256 (first 16 hex digits) of image, classes, instances and the table's original columns, written by the
# single-module phantom.py before sxtseg.phantom became a package: a shipped model was trained on these phantoms.
# Float images depend on NumPy/BLAS rounding, so a new NumPy or CPU family may need them re-recorded (with the
# old code); classes, instances and tables are far less sensitive.
ORIGINAL_COLUMNS = [
    "instance_id", "class_id", "class_name", "parent_id", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm",
    "radius_z_nm", "radius_y_nm", "radius_x_nm", "length_nm", "diameter_nm", "volume_um3",
    "voxel_volume_um3", "touching", "clipped",
]  # fmt: skip
DEFAULT_HASHES = ("9fade375f9271d98", "56ecac94100c43eb", "b78fb78d04e0a4de", "2ea70104222ed3d2")
SMALL_HASHES = [
    (dict(shape=(32, 96, 96), seed=0),
     ("6b72885c7bf49ad4", "ff0612157b74e4f4", "da82384edfc0a218", "a23fbde6a659d71a")),
    (dict(shape=(48, 128, 128), voxel_size_nm=25.0, seed=3, noise=0.08, blur=1.5),
     ("5b6fdfaadcc7c3b6", "78f5a12cb27a1cda", "8733378345e352dd", "d50278798f6c22d5")),
    (dict(shape=(32, 64, 64), voxel_size_nm=40.0, seed=7, noise=0.0, blur=0.0),
     ("5349e641aa7b8bb2", "6d607247815fc83b", "956506c6cddd2e96", "4c986e14a9bc0a19")),
    (dict(shape=(40, 96, 112), voxel_size_nm=35.0, seed=11, noise=0.029, blur=0.95, n_dmv=10,
          touching_fraction=0.5),
     ("b7452b6d24f42674", "0e71d5f56fd276c7", "cfeac7955f2fc862", "ff4ed7acee060958")),
]  # fmt: skip


def _hashes(image, classes, instances, table) -> tuple[str, ...]:
    arrays = [np.ascontiguousarray(np.asarray(a)) for a in (image, classes, instances)]
    digests = [hashlib.sha256(a.tobytes()).hexdigest()[:16] for a in arrays]
    csv = table[ORIGINAL_COLUMNS].to_csv(index=False, float_format="%.17g")
    return (*digests, hashlib.sha256(csv.encode()).hexdigest()[:16])


def test_default_phantom_is_bit_identical_to_before(default_phantom):
    image, classes, instances, table, _ = default_phantom
    assert _hashes(image, classes, instances, table) == DEFAULT_HASHES


@pytest.mark.parametrize("kwargs, expected", SMALL_HASHES)
def test_phantoms_are_bit_identical_to_before(kwargs, expected):
    image, classes, instances, table = make_infected_cell(**kwargs)
    assert _hashes(image.to_numpy(), classes.to_numpy(), instances.to_numpy(), table) == expected


def test_phantom_bits_do_not_depend_on_the_cpu():
    """The same hashes with OpenBLAS's oldest kernels and NumPy's SIMD paths above SSE4.2 switched off.

    BLAS picks its summation order by the CPU, so the phantom sums its short dot products itself.
    """
    kwargs, expected = SMALL_HASHES[3]
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from test_phantom import _hashes; "
              f"from sxtseg import make_infected_cell; i, c, n, t = make_infected_cell(**{kwargs!r}); "
              "print(','.join(_hashes(i.to_numpy(), c.to_numpy(), n.to_numpy(), t)))")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert tuple(done.stdout.strip().split(",")) == expected


# ------------------------------------------------------------------ determinism
def test_same_seed_same_phantom_and_different_seed_differs():
    first = make_infected_cell(SMALL, seed=11, **SMALL_COUNTS)
    second = make_infected_cell(SMALL, seed=11, **SMALL_COUNTS)
    other = make_infected_cell(SMALL, seed=12, **SMALL_COUNTS)
    for a, b in zip(first[:3], second[:3]):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    pd.testing.assert_frame_equal(first[3], second[3])
    assert not np.array_equal(first[0].to_numpy(), other[0].to_numpy())
    assert not np.array_equal(first[1].to_numpy(), other[1].to_numpy())


def test_seed_none_is_recorded_and_reproduces():
    image, classes, _, _ = make_infected_cell((32, 64, 64), seed=None)
    seed = image.metadata["phantom"]["seed"]
    assert isinstance(seed, int)
    again, again_classes, _, _ = make_infected_cell((32, 64, 64), seed=seed)
    np.testing.assert_array_equal(image.to_numpy(), again.to_numpy())
    np.testing.assert_array_equal(classes.to_numpy(), again_classes.to_numpy())


def test_noise_and_blur_do_not_move_the_objects():
    noisy = make_infected_cell(SMALL, seed=2, **SMALL_COUNTS)
    clean = make_infected_cell(SMALL, seed=2, noise=0, blur=0, **SMALL_COUNTS)
    np.testing.assert_array_equal(noisy[2].to_numpy(), clean[2].to_numpy())
    assert not np.array_equal(noisy[0].to_numpy(), clean[0].to_numpy())


# ------------------------------------------------------------------ contents of the default phantom
def test_default_phantom_has_every_class(default_phantom):
    _, classes, _, table, _ = default_phantom
    assert set(np.unique(classes).tolist()) == set(range(7))
    assert set(table["class_id"]) == set(range(1, 7))
    n_dmv = len(_rows(table, SXTClass.DMV))
    assert 40 <= n_dmv <= 80
    assert len(_rows(table, SXTClass.NUCLEUS)) == 1
    assert 1 <= len(_rows(table, SXTClass.NUCLEOLUS)) <= 2


def test_cell_sits_in_ice(default_phantom):
    _, classes, _, _, _ = default_phantom
    faces = [classes[0], classes[-1], classes[:, 0], classes[:, -1], classes[:, :, 0], classes[:, :, -1]]
    assert all((face == SXTClass.BACKGROUND).all() for face in faces)
    cell_fraction = (classes > 0).mean()
    assert 0.2 < cell_fraction < 0.5
    # one cell: the non-ice voxels form a single connected body
    _, n = ndimage.label(classes > 0)
    assert n == 1


def test_instance_ids_match_table_and_each_has_one_class(default_phantom):
    _, classes, instances, table, _ = default_phantom
    ids = np.unique(instances)
    assert ids[0] == 0
    assert set(ids[1:].tolist()) == set(table["instance_id"])
    assert table["instance_id"].is_unique
    class_of = dict(zip(table["instance_id"], table["class_id"]))
    lookup = np.zeros(int(ids.max()) + 1, np.uint8)
    lookup[list(class_of)] = list(class_of.values())
    np.testing.assert_array_equal(lookup[instances], classes)
    assert (table["class_name"] == table["class_id"].map(CLASS_NAMES)).all()


def test_class_hierarchy_and_no_overlap(default_phantom):
    """Only parent/child objects and touching DMV pairs share voxel faces."""
    _, classes, instances, table, _ = default_phantom
    parent = dict(zip(table["instance_id"], table["parent_id"]))
    cls = dict(zip(table["instance_id"], table["class_id"]))
    touching = dict(zip(table["instance_id"], table["touching"]))
    cell_id = int(_rows(table, SXTClass.CYTOPLASM)["instance_id"].iloc[0])
    nucleus_id = int(_rows(table, SXTClass.NUCLEUS)["instance_id"].iloc[0])
    assert parent[cell_id] == 0
    assert (_rows(table, SXTClass.NUCLEOLUS)["parent_id"] == nucleus_id).all()
    others = table[~table["class_id"].isin([SXTClass.CYTOPLASM, SXTClass.NUCLEOLUS])]
    assert (others["parent_id"] == cell_id).all()
    for a, b in _face_adjacent_pairs(instances):
        if a == 0:
            assert b == cell_id, f"instance {b} touches the ice"
        elif parent[b] == a or parent[a] == b:
            continue
        else:
            assert cls[a] == cls[b] == SXTClass.DMV, f"instances {a} and {b} touch"
            assert touching[a] and touching[b]
    # nucleoli lie inside the nucleus: their dilation stays in nucleus or nucleolus
    grown = ndimage.binary_dilation(classes == SXTClass.NUCLEOLUS)
    assert np.isin(classes[grown], [SXTClass.NUCLEUS, SXTClass.NUCLEOLUS]).all()


# ------------------------------------------------------------------ intensities
def _class_medians(image: np.ndarray, classes: np.ndarray) -> dict[int, float]:
    return {c: float(np.median(image[classes == c])) for c in range(7)}


def test_lac_ordering_without_noise(clean_phantom):
    image, classes = clean_phantom
    m = _class_medians(image, classes)
    assert m[SXTClass.BACKGROUND] == pytest.approx(LAC["ice"], rel=0.02)
    assert m[SXTClass.CYTOPLASM] == pytest.approx(LAC["cytoplasm"], rel=0.02)
    assert m[SXTClass.LIPID_DROPLET] > max(m[SXTClass.NUCLEOLUS], m[SXTClass.MITOCHONDRION])
    assert min(m[SXTClass.NUCLEOLUS], m[SXTClass.MITOCHONDRION]) > m[SXTClass.NUCLEUS]
    assert m[SXTClass.NUCLEUS] > m[SXTClass.CYTOPLASM] > m[SXTClass.BACKGROUND]
    assert m[SXTClass.DMV] > m[SXTClass.CYTOPLASM]


def test_lac_ordering_with_noise_and_blur(default_phantom):
    image, classes, _, _, _ = default_phantom
    m = _class_medians(image, classes)
    assert m[SXTClass.LIPID_DROPLET] > max(m[SXTClass.NUCLEOLUS], m[SXTClass.MITOCHONDRION])
    assert min(m[SXTClass.NUCLEOLUS], m[SXTClass.MITOCHONDRION]) > m[SXTClass.CYTOPLASM]
    assert m[SXTClass.NUCLEUS] > m[SXTClass.CYTOPLASM] > m[SXTClass.BACKGROUND]
    assert m[SXTClass.DMV] > m[SXTClass.CYTOPLASM]
    # the noise is there, and grows with the signal
    ice = image[classes == SXTClass.BACKGROUND]
    lipid = image[ndimage.binary_erosion(classes == SXTClass.LIPID_DROPLET, iterations=3)]
    assert 0 < ice.std() < lipid.std()


def test_dmv_has_dense_membranes_around_a_lighter_lumen(clean_phantom, default_phantom):
    image, _ = clean_phantom
    table, v = default_phantom[3], default_phantom[4]
    dmv = _rows(table, SXTClass.DMV).sort_values("diameter_nm").iloc[-1]
    z, y, x = (int(round(dmv[f"centroid_{a}_nm"] / v)) for a in "zyx")
    profile = image[z, y, x - 8 : x + 9]
    centre = profile[8]
    assert LAC["dmv_lumen"] * 0.9 < centre < LAC["dmv_membrane"]
    assert profile.max() > centre + 0.03  # the rim is denser than the lumen


# ------------------------------------------------------------------ DMV geometry
def test_dmv_sizes_and_spacing(default_phantom):
    table = default_phantom[3]
    dmvs = _rows(table, SXTClass.DMV)
    assert dmvs["diameter_nm"].between(200, 400).all()
    centers = dmvs[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy()
    radii = dmvs["diameter_nm"].to_numpy() / 2
    distance = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    allowed = 0.9 * (radii[:, None] + radii[None])
    off_diagonal = ~np.eye(len(dmvs), dtype=bool)
    assert (distance[off_diagonal] >= allowed[off_diagonal]).all()


def test_some_dmvs_touch_and_the_flag_matches_the_voxels(default_phantom):
    _, _, instances, table, _ = default_phantom
    dmvs = _rows(table, SXTClass.DMV)
    dmv_ids = set(dmvs["instance_id"])
    touching_voxels = set()
    for a, b in _face_adjacent_pairs(instances):
        if a in dmv_ids and b in dmv_ids:
            touching_voxels |= {a, b}
    flagged = set(dmvs.loc[dmvs["touching"], "instance_id"])
    assert flagged == touching_voxels
    assert len(flagged) >= 0.1 * len(dmvs)
    assert len(flagged) < len(dmvs)  # most stand alone
    assert not table.loc[table["class_id"] != SXTClass.DMV, "touching"].any()


def test_dmvs_cluster_near_the_nucleus(default_phantom):
    _, classes, instances, table, v = default_phantom
    nucleus = np.isin(classes, [SXTClass.NUCLEUS, SXTClass.NUCLEOLUS])
    near = nucleus | (classes == SXTClass.DMV)
    box = ndimage.find_objects(near.astype(np.uint8))[0]
    distance = ndimage.distance_transform_edt(~nucleus[box], sampling=v)
    dmv_voxels = classes[box] == SXTClass.DMV
    assert distance[dmv_voxels].max() < 1500  # nm from the nuclear envelope
    assert distance[dmv_voxels].min() > v  # and never in it
    # on one side: DMV centroids fall within a cone around their mean direction
    nucleus_row = _rows(table, SXTClass.NUCLEUS).iloc[0]
    columns = ["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    directions = _rows(table, SXTClass.DMV)[columns].to_numpy() - nucleus_row[columns].to_numpy(float)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    mean = directions.mean(axis=0)
    mean /= np.linalg.norm(mean)
    assert (directions @ mean > math.cos(math.radians(100))).all()


def test_voxel_volumes_match_analytic_volumes(default_phantom):
    table = default_phantom[3]
    ratio = table["voxel_volume_um3"] / table["volume_um3"]
    unclipped = ~table["clipped"]
    dmv = (table["class_id"] == SXTClass.DMV) & unclipped
    assert ratio[dmv].between(0.75, 1.25).all()
    big = unclipped & (table["volume_um3"] > 0.05)
    assert ratio[big].between(0.95, 1.05).all()
    assert not table["clipped"].any()  # nothing reaches the border or cuts into another object


def test_centroids_follow_the_voxel_centre_convention(default_phantom):
    """Table centroids agree with center_of_mass * voxel size (voxel i centred at i * v)."""
    _, classes, instances, table, v = default_phantom
    body = {  # the whole body of the cell and the nucleus, objects inside included
        int(_rows(table, SXTClass.CYTOPLASM)["instance_id"].iloc[0]): classes > 0,
        int(_rows(table, SXTClass.NUCLEUS)["instance_id"].iloc[0]): np.isin(
            classes, [SXTClass.NUCLEUS, SXTClass.NUCLEOLUS]
        ),
    }
    slices = ndimage.find_objects(instances)
    columns = ["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    for row in table.itertuples():
        if row.instance_id in body:
            measured = np.array(ndimage.center_of_mass(body[row.instance_id])) * v
        else:
            box = slices[row.instance_id - 1]
            offset = np.array([s.start for s in box])
            measured = (np.array(ndimage.center_of_mass(instances[box] == row.instance_id)) + offset) * v
        expected = np.array([getattr(row, c) for c in columns])
        assert np.abs(measured - expected).max() < 0.5 * v, (row.instance_id, measured, expected)


def test_organelle_sizes(default_phantom):
    table = default_phantom[3]
    lipid = _rows(table, SXTClass.LIPID_DROPLET)
    assert lipid["diameter_nm"].between(300, 800).all()
    mito = _rows(table, SXTClass.MITOCHONDRION)
    assert len(mito) >= 5
    thickness = 2 * mito[["radius_z_nm", "radius_y_nm", "radius_x_nm"]].min(axis=1)
    assert thickness.between(250, 500).all()
    assert mito["length_nm"].between(1000, 3000 * 1.05).all()  # the bow lengthens the centre line a little
    half_length = mito[["radius_z_nm", "radius_y_nm", "radius_x_nm"]].max(axis=1)
    np.testing.assert_allclose(half_length, mito["length_nm"] / 2)
    # lipid droplets are the densest objects, so they are also the brightest in the image
    assert (lipid["volume_um3"] > 0).all()


def test_organelles_keep_their_physical_size_at_coarser_voxels():
    _, _, instances, table = make_infected_cell(SMALL, 60.0, seed=5, n_dmv=20, n_lipid_droplets=3)
    dmvs = _rows(table, SXTClass.DMV)
    assert len(dmvs) >= 10
    assert dmvs["diameter_nm"].between(200, 400).all()
    counts = np.bincount(instances.to_numpy().ravel())
    voxel_volume = counts[dmvs["instance_id"].to_numpy()] * 60.0**3 * 1e-9
    np.testing.assert_allclose(voxel_volume, dmvs["voxel_volume_um3"])
    assert 0.8 < voxel_volume.sum() / dmvs["volume_um3"].sum() < 1.2


def test_anisotropic_voxels_keep_physical_sizes():
    v = (60.0, 30.0, 30.0)
    image, classes, instances, table = make_infected_cell((32, 128, 128), v, seed=5, n_dmv=10)
    assert image.voxel_size == v and classes.voxel_size == v
    assert image.metadata["phantom"]["voxel_size_nm"] == list(v)
    dmvs = _rows(table, SXTClass.DMV)
    assert len(dmvs) >= 8
    counts = np.bincount(instances.to_numpy().ravel())
    voxel_volume = counts[dmvs["instance_id"].to_numpy()] * 60.0 * 30.0 * 30.0 * 1e-9
    np.testing.assert_allclose(voxel_volume, dmvs["voxel_volume_um3"])
    analytic = dmvs["volume_um3"].to_numpy()
    assert 0.9 < voxel_volume.sum() / analytic.sum() < 1.1
    assert np.all((voxel_volume / analytic > 0.6) & (voxel_volume / analytic < 1.4))
    # the cell's extent along z is physical: about its analytic diameter, in 60 nm steps
    cell = _rows(table, SXTClass.CYTOPLASM).iloc[0]
    z_voxels = np.nonzero((classes.to_numpy() > 0).any(axis=(1, 2)))[0]
    extent_nm = (z_voxels[-1] - z_voxels[0] + 1) * 60.0
    assert abs(extent_nm - 2 * cell["radius_z_nm"]) < 0.1 * 2 * cell["radius_z_nm"] + 120
    # centroids still follow the voxel-centre convention, axis by axis
    big = dmvs.sort_values("diameter_nm").iloc[-1]
    mask = instances.to_numpy() == big["instance_id"]
    measured = np.array(ndimage.center_of_mass(mask)) * v
    expected = big[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy(float)
    assert np.all(np.abs(measured - expected) < 0.5 * np.array(v))


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "shape",
    [(64, 64), (16, 64, 64), (64, 64, 31), (64.0, 64, 64), "abc", 64, (64, 64, 64, 64), (0, 64, 64)],
)
def test_bad_shape_raises_shape_error(shape):
    with pytest.raises(ShapeError):
        make_infected_cell(shape)


def test_volume_too_small_for_a_cell_raises_shape_error():
    with pytest.raises(ShapeError, match="µm"):
        make_infected_cell((32, 64, 64), voxel_size_nm=5.0)


@pytest.mark.parametrize(
    "voxel_size", [0, -30.0, float("nan"), float("inf"), "30", None, (30, 30), (30, -1, 30), (30, "30", 30)]
)
def test_bad_voxel_size_raises_voxel_size_error(voxel_size):
    with pytest.raises(VoxelSizeError):
        make_infected_cell((32, 64, 64), voxel_size_nm=voxel_size)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"noise": -0.1},
        {"blur": -1.0},
        {"noise": float("nan")},
        {"n_dmv": -1},
        {"n_dmv": 2.5},
        {"touching_fraction": 1.5},
        {"seed": -3},
        {"seed": "0"},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    from sxtseg.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        make_infected_cell((32, 64, 64), **kwargs)


def test_warns_when_asked_for_more_than_fits():
    with pytest.warns(UserWarning, match="n_lipid_droplets"):
        _, _, _, table = make_infected_cell(SMALL, n_dmv=0, n_mitochondria=0, n_lipid_droplets=500)
    assert 0 < len(_rows(table, SXTClass.LIPID_DROPLET)) < 500
    assert len(_rows(table, SXTClass.DMV)) == 0
