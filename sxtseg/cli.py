"""The ``sxtseg`` command.

Subcommands::

    sxtseg info PATH                       shape, dtype, voxel size, chunks, reader
    sxtseg convert IN OUT.ome.zarr         any readable volume -> OME-Zarr pyramid
    sxtseg phantom OUT                     synthetic infected cell (.ome.zarr, .tif or .mrc)
    sxtseg run IN [IN...] -o OUTDIR        segment, split and measure cells (the main job)
    sxtseg demo [-o OUTDIR]                the main job on a generated cell, scored against its truth
    sxtseg train CONFIG.yaml               train a segmentation model

Bad input gives a one-line message naming the file and exit code 2.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import NoReturn, Sequence

from . import __version__
from .errors import SxtsegError

log = logging.getLogger("sxtseg")


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 64,128,128, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _float_tuple(text: str) -> tuple[float, ...] | float:
    try:
        values = tuple(float(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or Z,Y,X numbers, got {text!r}") from None
    if any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"voxel sizes must be positive, got {text!r}")
    return values[0] if len(values) == 1 else values


def _cmd_info(args: argparse.Namespace) -> int:
    from .io import open_volume

    vol = open_volume(args.path, ndim=None, level=args.level, dataset=args.dataset, allow_nan=True)
    info = {
        "path": str(args.path),
        "reader": vol.metadata["source"]["reader"],
        "shape": list(vol.shape),
        "axes": vol.axes,
        "dtype": str(vol.dtype),
        "voxel_size": None if vol.voxel_size is None else list(vol.voxel_size),
        "unit": vol.unit,
        "physical_shape": None if vol.physical_shape is None else [round(v, 3) for v in vol.physical_shape],
        "chunks": [c[0] for c in vol.chunks],
        "size_mib": round(vol.nbytes / 2**20, 2),
    }
    if "ome" in vol.metadata:
        info["ngff_version"] = vol.metadata["ome"]["ngff_version"]
        info["pyramid_levels"] = vol.metadata["ome"]["levels"]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .io import open_volume, save_volume

    vol = open_volume(
        args.input,
        ndim=None,
        dataset=args.dataset,
        level=args.level,
        voxel_size=args.voxel_size,
        unit=args.unit,
        allow_nan=args.allow_nan,
    )
    start = time.perf_counter()
    out = save_volume(
        vol, args.output, overwrite=args.overwrite, chunks=args.chunks, ngff_version=args.ngff, progress=not args.quiet
    )
    log.info("converted %s -> %s in %.1f s", args.input, out, time.perf_counter() - start)
    if not args.quiet:
        print(f"wrote {out} ({'x'.join(map(str, vol.shape))} {vol.dtype}, voxel size {vol.voxel_size} {vol.unit})")
    return 0


def _cmd_phantom(args: argparse.Namespace) -> int:
    from .io import export_volume, save_volume
    from .phantom import make_infected_cell

    out = Path(args.output)
    table_path = out.parent / (out.name.split(".")[0] + "_objects.csv")
    if table_path.exists() and not args.overwrite:
        raise SxtsegError(f"{table_path}: already exists; pass --overwrite to replace it")
    image, classes, instances, objects = make_infected_cell(
        shape=tuple(args.shape), voxel_size_nm=args.voxel_size, seed=args.seed
    )
    if out.name.lower().endswith(".zarr"):
        save_volume(
            image,
            out,
            labels={"classes": classes, "instances": instances},
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    else:
        export_volume(image, out, overwrite=args.overwrite)
    tmp = table_path.with_name("." + table_path.name + ".tmp")
    objects.to_csv(tmp, index=False)
    tmp.replace(table_path)
    if not args.quiet:
        counts = objects["class_name"].value_counts().to_dict()
        print(f"wrote {out} ({'x'.join(map(str, image.shape))}, {args.voxel_size:g} nm voxels, seed {args.seed})")
        print(f"wrote {table_path} ({len(objects)} objects: {counts})")
    return 0


def _client(args: argparse.Namespace):
    """A dask.distributed client from --scheduler ADDRESS or --cluster local:N (None without either)."""
    if not (args.scheduler or args.cluster):
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError("--scheduler/--cluster need dask.distributed: pip install distributed") from None
    if args.scheduler:
        return Client(args.scheduler)
    kind, _, count = args.cluster.partition(":")
    if kind != "local" or not count.isdigit() or int(count) < 1:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"--cluster takes local:N (N workers), not {args.cluster!r}")
    return Client(LocalCluster(n_workers=int(count), threads_per_worker=1, dashboard_address=None))


def parse_class_values(text: str, value_name: str = "VALUE") -> dict:
    """``"nucleus=0.5,cytoplasm=1"`` as ``{"nucleus": 0.5, "cytoplasm": 1.0}`` (a per-class option).

    Raises
    ------
    argparse.ArgumentTypeError
        An item is not ``CLASS=NUMBER``; the message shows the expected form with ``value_name``.

    Examples
    --------
    >>> parse_class_values("nucleus=3, fiducial=0.3")
    {'nucleus': 3.0, 'fiducial': 0.3}
    """
    values = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected CLASS={value_name}[,CLASS={value_name}...], "
                                             f"got {text!r}") from None
    return values


def _min_volumes(text: str | None) -> dict | None:
    """``nucleus=0.5,cytoplasm=1`` (µm³ per compartment class) as a dict."""
    return None if text is None else parse_class_values(text, "UM3")


def _number_or_off(text: str) -> float | None:
    """A number, or ``off`` (None: the check is not made)."""
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def _dmv_check(text: str) -> bool | float:
    """``--dmv-check``: ``on`` (the checkpoint's threshold), ``off``, or a probability threshold in (0, 1)."""
    word = text.strip().lower()
    if word in ("on", "off"):
        return word == "on"
    try:
        threshold = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected on, off or a threshold in (0, 1), got {text!r}") from None
    if not 0 < threshold < 1:
        raise argparse.ArgumentTypeError(f"a threshold in (0, 1), got {text!r}")
    return threshold


def _compartment_model(text: str):
    """``--compartment-model``: ``auto`` and ``none`` as :func:`sxtseg.run` takes them, else the name or path."""
    return None if text == "none" else text


def _instance_options(args: argparse.Namespace) -> dict:
    """The instance parameters of ``sxtseg run`` / ``sxtseg demo`` as keyword arguments of :func:`sxtseg.run`."""
    from .calibration import parse_calibration
    from .denoise import parse_denoise

    return {"calibration": parse_calibration(args.calibration), "denoise": parse_denoise(args.denoise),
            "allow_large_resampling": args.allow_large_resampling, "precision": args.precision,
            "mirror": not args.no_mirror, "compartment_model": _compartment_model(args.compartment_model),
            "dmv_min_distance_nm": args.dmv_min_distance_nm, "dmv_min_diameter_nm": args.dmv_min_diameter_nm,
            "dmv_min_depth_nm": args.dmv_min_depth_nm, "min_volume_um3": args.min_volume_um3,
            "fiducial_min_lac": args.fiducial_min_lac, "dmv_check": args.dmv_check}


def print_quality(name: str, report: dict, file=None) -> None:
    """The calibration line and every quality flag of one sample's report."""
    from .calibration import CalibrationRecord

    print(f"{name}: {CalibrationRecord.from_dict(report['calibration']).summary()}", file=file)
    checks = report.get("instances", {}).get("object_checks", {})
    if checks.get("to_fiducial"):
        print(f"{name}: object checks: {checks['to_fiducial']} objects with a mean LAC above "
              f"{checks['fiducial_min_lac_1_per_um']:g} 1/um counted as gold fiducials", file=file)
    dmv = checks.get("dmv", {})
    if dmv.get("skipped") and dmv["skipped"] != "turned off":  # DMV look-alikes stay counted as DMVs: say so
        print(f"{name}: object checks: DMV check skipped ({dmv['skipped']}); DMV counts may include "
              "lysosomes", file=file)
    if dmv.get("to_other_vesicle"):
        print(f"{name}: object checks: {dmv['to_other_vesicle']} of {dmv['checked']} DMV-class objects look like "
              f"other vesicles (sxtseg.dmv_check), counted as other_vesicle", file=file)
    for flag in report.get("quality", []):
        print(f"{name}: quality: {flag['flag']}: {flag['message']}", file=file or sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run

    options = _instance_options(args)
    client = _client(args)
    try:
        inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
        blocks = {"block_shape": args.block_shape} if args.block_shape else {}
        if args.halo:
            blocks["halo"] = args.halo
        result = run(inputs, args.output, args.model, overwrite=args.overwrite, device=args.device, client=client,
                     progress=not args.quiet, catalog=args.catalog, catalog_project=args.catalog_project,
                     **blocks, **options)
    finally:
        if client is not None:
            client.close()
    for name, report in result["samples"].items():
        summary = report["summary"]
        print_quality(name, report)
        print(f"{name}: {report['objects']} objects, {summary['dmv_count']} DMVs, "
              f"DMV volume fraction of cytoplasm {summary['dmv_volume_fraction_of_cytoplasm']:.4f}")
    print(f"results in {result['output_dir']}")
    if len(result["samples"]) > 1:  # a batch: how many samples each flag marks, to find them in samples.csv
        counts = Counter(name for report in result["samples"].values()
                         for name in dict.fromkeys(f["flag"] for f in report.get("quality", [])))
        flagged = ", ".join(f"{name} {n}" for name, n in counts.most_common()) or "none"
        print(f"quality flags over {len(result['samples'])} samples: {flagged} (one row per sample in samples.csv)")
    for row in result.get("catalog", []):
        print(f"catalog: sample {row.get('sample', row.get('sample_name'))}, run {row.get('run_id', row.get('id'))}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo, format_report

    summary = demo(args.output, shape=args.shape, seed=args.seed, model=args.model, device=args.device,
                   progress=not args.quiet, **_instance_options(args))
    print(json.dumps(summary) if args.json else format_report(summary))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import fit_from_config

    result = fit_from_config(args.config, resume=args.resume, progress=not args.quiet)
    print(f"best checkpoint {result['best_checkpoint']} (score {result['best_score']:.4f})")
    return 0


def _cmd_ct(args: argparse.Namespace) -> int:
    from .adapters.ct import analyse_ct

    report = analyse_ct(args.input, args.output, overwrite=args.overwrite, series_uid=args.series_uid)
    severity = report["severity"]
    lungs = report["lungs"]["volume_ml"]
    print(f"{args.input}: lungs {report['lung_volume_ml']:.0f} mL (right {lungs.get('right_lung', 0):.0f}, "
          f"left {lungs.get('left_lung', 0):.0f}); GGO {report['ggo_percent']:.1f}%, consolidation "
          f"{report['consolidation_percent']:.1f}%; zone severity score {severity['total_score']}/{severity['max_score']}")
    print(f"results in {report['output_dir']}")
    return 0


def _cmd_cxr(args: argparse.Namespace) -> int:
    from .adapters.cxr import rank_images

    table = rank_images(args.inputs, args.model, args.output, overwrite=args.overwrite, lung_model=args.lung_model,
                        size=args.size, device=args.device, progress=not args.quiet)
    top = table.head(5)
    for row in top.itertuples():
        print(f"{row.rank:>4}  COVID-19 probability {row.covid_probability:.3f}  {row.path}")
    if len(table) > len(top):
        print(f"  ... {len(table) - len(top)} more")
    print(f"ranking of {len(table)} image(s) in {Path(args.output) / 'ranking.csv'}")
    return 0


def _add_instance_options(p: argparse.ArgumentParser) -> None:
    from .object_checks import FIDUCIAL_MIN_LAC
    from .pipeline import DMV_MIN_DEPTH_NM, DMV_MIN_DIAMETER_NM, DMV_MIN_DISTANCE_NM

    p.add_argument("--calibration", default="auto",
                   help="grey values to LAC: auto (default: find ice and cytoplasm), none (already LAC), "
                        "or SCALE,OFFSET (lac = SCALE * value + OFFSET)")
    p.add_argument("--denoise", default="auto",
                   help="smoothing before the network: auto (default: only for noise well above the model's "
                        "training data), none, or a Gaussian sigma in voxels")
    p.add_argument("--allow-large-resampling", action="store_true",
                   help="segment even when the voxel size is more than 2x off the model's")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="arithmetic of the network: auto (default: float16 on CUDA, bfloat16 on CPUs with native "
                        "bfloat16, else float32), float32, bfloat16, float16 (CUDA)")
    p.add_argument("--no-mirror", action="store_true",
                   help="run each window of the network once, without test-time mirroring (6-7x faster "
                        "on a CPU, lower Dice: docs/benchmarks.md)")
    p.add_argument("--compartment-model", default="auto",
                   help="a second model for background, cytoplasm, nucleus and nucleolus: auto (default: the "
                        "plain model beside the default one on volumes coarser than its training voxels and on "
                        "cells under 1.4 um thick, with ice and no missing wedge), none, or a model name or "
                        "checkpoint")
    p.add_argument("--dmv-min-distance-nm", type=float, default=DMV_MIN_DISTANCE_NM,
                   help=f"smallest centre distance of touching DMVs split apart (default {DMV_MIN_DISTANCE_NM:g})")
    p.add_argument("--dmv-min-diameter-nm", type=float, default=DMV_MIN_DIAMETER_NM,
                   help=f"DMV pieces smaller than this ball are specks (default {DMV_MIN_DIAMETER_NM:g})")
    p.add_argument("--dmv-min-depth-nm", type=float, default=DMV_MIN_DEPTH_NM,
                   help=f"smallest saddle depth between two DMV seeds (default {DMV_MIN_DEPTH_NM:g})")
    p.add_argument("--min-volume-um3", type=_min_volumes, default=None,
                   help="smallest compartment pieces kept, e.g. nucleus=0.5,cytoplasm=1,nucleolus=0.005 "
                        "(um^3; smaller ones merge into the class around them)")
    p.add_argument("--fiducial-min-lac", type=_number_or_off, default=FIDUCIAL_MIN_LAC,
                   help=f"organelles with a mean LAC above this (1/um) are gold fiducials (default "
                        f"{FIDUCIAL_MIN_LAC:g}; off: no check)")
    p.add_argument("--dmv-check", type=_dmv_check, default=True,
                   help="a second look at every DMV-class object; those that look like other vesicles are "
                        "counted as other_vesicle: on (default, the check's own threshold), off, or a "
                        "probability threshold in (0, 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sxtseg`` command."""
    parser = argparse.ArgumentParser(prog="sxtseg", description="Soft X-ray tomography segmentation and analysis.")
    parser.add_argument("--version", action="version", version=f"sxtseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a volume file (shape, dtype, voxel size, chunks)")
    p.add_argument("path", help="volume file or folder")
    p.add_argument("--dataset", help="dataset inside an HDF5 file or Zarr group")
    p.add_argument("--level", type=int, default=0, help="OME-Zarr pyramid level (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert a volume to an OME-Zarr pyramid")
    p.add_argument("input", help="MRC, TIFF (file or folder of slices), Zarr, HDF5 or NPY")
    p.add_argument("output", help="output folder, *.ome.zarr")
    p.add_argument("--chunks", type=_int_tuple, help="output chunk shape, e.g. 128,128,128")
    p.add_argument("--voxel-size", type=_float_tuple, help="voxel size (one value or Z,Y,X) replacing the file's")
    p.add_argument("--unit", default="nm", choices=["nm", "um", "mm"], help="unit of --voxel-size (default nm)")
    p.add_argument("--dataset", help="dataset inside an HDF5 file or Zarr group")
    p.add_argument("--level", type=int, default=0, help="OME-Zarr pyramid level to read (default 0)")
    p.add_argument("--ngff", default="0.4", choices=["0.4", "0.5"], help="OME-NGFF version (default 0.4)")
    p.add_argument("--allow-nan", action="store_true", help="accept NaN/infinite voxels")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("phantom", help="write a synthetic SARS-CoV-2-infected cell with ground truth")
    p.add_argument("output", help="output: *.ome.zarr (with labels), *.tif or *.mrc; a *_objects.csv goes beside it")
    p.add_argument("--shape", type=_int_tuple, default=(128, 256, 256), help="Z,Y,X voxels (default 128,256,256)")
    p.add_argument("--voxel-size", type=float, default=30.0, help="isotropic voxel size in nm (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_phantom)

    p = sub.add_parser("run", help="segment, split and measure one or more cells (the main job)")
    p.add_argument("inputs", nargs="+", help="tomograms: MRC, TIFF, OME-Zarr, HDF5, NPY")
    p.add_argument("-o", "--output", required=True, help="results folder (must not exist unless --overwrite)")
    p.add_argument("--model", default="default",
                   help="shipped model name (default, plain) or checkpoint file (default: default)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1...")
    p.add_argument("--scheduler", help="address of a running dask.distributed scheduler")
    p.add_argument("--cluster", help="start a local dask cluster: local:N (N workers)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing results folder, and start clean whatever an interrupted run left")
    p.add_argument("--block-shape", type=_int_tuple,
                   help="segmentation block Z,Y,X in voxels (default 128,512,512; smaller blocks resume finer)")
    p.add_argument("--halo", type=_int_tuple, help="voxels read around each block, Z,Y,X (default 16,32,32)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--catalog", help="register the results in this catalog: SQLite file, postgresql:// URL or "
                                     "http(s):// server (token in SXTSEG_CATALOG_TOKEN)")
    p.add_argument("--catalog-project", default="default", help="catalog project of the samples (default: default)")
    _add_instance_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="run the main job on a generated cell and score it against the truth")
    p.add_argument("-o", "--output", default="sxtseg-demo", help="results folder (default ./sxtseg-demo, replaced)")
    p.add_argument("--shape", type=_int_tuple, default=(128, 384, 384), help="Z,Y,X voxels (default 128,384,384)")
    p.add_argument("--seed", type=int, default=4242, help="phantom seed (default 4242)")
    p.add_argument("--model", default="default", help="shipped model name (default, plain) or checkpoint file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda...")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_instance_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("ct", help="chest CT: lungs, COVID-19 lesions (GGO, consolidation) and a severity score")
    p.add_argument("input", help="DICOM series folder, multi-frame DICOM file, or NIfTI (.nii, .nii.gz)")
    p.add_argument("-o", "--output", required=True, help="results folder (must not exist unless --overwrite)")
    p.add_argument("--series-uid", help="SeriesInstanceUID, when the folder holds several series")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    p.set_defaults(func=_cmd_ct)

    p = sub.add_parser("cxr", help="chest X-rays: rank by COVID-19 probability with a trained classifier")
    p.add_argument("inputs", nargs="+", help="images (DICOM, PNG, JPEG) or folders of them")
    p.add_argument("--model", required=True, help="classifier checkpoint (sxtseg.train.fit_classifier; none ships)")
    p.add_argument("--lung-model", help="2-D lung-field segmenter checkpoint: adds the lung opacity fraction")
    p.add_argument("-o", "--output", required=True, help="results folder for ranking.csv")
    p.add_argument("--size", type=int, help="model input size in pixels (default: the checkpoint's; 480 as COVID-Net, or 224)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda...")
    p.add_argument("--overwrite", action="store_true", help="replace an existing ranking")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_cxr)

    from .catalog.commands import add_parser as add_catalog_parser

    add_catalog_parser(sub)

    p = sub.add_parser("train", help="train a segmentation model from a YAML configuration")
    p.add_argument("config", help="YAML file: data, validation, output and training settings")
    p.add_argument("--resume", action="store_true", help="continue from the output folder's last checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    print(f"sxtseg: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sxtseg`` command; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="sxtseg: %(message)s")
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except SxtsegError as exc:
        print(f"sxtseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sxtseg: interrupted", file=sys.stderr)
        return 130


def command() -> NoReturn:
    """The ``sxtseg`` console script: :func:`main`, then an exit without Python's teardown.

    When a command returns, its files are written and closed and its thread pools shut down;
    what is left is the interpreter freeing every module and object it loaded, PyTorch's and
    Numba's above all: 1.1 s after ``sxtseg demo`` on a 2-core machine (0.4 s for ``import
    torch`` alone), paid again by every ``sxtseg run`` of a batch of cells.  So the exit
    handlers run (logging flushes, dask and zarr shut down), the standard streams are flushed,
    and the process ends there with :func:`os._exit`, as mypy's command line does.  An
    unexpected exception still leaves through the normal path, with its traceback.
    """
    code = main()
    atexit._run_exitfuncs()  # what a normal exit runs first (no public equivalent)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``sxtseg ... | head``), a closed stream
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    command()
