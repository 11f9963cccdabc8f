"""The demo's scoring: object matching and Dice from overlap tables equal their voxel-by-voxel definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sxtseg.demo import _match_classes, match_objects
from sxtseg.infer import dice_per_class


def _match_by_voxels(found, found_labels, truth):
    """match_objects written voxel by voxel, as the demo first computed it (the definition)."""
    mask = np.isin(found, found_labels)
    pairs = pd.DataFrame({"found": found[mask], "true": truth[mask]})
    overlap = pairs.groupby(["found", "true"]).size().rename("voxels").reset_index()
    best = overlap.sort_values("voxels", ascending=False, kind="stable").drop_duplicates("found").set_index("found")
    share = best["voxels"] / pairs.groupby("found").size()[best.index]
    hits = best[(best["true"] > 0) & (share >= 0.5)]
    per_true = hits.groupby("true").size()
    true_sizes = pd.Series(truth[truth > 0]).value_counts()
    covered = overlap[overlap["true"] > 0].copy()
    covered["share_of_true"] = covered["voxels"].to_numpy() / true_sizes[covered["true"]].to_numpy()
    merged = (covered[covered["share_of_true"] >= 0.25].groupby("found").size() >= 2).sum()
    return {"matched": int(len(per_true)), "false_positive": int(len(best) - len(hits)),
            "split_extra": int((per_true - 1).sum()), "missed": int(len(true_sizes) - len(per_true)),
            "merged": int(merged)}


def _blobs(rng, shape, count):
    """Labels 1..count painted as random boxes (later ones over earlier ones), 0 elsewhere."""
    labels = np.zeros(shape, np.uint32)
    for k in range(1, count + 1):
        lo = [int(rng.integers(0, n)) for n in shape]
        hi = [min(n, a + int(rng.integers(1, 6))) for a, n in zip(lo, shape)]
        labels[tuple(slice(a, b) for a, b in zip(lo, hi))] = k
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_matching_equals_the_voxel_definition(seed):
    rng = np.random.default_rng(seed)
    shape = (9, 14, 17)
    truth_ids, found = _blobs(rng, shape, 25), _blobs(rng, shape, 30)
    id_class = rng.integers(1, 4, 26)
    id_class[0] = 0
    truth_classes = id_class[truth_ids].astype(np.uint8)
    table = pd.DataFrame({"label": np.arange(1, 31), "class_id": rng.integers(1, 4, 30)})
    got = _match_classes(found, table, truth_ids, truth_classes, [1, 2, 3])
    for code in (1, 2, 3):
        labels = table.loc[table["class_id"] == code, "label"].to_numpy()
        expected = _match_by_voxels(found, labels, np.where(truth_classes == code, truth_ids, 0))
        assert got[{1: "cytoplasm", 2: "nucleus", 3: "nucleolus"}[code]] == expected
        assert match_objects(found, labels, np.where(truth_classes == code, truth_ids, 0)) == expected


def test_matching_refuses_a_true_object_in_two_classes():
    ids = np.array([[1, 1, 0]], np.uint32)
    with pytest.raises(ValueError, match="more than one class"):
        _match_classes(ids, pd.DataFrame({"label": [1], "class_id": [1]}), ids, np.array([[1, 2, 0]], np.uint8), [1])


@pytest.mark.parametrize("ignore", [255, None, 2])
def test_dice_equals_the_voxel_definition(ignore):
    rng = np.random.default_rng(7)
    predicted = rng.integers(0, 5, (6, 11, 13)).astype(np.uint8)
    truth = rng.integers(0, 6, (6, 11, 13)).astype(np.uint8)  # class 5 is beyond n_classes: not scored
    truth[rng.random(truth.shape) < 0.1] = 255
    keep = np.ones(truth.shape, bool) if ignore is None else truth != ignore
    p, t = predicted[keep], truth[keep]
    expected = [2 * np.sum((p == c) & (t == c)) / (np.sum(p == c) + np.sum(t == c)) if np.any((p == c) | (t == c))
                else np.nan for c in range(5)]
    np.testing.assert_allclose(dice_per_class(predicted, truth, 5, ignore), expected, rtol=1e-15)
    np.testing.assert_allclose(dice_per_class(predicted.astype(float), truth.astype(float), 5, ignore), expected,
                               rtol=1e-15)
