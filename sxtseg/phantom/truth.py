"""The objects table: one row per instance with its exact geometry (internal).

The columns are described in :func:`sxtseg.phantom.make_infected_cell`.
Volumes and centroids are analytic (of the shape as drawn, objects inside it
included); voxel volumes count the drawn voxels.
"""

from __future__ import annotations

from typing import Any

import math

import numpy as np
import pandas as pd

from ..classes import CLASS_NAMES
from .geometry import PhantomObject, cell_volume_and_centroid


def _cut_sphere(obj: PhantomObject, partner: PhantomObject) -> tuple[float, np.ndarray]:
    """Volume and centroid of a sphere cut by the contact plane shared with an overlapping sphere."""
    r, c = obj.radius, obj.center
    offset = partner.center - c
    d = math.hypot(*offset)  # not np.linalg.norm: BLAS's dot differs in the last bits between CPUs
    plane = (d**2 + r**2 - partner.radius**2) / (2 * d)  # distance from c to the contact plane
    height = r - plane  # height of the cap given to the partner
    sphere = 4 / 3 * np.pi * r**3
    if height <= 0:
        return sphere, c.copy()
    cap = np.pi * height**2 * (3 * r - height) / 3
    cap_centroid = 3 * (2 * r - height) ** 2 / (4 * (3 * r - height))  # from c, toward the partner
    centroid = c - offset / d * cap * cap_centroid / (sphere - cap)
    return sphere - cap, centroid


def _tube_geometry(obj: PhantomObject) -> dict[str, Any]:
    """Capsule along a polyline: cylinder pieces plus two hemispherical caps.

    The kinks between pieces add and remove equal wedges to first order, so
    ``pi r² L + 4/3 pi r³`` is the volume to well under 1 %.
    """
    r, path = obj.radius, obj.path
    pieces = np.diff(path, axis=0)
    lengths = np.linalg.norm(pieces, axis=1)
    midpoints = (path[:-1] + path[1:]) / 2
    tube_volume = np.pi * r**2 * lengths
    half_ball = 2 / 3 * np.pi * r**3
    start_cap = path[0] - pieces[0] / lengths[0] * 3 * r / 8
    end_cap = path[-1] + pieces[-1] / lengths[-1] * 3 * r / 8
    volume = float(tube_volume.sum() + 2 * half_ball)
    moment = (tube_volume[:, None] * midpoints).sum(axis=0) + half_ball * (start_cap + end_cap)
    length = float(lengths.sum() + 2 * r)
    # semi-axes: half the length under the axis the tube runs along most, the radius elsewhere
    chord = path[-1] - path[0]
    semi_axes = np.full(3, r)
    semi_axes[int(np.argmax(np.abs(chord)))] = length / 2
    return dict(volume=volume, centroid=moment / volume, semi_axes=semi_axes, length=length)


def _geometry(obj: PhantomObject) -> dict[str, Any]:
    """Analytic volume (nm³), centroid (nm), semi-axes (nm) and length (nm) of the drawn shape."""
    if obj.shape == "cell":
        volume, centroid = cell_volume_and_centroid(obj)
        return dict(volume=volume, centroid=centroid, semi_axes=obj.semi_axes, length=2 * obj.radius)
    if obj.shape == "tube":
        return _tube_geometry(obj)
    volume = 4 / 3 * np.pi * float(np.prod(obj.semi_axes))
    centroid = obj.center.copy()
    if obj.shape == "dmv" and obj.partner is not None:
        volume, centroid = _cut_sphere(obj, obj.partner)
    return dict(volume=volume, centroid=centroid, semi_axes=obj.semi_axes, length=2 * obj.radius)


def objects_table(objects: list[PhantomObject], voxel_volume_nm3: float) -> pd.DataFrame:
    """One row per object, in instance-id order (columns described in ``make_infected_cell``)."""
    rows = []
    for obj in objects:
        geometry = _geometry(obj)
        volume = geometry["volume"]
        if obj.shape in ("sphere", "dmv", "mvb"):
            diameter = 2 * obj.radius
        else:
            diameter = (6 * volume / np.pi) ** (1 / 3)
        rows.append(
            {
                "instance_id": obj.instance_id,
                "class_id": int(obj.class_id),
                "class_name": CLASS_NAMES[int(obj.class_id)],
                "kind": obj.kind,
                "parent_id": obj.parent_id,
                "centroid_z_nm": geometry["centroid"][0],
                "centroid_y_nm": geometry["centroid"][1],
                "centroid_x_nm": geometry["centroid"][2],
                "radius_z_nm": geometry["semi_axes"][0],
                "radius_y_nm": geometry["semi_axes"][1],
                "radius_x_nm": geometry["semi_axes"][2],
                "length_nm": geometry["length"],
                "diameter_nm": diameter,
                "volume_um3": volume * 1e-9,
                "voxel_volume_um3": obj.n_voxels * voxel_volume_nm3 * 1e-9,
                "touching": obj.touching,
                "clipped": obj.clipped,
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"instance_id": "int64", "class_id": "int64", "parent_id": "int64"})
