"""The package installs as documented: light import, kernels shipped in the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "monai", "napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "pydicom", "nibabel", "numba",
         "django", "rest_framework")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_sxtseg_pulls_in_no_heavy_dependency():
    loaded = _modules_after("import sxtseg")
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"import sxtseg imported {heavy}"
    # the lazy loader defers even dask and zarr until a function is used
    assert "zarr" not in loaded and "dask.array" not in loaded


def test_reading_a_volume_still_needs_no_torch(tmp_path):
    import numpy as np

    np.save(tmp_path / "v.npy", np.zeros((4, 8, 8), np.float32))
    loaded = _modules_after(f"import sxtseg; sxtseg.open_volume({str(tmp_path / 'v.npy')!r}, voxel_size=30).to_numpy()")
    assert not any(m.split(".")[0] in ("torch", "monai", "napari", "pydicom") for m in loaded)


def test_public_api_is_declared_and_resolves():
    import sxtseg

    for name in sxtseg.__all__:
        assert getattr(sxtseg, name) is not None, name
    assert sxtseg.__version__ != "0+unknown"
    import sxtseg.kernels

    assert Path(sxtseg.kernels.__file__).parent.name == "kernels"


@pytest.mark.slow
def test_wheel_ships_kernels_as_subpackage(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("sxtseg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "sxtseg/__init__.py",
        "sxtseg/__init__.pyi",
        "sxtseg/py.typed",
        "sxtseg/volume.py",
        "sxtseg/io/__init__.py",
        "sxtseg/kernels/__init__.py",
        "sxtseg/kernels/_downsample.py",
        "sxtseg/napari/napari.yaml",
        "sxtseg/models/weights/default.pt",
        "sxtseg/models/weights/plain.pt",
        "sxtseg/models/weights/checks/dmv_check.pt",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith(("kernels/", "tests/", "benchmarks/")) for n in names)
    # every subpackage of the source tree made it into the explicit package list
    for init in (ROOT / "sxtseg").rglob("__init__.py"):
        assert init.relative_to(ROOT).as_posix() in names, f"{init} not packaged: add it to pyproject's packages"
    # the console script is declared
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "sxtseg = sxtseg.cli:command" in declared
    assert "[napari.manifest]" in declared and "sxtseg = sxtseg.napari:napari.yaml" in declared
