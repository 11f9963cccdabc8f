"""``analyse_ct``: the whole CT job (``sxtseg ct``): scan in, results folder out.

The folder holds:

- ``ct.ome.zarr``: the scan in HU with label images ``lungs`` (1 right,
  2 left) and ``lesions`` (1 GGO, 2 consolidation);
- ``report.json``: the scan's identifiers and acquisition, the geometry
  notes (spacing, uneven steps, duplicates), lung volumes, lesion volumes
  and percentages per lung, the zone-based severity score, every parameter
  and the sxtseg version;
- ``zones.csv``: one row per lung and zone (the table of
  :func:`lesion_quantification`);
- ``quicklook.png``: axial and coronal slices with the lung and lesion outlines.

It is written in a temporary folder beside the output and renamed into place
at the end, so an interrupted job leaves no half-written results; the
output must not exist (unless ``overwrite``) and is never an input.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np

from ... import __version__
from ...io._write import _check_output_path, _jsonable, _replace, save_volume, write_text_atomically
from ...volume import Volume
from .lesions import LESION_COLORS, ct_severity_score, lesion_quantification
from .lungs import LUNG_COLORS, lung_mask
from .reader import open_ct

__all__ = ["analyse_ct"]


def _quicklook(path: Path, ct: Volume, lungs: np.ndarray, lesions: np.ndarray, title: str) -> None:
    # a Figure of its own, not pyplot: the caller's matplotlib backend (a notebook's) is left alone
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    hu = np.asarray(ct.to_numpy())
    dz, dy, dx = ct.voxel_size
    involved = np.nonzero(lesions.any(axis=(1, 2)))[0]
    z = int(np.median(involved)) if involved.size else int(np.median(np.nonzero(lungs.any(axis=(1, 2)))[0]))
    y = int(np.median(np.nonzero(lungs.any(axis=(0, 2)))[0]))

    def overlay(colors: dict) -> ListedColormap:
        table = np.zeros((3, 4))
        for code, rgba in colors.items():
            table[code] = (*(np.array(rgba[:3]) / 255.0), 0.55)
        return ListedColormap(table)

    fig = Figure(figsize=(13, 6.5))
    axes = fig.subplots(1, 2)
    views = [(f"axial, z = {z} (patient's right on the left)", hu[z], lungs[z], lesions[z], dy / dx),
             (f"coronal, y = {y} (head at the top)", hu[::-1, y], lungs[::-1, y], lesions[::-1, y], dz / dx)]
    for ax, (name, grey, lung, lesion, aspect) in zip(axes, views):
        ax.imshow(grey, cmap="gray", vmin=-1200, vmax=300, aspect=aspect, interpolation="nearest")
        ax.contour(lung == 1, levels=[0.5], colors=[np.array(LUNG_COLORS[1][:3]) / 255], linewidths=0.8)
        ax.contour(lung == 2, levels=[0.5], colors=[np.array(LUNG_COLORS[2][:3]) / 255], linewidths=0.8)
        ax.imshow(np.ma.masked_equal(lesion, 0), cmap=overlay(LESION_COLORS), vmin=0, vmax=2, aspect=aspect,
                  interpolation="nearest")
        ax.set_title(name)
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def analyse_ct(
    source: str | os.PathLike | Volume,
    output_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    series_uid: str | None = None,
    lung_options: dict | None = None,
    lesion_options: dict | None = None,
) -> dict:
    """Lungs, lesions and the severity score of one chest CT, written to a results folder.

    Parameters
    ----------
    source : path or Volume
        A DICOM series folder, multi-frame DICOM, NIfTI file (see
        :func:`open_ct`), or a CT Volume in HU.
    output_dir : str or Path
        Results folder; must not exist unless ``overwrite``; never an input.
    overwrite : bool
        Replace an existing ``output_dir``.
    series_uid : str, optional
        Series to read from a folder holding several.
    lung_options, lesion_options : dict, optional
        Keyword arguments of :func:`lung_mask` and :func:`lesion_quantification`.

    Returns
    -------
    dict
        What ``report.json`` holds, plus ``output_dir``.

    Raises
    ------
    OutputExistsError
        The output exists (without ``overwrite``) or is, holds or lies in an input.
    NoLungsError
        The scan holds no lungs (nothing is written).
    """
    out = Path(output_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct = source if isinstance(source, Volume) else open_ct(source, series_uid=series_uid)
    for w in caught:  # shown to the user and kept in the report
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    _check_output_path(out, [ct], overwrite)
    ct = ct.compute()
    lungs = lung_mask(ct, **(lung_options or {}))
    lesions, table = lesion_quantification(ct, lungs, **(lesion_options or {}))
    severity = ct_severity_score(table)

    both = table[table["lung"] == "both"].iloc[0]
    per_lung = table[table["zone"] == "all"].set_index("lung")
    info = ct.metadata.get("ct", {})
    report = {
        "sxtseg_version": __version__,
        "input": ct.metadata.get("source"),
        "scan": {k: v for k, v in info.items() if k not in ("affine_lps", "files", "nifti_affine_ras")},
        "affine_lps": info.get("affine_lps"),
        "shape": list(ct.shape), "voxel_size_mm": list(ct.voxel_size),
        "warnings": [str(w.message) for w in caught],
        "lungs": lungs.metadata["lungs"],
        "lung_volume_ml": float(both["lung_volume_ml"]),
        "ggo_volume_ml": float(both["ggo_volume_ml"]),
        "consolidation_volume_ml": float(both["consolidation_volume_ml"]),
        "ggo_percent": float(both["ggo_percent"]),
        "consolidation_percent": float(both["consolidation_percent"]),
        "per_lung": per_lung.drop(columns="zone").to_dict(orient="index"),
        "severity": severity,
        "lesion_parameters": lesions.metadata["lesions"],
        "lung_parameters": lung_options or {},
    }
    tmp = out.parent / f".{out.name}.sxtseg-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        save_volume(ct, tmp / "ct.ome.zarr", labels={"lungs": lungs, "lesions": lesions}, name="ct")
        table.to_csv(tmp / "zones.csv", index=False)
        _quicklook(tmp / "quicklook.png", ct, lungs.to_numpy(), lesions.to_numpy(),
                   f"{Path(str((ct.metadata.get('source') or {}).get('path', 'CT'))).name}: involvement "
                   f"{severity['involvement_percent']:.1f}%, zone score {severity['total_score']}/{severity['max_score']}")
        write_text_atomically(tmp / "report.json", json.dumps(_jsonable(report), indent=1))
        _replace(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**report, "output_dir": str(out)}
