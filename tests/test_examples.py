"""The example scripts run as a user would run them."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_convert_and_inspect_example(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "convert_and_inspect.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "DMVs" in result.stdout and "2 levels; level 1 is (32, 160, 160)" in result.stdout


def _training_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_default_model", EXAMPLES / "train_default_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_coarse_cells_come_from_the_coarse_grid_with_fine_labels():
    import numpy as np

    from sxtseg import make_infected_cell

    script = _training_script()
    image, labels = script.coarse_phantom(np.random.default_rng(0), (60.0, 60.0, 60.0), seed=5)
    assert image.shape == labels.shape == script.COARSE_FINE_SHAPE
    assert tuple(image.voxel_size) == tuple(labels.voxel_size) == (30.0, 30.0, 30.0)
    scene = script.random_scene(np.random.default_rng(0))  # the first draws of the same stream
    drawn, truth, _, _ = make_infected_cell(script.COARSE_FINE_SHAPE, voxel_size_nm=30.0, seed=5, **scene)
    assert np.array_equal(labels.to_numpy(), truth.to_numpy())  # the scene's 30 nm truth

    def nyquist(a):  # the mean size of each x row's component at the 30 nm grid's highest frequency
        return float(np.abs((a * (-1.0) ** np.arange(a.shape[2])).sum(axis=2)).mean())

    # linear interpolation from a grid twice as coarse leaves nothing at that frequency (the
    # alternating sum of each row telescopes to its two ends); a cell drawn at 30 nm has noise there
    assert nyquist(image.to_numpy()) < 0.15 * nyquist(drawn.to_numpy())  # 0.07 here; 0.26 from 45 nm


def test_training_script_decoy_cells_hold_more_decoy_than_dmv_voxels():
    import numpy as np

    from sxtseg import SXTClass

    image, classes = _training_script().decoy_phantom(np.random.default_rng(0), (64, 192, 192), seed=5)
    assert image.shape == classes.shape == (64, 192, 192)
    counts = np.bincount(classes.to_numpy().ravel(), minlength=9)
    assert counts[SXTClass.OTHER_VESICLE] > counts[SXTClass.DMV] > 0  # 16-32 lysosomes, 2-6 MVBs
