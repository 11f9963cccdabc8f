"""Kill-and-resume soak: `sxtseg run` killed with SIGKILL at random moments, then resumed, ends bit for bit equal.

1. A phantom cell is written as MRC (``sxtseg phantom``) and segmented once
   without interruption (the reference), with the shipped model, in 27
   blocks.
2. The same command is started again and again in a fresh folder, each
   time killed with SIGKILL after a random delay: uniform between 0 and
   the time the run still needs (the start-up, plus the reference run's
   remaining share by the blocks not yet done), ``--kills`` times in a
   row, so that kills land in start-up, segmentation, instances, measuring
   and writing alike; after every kill
   the final results folder must either not exist or be complete (equal
   to the reference): never a half-written output.  A run that gets to
   its final rename before its kill ends the series early (counted).
3. Two refusals are checked on the interrupted state: a resume with
   another input (a second phantom of the same shape) and with another
   model must fail with exit code 2 and a message saying what changed.
4. The command runs to the end; every file of the results (the OME-Zarr
   arrays, the object tables, the quick look, ``run.json``, and
   ``summary.json`` apart from its timings) must equal the reference byte
   for byte.
5. Once more with ``--overwrite`` after a kill: the run starts clean and
   ends equal to the reference.

Run (prints one JSON record; docs/reliability.md quotes it)::

    python benchmarks/soak_resume.py --kills 25
    python benchmarks/soak_resume.py --quick     # 3 kills, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SXTSEG = [sys.executable, "-m", "sxtseg.cli"]
SHAPE = "64,192,192"
BLOCKS = ["--block-shape", "24,64,64", "--halo", "8,16,16"]
N_BLOCKS = 27


def sxtseg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SXTSEG, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"sxtseg {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def differences(reference: Path, result: Path) -> list[str]:
    """Files that differ between two results folders (summary.json compared without its timings)."""
    ref_files = {p.relative_to(reference) for p in reference.rglob("*") if p.is_file()}
    out_files = {p.relative_to(result) for p in result.rglob("*") if p.is_file()}
    found = [f"missing {p}" for p in sorted(ref_files - out_files)]
    found += [f"extra {p}" for p in sorted(out_files - ref_files)]
    for rel in sorted(ref_files & out_files):
        a, b = (reference / rel).read_bytes(), (result / rel).read_bytes()
        if rel.name == "summary.json":
            a, b = json.loads(a), json.loads(b)
            a.pop("timings_s"), b.pop("timings_s")
        if a != b:
            found.append(f"differs {rel}")
    return found


def killed_run(command: list[str], delay_s: float) -> bool:
    """Start ``command``, SIGKILL it after ``delay_s``; True if it was killed, False if it finished first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def soak(workdir: Path, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    cell, other = workdir / "cell.mrc", workdir / "other.mrc"
    sxtseg("phantom", str(cell), "--shape", SHAPE, "--seed", "5", "-q")
    sxtseg("phantom", str(other), "--shape", SHAPE, "--seed", "6", "-q")
    started = time.perf_counter()
    sxtseg("--version")
    startup_s = time.perf_counter() - started
    started = time.perf_counter()
    sxtseg("run", str(cell), "-o", str(workdir / "reference"), *BLOCKS, "-q")
    reference_s = time.perf_counter() - started

    out = workdir / "out"
    command = [*SXTSEG, "run", str(cell), "-o", str(out), *BLOCKS, "-q"]
    record = {"reference_seconds": round(reference_s, 2), "startup_seconds": round(startup_s, 2), "kills": 0,
              "finished_before_kill": 0, "half_written_outputs": 0, "delays_s": [], "blocks_done": []}
    blocks = out.with_name(out.name + ".partial") / "segmentation.zarr" / "blocks"
    for _ in range(kills):
        done = len(list(blocks.iterdir())) if blocks.is_dir() else 0
        record["blocks_done"].append(done)
        remaining = startup_s + (reference_s - startup_s) * (1 - done / N_BLOCKS)
        delay = rng.uniform(0.0, remaining)
        record["delays_s"].append(round(delay, 2))
        killed = killed_run(command, delay)
        record["kills"] += int(killed)
        if out.exists():  # the results folder appears only by the last rename: it must be complete
            if differences(workdir / "reference", out):
                record["half_written_outputs"] += 1
            record["finished_before_kill"] += 1
            break
    partial = out.with_name(out.name + ".partial")
    record["interrupted_state_left"] = partial.exists()
    refusals = {}
    if partial.exists() and not out.exists():
        other_input = sxtseg("run", str(other), "-o", str(out), *BLOCKS, "-q", check=False)
        refusals["other_input"] = {"exit_code": other_input.returncode, "message": other_input.stderr.strip()[-300:]}
        tiny = workdir / "tiny.pt"
        _tiny_model(tiny)
        other_model = sxtseg("run", str(cell), "-o", str(out), "--model", str(tiny), *BLOCKS, "-q", check=False)
        refusals["other_model"] = {"exit_code": other_model.returncode, "message": other_model.stderr.strip()[-300:]}
    record["refusals"] = refusals
    if not out.exists():
        resumed = sxtseg("run", str(cell), "-o", str(out), *BLOCKS, "-q", check=False)  # resume to the end
        if resumed.returncode != 0:
            record["resume_failed"] = resumed.stderr.strip()[-1500:]
            record["differences_after_resume"] = ["the resumed run failed"]
            return record
    record["differences_after_resume"] = differences(workdir / "reference", out)

    # --overwrite after an interruption starts clean
    fresh = workdir / "fresh"
    killed_run([*SXTSEG, "run", str(cell), "-o", str(fresh), *BLOCKS, "-q"], rng.uniform(0.3, 0.9) * reference_s)
    sxtseg("run", str(other), "-o", str(fresh), *BLOCKS, "-q", "--overwrite")  # another input, clean start
    sxtseg("run", str(cell), "-o", str(fresh), *BLOCKS, "-q", "--overwrite")
    record["differences_after_overwrite"] = differences(workdir / "reference", fresh)
    return record


def _tiny_model(path: Path) -> None:
    """An untrained checkpoint with the shipped model's classes: another model, for the refusal check."""
    import torch

    from sxtseg.models import build, load_model, save_checkpoint

    meta = dict(load_model("default").metadata)
    torch.manual_seed(0)
    net = build("unet", 3, 1, len(meta["classes"]), channels=(4, 8), strides=(2,), num_res_units=0)
    save_checkpoint(net, path, {k: meta[k] for k in ("classes", "voxel_size_nm", "intensity", "input")
                                if k in meta})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25, help="SIGKILLs in a row (at least 20 for the record)")
    parser.add_argument("--quick", action="store_true", help="3 kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sxtseg-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record = soak(workdir, 3 if args.quick else args.kills, args.seed)
    import sxtseg

    ok = (not record["differences_after_resume"] and not record.get("differences_after_overwrite", ["not run"])
          and record["half_written_outputs"] == 0
          and all(r["exit_code"] == 2 for r in record["refusals"].values()))
    record.update(benchmark="soak_resume", ok=ok, seconds=round(time.perf_counter() - started, 1),
                  machine={"cpu": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
                  versions={"sxtseg": sxtseg.__version__})
    print(json.dumps(record, indent=1))
    if not args.workdir and ok:  # a failure keeps its folder for a look
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
