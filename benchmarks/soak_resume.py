"""Kill-and-resume soak: `sxtseg run` killed with SIGKILL at random moments, then resumed, ends bit for bit equal.

1. A 96x256x256 phantom cell is written as MRC (``sxtseg phantom``) and
   segmented once without interruption (the reference), with the shipped
   model, in 64 blocks of 24x64x64.
2. The same command is started again and again, each time killed with
   SIGKILL after a random delay: uniform between 0 and 0.8 times what the
   run still needs (start-up, the reference's wall time less its stages,
   and opening; the reference's segmentation time for the blocks not yet
   done; the stages after it, from the reference's ``summary.json``), so
   that kills land in start-up, segmentation, instances, measuring and
   writing alike.  An episode kills and restarts one results folder until
   the run gets through its final rename (a kill after it still counts);
   then the next episode starts in a fresh folder, until ``--kills`` kills
   in all.  After every kill the results folder must either not exist or
   be complete: never half-written.  The last episode ends interrupted and
   is resumed to the end.
3. On an interrupted run (one more, killed as soon as its first block is
   written), a resume with another input (a second phantom of the same
   shape) and with another model must fail with exit code 2 and a message
   saying what changed.
4. Every episode's results (the OME-Zarr arrays and metadata, the object
   tables, the quick look, ``run.json``, and ``summary.json`` apart from its
   timings) must equal the reference byte for byte.
5. Once more with ``--overwrite`` after a kill, then over the finished
   result of the other phantom (not with ``--quick``): the run starts clean
   and ends equal to the reference.

Every ``sxtseg`` command has a time limit (20 times the reference's time, at
least 2 minutes): one that fails or hangs ends the soak with ``ok: false`` and
an ``error`` naming it, the record so far kept.

Run (prints one JSON record; docs/reliability.md quotes it)::

    python benchmarks/soak_resume.py --kills 30
    python benchmarks/soak_resume.py --quick --no-mirror   # as the tests run it: one pass per window
    python benchmarks/soak_resume.py --quick     # 3 kills, each when a random later block is written, 8 blocks;
                                                 # --overwrite checked after a kill only
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

import numpy as np

SXTSEG = [sys.executable, "-m", "sxtseg.cli"]
SHAPE = "96,256,256"  # 64 blocks of BLOCKS; --quick: QUICK_SHAPE, 8 blocks
QUICK_SHAPE = "48,128,128"
BLOCKS = ["--block-shape", "24,64,64", "--halo", "8,16,16"]


RUN_TIMEOUT_S = 600.0  # no `sxtseg` command of the soak may take longer; set from the reference's time


def sxtseg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run([*SXTSEG, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        tail = (error.stderr or b"")[-2000:]
        raise RuntimeError(f"sxtseg {' '.join(args)} did not end within {RUN_TIMEOUT_S:.0f} s "
                           f"(stderr: {tail.decode(errors='replace') if isinstance(tail, bytes) else tail})") from None
    if check and result.returncode != 0:
        raise RuntimeError(f"sxtseg {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


STARTED = time.perf_counter()


def log(message: str) -> None:
    """One line of progress on stderr (the record goes to stdout), with the time since the start."""
    print(f"soak {time.perf_counter() - STARTED:7.1f} s: {message}", file=sys.stderr, flush=True)


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


def killed_run(command: list[str], delay_s: float, until=None) -> bool:
    """Start ``command``, SIGKILL it after ``delay_s`` (or as soon as ``until()`` is true, polled every 10 ms).

    Returns True if it was killed, False if it finished first.
    """
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + delay_s
    while time.perf_counter() < deadline and not (until is not None and until()):
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def soak(workdir: Path, kills: int, seed: int, shape: str = SHAPE, at_blocks: bool = False,
         overwrite_other: bool = True, record: dict | None = None, options: list[str] = BLOCKS) -> dict:
    """Run the soak in ``workdir``; fills and returns ``record`` (so that a caller keeps what was done on an error).

    ``options``: of every ``sxtseg run`` (the blocks, and ``--no-mirror`` where asked for).
    """
    global RUN_TIMEOUT_S
    record = {} if record is None else record
    rng = random.Random(seed)
    n_blocks = int(np.prod([-(-int(n) // int(b)) for n, b in zip(shape.split(","), BLOCKS[1].split(","))]))
    cell, other = workdir / "cell.mrc", workdir / "other.mrc"
    from sxtseg.cli import main as sxtseg_main  # the phantoms here, not in two more interpreter start-ups

    for path, seed in ((cell, "5"), (other, "6")):
        if sxtseg_main(["phantom", str(path), "--shape", shape, "--seed", seed, "-q"]) != 0:
            raise RuntimeError(f"sxtseg phantom {path} failed")
    started = time.perf_counter()
    sxtseg("run", str(cell), "-o", str(workdir / "reference"), *options, "-q")
    reference_s = time.perf_counter() - started
    log(f"reference run {reference_s:.1f} s")
    RUN_TIMEOUT_S = max(120.0, 20 * reference_s)  # a run that hangs fails the soak, naming the command

    stage_s = json.loads((workdir / "reference" / "summary.json").read_text())["timings_s"]
    startup_s = reference_s - sum(stage_s.values())  # interpreter, imports, model loading, fingerprints
    before_s = startup_s + stage_s["open"] + stage_s["calibrate"]
    after_s = stage_s["instances"] + stage_s["measure"] + stage_s["write"]
    record.update({"shape": shape, "blocks": n_blocks, "reference_seconds": round(reference_s, 2),
                   "startup_seconds": round(startup_s, 2), "kills": 0,
                   "episodes": [], "half_written_outputs": 0, "failed_resumes": [],
                   "kills_by_estimated_stage": {"start-up": 0, "segment": 0, "after segment": 0}})
    while record["kills"] < kills:
        out = workdir / f"out{len(record['episodes'])}"
        episode = {"kills": 0, "delays_s": [], "blocks_done": [], "killed_after_final_rename": False}
        record["episodes"].append(episode)
        command = [*SXTSEG, "run", str(cell), "-o", str(out), *options, "-q"]
        blocks = out.with_name(out.name + ".partial") / "segmentation.zarr" / "blocks"
        while record["kills"] < kills and not out.exists():
            done = len(list(blocks.iterdir())) if blocks.is_dir() else 0
            # what the run still needs: start-up, opening, the blocks not yet done, the stages after them
            remaining = before_s + stage_s["segment"] * (1 - done / n_blocks) + after_s
            delay = rng.uniform(0.0, 0.8 * remaining)
            until = None
            if at_blocks and done < n_blocks - 1:  # --quick: kill when a random later block is written,
                target = rng.randint(done + 1, n_blocks - 1)  # so that its few kills interrupt the segmentation
                delay = 10 * reference_s
                until = lambda target=target: blocks.is_dir() and len(list(blocks.iterdir())) >= target  # noqa: E731
            episode["delays_s"].append(round(delay, 2))
            episode["blocks_done"].append(done)
            log(f"episode {len(record['episodes']) - 1}: run with {done} blocks done, killed "
                + (f"at block {target}" if until is not None else f"after {delay:.2f} s"))
            if killed_run(command, delay, until):
                record["kills"] += 1
                episode["kills"] += 1
                stage = ("segment" if until is not None else "start-up" if delay < before_s else
                         "segment" if delay < remaining - after_s else "after segment")
                record["kills_by_estimated_stage"][stage] += 1
                episode["killed_after_final_rename"] = out.exists()
            elif not out.exists():
                record["failed_resumes"].append(f"episode {len(record['episodes'])}: exited without results")
                break
        if out.exists():  # the results folder appears only by the last rename: it must be complete
            record["half_written_outputs"] += int(bool(differences(workdir / "reference", out)))
            continue
        log(f"episode {len(record['episodes']) - 1}: resumed to the end")
        resumed = sxtseg("run", str(cell), "-o", str(out), *options, "-q", check=False)  # resume to the end
        if resumed.returncode != 0:
            record["failed_resumes"].append(resumed.stderr.strip()[-1500:])
    # a resume of an interrupted run with another input or another model must be refused
    log("refusals: another input and another model on an interrupted run")
    interrupted = _interrupted_run(workdir / "spare", cell, reference_s, options)
    record["refusals"] = _refusals(workdir, cell, other, interrupted, options)
    record["episodes_completed"] = sum(1 for k in range(len(record["episodes"])) if (workdir / f"out{k}").exists())
    record["differences_after_resume"] = sorted({d for k in range(len(record["episodes"]))
                                                 for d in differences(workdir / "reference", workdir / f"out{k}")})
    record["max_kills_in_a_row"] = max(e["kills"] for e in record["episodes"])

    # --overwrite after an interruption starts clean
    fresh = workdir / "fresh"
    log("--overwrite after a kill")
    killed_run([*SXTSEG, "run", str(cell), "-o", str(fresh), *options, "-q"], rng.uniform(0.3, 0.9) * reference_s)
    if overwrite_other:  # over a finished result of another input (left out by --quick: one full run less)
        sxtseg("run", str(other), "-o", str(fresh), *options, "-q", "--overwrite")
    sxtseg("run", str(cell), "-o", str(fresh), *options, "-q", "--overwrite")
    record["differences_after_overwrite"] = differences(workdir / "reference", fresh)
    return record


def _interrupted_run(out: Path, cell: Path, reference_s: float, options: list[str], tries: int = 3) -> Path:
    """``out`` killed as soon as its first block is written: an interrupted run, whatever the machine's speed.

    (A kill after a fixed share of the reference's time can land before the run has written its
    fingerprint on every try when the machine is busier than during the reference.)
    """
    blocks = out.with_name(out.name + ".partial") / "segmentation.zarr" / "blocks"
    for _ in range(tries):
        killed_run([*SXTSEG, "run", str(cell), "-o", str(out), *options, "-q"], 10 * reference_s,
                   until=lambda: blocks.is_dir() and any(blocks.iterdir()))
        if _interrupted(out):
            return out
        shutil.rmtree(out, ignore_errors=True)
    raise RuntimeError(f"no interrupted run in {tries} tries: `sxtseg run` was never killed between its first "
                       f"block and its final rename ({out})")


def _interrupted(out: Path) -> bool:
    """Whether ``out`` holds an interrupted run that got as far as its fingerprint (``run.json``)."""
    return not out.exists() and (out.with_name(out.name + ".partial") / "run.json").exists()


def _refusals(workdir: Path, cell: Path, other: Path, out: Path, options: list[str]) -> dict:
    """Exit code and message of a resume of ``out``'s interrupted run with another input and another model."""
    other_input = sxtseg("run", str(other), "-o", str(out), *options, "-q", check=False)
    tiny = workdir / "tiny.pt"
    if not tiny.exists():
        _tiny_model(tiny)
    other_model = sxtseg("run", str(cell), "-o", str(out), "--model", str(tiny), *options, "-q", check=False)
    return {name: {"exit_code": r.returncode, "message": r.stderr.strip()[-300:]}
            for name, r in (("other_input", other_input), ("other_model", other_model))}


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
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs in a row (at least 20 for the record)")
    parser.add_argument("--quick", action="store_true", help="3 kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--no-mirror", action="store_true",
                        help="every run without test-time mirroring (one pass per window: faster, for CI)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sxtseg-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record: dict = {}
    try:
        soak(workdir, 3 if args.quick else args.kills, args.seed, QUICK_SHAPE if args.quick else SHAPE,
             at_blocks=args.quick, overwrite_other=not args.quick, record=record,
             options=[*BLOCKS, "--no-mirror"] if args.no_mirror else BLOCKS)
    except RuntimeError as error:  # a command that failed or hung: the record so far, and what happened
        record["error"] = str(error)
    import sxtseg

    ok = ("error" not in record and not record["differences_after_resume"]
          and not record.get("differences_after_overwrite", ["not run"])
          and record["half_written_outputs"] == 0 and not record["failed_resumes"]
          and len(record["refusals"]) == 2 and all(r["exit_code"] == 2 for r in record["refusals"].values()))
    record.update(benchmark="soak_resume", ok=ok, mirror=not args.no_mirror,
                  seconds=round(time.perf_counter() - started, 1),
                  machine={"cpu": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
                  versions={"sxtseg": sxtseg.__version__})
    print(json.dumps(record, indent=1))
    if not args.workdir and ok:  # a failure keeps its folder for a look
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
