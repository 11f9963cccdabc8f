"""Drawing the placed objects into class, instance and LAC arrays (internal).

A voxel belongs to an object when its centre lies inside the object's
analytic shape, the centre of voxel ``(i, j, k)`` lying at
``(i vz, j vy, k vx)`` nm; so the truth is exact per voxel centre for any
(also anisotropic) voxel size.  An object is painted only over the voxels of
its parent (the ice for objects outside every cell), so nothing overwrites
anything else.  DMVs, decoy vesicles and fiducials get partial-volume LAC
values (3 x 3 x 3 sub-samples per voxel), so their sub-voxel membranes and
edges show; the other compartments are flat, then all of them get a smooth
low-amplitude texture.
"""

from __future__ import annotations

import numpy as np

from ..classes import SXTClass
from .fields import smooth_field
from .geometry import CELL_ROUGHNESS, PhantomObject, membrane_thickness_nm
from .lac import LAC
from .surroundings import Capillary

SUPERSAMPLING = 3  # sub-samples per axis for the partial-volume images
# relative amplitude of the smooth within-class texture, per class code
_TEXTURE_AMPLITUDE = {0: 0.01, 1: 0.03, 2: 0.05, 3: 0.03, 4: 0.03, 5: 0.02, 6: 0.02, 7: 0.02, 8: 0.0}
_TEXTURE_LENGTH_NM = 200.0  # correlation length of the texture


# ======================================================================
# shapes on voxel grids
# ======================================================================
def box_slices(lo_nm: np.ndarray, hi_nm: np.ndarray, v: np.ndarray, shape: tuple[int, ...]):
    """Voxel slices covering the physical box [lo, hi], clipped to the volume.

    Returns the slices, open coordinate grids (nm) of the voxel centres in the
    box, and whether the box reached beyond the volume.
    """
    start = np.floor(np.asarray(lo_nm) / v).astype(int)
    stop = np.ceil(np.asarray(hi_nm) / v).astype(int) + 1
    beyond = bool((start < 0).any() or (stop > np.array(shape)).any())
    start = np.clip(start, 0, shape)
    stop = np.clip(stop, 0, shape)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    z, y, x = (np.arange(a, b) * step for a, b, step in zip(start, stop, v))
    return slices, (z[:, None, None], y[None, :, None], x[None, None, :]), beyond


def _squared_distance_to_segment(grids, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance (nm²) from each grid point to the segment a-b."""
    z, y, x = grids
    ab = b - a
    t = ((z - a[0]) * ab[0] + (y - a[1]) * ab[1] + (x - a[2]) * ab[2]) / max(float(ab @ ab), 1e-12)
    t = np.clip(t, 0, 1)
    return (z - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (x - a[2] - t * ab[2]) ** 2


def _power_distance(grids, center: np.ndarray, radius: float) -> np.ndarray:
    """``|p - c|² - r²``: negative inside the sphere; equal for two spheres on their contact plane."""
    z, y, x = grids
    return (z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 - radius**2


def object_mask(obj: PhantomObject, grids) -> np.ndarray:
    """Voxels (of the grids' box) whose centres lie inside the object's shape."""
    z, y, x = grids
    if obj.shape == "tube":
        r2 = obj.semi_axes[0] ** 2
        d2 = np.full(np.broadcast_shapes(z.shape, y.shape, x.shape), np.inf)
        for a, b in zip(obj.path[:-1], obj.path[1:]):
            d2 = np.minimum(d2, _squared_distance_to_segment(grids, a, b))
        return d2 <= r2
    if obj.shape == "dmv":
        power = _power_distance(grids, obj.center, obj.radius)
        mask = power <= 0
        if obj.partner is not None:  # split the overlap with the partner along the contact plane
            partner_power = _power_distance(grids, obj.partner.center, obj.partner.radius)
            if obj.instance_id < obj.partner.instance_id:  # the lower id takes the voxels on the plane
                mask &= power <= partner_power
            else:
                mask &= power < partner_power
        return mask
    c, a = obj.center, obj.semi_axes  # ellipsoid, sphere or mvb
    return ((z - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((x - c[2]) / a[2]) ** 2 <= 1


def object_box(obj: PhantomObject) -> tuple[np.ndarray, np.ndarray]:
    if obj.shape == "tube":
        return obj.path.min(axis=0) - obj.radius, obj.path.max(axis=0) + obj.radius
    return obj.center - obj.semi_axes, obj.center + obj.semi_axes


# ======================================================================
# partial-volume images
# ======================================================================
def _dmv_values(obj: PhantomObject, sub, v: np.ndarray) -> np.ndarray:
    """A DMV's radial profile: outer membrane, thin gap, inner membrane, lumen."""
    radius = obj.radius
    membrane = membrane_thickness_nm(v, radius)  # scales with the voxel size
    r = np.sqrt(np.maximum(_power_distance(sub, obj.center, radius) + radius**2, 0))
    depth = radius - r  # distance below the outer surface
    in_membrane = (depth <= membrane) | ((depth > 2 * membrane) & (depth <= 3 * membrane))
    return np.where(in_membrane, LAC["dmv_membrane"] * obj.lac_factor, LAC["dmv_lumen"] * obj.lac_factor)


def _mvb_values(obj: PhantomObject, sub, v: np.ndarray) -> np.ndarray:
    """A multivesicular body: limiting membrane around a lumen holding small dense vesicles."""
    radius = obj.radius
    r = np.sqrt(np.maximum(_power_distance(sub, obj.center, radius) + radius**2, 0))
    in_membrane = radius - r <= membrane_thickness_nm(v, radius)
    value = np.where(in_membrane, LAC["mvb_membrane"] * obj.lac_factor, LAC["mvb_lumen"] * obj.lac_factor)
    for *center, inner_radius in obj.inner_vesicles:
        inside = _power_distance(sub, np.array(center), inner_radius) <= 0
        value = np.where(inside, LAC["mvb_vesicle"] * obj.lac_factor, value)
    return value


def _partial_volume_image(obj: PhantomObject, grids, old: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Partial-volume image of an object over its box.

    Each voxel is split into 3 x 3 x 3 sub-samples; those inside the object
    take its value there (a DMV's membranes and lumen, an MVB's membrane and
    small vesicles, or one flat LAC), the others keep the voxel's current
    value ``old``.
    """
    if obj.shape == "dmv":
        values = _dmv_values
    elif obj.shape == "mvb":
        values = _mvb_values
    else:

        def values(obj, sub, v):
            return LAC[obj.material] * obj.lac_factor

    offsets = [((np.arange(SUPERSAMPLING) + 0.5) / SUPERSAMPLING - 0.5) * step for step in v]
    total = np.zeros(old.shape)
    covered = np.zeros(old.shape)
    for dz in offsets[0]:
        for dy in offsets[1]:
            for dx in offsets[2]:
                sub = (grids[0] + dz, grids[1] + dy, grids[2] + dx)
                inside = object_mask(obj, sub)
                total += np.where(inside, values(obj, sub, v), 0.0)
                covered += inside
    n = SUPERSAMPLING**3
    return (total + (n - covered) * old) / n


# ======================================================================
# painting
# ======================================================================
def draw_cell(
    cell: PhantomObject, classes: np.ndarray, instances: np.ndarray, image: np.ndarray, v: np.ndarray
) -> None:
    """Paint a bumpy cell as cytoplasm over the ice, a few z-slices at a time to bound memory."""
    bound = 1.1 * CELL_ROUGHNESS
    y = (np.arange(classes.shape[1]) * v[1] - cell.center[1]) / cell.semi_axes[1]
    x = (np.arange(classes.shape[2]) * v[2] - cell.center[2]) / cell.semi_axes[2]
    n_voxels = 0
    for z0 in range(0, classes.shape[0], 16):
        z = (np.arange(z0, min(z0 + 16, classes.shape[0])) * v[0] - cell.center[0]) / cell.semi_axes[0]
        rho = np.sqrt(z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2)
        inside = rho <= 1 - bound
        band = np.nonzero(np.abs(rho - 1) <= bound)
        q = np.stack([z[band[0]], y[band[1]], x[band[2]]], axis=1) / rho[band][:, None]
        inside[band] = rho[band] <= 1 + cell.roughness(q)
        sl = slice(z0, z0 + len(z))
        inside &= instances[sl] == 0  # a second cell never takes the first one's voxels
        classes[sl][inside] = SXTClass.CYTOPLASM
        instances[sl][inside] = cell.instance_id
        image[sl][inside] = LAC["cytoplasm"]
        n_voxels += int(inside.sum())
    cell.n_voxels = n_voxels
    faces = (
        instances[0], instances[-1], instances[:, 0], instances[:, -1], instances[:, :, 0], instances[:, :, -1]
    )  # fmt: skip
    cell.clipped = any((face == cell.instance_id).any() for face in faces)  # it reaches the volume border


def draw_capillary(capillary: Capillary, instances: np.ndarray, image: np.ndarray, v: np.ndarray) -> int:
    """Paint the glass wall (class BACKGROUND, instance 0) over the ice; return its voxel count."""
    z = np.arange(image.shape[0]) * v[0] - capillary.axis_z_nm
    x = np.arange(image.shape[2]) * v[2] - capillary.axis_x_nm
    distance = np.hypot(z[:, None], x[None, :])
    wall = (distance >= capillary.inner_radius_nm) & (distance <= capillary.inner_radius_nm + capillary.wall_nm)
    region = wall[:, None, :] & (instances == 0)
    image[region] = LAC["glass"]
    return int(region.sum())


def draw_object(
    obj: PhantomObject, classes: np.ndarray, instances: np.ndarray, image: np.ndarray, v: np.ndarray
) -> None:
    """Paint one object inside its bounding box, only over its parent's voxels.

    Voxels of any other object are left alone; if the shape needed some of
    them, the object is marked ``clipped``.
    """
    lo, hi = object_box(obj)
    slices, grids, beyond = box_slices(lo, hi, v, classes.shape)
    mask = object_mask(obj, grids)
    parent_id = obj.parent_id
    allowed = mask & (instances[slices] == parent_id)
    class_view, instance_view, image_view = classes[slices], instances[slices], image[slices]
    if obj.partial_volume:
        # partial-volume values, also on the parent (and partner) voxels around it
        blend = instance_view == parent_id
        if obj.partner is not None:
            blend |= instance_view == obj.partner.instance_id
        values = _partial_volume_image(obj, grids, image_view.astype(float), v)
        image_view[blend] = values[blend]
    else:
        image_view[allowed] = LAC[obj.material] * obj.lac_factor
    class_view[allowed] = obj.class_id
    instance_view[allowed] = obj.instance_id
    obj.n_voxels = int(allowed.sum())
    obj.clipped = beyond or obj.n_voxels < int(mask.sum())


def mark_touching_dmvs(dmvs: list[PhantomObject], instances: np.ndarray, v: np.ndarray) -> None:
    """Set ``touching`` on DMVs whose voxels are face-adjacent to another DMV's."""
    if len(dmvs) < 2:
        return
    boxes = [object_box(d) for d in dmvs]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    slices, _, _ = box_slices(lo, hi, v, instances.shape)
    region = instances[slices]
    is_dmv = np.zeros(int(instances.max()) + 1, bool)
    by_id = {d.instance_id: d for d in dmvs}
    is_dmv[list(by_id)] = True
    for axis in range(3):
        a = np.moveaxis(region, axis, 0)[:-1]
        b = np.moveaxis(region, axis, 0)[1:]
        both = (a != b) & is_dmv[a] & is_dmv[b]
        for i in np.unique(np.concatenate([a[both], b[both]])):
            by_id[int(i)].touching = True


def draw(objects: list[PhantomObject], capillary: Capillary | None, shape: tuple[int, int, int], v: np.ndarray):
    """Class labels, instance labels and the noiseless, untextured LAC image of all objects.

    The cells come first, then the capillary wall, then every other object
    in list order (parents before the objects inside them).  Returns the
    three arrays and the capillary's voxel count (0 without one).
    """
    classes = np.zeros(shape, np.uint8)
    instances = np.zeros(shape, np.uint32)
    image = np.full(shape, LAC["ice"], np.float32)
    cells = [obj for obj in objects if obj.shape == "cell"]
    for cell in cells:
        draw_cell(cell, classes, instances, image, v)
    capillary_voxels = draw_capillary(capillary, instances, image, v) if capillary is not None else 0
    for obj in objects:
        if obj.shape != "cell":
            draw_object(obj, classes, instances, image, v)
    mark_touching_dmvs([obj for obj in objects if obj.shape == "dmv"], instances, v)
    return classes, instances, image, capillary_voxels


def add_texture(rng: np.random.Generator, image: np.ndarray, classes: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Multiply by ``1 + amplitude(class) * smooth field``: compartments are not flat."""
    amplitude = np.array([_TEXTURE_AMPLITUDE[c] for c in range(len(SXTClass))], np.float32)
    texture = smooth_field(rng, image.shape, v, _TEXTURE_LENGTH_NM)
    texture *= amplitude[classes]
    texture += 1
    image *= texture
    return image
