"""Fuzzed readers: mutated MRC, TIFF, OME-TIFF, Zarr, OME-Zarr, HDF5 and NPY files fail only with sxtseg errors.

The harness is benchmarks/fuzz_readers.py (hypothesis-driven); here with a
bounded budget, the longer run is recorded in docs/reliability.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_readers.py"


def load_harness():
    spec = importlib.util.spec_from_file_location("fuzz_readers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reader", ["mrc", "tiff", "ome-tiff", "zarr", "ome-zarr", "hdf5", "npy"])
def test_mutated_files_open_or_fail_with_an_error_naming_the_file(reader, tmp_path):
    harness = load_harness()
    result = harness.fuzz([reader], cases=40, seed=12, timeout_s=30.0, workdir=tmp_path)[reader]
    assert result["failures"] == [], result["failures"][:3]
    assert result["cases"] >= 30
    # both outcomes occur: mutations that leave a readable file, and ones refused with a named error
    assert result["outcomes"].get("opened", 0) > 0 and len(result["outcomes"]) > 1, result["outcomes"]


def test_the_harness_reports_a_reader_that_leaks_a_raw_exception(tmp_path, monkeypatch):
    # the check itself can fail: a reader raising a bare exception is reported, not passed
    harness = load_harness()
    import sxtseg.io._npy as npy

    def broken(path, chunks="auto"):
        raise KeyError("deep inside a dependency")

    monkeypatch.setattr(npy, "read_npy", broken)
    path = harness.valid_file("npy", tmp_path)
    import sxtseg.io._read as read

    monkeypatch.setattr(read, "_npy", npy)
    outcome, failure = harness.check(path, timeout_s=10)
    assert outcome == "CorruptFileError" and failure is None  # open_volume's backstop names the file
    monkeypatch.setattr(read, "CorruptFileError", KeyError)  # without the backstop ...
    outcome, failure = harness.check(path, timeout_s=10)
    assert failure and "KeyError" in failure  # ... the harness flags it
