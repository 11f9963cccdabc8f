"""Numba kernels of sxtseg, shipped as ``sxtseg.kernels``.

NumPy arrays in, NumPy arrays out; nothing here imports from the rest of
sxtseg, so the kernels can be used and tested on their own.  The ``@njit``
code lives in private modules (``_downsample.py``...); this module gives
them flat public names, cc3d-style.
"""

from ._argmax import argmax_channels
from ._boxes import label_boxes
from ._downsample import downsample_mean, downsample_mode
from ._label import UINT32_LABELS, label, label_dtype
from ._overlap import overlap_counts
from ._peaks import dilate_within, local_maxima
from ._stats import STAT_FIELDS, region_stats
from ._threads import available_cpus, default_threads
from ._surface import crofton_direction_weights, surface_area, surface_area_labels, surface_lut

__all__ = [
    "STAT_FIELDS",
    "UINT32_LABELS",
    "argmax_channels",
    "available_cpus",
    "default_threads",
    "dilate_within",
    "crofton_direction_weights",
    "downsample_mean",
    "downsample_mode",
    "label",
    "label_boxes",
    "label_dtype",
    "local_maxima",
    "overlap_counts",
    "region_stats",
    "surface_area",
    "surface_area_labels",
    "surface_lut",
]
