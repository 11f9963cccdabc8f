"""TIFF stack -> OME-Zarr conversion: sxtseg against the plain way, side by side.

* ``sxtseg``: ``open_volume(tif)`` (lazy, page by page through tifffile's Zarr
  interface) then ``save_volume(...)``: OME-Zarr 0.4 with a multiscale pyramid,
  written chunk by chunk.
* ``sxtseg_level0``: the same with ``levels=1`` (full resolution only), the
  like-for-like comparison with the plain way.
* ``plain``: ``tifffile.imread(tif)`` (the whole stack in memory) then one
  ``zarr`` array written with the same chunks and the same default codec
  (level 0 only, no pyramid, no OME metadata).

Each method runs in a fresh child process (so its peak resident memory is its
own), alternating, ``--repeats`` times per volume size; the medians and the
ratios sxtseg/plain are printed as one JSON record.  The input stacks are
generated uint16 volumes (a smooth "cell" plus noise, so compression does real
work), written plane by plane.

Usage::

    python benchmarks/bench_io.py            # 256 MiB, 1 GiB and 2 GiB stacks, 3 repeats
    python benchmarks/bench_io.py --quick    # 16 MiB and 64 MiB stacks, 1 repeat (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

CHUNKS = (128, 128, 128)

CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings

    def peak_rss():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmHWM"].split()[0]) * 1024

    def rss():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) * 1024

    method, src, dst, chunks = sys.argv[1], sys.argv[2], sys.argv[3], tuple(json.loads(sys.argv[4]))
    import numpy, tifffile, zarr, dask.array, sxtseg, sxtseg.io  # imports are not measured
    base = rss()
    open("/proc/self/clear_refs", "w").write("5")
    start = time.perf_counter()
    if method.startswith("sxtseg"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vol = sxtseg.open_volume(src)
        sxtseg.save_volume(vol, dst, chunks=chunks, levels=1 if method == "sxtseg_level0" else None)
    else:
        data = tifffile.imread(src)
        arr = zarr.create_array(dst, shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=2)
        arr[:] = data
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak_rss() - base}))
    """
)


def make_stack(path: Path, shape: tuple[int, int, int], seed: int = 0) -> None:
    """Write a uint16 TIFF stack plane by plane (never the whole volume in memory)."""
    import tifffile

    rng = np.random.default_rng(seed)
    z, y, x = shape
    yy, xx = np.mgrid[0:y, 0:x]
    cy, cx = y / 2, x / 2

    def planes():
        for k in range(z):
            r = ((yy - cy) / (0.4 * y)) ** 2 + ((xx - cx) / (0.45 * x)) ** 2 + ((k - z / 2) / (0.45 * z)) ** 2
            cell = np.where(r < 1, 2200.0, 1000.0)
            yield (cell + rng.normal(0, 60, size=(y, x))).astype(np.uint16)

    tifffile.imwrite(
        path, planes(), shape=shape, dtype=np.uint16, imagej=True,
        resolution=(1 / 0.03, 1 / 0.03), metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"},
    )


def run_child(method: str, src: Path, dst: Path) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, method, str(src), str(dst), json.dumps(CHUNKS)],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["output_bytes"] = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    shutil.rmtree(dst, ignore_errors=True)
    return result


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = int(open("/proc/meminfo").readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "python": platform.python_version()}


def versions() -> dict:
    import dask
    import tifffile
    import zarr

    import sxtseg

    return {"sxtseg": sxtseg.__version__, "numpy": np.__version__, "dask": dask.__version__,
            "zarr": zarr.__version__, "tifffile": tifffile.__version__}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 MiB and 64 MiB stacks, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per method and size (default 3, quick 1)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the stacks (default: a temp dir)")
    args = parser.parse_args(argv)
    shapes = [(32, 512, 512), (128, 512, 512)] if args.quick else [(128, 1024, 1024), (512, 1024, 1024), (1024, 1024, 1024)]
    repeats = args.repeats or (1 if args.quick else 3)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_io_"))
    workdir.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "bench_io", "task": "TIFF stack -> OME-Zarr", "chunks": list(CHUNKS),
              "repeats": repeats, "machine": machine(), "versions": versions(), "sizes": []}
    try:
        for shape in shapes:
            src = workdir / f"stack_{'x'.join(map(str, shape))}.tif"
            make_stack(src, shape)
            runs = {"sxtseg": [], "sxtseg_level0": [], "plain": []}
            for _ in range(repeats):
                for method in ("plain", "sxtseg", "sxtseg_level0"):
                    runs[method].append(run_child(method, src, workdir / f"out_{method}.zarr"))
            src.unlink()
            entry = {"shape": list(shape), "input_bytes": int(np.prod(shape)) * 2}
            for method, results in runs.items():
                entry[method] = {
                    "median_seconds": statistics.median(r["seconds"] for r in results),
                    "median_peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in results),
                    "output_bytes": results[0]["output_bytes"],
                    "runs": results,
                }
            for method in ("sxtseg", "sxtseg_level0"):
                entry[f"time_ratio_{method}_over_plain"] = (
                    entry[method]["median_seconds"] / entry["plain"]["median_seconds"]
                )
                entry[f"peak_rss_ratio_{method}_over_plain"] = (
                    entry[method]["median_peak_rss_bytes"] / entry["plain"]["median_peak_rss_bytes"]
                )
            record["sizes"].append(entry)
            print(f"{shape}: " + ", ".join(
                f"{m} {entry[m]['median_seconds']:.2f} s {entry[m]['median_peak_rss_bytes'] / 2**20:.0f} MiB"
                for m in runs), file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    small, large = record["sizes"][0], record["sizes"][-1]
    record["input_growth_large_over_small"] = large["input_bytes"] / small["input_bytes"]
    for method in ("sxtseg", "sxtseg_level0", "plain"):
        record[f"{method}_peak_rss_growth_large_over_small"] = (
            large[method]["median_peak_rss_bytes"] / small[method]["median_peak_rss_bytes"]
        )
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
