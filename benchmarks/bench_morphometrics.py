"""Connected components and object tables: sxtseg against cc3d, scipy, scikit-image, dask-image.

Inputs (the same array for every method; 26-connectivity):

* ``spheres``: a binary volume of random spheres (radius 3-12 voxels, as in
  shared/ANCHORS.md, about 25% foreground), and ``noisy``: the same with 1%
  salt noise;
* ``sparse``: fewer, smaller spheres (radius 3-9 voxels, about 2% foreground:
  the organelle-mask case);
* ``classes``: the class volume that ``sxtseg.segment`` (the shipped model)
  makes of a phantom cell of ``(size / 4, size, size)`` voxels: a multi-class
  label volume as ``sxtseg run`` labels it;
* ``connectomics`` (only with ``--connectomics PATH``): cc3d's own real
  benchmark volume, a dense EM neuron segmentation (512^3 uint32, 2,523
  labels), ``benchmarks/connectomics.npy.ckl.gz`` in the
  connected-components-3d repository; reading it needs ``crackle-codec``.
  It is labelled as a C-ordered array (the file decompresses Fortran-ordered).

On the multi-label inputs (``classes``, ``connectomics``) scipy and
dask-image, which label all nonzero voxels as one foreground, are left out,
and so are the object tables (those are measured on ``spheres`` and
``noisy``).

* labelling: ``sxtseg.kernels.label`` on 1 thread and on all cores, against
  ``cc3d.connected_components`` (one thread, uint32 output like ours),
  ``scipy.ndimage.label``, ``skimage.measure.label`` and
  ``dask_image.ndmeasure.label`` with 128^3 chunks (only with ``--dask-image``:
  it takes minutes at 512^3), which is compared with sxtseg's chunked
  labelling of the same 128^3-chunked dask array;
* object table (count, centroid, bbox, inertia eigenvalues, mean intensity,
  surface area): ``sxtseg.measure`` against ``skimage.measure.regionprops_table``
  (plus marching-cubes surface area per object with ``--marching-cubes``),
  scipy ``find_objects`` + ``sum_labels`` + ``mean`` + ``center_of_mass``, and
  ``cc3d.statistics`` (count, bbox, centroid only).

Each method runs in a fresh child process that loads the input from a .npy
file, runs once to warm up (JIT, caches, allocator) and ``--repeats`` times
measured (the slow peers, scikit-image tables and dask-image, run once cold);
the median seconds and the child's peak resident memory above its baseline
are reported, with ratios sxtseg / peer.  One JSON record is printed.

Usage::

    python benchmarks/bench_morphometrics.py --quick     # 256^3, 1 repeat
    python benchmarks/bench_morphometrics.py             # 512^3, 3 repeats
    python benchmarks/bench_morphometrics.py --only label_sxtseg_1 label_sxtseg_all label_cc3d \
        --connectomics connected-components-3d/benchmarks/connectomics.npy.ckl.gz   # labelling only
    git worktree add /tmp/before HEAD~1 && python benchmarks/bench_morphometrics.py ... --baseline /tmp/before
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

import numpy as np

CHILD = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    import numpy as np

    def status():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    method, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mask = np.load(path)
    labels = intensity = None
    if method.startswith("table"):
        intensity = (mask * 0.4 + 0.1).astype(np.float32)
        import cc3d
        labels = cc3d.connected_components(mask, connectivity=26, out_dtype=np.uint32)

    def baseline_label():
        # sxtseg.kernels of another checkout (--baseline TREE), imported as a package of its own
        import importlib.util
        tree = os.environ["BENCH_BASELINE_TREE"]
        spec = importlib.util.spec_from_file_location(
            "baseline_kernels", os.path.join(tree, "kernels", "__init__.py"),
            submodule_search_locations=[os.path.join(tree, "kernels")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["baseline_kernels"] = module
        spec.loader.exec_module(module)
        return module.label

    def run():
        if method == "label_baseline_1":
            return baseline_label()(mask, 26, threads=1)[1]
        if method == "label_baseline_all":
            return baseline_label()(mask, 26)[1]
        if method == "label_sxtseg_1":
            from sxtseg.kernels import label
            return label(mask, 26, threads=1)[1]
        if method == "label_sxtseg_all":
            from sxtseg.kernels import label
            return label(mask, 26)[1]
        if method == "label_sxtseg_chunked":
            import dask.array as da
            from sxtseg._chunked_label import label_dask
            out, n = label_dask(da.from_array(mask, chunks=128), 26)
            out.compute()
            return n
        if method == "label_cc3d":
            import cc3d
            return int(cc3d.connected_components(mask, connectivity=26, out_dtype=np.uint32).max())
        if method == "label_scipy":
            from scipy import ndimage
            return ndimage.label(mask, np.ones((3, 3, 3)))[1]
        if method == "label_skimage":
            from skimage.measure import label
            return int(label(mask, connectivity=3).max())
        if method == "label_dask_image":
            import dask.array as da
            from dask_image.ndmeasure import label
            out, n = label(da.from_array(mask, chunks=128), np.ones((3, 3, 3)))
            out.compute()
            return int(n.compute())
        if method == "table_sxtseg":
            from sxtseg import Volume, measure
            return len(measure(Volume(labels, voxel_size=30.0), Volume(intensity, voxel_size=30.0)))
        if method in ("table_skimage", "table_skimage_mc"):
            from skimage.measure import marching_cubes, mesh_surface_area, regionprops, regionprops_table
            table = regionprops_table(labels, intensity, properties=(
                "label", "area", "centroid", "bbox", "equivalent_diameter_area", "inertia_tensor_eigvals",
                "intensity_mean"))
            if method == "table_skimage_mc":
                for region in regionprops(labels):
                    padded = np.pad(region.image, 1).astype(np.float32)
                    if min(padded.shape) >= 2:
                        verts, faces, _, _ = marching_cubes(padded, 0.5)
                        mesh_surface_area(verts, faces)
            return len(table["label"])
        if method == "table_scipy":
            from scipy import ndimage
            index = np.arange(1, int(labels.max()) + 1)
            ndimage.find_objects(labels)
            ndimage.sum_labels(np.ones_like(labels, dtype=np.uint8), labels, index)
            ndimage.mean(intensity, labels, index)
            ndimage.center_of_mass(mask, labels, index)
            return len(index)
        if method == "table_cc3d":
            import cc3d
            return len(cc3d.statistics(labels)["voxel_counts"]) - 1
        raise ValueError(method)

    slow = method in ("table_skimage", "table_skimage_mc", "label_dask_image")
    if slow:
        repeats = 1  # minutes per run at 512^3: one cold run (no JIT to warm up)
    else:
        result = run()  # warm-up: JIT compilation, caches, allocator
    base, _ = status()
    open("/proc/self/clear_refs", "w").write("5")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    _, peak = status()
    print(json.dumps({"median_seconds": statistics.median(times), "runs": times, "warm_up": not slow,
                      "peak_rss_bytes": peak - base, "result": int(result)}))
    """
)


def random_spheres(shape, n, seed=0, rmin=3.0, rmax=12.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.uint8)
    for _ in range(n):
        r = rng.uniform(rmin, rmax)
        c = rng.uniform(0, shape)
        lo = np.maximum(np.floor(c - r).astype(int), 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
    return out


def phantom_classes(shape) -> np.ndarray:
    """The shipped model's class volume (uint8) of a phantom infected cell of ``shape`` voxels (30 nm)."""
    import sxtseg
    from sxtseg.phantom import make_infected_cell

    volume = make_infected_cell(shape, seed=3)[0]
    return np.asarray(sxtseg.segment(volume, progress=False).to_numpy(), np.uint8)


def read_connectomics(path) -> np.ndarray:
    """cc3d's connectomics benchmark volume (crackle-compressed, gzipped) as a C-ordered uint32 array."""
    import gzip

    import crackle

    with gzip.open(path) as f:
        return np.ascontiguousarray(crackle.decompress(f.read()))


#: Labellers that see one foreground, not the values: left out on multi-label inputs.
BINARY_ONLY = ("label_scipy", "label_dask_image")


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "cpu": platform.machine()}
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256^3 volumes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="edge of the cubic volumes (default 512, quick 256)")
    parser.add_argument("--dask-image", action="store_true", help="also time dask-image (slow)")
    parser.add_argument("--marching-cubes", action="store_true", help="also time skimage with marching cubes (slow)")
    parser.add_argument("--only", nargs="+", help="run only these methods, e.g. label_sxtseg_chunked label_dask_image")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another sxtseg checkout whose kernels.label runs beside this one's (label_baseline_*)")
    parser.add_argument("--connectomics", type=Path, default=None,
                        help="cc3d's benchmarks/connectomics.npy.ckl.gz, labelled as one more input")
    args = parser.parse_args(argv)
    size = args.size or (256 if args.quick else 512)
    repeats = args.repeats or (1 if args.quick else 3)
    n_spheres = 16000 * (size / 512) ** 3

    label_methods = ["label_sxtseg_1", "label_sxtseg_all", "label_sxtseg_chunked", "label_cc3d", "label_scipy",
                     "label_skimage"]
    if args.dask_image:
        label_methods.append("label_dask_image")
    if args.baseline is not None:
        label_methods[2:2] = ["label_baseline_1", "label_baseline_all"]
    table_methods = ["table_sxtseg", "table_cc3d", "table_scipy", "table_skimage"]
    if args.marching_cubes:
        table_methods.append("table_skimage_mc")
    if args.only:
        label_methods = [m for m in label_methods + ["label_dask_image"] if m in args.only]
        if args.baseline is not None:
            label_methods += [m for m in ("label_baseline_1", "label_baseline_all") if m not in label_methods]
        table_methods = [m for m in table_methods + ["table_skimage_mc"] if m in args.only]

    import sxtseg

    record = {"benchmark": "bench_morphometrics", "shape": [size] * 3, "connectivity": 26, "repeats": repeats,
              "machine": machine(), "versions": {"sxtseg": sxtseg.__version__, "numpy": np.__version__},
              "inputs": {}}
    from importlib.metadata import PackageNotFoundError, version

    for package in ("connected-components-3d", "scipy", "scikit-image", "dask-image", "numba", "crackle-codec"):
        try:
            record["versions"][package] = version(package)
        except PackageNotFoundError:
            record["versions"][package] = None

    with tempfile.TemporaryDirectory(prefix="bench_morpho_") as tmp:
        spheres = random_spheres((size,) * 3, int(n_spheres))
        noisy = spheres.copy()
        rng = np.random.default_rng(1)
        noisy[rng.random(noisy.shape) < 0.01] = 1
        inputs = {"spheres": spheres, "noisy": noisy,
                  "sparse": random_spheres((size,) * 3, int(300 * (size / 256) ** 3), seed=2, rmax=9.0),
                  "classes": phantom_classes((max(32, size // 4), size, size))}
        if args.connectomics is not None:
            inputs["connectomics"] = read_connectomics(args.connectomics)
        for name, volume in inputs.items():
            path = Path(tmp) / f"{name}.npy"
            np.save(path, volume)
            results = {}
            for method in label_methods + table_methods:
                if method == "table_skimage_mc" and name == "noisy":
                    continue  # marching cubes on ~750,000 noise objects would take hours
                if name not in ("spheres", "noisy") and (method.startswith("table") or method in BINARY_ONLY):
                    continue  # see the module docstring
                env = dict(os.environ, BENCH_BASELINE_TREE=str(args.baseline or ""))
                out = subprocess.run([sys.executable, "-c", CHILD, method, str(path), str(repeats)],
                                     capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    results[method] = {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
                    continue
                results[method] = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{name} {method}: {results[method]['median_seconds']:.3f} s, "
                      f"{results[method]['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
            ratios = {}
            for ours, peers in (("label_sxtseg_1", label_methods), ("label_sxtseg_all", label_methods),
                                ("label_baseline_1", ["label_cc3d"]), ("label_baseline_all", ["label_cc3d"]),
                                ("label_sxtseg_chunked", ["label_dask_image"]), ("table_sxtseg", table_methods)):
                for peer in peers:
                    mine = peer.startswith(("label_sxtseg", "label_baseline", "table_sxtseg"))
                    if mine or "error" in results.get(peer, {"error": 1}):
                        continue  # ours, a peer that failed, or one not run on this input
                    if "error" in results.get(ours, {"error": 1}):
                        continue  # ours failed or was not run
                    ratios[f"{ours}/{peer}"] = results[ours]["median_seconds"] / results[peer]["median_seconds"]
            for ours, before in (("label_sxtseg_1", "label_baseline_1"), ("label_sxtseg_all", "label_baseline_all")):
                if "median_seconds" in results.get(ours, {}) and "median_seconds" in results.get(before, {}):
                    ratios[f"{ours}/{before}"] = results[ours]["median_seconds"] / results[before]["median_seconds"]
            record["inputs"][name] = {"shape": list(volume.shape), "dtype": str(volume.dtype),
                                      "foreground_fraction": float(np.count_nonzero(volume) / volume.size),
                                      "results": results, "time_ratios": ratios}
    print(ratio_table(record), file=sys.stderr)
    print(json.dumps(record, indent=2))
    return record


def ratio_table(record: dict) -> str:
    """A Markdown table of the time ratios sxtseg / peer (below 1: sxtseg faster), one column per input."""
    inputs = list(record["inputs"])
    keys = sorted({k for name in inputs for k in record["inputs"][name]["time_ratios"]})
    lines = ["| sxtseg / peer | " + " | ".join(inputs) + " |", "|---|" + "---|" * len(inputs)]
    for key in keys:
        cells = [record["inputs"][name]["time_ratios"].get(key) for name in inputs]
        lines.append(f"| {key} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
