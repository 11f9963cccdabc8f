"""The DMV check (sxtseg.dmv_check): crops on a physical grid, its skip rules, its weights, its place in run()."""

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import sxtseg
from sxtseg import SXTClass, Volume
from sxtseg.dmv_check import (CROP_STEP_NM, CROP_VOXELS, DMV_CHECK_WEIGHTS, dmv_check_changes, dmv_probabilities,
                              load_dmv_check, object_crops)
from sxtseg.errors import InvalidArgumentError


def _ball_volume(voxel_nm: float, radius_nm: float = 150.0, side_nm: float = 1500.0, centre_nm=(700.0, 760.0, 820.0)):
    """One ball of LAC 0.35 in 0.22 (instance 1), and its objects-table row."""
    n = int(round(side_nm / voxel_nm))
    grid = (np.arange(n) + 0.5) * voxel_nm
    z, y, x = np.meshgrid(grid, grid, grid, indexing="ij")
    inside = (z - centre_nm[0]) ** 2 + (y - centre_nm[1]) ** 2 + (x - centre_nm[2]) ** 2 <= radius_nm ** 2
    lac = np.where(inside, 0.35, 0.22).astype(np.float32)
    ids = inside.astype(np.uint32)
    centroid = np.argwhere(inside).mean(axis=0)
    table = pd.DataFrame({"label": [1], "class_id": [int(SXTClass.DMV)], "centroid_z_vox": [centroid[0]],
                          "centroid_y_vox": [centroid[1]], "centroid_x_vox": [centroid[2]]})
    return Volume(lac, voxel_size=voxel_nm), Volume(ids, voxel_size=voxel_nm), table


def test_crops_sample_a_physical_grid_whatever_the_voxel_size():
    crops = {}
    for voxel in (20.0, 30.0, 40.0):
        lac, ids, table = _ball_volume(voxel)
        crops[voxel] = object_crops(lac, ids, table)
    for voxel, crop in crops.items():
        assert crop.shape == (1, 2, CROP_VOXELS, CROP_VOXELS, CROP_VOXELS)
        centre = CROP_VOXELS // 2
        assert crop[0, 1, centre, centre, centre] == pytest.approx(1.0)  # the object's mask at its centroid
        assert crop[0, 0, centre, centre, centre] == pytest.approx(0.35)
        assert crop[0, 1, 0, 0, 0] == 0 and crop[0, 0, 0, 0, 0] == pytest.approx(0.22)
        # the ball is 300 nm across: 10 points of 30 nm along each axis through its centre
        assert 8 <= (crop[0, 1, centre, centre] > 0.5).sum() <= 12
    # the same ball seen at 20 and 40 nm gives nearly the same crop (only partial volumes differ)
    assert np.abs(crops[20.0][0, 1] - crops[40.0][0, 1]).mean() < 0.05
    assert CROP_VOXELS * CROP_STEP_NM == 960


def test_crops_of_lazy_volumes_equal_in_memory_ones_and_reach_past_the_border():
    lac, ids, table = _ball_volume(30.0, centre_nm=(160.0, 760.0, 1380.0))  # 160 nm from the top
    lazy = object_crops(lac.with_data(da.from_array(lac.to_numpy(), chunks=16)),
                        ids.with_data(da.from_array(ids.to_numpy(), chunks=16)), table)
    np.testing.assert_array_equal(lazy, object_crops(lac, ids, table))
    assert lazy[0, 0, 0].min() == pytest.approx(0.22)  # past the border: the edge value
    assert lazy[0, 1, 0].max() == 0  # and no object


def _changes(**overrides):
    lac, ids, table = _ball_volume(30.0)
    _, check = load_dmv_check()
    options = {"calibrated": True, "model_sha256": check["segmentation_model_sha256"], **overrides}
    return dmv_check_changes(lac, ids, table, **options)


def test_check_skips_what_it_was_not_trained_for():
    changes, record = _changes(calibrated=False)
    assert changes == {} and record["skipped"] == "grey values not calibrated to LAC"
    changes, record = _changes(model_sha256="0" * 64)
    assert changes == {} and "another segmentation model" in record["skipped"]
    lac, ids, table = _ball_volume(60.0)
    _, check = load_dmv_check()
    changes, record = dmv_check_changes(lac, ids, table, calibrated=True,
                                        model_sha256=check["segmentation_model_sha256"])
    assert changes == {} and record["skipped"].startswith("voxels of 60, 60, 60 nm, outside its training range")
    changes, record = _changes()
    assert "skipped" not in record and record["checked"] == 1
    assert record["sha256"] == check["sha256"] and record["threshold"] == check["threshold"]


def test_a_file_that_is_not_a_check_is_refused_by_name(tmp_path):
    from sxtseg.errors import CorruptFileError

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(DMV_CHECK_WEIGHTS.read_bytes()[:5000])
    with pytest.raises(CorruptFileError, match="truncated.pt: not a DMV check checkpoint"):
        load_dmv_check(truncated)
    other = tmp_path / "segmentation.pt"
    other.write_bytes((DMV_CHECK_WEIGHTS.parent.parent / "plain.pt").read_bytes())  # a segmentation model
    with pytest.raises(CorruptFileError, match="segmentation.pt: not a DMV check checkpoint"):
        load_dmv_check(other)


def test_threshold_decides():
    _, low = _changes(threshold=1e-6)
    _, high = _changes(threshold=1 - 1e-6)
    assert low["to_other_vesicle"] == 0 and high["to_other_vesicle"] == 1


def test_plain_network_is_monais_classifier():
    """The check runs MONAI's Classifier rebuilt from torch.nn (no MONAI import at inference): same names and output."""
    import torch

    from sxtseg.dmv_check import NETWORK, check_network

    torch.manual_seed(0)
    monai_net = check_network(NETWORK, monai=True)
    plain = check_network(NETWORK)
    assert sorted(plain.state_dict()) == sorted(monai_net.state_dict())
    x = torch.randn(3, 2, CROP_VOXELS, CROP_VOXELS, CROP_VOXELS)
    monai_net.train()
    monai_net(x)  # moves the batch-norm statistics away from their initial values
    plain.load_state_dict(monai_net.state_dict())
    with torch.no_grad():
        expected = monai_net.eval()(x)
        assert expected.shape == (3, 1)
        torch.testing.assert_close(plain.eval()(x), expected, rtol=1e-5, atol=1e-5)
    loaded, _ = load_dmv_check()
    assert type(loaded).__module__ == "sxtseg.dmv_check"


def test_shipped_check_records_what_it_learnt_from():
    network, check = load_dmv_check()
    assert DMV_CHECK_WEIGHTS.stat().st_size < 5_000_000
    assert 0 < check["threshold"] < 1
    assert check["voxel_range_nm"] == [25.0, 40.0]
    assert check["lac_range_1_per_um"] == [0.1, 0.4]
    default = sxtseg.models.load_model("default").metadata["sha256"]
    assert check["segmentation_model_sha256"] == default
    training = check["training"]
    assert training["validation"]["dmvs_kept"] >= 0.97
    assert training["validation"]["precision_after"] > training["validation"]["precision_before"]
    assert sum(p.numel() for p in network.parameters()) < 1_000_000


def test_shipped_check_tells_lysosomes_from_dmvs_on_an_unseen_cell():
    """Crops about the true objects of a phantom cell with lysosomes (seed 7320, outside the check's
    training and validation seeds): most DMVs pass, most DMV-sized lysosomes do not."""
    image, classes, instances, objects = sxtseg.make_infected_cell((64, 192, 192), seed=7320, n_lysosomes=16)
    table = sxtseg.measure(instances, image, classes)
    kind = objects.set_index("instance_id")["class_name"]
    size = table.set_index("label")["equivalent_diameter_nm"]
    dmvs = [label for label in table["label"] if kind.get(label) == "dmv"]
    lysosomes = [label for label in table["label"] if kind.get(label) == "other_vesicle" and size[label] < 450]
    assert len(dmvs) >= 8 and len(lysosomes) >= 4
    network, check = load_dmv_check()
    p = dmv_probabilities(network, object_crops(image, instances, table, dmvs + lysosomes))
    passed = p >= check["threshold"]
    assert passed[:len(dmvs)].mean() >= 0.9
    assert passed[len(dmvs):].mean() <= 0.5


def test_run_records_the_check_and_recodes_the_objects(tmp_path):
    image, classes, _, objects = sxtseg.make_infected_cell((48, 160, 160), seed=7321, n_lysosomes=12)
    volume = Volume(image.to_numpy(), voxel_size=image.voxel_size)
    out = tmp_path / "out"
    report = next(iter(sxtseg.run(volume, out, "default", progress=False, mirror=False)["samples"].values()))
    dmv = report["instances"]["object_checks"]["dmv"]
    assert "skipped" not in dmv and dmv["checked"] >= 1
    table = pd.read_csv(out / "objects.csv")
    assert dmv["checked"] == (table["class_id"] == SXTClass.DMV).sum() + dmv["to_other_vesicle"]
    assert json.loads((out / "summary.json").read_text())["instances"]["object_checks"]["dmv"] == dmv
    # the check's weights are part of what a resumed run compares (as the model's are)
    assert json.loads((out / "run.json").read_text())["parameters"]["dmv_check_sha256"] == dmv["sha256"]
    stored = sxtseg.open_volume(out / "volume.ome.zarr" / "labels" / "classes").to_numpy()
    ids = sxtseg.open_volume(out / "volume.ome.zarr" / "labels" / "instances").to_numpy()
    vesicles = table[table["class_id"].isin([SXTClass.DMV, SXTClass.OTHER_VESICLE])]
    for label, code in zip(vesicles["label"], vesicles["class_id"]):  # whole objects recoded, in the volume too
        assert np.all(stored[ids == label] == code)
    off = next(iter(sxtseg.run(volume, tmp_path / "off", "default", progress=False, mirror=False,
                               dmv_check=False)["samples"].values()))
    assert off["instances"]["object_checks"]["dmv"] == {"skipped": "turned off"}
    assert "dmv_check_sha256" not in json.loads((tmp_path / "off" / "run.json").read_text())["parameters"]
    counts = {name: c["count"] for name, c in off["summary"]["classes"].items()}
    assert counts["dmv"] == dmv["checked"]
    with pytest.raises(InvalidArgumentError, match="dmv_check"):
        sxtseg.run(volume, tmp_path / "bad", "default", progress=False, dmv_check=2.0)


def test_cli_option_and_report_line(capsys):
    from sxtseg.cli import _instance_options, build_parser, print_quality

    parser = build_parser()
    assert _instance_options(parser.parse_args(["run", "in.mrc", "-o", "out"]))["dmv_check"] is True
    assert _instance_options(parser.parse_args(["run", "in.mrc", "-o", "out", "--dmv-check", "off"]))[
        "dmv_check"] is False
    assert _instance_options(parser.parse_args(["run", "in.mrc", "-o", "out", "--dmv-check", "0.3"]))[
        "dmv_check"] == 0.3
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run", "in.mrc", "-o", "out", "--dmv-check", "1.5"])
    assert exit_info.value.code == 2
    assert "threshold in (0, 1)" in capsys.readouterr().err
    report = {"calibration": {"method": "identity", "input_kind": "lac"}, "quality": [],
              "instances": {"object_checks": {"fiducial_min_lac_1_per_um": 1.0, "to_fiducial": 0, "skipped": {},
                                              "dmv": {"checked": 20, "to_other_vesicle": 6}}}}
    print_quality("cell", report)
    assert "cell: object checks: 6 of 20 DMV-class objects look like other vesicles" in capsys.readouterr().out
    report["instances"]["object_checks"]["dmv"] = {"skipped": "voxels of 60, 60, 60 nm, outside its training range"}
    print_quality("cell", report)
    assert "DMV check skipped (voxels of 60, 60, 60 nm" in capsys.readouterr().out
    report["instances"]["object_checks"]["dmv"] = {"skipped": "turned off"}
    print_quality("cell", report)
    assert "DMV check" not in capsys.readouterr().out  # the user asked for it


def test_decoy_rich_cell_counts_most_lysosomes_no_longer_as_dmvs(tmp_path):
    """The issue asks for a decoy-rich cell's DMV count within 10% of the truth; the check gets part of the way.
    Seed 7322 (12 lysosomes, 4 MVBs, 4 vacuoles, 13 DMVs), the first of three test seeds looked at: 24 DMVs
    without the check, 17 with it (7323 and 7324: 24 -> 14 for 12, 25 -> 14 for 13)."""
    image, _, _, objects = sxtseg.make_infected_cell((64, 192, 192), seed=7322, n_lysosomes=12,
                                                     n_multivesicular_bodies=4, n_vacuoles=4)
    volume = Volume(image.to_numpy(), voxel_size=image.voxel_size)
    true = int((objects["class_name"] == "dmv").sum())
    counts = {}
    for check in (True, False):
        report = next(iter(sxtseg.run(volume, tmp_path / str(check), "default", progress=False,
                                      dmv_check=check)["samples"].values()))
        counts[check] = report["summary"]["classes"]["dmv"]["count"]
    assert counts[False] - true >= 5  # the decoys counted as DMVs without it
    assert true - 1 <= counts[True] <= true + 0.4 * (counts[False] - true)
