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


def _example(name: str):
    """The example script ``examples/NAME.py`` as a module (its siblings importable, as when it runs)."""
    import importlib.util

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _training_script():
    return _example("train_default_model")


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


def _dmv_check_script():
    return _example("train_dmv_check")


def test_dmv_check_script_threshold_keeps_the_asked_share_of_dmvs():
    import numpy as np

    script = _dmv_check_script()
    p = np.array([0.05, 0.15, 0.3, 0.6, 0.9, 0.95, 0.1, 0.2, 0.7, 0.02])
    truth = np.array([False, True, True, True, True, True, False, False, False, False])
    threshold = script.choose_threshold(p, truth, keep=0.8)
    assert threshold == 0.3  # keeps 4 of the 5 DMVs (0.3 and up); 0.31 would keep 3
    record = script.report(p, truth, threshold)
    assert record["dmvs_kept"] == 0.8 and record["precision_before"] == 0.5
    assert record["precision_after"] == round(4 / 5, 4) and record["look_alikes_removed"] == 0.8


def test_dmv_check_script_examples_are_the_run_objects_with_their_truth(tmp_path):
    """One training cell (a validation seed): one crop per DMV-class object that run() found, each
    centred on its object, labelled by the phantom's truth."""
    import numpy as np

    crops, rows = _dmv_check_script().examples(8400)
    assert len(crops) == len(rows) >= 5
    assert crops.shape[1:] == (2, 32, 32, 32)
    assert np.all(crops[:, 1, 16, 16, 16] > 0.5)  # each object's own mask at the crop's centre
    assert 0.3 < rows["true"].mean() < 1.0  # this cell holds lysosomes: some look-alikes among them
    assert set(rows.loc[~rows["true"], "truth_class"]) <= {0, 1, 2, 3, 4, 5, 7, 8}
