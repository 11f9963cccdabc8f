"""Quality flags: what in a calibration or a segmentation says "do not trust this result blindly".

:func:`segmentation_flags` looks at the class fractions of a segmented cell
(no cytoplasm, one class over 90 % of the cell, a cell touching every border
of the volume); :func:`calibration_flags` turns the flags of a
:class:`sxtseg.calibration.CalibrationRecord` into the same form.  ``sxtseg run``
writes both to ``summary.json`` (``quality``) and prints them.

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

__all__ = ["DOMINANT_FRACTION", "calibration_flags", "denoise_flags", "segmentation_flags"]

#: A class holding more than this fraction of the cell's voxels is implausible.
DOMINANT_FRACTION = 0.90


def _flag(name: str, message: str) -> dict:
    return {"flag": name, "severity": "warning", "message": message}


def segmentation_flags(classes: Volume) -> list[dict]:
    """Flags of implausible class fractions in a segmented cell.

    Parameters
    ----------
    classes : Volume
        Class codes (:class:`sxtseg.SXTClass`).

    Returns
    -------
    list of dict
        ``no_cell`` (nothing but background), ``no_cytoplasm``,
        ``dominant_class`` (one class over :data:`DOMINANT_FRACTION` of the
        cell's voxels), ``cell_touches_every_border`` (the cell reaches all
        six faces of the volume: a crop inside a cell, or background read as
        cell).
    """
    import dask.array as da

    from .morphometrics import class_voxel_counts

    data = classes.data
    counts = class_voxel_counts(classes)
    cell = int(counts[1:].sum())
    name = classes._name()
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
    touched = [bool(v) for v in da.compute(*[(face != 0).any() for face in faces])]
    if all(touched):
        flags.append(_flag("cell_touches_every_border",
                           f"{name}: the cell reaches all six faces of the volume (a crop inside a cell, "
                           "or ice segmented as cell)"))
    return flags


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
