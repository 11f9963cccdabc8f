"""The main job: a tomogram in, organelles segmented and measured out.

:func:`run` takes one or more volumes (paths or Volumes) and, for each,
opens it, segments it block by block (:func:`sxtseg.segment`),
finds the instances (connected components per class, touching DMVs split),
measures them, and writes:

- ``volume.ome.zarr``: the image, with ``labels/classes`` and ``labels/instances``;
- ``objects.csv`` and ``objects.parquet``: one row per object;
- ``summary.json``: the per-cell summary, the input, its voxel size, the
  model's name and hash, the sxtseg version and the seconds of every stage;
- ``run.json``: the run's fingerprint (the input file's size and
  modification time, or a hash of its content, the weights hash, every
  parameter, the device), written first and checked when resuming;
- ``quicklook.png``: three orthogonal slices with the segmentation outlined,
  the DMV diameters and their distance to the nucleus.

Everything is written to ``OUTDIR.partial`` and renamed to ``OUTDIR`` at the
end, so a failed run leaves no half-written results, and running the same
command again resumes where it stopped: finished samples are kept, the
segmentation continues from its last finished block.  A resume with another
input, model, parameter or device is refused, saying what changed;
``overwrite=True`` (``--overwrite``) always starts clean.  With several
inputs, each gets ``OUTDIR/<sample>/`` and ``OUTDIR/objects.csv`` combines
their tables with a ``sample`` column.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd

from .classes import CLASS_COLORS, CLASS_NAMES, SXTClass, label_metadata
from .errors import InvalidArgumentError, OutputExistsError
from .object_checks import FIDUCIAL_MIN_LAC
from .volume import Volume, block_by_block

__all__ = ["run", "sample_name", "samples_table"]


def sample_name(source) -> str:
    """A sample name from a path (its file name without extensions) or a Volume's source."""
    if isinstance(source, Volume):
        source = source._name()
    name = Path(str(source).rstrip("/")).name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif", ".mrc", ".rec", ".h5",
                   ".hdf5", ".npy", ".st", ".map"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "sample"
    return name or "sample"


# DMV instance defaults, chosen on 4 tuning phantoms (seeds 7000-7003, 96x256x256 with lysosome and
# MVB decoys; not the demo cell) by DMV object F1 over a 3x3x3 grid (benchmarks/bench_instance_defaults.py,
# docs/benchmarks/bench_instance_defaults.json): 100 nm / 180 nm / depth 0 gave precision 0.80, recall
# 0.97, no split or merged vesicles; the earlier 150 / 150 / half a voxel (chosen on the demo cell)
# gave 0.78 / 0.95 and merged 5 touching pairs.
#: DMVs are 200-400 nm across: touching ones are split with peaks at least this far apart ...
DMV_MIN_DISTANCE_NM = 100.0
#: ... DMV pieces smaller than a ball of this diameter (segmentation specks) are not objects ...
DMV_MIN_DIAMETER_NM = 180.0
#: ... and two seeds are merged only when no saddle at all separates them (h-maxima depth, nm).
DMV_MIN_DEPTH_NM = 0.0


def _instances(classes: Volume, *, dmv_min_distance_nm: float = DMV_MIN_DISTANCE_NM,
               dmv_min_diameter_nm: float = DMV_MIN_DIAMETER_NM,
               dmv_min_depth_nm: float | None = DMV_MIN_DEPTH_NM) -> Volume:
    """Instance labels: connected components of every class, with touching DMVs split apart.

    DMV pieces smaller than a ball of ``dmv_min_diameter_nm`` get no instance
    label (their voxels keep their class).  The defaults come from tuning
    phantoms, not the demo cell (see the comment above
    :data:`DMV_MIN_DISTANCE_NM`); the demo cell is only checked with them.
    """
    from .instances import label_classes, split_touching

    voxel_nm3 = float(np.prod(classes.voxel_size_in("nm")))
    min_voxels = np.pi / 6 * dmv_min_diameter_nm**3 / voxel_nm3
    if not block_by_block(classes):
        return _instances_in_memory(classes, dmv_min_distance_nm, min_voxels, dmv_min_diameter_nm, dmv_min_depth_nm)
    from sxtseg.kernels import label_dtype

    others = classes.with_data(da.where(classes.data == SXTClass.DMV, 0, classes.data).astype(np.uint8))
    components = label_classes(others)
    count = components.metadata["instances"]["count"]
    dmv = split_touching(classes, SXTClass.DMV, min_distance_nm=dmv_min_distance_nm, min_depth_nm=dmv_min_depth_nm)
    n_dmv = dmv.metadata["instances"]["count"]
    sizes = da.bincount(dmv.data.ravel(), minlength=n_dmv + 1).compute()
    keep = sizes >= min_voxels
    keep[0] = False
    dtype = label_dtype(count + int(keep.sum()))  # uint64 past 2^32 - 2 objects
    numbers = np.zeros(n_dmv + 1, dtype)
    numbers[keep] = np.arange(1, int(keep.sum()) + 1, dtype=dtype) + dtype.type(count)  # raster order kept
    renumbered = dmv.data.map_blocks(lambda block: numbers[block], dtype=dtype)
    data = da.where(renumbered > 0, renumbered, components.data).astype(dtype)
    return classes.with_data(data, metadata={**classes.metadata, "instances": {
        "count": count + int(keep.sum()), "dmv_split": dmv.metadata["instances"],
        "dmv_min_diameter_nm": dmv_min_diameter_nm, "dmv_specks_dropped": int((~keep[1:]).sum())}})


def _instances_in_memory(classes: Volume, dmv_min_distance_nm: float, min_voxels: float, dmv_min_diameter_nm: float,
                         dmv_min_depth_nm: float | None) -> Volume:
    """:func:`_instances` of a volume in memory, in NumPy, the DMV pieces painted straight into the labels.

    The same labels as the block-wise path (tested), without its whole-volume
    passes: no DMV label volume, renumbering or merge of two label volumes.
    """
    from sxtseg.kernels import label, label_dtype

    from .instances import _split_parameters, split_pieces, split_record

    spacing, min_depth_nm = _split_parameters(classes, dmv_min_distance_nm, dmv_min_depth_nm)
    data = classes.to_numpy()
    mask = data == SXTClass.DMV
    others = np.multiply(data, np.logical_not(mask), dtype=data.dtype)  # DMV voxels 0 (faster than np.where)
    labels, count = label(others.astype(np.uint8, copy=False), 26)
    pieces, numbers = split_pieces(mask, spacing, dmv_min_distance_nm, min_depth_nm)
    n_dmv = int(sum(len(n) for n in numbers))
    sizes = np.zeros(n_dmv + 1, np.int64)
    for (_, piece, _), number in zip(pieces, numbers):
        sizes[number] = np.bincount(piece.ravel(), minlength=len(number) + 1)[1:]
    keep = sizes >= min_voxels
    keep[0] = False
    dtype = label_dtype(count + int(keep.sum()))  # uint64 past 2^32 - 2 objects
    final = np.zeros(n_dmv + 1, dtype)
    final[keep] = np.arange(1, int(keep.sum()) + 1, dtype=dtype) + dtype.type(count)  # raster order kept
    labels = labels.astype(dtype, copy=False)  # DMV voxels are 0 here: painted, or left 0 (specks)
    for (start, piece, _), number in zip(pieces, numbers):
        box = tuple(slice(int(a), int(a) + n) for a, n in zip(start, piece.shape))
        inside = piece > 0
        labels[box][inside] = final[number[piece[inside] - 1]]
    return classes.with_data(labels, metadata={**classes.metadata, "instances": {
        "count": count + int(keep.sum()), "dmv_split": split_record(SXTClass.DMV, dmv_min_distance_nm, min_depth_nm,
                                                                    n_dmv),
        "dmv_min_diameter_nm": dmv_min_diameter_nm, "dmv_specks_dropped": int((~keep[1:]).sum())}})


def _quicklook(path: Path, image: Volume, classes: Volume, table: pd.DataFrame, title: str) -> None:
    """quicklook.png: three orthogonal slices with class outlines, and plots of the DMVs and object counts.

    Drawn on a :class:`matplotlib.figure.Figure` of its own, not through pyplot: no global figure
    or backend is touched (a notebook's backend stays what it was), and it may be drawn on a
    worker thread (:func:`_one` draws it while the OME-Zarr is being written).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from skimage.segmentation import find_boundaries

    data = classes.data
    # one chunk at a time (dask's synchronous scheduler): a plane of a lazy volume reads every whole
    # chunk it crosses, and this runs while save_volume writes the volumes, with its own memory peak
    cell = np.argwhere(np.asarray(data[:: max(1, data.shape[0] // 32), ::8, ::8].compute(scheduler="sync")) != 0)
    if len(cell):
        centre = (cell.mean(axis=0) * [max(1, data.shape[0] // 32), 8, 8]).astype(int)
    else:
        centre = np.array(data.shape) // 2
    colors = np.zeros((256, 4))
    for code, rgba in CLASS_COLORS.items():  # outlines: opaque, whatever the overlay alpha
        colors[code] = (*(np.array(rgba[:3]) / 255.0), 1.0 if code else 0.0)
    cmap = ListedColormap(colors)
    fig = Figure(figsize=(15, 9.5))
    axes = fig.subplots(2, 3)
    views = [("xy, z = %d" % centre[0], (centre[0], slice(None), slice(None))),
             ("xz, y = %d" % centre[1], (slice(None), centre[1], slice(None))),
             ("yz, x = %d" % centre[2], (slice(None), slice(None), centre[2]))]
    spacing = np.array(image.voxel_size_in("nm"))
    for ax, (name, where) in zip(axes[0], views):
        grey = np.asarray(image.data[where].compute(scheduler="sync"), np.float32)
        lab = np.asarray(data[where].compute(scheduler="sync"))
        axes_left = [i for i, w in enumerate(where) if isinstance(w, slice)]
        aspect = spacing[axes_left[0]] / spacing[axes_left[1]]
        low, high = np.percentile(grey, [1, 99])
        ax.imshow(grey, cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
        edges = np.where(find_boundaries(lab, mode="inner"), lab, 0)
        ax.imshow(np.ma.masked_equal(edges, 0), cmap=cmap, vmin=0, vmax=255, aspect=aspect, interpolation="nearest")
        ax.set_title(name)
        ax.set_axis_off()
    dmv = table[table["class_id"] == SXTClass.DMV]
    axes[1, 0].hist(dmv["equivalent_diameter_nm"], bins=20, color="tab:red")
    axes[1, 0].set_xlabel("DMV equivalent diameter (nm)")
    axes[1, 0].set_ylabel("count")
    axes[1, 0].set_title(f"{len(dmv)} DMVs")
    axes[1, 1].scatter(dmv["distance_to_nucleus_nm"], dmv["equivalent_diameter_nm"], s=10, color="tab:red")
    axes[1, 1].set_xlabel("distance to nucleus (nm)")
    axes[1, 1].set_ylabel("DMV equivalent diameter (nm)")
    counts = table.groupby("class_id").size()
    axes[1, 2].barh([CLASS_NAMES.get(int(c), str(c)) for c in counts.index], counts.to_numpy())
    axes[1, 2].set_xlabel("objects")
    fig.suptitle(title)
    # fixed margins: tight_layout() would draw the figure once more to measure it (0.14 s)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.07, top=0.93, wspace=0.38, hspace=0.22)
    fig.savefig(path, dpi=80)


def _one(source, out: Path, model, *, device, client, block_shape, halo, progress, calibration, denoise,
         allow_large_resampling, precision, mirror, compartment_model, instance_parameters, min_volume_um3,
         check_parameters) -> dict:
    from . import __version__
    from .calibration import calibrate
    from .dmv_check import dmv_check_changes
    from .heap import release_free_memory
    from .infer import DEFAULT_BLOCK_SHAPE, segment
    from .instances import merge_fragments
    from .io import open_volume, save_volume
    from .io._write import write_text_atomically
    from .morphometrics import measure, summarize
    from .object_checks import apply_changes, object_changes
    from .quality import quality_flags

    from tqdm.auto import tqdm

    timings = {}
    stages = tqdm(total=6, desc=sample_name(source), unit="stage", disable=not progress)

    large = False  # more voxels than one block of segment (set once the volume is open)

    def stage(name):
        stages.set_postfix_str(name)
        if large:  # the pages the stage before freed go back to the system (glibc keeps them otherwise), so
            release_free_memory()  # each stage's peak does not stack on what the one before left in the heap
        return time.perf_counter()

    def done(name, started):
        timings[name] = time.perf_counter() - started
        stages.update()

    started = stage("open")
    image = source if isinstance(source, Volume) else open_volume(source)
    if image.ndim != 3:
        raise InvalidArgumentError(f"{image._name()}: a 3-D volume is needed, got shape {image.shape}")
    # below one block, segment's peak is the run's: releasing between stages would only cost page faults
    large = int(np.prod(image.shape, dtype=np.int64)) > int(np.prod(DEFAULT_BLOCK_SHAPE))
    done("open_s", started)

    started = stage("calibrate")
    lac, record = calibrate(image, calibration)
    if progress:
        tqdm.write(f"{sample_name(source)}: {record.summary()}")
    done("calibrate_s", started)

    started = stage("segment")
    raw_classes = segment(image, model, output=out / "segmentation.zarr", device=device, client=client,
                          block_shape=block_shape, halo=halo, progress=progress, calibration=record,
                          denoise=denoise, allow_large_resampling=allow_large_resampling, precision=precision,
                          mirror=mirror, compartment_model=compartment_model)
    done("segment_s", started)

    started = stage("instances")
    in_memory = raw_classes.data.npartitions == 1 or raw_classes.data.size <= IN_MEMORY_VOXELS
    if in_memory:  # the in-memory paths are much faster per object than the block-wise ones
        raw_classes = raw_classes.compute()
    # the segmentation's working folder is deleted at the end: its path must not outlive it in the results
    raw_classes.metadata["segmentation"] = {k: v for k, v in raw_classes.metadata["segmentation"].items()
                                            if k != "output"}
    classes = merge_fragments(raw_classes, min_volume_um3)
    instances = _instances(classes, **instance_parameters)
    instances = instances.compute() if in_memory else instances
    done("instances_s", started)

    started = stage("measure")
    table = measure(instances, lac, classes)
    calibrated = record.method != "none"
    changes, checks = object_changes(table, lac=calibrated, fiducial_min_lac=check_parameters["fiducial_min_lac"])
    checks["dmv"] = {"skipped": "turned off"}
    if check_parameters["dmv_check"] is not False:  # DMV-class objects that look like other vesicles
        threshold = None if check_parameters["dmv_check"] is True else check_parameters["dmv_check"]
        unchanged = table[~table["label"].isin(changes)]
        dmv_changes, checks["dmv"] = dmv_check_changes(
            lac, instances, unchanged, calibrated=calibrated, threshold=threshold,
            model_sha256=raw_classes.metadata["segmentation"]["model_sha256"])
        changes.update(dmv_changes)
    classes, table = apply_changes(classes, instances, table, changes)  # fiducials, other vesicles
    summary = summarize(table, classes)
    smoothing = raw_classes.metadata["denoise"]
    quality = quality_flags(classes, raw_classes.metadata, image=image)
    done("measure_s", started)

    started = stage("write")
    named = classes.with_data(classes.data, metadata={**classes.metadata, **label_metadata()})  # for every viewer
    # the quick look (matplotlib: importing and drawing hold the GIL) is drawn while the volumes are
    # compressed and written (which release it much of the time)
    with ThreadPoolExecutor(1, thread_name_prefix="sxtseg-quicklook") as pool:
        look = pool.submit(_quicklook, out / "quicklook.png", image, classes, table, sample_name(source))
        save_volume(image, out / "volume.ome.zarr", labels={"classes": named, "instances": instances},
                    overwrite=True, progress=progress)
        table.to_csv(out / "objects.csv", index=False)
        table.to_parquet(out / "objects.parquet", index=False)
        look.result()
    done("write_s", started)
    stages.close()

    meta = raw_classes.metadata["segmentation"]
    report = {
        "sample": sample_name(source),
        "input": {"path": image._name(), "shape": list(image.shape), "dtype": str(image.dtype)},
        "voxel_size": list(image.voxel_size), "unit": image.unit,
        "model": {"name": str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
                  "sha256": meta["model_sha256"], "compartments": meta["compartments"]},
        "sxtseg_version": __version__,
        "calibration": record.to_dict(),
        "denoise": smoothing,
        "quality": quality,
        "instances": {**instance_parameters,
                      "dmv_min_depth_nm": instances.metadata["instances"]["dmv_split"]["min_depth_nm"],
                      "fragments": classes.metadata["fragments"], "object_checks": checks},
        "summary": summary,
        "objects": int(len(table)),
        "timings_s": {k[:-2]: round(v, 3) for k, v in timings.items()},
    }
    write_text_atomically(out / "summary.json", json.dumps(report, indent=1))  # last: the sample is finished
    shutil.rmtree(out / "segmentation.zarr")  # its classes are in volume.ome.zarr now; it served resuming
    return report


#: Class volumes up to this many voxels (1 byte each; their instance labels 4-8 bytes) are made into
#: instances in memory; larger ones block by block.
IN_MEMORY_VOXELS = 128 * 1024 * 1024

#: Version of a sample's run fingerprint (``run.json`` in the ``.partial`` folder).
RUN_FORMAT = 1


def _dmv_check_choice(choice) -> bool | float:
    """``run(dmv_check=...)`` checked: True, False or a probability threshold in (0, 1)."""
    if choice is None or isinstance(choice, (bool, np.bool_)):
        return bool(choice)
    if isinstance(choice, (int, float)) and 0 < float(choice) < 1:
        return float(choice)
    raise InvalidArgumentError(f"dmv_check: True, False or a probability threshold in (0, 1), not {choice!r}")


def _run_fingerprint(source, model_sha256: str, device_type: str, parameters: dict) -> dict:
    """What decides a sample's results: the input (file size and time, or content), weights, parameters, device."""
    from .fingerprint import content_fingerprint, file_fingerprint

    if isinstance(source, Volume):
        what = content_fingerprint(source)
    else:
        what = file_fingerprint(Path(source).expanduser().resolve())
        what.pop("path")  # a moved file is the same input
    return {"format": RUN_FORMAT, "input": what, "model_sha256": model_sha256, "parameters": parameters,
            "device": device_type}


def _drop_temporaries(target: Path) -> None:
    """Delete what a killed run was writing when it died: ``*.tmp`` files, save_volume's temporary and old stores."""
    if not target.is_dir():
        return
    for path in target.iterdir():
        if path.name.endswith(".tmp") or ".sxtseg-tmp-" in path.name or ".sxtseg-old-" in path.name:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _finished_report(target: Path, fingerprint: dict) -> dict | None:
    """The report of a sample already finished with this fingerprint, None if it is still to do.

    Raises
    ------
    OutputExistsError
        ``target`` holds a sample started with another input, model,
        parameters or device (the message says what changed).
    """
    from .fingerprint import explain

    _drop_temporaries(target)
    marker = target / "run.json"
    if not marker.exists():
        leftovers = sorted(p.name for p in target.iterdir()) if target.exists() else []
        if leftovers:
            raise OutputExistsError(f"{target}: holds results of an interrupted run that cannot be checked "
                                    f"({', '.join(leftovers[:4])}); pass --overwrite (overwrite=True) to start over")
        return None
    previous = json.loads(marker.read_text())
    differ = explain(previous, fingerprint)
    if differ and {p.name for p in target.iterdir()} <= {"run.json"}:
        marker.unlink()  # an earlier attempt failed before it produced anything: nothing to mix up
        return None
    if differ:
        raise OutputExistsError(
            f"{target}: holds an interrupted run of other work, so it cannot be resumed: {'; '.join(differ[:6])}. "
            "Pass --overwrite (overwrite=True) to start over")
    if not (target / "summary.json").exists():
        return None
    shutil.rmtree(target / "segmentation.zarr", ignore_errors=True)  # killed after the summary was written
    return json.loads((target / "summary.json").read_text())


def run(
    inputs,
    output_dir,
    model="default",
    *,
    overwrite: bool = False,
    device="auto",
    client=None,
    block_shape=None,
    halo=None,
    calibration="auto",
    denoise="auto",
    allow_large_resampling: bool = False,
    precision: str = "auto",
    mirror: bool = True,
    compartment_model="auto",
    dmv_min_distance_nm: float = DMV_MIN_DISTANCE_NM,
    dmv_min_diameter_nm: float = DMV_MIN_DIAMETER_NM,
    dmv_min_depth_nm: float | None = DMV_MIN_DEPTH_NM,
    min_volume_um3: dict | None = None,
    fiducial_min_lac: float | None = FIDUCIAL_MIN_LAC,
    dmv_check: bool | float = True,
    progress: bool = True,
    catalog=None,
    catalog_project: str = "default",
) -> dict:
    """Segment, split and measure one or more cells; write tables, OME-Zarr and a quick look.

    Parameters
    ----------
    inputs : path, Volume, or a list of them
        Tomograms (MRC, TIFF, OME-Zarr, HDF5, NPY...), or Volumes.
    output_dir : str or Path
        Results folder (must not exist, unless ``overwrite``).  One input:
        the files go straight in it; several: one subfolder per sample and a
        combined ``objects.csv``.
    model : str, Path or torch.nn.Module
        ``"default"`` (shipped weights), a checkpoint, or a loaded model.
    overwrite : bool
        Replace an existing ``output_dir`` (never an input).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    client : dask.distributed.Client, optional
        Segment the blocks on this cluster.
    block_shape, halo : tuple of int, optional
        Segmentation blocks (see :func:`sxtseg.segment`).
    calibration : str, tuple or CalibrationRecord
        Grey values to LAC: ``"auto"`` (default), ``"none"`` or
        ``(scale, offset)``; see :func:`sxtseg.calibrate`.  The record goes to
        ``summary.json`` (``calibration``) and its flags to ``quality``.
    denoise : {"auto", "none"} or float
        Smoothing before the network (:func:`sxtseg.denoise.match_noise`):
        ``"auto"`` (default) only for noise well above the model's training
        data; ``"none"``; or a Gaussian sigma in voxels.  The record goes to
        ``summary.json`` (``denoise``), and a ``noise_smoothed`` flag to
        ``quality`` when it smoothed.  Measurements use the unsmoothed LAC.
    allow_large_resampling : bool
        Segment even when the voxel size is more than 2x off the model's
        training voxel sizes (refused by default).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Arithmetic of the network (:func:`sxtseg.infer.resolve_precision`):
        ``"auto"`` is float16 on CUDA, bfloat16 on CPUs with native bfloat16,
        else float32.
    mirror : bool
        Test-time mirroring (default; see :func:`sxtseg.segment`): better
        Dice for 8x the network's arithmetic; False is 6-7x faster on a CPU.
    compartment_model : "auto", None, str or Path
        A second model for background, cytoplasm, nucleus and nucleolus
        (see :func:`sxtseg.segment` and :mod:`sxtseg.compartments`):
        ``"auto"`` (default) runs the plain model beside the default one on
        volumes coarser than the default's training voxels and on thin cells.  What was done is
        in ``summary.json`` (``model.compartments``).
    dmv_min_distance_nm : float
        Smallest distance (nm) between the centres of two touching DMVs
        that are split apart (:func:`sxtseg.split_touching`).
    dmv_min_diameter_nm : float
        DMV pieces smaller than a ball of this diameter (nm) are specks, not objects.
    dmv_min_depth_nm : float, optional
        Smallest saddle depth (nm) between two DMV seeds (0: every saddle
        separates; None: half the smallest voxel edge).  The three DMV
        defaults were chosen on tuning phantoms, not the demo cell
        (``benchmarks/bench_instance_defaults.py``).
    min_volume_um3 : dict, optional
        Smallest volume (µm³) of a piece of each compartment class (names or
        codes); smaller pieces are merged into the class around them before
        instances are made (:func:`sxtseg.instances.merge_fragments`);
        default :data:`sxtseg.instances.COMPARTMENT_MIN_VOLUME_UM3`.
    fiducial_min_lac : float, optional
        Organelle-class objects with a mean LAC above this (1/µm) are gold
        fiducials (:mod:`sxtseg.object_checks`); needs a calibrated volume
        (skipped with ``calibration="none"``).  None: no check.  What it
        changed is in ``summary.json`` (``instances.object_checks``).
    dmv_check : bool or float
        A second look at every DMV-class object (:mod:`sxtseg.dmv_check`): a
        small network on a crop around it; objects it calls look-alikes
        (lysosomes, pieces of other organelles) become ``other_vesicle``.
        True (default): with the threshold of its checkpoint; a float in
        (0, 1): that probability threshold; False: no check.  Skipped, with
        the reason in ``summary.json`` (``instances.object_checks.dmv``), for
        an uncalibrated volume, another model than ``"default"`` and voxels
        outside 25-40 nm.
    progress : bool
        Progress bars.
    catalog : str or Path, optional
        Register every sample in this catalog once the results are written
        (:mod:`sxtseg.catalog`, the ``catalog`` extra): a SQLite file, a
        ``postgresql://`` URL, or the ``http(s)://`` address of a catalog
        server (token from ``SXTSEG_CATALOG_TOKEN``).  ``result["catalog"]``
        lists the runs; adding a sample already there changes nothing.
    catalog_project : str
        Project of the catalog the samples go to.

    Returns
    -------
    dict
        ``output_dir`` and, per sample, what ``summary.json`` holds:
        ``calibration``, ``quality`` (a list of flags), ``instances`` (the
        instance parameters and the fragments merged), ``summary``...

    Raises
    ------
    OutputExistsError
        ``output_dir`` exists and ``overwrite`` is not set, or it is an input.
    """
    from .infer import DEFAULT_HALO

    instance_parameters = {"dmv_min_distance_nm": float(dmv_min_distance_nm),
                           "dmv_min_diameter_nm": float(dmv_min_diameter_nm),
                           "dmv_min_depth_nm": None if dmv_min_depth_nm is None else float(dmv_min_depth_nm)}
    check_parameters = {"fiducial_min_lac": None if fiducial_min_lac is None else float(fiducial_min_lac),
                        "dmv_check": _dmv_check_choice(dmv_check)}
    single = isinstance(inputs, (str, os.PathLike, Volume))
    sources = [inputs] if single else list(inputs)
    if not sources:
        raise InvalidArgumentError("no input given")
    out = Path(output_dir)
    for source in sources:
        if not isinstance(source, Volume) and Path(source).resolve() == out.resolve():
            raise OutputExistsError(f"{out}: is an input; choose another output folder")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists; pass --overwrite (overwrite=True) to replace it")
    names = [sample_name(s) for s in sources]
    if len(set(names)) != len(names):
        names = [f"{n}_{k}" for k, n in enumerate(names)]
    partial = out.with_name(out.name + ".partial")  # kept on failure, so that the same command resumes
    if overwrite and partial.exists():  # start clean, whatever an interrupted run left
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    from .calibration import CalibrationRecord
    from .denoise import parse_denoise
    from .infer import _model_and_meta, _precision_for, _weights_hash
    from .io._write import _jsonable, write_text_atomically

    halo = DEFAULT_HALO if halo is None else halo
    parameters = _jsonable({
        "block_shape": block_shape, "halo": halo, "allow_large_resampling": bool(allow_large_resampling),
        "mirror": bool(mirror),
        "compartment_model": compartment_model if compartment_model in (None, "auto") else str(compartment_model),
        "calibration": calibration.to_dict() if isinstance(calibration, CalibrationRecord) else calibration,
        "denoise": parse_denoise(denoise) if not isinstance(denoise, dict) else denoise,
        **instance_parameters, "min_volume_um3": min_volume_um3, **check_parameters})
    net, meta, resolved = _model_and_meta(model, device)  # loaded once (and cached for segment)
    # the arithmetic decides the output: a finished sample is kept only if it matches
    parameters["precision"] = _precision_for(precision, resolved, on_cluster=client is not None)
    if check_parameters["dmv_check"] is not False:  # the check's weights decide the output too
        from .dmv_check import load_dmv_check

        parameters["dmv_check_sha256"] = load_dmv_check()[1]["sha256"]  # loaded once, for every sample
    model_sha256 = _weights_hash(model, net, meta)
    reports = {}
    for name, source in zip(names, sources):
        target = partial if single else partial / name
        fingerprint = _run_fingerprint(source, model_sha256, resolved.type, parameters)
        finished = _finished_report(target, fingerprint)
        if finished is not None:  # done before the run was interrupted: kept, not redone
            reports[name] = finished
            continue
        target.mkdir(exist_ok=True)
        if not (target / "run.json").exists():
            write_text_atomically(target / "run.json", json.dumps(fingerprint, indent=1))
        reports[name] = _one(source, target, model, device=device, client=client, block_shape=block_shape,
                             halo=halo, progress=progress,
                             calibration=calibration, denoise=denoise, allow_large_resampling=allow_large_resampling,
                             precision=precision, mirror=mirror, compartment_model=compartment_model,
                             instance_parameters=instance_parameters,
                             min_volume_um3=min_volume_um3,
                             check_parameters=check_parameters)
    if not single:
        tables = [pd.read_csv(partial / name / "objects.csv").assign(sample=name) for name in names]
        combined = pd.concat(tables, ignore_index=True)
        combined.insert(0, "sample", combined.pop("sample"))
        combined.to_csv(partial / "objects.csv", index=False)
        samples_table(reports).to_csv(partial / "samples.csv", index=False)
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    result = {"output_dir": str(out), "samples": reports}
    if catalog is not None:
        folders = [out] if single else [out / name for name in names]
        result["catalog"] = _register(folders, catalog, catalog_project)
    return result


def samples_table(reports: dict) -> pd.DataFrame:
    """One row per sample of a batch: its input, voxel size, counts, calibration and quality flags.

    ``sxtseg run`` writes it as ``samples.csv`` beside the combined
    ``objects.csv`` when it runs more than one sample, so that the cells a
    thousand-cell batch flagged (a thin cell, coarse voxels, an untrusted
    calibration...) can be found and filtered without opening every
    ``summary.json``.

    Parameters
    ----------
    reports : dict
        Sample name -> the sample's report (``summary.json``), as
        :func:`run` returns them in ``result["samples"]``.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``input``, ``shape`` (``"ZxYxX"``),
        ``voxel_size_{z,y,x}_nm``, ``objects``, ``dmv_count``,
        ``dmv_volume_fraction_of_cytoplasm``, ``cytoplasm_volume_um3``,
        ``dmv_median_distance_to_nucleus_nm``, ``calibration_method``,
        ``calibration_confidence``, ``quality_flags`` (flag names joined by
        ``;``, empty when none) and ``model_sha256``.

    Examples
    --------
    >>> report = {"input": {"path": "a.mrc", "shape": [64, 256, 256]}, "voxel_size": [0.03, 0.03, 0.03],
    ...           "unit": "um", "objects": 40, "summary": {"dmv_count": 12},
    ...           "calibration": {"method": "two-point", "confidence": 0.9},
    ...           "quality": [{"flag": "thin_cell"}], "model": {"sha256": "091d"}}
    >>> samples_table({"a": report})[["voxel_size_z_nm", "dmv_count", "quality_flags"]].to_dict("records")
    [{'voxel_size_z_nm': 30.0, 'dmv_count': 12, 'quality_flags': 'thin_cell'}]
    """
    from .units import convert_length

    rows = []
    for name, report in reports.items():
        summary = report.get("summary", {})
        voxel_nm = [convert_length(v, report["unit"], "nm") for v in report["voxel_size"]]
        rows.append({
            "sample": name, "input": report["input"]["path"], "shape": "x".join(str(n) for n in report["input"]["shape"]),
            **{f"voxel_size_{axis}_nm": round(v, 6) for axis, v in zip("zyx", voxel_nm)},
            "objects": report["objects"],
            **{key: summary.get(key) for key in ("dmv_count", "dmv_volume_fraction_of_cytoplasm",
                                                 "cytoplasm_volume_um3", "dmv_median_distance_to_nucleus_nm")},
            "calibration_method": report["calibration"]["method"],
            "calibration_confidence": report["calibration"].get("confidence"),
            "quality_flags": ";".join(flag["flag"] for flag in report.get("quality", [])),
            "model_sha256": report["model"]["sha256"]})
    return pd.DataFrame(rows)


def _register(folders: list[Path], catalog, project: str) -> list[dict]:
    """Add finished results folders to a catalog (local database or server)."""
    from .catalog import CatalogError, Client, configure

    target = str(catalog)
    try:
        if target.startswith(("http://", "https://")):
            client = Client(target, token=os.environ.get("SXTSEG_CATALOG_TOKEN"))
            return [row for folder in folders for row in client.add(folder, project).to_dict("records")]
        from .catalog.ingest import add_results

        if target.startswith(("postgresql://", "postgres://")):
            configure(url=target)
        else:
            configure(db=target)
        return [row for folder in folders for row in add_results(folder, project)]
    except CatalogError as exc:
        raise CatalogError(f"results written to {folders[0].parent if len(folders) > 1 else folders[0]}, but not "
                           f"registered in the catalog: {exc}") from exc
