"""overlap_counts: the contingency table of two label volumes, as NumPy's unique over pairs gives it."""

from __future__ import annotations

import numpy as np
import pytest

from sxtseg.kernels import overlap_counts


def _reference(a, b):
    pairs, counts = np.unique(np.stack([a.ravel().astype(np.int64), b.ravel().astype(np.int64)]), axis=1,
                              return_counts=True)
    return pairs[0], pairs[1], counts


@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8), (np.uint32, np.int64), (np.int16, np.uint64),
                                    (np.bool_, np.uint16)])
def test_equals_unique_over_pairs(dtypes):
    rng = np.random.default_rng(31)
    a = rng.integers(0, 2 if dtypes[0] is np.bool_ else 6, (20, 31, 17)).astype(dtypes[0])
    b = np.repeat(rng.integers(0, 9, (20, 31, 5)), 4, axis=2)[..., :17].astype(dtypes[1])  # runs along x
    got = overlap_counts(a, b)
    assert got[0].dtype == a.dtype and got[1].dtype == b.dtype and got[2].sum() == a.size
    for g, e in zip(got, _reference(a, b)):
        np.testing.assert_array_equal(g.astype(np.int64), e)


def test_large_labels_views_and_edges():
    rng = np.random.default_rng(32)
    a = rng.integers(0, 3, (8, 9, 10)).astype(np.uint64) * np.uint64(2**62)
    b = np.full((8, 9, 10), -5, np.int64)
    view_a, view_b = a[:, ::2, 1:], b[:, ::2, 1:]  # not contiguous
    got = overlap_counts(view_a, view_b)
    assert got[0].tolist() == sorted(set(view_a.ravel().tolist())) and (got[1] == -5).all()
    assert got[2].tolist() == [int((view_a == v).sum()) for v in got[0]]
    empty = overlap_counts(np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8))
    assert [x.size for x in empty] == [0, 0, 0]
    one = overlap_counts(np.array([7]), np.array([2]))
    assert [x.tolist() for x in one] == [[7], [2], [1]]
    with pytest.raises(ValueError, match="shapes"):
        overlap_counts(np.zeros(3, np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(TypeError, match="integer"):
        overlap_counts(np.zeros(3, np.float32), np.zeros(3, np.uint8))
