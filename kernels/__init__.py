"""Numba kernels of sxtseg, shipped as ``sxtseg.kernels``.

NumPy arrays in, NumPy arrays out; nothing here imports from the rest of
sxtseg, so the kernels can be used and tested on their own.  The ``@njit``
code lives in private modules (``_downsample.py``...); this module gives
them flat public names, cc3d-style.
"""

from ._downsample import downsample_mean, downsample_mode
from ._label import label
from ._stats import STAT_FIELDS, region_stats

__all__ = ["STAT_FIELDS", "downsample_mean", "downsample_mode", "label", "region_stats"]
