"""Physical checks of segmented objects (sxtseg.object_checks) and their place in sxtseg.run."""

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import sxtseg
from sxtseg import SXTClass, Volume
from sxtseg.object_checks import FIDUCIAL_MIN_LAC, apply_changes, object_changes


def _table(**columns):
    n = len(columns["label"])
    base = {"class_id": [6] * n, "intensity_mean": [0.3] * n,
            "centroid_z_nm": np.zeros(n), "centroid_y_nm": np.arange(n) * 100.0, "centroid_x_nm": np.zeros(n)}
    return pd.DataFrame({**base, **columns})


def test_dense_organelles_become_fiducials_compartments_never():
    table = _table(label=[1, 2, 3, 4, 5, 6], class_id=[5, 5, 4, 2, 1, 8],
                   intensity_mean=[0.70, 1.01, 3.0, 5.0, 5.0, 6.0])
    changes, record = object_changes(table, lac=True)
    # a lipid droplet at 0.70 stays; 1.01 and a mitochondrion at 3.0 are beads; nucleus and cytoplasm
    # are compartments (never beads); a fiducial stays a fiducial (no change recorded)
    assert changes == {2: SXTClass.FIDUCIAL, 3: SXTClass.FIDUCIAL}
    assert record["to_fiducial"] == 2 and record["fiducial_min_lac_1_per_um"] == FIDUCIAL_MIN_LAC
    assert record["skipped"] == {}


def test_fiducial_check_needs_lac():
    table = _table(label=[1], class_id=[5], intensity_mean=[4000.0])  # raw uint16 grey values
    changes, record = object_changes(table, lac=False)
    assert changes == {}
    assert record["to_fiducial"] == 0
    assert "not calibrated" in record["skipped"]["fiducial"]


def test_fiducial_check_turned_off():
    table = _table(label=[1, 2], class_id=[5, 4], intensity_mean=[5.0, 3.0])
    changes, record = object_changes(table, lac=True, fiducial_min_lac=None)
    assert changes == {}
    assert record["skipped"] == {"fiducial": "turned off"}


def test_fiducial_threshold_is_a_parameter():
    table = _table(label=[1, 2], class_id=[5, 5], intensity_mean=[0.9, 1.6])
    assert object_changes(table, lac=True, fiducial_min_lac=0.8)[0] == {1: SXTClass.FIDUCIAL, 2: SXTClass.FIDUCIAL}
    assert object_changes(table, lac=True, fiducial_min_lac=2.0)[0] == {}


def _scene():
    classes = np.zeros((6, 8, 10), np.uint8)
    instances = np.zeros((6, 8, 10), np.uint32)
    classes[:] = SXTClass.CYTOPLASM
    instances[:] = 1
    classes[1:3, 1:3, 1:3], instances[1:3, 1:3, 1:3] = SXTClass.LIPID_DROPLET, 2
    classes[3:5, 4:7, 6:9], instances[3:5, 4:7, 6:9] = SXTClass.DMV, 3
    classes[0:2, 5:8, 0:2], instances[0:2, 5:8, 0:2] = SXTClass.DMV, 4
    return classes, instances


@pytest.mark.parametrize("lazy", [False, True])
def test_apply_changes_recodes_whole_objects(lazy):
    classes, instances = _scene()
    before = classes.copy()
    c = Volume(classes, voxel_size=30.0)
    i = Volume(instances, voxel_size=30.0)
    if lazy:  # block by block, chunks that cut through the objects
        c = c.with_data(da.from_array(classes, chunks=(3, 4, 5)))
        i = i.with_data(da.from_array(instances, chunks=(2, 3, 4)))
    table = sxtseg.measure(i, None, c)
    new_classes, new_table = apply_changes(c, i, table, {2: SXTClass.FIDUCIAL, 3: SXTClass.OTHER_VESICLE})
    out = new_classes.to_numpy()
    expected = before.copy()
    expected[instances == 2] = SXTClass.FIDUCIAL
    expected[instances == 3] = SXTClass.OTHER_VESICLE
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(classes, before)  # the input is not modified
    assert new_table.set_index("label")["class_id"].to_dict() == {
        1: SXTClass.CYTOPLASM, 2: SXTClass.FIDUCIAL, 3: SXTClass.OTHER_VESICLE, 4: SXTClass.DMV}
    # the two DMVs were each other's nearest DMV; now DMV 4 is alone in its class
    assert np.isfinite(table.set_index("label").loc[4, "nearest_neighbour_nm"])
    assert np.isnan(new_table.set_index("label").loc[4, "nearest_neighbour_nm"])
    assert table.set_index("label").loc[3, "class_id"] == SXTClass.DMV  # the input table is not modified


@pytest.mark.parametrize("model", ["plain", "default"])
def test_run_counts_gold_beads_as_fiducials_not_lipid_droplets(tmp_path, model):
    """The plain model calls gold beads lipid droplets, and run() must count them as fiducials; the
    default model has a fiducial class, and the check must not undo it."""
    image, classes, instances, objects = sxtseg.make_infected_cell((48, 160, 160), seed=7310, n_fiducials=8)
    volume = Volume(image.to_numpy(), voxel_size=image.voxel_size)  # as a file would come: no phantom metadata
    report = next(iter(sxtseg.run(volume, tmp_path / "out", model, progress=False, mirror=False)["samples"].values()))
    checks = report["instances"]["object_checks"]
    counts = {name: c["count"] for name, c in report["summary"]["classes"].items()}
    n_droplets = int((objects["class_name"] == "lipid_droplet").sum())
    if model == "plain":  # every fiducial is the check's work
        assert counts.get("fiducial", 0) == checks["to_fiducial"]
    assert abs(counts.get("lipid_droplet", 0) - n_droplets) <= 1  # without the check: + every bead found
    found = sxtseg.open_volume(tmp_path / "out" / "volume.ome.zarr" / "labels" / "instances").to_numpy()
    table = pd.read_csv(tmp_path / "out" / "objects.csv")
    class_of = table.set_index("label")["class_id"].to_dict()
    truth, true_ids = classes.to_numpy(), instances.to_numpy()
    # every bead that the network made into an organelle object is called a fiducial (seed 7310: 6 of its
    # 8 beads; the smallest two, 105-134 nm, went into the cytoplasm or into nothing, which no object check sees)
    organelle_beads = 0
    for bead in objects.loc[objects["class_name"] == "fiducial", "instance_id"]:
        labels, voxels = np.unique(found[true_ids == bead], return_counts=True)
        label = int(labels[np.argmax(voxels)])
        if label and class_of[label] not in (SXTClass.CYTOPLASM, SXTClass.NUCLEUS, SXTClass.NUCLEOLUS):
            organelle_beads += 1
            assert class_of[label] == SXTClass.FIDUCIAL, f"bead {bead} is object {label}, class {class_of[label]}"
    assert organelle_beads >= 5
    assert checks["to_fiducial"] >= organelle_beads if model == "plain" else counts["fiducial"] >= organelle_beads
    # every object called a fiducial lies mostly on a true bead (or its blurred halo in the ice)
    near_bead = np.zeros_like(truth, bool)
    for z, y, x in np.argwhere(truth == SXTClass.FIDUCIAL)[::7]:
        near_bead[max(z - 4, 0):z + 5, max(y - 4, 0):y + 5, max(x - 4, 0):x + 5] = True
    for label in table.loc[table["class_id"] == SXTClass.FIDUCIAL, "label"]:
        assert near_bead[found == label].mean() > 0.9
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["instances"]["object_checks"] == checks
    stored = sxtseg.open_volume(tmp_path / "out" / "volume.ome.zarr" / "labels" / "classes").to_numpy()
    assert (stored == SXTClass.FIDUCIAL).sum() == table.loc[table["class_id"] == SXTClass.FIDUCIAL,
                                                             "voxel_count"].sum()


def test_cli_option_and_report_line(capsys):
    from sxtseg.cli import _instance_options, build_parser, print_quality

    parser = build_parser()
    args = parser.parse_args(["run", "in.mrc", "-o", "out"])
    assert _instance_options(args)["fiducial_min_lac"] == FIDUCIAL_MIN_LAC
    args = parser.parse_args(["run", "in.mrc", "-o", "out", "--fiducial-min-lac", "off"])
    assert _instance_options(args)["fiducial_min_lac"] is None
    args = parser.parse_args(["run", "in.mrc", "-o", "out", "--fiducial-min-lac", "2.5"])
    assert _instance_options(args)["fiducial_min_lac"] == 2.5
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run", "in.mrc", "-o", "out", "--fiducial-min-lac", "dense"])
    assert exit_info.value.code == 2
    assert "number or 'off'" in capsys.readouterr().err
    report = {"calibration": {"method": "identity", "input_kind": "lac"}, "quality": [],
              "instances": {"object_checks": {"fiducial_min_lac_1_per_um": 1.0, "to_fiducial": 3, "skipped": {}}}}
    print_quality("cell", report)
    assert "cell: object checks: 3 objects with a mean LAC above 1 1/um counted as gold fiducials" in \
        capsys.readouterr().out
