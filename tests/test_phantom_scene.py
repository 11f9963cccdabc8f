"""Tests of the phantom's scene options: decoy vesicles, fiducials, cut cells, no ice, capillary, neighbour."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sxtseg.classes import SXTClass
from sxtseg.errors import InvalidArgumentError
from sxtseg.phantom import LAC, make_infected_cell

SHAPE = (48, 160, 160)
V = 30.0
CLEAN = dict(noise=0, blur=0)
DECOYS = dict(n_lysosomes=4, n_multivesicular_bodies=2, n_vacuoles=2)


def _numpy(outputs):
    image, classes, instances, table = outputs
    return image.to_numpy(), classes.to_numpy(), instances.to_numpy(), table, image.metadata


def _face_adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)[:-1]
        b = np.moveaxis(labels, axis, 0)[1:]
        differ = a != b
        low = np.minimum(a[differ], b[differ]).astype(np.int64)
        high = np.maximum(a[differ], b[differ]).astype(np.int64)
        pairs |= set(zip(low.tolist(), high.tolist()))
    return pairs


def _consistent(classes: np.ndarray, instances: np.ndarray, table: pd.DataFrame) -> None:
    """Every table row has voxels, every instance a row, and each instance one class."""
    assert table["instance_id"].tolist() == list(range(1, len(table) + 1))
    counts = np.bincount(instances.ravel(), minlength=len(table) + 1)
    assert len(counts) == len(table) + 1 and (counts[1:] > 0).all()
    lookup = np.zeros(len(table) + 1, np.uint8)
    lookup[table["instance_id"].to_numpy()] = table["class_id"].to_numpy()
    np.testing.assert_array_equal(lookup[instances], classes)
    assert table["kind"].map(bool).all()


@pytest.fixture(scope="module")
def plain():
    return _numpy(make_infected_cell(SHAPE, V, seed=3, n_dmv=12, **CLEAN))


@pytest.fixture(scope="module")
def with_decoys():
    return _numpy(make_infected_cell(SHAPE, V, seed=3, n_dmv=12, **DECOYS, **CLEAN))


# ------------------------------------------------------------------ decoys
def test_decoys_have_their_class_kinds_and_sizes(with_decoys):
    image, classes, instances, table, metadata = with_decoys
    _consistent(classes, instances, table)
    decoys = table[table["class_id"] == SXTClass.OTHER_VESICLE]
    assert (decoys["class_name"] == "other_vesicle").all()
    assert decoys["kind"].value_counts().to_dict() == {"lysosome": 4, "mvb": 2, "vacuole": 2}
    assert metadata["phantom"]["placed"]["n_lysosomes"] == 4
    cell_id = int(table.loc[table["kind"] == "cell", "instance_id"].iloc[0])
    assert (decoys["parent_id"] == cell_id).all()
    ranges = {"lysosome": (200, 800), "mvb": (400, 800), "vacuole": (300, 1000)}
    for kind, (low, high) in ranges.items():
        assert decoys.loc[decoys["kind"] == kind, "diameter_nm"].between(low, high).all()
    ratio = decoys["voxel_volume_um3"] / decoys["volume_um3"]
    assert ratio.between(0.85, 1.15).all() and not decoys["clipped"].any()
    # the LAC of each kind in the noiseless image
    for row in decoys.itertuples():
        core = ndimage.binary_erosion(instances == row.instance_id, iterations=2)
        median = float(np.median(image[core]))
        if row.kind == "lysosome":
            assert 0.30 * 0.97 < median < 0.40 * 1.03
        elif row.kind == "vacuole":
            assert LAC["ice"] < median < 0.17 * 1.03 < LAC["cytoplasm"]
        else:  # a dense limiting membrane around a lighter lumen with small dense vesicles
            body = image[instances == row.instance_id]
            assert LAC["mvb_lumen"] * 0.9 < median < LAC["mvb_membrane"]
            assert body.max() > median + 0.05


def test_decoys_never_touch_dmvs_and_leave_them_unchanged(plain, with_decoys):
    _, plain_classes, plain_instances, plain_table, _ = plain
    image, classes, instances, table, _ = with_decoys
    # the first rows (cell, nucleus, organelles, DMVs) are the same objects with the same ids
    columns = [c for c in plain_table.columns if c != "voxel_volume_um3"]
    pd.testing.assert_frame_equal(table.iloc[: len(plain_table)][columns], plain_table[columns])
    dmv = classes == SXTClass.DMV
    np.testing.assert_array_equal(dmv, plain_classes == SXTClass.DMV)
    np.testing.assert_array_equal(np.where(dmv, instances, 0), np.where(dmv, plain_instances, 0))
    dmvs = table[table["class_id"] == SXTClass.DMV]
    decoys = table[table["class_id"] == SXTClass.OTHER_VESICLE]
    dmv_ids, decoy_ids = set(dmvs["instance_id"]), set(decoys["instance_id"])
    for a, b in _face_adjacent_pairs(instances):
        assert not ({a, b} & dmv_ids and {a, b} & decoy_ids), (a, b)
    columns = ["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    gap = np.linalg.norm(decoys[columns].to_numpy()[:, None] - dmvs[columns].to_numpy()[None], axis=-1)
    gap -= decoys["diameter_nm"].to_numpy()[:, None] / 2 + dmvs["diameter_nm"].to_numpy()[None] / 2
    assert gap.min() >= 2 * V - 1e-6
    # some decoys sit among the DMVs, in the factory
    assert (gap.min(axis=1) < 500).sum() >= 2


# ------------------------------------------------------------------ fiducials
def test_fiducials_are_gold_beads_in_the_ice_and_on_the_cell():
    outputs = make_infected_cell(SHAPE, V, seed=1, n_dmv=5, n_fiducials=8, **CLEAN)
    image, classes, instances, table, _ = _numpy(outputs)
    _consistent(classes, instances, table)
    beads = table[table["class_id"] == SXTClass.FIDUCIAL]
    assert len(beads) == 8 and (beads["kind"] == "fiducial").all() and (beads["class_name"] == "fiducial").all()
    assert (beads["parent_id"] == 0).all()
    assert beads["diameter_nm"].between(100, 250).all()
    cell_id = int(table.loc[table["kind"] == "cell", "instance_id"].iloc[0])
    on_cell = 0
    for bead in beads.itertuples():
        mask = instances == bead.instance_id
        centre = tuple(int(round(getattr(bead, f"centroid_{a}_nm") / V)) for a in "zyx")
        assert classes[centre] == SXTClass.FIDUCIAL
        assert image[centre] > 0.5 * LAC["gold"]  # about 100 times the ice
        around = instances[ndimage.binary_dilation(mask) & ~mask]
        assert set(np.unique(around).tolist()) <= {0, cell_id}
        on_cell += cell_id in around
    assert on_cell == 8 // 4
    assert image[classes == SXTClass.FIDUCIAL].mean() > 20 * image[classes == SXTClass.CYTOPLASM].mean()


# ------------------------------------------------------------------ field of view
@pytest.mark.parametrize("seed", [2, 3])
def test_cut_by_field_of_view_reaches_past_the_recorded_borders(seed):
    _, classes, instances, table, metadata = _numpy(
        make_infected_cell(SHAPE, V, seed=seed, n_dmv=10, cut_by_field_of_view=True, **CLEAN)
    )
    _consistent(classes, instances, table)
    faces = {"y-": classes[:, 0], "y+": classes[:, -1], "x-": classes[:, :, 0], "x+": classes[:, :, -1]}
    cut = metadata["phantom"]["cut_faces"]
    assert 1 <= len(cut) <= 2
    for name, face in faces.items():
        if name in cut:  # the cell runs into the border: no ice between them there
            assert (face > 0).mean() > 0.02
        else:
            assert (face == SXTClass.BACKGROUND).all()
    assert (classes[0] == 0).all() and (classes[-1] == 0).all()
    cell = table[table["kind"] == "cell"].iloc[0]
    assert cell["clipped"] and cell["voxel_volume_um3"] < 0.97 * cell["volume_um3"]
    assert not table.loc[table["kind"] != "cell", "clipped"].any()  # organelles lie inside the volume


def test_without_ice_the_cell_fills_the_field_of_view():
    _, classes, instances, table, _ = _numpy(make_infected_cell(SHAPE, V, seed=4, n_dmv=10, ice=False, **CLEAN))
    _consistent(classes, instances, table)
    assert (classes != SXTClass.BACKGROUND).all() and (instances != 0).all()  # not a single background voxel
    assert table.loc[table["kind"] == "cell", "clipped"].item()
    assert not table.loc[table["kind"] != "cell", "clipped"].any()
    assert (table["kind"] == "dmv").sum() == 10


def test_capillary_wall_is_bright_background_clear_of_the_cell():
    outputs = make_infected_cell(SHAPE, V, seed=2, n_dmv=5, capillary=True, **CLEAN)
    image, classes, instances, table, metadata = _numpy(outputs)
    wall_record = metadata["phantom"]["capillary_wall"]
    wall = image > 0.5 * LAC["glass"]
    assert wall.sum() == wall_record["voxels"] > 0
    assert (classes[wall] == SXTClass.BACKGROUND).all() and (instances[wall] == 0).all()
    assert np.median(image[wall]) == pytest.approx(LAC["glass"], rel=0.05)
    assert not (ndimage.binary_dilation(wall, iterations=2) & (classes > 0)).any()  # clear of the cell
    np.testing.assert_array_equal(wall[:, 0], wall[:, -1])  # a band along y, the same in every y slice
    x = np.nonzero(wall[:, 0])[1]
    assert np.all((x < 0.25 * SHAPE[2]) | (x > 0.75 * SHAPE[2]))  # near an x border
    assert len(table) == len(_numpy(make_infected_cell(SHAPE, V, seed=2, n_dmv=5, **CLEAN))[3])  # no row


def test_neighbour_cell_enters_from_a_corner_with_its_own_row():
    outputs = make_infected_cell(SHAPE, V, seed=5, n_dmv=5, neighbour_cell=True, **CLEAN)
    _, classes, instances, table, _ = _numpy(outputs)
    _consistent(classes, instances, table)
    neighbour = table[table["kind"] == "neighbour_cell"]
    assert len(neighbour) == 1
    row = neighbour.iloc[0]
    assert row["instance_id"] == len(table) and row["class_id"] == SXTClass.CYTOPLASM and row["parent_id"] == 0
    assert row["clipped"] and (table["parent_id"] == row["instance_id"]).sum() == 0  # no nucleus, nothing inside
    mask = instances == row["instance_id"]
    assert mask.sum() > 0.01 * mask.size
    assert mask[:, 0].any() or mask[:, -1].any()
    assert mask[:, :, 0].any() or mask[:, :, -1].any()
    pairs = _face_adjacent_pairs(instances)
    assert all(row["instance_id"] not in pair for pair in pairs if 0 not in pair)  # it touches only ice


def test_everything_at_once_stays_consistent_and_seeded():
    kwargs = dict(n_dmv=12, **DECOYS, n_fiducials=4, cut_by_field_of_view=True, capillary=True, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a decoy may not fit
        first = _numpy(make_infected_cell(SHAPE, V, **kwargs))
        again = _numpy(make_infected_cell(SHAPE, V, **kwargs))
    _consistent(first[1], first[2], first[3])
    for a, b in zip(first[:3], again[:3]):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(first[3], again[3])
    assert {"cell", "nucleus", "dmv", "lysosome", "fiducial"} <= set(first[3]["kind"])


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_lysosomes": -1}, "n_lysosomes"),
        ({"n_multivesicular_bodies": 1.5}, "n_multivesicular_bodies"),
        ({"n_vacuoles": None}, "n_vacuoles"),
        ({"n_fiducials": True}, "n_fiducials"),
        ({"cut_by_field_of_view": 1}, "cut_by_field_of_view"),
        ({"capillary": "yes"}, "capillary"),
        ({"neighbour_cell": None}, "neighbour_cell"),
        ({"ice": 0}, "ice"),
        ({"ice": False, "n_fiducials": 2}, "n_fiducials"),
        ({"ice": False, "capillary": True}, "capillary"),
    ],
)
def test_bad_scene_options_raise_invalid_argument_error_naming_them(kwargs, name):
    with pytest.raises(InvalidArgumentError, match=name):
        make_infected_cell((32, 64, 64), **kwargs)


def test_a_capillary_around_a_neighbour_cell_says_where_it_went():
    with pytest.warns(UserWarning, match="capillary wall"):
        _, classes, _, table, metadata = _numpy(
            make_infected_cell(SHAPE, V, seed=1, n_dmv=5, capillary=True, neighbour_cell=True, **CLEAN)
        )
    assert metadata["phantom"]["capillary_wall"]["voxels"] == 0
    assert (table["kind"] == "neighbour_cell").sum() == 1


def test_warns_when_decoys_do_not_fit():
    with pytest.warns(UserWarning, match="n_vacuoles"):
        _, _, _, table = make_infected_cell((32, 64, 64), seed=1, n_vacuoles=50)
    assert 0 <= (table["kind"] == "vacuole").sum() < 50
