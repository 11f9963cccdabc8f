"""The main job: block-wise segmentation (resumable, equal to whole-volume), run(), batch mode, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import zarr

from sxtseg import Volume, make_infected_cell, open_volume
from sxtseg.cli import main
from sxtseg.errors import OutputExistsError, ShapeError
from sxtseg.pipeline import run
from sxtseg import segment

from conftest import make_tiny_model

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained small U-Net checkpoint: enough to test the mechanics, not the accuracy."""
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def cell():
    image, classes, _, objects = make_infected_cell((32, 64, 64), seed=21, n_dmv=4)
    return image.compute(), classes.compute(), objects


def test_blocked_inference_matches_whole_volume_away_from_the_border(tiny_model, cell, tmp_path):
    image, _, _ = cell
    whole = segment(image, tiny_model, output=tmp_path / "whole.zarr", block_shape=(32, 64, 64), probabilities=True,
                    progress=False)
    blocked = segment(image, tiny_model, output=tmp_path / "blocked.zarr", block_shape=(16, 32, 32),
                      halo=(8, 16, 16), probabilities=True, progress=False)
    p_whole = zarr.open_array(tmp_path / "whole.zarr" / "probabilities")[:].astype(np.float32)
    p_blocked = zarr.open_array(tmp_path / "blocked.zarr" / "probabilities")[:].astype(np.float32)
    inner = (slice(None), slice(4, -4), slice(8, -8), slice(8, -8))
    diff = np.abs(p_whole[inner] - p_blocked[inner])
    agree = (whole.to_numpy() == blocked.to_numpy())[inner[1:]].mean()
    # windows fall at other places in a block than in the whole volume; an untrained network's outputs
    # depend on where its window borders lie, so the tolerance is on the bulk, not every voxel
    assert diff.mean() < 0.01 and np.percentile(diff, 99) < 0.05, (diff.mean(), np.percentile(diff, 99))
    assert agree > 0.8, agree  # near-equal probabilities of an untrained net: see the default model's test


def test_resume_after_an_interruption_gives_identical_output(tiny_model, cell, tmp_path, monkeypatch):
    import sxtseg.infer as seg

    image, _, _ = cell
    reference = segment(image, tiny_model, output=tmp_path / "ref.zarr", block_shape=(16, 32, 32),
                        halo=(4, 8, 8), progress=False).to_numpy()
    real = seg._write_block
    written = []

    def interrupted(*args, **kwargs):
        if len(written) == 5:
            raise KeyboardInterrupt  # Ctrl-C between blocks
        real(*args, **kwargs)
        written.append(args[1])

    monkeypatch.setattr(seg, "_write_block", interrupted)
    with pytest.raises(KeyboardInterrupt):
        segment(image, tiny_model, output=tmp_path / "run.zarr", block_shape=(16, 32, 32), halo=(4, 8, 8),
                progress=False)
    monkeypatch.setattr(seg, "_write_block", real)
    assert len(list((tmp_path / "run.zarr" / "blocks").iterdir())) == 5
    again = []
    monkeypatch.setattr(seg, "_write_block", lambda *a, **k: (again.append(a[1]), real(*a, **k)))
    resumed = segment(image, tiny_model, output=tmp_path / "run.zarr", block_shape=(16, 32, 32), halo=(4, 8, 8),
                      progress=False)
    assert len(again) == 2 * 2 * 2 - 5  # only the blocks not done before
    np.testing.assert_array_equal(resumed.to_numpy(), reference)
    with pytest.raises(OutputExistsError, match=r"cannot be resumed: parameters\.block_shape: \[16, 32, 32\] -> \[8, 32, 32\]"):
        segment(image, tiny_model, output=tmp_path / "run.zarr", block_shape=(8, 32, 32), halo=(4, 8, 8),
                progress=False)


def test_resampling_when_the_voxel_size_differs(tiny_model, cell, caplog):
    image, _, _ = cell
    coarse = Volume(image.to_numpy()[:, ::2, ::2], voxel_size=(30.0, 60.0, 60.0))
    with caplog.at_level("WARNING", logger="sxtseg.infer"):
        labels = segment(coarse, tiny_model, progress=False)
    assert "resampling" in caplog.text
    assert labels.shape == coarse.shape and labels.voxel_size == coarse.voxel_size
    assert labels.metadata["segmentation"]["parameters"]["zoom"] == [1.0, 2.0, 2.0]


def test_default_blocks_are_counted_on_the_grid_the_model_runs_on(tiny_model, cell, monkeypatch):
    import sxtseg.infer

    image, _, _ = cell  # 32x64x64 voxels: one default block of 32x64x64 as it is
    monkeypatch.setattr(sxtseg.infer, "DEFAULT_BLOCK_SHAPE", (32, 64, 64))
    same = segment(image, tiny_model, progress=False)
    assert same.metadata["segmentation"]["parameters"]["block_shape"] == [32, 64, 64]
    coarse = Volume(image.to_numpy(), voxel_size=(30.0, 60.0, 60.0))  # y and x upsampled 2x for the model
    labels = segment(coarse, tiny_model, progress=False)
    assert labels.metadata["segmentation"]["parameters"]["block_shape"] == [32, 32, 32]
    assert labels.shape == coarse.shape
    # voxels coarser than the model was trained at are a quality flag naming the axes; 30 nm ones are not
    from sxtseg.quality import voxel_size_flags

    assert voxel_size_flags(same.metadata["segmentation"]) == []
    flags = voxel_size_flags(labels.metadata["segmentation"])
    assert [f["flag"] for f in flags] == ["coarse_voxels"] and "coarser on y, x than" in flags[0]["message"]


def test_run_writes_every_output(tiny_model, cell, tmp_path):
    image, _, _ = cell
    result = run(image, tmp_path / "out", tiny_model, block_shape=(32, 48, 48), halo=(4, 8, 8), progress=False)
    out = tmp_path / "out"
    assert result["output_dir"] == str(out)
    assert not (tmp_path / "out.partial").exists()
    assert {p.name for p in out.iterdir()} == {"volume.ome.zarr", "objects.csv", "objects.parquet",
                                               "summary.json", "quicklook.png", "run.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["sha256"] and summary["voxel_size"] == [30.0, 30.0, 30.0]
    assert set(summary["timings_s"]) == {"open", "calibrate", "segment", "instances", "measure", "write"}
    # the phantom is LAC already: auto calibration finds ice and cytoplasm and maps them (almost) to themselves
    assert summary["calibration"]["method"] == "two-point" and abs(summary["calibration"]["scale"] - 1) < 0.03
    assert isinstance(summary["quality"], list)
    assert summary["instances"]["fragments"]["min_volume_um3"]["nucleus"] == 0.5
    table = pd.read_csv(out / "objects.csv")
    assert len(table) == summary["objects"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "objects.parquet"), table, check_dtype=False)
    classes = open_volume(out / "volume.ome.zarr" / "labels" / "classes")
    instances = open_volume(out / "volume.ome.zarr" / "labels" / "instances").to_numpy()
    assert classes.shape == image.shape
    assert sorted(np.unique(instances[instances > 0])) == sorted(table["label"])
    assert (out / "quicklook.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputExistsError):
        run(image, out, tiny_model, progress=False)


def test_batch_mode_and_cli(tiny_model, cell, tmp_path, capsys):
    image, _, _ = cell
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", image.to_numpy())
    code = main(["run", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-o", str(tmp_path / "batch"),
                 "--model", str(tiny_model), "-q"])
    # .npy files carry no voxel size: a clear error, exit code 2
    assert code == 2
    from sxtseg.io import save_volume

    for name in ("a", "b"):
        save_volume(image, tmp_path / f"{name}.ome.zarr")
    capsys.readouterr()
    code = main(["run", str(tmp_path / "a.ome.zarr"), str(tmp_path / "b.ome.zarr"), "-o", str(tmp_path / "batch"),
                 "--model", str(tiny_model), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    combined = pd.read_csv(tmp_path / "batch" / "objects.csv")
    assert set(combined["sample"]) == {"a", "b"}
    assert (tmp_path / "batch" / "a" / "summary.json").exists()
    # one row per sample: its counts and flags, as each summary.json has them
    samples = pd.read_csv(tmp_path / "batch" / "samples.csv", keep_default_na=False)
    assert list(samples["sample"]) == ["a", "b"] and list(samples["shape"]) == ["32x64x64"] * 2
    for row in samples.itertuples():
        summary = json.loads((tmp_path / "batch" / row.sample / "summary.json").read_text())
        assert row.objects == summary["objects"] == (combined["sample"] == row.sample).sum()
        assert row.voxel_size_z_nm == 30.0 and row.input.endswith(f"{row.sample}.ome.zarr")
        assert row.quality_flags == ";".join(flag["flag"] for flag in summary["quality"])
        assert row.calibration_method == summary["calibration"]["method"]
    # the batch's last line counts the samples each flag marks
    flags = [f for row in samples.itertuples() for f in row.quality_flags.split(";") if f]
    counts = ", ".join(f"{f} {flags.count(f)}" for f in sorted(set(flags), key=lambda f: (-flags.count(f), flags.index(f))))
    assert f"quality flags over 2 samples: {counts or 'none'} (one row per sample in samples.csv)" in printed


def test_cli_bad_inputs(tiny_model, tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.mrc"), "-o", str(tmp_path / "o1"), "--model", str(tiny_model)]) == 2
    assert "missing.mrc" in capsys.readouterr().err
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    assert main(["run", str(tmp_path / "junk.tif"), "-o", str(tmp_path / "o2"), "--model", str(tiny_model)]) == 2
    assert "junk.tif" in capsys.readouterr().err
    import tifffile

    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((32, 32), np.uint16))
    assert main(["run", str(tmp_path / "flat.tif"), "-o", str(tmp_path / "o3"), "--model", str(tiny_model)]) == 2
    assert "flat.tif" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    image = Volume(np.random.default_rng(0).random((32, 32, 32), np.float32), voxel_size=30.0)
    from sxtseg.io import save_volume

    save_volume(image, tmp_path / "small.ome.zarr")
    assert main(["run", str(tmp_path / "small.ome.zarr"), "-o", str(tmp_path / "exists"), "--model",
                 str(tiny_model)]) == 2
    assert "exists" in capsys.readouterr().err


def test_segment_refuses_a_2d_image(tiny_model):
    with pytest.raises(ShapeError):
        segment(Volume(np.zeros((32, 32), np.float32), voxel_size=30.0, axes="yx"), tiny_model)


def test_slurm_config_builds_a_gpu_job_script():
    """The SLURMCluster of docs/pipeline.md, built as written: its job script asks SLURM for what we document."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    cluster = jobqueue.SLURMCluster(
        queue="gpu", cores=8, processes=1, memory="64GB", walltime="02:00:00",
        job_extra_directives=["--gres=gpu:1"], worker_extra_args=["--resources", "GPU=1"],
        job_script_prologue=["module load cuda", "source ~/venvs/sxtseg/bin/activate"])
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH -t 02:00:00", "module load cuda"):
        assert line in script
    assert "--resources GPU=1" in script
    docs = (__import__("pathlib").Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    assert 'worker_extra_args=["--resources", "GPU=1"]' in docs and 'job_extra_directives=["--gres=gpu:1"]' in docs


@pytest.mark.slow
def test_segment_on_a_distributed_cluster(tiny_model, cell, tmp_path):
    distributed = pytest.importorskip("distributed")
    image, _, _ = cell
    reference = segment(image, tiny_model, output=tmp_path / "ref.zarr", block_shape=(16, 32, 32), halo=(4, 8, 8),
                        progress=False).to_numpy()
    from distributed.protocol.pickle import dumps

    shipped = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        real_submit = client.submit

        def submit(function, *args, **kwargs):  # what each block task carries to its worker
            shipped.append(len(dumps(args)))
            return real_submit(function, *args, **kwargs)

        client.submit = submit
        got = segment(image, str(tiny_model), output=tmp_path / "dist.zarr", block_shape=(16, 32, 32),
                      halo=(4, 8, 8), client=client, progress=False).to_numpy()
        # a file: every task reads its own block from it
        np.save(tmp_path / "cell.npy", image.to_numpy())
        from_file = segment(open_volume(tmp_path / "cell.npy", voxel_size=30.0), str(tiny_model),
                            output=tmp_path / "file.zarr", block_shape=(16, 32, 32), halo=(4, 8, 8), client=client,
                            progress=False).to_numpy()
    np.testing.assert_array_equal(got, reference)
    np.testing.assert_array_equal(from_file, reference)
    # the failure: every task pickled the whole in-memory volume (here 256 KiB; 64 MiB for a real one)
    assert len(shipped) == 16 and max(shipped) < image.nbytes / 8, (max(shipped), image.nbytes)


def test_run_leaves_the_matplotlib_backend_alone(tmp_path):
    """sxtseg.run draws its quick look without pyplot: a notebook's backend is not switched to Agg."""
    code = ("import matplotlib, sxtseg\n"
            "matplotlib.use('svg')\n"
            "image, _, _, _ = sxtseg.make_infected_cell((64, 96, 96), seed=3)\n"  # windows fit: MONAI (which imports pyplot) not needed
            f"sxtseg.run(image, {str(tmp_path / 'out')!r}, progress=False)\n"
            "import sys\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["svg", "False"]
    assert (tmp_path / "out" / "quicklook.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resample_linear_is_scipys_zoom_with_pixel_areas():
    from scipy import ndimage

    from sxtseg.infer import resample_linear

    rng = np.random.default_rng(3)
    for shape, out in [((40, 50, 60), (53, 67, 80)), ((33, 47, 29), (20, 47, 58)), ((7, 9, 5), (7, 9, 5))]:
        image = rng.random(shape, dtype=np.float32)
        expected = ndimage.zoom(image, np.array(out) / np.array(shape), order=1, grid_mode=True, mode="nearest")
        assert expected.shape == out
        np.testing.assert_allclose(resample_linear(image, out), expected, atol=1e-5)
    probabilities = rng.random((3, 12, 16, 16), dtype=np.float32)
    both = resample_linear(probabilities, (9, 12, 12))
    assert both.shape == (3, 9, 12, 12) and both.dtype == np.float32
    np.testing.assert_allclose(both[1], resample_linear(probabilities[1], (9, 12, 12)))  # channel by channel
