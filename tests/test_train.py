"""Training: masked loss, class-balanced sparse sampling, a short fit, resume, checkpoints."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from sxtseg import SXTClass, Volume, make_infected_cell
from sxtseg.errors import CorruptFileError, InputNotFoundError, InvalidArgumentError, InvalidDataError
from sxtseg.models import build, load_model, save_checkpoint
from sxtseg.models.checkpoint import tensor_hash
from sxtseg.train import PatchSampler, TrainingConfig, fit, masked_loss

TINY_UNET = {"channels": (4, 8), "strides": (2,), "num_res_units": 0}


def test_masked_loss_ignores_unannotated_voxels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6, 6, requires_grad=True)
    labels = torch.randint(0, 3, (2, 1, 6, 6, 6))
    labels[:, :, :3] = 255  # half the patch not annotated
    loss = masked_loss(logits, labels)
    loss.backward()
    assert torch.all(logits.grad[:, :, :3] == 0)  # nothing flows from unannotated voxels
    assert torch.any(logits.grad[:, :, 3:] != 0)
    changed = logits.detach().clone()
    changed[:, :, :3] = torch.randn_like(changed[:, :, :3]) * 10
    assert float(masked_loss(changed, labels)) == pytest.approx(float(loss.detach()), rel=1e-6)
    # annotating those voxels does change the loss
    assert float(masked_loss(changed, labels.clamp(max=2))) != pytest.approx(float(loss.detach()), rel=1e-3)


def test_masked_loss_matches_plain_loss_without_ignored_voxels():
    from monai.losses import DiceCELoss

    torch.manual_seed(1)
    logits = torch.randn(2, 4, 5, 5, 5)
    labels = torch.randint(0, 4, (2, 1, 5, 5, 5))
    plain = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)(logits, labels)
    assert float(masked_loss(logits, labels)) == pytest.approx(float(plain), rel=1e-5)


def sparse_labels(classes: np.ndarray, keep_slices) -> np.ndarray:
    out = np.full(classes.shape, 255, np.uint8)
    out[keep_slices] = classes[keep_slices]
    return out


def test_sampler_balances_classes_and_stays_on_annotated_voxels():
    image, classes, _, _ = make_infected_cell((40, 96, 96), seed=2, n_dmv=10)
    truth = classes.to_numpy()
    kept = [5, 20, 33]
    labels = Volume(sparse_labels(truth, kept), voxel_size=30.0).rechunk((10, 48, 48))
    config = TrainingConfig(patch_size=(8, 16, 16))
    sampler = PatchSampler([(image, labels)], config, np.random.default_rng(0))
    centres = [sampler._centre()[1] for _ in range(700)]
    assert {int(c[0]) for c in centres} <= set(kept)
    classes_seen = np.array([truth[tuple(c)] for c in centres])
    share = np.bincount(classes_seen, minlength=7) / len(classes_seen)
    present = np.unique(truth[kept])
    assert set(np.nonzero(share)[0]) == set(present.tolist())
    # every present class about equally often, though DMV voxels are about 1% of the annotated ones
    assert np.all(np.abs(share[present] - 1 / len(present)) < 0.06), share
    assert (truth[kept] == SXTClass.DMV).mean() < 0.02
    patch, patch_labels = sampler.sample()
    assert patch.shape == (1, 8, 16, 16) and patch.dtype == np.float32
    assert patch_labels.shape == (1, 8, 16, 16)


def test_class_ratios_set_the_share_of_patch_centres():
    image, classes, _, _ = make_infected_cell((40, 96, 96), seed=2, n_dmv=10)
    truth = classes.to_numpy()
    present = np.unique(truth)
    config = TrainingConfig(patch_size=(8, 16, 16), class_ratios={"nucleus": 4, "dmv": 2, "mitochondrion": 0})
    config.check()
    sampler = PatchSampler([(image, classes)], config, np.random.default_rng(3))
    share = np.bincount([truth[tuple(sampler._centre()[1])] for _ in range(1500)], minlength=7) / 1500
    weights = np.array([{SXTClass.NUCLEUS: 4, SXTClass.DMV: 2, SXTClass.MITOCHONDRION: 0}.get(int(c), 1)
                        for c in present], float)
    expected = weights / weights.sum()
    assert share[SXTClass.MITOCHONDRION] == 0
    assert np.all(np.abs(share[present] - expected) < 0.04), (share, expected)
    # refused: an unknown class, a negative share, nothing left to centre on
    for ratios, message in (({"golgi": 1}, "not among the classes"), ({"dmv": -1}, "finite number"),
                            ({name: 0 for name in TrainingConfig().classes}, "every class 0")):
        with pytest.raises(InvalidArgumentError, match=message):
            TrainingConfig(class_ratios=ratios).check()
    only_absent = {name: 0 for name in TrainingConfig().classes}
    only_absent["fiducial"] = 1  # no gold in this cell
    with pytest.raises(InvalidArgumentError, match="no patch could be centred"):
        PatchSampler([(image, classes)], TrainingConfig(patch_size=(8, 16, 16), class_ratios=only_absent),
                     np.random.default_rng(0))


def test_sampler_2d_context_and_padding():
    image, classes, _, _ = make_infected_cell((32, 40, 40), seed=3, n_dmv=2)
    config = TrainingConfig(spatial_dims=2, context_slices=2, patch_size=(48, 48))
    sampler = PatchSampler([(image, classes)], config, np.random.default_rng(1))
    patch, labels = sampler.sample()
    assert patch.shape == (5, 48, 48) and labels.shape == (1, 48, 48)
    assert (labels[0, 40:, :] == 255).all() and (labels[0, :, 40:] == 255).all()  # padding is not annotated


def test_bad_training_input():
    image = Volume(np.zeros((8, 8, 8), np.float32), voxel_size=30.0)
    with pytest.raises(InvalidDataError, match="neither class codes"):
        PatchSampler([(image, Volume(np.full((8, 8, 8), 9, np.uint8), voxel_size=30.0))],
                     TrainingConfig(patch_size=(4, 4, 4)), np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="no annotated voxel"):
        PatchSampler([(image, Volume(np.full((8, 8, 8), 255, np.uint8), voxel_size=30.0))],
                     TrainingConfig(patch_size=(4, 4, 4)), np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError):
        TrainingConfig(spatial_dims=2, patch_size=(4, 4, 4)).check()
    with pytest.raises(InvalidArgumentError):
        TrainingConfig(classes={"a": 0, "b": 2}).check()


def test_a_few_steps_lower_the_loss():
    image, classes, _, _ = make_infected_cell((32, 48, 48), seed=4, n_dmv=1)
    config = TrainingConfig(patch_size=(16, 32, 32), augment=False)
    sampler = PatchSampler([(image, classes)], config, np.random.default_rng(0))
    batch = [sampler.sample() for _ in range(2)]
    x = torch.from_numpy(np.stack([b[0] for b in batch]))
    y = torch.from_numpy(np.stack([b[1] for b in batch]))
    torch.manual_seed(0)
    net = build("unet", 3, 1, 7, **TINY_UNET)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = masked_loss(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_fit_writes_checkpoints_and_log_and_resumes_identically(tmp_path, monkeypatch):
    image, classes, _, _ = make_infected_cell((32, 48, 48), seed=5, n_dmv=1)
    val_image, val_classes, _, _ = make_infected_cell((32, 40, 40), seed=6, n_dmv=1)
    config = TrainingConfig(model="unet", model_config=TINY_UNET, patch_size=(8, 16, 16), epochs=2,
                            steps_per_epoch=3, batch_size=2, description="test phantoms")
    whole = fit([(image, classes)], tmp_path / "whole", config=config, validation=(val_image, val_classes),
                progress=False)
    assert [row["epoch"] for row in whole["history"]] == [1, 2]
    assert {"dice_dmv", "dice_nucleus", "loss", "score"} <= set(whole["history"][0])
    with open(tmp_path / "whole" / "training_log.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    best = load_model(whole["best_checkpoint"])
    assert best.metadata["classes"]["dmv"] == SXTClass.DMV
    assert best.metadata["voxel_size_nm"] == [30.0, 30.0, 30.0]
    assert best.metadata["training"]["description"] == "test phantoms"
    assert "segment_voxel_size_nm" not in best.metadata  # the training range decides

    # the same run, killed after the first epoch's checkpoints, then resumed
    import sxtseg.train

    real_write = sxtseg.train._write_log

    def killed(path, history):
        real_write(path, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(sxtseg.train, "_write_log", killed)
    with pytest.raises(KeyboardInterrupt):
        fit([(image, classes)], tmp_path / "resumed", config=config, validation=(val_image, val_classes),
            progress=False)
    monkeypatch.setattr(sxtseg.train, "_write_log", real_write)
    resumed = fit([(image, classes)], tmp_path / "resumed", config=config, validation=(val_image, val_classes),
                  resume=True, progress=False)
    assert [row["epoch"] for row in resumed["history"]] == [1, 2]
    a = load_model(whole["last_checkpoint"]).metadata["sha256"]
    b = load_model(resumed["last_checkpoint"]).metadata["sha256"]
    assert a == b


def test_segment_voxel_size_is_checked_and_stored_in_the_checkpoint(tmp_path):
    assert TrainingConfig(segment_voxel_size_nm=30).segment_voxel_size() == [30.0, 30.0, 30.0]
    assert TrainingConfig(segment_voxel_size_nm=(40, 30, 30)).segment_voxel_size() == [40.0, 30.0, 30.0]
    for bad in (0, -30.0, float("nan"), (30.0, 30.0), "thirty"):
        with pytest.raises(InvalidArgumentError, match="segment_voxel_size_nm"):
            TrainingConfig(segment_voxel_size_nm=bad).check()
    image, classes, _, _ = make_infected_cell((32, 40, 40), voxel_size_nm=40.0, seed=8, n_dmv=1)
    config = TrainingConfig(model="unet", model_config=TINY_UNET, patch_size=(8, 16, 16), epochs=1,
                            steps_per_epoch=1, segment_voxel_size_nm=30.0)
    meta = load_model(fit([(image, classes)], tmp_path, config=config, progress=False)["last_checkpoint"]).metadata
    assert meta["voxel_size_range_nm"] == [[40.0] * 3, [40.0] * 3]
    assert meta["segment_voxel_size_nm"] == [30.0, 30.0, 30.0]


def test_checkpoint_round_trip_and_refusals(tmp_path):
    net = build("unet", 3, 1, 7, **TINY_UNET, normalization="batch")  # with 0-d buffers (num_batches_tracked)
    path = tmp_path / "model.pt"
    meta = save_checkpoint(net, path, {"classes": {"background": 0, "dmv": 6}, "voxel_size_nm": [30, 30, 30]})
    loaded = load_model(path)
    assert tensor_hash(loaded.state_dict()) == tensor_hash(net.state_dict()) == meta["sha256"]
    x = torch.randn(1, 1, 8, 16, 16)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    assert loaded.metadata["architecture"]["config"]["channels"] == [4, 8]
    with pytest.raises(InvalidArgumentError, match="7 output channels"):
        load_model(path, out_channels=3)
    with pytest.raises(InvalidArgumentError, match="spatial dims"):
        load_model(path, spatial_dims=2)
    with pytest.raises(InputNotFoundError):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cut.pt"):
        load_model(tmp_path / "cut.pt")
    blob = torch.load(path, weights_only=True)
    name = next(iter(blob["state_dict"]))
    blob["state_dict"][name] = blob["state_dict"][name] + 1
    torch.save(blob, tmp_path / "tampered.pt")
    with pytest.raises(CorruptFileError, match="sha256"):
        load_model(tmp_path / "tampered.pt")
    plain = torch.nn.Conv3d(1, 1, 3)
    with pytest.raises(InvalidArgumentError, match="build"):
        save_checkpoint(plain, tmp_path / "plain.pt")


def test_train_command_from_a_yaml_file(tmp_path):
    from sxtseg.cli import main
    from sxtseg.io import save_volume

    image, classes, _, _ = make_infected_cell((32, 48, 48), seed=8, n_dmv=1)
    save_volume(image, tmp_path / "cell.ome.zarr")
    sparse = classes.to_numpy().copy()
    sparse[::2] = 255  # every other slice not annotated
    np.save(tmp_path / "cell_labels.npy", sparse)
    (tmp_path / "train.yaml").write_text(
        "output: run\n"
        "data:\n  - {image: cell.ome.zarr, labels: cell_labels.npy}\n"
        "training:\n  model: unet\n  model_config: {channels: [4, 8], strides: [2], num_res_units: 0}\n"
        "  patch_size: [8, 16, 16]\n  epochs: 1\n  steps_per_epoch: 2\n  batch_size: 1\n")
    assert main(["train", str(tmp_path / "train.yaml"), "-q"]) == 0
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.metadata["voxel_size_nm"] == [30.0, 30.0, 30.0]
    (tmp_path / "bad.yaml").write_text("output: run\ndata:\n  - {image: cell.ome.zarr}\n")
    assert main(["train", str(tmp_path / "bad.yaml"), "-q"]) == 2
    (tmp_path / "typo.yaml").write_text("output: run\ndata: []\ntraining: {epochz: 3}\n")
    assert main(["train", str(tmp_path / "typo.yaml"), "-q"]) == 2


def test_fine_tuning_from_default_inherits_the_checkpoint(tmp_path):
    from sxtseg.models import load_model
    from sxtseg.train import inherit_checkpoint

    image, classes, _, _ = make_infected_cell((32, 64, 64), seed=41, n_dmv=4)
    labels = np.full(classes.shape, 255, np.uint8)
    labels[14:18] = classes.to_numpy()[14:18]  # a few annotated slices
    config = TrainingConfig(init_checkpoint="default", epochs=1, steps_per_epoch=2, batch_size=1,
                            patch_size=(32, 64, 64))
    with pytest.raises(InvalidArgumentError, match="patch_size"):
        inherit_checkpoint(config)  # 64^3 is the default's patch; another one is a clash
    config = TrainingConfig(init_checkpoint="default", epochs=1, steps_per_epoch=2, batch_size=1)
    result = fit([(image, Volume(labels, voxel_size=30.0))], tmp_path, config=config, progress=False)
    default, tuned = load_model("default").metadata, load_model(result["last_checkpoint"]).metadata
    for key in ("architecture", "classes", "intensity", "input"):
        assert tuned[key] == default[key], key
    assert tuned["calibration"] == "auto" and tuned["sha256"] != default["sha256"]
    with pytest.raises(InvalidArgumentError, match=r"intensity=.*percentile.*the checkpoint has.*fixed"):
        inherit_checkpoint(TrainingConfig(init_checkpoint="default",
                                          intensity={"method": "percentile", "low": 2.0, "high": 98.0}))


def test_frozen_batch_norm_keeps_the_checkpoint_statistics(tmp_path):
    image, classes, _, _ = make_infected_cell((32, 48, 48), seed=9, n_dmv=1)
    config = TrainingConfig(model="unet", model_config={**TINY_UNET, "normalization": "batch"},
                            patch_size=(8, 16, 16), epochs=1, steps_per_epoch=3, batch_size=2, calibration="none")
    torch.manual_seed(0)
    start = build("unet", 3, 1, config.n_classes, **config.model_config)
    with torch.no_grad():  # statistics unlike those of any batch of this cell
        for module in start.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.fill_(0.3)
                module.running_var.fill_(2.0)
    save_checkpoint(start, tmp_path / "start.pt", {
        "classes": config.classes, "voxel_size_nm": [30, 30, 30], "intensity": config.intensity,
        "input": {"context_slices": 0, "patch_size": list(config.patch_size)}})
    with pytest.raises(InvalidArgumentError, match="init_checkpoint"):
        TrainingConfig(batch_norm="frozen").check()
    with pytest.raises(InvalidArgumentError, match="batch_norm"):
        TrainingConfig(batch_norm="instance").check()

    def trained(batch_norm):
        tuning = dataclasses.replace(config, init_checkpoint=str(tmp_path / "start.pt"), batch_norm=batch_norm)
        result = fit([(image, classes)], tmp_path / batch_norm, config=tuning, progress=False)
        return load_model(result["last_checkpoint"]).state_dict()

    before = start.state_dict()
    for batch_norm in ("frozen", "batch"):
        after = trained(batch_norm)
        stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
        weights = [k for k in before if k.endswith("weight")]
        assert stats and weights
        kept = all(torch.equal(before[k], after[k]) for k in stats)
        assert kept == (batch_norm == "frozen"), batch_norm
        assert not all(torch.equal(before[k], after[k]) for k in weights), batch_norm  # the weights trained
