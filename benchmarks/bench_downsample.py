"""2x block downsampling for OME-Zarr pyramids: sxtseg's Numba kernels against NumPy, scikit-image, SciPy.

* mean (images): ``sxtseg.kernels.downsample_mean`` against a NumPy reshape-mean
  and ``skimage.transform.downscale_local_mean``;
* mode (labels): ``sxtseg.kernels.downsample_mode`` against ``scipy.stats.mode``
  over the reshaped blocks;
* codec: the Blosc-Zstd (level 1, byte shuffle) that ``save_volume`` writes
  against zarr's default Zstd, on the same chunks (encode seconds, ratio).

One block of the size ``save_volume`` writes (128 x 512 x 512 uint16 / float32,
64 x 256 x 256 uint8 labels), one thread, median of ``--repeats`` runs after a
warm-up (Numba compiles or loads its cache there).  Prints one JSON record.

Usage::

    python benchmarks/bench_downsample.py           # 5 repeats
    python benchmarks/bench_downsample.py --quick   # smaller blocks, 2 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def _median_seconds(func, repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _numpy_mean(block: np.ndarray) -> np.ndarray:
    z, y, x = (n // 2 for n in block.shape)
    return block[: 2 * z, : 2 * y, : 2 * x].reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5)).astype(block.dtype)


def _scipy_mode(labels: np.ndarray) -> np.ndarray:
    from scipy import stats

    z, y, x = (n // 2 for n in labels.shape)
    blocks = labels.reshape(z, 2, y, 2, x, 2).transpose(0, 2, 4, 1, 3, 5).reshape(z, y, x, 8)
    return stats.mode(blocks, axis=-1, keepdims=False).mode.astype(labels.dtype)


def main(argv=None) -> dict:
    import numcodecs
    import skimage
    import skimage.transform

    import sxtseg
    from sxtseg.kernels import downsample_mean, downsample_mode

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    image_shape = (32, 256, 256) if args.quick else (128, 512, 512)
    label_shape = (32, 128, 128) if args.quick else (64, 256, 256)

    rng = np.random.default_rng(0)
    image = (1000 + rng.normal(0, 60, size=image_shape)).astype(np.uint16)
    labels = rng.integers(0, 7, size=label_shape).astype(np.uint8)
    labels[:, : label_shape[1] // 2] = 1  # half the blocks uniform, as real label volumes are

    record: dict = {
        "benchmark": "bench_downsample",
        "image_shape": list(image_shape),
        "label_shape": list(label_shape),
        "repeats": repeats,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "versions": {"sxtseg": sxtseg.__version__, "numpy": np.__version__, "scikit-image": skimage.__version__,
                     "numcodecs": numcodecs.__version__},
        "results": {},
    }
    try:
        record["machine"]["cpu"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass

    for dtype in (np.uint16, np.float32):
        block = image.astype(dtype)
        ours = downsample_mean(block)
        np.testing.assert_allclose(ours, _numpy_mean(block.astype(np.float64)), atol=0.5 if dtype == np.uint16 else 1e-3)
        times = {
            "sxtseg.kernels.downsample_mean": _median_seconds(lambda: downsample_mean(block), repeats),
            "numpy reshape-mean": _median_seconds(lambda: _numpy_mean(block), repeats),
            "skimage downscale_local_mean": _median_seconds(
                lambda: skimage.transform.downscale_local_mean(block, (2, 2, 2)).astype(dtype), repeats
            ),
        }
        ours_s = times["sxtseg.kernels.downsample_mean"]
        record["results"][f"mean_{np.dtype(dtype).name}"] = {
            "median_seconds": times,
            "ratio_sxtseg_over": {k: ours_s / v for k, v in times.items() if not k.startswith("sxtseg")},
        }

    np.testing.assert_array_equal(downsample_mode(labels), _scipy_mode(labels))
    times = {
        "sxtseg.kernels.downsample_mode": _median_seconds(lambda: downsample_mode(labels), repeats),
        "scipy.stats.mode on blocks": _median_seconds(lambda: _scipy_mode(labels), max(1, repeats // 2)),
    }
    record["results"]["mode_uint8"] = {
        "median_seconds": times,
        "ratio_sxtseg_over": {"scipy.stats.mode on blocks": times["sxtseg.kernels.downsample_mode"]
                              / times["scipy.stats.mode on blocks"]},
    }

    chunks = [np.ascontiguousarray(image[:, y : y + 128, x : x + 128])
              for y in range(0, image_shape[1], 128) for x in range(0, image_shape[2], 128)]
    codecs = {
        "Blosc zstd level 1, shuffle (sxtseg)": numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE),
        "Zstd level 0 (zarr default)": numcodecs.Zstd(level=0),
    }
    codec_results = {}
    for name, codec in codecs.items():
        seconds = _median_seconds(lambda c=codec: [c.encode(ch) for ch in chunks], repeats)
        size = sum(len(codec.encode(ch)) for ch in chunks)
        codec_results[name] = {"encode_seconds": seconds, "compression_ratio": image.nbytes / size}
    ours, theirs = codec_results.values()
    record["results"]["codec_uint16"] = {
        **codec_results,
        "encode_time_ratio_sxtseg_over_default": ours["encode_seconds"] / theirs["encode_seconds"],
        "compression_ratio_sxtseg_over_default": ours["compression_ratio"] / theirs["compression_ratio"],
    }
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
