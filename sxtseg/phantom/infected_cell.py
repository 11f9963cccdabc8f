"""make_infected_cell: the phantom's one public function, from arguments to Volumes and a table."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..classes import label_metadata
from ..errors import InvalidArgumentError, ShapeError
from ..volume import Volume, dask_view
from .arguments import check_count, check_flag, check_nonnegative, check_seed, check_shape, check_voxel_size
from .decoys import place_lysosomes, place_multivesicular_bodies, place_vacuoles
from .geometry import CELL_ROUGHNESS, cell_volume_and_centroid, fraction_in_box
from .imaging import ImagingModel
from .lac import LAC
from .raster import add_texture, draw
from .scene import (
    DMV_PER_UM3,
    ICE_MARGIN,
    ICE_MARGIN_VOXELS,
    LIPID_PER_UM3,
    MIN_CELL_DIAMETER_NM,
    MIN_SIDE_VOXELS,
    MITO_PER_UM3,
    Scene,
    fill_field_of_view,
    make_cell,
    make_nucleus,
    place_dmvs,
    place_lipid_droplets,
    place_mitochondria,
    place_nucleoli,
    shift_across_borders,
)
from .surroundings import place_capillary, place_fiducials, place_neighbour_cell
from .truth import objects_table

__all__ = ["make_infected_cell"]

logger = logging.getLogger("sxtseg.phantom")


def _check_room_for_a_cell(shape: tuple[int, int, int], v: np.ndarray) -> None:
    """Refuse volumes whose cell would be too small to hold a nucleus and cytoplasm."""
    extent = np.array(shape) * v
    margin = np.maximum(ICE_MARGIN_VOXELS * v, ICE_MARGIN * extent)
    smallest_cell = float((0.96 * (extent - 2 * margin) / (1 + CELL_ROUGHNESS)).min())
    if smallest_cell < MIN_CELL_DIAMETER_NM:
        sizes = "/".join(f"{x:g}" for x in dict.fromkeys(v.tolist()))
        raise ShapeError(
            f"a {shape} volume of {sizes} nm voxels is only {extent.min() / 1000:.2f} µm across; the cell "
            f"would be under {MIN_CELL_DIAMETER_NM / 1000:g} µm, too small for a nucleus: "
            "use more voxels or larger ones"
        )


def _jsonable(value: Any) -> Any:
    """Chunks as given, made JSON-friendly (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float)) or value is None:
        return value
    return str(value)


def _wrap(array: np.ndarray, v: np.ndarray, chunks: Any, parameters: dict, **metadata: Any) -> Volume:
    """A Volume of ``array`` with the phantom's provenance in its metadata."""
    return Volume(
        dask_view(array, chunks),  # no copy: the generated array is not used elsewhere
        voxel_size=tuple(float(x) for x in v),
        unit="nm",
        axes="zyx",
        metadata={
            "source": {"reader": "phantom", "path": "<phantom>"},
            "phantom": copy.deepcopy(parameters),
            **metadata,
        },
    )


def make_infected_cell(
    shape: tuple[int, int, int] = (128, 256, 256),
    voxel_size_nm: float | tuple[float, float, float] = 30.0,
    *,
    n_dmv: int | None = None,
    n_mitochondria: int | None = None,
    n_lipid_droplets: int | None = None,
    touching_fraction: float = 0.2,
    seed: int | None = 0,
    noise: float = 0.04,
    blur: float = 1.0,
    imaging: ImagingModel | None = None,
    n_lysosomes: int = 0,
    n_multivesicular_bodies: int = 0,
    n_vacuoles: int = 0,
    n_fiducials: int = 0,
    cut_by_field_of_view: bool = False,
    capillary: bool = False,
    neighbour_cell: bool = False,
    ice: bool = True,
    chunks: Any = 64,
) -> tuple[Volume, Volume, Volume, pd.DataFrame]:
    """A synthetic cryo-SXT volume of a SARS-CoV-2-infected cell, with its ground truth.

    The cell is an ellipsoid spanning about 80 % of the volume along each axis
    (at least 3 voxels and 4 % of the extent of ice on every side), its
    boundary bumped by low-frequency noise (up to ±8 % of the radius).
    Inside: an off-centre nucleus (ellipsoid) holding one or two nucleoli;
    mitochondria (bent capsule-shaped tubes, 250-500 nm thick, 1-3 µm long);
    lipid droplets (spheres, 300-800 nm across); and DMVs (spheres of 200-400 nm
    outer diameter with two dense membranes around a lumen) clustered 0.2-1.3 µm
    (centre) from the nuclear envelope on the side with more cytoplasm.  A
    fraction of the DMVs come in touching pairs whose centres are 0.90-0.95 of
    the sum of their radii apart; the overlap is split along the contact
    plane.  Other objects never overlap and keep a gap of at least two voxels
    (the largest edge) and 50 nm, so they never touch.  The cell and nucleus
    scale with the volume, the organelles keep their physical size whatever
    the voxel size.

    Each compartment gets its LAC (:data:`~sxtseg.phantom.LAC`, ±4 % per
    organelle) times a smooth low-amplitude texture; DMVs, decoys and
    fiducials are drawn with partial-volume sub-sampling so their sub-voxel
    membranes and edges show.  The imaging model then turns the exact LAC
    image into a reconstruction-like one.  By default it is that of ``blur``
    and ``noise`` (:meth:`ImagingModel.from_blur_noise`): a Gaussian of
    ``(1.5 blur, blur, blur)`` voxels (z, y, x) and Gaussian noise of standard
    deviation ``noise * sqrt(LAC * LAC_cytoplasm)`` (Poisson-like: it grows
    with the square root of the signal and equals ``noise`` times the
    cytoplasm LAC on cytoplasm).  ``imaging`` replaces it with any
    :class:`ImagingModel` (missing wedge, correlated noise, rings, grey
    values...).

    The scene options below are all off by default; each draws from its own
    random stream (spawned from the seed after the seven streams of the cell,
    so the default phantom is unchanged), and the decoys and fiducials are
    placed after everything else, so turning them on leaves the DMVs and the
    other organelles exactly where they were.

    Parameters
    ----------
    shape : tuple of 3 int
        Number of voxels (z, y, x); each at least 32.
    voxel_size_nm : float or tuple of 3 float
        Voxel size in nm: one number (isotropic) or (z, y, x), e.g.
        ``(60, 30, 30)``.  Organelle sizes are physical, so larger voxels give
        fewer voxels per organelle; the truth stays exact per voxel centre.
    n_dmv, n_mitochondria, n_lipid_droplets : int or None
        How many DMVs, mitochondria and lipid droplets to place.  ``None``
        scales the count with the cytoplasm volume (in the field of view)
        (about 0.8 DMVs, 0.25 mitochondria and 0.1 lipid droplets per µm³: 50
        / 16 / 6 for the default shape, 114 / 35 / 14 for (128, 384, 384)).
        When fewer fit than were asked for explicitly, a ``UserWarning`` says
        so (for default counts, only a log message).
    touching_fraction : float
        Fraction of the DMVs placed in touching pairs (0-1).
    seed : int or None
        Seed of :func:`numpy.random.default_rng`, the only source of
        randomness: the same seed gives the same volumes and table.  ``None``
        draws fresh entropy (recorded in the metadata).
    noise : float
        Relative noise level (see above); 0 gives a noiseless image.
        Ignored when ``imaging`` is given.
    blur : float
        Gaussian sigma in the yx plane, in voxels (z gets 1.5 times it);
        0 disables the blur.  Ignored when ``imaging`` is given.
    imaging : ImagingModel or None
        The imaging model; ``None``: ``ImagingModel.from_blur_noise(blur,
        noise, voxel_size_nm)``.
    n_lysosomes : int
        Lysosomes (class ``OTHER_VESICLE``): uniform dense balls (LAC
        0.30-0.40 /µm) 200-800 nm across, about a third of them the size of
        DMVs: decoys.
    n_multivesicular_bodies : int
        Multivesicular bodies (``OTHER_VESICLE``): vesicles 400-800 nm across
        with a dense membrane, holding 5-20 small vesicles of 40-80 nm (part
        of the body, no instances of their own).
    n_vacuoles : int
        Vacuoles (``OTHER_VESICLE``): low-LAC balls (0.13-0.17 /µm) 300-1000
        nm across.  A third of each decoy kind is placed in the DMV factory
        zone when there is room.  Decoys keep the clearance from every other
        object, DMVs included.
    n_fiducials : int
        Gold beads (class ``FIDUCIAL``, LAC 10 /µm) 100-250 nm across: ``n //
        4`` on the cell's surface, the others in the ice.
    cut_by_field_of_view : bool
        Shift the cell across one or two y/x borders (a side or a corner), so
        it reaches past them with no ice there; the faces are recorded in
        ``metadata["phantom"]["cut_faces"]`` (``"y-"``, ``"x+"`` ...).
        Organelles are placed only inside the volume.
    capillary : bool
        A glass capillary wall (LAC 2 /µm, 300-600 nm thick): a cylinder shell
        along y around the cell, showing as a curved bright band near one or
        both x borders.  It is class ``BACKGROUND`` and instance 0 (it is not
        part of any cell) and has no table row; its geometry and voxel count
        are in ``metadata["phantom"]["capillary_wall"]``.
    neighbour_cell : bool
        Part of a second cell entering across a corner of the yx plane:
        cytoplasm class, its own instance and table row (kind
        ``"neighbour_cell"``, parent 0), no nucleus (it would lie outside the
        field of view).  A ``UserWarning`` says when there is no room for it.
        With ``capillary`` the wall clears both cells, so it usually lies
        outside the field of view (a ``UserWarning`` says so).
    ice : bool
        ``False``: the cell fills the whole field of view (no background
        voxel at all); it cannot be combined with ``capillary``,
        ``neighbour_cell`` or ``n_fiducials``, which need ice.
    chunks : int, tuple or "auto"
        Dask chunks of the returned volumes.

    Returns
    -------
    image : Volume
        The imaged volume, by default float32 linear absorption coefficients
        in 1/µm; voxel size ``(vz, vy, vx)`` nm, axes ``"zyx"``.
        ``metadata`` holds ``source`` (``{"reader": "phantom", "path":
        "<phantom>"}``), ``phantom`` (every parameter, the seed, the LAC
        values, what was placed, and the imaging model under ``imaging``),
        ``quantity`` and ``intensity_unit`` (``"linear_absorption_coefficient"``
        and ``"1/um"``, ``"attenuation_per_voxel"`` and ``"1"``, or
        ``"grey_value"`` and ``"arbitrary"``, after the model's output unit)
        and ``intensity_from_lac`` (``scale`` and ``offset``: value = scale *
        LAC + offset).
    classes : Volume
        uint8 class codes (:class:`sxtseg.classes.SXTClass`), noiseless truth.
    instances : Volume
        uint32 instance ids, 0 for ice (and a capillary wall).  Every object
        has its own id: the cell (its cytoplasm voxels), the nucleus
        (nucleoli excluded), each nucleolus, mitochondrion, lipid droplet,
        DMV, decoy, fiducial and the neighbour cell.
    objects : pandas.DataFrame
        One row per instance id, in id order (cell, nucleus, nucleoli,
        mitochondria, lipid droplets, DMVs, then lysosomes, multivesicular
        bodies, vacuoles, fiducials and the neighbour cell, so the ids of the
        default objects never change).  Positions are in nm with the centre of
        voxel ``i`` at ``i * v`` (as ``scipy.ndimage.center_of_mass`` times the
        voxel size).  Columns:

        ``instance_id``, ``class_id``, ``class_name``
            The id in ``instances``, the class code and its name (the cell's
            row has class ``cytoplasm``: its instance voxels are the cytoplasm).
        ``kind``
            What the object is: ``cell``, ``nucleus``, ``nucleolus``,
            ``mitochondrion``, ``lipid_droplet``, ``dmv``, ``lysosome``,
            ``mvb``, ``vacuole``, ``fiducial`` or ``neighbour_cell``.
        ``parent_id``
            The object it lies in: 0 for the cells and fiducials, the nucleus
            for nucleoli, the cell for everything else.
        ``centroid_z_nm``, ``centroid_y_nm``, ``centroid_x_nm``
            Analytic centroid of the whole body as drawn (objects inside it
            included; a touching DMV without the cap its partner took).
        ``radius_z_nm``, ``radius_y_nm``, ``radius_x_nm``
            Semi-axes.  Ellipsoids are axis-aligned, so these are exact; a
            cell gives those of its smooth ellipsoid before the bumps.  For a
            mitochondrion, half its capsule length under the axis its
            end-to-end direction runs along most, and the tube radius under
            the other two.
        ``length_nm``
            Longest extent: the capsule length along a mitochondrion's centre
            line (caps included), otherwise twice the largest semi-axis.
        ``diameter_nm``
            Outer diameter of spheres (lipid droplets, DMVs, decoys,
            fiducials); the equivalent-sphere diameter of ``volume_um3``
            otherwise.
        ``volume_um3``
            Analytic volume of the whole body as drawn, µm³ (of the whole
            cell, also where it reaches past the volume).
        ``voxel_volume_um3``
            Its voxels (instance voxels plus those of the objects inside it)
            times the voxel volume, µm³.
        ``touching``
            DMVs only: its voxels are face-adjacent to another DMV's.
        ``clipped``
            The volume border or another object cut voxels off the analytic
            shape (the planned contact plane of a touching DMV pair is part
            of the shape and does not count).

    Raises
    ------
    ShapeError
        If ``shape`` is not three integers >= 32, or the volume is too small
        at this voxel size to hold a cell (at least 0.5 µm across) with a
        nucleus.
    VoxelSizeError
        If ``voxel_size_nm`` is not one or three positive finite numbers.
    InvalidArgumentError
        If a count, ``noise``, ``blur``, ``seed``, ``touching_fraction``,
        ``imaging`` or a scene option is out of range, or ``ice=False`` is
        combined with an option that needs ice (a ``ValueError`` subclass;
        the message names the argument).

    Examples
    --------
    >>> image, classes, instances, objects = make_infected_cell((32, 64, 64), seed=3)
    >>> image.metadata["quantity"], image.metadata["intensity_unit"]
    ('linear_absorption_coefficient', '1/um')
    >>> sorted(set(objects["class_name"]))[:2]
    ['cytoplasm', 'dmv']
    >>> objects["instance_id"].tolist() == list(range(1, len(objects) + 1))
    True

    Decoys, fiducials and a missing wedge:

    >>> model = ImagingModel(tilt_range_deg=(-60, 60))
    >>> _, classes, _, objects = make_infected_cell(
    ...     (32, 96, 96), seed=3, n_lysosomes=2, n_fiducials=2, imaging=model)
    >>> objects.loc[objects["class_name"] == "other_vesicle", "kind"].tolist()
    ['lysosome', 'lysosome']
    >>> int((objects["class_name"] == "fiducial").sum())
    2
    """
    started = time.perf_counter()
    shape = check_shape(shape, MIN_SIDE_VOXELS)
    v = check_voxel_size(voxel_size_nm)
    requested = {
        "n_dmv": check_count("n_dmv", n_dmv),
        "n_mitochondria": check_count("n_mitochondria", n_mitochondria),
        "n_lipid_droplets": check_count("n_lipid_droplets", n_lipid_droplets),
    }
    noise = check_nonnegative("noise", noise)
    blur = check_nonnegative("blur", blur)
    touching_fraction = check_nonnegative("touching_fraction", touching_fraction)
    if touching_fraction > 1:
        raise InvalidArgumentError(f"touching_fraction must be between 0 and 1, not {touching_fraction!r}")
    seed = check_seed(seed)
    if imaging is not None and not isinstance(imaging, ImagingModel):
        raise InvalidArgumentError(f"imaging must be None or an ImagingModel, not {type(imaging).__name__}")
    options = {
        "n_lysosomes": check_count("n_lysosomes", n_lysosomes, allow_none=False),
        "n_multivesicular_bodies": check_count(
            "n_multivesicular_bodies", n_multivesicular_bodies, allow_none=False
        ),
        "n_vacuoles": check_count("n_vacuoles", n_vacuoles, allow_none=False),
        "n_fiducials": check_count("n_fiducials", n_fiducials, allow_none=False),
        "cut_by_field_of_view": check_flag("cut_by_field_of_view", cut_by_field_of_view),
        "capillary": check_flag("capillary", capillary),
        "neighbour_cell": check_flag("neighbour_cell", neighbour_cell),
        "ice": check_flag("ice", ice),
    }
    if not options["ice"]:
        needs_ice = [name for name in ("capillary", "neighbour_cell", "n_fiducials") if options[name]]
        if needs_ice:
            raise InvalidArgumentError(f"ice=False leaves no room for {', '.join(needs_ice)}: they lie in the ice")
    _check_room_for_a_cell(shape, v)
    model = imaging if imaging is not None else ImagingModel.from_blur_noise(blur, noise, v)

    # one independent stream per step, all from the one seed
    rng = np.random.default_rng(seed)
    rng_cell, rng_nucleus, rng_dmv, rng_mito, rng_lipid, rng_texture, rng_noise = rng.spawn(7)
    # the scene options' streams: the seed's children 7-13, so the seven above never change
    rng_cut, rng_neighbour, rng_capillary, rng_fiducial, rng_lysosome, rng_mvb, rng_vacuole = rng.spawn(7)

    # --- place everything (nm)
    clearance = max(2 * float(v.max()), 50.0)
    cell = make_cell(rng_cell, shape, v)
    cut_faces = shift_across_borders(rng_cut, cell, shape, v) if options["cut_by_field_of_view"] else []
    nucleus, factory_direction = make_nucleus(rng_nucleus, cell, clearance)
    nucleoli = place_nucleoli(rng_nucleus, nucleus, clearance)
    if not options["ice"]:
        fill_field_of_view(cell, shape, v)
    scene = Scene(clearance, cell, nucleus, factory_direction)
    cell_volume = cell_volume_and_centroid(cell)[0]
    if cell.placement_box is not None:  # count only what lies in the field of view
        cell_volume *= fraction_in_box(cell, cell.placement_box)
    cytoplasm_um3 = (cell_volume - 4 / 3 * np.pi * np.prod(nucleus.semi_axes)) * 1e-9
    target = {
        "n_dmv": round(DMV_PER_UM3 * cytoplasm_um3),
        "n_mitochondria": round(MITO_PER_UM3 * cytoplasm_um3),
        "n_lipid_droplets": round(LIPID_PER_UM3 * cytoplasm_um3),
    }
    target.update({key: n for key, n in requested.items() if n is not None})
    # the long mitochondria first, while there is room; then the small, flexible DMVs
    mitochondria = place_mitochondria(rng_mito, scene, target["n_mitochondria"])
    dmvs = place_dmvs(rng_dmv, scene, target["n_dmv"], touching_fraction)
    lipid_droplets = place_lipid_droplets(rng_lipid, scene, target["n_lipid_droplets"])
    # the scene options, after everything above
    lysosomes = place_lysosomes(rng_lysosome, scene, options["n_lysosomes"])
    mvbs = place_multivesicular_bodies(rng_mvb, scene, options["n_multivesicular_bodies"], v)
    vacuoles = place_vacuoles(rng_vacuole, scene, options["n_vacuoles"])
    neighbour = None
    if options["neighbour_cell"]:
        neighbour = place_neighbour_cell(rng_neighbour, cell, shape, v, clearance)
    wall = None
    if options["capillary"]:
        wall = place_capillary(rng_capillary, [c for c in (cell, neighbour) if c is not None], shape, v, clearance)
    fiducials = place_fiducials(rng_fiducial, scene, options["n_fiducials"], shape, v, neighbour, wall)

    placed = {
        "n_dmv": len(dmvs),
        "n_mitochondria": len(mitochondria),
        "n_lipid_droplets": len(lipid_droplets),
        "n_lysosomes": len(lysosomes),
        "n_multivesicular_bodies": len(mvbs),
        "n_vacuoles": len(vacuoles),
        "n_fiducials": len(fiducials),
        "neighbour_cell": neighbour is not None,
    }
    for key, n in placed.items():
        wanted = int(target[key] if key in target else options[key])
        if n < wanted:
            message = f"make_infected_cell placed {int(n)} of {wanted} requested ({key}): no more room"
            if key in target and requested[key] is None:  # a default count: only say it in the log
                logger.info(message + " in the cell")
            else:
                warnings.warn(message + (" in the cell" if key in target else ""), stacklevel=2)
    objects = [cell, nucleus, *nucleoli, *mitochondria, *lipid_droplets, *dmvs]  # the default phantom
    objects += [*lysosomes, *mvbs, *vacuoles, *fiducials]
    if neighbour is not None:
        objects.append(neighbour)
    for instance_id, obj in enumerate(objects, start=1):
        obj.instance_id = instance_id

    # --- draw (voxels), then image
    classes, instances, image, wall_voxels = draw(objects, wall, shape, v)
    if wall is not None and wall_voxels == 0:
        warnings.warn("make_infected_cell: the capillary wall lies outside the field of view", stacklevel=2)
    image = add_texture(rng_texture, image, classes, v)
    image = model.apply(image, v, rng_noise)
    isotropic = bool((v == v[0]).all())
    voxel_volume_nm3 = float(v[0]) ** 3 if isotropic else float(np.prod(v))
    table = objects_table(objects, voxel_volume_nm3)

    # --- wrap
    parameters = {
        "shape": list(shape),
        "voxel_size_nm": float(v[0]) if isotropic and np.ndim(voxel_size_nm) == 0 else v.tolist(),
        **requested,
        "touching_fraction": touching_fraction,
        "seed": seed,
        "noise": noise,
        "blur": blur,
        "blur_sigma_voxels": [float(s) for s in model.psf_sigma_in_voxels(v)],
        "imaging": model.to_dict(),
        **options,
        "cut_faces": cut_faces,
        "capillary_wall": {**wall.as_dict(), "voxels": wall_voxels} if wall is not None else None,
        "chunks": _jsonable(chunks),
        "target": {key: int(n) for key, n in target.items()},  # the counts aimed at, defaults resolved
        "placed": placed,
        "lac_1_per_um": dict(LAC),
    }
    class_metadata = label_metadata()
    image_volume = _wrap(image, v, chunks, parameters, **model.output_metadata(v))
    classes_volume = _wrap(classes, v, chunks, parameters, quantity="class_labels", **class_metadata)
    instances_volume = _wrap(instances, v, chunks, parameters, quantity="instance_labels")
    logger.debug(
        "phantom %s at %s nm: %d objects (%s) in %.2f s",
        shape, v.tolist(), len(objects), placed, time.perf_counter() - started,
    )  # fmt: skip
    return image_volume, classes_volume, instances_volume, table
