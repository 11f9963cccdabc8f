"""Physical checks of segmented objects: classes the network gives that an object's LAC rules out.

A segmentation network labels voxels by what they look like nearby; some
objects are then wrong as wholes in ways physics can tell.  One check is
made today:

* **Gold fiducials.**  No cellular material absorbs soft X-rays as strongly
  as gold: in the water window (~510-517 eV) lipid droplets, the densest
  compartment, reach a linear absorption coefficient (LAC) of about
  0.55-0.75 1/µm (Parkinson et al. 2008, J. Struct. Biol. 162:380; Uchida et
  al. 2009, PNAS 106:19375), while gold's is of the order of 10 1/µm (an
  attenuation length of about 0.1 µm near 517 eV; Henke, Gullikson & Davis
  1993, At. Data Nucl. Data Tables 54:181).  An organelle-class object whose
  mean LAC is above :data:`FIDUCIAL_MIN_LAC` (1.0 1/µm, a third above the
  densest lipid droplet) is a fiducial bead, whatever the network called it
  (the shipped model, which has no fiducial class, calls them lipid
  droplets).  This needs grey values in LAC: it is skipped, and says so,
  when the volume was not calibrated (``calibration="none"``).  A bead the
  network merged into a compartment (the cytoplasm), or missed, is not an
  object of its own, and this check does not find it.

A check changes whole objects: the object's voxels in the class volume and
its row in the objects table, never its instance label.  (A second check,
DMV-class objects less round than a sphericity of 0.8 counted as other
vesicles, was measured and dropped: on held-out phantoms it removed 2 of 17
decoys but also true DMVs, elongated by a missing wedge or cut by a
calibration offset; ``docs/benchmarks.md``, "Object checks".  DMV
look-alikes are found by a network instead: :mod:`sxtseg.dmv_check`.)

Examples
--------
>>> import numpy as np, pandas as pd
>>> table = pd.DataFrame({"label": [1, 2, 3], "class_id": [5, 5, 2], "intensity_mean": [0.6, 4.2, 3.0]})
>>> changes, record = object_changes(table, lac=True)
>>> changes
{2: 8}
>>> record["to_fiducial"]
1
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .classes import SXTClass
from .volume import Volume

__all__ = ["FIDUCIAL_MIN_LAC", "apply_changes", "object_changes"]

#: Objects of an organelle class with a mean LAC (1/µm) above this are gold fiducials (see the module text).
FIDUCIAL_MIN_LAC = 1.0

#: Classes that are compartments (large, any shape): never turned into fiducials.
_COMPARTMENTS = (SXTClass.BACKGROUND, SXTClass.CYTOPLASM, SXTClass.NUCLEUS, SXTClass.NUCLEOLUS)


def object_changes(table: pd.DataFrame, *, lac: bool,
                   fiducial_min_lac: float | None = FIDUCIAL_MIN_LAC) -> tuple[dict[int, int], dict]:
    """The objects whose class the physical checks change, and a record of what was checked.

    Parameters
    ----------
    table : pandas.DataFrame
        Objects measured with classes and the image in LAC
        (:func:`sxtseg.measure`): ``label``, ``class_id`` and
        ``intensity_mean`` (1/µm).
    lac : bool
        Whether ``intensity_mean`` is in LAC (1/µm); when not, the fiducial
        check is skipped (the record says so).
    fiducial_min_lac : float or None
        Mean LAC (1/µm) above which an organelle is a fiducial; None: no check.

    Returns
    -------
    changes : dict
        Instance label -> new class code.
    record : dict
        ``fiducial_min_lac_1_per_um`` (the threshold), ``to_fiducial``
        (objects changed) and ``skipped`` (a reason per check not made).
    """
    changes: dict[int, int] = {}
    skipped = {}
    if fiducial_min_lac is None:
        skipped["fiducial"] = "turned off"
    elif not lac:
        skipped["fiducial"] = "grey values not calibrated to LAC"
    else:
        classes = table["class_id"].to_numpy()
        organelle = ~np.isin(classes, _COMPARTMENTS) & (classes != SXTClass.FIDUCIAL)
        bead = organelle & (table["intensity_mean"].to_numpy() > fiducial_min_lac)
        changes.update({int(label): int(SXTClass.FIDUCIAL) for label in table["label"].to_numpy()[bead]})
    record = {"fiducial_min_lac_1_per_um": fiducial_min_lac, "to_fiducial": len(changes), "skipped": skipped}
    return changes, record


def _recode(classes: np.ndarray, instances: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``classes`` with every voxel of a changed instance set to its new code (``codes[label]``, 0 = unchanged)."""
    new = codes[instances]  # codes has a place for every measured label, so for every voxel's
    return np.where(new > 0, new, classes).astype(classes.dtype, copy=False)


def apply_changes(classes: Volume, instances: Volume, table: pd.DataFrame,
                  changes: dict[int, int]) -> tuple[Volume, pd.DataFrame]:
    """The class volume and the objects table with the changed objects in their new classes.

    Parameters
    ----------
    classes, instances : Volume
        Class codes and instance labels of the same shape (in memory or lazy).
    table : pandas.DataFrame
        Their :func:`sxtseg.measure` table.
    changes : dict
        Instance label -> new class code (:func:`object_changes`).

    Returns
    -------
    classes : Volume
        A new class volume (the input is not modified).
    table : pandas.DataFrame
        A copy with ``class_id`` changed and ``nearest_neighbour_nm`` (to the
        nearest object of the same class) worked out again.
    """
    from .morphometrics import nearest_same_class

    if not changes:
        return classes, table
    codes = np.zeros(int(table["label"].max()) + 1, np.uint8)  # the changed labels are among the table's
    for label, code in changes.items():
        codes[label] = code
    if classes.in_memory and instances.in_memory:
        data = _recode(classes.to_numpy(), instances.to_numpy(), codes)
    else:
        data = classes.data.map_blocks(_recode, instances.data.rechunk(classes.data.chunks), codes,
                                       dtype=classes.dtype)
    table = table.copy()
    changed = table["label"].isin(list(changes)).to_numpy()
    table.loc[changed, "class_id"] = [changes[int(label)] for label in table.loc[changed, "label"]]
    nearest_same_class(table)
    return classes.with_data(data), table
