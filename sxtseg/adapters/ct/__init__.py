"""Chest CT: read scans in Hounsfield units, segment the lungs, quantify COVID-19 lesions.

Needs the ``ct`` extra (``pip install "sxtseg[ct]"``).

- :func:`open_ct`: a DICOM series, multi-frame DICOM or NIfTI file as a Volume
  (HU, axes (z, y, x) towards Superior, Posterior, Left; voxel size in mm).
- :func:`lung_mask`: classical, training-free lung segmentation (left/right).
- :func:`lesion_quantification`, :func:`ct_severity_score`: ground-glass
  opacity and consolidation per lung and zone, and a zone-based severity score.
- :func:`analyse_ct`: all of it, written to a results folder (``sxtseg ct``).
"""

from .job import analyse_ct
from .lesions import DEFAULT_HU_RANGES, LESION_CLASSES, ct_severity_score, lesion_quantification
from .lungs import LUNG_CLASSES, NoLungsError, lung_mask
from .reader import AXES_PATIENT, open_ct

__all__ = ["AXES_PATIENT", "DEFAULT_HU_RANGES", "LESION_CLASSES", "LUNG_CLASSES", "NoLungsError", "analyse_ct",
           "ct_severity_score", "lesion_quantification", "lung_mask", "open_ct"]
