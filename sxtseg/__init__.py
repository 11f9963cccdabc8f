"""sxtseg: segmentation and morphometrics of soft X-ray tomograms.

The public API is declared in ``__init__.pyi`` and loaded on first use
(lazy_loader), so ``import sxtseg`` is fast and pulls in neither PyTorch nor
napari.
"""

from importlib.metadata import PackageNotFoundError, version

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)

try:
    __version__ = version("sxtseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [*__all__, "__version__"]
