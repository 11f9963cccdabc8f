"""Quality flags: what in a calibration or a segmentation says "do not trust this result blindly".

:func:`segmentation_flags` looks at the class fractions and shape of a
segmented cell (no cytoplasm, one class over 90 % of the cell, a cell touching
every border of the volume, a cell thinner than any the shipped models were
trained on); :func:`voxel_size_flags` at voxels coarser than the model's
training voxels; :func:`missing_wedge_flags` at the tomogram's Fourier space;
:func:`calibration_flags` and :func:`denoise_flags` turn the
records of :func:`sxtseg.calibrate` and the noise matching into the same
form.  :func:`quality_flags` gathers them all; ``sxtseg run`` writes them to
``summary.json`` (``quality``) and prints them, napari's Segment widget shows
them.

Each flag is a dict: ``flag`` (a short name), ``severity`` (``"warning"``) and
``message`` (one sentence naming what was seen).

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> classes = np.ones((8, 8, 8), np.uint8)        # cytoplasm everywhere: no ice, nothing else
>>> [f["flag"] for f in segmentation_flags(Volume(classes, voxel_size=30.0))]
['dominant_class', 'cell_touches_every_border']
"""

from __future__ import annotations

import numpy as np

from .classes import CLASS_NAMES, SXTClass
from .volume import Volume

__all__ = ["COARSE_VOXEL_TOLERANCE", "DOMINANT_FRACTION", "THIN_CELL_UM", "calibration_flags", "cell_thickness_um",
           "coarse_axes", "denoise_flags", "missing_wedge_flags", "quality_flags", "segmentation_flags",
           "voxel_size_flags"]

#: A class holding more than this fraction of the cell's voxels is implausible.
DOMINANT_FRACTION = 0.90

#: A whole cell (inside the field of view in z) thinner than this (µm, :func:`cell_thickness_um`) is
#: flagged ``thin_cell``.  The shipped models' training cells are 2.0-3.2 µm thick by that measure.
#: ``benchmarks/bench_thin_cells.py`` (36 phantom cells 0.66-2.58 µm thick, docs/benchmarks.md): the
#: default model's nucleus Dice was under 0.93 in 22 of the 24 cells under 1.4 µm (0.04-0.96) and
#: 0.946-0.972 in the 12 above it; chosen on seeds 7600-7602, held on 7603-7605.
THIN_CELL_UM = 1.4

#: Voxels coarser than the model's coarsest training voxel size by more than this fraction (on any axis)
#: are flagged ``coarse_voxels`` (the same tolerance as ``segment``'s resampling, 10 %).
COARSE_VOXEL_TOLERANCE = 0.10

#: The cell is "cut" by a z face of the volume when that face holds cell voxels in more than this
#: fraction of the columns that hold cell (a speck of false cell on the face does not count).
_CUT_FRACTION = 0.01


def _flag(name: str, message: str) -> dict:
    return {"flag": name, "severity": "warning", "message": message}


def segmentation_flags(classes: Volume, name: str | None = None) -> list[dict]:
    """Flags of implausible class fractions in a segmented cell.

    Parameters
    ----------
    classes : Volume
        Class codes (:class:`sxtseg.SXTClass`).
    name : str, optional
        What the messages call the volume (the input file); default
        ``classes``' own source.

    Returns
    -------
    list of dict
        ``no_cell`` (nothing but background), ``no_cytoplasm``,
        ``dominant_class`` (one class over :data:`DOMINANT_FRACTION` of the
        cell's voxels), ``cell_touches_every_border`` (the cell reaches all
        six faces of the volume: a crop inside a cell, or background read as
        cell), ``thin_cell`` (a cell whole in z and thinner than
        :data:`THIN_CELL_UM`, by :func:`cell_thickness_um`: thinner than
        any cell the shipped models were trained on).
    """
    import dask.array as da

    from .morphometrics import class_voxel_counts

    data = classes.data
    counts = class_voxel_counts(classes)
    cell = int(counts[1:].sum())
    name = name or classes._name()
    if cell == 0:
        return [_flag("no_cell", f"{name}: every voxel was segmented as background")]
    flags = []
    if counts[SXTClass.CYTOPLASM] == 0:
        flags.append(_flag("no_cytoplasm", f"{name}: no voxel was segmented as cytoplasm"))
    fractions = counts[1:] / cell
    top = int(np.argmax(fractions)) + 1
    if fractions[top - 1] > DOMINANT_FRACTION:
        flags.append(_flag("dominant_class", f"{name}: {CLASS_NAMES.get(top, str(top))} holds "
                                             f"{fractions[top - 1]:.0%} of the cell's voxels"))
    faces = [data[0], data[-1], data[:, 0], data[:, -1], data[:, :, 0], data[:, :, -1]]
    measurable = classes.voxel_size is not None and classes.ndim == 3
    # one pass over the classes for the faces and the cell's columns (its thickness)
    *touched, columns, top, bottom = da.compute(*[(face != 0).any() for face in faces],
                                                *(_cell_columns(data) if measurable else (None,) * 3))
    touched = [bool(v) for v in touched]
    if all(touched):
        flags.append(_flag("cell_touches_every_border",
                           f"{name}: the cell reaches all six faces of the volume (a crop inside a cell, "
                           "or ice segmented as cell)"))
    thickness_um = _thickness_um(columns, top, bottom, classes.voxel_size_in("um")[0]) if measurable else None
    if thickness_um is not None and thickness_um < THIN_CELL_UM:
        flags.append(_flag("thin_cell", f"{name}: the cell is {thickness_um:.2f} um thick, thinner than "
                                        f"{THIN_CELL_UM:g} um and than any cell the shipped models were trained on "
                                        "(2.0-3.2 um); on phantom cells 0.7-1.4 um thick the default model missed "
                                        "much of the nucleus (Dice 0.04-0.96, under 0.93 in 22 of 24), the plain "
                                        "model less (0.33-0.97) (docs/models.md, 'Thin cells')"
                                        f"{_compartments_note(classes)}"))
    return flags


def _compartments_note(classes: Volume) -> str:
    """``; the compartments came from the X model`` when segment took them from a second model, else ``""``."""
    compartments = (classes.metadata.get("segmentation") or {}).get("compartments") or {}
    if not compartments.get("model"):
        return ""
    return f"; here the compartments (cytoplasm, nucleus, nucleolus) came from the {compartments['model']} model"


def cell_thickness_um(classes: Volume) -> float | None:
    """The thickness of a cell along z (µm), or None where it cannot be told.

    The 99th percentile, over the (y, x) columns that hold cell, of the
    cell voxels in the column times the z voxel size: the thickness of the
    cell's thickest part, robust to a few columns of false cell.  Cell is
    every class but background and fiducials.

    Parameters
    ----------
    classes : Volume
        Class codes (:class:`sxtseg.SXTClass`), with a voxel size.

    Returns
    -------
    float or None
        µm; None when the volume is not 3-D, has no voxel size or no cell,
        or when the cell is cut by the first or last z slice (its thickness is then the
        field's, not the cell's: more than 1 % of its columns reach that
        slice).

    Examples
    --------
    >>> import numpy as np
    >>> from sxtseg import Volume
    >>> classes = np.zeros((40, 16, 16), np.uint8)
    >>> classes[10:30] = 1                                  # 20 slices of cytoplasm, ice above and below
    >>> cell_thickness_um(Volume(classes, voxel_size=50.0, unit="nm"))
    1.0
    """
    import dask.array as da

    if classes.voxel_size is None or classes.ndim != 3:
        return None
    return _thickness_um(*da.compute(*_cell_columns(classes.data)), classes.voxel_size_in("um")[0])


def _cell_columns(data):
    """Lazily: cell voxels per (y, x) column, and the cell on the first and on the last z slice."""
    cell = (data != SXTClass.BACKGROUND) & (data != SXTClass.FIDUCIAL)
    return cell.sum(axis=0, dtype=np.int32), cell[0], cell[-1]


def _thickness_um(columns, top, bottom, z_um: float) -> float | None:
    """:func:`cell_thickness_um` from the computed :func:`_cell_columns`."""
    columns = np.asarray(columns)
    held = columns > 0
    n_columns = int(held.sum())
    if n_columns == 0:
        return None
    if max(int(np.count_nonzero(top)), int(np.count_nonzero(bottom))) > _CUT_FRACTION * n_columns:
        return None
    return round(float(np.percentile(columns[held], 99) * z_um), 4)


def calibration_flags(record) -> list[dict]:
    """The flags of a calibration record, each with the record's explanation.

    Examples
    --------
    >>> from sxtseg.calibration import CalibrationRecord
    >>> rec = CalibrationRecord("identity", "lac", flags=["no_ice_reference"], notes=["no ice peak found"])
    >>> calibration_flags(rec)[0]["flag"]
    'calibration_no_ice_reference'
    """
    notes = "; ".join(record.notes)
    return [_flag(f"calibration_{flag}", f"{record.summary()}: {notes}") for flag in record.flags
            if flag != "padding_excluded"]


def denoise_flags(record: dict) -> list[dict]:
    """A ``noise_smoothed`` flag when :func:`sxtseg.denoise.match_noise` smoothed the volume automatically.

    The segmentation then saw a smoothed volume (its noise well above the
    model's training data): worth a look, as fine structure may be lost.

    Examples
    --------
    >>> denoise_flags({"method": "auto", "sigma_voxels": 0.6, "note": "noise 0.0208 1/um is 2.0x ..."})[0]["flag"]
    'noise_smoothed'
    >>> denoise_flags({"method": "none", "sigma_voxels": 0.0, "note": ""})
    []
    """
    if record.get("method") != "auto" or not record.get("sigma_voxels"):
        return []
    return [_flag("noise_smoothed", f"smoothed before segmentation (Gaussian sigma {record['sigma_voxels']:g} "
                                    f"voxels): {record['note']}")]


def coarse_axes(voxel_nm, coarsest_nm) -> list[str]:
    """The axes (of ``"zyx"``) on which ``voxel_nm`` is coarser than ``coarsest_nm`` by more than
    :data:`COARSE_VOXEL_TOLERANCE`.

    Examples
    --------
    >>> coarse_axes([60.0, 30.0, 30.0], [40.0, 40.0, 40.0])
    ['z']
    >>> coarse_axes([44.0, 44.0, 44.0], [40.0, 40.0, 40.0])
    []
    """
    return [axis for axis, v, c in zip("zyx", np.asarray(voxel_nm, float), np.asarray(coarsest_nm, float))
            if v > c * (1 + COARSE_VOXEL_TOLERANCE)]


def voxel_size_flags(segmentation: dict, name: str | None = None) -> list[dict]:
    """A ``coarse_voxels`` flag when the volume's voxels are coarser than any the model was trained on.

    ``segment`` interpolates such a volume onto a finer grid for the model,
    which then sees an image blurrier than its training cells: on held-out
    phantoms the default model's DMV Dice fell to 0.80 at 50 nm and 0.67 at
    60 nm, its nucleus Dice to 0.86 with 60 nm z voxels under 30 nm ones
    (docs/models.md).  The message says whether the compartments came from
    a second model (``segmentation["compartments"]``, :mod:`sxtseg.compartments`).

    Parameters
    ----------
    segmentation : dict
        ``metadata["segmentation"]`` of :func:`sxtseg.segment`'s output
        (its ``voxel_sizes_nm``: ``input``, ``segmented``, ``training_range``).
    name : str, optional
        What the message calls the volume; default the input's name in
        ``segmentation``.

    Returns
    -------
    list of dict
        One flag, or none (also when the record is missing: a volume
        without a voxel size).

    Examples
    --------
    >>> record = {"input": [50.0, 50.0, 50.0], "segmented": [30.0, 30.0, 30.0],
    ...           "training_range": [[25.0, 25.0, 25.0], [40.0, 40.0, 40.0]]}
    >>> [f["flag"] for f in voxel_size_flags({"input": {"name": "cell.mrc"}, "voxel_sizes_nm": record})]
    ['coarse_voxels']
    >>> voxel_size_flags({"voxel_sizes_nm": {**record, "input": [40.0, 40.0, 40.0]}})
    []
    """
    record = segmentation.get("voxel_sizes_nm")
    if not record:
        return []
    voxel_nm = np.asarray(record["input"], float)
    axes = coarse_axes(voxel_nm, record["training_range"][1])
    if not axes:
        return []
    name = name or (segmentation.get("input") or {}).get("name") or "volume"
    low, high = (f"[{', '.join(f'{v:g}' for v in r)}]" for r in record["training_range"])
    compartments = segmentation.get("compartments") or {}
    if compartments.get("model"):
        dmvs = ", and its DMVs were grown to that model's boundaries" if compartments.get("dmvs_grown") else ""
        nucleus = (f"its compartments (cytoplasm, nucleus, nucleolus) came from the {compartments['model']} model, "
                   f"which drew the nucleus better on such cells{dmvs}")
    else:
        nucleus = ("the nucleus is less reliable there; the plain model drew it better on such cells "
                   f"(not used here: {compartments.get('reason', 'no compartment model')})")
    return [_flag("coarse_voxels", f"{name}: voxels of {[round(float(v), 3) for v in voxel_nm]} nm are coarser on "
                                   f"{', '.join(axes)} than the model's training voxels ({low} to {high} nm); it "
                                   f"segmented them interpolated to {[round(float(v), 3) for v in record['segmented']]}"
                                   f" nm, and DMV boundaries are less reliable there; {nucleus} "
                                   "(docs/models.md, 'Coarse voxels: which model')")]


def missing_wedge_flags(image: Volume, name: str | None = None) -> list[dict]:
    """A ``missing_wedge`` flag when the tomogram lacks a wedge of Fourier space (:func:`sxtseg.wedge.missing_wedge`).

    The shipped default model loses much of the nucleus under any missing
    wedge (phantoms: nucleus Dice 0.10-0.78 from ±60° to ±88°, 0.93-0.95
    without; ``docs/models.md``).

    Parameters
    ----------
    image : Volume
        The tomogram that was segmented (any grey-value convention).
    name : str, optional
        What the message calls it; default its source.

    Returns
    -------
    list of dict
        One flag, or none.
    """
    from .wedge import missing_wedge

    found = missing_wedge(image)
    if not found["detected"]:
        return []
    return [_flag("missing_wedge", f"{name or image._name()}: a missing wedge (tilt axis {found['tilt_axis']}: the kz "
                                   f"axis of Fourier space holds {found['kz_axis_power_ratio']:.2f}x the power of the "
                                   "lines beside it); the default model misses much of the nucleus under any missing "
                                   "wedge (phantoms, +-60 to +-88 deg: nucleus Dice 0.10-0.78), DMVs less "
                                   "(docs/models.md, 'Missing wedges')")]


def quality_flags(classes: Volume, metadata: dict | None = None, name: str | None = None,
                  image: Volume | None = None) -> list[dict]:
    """Every quality flag of a segmentation: its calibration's, voxel size's, noise matching's and classes'.

    Parameters
    ----------
    classes : Volume
        Class codes from :func:`sxtseg.segment` (or made from them: fragments
        merged, objects re-classed), judged by :func:`segmentation_flags`.
    metadata : dict, optional
        The metadata of :func:`sxtseg.segment`'s output (``calibration``,
        ``segmentation``, ``denoise``); default ``classes.metadata``.
    name : str, optional
        What the messages call the volume; default the name of the input
        that :func:`sxtseg.segment` recorded (its file).
    image : Volume, optional
        The tomogram that was segmented: given, it is also tested for a
        missing wedge (:func:`missing_wedge_flags`).

    Returns
    -------
    list of dict
        :func:`calibration_flags`, :func:`voxel_size_flags`,
        :func:`denoise_flags`, :func:`missing_wedge_flags` (with ``image``)
        and :func:`segmentation_flags`, in that order.

    Examples
    --------
    >>> import numpy as np
    >>> from sxtseg import Volume
    >>> classes = np.zeros((40, 32, 32), np.uint8)
    >>> classes[15:25, 4:28, 4:28] = 1                      # a cell 0.5 um thick, ice around it
    >>> classes[18:22, 10:22, 10:22] = 2                    # and its nucleus
    >>> meta = {"calibration": {"method": "two-point", "input_kind": "lac"},
    ...         "segmentation": {"input": {"name": "cell.mrc"}},
    ...         "denoise": {"method": "auto", "sigma_voxels": 0.0, "note": ""}}
    >>> [(f["flag"], f["message"][:26]) for f in quality_flags(Volume(classes, voxel_size=50.0), meta)]
    [('thin_cell', 'cell.mrc: the cell is 0.50')]
    """
    from .calibration import CalibrationRecord

    meta = classes.metadata if metadata is None else metadata
    name = name or (meta["segmentation"].get("input") or {}).get("name")
    return (calibration_flags(CalibrationRecord.from_dict(meta["calibration"]))
            + voxel_size_flags(meta["segmentation"], name) + denoise_flags(meta["denoise"])
            + (missing_wedge_flags(image, name) if image is not None else []) + segmentation_flags(classes, name))
