"""Compartments from a second model: the plain model's nucleus for coarse volumes and thin cells.

:func:`sxtseg.segment` runs the shipped ``"default"`` model at 30 nm.  A
volume with coarser voxels (50 or 60 nm, or 60 nm z voxels under 30 nm ones)
reaches it interpolated to 30 nm, blurrier than any of its training cells,
and the default model then calls part of the nucleus cytoplasm (nucleus Dice
0.83-0.91 on tuning phantoms).  The shipped ``"plain"`` model, run on the
same volumes at its own 35-40 nm, draws the nucleus better (0.92-0.96) but
finds false DMVs there (DMV object precision 0.58-0.79 against the default's
0.63-1.00).  So for such volumes the compartments (background, cytoplasm,
nucleus, nucleolus) are taken from the plain model and the organelles from
the default: a voxel becomes the plain model's class where both models call
it a compartment, and keeps the default's class everywhere else.  On coarse
volumes the default model's DMVs, drawn too small there, are also grown by
the plain model's DMV voxels around them (:func:`combine`'s ``grow_dmvs``).
Measured in ``docs/benchmarks.md``, "Compartments of coarse volumes from the
plain model": held-out DMV Dice +0.005 to +0.106 and nucleus Dice +0.02 to
+0.06 on 9 coarse cells, DMV objects and counts unchanged.

The same holds for a thin cell (whole in z and under
:data:`sxtseg.quality.THIN_CELL_UM`, 1.4 µm, in the default model's
segmentation): the default model misses most of its nucleus (Dice 0.04-0.27
under 1 µm), the plain model much less (``benchmarks/bench_thin_cells.py``).

The plain model is worse than the default at two things measured on coarse
phantoms, so the rule stands aside for them:

* a missing wedge (:func:`sxtseg.wedge.missing_wedge`): at 50 nm with a
  +-60 deg wedge, nucleus Dice 0.48 -> 0.36 and 0.55 -> 0.39 with the plain
  model's compartments;
* no ice around the cell (the calibration found no ice reference, or was not
  left to find one): at 50 nm without ice, 0.86 -> 0.82 and 0.87 -> 0.85
  (``benchmarks/bench_coarse_compartments.py``).

Examples
--------
>>> import numpy as np
>>> organelles = np.array([1, 1, 6, 2, 0])      # cytoplasm, cytoplasm, DMV, nucleus, background
>>> compartments = np.array([2, 1, 1, 2, 6])    # nucleus, cytoplasm, cytoplasm, nucleus, DMV
>>> combine(organelles, compartments).tolist()
[2, 1, 6, 2, 0]
"""

from __future__ import annotations

import os

import numpy as np

from .classes import SXTClass
from .errors import InvalidArgumentError

__all__ = ["COMPARTMENT_CLASSES", "COMPARTMENT_MODELS", "DMV_GROWTH_DEPTH", "DMV_GROWTH_VOXELS",
           "GROW_DMVS_WHEN_COARSE", "combine", "compartment_model_for"]

#: The classes a compartment model supplies: everything else comes from the main model.
COMPARTMENT_CLASSES = (SXTClass.BACKGROUND, SXTClass.CYTOPLASM, SXTClass.NUCLEUS, SXTClass.NUCLEOLUS)

#: Shipped model name -> the shipped model whose compartments replace its own on coarse volumes and thin cells.
COMPARTMENT_MODELS = {"default": "plain"}

#: On coarse volumes the plain model's DMV voxels around the default model's DMVs are added to them
#: (:func:`combine`'s ``grow_dmvs``): interpolated from coarse voxels, the default model draws DMVs too
#: small, and the plain model's own DMVs away from them are mostly false (docs/benchmarks.md,
#: "Compartments of coarse volumes from the plain model").
GROW_DMVS_WHEN_COARSE = True

#: How far (voxels, 26-connected steps) from the interior of a main-model DMV its boundary may grow.
DMV_GROWTH_VOXELS = 2

#: Overlap (voxels) that blocks need for ``grow_dmvs``: one for the interior, then the growth.
DMV_GROWTH_DEPTH = 1 + DMV_GROWTH_VOXELS


def combine(organelles: np.ndarray, compartments: np.ndarray, grow_dmvs: bool = False) -> np.ndarray:
    """Class codes: ``compartments``' where both arrays hold a compartment class, else ``organelles``'.

    Parameters
    ----------
    organelles, compartments : numpy.ndarray of uint8
        Class codes (:class:`sxtseg.SXTClass`) of the same shape: the main
        model's and the compartment model's.
    grow_dmvs : bool
        Also make DMV every voxel that the compartment model calls DMV, the
        main model a compartment, and that lies within
        :data:`DMV_GROWTH_VOXELS` (26-connected steps) of the interior of a
        main-model DMV (its voxels whose 3x3x3 neighbourhood is all DMV):
        the main model's DMVs with the second model's boundaries around
        them; no DMV of the second model's own, and no speck of the main
        model's (under 3 voxels across) grown into an object (see
        :data:`GROW_DMVS_WHEN_COARSE`).  The result at a voxel depends on
        its neighbours: blocks need :data:`DMV_GROWTH_DEPTH` voxels of overlap.

    Returns
    -------
    numpy.ndarray
        Class codes of ``organelles``' dtype.

    Examples
    --------
    >>> import numpy as np
    >>> main = np.ones((5, 5, 9), np.uint8)               # cytoplasm
    >>> main[1:4, 1:4, 1:4] = 6                            # a DMV of the main model, 3 voxels across
    >>> second = np.ones((5, 5, 9), np.uint8)
    >>> second[:, :, :6] = 6                               # the second model's DMV, wider
    >>> second[:, :, 8] = 6                                # and one of its own, far off
    >>> grown = combine(main, second, grow_dmvs=True)
    >>> int((main == 6).sum()), int((grown == 6).sum()), bool((grown[:, :, 8] == 1).all())
    (27, 125, True)
    """
    both = np.isin(organelles, COMPARTMENT_CLASSES) & np.isin(compartments, COMPARTMENT_CLASSES)
    combined = np.where(both, compartments, organelles).astype(organelles.dtype, copy=False)
    if grow_dmvs:
        from scipy import ndimage

        cube = np.ones((3,) * organelles.ndim, bool)
        core = ndimage.binary_erosion(organelles == SXTClass.DMV, cube)
        near = ndimage.binary_dilation(core, cube, iterations=DMV_GROWTH_VOXELS) if core.any() else core
        grown = near & (compartments == SXTClass.DMV) & np.isin(combined, COMPARTMENT_CLASSES)
        combined[grown] = SXTClass.DMV
    return combined


def compartment_model_for(model, choice, voxel_nm, coarsest_nm, calibration, lac=None,
                          thickness_um: float | None = None) -> tuple[str | None, str]:
    """Which model, if any, gives the compartments of a segmentation, and why.

    Parameters
    ----------
    model : str, Path or torch.nn.Module
        The main model, as given to :func:`sxtseg.segment`.
    choice : "auto", None, str or Path
        ``"auto"``: the rule of this module (only for a main model named in
        :data:`COMPARTMENT_MODELS`); None or ``"none"``: no second
        model; any other name or path: that model, always.
    voxel_nm : sequence of 3 float
        The volume's voxel size (z, y, x nm).
    coarsest_nm : sequence of 3 float
        The main model's coarsest training voxel size (z, y, x nm); a volume
        coarser on some axis (:func:`sxtseg.quality.coarse_axes`) is coarse.
    calibration : CalibrationRecord
        What :func:`sxtseg.calibrate` did (whether it found the ice).
    lac : Volume, optional
        The calibrated volume, tested for a missing wedge
        (:func:`sxtseg.wedge.missing_wedge`) when the rule would apply.
    thickness_um : float, optional
        The cell's thickness (µm) in the main model's segmentation
        (:func:`sxtseg.quality.cell_thickness_um`); a cell thinner than
        :data:`sxtseg.quality.THIN_CELL_UM` makes the rule apply as coarse
        voxels do.

    Returns
    -------
    model : str or None
        The compartment model (a shipped name or a path), or None.
    reason : str
        One sentence saying why.

    Raises
    ------
    InvalidArgumentError
        ``choice`` is neither of those (a network in memory, say).

    Examples
    --------
    >>> from sxtseg.calibration import CalibrationRecord
    >>> ice = CalibrationRecord("two-point", "lac", references=[{"name": "ice"}, {"name": "cytoplasm"}])
    >>> compartment_model_for("default", "auto", [50.0, 50.0, 50.0], [40.0] * 3, ice)[0]
    'plain'
    >>> compartment_model_for("default", "auto", [30.0, 30.0, 30.0], [40.0] * 3, ice)[0] is None
    True
    """
    if choice is None or choice == "none":
        return None, "no compartment model requested"
    if not isinstance(choice, (str, os.PathLike)):
        raise InvalidArgumentError(f"compartment_model must be 'auto', None, a shipped model name or a checkpoint "
                                   f"path, not {type(choice).__name__}")
    if choice != "auto":
        return os.fspath(choice), "compartment model requested"
    partner = COMPARTMENT_MODELS.get(model) if isinstance(model, str) else None
    if partner is None:
        return None, "no compartment model is paired with this model"
    from .quality import THIN_CELL_UM, coarse_axes

    axes = coarse_axes(voxel_nm, coarsest_nm)
    thin = thickness_um is not None and thickness_um < THIN_CELL_UM
    if not axes and not thin:
        return None, "voxels within the model's training voxel sizes, and the cell not thin"
    if axes:
        coarse = f"voxels coarser on {', '.join(axes)} than the {model} model's training voxels"
    else:
        coarse = f"a thin cell ({thickness_um:.2f} µm thick, under {THIN_CELL_UM:g} µm)"
    if not any(ref.get("name") == "ice" for ref in calibration.references):
        return None, (f"{coarse}, but no ice reference was found by the calibration (the {partner} model is "
                      "worse without ice)")
    if lac is not None:
        from .wedge import missing_wedge

        if missing_wedge(lac)["detected"]:
            return None, f"{coarse}, but the volume has a missing wedge (the {partner} model is worse under one)"
    return partner, f"{coarse}: compartments from the {partner} model"
