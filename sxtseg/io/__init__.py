"""Reading and writing volumes: MRC, TIFF, Zarr/OME-Zarr, HDF5, NPY in; OME-Zarr out.

Examples
--------
>>> from sxtseg.io import open_volume, save_volume  # doctest: +SKIP
>>> vol = open_volume("cell.mrc")                    # doctest: +SKIP
>>> save_volume(vol, "cell.ome.zarr")                # doctest: +SKIP
"""

from ._read import READERS, detect_reader, open_volume
from ._export import export_volume
from ._write import save_volume

__all__ = ["open_volume", "save_volume", "export_volume", "detect_reader", "READERS"]
