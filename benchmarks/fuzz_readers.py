"""Fuzz every reader: valid files mutated must open or fail with an sxtseg error naming the file.

For each format sxtseg reads (MRC, TIFF, OME-TIFF, Zarr, OME-Zarr, HDF5,
NPY) a small valid file is written, then mutated by ``hypothesis``:
truncated, bytes flipped (header-weighted), bytes appended, absurd values
written into header fields, and, for Zarr stores, a metadata or chunk file
truncated, flipped or deleted.  Each case runs ``open_volume`` and reads the
whole volume chunk by chunk.  A case passes when it opens and reads, or
raises a :class:`sxtseg.errors.SxtsegError` whose message names the file;
any other exception, a message without the file name, a case running over
``--timeout`` seconds (a hang) or running out of the ``--memory-gib``
address-space limit (a memory blow-up) fails.

Run (prints one JSON record; docs/reliability.md quotes it)::

    python benchmarks/fuzz_readers.py --cases 1000
    python benchmarks/fuzz_readers.py --quick          # 25 cases per reader, for CI

The test suite runs the same harness with a bounded budget
(tests/test_fuzz_readers.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

READERS = ("mrc", "tiff", "ome-tiff", "zarr", "ome-zarr", "hdf5", "npy")
SHAPE = (6, 20, 24)


def valid_file(reader: str, folder: Path) -> Path:
    """A small valid file (or store) of ``reader``'s format in ``folder``."""
    data = (np.arange(np.prod(SHAPE)) % 251).astype(np.uint16).reshape(SHAPE)
    folder.mkdir(parents=True, exist_ok=True)
    if reader == "mrc":
        import mrcfile

        path = folder / "cell.mrc"
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data.astype(np.float32))
            mrc.voxel_size = 300.0
        return path
    if reader in ("tiff", "ome-tiff"):
        import tifffile

        if reader == "tiff":
            path = folder / "cell.tif"
            tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.03, 1 / 0.03),
                             metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"})
        else:
            path = folder / "cell.ome.tif"
            tifffile.imwrite(path, data, ome=True, compression="zlib", tile=(16, 16),
                             metadata={"axes": "ZYX", "PhysicalSizeX": 0.03, "PhysicalSizeY": 0.03,
                                       "PhysicalSizeZ": 0.03})
        return path
    if reader == "zarr":
        import zarr

        path = folder / "cell.zarr"
        array = zarr.create_array(str(path), shape=SHAPE, chunks=(3, 10, 12), dtype="uint16")
        array[:] = data
        array.attrs["voxel_size_nm"] = [30.0, 30.0, 30.0]
        return path
    if reader == "ome-zarr":
        from sxtseg import Volume, save_volume

        path = folder / "cell.ome.zarr"
        save_volume(Volume(data, voxel_size=30.0), path, chunks=(3, 10, 12), levels=2, progress=False)
        return path
    if reader == "hdf5":
        import h5py

        path = folder / "cell.h5"
        with h5py.File(path, "w") as fh:
            dset = fh.create_dataset("volume", data=data, chunks=(3, 10, 12), compression="gzip")
            dset.attrs["voxel_size_nm"] = [30.0, 30.0, 30.0]
        return path
    if reader == "npy":
        path = folder / "cell.npy"
        np.save(path, data)
        return path
    raise ValueError(reader)


# ------------------------------------------------------------------ mutations


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


#: MRC header fields (byte offsets of int32s) worth an absurd value: nx ny nz mode, mx my mz, mapc mapr maps,
#: ispg nsymbt, nversion, nint/nreal, the IMOD stamp
MRC_FIELDS = (0, 4, 8, 12, 28, 32, 36, 64, 68, 72, 88, 92, 108, 128, 152)
ABSURD = (0, -1, 1, 3, 4, 101, 2**31 - 1, -2**31, 1 << 20, 65536, 1024)


def mutate(target: Path, kind: str, draw) -> str:
    """Apply one mutation of ``kind`` to the file ``target`` (drawing values with ``draw``); say what it did."""
    from hypothesis import strategies as st

    raw = bytearray(target.read_bytes())
    size = len(raw)
    if kind == "delete":
        target.unlink()
        return f"deleted {target.name}"
    if kind == "truncate":
        cut = draw(st.integers(0, max(0, size - 1)))
        target.write_bytes(bytes(raw[:cut]))
        return f"truncated {target.name} to {cut} of {size} bytes"
    if kind == "append":
        extra = draw(st.binary(min_size=1, max_size=64))
        target.write_bytes(bytes(raw) + extra)
        return f"appended {len(extra)} bytes to {target.name}"
    if kind == "flip":
        if not size:
            return "nothing to flip"
        positions = draw(st.lists(st.one_of(st.integers(0, min(size, 1100) - 1), st.integers(0, size - 1)),
                                  min_size=1, max_size=8))
        for position in positions:
            raw[position] ^= draw(st.integers(1, 255))
        target.write_bytes(bytes(raw))
        return f"flipped {len(positions)} bytes of {target.name}"
    if kind == "field":  # an absurd int32 in an MRC header field
        offset = draw(st.sampled_from(MRC_FIELDS))
        value = draw(st.one_of(st.sampled_from(ABSURD), st.integers(-2**31, 2**31 - 1)))
        if size >= offset + 4:
            raw[offset:offset + 4] = struct.pack("<i", value)
        target.write_bytes(bytes(raw))
        return f"wrote {value} at byte {offset} of {target.name}"
    raise ValueError(kind)


def kinds_for(reader: str) -> tuple[str, ...]:
    base = ("truncate", "flip", "append")
    if reader == "mrc":
        return (*base, "field")
    if reader in ("zarr", "ome-zarr"):
        return (*base, "delete")
    return base


# ------------------------------------------------------------------ one case


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def check(path: Path, timeout_s: float) -> tuple[str, str | None]:
    """Open and read ``path``; return (outcome, failure or None)."""
    from sxtseg import open_volume
    from sxtseg.errors import SxtsegError

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vol = open_volume(path, voxel_size=30.0, ndim=None)
            for block in np.ndindex(*vol.data.numblocks):
                vol.data.blocks[block].compute(scheduler="sync")
        return "opened", None
    except SxtsegError as exc:
        if path.name not in str(exc):
            return type(exc).__name__, f"{type(exc).__name__} without the file name: {exc}"
        return type(exc).__name__, None
    except Hang:
        return "hang", f"no answer within {timeout_s} s"
    except MemoryError:
        return "memory", "ran out of the address-space limit"
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a failure
        return type(exc).__name__, f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# ------------------------------------------------------------------ driver


def fuzz(readers=READERS, cases: int = 25, seed: int = 0, timeout_s: float = 20.0, workdir: Path | None = None
         ) -> dict:
    """Run ``cases`` mutated files per reader; return counts of outcomes and the failures."""
    from hypothesis import HealthCheck, given, seed as hypothesis_seed, settings
    from hypothesis import strategies as st

    root = Path(workdir or tempfile.mkdtemp(prefix="sxtseg-fuzz-"))
    results = {}
    for reader in readers:
        original = valid_file(reader, root / "valid" / reader)
        outcomes: collections.Counter = collections.Counter()
        failures: list[dict] = []
        counter = [0]

        @hypothesis_seed(seed)
        @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def one(data):
            counter[0] += 1  # numbers the case folders; cases run are the outcomes counted below
            case = root / "cases" / reader / str(counter[0])
            case.mkdir(parents=True)
            target_root = case / original.name
            if original.is_dir():
                shutil.copytree(original, target_root)
            else:
                shutil.copyfile(original, target_root)
            files = _files(target_root)
            target = data.draw(st.sampled_from(files), label="file")
            kind = data.draw(st.sampled_from(kinds_for(reader)), label="mutation")
            what = mutate(target, kind, data.draw)
            outcome, failure = check(target_root, timeout_s)
            outcomes[outcome] += 1
            if failure:
                failures.append({"case": what, "failure": failure[:400]})
            shutil.rmtree(case, ignore_errors=True)

        one()
        results[reader] = {"cases": sum(outcomes.values()), "outcomes": dict(outcomes), "failures": failures}
    shutil.rmtree(root, ignore_errors=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="mutated files per reader")
    parser.add_argument("--quick", action="store_true", help="25 cases per reader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take before it is a hang")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit of this process")
    parser.add_argument("--readers", nargs="*", default=list(READERS))
    args = parser.parse_args(argv)
    cases = 25 if args.quick else args.cases
    limit = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    results = fuzz(args.readers, cases, args.seed, args.timeout)
    import sxtseg

    record = {"benchmark": "fuzz_readers", "cases_per_reader": cases, "seed": args.seed,
              "timeout_s": args.timeout, "memory_limit_gib": args.memory_gib,
              "seconds": round(time.perf_counter() - started, 1),
              "total_cases": sum(r["cases"] for r in results.values()),
              "total_failures": sum(len(r["failures"]) for r in results.values()),
              "readers": results,
              "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
              "versions": {"sxtseg": sxtseg.__version__}}
    print(json.dumps(record, indent=1))
    return 1 if record["total_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
