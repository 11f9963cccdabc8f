"""The benchmarks' --quick modes run and report what docs/benchmarks.md quotes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str, env: dict | None = None) -> dict:
    result = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], capture_output=True, text=True,
                            timeout=600, env=None if env is None else {**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_bench_io_quick(tmp_path):
    record = _run("bench_io.py", "--repeats", "1", "--workdir", str(tmp_path))
    assert len(record["sizes"]) == 2
    for size in record["sizes"]:
        for method in ("sxtseg", "sxtseg_level0", "plain"):
            assert size[method]["median_seconds"] > 0 and size[method]["median_peak_rss_bytes"] > 0
            assert size[method]["output_bytes"] > 0
        assert size["time_ratio_sxtseg_over_plain"] > 0
    assert record["machine"]["cores"] >= 1 and "zarr" in record["versions"]


@pytest.mark.slow
def test_bench_downsample_quick():
    record = _run("bench_downsample.py", "--repeats", "1")
    assert set(record["results"]) == {"mean_uint16", "mean_float32", "mode_uint8", "codec_uint16"}
    assert record["results"]["codec_uint16"]["compression_ratio_sxtseg_over_default"] > 0


@pytest.mark.slow
def test_bench_morphometrics_small():
    # the labellers the ratios below need and one table pair: each method is a child process of its own
    record = _run("bench_morphometrics.py", "--size", "64", "--repeats", "1", "--only", "label_sxtseg_1",
                  "label_sxtseg_all", "label_cc3d", "label_scipy", "label_skimage", "table_sxtseg", "table_skimage")
    assert set(record["inputs"]) == {"spheres", "noisy", "sparse", "classes"}
    for name, entry in record["inputs"].items():
        counts = {m: r["result"] for m, r in entry["results"].items() if m.startswith("label_")}
        assert len(counts) >= 4 and len(set(counts.values())) == 1, counts  # every labeller: the same objects
        assert "label_sxtseg_1/label_cc3d" in entry["time_ratios"]
    assert "table_sxtseg/table_skimage" in record["inputs"]["noisy"]["time_ratios"]
    assert "label_scipy" not in record["inputs"]["classes"]["results"]  # it sees one foreground, not classes
    assert record["inputs"]["sparse"]["foreground_fraction"] < 0.06 < record["inputs"]["spheres"]["foreground_fraction"]
    assert record["inputs"]["classes"]["dtype"] == "uint8" and record["inputs"]["classes"]["shape"] == [32, 64, 64]


@pytest.mark.slow
def test_bench_models_quick():
    # each case is measured in its own process: the three the ratios below need (monai_unet_default and
    # dlsia_msdnet go the same way through the same code)
    record = _run("bench_models.py", "--only", "sxtseg_msdnet", "cat_msdnet", "monai_unet_matched")
    cases = {case["method"]: case for case in record["cases"]}
    assert set(cases) == {"sxtseg_msdnet", "cat_msdnet", "monai_unet_matched"}
    for method in ("sxtseg_msdnet", "cat_msdnet", "monai_unet_matched"):
        for mode in ("forward", "train"):
            result = cases[method][mode]
            assert result["median_seconds"] > 0 and result["peak_rss_bytes"] >= 0 and result["voxels_per_second"] > 0
    # the same architecture on both sides of the ratio
    assert cases["sxtseg_msdnet"]["train"]["parameters"] == cases["cat_msdnet"]["train"]["parameters"]
    assert set(record["ratios"]["8/1"]["cat_msdnet"]) == {"forward_time", "forward_peak_rss", "train_time",
                                                          "train_peak_rss"}
    assert record["versions"]["torch"] and record["machine"]["cores"] >= 1


@pytest.mark.slow
def test_bench_sparse_training_quick():
    record = _run("bench_sparse_training.py")
    full, sparse = record["results"]["full"], record["results"]["sparse"]
    assert sparse["annotated_voxels"] < full["annotated_voxels"] / 5  # 5 of 32 slices annotated
    for result in (full, sparse):
        assert set(result["mean_dice"]) >= {"dmv", "nucleus", "background"}
    assert isinstance(record["target_met"], bool)


@pytest.mark.slow
def test_bench_pipeline_quick(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    record = _run("bench_pipeline.py", "--precision", "float32",  # bfloat16 flips near-ties of the untrained model
                  env={"TMPDIR": str(scratch)})
    assert list(scratch.iterdir()) == []  # its phantoms and outputs removed (they were left behind: 0.6 GiB a run)
    (entry,) = record["sizes"]
    assert entry["side"] == 64
    assert set(entry["sxtseg_pipeline"]["timings_s"]) == {"open", "calibrate", "segment", "instances", "measure", "write"}
    # the same network, normalisation and windows: the same segmentation, whichever way it is run, up to
    # float rounding (the tiny untrained model has near-ties between classes: on an AVX2 CPU one voxel in
    # 262,144 flipped); a wrong normalisation or window would move thousands
    difference = abs(entry["sxtseg_segment"]["dmv_voxels"] - entry["monai_whole"]["dmv_voxels"])
    assert entry["monai_whole"]["dmv_voxels"] > 1000 and difference <= 64**3 * 1e-4
    assert entry["throughput_ratio_sxtseg_over_monai"] > 0 and entry["peak_rss_ratio_sxtseg_over_monai"] > 0


@pytest.mark.slow
def test_bench_robustness_quick():
    record = _run("bench_robustness.py")
    rows = {row["condition"]: row for row in record["rows"]}
    assert set(rows) == {"as generated (30 nm)", "uint16 (40000 LAC + 2000)", "voxels 60 nm"}
    grey = rows["uint16 (40000 LAC + 2000)"]
    # auto calibration finds the grey-value map (1/40000 per grey level) to 3 %
    assert grey["calibration"]["method"] == "two-point" and abs(grey["calibration"]["scale"] * 40000 - 1) < 0.03
    for row in record["rows"]:
        assert 0 <= row["dice"]["nucleus"] <= 1 and row["dmv_objects"]["true"] > 0
        assert row["count_error"]["nucleus"] == 0, row  # one nucleus per cell


@pytest.mark.slow
def test_bench_coarse_compartments_quick():
    record = _run("bench_coarse_compartments.py")
    rows = {row["way"]: row for row in record["rows"]}
    assert set(rows) == {"none", "auto", "plain"}
    # a coarse cell with ice and no wedge: the rule takes the plain model's compartments, as forcing it does
    assert rows["none"]["compartments"] is None
    assert rows["auto"]["compartments"] == rows["plain"]["compartments"] == "plain"
    assert rows["auto"]["dice"]["nucleus"] == rows["plain"]["dice"]["nucleus"] > rows["none"]["dice"]["nucleus"]
    # forced by name, the other organelles stay the default model's; under the rule its DMVs take the plain
    # model's boundaries, and find every true DMV the default model alone found
    assert rows["plain"]["dice"]["dmv"] == rows["none"]["dice"]["dmv"]
    assert rows["auto"]["dmv_objects"]["matched"] >= rows["none"]["dmv_objects"]["matched"]
    assert all(row["count_error"]["nucleus"] == 0 for row in rows.values())


@pytest.mark.slow
@pytest.mark.parametrize("painted", [False, True])
def test_bench_finetune_quick(painted):
    record = _run("bench_finetune.py", *(["--painted"] if painted else []))
    assert record["path"] == ("napari widget action" if painted else "sxtseg.train.fit")
    assert len(record["annotated_slices"]) == 5 and 0 < record["annotated_fraction"] < 0.2
    assert set(record["dice_before"]) >= {"background", "dmv"} and set(record["dice_after"]) >= {"dmv"}
    assert record["dmv_dice_gain"] == pytest.approx(record["dice_after"]["dmv"] - record["dice_before"]["dmv"],
                                                    abs=1e-3)


@pytest.mark.slow
def test_bench_instance_defaults_quick():
    record = _run("bench_instance_defaults.py")
    assert len(record["rows"]) == 2  # one distance, two diameters
    small, large = record["rows"]
    assert small["true"] == large["true"] > 0
    assert large["found"] <= small["found"]  # a larger speck floor never finds more DMVs


def test_bench_ct_lungs_quick():
    record = _run("bench_ct_lungs.py")
    (phantom,) = record["phantoms"]
    assert phantom["seed"] == 10 and min(phantom["dice_right"], phantom["dice_left"]) > 0.97
    assert abs(phantom["ggo_volume_error_percent"]) < 5 and abs(phantom["consolidation_volume_error_percent"]) < 5


@pytest.mark.slow
def test_bench_catalog_quick():
    pytest.importorskip("django")
    record = _run("bench_catalog.py")
    sqlite = record["databases"]["sqlite"]
    assert sqlite["ingest"]["object_rows"] == 6000 and sqlite["ingest"]["rows_per_s"] > 0
    # every API answer was checked against the SQL the API runs
    assert sqlite["latency"]["checks"] == {"filtered_objects": True, "aggregate": True}
    modes = {(r["query"], r["mode"], r["clients"]) for r in sqlite["latency"]["results"]}
    assert {(q, m, c) for q in ("filtered_objects", "aggregate") for m in ("api", "sql") for c in (1, 16)} <= modes
    assert isinstance(record["targets"]["ingest_sqlite_rows_per_s_at_least_50000"]["target_met"], bool)


@pytest.mark.slow
def test_bench_catalog_server_floor_quick():
    pytest.importorskip("django")
    if shutil.which("pg_virtualenv") is None:
        message = "PostgreSQL (Debian postgresql + postgresql-common's pg_virtualenv) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    record = _run("bench_catalog.py", "--postgresql", "--databases", "postgresql", "--only-ingest", "--server-floor")
    ingest = record["databases"]["postgresql"]["ingest"]
    assert ingest["object_rows"] == 6000 and ingest["machine_busy_cpu_seconds"] > 0
    floor = ingest["server_floor"]["results"]  # each run checks the table holds the 6,000 rows again
    assert [r["connections"] for r in floor] == [1, 2, 4] and all(r["rows_per_s"] > 0 for r in floor)


@pytest.mark.slow
def test_bench_windows_quick():
    record = _run("bench_windows.py")
    (cell,) = record["cells"]
    reference, larger = cell["variants"]
    assert reference["window"] == record["model_patch"] and larger["window"] == [96, 96, 96]
    assert reference["batch"] == larger["batch"] == 4
    assert 0.9 < larger["agreement_with_reference"] < 1.0  # the same network: nearly, not exactly, the same
    assert larger["time_ratio_over_reference"] > 0 and set(larger["dice_change"]) == set(reference["dice"])
    assert reference["dice"]["cytoplasm"] > 0.8


@pytest.mark.slow
def test_bench_precision_quick():
    record = _run("bench_precision.py")
    entry = record["phantoms"]["quick"]
    assert record["auto_resolves_to"] in ("bfloat16", "float32")
    assert entry["agreement_with_float32"]["float32"] == 1.0
    # the shipped model on a held-out phantom: whatever the arithmetic, nearly every voxel in the same class
    assert entry["agreement_with_float32"]["auto"] > 0.995 and entry["agreement_with_monai"]["float32"] > 0.995
    assert set(entry["dice"]["auto"]) >= {"nucleus", "cytoplasm", "dmv"} and entry["dice"]["auto"]["nucleus"] > 0.8
    assert entry["throughput_over_monai"]["auto"] > 0
    # the calibration given rather than estimated in the call: the same record, so the same classes
    assert entry["agreement_with_float32"]["auto_given_calibration"] == entry["agreement_with_float32"]["auto"]


@pytest.mark.slow
def test_bench_boundary_sensitivity_quick():
    # the same truth, rasterised another valid way, agrees; displaced by a third of a voxel it agrees less,
    # and less again when displaced along every axis
    record = _run("bench_boundary_sensitivity.py")
    (row,) = record["rows"]
    assert row["voxel_nm"] == 60.0 and row["fine_shape"] == [48, 144, 144]
    for name in ("dmv", "nucleus"):
        majority, shift_x, shift_xyz = (row["dice"][k][name] for k in ("majority", "shift x", "shift xyz"))
        assert majority > 0.95 and shift_xyz < shift_x < majority


@pytest.mark.slow
def test_bench_argmax_quick():
    # every method's classes are checked equal to NumPy's inside the script (it fails otherwise)
    record = _run("bench_argmax.py")
    assert set(record["inputs"]) == {"logits", "random"}
    for entry in record["inputs"].values():
        assert entry["shape"][0] == 9 and entry["shape"][1:] == [64, 96, 96]  # the default model's 9 classes
        assert set(entry["seconds"]) == {"numpy", "torch", "sxtseg_1", "sxtseg"}
        assert all(v > 0 for v in entry["seconds"].values()) and entry["time_ratios"]["sxtseg/numpy"] > 0


@pytest.mark.slow
def test_bench_voxel_size_quick():
    record = _run("bench_voxel_size.py", "--old-blocks", "--mirror", "off")  # one pass per window: the quick way
    rows = {(r["voxel_nm"], r["model"], r["block_rule"]): r for r in record["rows"]}
    assert len(rows) == 6 and not any(r["mirror"] for r in record["rows"])
    # the default model segments at 30 nm: 40 nm volumes are upsampled 4/3, 30 nm ones are not
    assert rows[(40.0, "default", "default")]["zoom"] == pytest.approx([4 / 3] * 3)
    assert rows[(30.0, "default", "default")]["zoom"] is None
    # the plain model segments 30-40 nm volumes as they are
    plain_40 = rows[(40.0, "plain", "default")]
    assert plain_40["zoom"] is None and plain_40["shape"] == [32, 96, 96]
    for row in record["rows"]:
        assert row["seconds"] > 0 and row["peak_rss_gib"] > 0 and 0 <= row["dice_dmv"] <= 1


@pytest.mark.slow
def test_bench_thin_cells_quick():
    # a cell under 1 um thick is flagged, and the default model alone loses its nucleus; one of 2.4 um is neither
    record = _run("bench_thin_cells.py")
    thin, thick = (row["models"]["default/alone"] for row in record["rows"])
    assert [row["depth_slices"] for row in record["rows"]] == [32, 96] and record["thin_cell_um"] == 1.4
    assert thin["thickness_um"] < 1.0 < 2.0 < thick["thickness_um"]
    assert "thin_cell" in thin["flags"] and "thin_cell" not in thick["flags"]
    assert thin["dice_nucleus"] < 0.5 < thick["dice_nucleus"]
    # with its defaults segment() takes the thin cell's compartments from the plain model, which keeps more
    # of the nucleus, and leaves the thick cell alone
    thin_now, thick_now = (row["models"]["default"] for row in record["rows"])
    assert thin_now["compartments"] == "plain" and thick_now["compartments"] is None
    assert thin_now["dice_nucleus"] > thin["dice_nucleus"] + 0.15
    assert thick_now == {**thick, "seconds": thick_now["seconds"]}
    assert thin_now["dice_dmv"] == thin["dice_dmv"]


@pytest.mark.slow
def test_bench_wedge_calibration_quick():
    # a ±80° wedge: the rule before took the darkened ice beside the cell for ice (scale about 3) and the
    # model found neither nucleus nor DMVs; today's rule finds the true ice; without a wedge both agree
    record = _run("bench_wedge_calibration.py")
    plain, wedge = record["rows"]
    assert plain["before"] == plain["now"]
    assert wedge["before"]["scale"] > 2.5 and 1.2 < wedge["now"]["scale"] < 2.0
    assert wedge["now"]["dice_dmv"] > wedge["before"]["dice_dmv"] + 0.3
    assert wedge["wedge_detected"] and not plain["wedge_detected"]  # the missing_wedge flag's test


@pytest.mark.slow
def test_bench_dmv_check_quick():
    record = _run("bench_dmv_check.py")
    (cell,) = record["results"].values()
    assert cell["dmv_class_objects"] > 0 and cell["check_seconds"] > 0
    assert cell["check_over_measure_stage"] > 0 and cell["crops_dask_over_memory"] > 0
    assert len(record["dmv_check_sha256"]) == 64
