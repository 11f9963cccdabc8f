"""What every reader returns before :func:`sxtseg.open_volume` builds the Volume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dask.array as da


@dataclass
class Opened:
    """A lazily opened array with what its file says about it.

    Attributes
    ----------
    data : dask.array.Array
        Lazy voxels, axes in the file's order after any reorientation.
    axes : str
        One letter per axis of ``data`` ("zyx", "yx", or with "c"/"t" for
        OME files); :func:`open_volume` drops singleton non-spatial axes.
    voxel_size : tuple of float or None
        One value per axis of ``data``, in ``unit``; None when the file has none.
    unit : str
        Length unit of ``voxel_size`` ("nm", "um" or "mm").
    metadata : dict
        Provenance and original header values.
    """

    data: da.Array
    axes: str
    voxel_size: tuple[float, ...] | None
    unit: str = "nm"
    metadata: dict[str, Any] = field(default_factory=dict)
