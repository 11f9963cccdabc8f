"""Inference precision: bfloat16 on CPUs that have it, the same classes as float32, recorded for resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sxtseg import Volume, make_infected_cell, segment
from sxtseg.errors import InvalidArgumentError
from sxtseg.infer import cpu_has_native_bfloat16, predict_array, resolve_precision
from sxtseg.models import load_model
from sxtseg.models.checkpoint import normalization_range


def test_resolve_precision():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cuda) == "float16"
    assert resolve_precision("auto", cpu) == ("bfloat16" if cpu_has_native_bfloat16() else "float32")
    assert resolve_precision("float32", cuda) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"  # asked for: emulated where the CPU lacks it
    with pytest.raises(InvalidArgumentError, match="float16 inference needs a CUDA device"):
        resolve_precision("float16", cpu)
    with pytest.raises(InvalidArgumentError, match="precision must be one of"):
        resolve_precision("half", cpu)


@pytest.fixture(scope="module")
def held_out():
    image, truth, _, _ = make_infected_cell((48, 96, 96), seed=7204)  # not a training seed (100-199, 900)
    return image.to_numpy().astype(np.float32), truth.to_numpy()


def test_bfloat16_predictions_agree_with_float32(held_out):
    image, _ = held_out
    net = load_model("default")
    meta = net.metadata
    low, high = normalization_range(image[::2, ::2, ::2], meta["intensity"])
    settings = dict(patch_size=meta["input"]["patch_size"], device="cpu", softmax=False)
    reference = predict_array(net, (image - low) / (high - low), precision="float32", **settings)
    bf16 = predict_array(net, (image - low) / (high - low), precision="bfloat16", **settings)
    assert bf16.dtype == np.float32  # blended in float32 whatever the network's arithmetic
    assert not np.array_equal(bf16, reference)  # it did run in bfloat16
    assert np.abs(bf16 - reference).max() < 0.5  # logits, typically tens
    assert (bf16.argmax(0) == reference.argmax(0)).mean() > 0.999


def test_segment_records_its_precision(held_out, tmp_path):
    image, _ = held_out
    volume = Volume(image, voxel_size=30.0)
    for precision in ("float32", "bfloat16"):
        labels = segment(volume, output=tmp_path / f"{precision}.zarr", precision=precision, progress=False)
        manifest = json.loads((tmp_path / f"{precision}.zarr" / "segment.json").read_text())
        assert manifest["device"] == {"type": "cpu", "precision": precision}
        assert labels.metadata["segmentation"]["device"]["precision"] == precision
    with pytest.raises(InvalidArgumentError, match="precision must be one of"):
        segment(volume, precision="half", progress=False)


def test_on_a_cluster_auto_is_left_to_each_worker():
    from sxtseg.infer import _precision_for

    cpu = torch.device("cpu")
    assert _precision_for("auto", cpu, on_cluster=True) == "auto"
    assert _precision_for("auto", cpu, on_cluster=False) == resolve_precision("auto", cpu)
    with pytest.raises(InvalidArgumentError, match="precision must be one of"):
        _precision_for("half", cpu, on_cluster=True)
