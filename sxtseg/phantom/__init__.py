"""Synthetic SXT volumes of a SARS-CoV-2-infected cell, with exact ground truth.

:func:`make_infected_cell` draws one cell in vitreous ice: an ellipsoidal cell
with an irregular boundary, an off-centre nucleus with one or two nucleoli,
tubular mitochondria, lipid droplets, and a perinuclear "replication factory"
of double-membrane vesicles (DMVs), some of them touching in pairs; on
request also decoy vesicles (lysosomes, multivesicular bodies, vacuoles),
gold fiducials, a capillary wall, a neighbouring cell, a cell cut by the
field of view or filling it.  It returns the reconstructed-looking image
(made by an :class:`ImagingModel`: PSF, missing wedge, noise, rings, output
unit), the class labels, the instance labels and a table of every object with
its true geometry.  Later stages (segmentation, instance splitting,
morphometrics) are tested against it.

The parts, for a reader:

* :mod:`~sxtseg.phantom.lac`: the LAC of every material, with sources;
* :mod:`~sxtseg.phantom.geometry`: the objects and geometric questions about them;
* :mod:`~sxtseg.phantom.scene`: placing the cell, nucleus and organelles;
* :mod:`~sxtseg.phantom.decoys`: lysosomes, multivesicular bodies, vacuoles;
* :mod:`~sxtseg.phantom.surroundings`: fiducials, capillary wall, neighbour cell;
* :mod:`~sxtseg.phantom.raster`: drawing into class, instance and LAC arrays;
* :mod:`~sxtseg.phantom.imaging`: :class:`ImagingModel`;
* :mod:`~sxtseg.phantom.truth`: the objects table;
* :mod:`~sxtseg.phantom.infected_cell`: :func:`make_infected_cell` itself.

Coordinates
-----------
Positions are physical, in nanometres, with the *centre* of voxel ``(i, j, k)``
at ``(i * vz, j * vy, k * vx)`` for voxel size ``(vz, vy, vx)``: the same
convention as ``scipy.ndimage.center_of_mass(mask) * v``.  A voxel belongs to
an object when its centre lies inside the object's analytic shape.

Examples
--------
>>> from sxtseg.phantom import make_infected_cell
>>> image, classes, instances, objects = make_infected_cell((32, 64, 64), seed=1)
>>> image.shape, str(image.dtype), image.voxel_size, image.unit
((32, 64, 64), 'float32', (30.0, 30.0, 30.0), 'nm')
>>> str(classes.dtype), str(instances.dtype)
('uint8', 'uint32')
>>> objects.loc[0, "class_name"], objects.loc[1, "class_name"]
('cytoplasm', 'nucleus')
"""

from __future__ import annotations

from .imaging import ImagingModel
from .infected_cell import make_infected_cell
from .lac import LAC

__all__ = ["ImagingModel", "LAC", "make_infected_cell"]
