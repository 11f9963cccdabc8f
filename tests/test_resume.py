"""Resuming is keyed on content: another input, model or device is refused; --overwrite always starts clean.

Each test first reproduces a failure seen on main before issue 12 (named in
its comment), then checks the fixed behaviour.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest

import sxtseg.infer as infer
import sxtseg.pipeline as pipeline
from sxtseg import Volume, make_infected_cell, open_volume, segment
from sxtseg.errors import OutputExistsError
from sxtseg.infer import resolve_precision
from sxtseg.pipeline import run

from conftest import make_tiny_model

BLOCKS = dict(block_shape=(16, 32, 32), halo=(4, 8, 8), progress=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return make_tiny_model(folder / "a.pt", seed=0), make_tiny_model(folder / "b.pt", seed=1)


@pytest.fixture(scope="module")
def cells():
    a = make_infected_cell((32, 64, 64), seed=31, n_dmv=2)[0].compute()
    b = make_infected_cell((32, 64, 64), seed=32, n_dmv=2)[0].compute()
    return a, b


def interrupt_after(monkeypatch, n_blocks: int):
    """Make segment() stop (as on Ctrl-C) after ``n_blocks`` blocks are written."""
    real, written = infer._write_block, []

    def write(*args, **kwargs):
        if len(written) == n_blocks:
            raise KeyboardInterrupt
        real(*args, **kwargs)
        written.append(args[1])

    monkeypatch.setattr(infer, "_write_block", write)
    return lambda: monkeypatch.setattr(infer, "_write_block", real)


def test_resume_with_another_volume_of_the_same_shape_is_refused(models, cells, tmp_path, monkeypatch):
    # the failure: segment(B) on A's interrupted output returned without a word, 4 of its 8 blocks A's
    a, b = cells
    restore = interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        segment(a, models[0], output=tmp_path / "o.zarr", **BLOCKS)
    restore()
    with pytest.raises(OutputExistsError, match=r"o\.zarr: .*cannot be resumed: the input's content differs"):
        segment(b, models[0], output=tmp_path / "o.zarr", **BLOCKS)
    fresh = segment(b, models[0], **BLOCKS).to_numpy()
    again = segment(b, models[0], output=tmp_path / "o.zarr", overwrite=True, **BLOCKS).to_numpy()
    np.testing.assert_array_equal(again, fresh)


def test_resume_after_the_file_was_re_exported_is_refused(models, cells, tmp_path, monkeypatch):
    # the failure: a tomogram re-exported to the same path resumed with the old blocks
    a, b = cells
    path = tmp_path / "cell.npy"
    np.save(path, a.to_numpy())
    restore = interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        segment(open_volume(path, voxel_size=30.0), models[0], output=tmp_path / "o.zarr", **BLOCKS)
    restore()
    np.save(path, b.to_numpy())  # same name, shape, dtype and voxel size
    with pytest.raises(OutputExistsError, match=r"the input's content differs"):
        segment(open_volume(path, voxel_size=30.0), models[0], output=tmp_path / "o.zarr", **BLOCKS)


def test_the_same_file_moved_still_resumes(models, cells, tmp_path, monkeypatch):
    a, _ = cells
    np.save(tmp_path / "one.npy", a.to_numpy())
    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        segment(open_volume(tmp_path / "one.npy", voxel_size=30.0), models[0], output=tmp_path / "o.zarr", **BLOCKS)
    restore()
    (tmp_path / "one.npy").rename(tmp_path / "two.npy")  # rename keeps size and modification time
    resumed = segment(open_volume(tmp_path / "two.npy", voxel_size=30.0), models[0], output=tmp_path / "o.zarr",
                      **BLOCKS)
    np.testing.assert_array_equal(resumed.to_numpy(), segment(a, models[0], **BLOCKS).to_numpy())


def test_resume_with_another_model_or_device_is_refused(models, cells, tmp_path, monkeypatch):
    a, _ = cells
    restore = interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        segment(a, models[0], output=tmp_path / "o.zarr", **BLOCKS)
    restore()
    with pytest.raises(OutputExistsError, match="the model's weights differ"):
        segment(a, models[1], output=tmp_path / "o.zarr", **BLOCKS)
    manifest = json.loads((tmp_path / "o.zarr" / "segment.json").read_text())
    here = resolve_precision("auto", torch.device("cpu"))  # bfloat16 on a CPU with native bfloat16
    assert manifest["device"] == {"type": "cpu", "precision": here}
    # the failure: the manifest recorded neither device nor AMP, so a CPU run resumed on a GPU mixed
    # float32 and float16 blocks; here the run is made to look as if started on a GPU
    manifest["device"] = {"type": "cuda", "precision": "float16"}
    (tmp_path / "o.zarr" / "segment.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputExistsError, match=rf"device\.precision: 'float16' -> '{here}'; device\.type: 'cuda' -> 'cpu'"):
        segment(a, models[0], output=tmp_path / "o.zarr", **BLOCKS)
    # the same on one machine: a run started in bfloat16 is not finished in float32
    manifest["device"] = {"type": "cpu", "precision": "bfloat16"}
    (tmp_path / "o.zarr" / "segment.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputExistsError, match=r"device\.precision: 'bfloat16' -> 'float32'"):
        segment(a, models[0], output=tmp_path / "o.zarr", precision="float32", **BLOCKS)


def test_a_module_trained_in_memory_is_not_taken_for_its_checkpoint(models, cells, tmp_path, monkeypatch):
    import torch

    from sxtseg.models import load_model

    a, _ = cells
    net = load_model(models[0])
    restore = interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        segment(a, net, output=tmp_path / "o.zarr", **BLOCKS)
    restore()
    with torch.no_grad():
        next(net.parameters()).add_(0.5)  # fine-tuned since it was loaded: metadata["sha256"] is stale
    with pytest.raises(OutputExistsError, match="the model's weights differ"):
        segment(a, net, output=tmp_path / "o.zarr", **BLOCKS)


def test_retrained_checkpoint_at_the_same_path_is_reloaded(cells, tmp_path):
    # the failure: an lru_cache on the path string kept the old weights after mine.pt was retrained
    a, _ = cells
    path = tmp_path / "mine.pt"
    make_tiny_model(path, seed=0)
    first = segment(a, path, progress=False).metadata["segmentation"]["model_sha256"]
    make_tiny_model(path, seed=5)
    second = segment(a, path, progress=False)
    expected = segment(a, make_tiny_model(tmp_path / "copy.pt", seed=5), progress=False)
    assert second.metadata["segmentation"]["model_sha256"] != first
    np.testing.assert_array_equal(second.to_numpy(), expected.to_numpy())


# ------------------------------------------------------------------ run(): --overwrite and batches


RUN = dict(block_shape=(32, 48, 48), halo=(4, 8, 8), progress=False)


def test_overwrite_after_an_interrupted_run_with_another_model_starts_clean(models, cells, tmp_path, monkeypatch):
    # the failure: OutputExistsError ".partial/segmentation.zarr: ... pass overwrite=True" although the user did
    a, _ = cells
    restore = interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run(a, tmp_path / "out", models[0], **RUN)
    restore()
    assert (tmp_path / "out.partial").exists()
    with pytest.raises(OutputExistsError, match=r"out\.partial: .*cannot be resumed: the model.s weights differ.*--overwrite"):
        run(a, tmp_path / "out", models[1], **RUN)
    result = run(a, tmp_path / "out", models[1], overwrite=True, **RUN)
    fresh = run(a, tmp_path / "fresh", models[1], **RUN)
    (ours,), (theirs,) = result["samples"].values(), fresh["samples"].values()
    assert ours["model"]["sha256"] == theirs["model"]["sha256"]
    for name in ("objects.csv",):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
    assert not (tmp_path / "out.partial").exists()


def test_a_batch_rerun_keeps_the_finished_samples(models, cells, tmp_path, monkeypatch):
    # the failure: a batch re-run after a later sample failed re-segmented every finished sample
    a, b = cells
    paths = [tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"]
    np.save(paths[0], a.to_numpy())
    np.save(paths[1], b.to_numpy())
    broken = a.to_numpy().copy()
    broken[5, 5, 5] = np.nan
    np.save(paths[2], broken)
    real_open = open_volume

    def open_30nm(path, *args, **kwargs):
        return real_open(path, *args, voxel_size=30.0, **kwargs)

    import sxtseg.io

    monkeypatch.setattr(sxtseg.io, "open_volume", open_30nm)  # .npy files carry no voxel size
    from sxtseg.errors import SxtsegError

    with pytest.raises(SxtsegError, match=r"c\.npy"):
        run(paths, tmp_path / "batch", models[0], **RUN)
    assert (tmp_path / "batch.partial" / "a" / "summary.json").exists()
    assert (tmp_path / "batch.partial" / "b" / "summary.json").exists()
    np.save(paths[2], a.to_numpy())  # the user fixes the third file and runs the same command again
    segmented = []
    real_segment = infer.segment
    monkeypatch.setattr(infer, "segment", lambda volume, *a, **k: (segmented.append(volume._name()),
                                                                   real_segment(volume, *a, **k))[1])
    result = run(paths, tmp_path / "batch", models[0], **RUN)
    assert segmented == [str(paths[2].resolve())]  # a and b were kept
    assert set(result["samples"]) == {"a", "b", "c"}
    table = (tmp_path / "batch" / "objects.csv").read_text()
    assert "a," in table and "c," in table


def test_output_over_the_input_is_refused_even_with_overwrite(models, cells, tmp_path):
    import zarr

    a, _ = cells
    store = tmp_path / "cell.zarr"
    array = zarr.create_array(str(store), shape=a.shape, chunks=(16, 64, 64), dtype="float32")
    array[:] = a.to_numpy()
    array.attrs["voxel_size_nm"] = [30.0, 30.0, 30.0]
    vol = open_volume(store)
    with pytest.raises(OutputExistsError, match="is \\(or holds\\) the input"):
        segment(vol, models[0], output=store, overwrite=True, **BLOCKS)
    np.testing.assert_array_equal(open_volume(store).to_numpy(), a.to_numpy())  # untouched
