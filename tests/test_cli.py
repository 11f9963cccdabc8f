"""The ``sxtseg`` command: info, convert and phantom; bad input exits 2 with the file named."""

from __future__ import annotations

import json
import subprocess
import sys

import mrcfile
import numpy as np
import pandas as pd
import pytest

from sxtseg import open_volume
from sxtseg.cli import main


@pytest.fixture
def mrc_path(tmp_path, small_volume):
    path = tmp_path / "cell.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(small_volume)
        mrc.voxel_size = 300.0
    return path


def test_info_json(mrc_path, capsys):
    assert main(["info", str(mrc_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [12, 40, 56] and info["dtype"] == "float32"
    assert info["voxel_size"] == [30.0, 30.0, 30.0] and info["unit"] == "nm"
    assert info["reader"] == "mrc" and info["physical_shape"] == [360.0, 1200.0, 1680.0]


def test_convert_then_info(tmp_path, mrc_path, small_volume, capsys):
    out = tmp_path / "cell.ome.zarr"
    assert main(["convert", str(mrc_path), str(out), "--chunks", "8,32,32", "-q"]) == 0
    vol = open_volume(out)
    np.testing.assert_array_equal(vol.to_numpy(), small_volume)
    assert json.loads((out / "0" / ".zarray").read_text())["chunks"] == [8, 32, 32]
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ngff_version" in text and "0.4" in text


def test_convert_with_voxel_size_for_a_file_without_one(tmp_path, small_volume, capsys):
    np.save(tmp_path / "raw.npy", small_volume)
    out = tmp_path / "raw.ome.zarr"
    # without a voxel size the writer refuses, naming the fix
    assert main(["convert", str(tmp_path / "raw.npy"), str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "voxel size" in err and "--voxel-size" in err and not out.exists()
    assert main(["convert", str(tmp_path / "raw.npy"), str(out), "--voxel-size", "40,30,30", "-q"]) == 0
    assert open_volume(out).voxel_size == (40.0, 30.0, 30.0)


def test_existing_output_exit_2_then_overwrite(tmp_path, mrc_path, capsys):
    out = tmp_path / "cell.ome.zarr"
    assert main(["convert", str(mrc_path), str(out), "-q"]) == 0
    assert main(["convert", str(mrc_path), str(out), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", str(mrc_path), str(out), "-q", "--overwrite"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "missing.mrc"], "missing.mrc: no such file"),
        (["convert", "notes.txt", "out.ome.zarr"], "notes.txt: unknown file type"),
    ],
)
def test_bad_input_exits_2_naming_the_file(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sxtseg: error:") and message in err
    assert "Traceback" not in err


def test_console_script_runs(tmp_path, mrc_path):
    result = subprocess.run(
        [sys.executable, "-m", "sxtseg.cli", "info", str(mrc_path), "--json"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shape"] == [12, 40, 56]
    bad = subprocess.run([sys.executable, "-m", "sxtseg.cli", "info", str(tmp_path / "x.mrc")], capture_output=True, text=True)
    assert bad.returncode == 2 and "x.mrc" in bad.stderr


def test_bad_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "a.mrc", "b.ome.zarr", "--chunks", "0,-1"])
    assert exit_info.value.code == 2
    assert "positive integers" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".ome.zarr", ".tif", ".mrc"])
def test_phantom_writes_volume_and_ground_truth_table(tmp_path, capsys, suffix):
    out = tmp_path / f"cell{suffix}"
    assert main(["phantom", str(out), "--shape", "48,96,96", "--seed", "3", "-q"]) == 0
    vol = open_volume(out)
    assert vol.shape == (48, 96, 96) and vol.voxel_size == pytest.approx((30.0, 30.0, 30.0))
    table = pd.read_csv(tmp_path / "cell_objects.csv")
    assert {"instance_id", "class_name", "diameter_nm", "volume_um3"} <= set(table.columns)
    assert (table["class_name"] == "nucleus").sum() == 1
    if suffix == ".ome.zarr":
        classes = open_volume(out / "labels" / "classes").to_numpy()
        instances = open_volume(out / "labels" / "instances").to_numpy()
        assert set(np.unique(instances)) - {0} == set(table["instance_id"])
        assert classes.max() <= 6 and (classes == 2).any()
    # same seed, same phantom; an existing output is refused without --overwrite
    assert main(["phantom", str(out), "--shape", "48,96,96", "--seed", "3", "-q"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_phantom_bad_seed_exits_2(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "c.tif"), "--shape", "48,96,96", "--seed", "-1", "-q"]) == 2
    assert "seed" in capsys.readouterr().err


def _console_script() -> str:
    """The installed ``sxtseg`` script of this interpreter's environment (as the README installs it)."""
    import shutil
    from pathlib import Path

    script = shutil.which("sxtseg", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(f"no sxtseg console script beside {sys.executable}: install the project (pip install -e .)")
    return script


def test_console_script_exits_fast_with_everything_written(tmp_path, small_volume):
    """The console script (cli.command) ends with os._exit: exit codes, piped output and files are all there."""
    import tifffile

    out = tmp_path / "cell.ome.zarr"
    done = subprocess.run([_console_script(), "phantom", str(out), "--shape", "32,48,48", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert open_volume(out).shape == (32, 48, 48)
    assert len(pd.read_csv(tmp_path / "cell_objects.csv")) > 0
    tiff = tmp_path / "cell.tif"
    tifffile.imwrite(tiff, small_volume)
    done = subprocess.run([_console_script(), "info", str(tiff), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout)["shape"] == list(small_volume.shape)  # flushed
    missing = tmp_path / "missing.mrc"
    done = subprocess.run([_console_script(), "info", str(missing)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and str(missing) in done.stderr
