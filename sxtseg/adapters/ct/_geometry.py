"""Voxel grids in patient space: reorder any scan to the (S, P, L) axes sxtseg uses for CT.

A scan arrives as an array with an affine that maps its voxel indices to
patient coordinates in millimetres, in DICOM's LPS frame (x towards the
patient's left, y towards the back, z towards the head).  :func:`to_spl`
permutes and flips the array (lazily, without resampling) so that its axes
are (z, y, x) = (towards Superior, towards Posterior, towards Left): an axial
slice ``volume[k]`` is seen from the feet, as radiologists view it, with the
patient's right on the left of the image and the front at the top.
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError

__all__ = ["to_spl", "LPS_FROM_RAS"]

#: NIfTI's world frame is RAS (x towards the patient's right, y to the front); DICOM's is LPS.
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# output array axis -> patient axis it must follow (LPS index: 0 = L, 1 = P, 2 = S)
_TARGET = (2, 1, 0)


def to_spl(data, affine: np.ndarray, what: str):
    """Permute and flip ``data`` so its axes follow (Superior, Posterior, Left).

    Parameters
    ----------
    data : numpy or dask array, 3-D
        Voxels in any axis order.
    affine : (4, 4) array
        Maps ``(i, j, k, 1)`` voxel indices of ``data`` to LPS patient
        coordinates in mm.
    what : str
        Name of the scan, for error messages.

    Returns
    -------
    data, affine
        The reordered array (a view) and its affine (maps ``(z, y, x, 1)`` to LPS mm).

    Raises
    ------
    ShapeError
        If two array axes are closest to the same patient axis (an oblique
        scan at about 45 degrees), which no permutation can straighten.
    """
    affine = np.asarray(affine, dtype=float)
    columns = affine[:3, :3]
    nearest = np.argmax(np.abs(columns), axis=0)  # patient axis each array axis runs along
    if len(set(nearest.tolist())) != 3:
        raise ShapeError(f"{what}: voxel axes are oblique to the patient axes (direction cosines "
                         f"{np.round(columns / np.linalg.norm(columns, axis=0), 3).tolist()}); cannot reorder to S, P, L")
    order = [int(np.nonzero(nearest == patient_axis)[0][0]) for patient_axis in _TARGET]
    data = data.transpose(order)
    new_affine = np.eye(4)
    new_affine[:3, 3] = affine[:3, 3]
    index = [slice(None)] * 3
    for out_axis, in_axis in enumerate(order):
        column = affine[:3, in_axis].copy()
        if column[_TARGET[out_axis]] < 0:  # runs the wrong way: flip, the origin moves to the far end
            index[out_axis] = slice(None, None, -1)
            new_affine[:3, 3] += column * (data.shape[out_axis] - 1)
            column = -column
        new_affine[:3, out_axis] = column
    return data[tuple(index)], new_affine
