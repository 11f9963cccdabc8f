"""Opening is lazy and reading one chunk costs about one chunk of memory.

Each format gets a 256 MiB file, far larger than the 8 MiB chunks asked for.
A fresh Python process opens it, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), reads the central chunk and reports the peak
resident-set growth and the bytes it read (``/proc/self/io``).  Bytes and
pages are measured, never time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

SHAPE = (128, 1024, 1024)  # uint16: 256 MiB
CHUNKS = (4, 1024, 1024)  # 8 MiB
CHUNK_BYTES = 4 * 1024 * 1024 * 2
FILE_BYTES = int(np.prod(SHAPE)) * 2

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _slab(z0: int, z1: int) -> np.ndarray:
    z = np.arange(z0, z1, dtype=np.uint16)[:, None, None]
    return np.broadcast_to(z, (z1 - z0, SHAPE[1], SHAPE[2])).astype(np.uint16)


def _write(fmt: str, folder) -> str:
    step = 16
    if fmt == "npy":
        path = folder / "big.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=SHAPE)
        for z in range(0, SHAPE[0], step):
            out[z : z + step] = _slab(z, z + step)
        out.flush()
        del out
    elif fmt == "mrc":
        path = folder / "big.mrc"
        with mrcfile.new_mmap(path, shape=SHAPE, mrc_mode=6) as mrc:
            for z in range(0, SHAPE[0], step):
                mrc.data[z : z + step] = _slab(z, z + step)
            mrc.voxel_size = 300.0
    elif fmt == "tiff":
        path = folder / "big.tif"
        pages = (_slab(z, z + 1)[0] for z in range(SHAPE[0]))
        tifffile.imwrite(path, pages, shape=SHAPE, dtype=np.uint16, imagej=True,
                         resolution=(1 / 0.03, 1 / 0.03), metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"})
    elif fmt == "hdf5":
        path = folder / "big.h5"
        with h5py.File(path, "w") as fh:
            d = fh.create_dataset("raw", shape=SHAPE, dtype=np.uint16, chunks=(4, 256, 256))
            for z in range(0, SHAPE[0], step):
                d[z : z + step] = _slab(z, z + step)
            d.attrs["element_size_um"] = [0.03, 0.03, 0.03]
    else:
        path = folder / "big.zarr"
        arr = zarr.create_array(str(path), shape=SHAPE, chunks=(4, 256, 256), dtype=np.uint16)
        for z in range(0, SHAPE[0], step):
            arr[z : z + step] = _slab(z, z + step)
        arr.attrs.update({"voxel_size": [30, 30, 30], "unit": "nm"})
    return str(path)


PROBE = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import sxtseg

    def status():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    def rchar():
        return int(dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())["rchar"])

    path, chunks = sys.argv[1], tuple(json.loads(sys.argv[2]))
    sxtseg.open_volume  # import the readers before measuring
    import sxtseg.io, h5py, zarr, tifffile, mrcfile
    rss0, _ = status(); read0 = rchar()  # opening: nothing but headers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vol = sxtseg.open_volume(path, chunks=chunks)
    open_rss, open_read = status()[0] - rss0, rchar() - read0
    vol.data[0, 0, 0].compute(scheduler="sync")  # first use of the codecs and event loops, not measured
    rss1, _ = status(); read1 = rchar()
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark
    centre = tuple(len(c) // 2 for c in vol.data.chunks)
    block = vol.data.blocks[centre].compute(scheduler="sync")
    _, peak = status(); read2 = rchar()
    z0 = sum(vol.data.chunks[0][: centre[0]])
    correct = bool((block == np.arange(z0, z0 + block.shape[0], dtype=block.dtype)[:, None, None]).all())
    print(json.dumps({
        "open_rss": open_rss, "open_read": open_read,
        "chunk_peak_rss": peak - rss1, "chunk_read": read2 - read1,
        "chunk_bytes": int(block.nbytes), "correct": correct,
    }))
    """
)


@pytest.mark.parametrize("fmt", ["npy", "mrc", "tiff", "hdf5", "zarr"])
def test_open_is_lazy_and_one_chunk_costs_one_chunk(tmp_path, fmt):
    path = _write(fmt, tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, path, json.dumps(CHUNKS)], capture_output=True, text=True, check=True
    )
    m = json.loads(result.stdout.strip().splitlines()[-1])
    assert m["correct"], m
    assert m["chunk_bytes"] == CHUNK_BYTES
    # opening reads headers only, and allocates next to nothing
    assert m["open_read"] < 4 * 2**20, m
    assert m["open_rss"] < 16 * 2**20, m
    # reading the chunk: at most a few chunks of memory, far below the file (256 MiB)
    assert m["chunk_peak_rss"] < 3 * CHUNK_BYTES + 8 * 2**20, m
    assert m["chunk_peak_rss"] < FILE_BYTES / 8, m
    if fmt in ("tiff", "hdf5", "zarr"):  # read() calls are counted; memmaps fault pages in instead
        assert m["chunk_read"] < 2 * CHUNK_BYTES, m


SAVE_PROBE = textwrap.dedent(
    """
    import json, sys
    import sxtseg, sxtseg.io, zarr

    def status():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    vol = sxtseg.open_volume(sys.argv[1])
    vol.data[0, 0, 0].compute(scheduler="sync")  # first use of the codecs and event loops, not measured
    rss0, _ = status()
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark
    sxtseg.save_volume(vol, sys.argv[2], levels=1)
    _, peak = status()
    window = zarr.open_group(sys.argv[2], mode="r").attrs["omero"]["channels"][0]["window"]
    print(json.dumps({"peak_growth": peak - rss0, "window": window}))
    """
)


def test_saving_one_level_does_not_load_the_volume(tmp_path):
    """save_volume(levels=1) of a lazy 256 MiB volume: the display window comes from a sample, not the whole level."""
    shape = (512, 512, 512)  # uint16: 256 MiB
    source = zarr.create_array(str(tmp_path / "big.zarr"), shape=shape, chunks=(128, 128, 128), dtype=np.uint16)
    ramp = np.arange(512, dtype=np.uint16)
    for z in range(0, shape[0], 64):  # value z + y: 0 .. 1022
        source[z : z + 64] = np.broadcast_to(ramp[z : z + 64, None, None] + ramp[None, :, None], (64, 512, 512))
    source.attrs.update({"voxel_size": [30, 30, 30], "unit": "nm"})
    result = subprocess.run([sys.executable, "-c", SAVE_PROBE, str(tmp_path / "big.zarr"),
                             str(tmp_path / "out.ome.zarr")], capture_output=True, text=True, check=True)
    m = json.loads(result.stdout.strip().splitlines()[-1])
    # reading the whole level as float64 for the window took 12x the file (3.2 GB); writing takes about 1.3x
    assert m["peak_growth"] < 2 * FILE_BYTES, m
    # the window from the strided sample: near the 0.5 and 99.5 percentiles of z + y (51 and 971: a triangle)
    assert 40 < m["window"]["start"] < 60 and 960 < m["window"]["end"] < 985, m
