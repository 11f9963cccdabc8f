"""Numba kernels of sxtseg, shipped as ``sxtseg.kernels``.

NumPy arrays in, NumPy arrays out; nothing here imports from the rest of
sxtseg, so the kernels can be used and tested on their own.  The ``@njit``
code lives in private modules (``_downsample.py``...); this module gives
them flat public names, cc3d-style.
"""

from ._downsample import downsample_mean, downsample_mode
from ._label import label

__all__ = ["downsample_mean", "downsample_mode", "label"]
