"""sxtseg's napari plugin (npe2): reader, writer and sample data.

The manifest is ``napari.yaml`` in this package, found through the
``napari.manifest`` entry point that ``pip install "sxtseg[napari]"``
registers.  The functions here take paths and Volumes and return napari
layer data tuples; nothing in this package imports napari or Qt, and
``import sxtseg`` does not import this package.

- :func:`get_reader` / :func:`read_layers`: MRC/REC/MAP, TIFF, HDF5, Zarr and
  OME-Zarr (the image and every label group), and `sxtseg run` results
  folders (open the folder or its ``summary.json``): lazy, multiscale where
  the file has a pyramid, physical scale and units (nm), contrast limits
  from robust percentiles of the whole volume, class names and colours.
- :func:`write_ome_zarr`: an image layer with its labels layers to OME-Zarr.
- :func:`infected_cell`: a small phantom cell as sample data.

Where napari-ome-zarr is installed too, both plugins offer to open
``.zarr`` stores: napari asks which one (and can remember the choice), or
``viewer.open(path, plugin="sxtseg")`` picks this one.
"""

from ._reader import contrast_limits, get_reader, image_layer, labels_layer, read_layers
from ._sample import infected_cell
from ._writer import layer_volume, write_ome_zarr

__all__ = ["contrast_limits", "get_reader", "image_layer", "infected_cell", "labels_layer", "layer_volume",
           "read_layers", "write_ome_zarr"]
