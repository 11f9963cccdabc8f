"""The main job end to end, and its inference stage against plain MONAI sliding-window inference.

For each phantom size (256^3 and 512^3 here; 1024^3 too on a GPU machine) the
phantom image is written to OME-Zarr once, then, each in a fresh child
process (so that peak RSS is the case's own):

* ``sxtseg_pipeline``: ``sxtseg.run`` on the OME-Zarr file: seconds per stage
  and peak RSS;
* ``sxtseg_segment``: ``sxtseg.segment`` alone (block-wise, from and to zarr);
* ``monai_whole``: the same network and normalisation through
  ``monai.inferers.sliding_window_inference`` on the whole volume loaded in
  memory (the way scripts do it today), argmax to uint8.

Both inference cases use the same window (the model's patch), overlap 0.25,
Gaussian blending and batch size 4, and run each window once (the sxtseg cases
with ``mirror=False``: test-time mirroring, their default, is 8 passes).
Reported: voxels per second of the inference stage and the ratio sxtseg/MONAI
of throughput and of peak RSS.

    python benchmarks/bench_pipeline.py                 # 256^3 and 512^3, about 10 min on 2 cores
    python benchmarks/bench_pipeline.py --quick         # 64^3 with a tiny model, seconds (CI)
    python benchmarks/bench_pipeline.py --sizes 1024    # on a GPU machine
    python benchmarks/bench_pipeline.py --halo-study    # block-wise vs whole-volume agreement per halo

``--instances-stage`` times the instances stage (``merge_fragments``, then
``_instances``: every class labelled, touching DMVs split) on the demo cell's
predicted classes (``sxtseg demo``'s phantom, seed 4242, segmented once with
the shipped model and kept in ``--workdir``), in a fresh child process per
run: the first run (as ``sxtseg run`` pays it: torch and MONAI imported by
the segment stage, the kernels loaded from Numba's cache, memory touched for
the first time) and the median of the warm runs,
with a breakdown by step.  With ``--baseline TREE ...`` the same child runs
against other checkouts of sxtseg (``git worktree add /tmp/base REV``),
alternating with this one, and the record gives the time ratios and whether
the instance labels (up to renumbering) and DMV counts are identical::

    python benchmarks/bench_pipeline.py --instances-stage --baseline /tmp/base_issue /tmp/base_head

``--demo PYTHON ...`` runs ``sxtseg demo`` end to end with each interpreter (each from a virtual
environment with its own checkout installed: an editable install of this tree maps ``sxtseg.kernels``
to this tree whatever ``PYTHONPATH`` says), alternating, and records the time without the phantom's
generation, the stage times and the scores::

    python -m venv /tmp/base/.venv && /tmp/base/.venv/bin/pip install torch==2.13.0 -e /tmp/base
    python benchmarks/bench_pipeline.py --demo /tmp/base/.venv/bin/python .venv/bin/python --rounds 3

``--halo-study`` segments a 128x384x384 phantom whole (one block) and in
64x128x128 blocks with halos of 0, 8, 16 and 32 voxels, and reports the
fraction of voxels whose class agrees with the whole-volume result: the
measurement behind ``sxtseg.infer.DEFAULT_HALO``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, sys, time, threading
    import numpy as np

    cases, image_path, out_dir, model, precision = sys.argv[1:6]

    def rss(field):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

    import torch, monai, sxtseg  # imports and model load before the mark
    from sxtseg.models import load_model
    net = load_model(model)
    peer = load_model(model, monai=True).eval()  # plain MONAI runs MONAI's own network, the same weights
    volume = sxtseg.open_volume(image_path)
    results = {}
    for case in cases.split(","):  # one case per process for the record; --quick runs all three in one
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = rss("VmRSS:")
        started = time.perf_counter()
        result = {}
        if case == "sxtseg_pipeline":
            # mirror=False: one pass per window, the same arithmetic as plain MONAI's (mirroring is 8 passes)
            report = sxtseg.run(volume, out_dir + "/results", net, progress=False, precision=precision, mirror=False)
            result["timings_s"] = next(iter(report["samples"].values()))["timings_s"]
            result["objects"] = next(iter(report["samples"].values()))["objects"]
        elif case == "sxtseg_segment":
            labels = sxtseg.segment(volume, net, output=out_dir + "/seg.zarr", progress=False, precision=precision,
                                    mirror=False)
            result["dmv_voxels"] = int((labels.data == 6).sum().compute())
        elif case == "monai_whole":
            from monai.inferers import sliding_window_inference
            from sxtseg.models.checkpoint import normalization_range
            meta = net.metadata
            array = volume.to_numpy().astype(np.float32)  # the whole volume in memory
            step = max(1, int(round((array.size / 4e6) ** (1 / 3))))
            low, high = normalization_range(array[::step, ::step, ::step], meta["intensity"])
            x = torch.from_numpy((array - low) / (high - low))[None, None]
            with torch.no_grad():
                logits = sliding_window_inference(x, tuple(meta["input"]["patch_size"]), 4, peer,
                                                  overlap=0.25, mode="gaussian", padding_mode="replicate")
            labels = logits.argmax(1)[0].numpy().astype(np.uint8)
            result["dmv_voxels"] = int((labels == 6).sum())
        result["seconds"] = time.perf_counter() - started
        result["peak_rss_bytes"] = rss("VmHWM:") - base
        results[case] = result
    print(json.dumps(results))
""")


def run_cases(cases: list[str], image: Path, work: Path, model: str, precision: str = "auto") -> dict:
    """Each case's result, all cases measured in one child process (the record runs one case per child)."""
    out = work / f"{'+'.join(cases)}-{image.stem}"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, ",".join(cases), str(image), str(out), model, precision],
                          capture_output=True, text=True)
    if done.returncode != 0:
        if "MemoryError" in done.stderr or done.returncode in (-9, 137):
            return {case: {"error": "out of memory"} for case in cases}
        raise RuntimeError(f"{cases} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


STAGE_CHILD = textwrap.dedent("""
    import hashlib, json, sys, time
    import numpy as np

    classes_path, repeats = sys.argv[1], int(sys.argv[2])
    import monai, torch  # loaded by sxtseg run's segment stage before this one (and with them scipy.linalg,
    # which Numba's first kernel call would otherwise import, timed)
    from sxtseg import SXTClass, Volume
    from sxtseg.instances import merge_fragments, split_touching
    from sxtseg.pipeline import _instances

    raw = Volume(np.load(classes_path), voxel_size=30.0)
    steps = {"merge_fragments": [], "instances": [], "stage": [], "split_touching": []}
    for _ in range(repeats + 1):
        started = time.perf_counter()
        classes = merge_fragments(raw, None)
        merged = time.perf_counter()
        instances = _instances(classes).compute()
        done = time.perf_counter()
        steps["merge_fragments"].append(merged - started)
        steps["instances"].append(done - merged)
        steps["stage"].append(done - started)
        started = time.perf_counter()
        dmv = split_touching(classes, SXTClass.DMV, min_distance_nm=100.0, min_depth_nm=0.0)
        steps["split_touching"].append(time.perf_counter() - started)
    labels = instances.to_numpy()
    # the labels up to renumbering: numbered by first voxel in raster order
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    canonical = order[inverse].reshape(labels.shape).astype(np.uint32)
    meta = instances.metadata["instances"]
    print(json.dumps({
        "first_run_s": {k: v[0] for k, v in steps.items()},
        "warm_median_s": {k: float(np.median(v[1:])) for k, v in steps.items()},
        "objects": int(meta["count"]), "dmv_split_count": int(meta["dmv_split"]["count"]),
        "dmv_objects": int(meta["dmv_split"]["count"]) - int(meta["dmv_specks_dropped"]),
        "labels_sha256": hashlib.sha256(canonical.tobytes()).hexdigest()[:16],
        "imports": [sys.modules["sxtseg"].__file__, sys.modules["sxtseg.kernels"].__file__]}))
""")


def instances_stage(work: Path, model: str, baselines: list[str], rounds: int, repeats: int,
                    pythons: list[str] = ()) -> dict:
    """The instances stage on the demo cell's predicted classes, this tree against ``baselines``.

    ``baselines`` are checkouts run by this interpreter with ``PYTHONPATH`` set to them: with an
    editable install of this tree, ``sxtseg.kernels`` still comes from this tree there.  ``pythons``
    are interpreters of virtual environments that each have their own checkout installed: those
    run every module of their checkout (the name in the record is the path of the interpreter).
    """
    import numpy as np

    from sxtseg import segment
    from sxtseg.calibration import calibrate
    from sxtseg.demo import DEMO_SEED
    from sxtseg.phantom import make_infected_cell

    classes_path = work / f"demo-classes-{DEMO_SEED}.npy"
    if not classes_path.exists():
        image, _, _, _ = make_infected_cell((128, 384, 384), seed=DEMO_SEED)
        _, record = calibrate(image, "auto")
        np.save(classes_path, segment(image, model, calibration=record, progress=False).to_numpy())
    trees = {"this": str(Path(__file__).resolve().parents[1]), **{Path(b).name: b for b in baselines},
             **{python: python for python in pythons}}
    runs: dict[str, list] = {name: [] for name in trees}
    for _ in range(rounds):  # alternate the trees, so that a busy moment hits them alike
        for name, tree in trees.items():
            if name in pythons:  # its own environment; cwd outside every checkout (sys.path[0] for -c)
                command, env, cwd = [name], dict(os.environ), str(work)
            else:
                command, env, cwd = [sys.executable], {**os.environ, "PYTHONPATH": tree}, tree
            done = subprocess.run([*command, "-c", STAGE_CHILD, str(classes_path), str(repeats)],
                                  capture_output=True, text=True, env=env, cwd=cwd)
            if done.returncode != 0:
                raise RuntimeError(f"instances stage in {tree} failed:\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], file=sys.stderr)
    out = {"classes": str(classes_path), "shape": [128, 384, 384], "rounds": rounds, "warm_repeats": repeats,
           "trees": {}}
    for name, results in runs.items():
        out["trees"][name] = {
            "path": trees[name],
            "first_run_s": {k: float(np.median([r["first_run_s"][k] for r in results])) for k in results[0]["first_run_s"]},
            "warm_median_s": {k: float(np.median([r["warm_median_s"][k] for r in results]))
                              for k in results[0]["warm_median_s"]},
            **{k: results[0].get(k) for k in ("objects", "dmv_split_count", "dmv_objects", "labels_sha256",
                                                "imports")}}
    this = out["trees"]["this"]
    for name in [Path(b).name for b in baselines] + list(pythons):
        other = out["trees"][name]
        out[f"this_over_{name}"] = {
            "first_run_stage_time": this["first_run_s"]["stage"] / other["first_run_s"]["stage"],
            "warm_stage_time": this["warm_median_s"]["stage"] / other["warm_median_s"]["stage"],
            "identical_labels": this["labels_sha256"] == other["labels_sha256"],
            "identical_dmv_counts": (this["dmv_split_count"], this["dmv_objects"]) == (
                other["dmv_split_count"], other["dmv_objects"])}
    return out


def demo_end_to_end(pythons: list[str], rounds: int, work: Path) -> dict:
    """``sxtseg demo`` run by each interpreter (one virtual environment per sxtseg checkout), alternating.

    Each run is a fresh ``python -m sxtseg.cli demo`` process, timed from its
    start to its exit; "without phantom" subtracts the seconds the demo spent
    generating its phantom (``demo.json``: ``timings_s.phantom``), the part
    the issue's target leaves out.  Also recorded: the stage times and the
    demo's scores, so that the trees can be seen to do the same work.
    """
    import time

    import numpy as np

    runs: dict[str, list] = {python: [] for python in pythons}
    # what each interpreter imports (a check that each runs its own checkout), asked once
    imports = {python: subprocess.run([python, "-c", "import sxtseg, sxtseg.kernels as k; "
                                       "print(sxtseg.__file__, k.__file__)"],
                                      capture_output=True, text=True, cwd=work).stdout.split()
               for python in pythons}
    for _ in range(rounds):  # alternate the trees, so that a busy moment hits them alike
        for python in pythons:
            out = work / f"demo-{len(runs[python])}-{abs(hash(python))}"
            started = time.perf_counter()
            # cwd outside every checkout: `python -m` puts the working directory first on sys.path
            done = subprocess.run([python, "-m", "sxtseg.cli", "demo", "-o", str(out), "-q"],
                                  capture_output=True, text=True, cwd=work)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"sxtseg demo with {python} failed:\n{done.stderr[-3000:]}")
            demo = json.loads((out / "demo.json").read_text())
            timings = demo["timings_s"]
            runs[python].append({"wall_s": wall, "without_phantom_s": wall - timings["phantom"],
                                 "stages_s": timings, "dmv_count": demo["dmv_count"], "dice": demo["dice"]})
            print(python, {k: round(v, 2) for k, v in runs[python][-1].items() if k in ("wall_s", "without_phantom_s")},
                  runs[python][-1]["stages_s"], file=sys.stderr)
    out = {"rounds": rounds, "interpreters": {}}
    for python, results in runs.items():
        out["interpreters"][python] = {
            "wall_s": float(np.median([r["wall_s"] for r in results])),
            "without_phantom_s": float(np.median([r["without_phantom_s"] for r in results])),
            "stages_median_s": {k: float(np.median([r["stages_s"][k] for r in results])) for k in results[0]["stages_s"]},
            "runs_without_phantom_s": [round(r["without_phantom_s"], 2) for r in results],
            "dmv_count": results[0]["dmv_count"], "dice": results[0]["dice"], "imports": imports[python]}
    first = out["interpreters"][pythons[0]]
    for python in pythons[1:]:
        other = out["interpreters"][python]
        out[f"ratio_{python}_over_{pythons[0]}"] = other["without_phantom_s"] / first["without_phantom_s"]
    return out


def halo_study(model: str, halos=((0, 0, 0), (8, 8, 8), (16, 16, 16), (16, 32, 32), (32, 32, 32))) -> dict:
    import time


    from sxtseg import make_infected_cell, segment

    image, _, _, _ = make_infected_cell((128, 384, 384), seed=2025)
    image = image.compute()
    started = time.perf_counter()
    whole = segment(image, model, block_shape=image.shape, progress=False).to_numpy()
    rows = [{"halo": "whole volume", "seconds": time.perf_counter() - started, "agreement": 1.0}]
    for halo in halos:
        started = time.perf_counter()
        blocked = segment(image, model, block_shape=(64, 128, 128), halo=halo, progress=False).to_numpy()
        rows.append({"halo": list(halo), "seconds": time.perf_counter() - started,
                     "agreement": float((blocked == whole).mean()),
                     "dmv_agreement": float(((blocked == 6) == (whole == 6))[whole == 6].mean())})
        print(rows[-1], file=sys.stderr)
    return {"shape": [128, 384, 384], "block_shape": [64, 128, 128], "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64^3 and a tiny untrained model, for CI")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                        help="segment()'s precision (default auto: bfloat16 on CPUs with native bfloat16)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="cube sides in voxels")
    parser.add_argument("--shapes", nargs="+", metavar="Z,Y,X",
                        help="volume shapes instead of cubes, e.g. 128,512,512 256,512,512 (one block and two)")
    parser.add_argument("--model", default="default", help="model name or checkpoint")
    parser.add_argument("--halo-study", action="store_true", help="only the halo agreement study")
    parser.add_argument("--instances-stage", action="store_true", help="only the instances stage on the demo cell")
    parser.add_argument("--baseline", nargs="*", default=[], help="other sxtseg checkouts for --instances-stage")
    parser.add_argument("--baseline-python", nargs="*", default=[], metavar="PYTHON",
                        help="interpreters of virtual environments with another checkout installed "
                             "(--instances-stage; unlike --baseline, their kernels are theirs too)")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per tree (--instances-stage)")
    parser.add_argument("--workdir", type=Path, help="keeps the demo cell's classes between runs")
    parser.add_argument("--demo", nargs="+", metavar="PYTHON",
                        help="only `sxtseg demo` end to end, run by each of these interpreters (the first is "
                             "the baseline; one virtual environment per sxtseg checkout), --rounds times each")
    args = parser.parse_args(argv)
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="sxtseg-bench-demo-") as work:  # the demos' outputs: removed after
            record = demo_end_to_end(args.demo, args.rounds, Path(work))
        record["machine"] = {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "python": platform.python_version()}
        print(json.dumps(record, indent=1))
        return
    if args.halo_study:
        print(json.dumps(halo_study(args.model)))
        return
    if args.instances_stage:
        with tempfile.TemporaryDirectory(prefix="sxtseg-bench-instances-") as scratch:  # unless --workdir keeps it
            work = args.workdir or Path(scratch)
            work.mkdir(parents=True, exist_ok=True)
            record = instances_stage(work, args.model, args.baseline, args.rounds, repeats=3,
                                     pythons=args.baseline_python)
        record["machine"] = {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "python": platform.python_version()}
        print(json.dumps(record, indent=1))
        return

    # the phantoms and every case's output (0.6 GiB at --shapes 128,512,512 256,512,512): removed after
    with tempfile.TemporaryDirectory(prefix="sxtseg-bench-pipeline-") as work:
        print(json.dumps(pipeline_sizes(args, Path(work))))


def pipeline_sizes(args, work: Path) -> dict:
    """The record of the main benchmark: every size (or shape) of ``args``, phantoms and outputs in ``work``."""
    import sxtseg
    from sxtseg import make_infected_cell
    from sxtseg.io import save_volume

    model = args.model
    sizes = args.sizes
    if args.quick:
        from sxtseg.models import build, save_checkpoint

        sizes = [64]
        model = str(work / "tiny.pt")
        save_checkpoint(build("unet", 3, 1, 7, channels=(4, 8), strides=(2,), num_res_units=0), model, {
            "classes": {str(i): i for i in range(7)}, "voxel_size_nm": [30.0] * 3,
            "intensity": {"method": "percentile", "low": 1.0, "high": 99.0},
            "input": {"patch_size": [32, 32, 32], "context_slices": 0}})
    record = {"machine": {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()},
              "versions": {"sxtseg": sxtseg.__version__}, "model": model, "precision": args.precision, "sizes": []}
    try:
        import monai
        import torch

        record["versions"].update(torch=torch.__version__, monai=monai.__version__)
        record["machine"]["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    shapes = [(side, side, side) for side in sizes]
    if args.shapes and not args.quick:
        shapes = [tuple(int(n) for n in text.split(",")) for text in args.shapes]
    for shape in shapes:
        side = shape[0] if len(set(shape)) == 1 else "x".join(map(str, shape))
        voxels = shape[0] * shape[1] * shape[2]
        image, _, _, _ = make_infected_cell(shape, seed=2024)
        path = work / f"cell{side}.ome.zarr"
        save_volume(image, path)
        del image
        entry = {"side": side, "shape": list(shape), "voxels": voxels}
        cases = ("sxtseg_pipeline", "sxtseg_segment", "monai_whole")
        # --quick (a test): the three cases in one child, two interpreter start-ups fewer
        for group in [cases] if args.quick else [[case] for case in cases]:
            for case, result in run_cases(list(group), path, work, model, args.precision).items():
                entry[case] = result
                print(f"{side} {case}: {result}", file=sys.stderr)
        seg, plain = entry["sxtseg_segment"], entry["monai_whole"]
        if "error" not in seg and "error" not in plain:
            entry["throughput_ratio_sxtseg_over_monai"] = plain["seconds"] / seg["seconds"]
            entry["peak_rss_ratio_sxtseg_over_monai"] = seg["peak_rss_bytes"] / max(plain["peak_rss_bytes"], 1)
            entry["voxels_per_second"] = {"sxtseg": voxels / seg["seconds"], "monai": voxels / plain["seconds"]}
        record["sizes"].append(entry)
    return record


if __name__ == "__main__":
    main()
