"""sxtseg.heap: freed buffers go back to the system: between blocks always, large ones as they are freed when asked for (glibc only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

GLIBC = sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
pytestmark = pytest.mark.skipif(not GLIBC, reason="malloc tuning applies to glibc only")

RETENTION = textwrap.dedent("""
    import sys
    import numpy as np

    def rss():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))

    if sys.argv[1] == "tuned":
        from sxtseg.heap import return_large_buffers_to_os
        return_large_buffers_to_os()
    first = np.ones(30 << 20, np.uint8)
    del first  # freeing a 30 MiB mapping raises glibc's dynamic mmap threshold to 30 MiB
    base = rss()
    buffers, pins = [], []
    for _ in range(16):
        buffers.append(np.ones(16 << 20, np.uint8))  # 16 MiB each: heap or own mapping, by the threshold
        pins.append(np.ones(1 << 15, np.uint8))  # a small buffer after each keeps the heap from shrinking
    del buffers
    if sys.argv[1] == "trimmed":
        from sxtseg.heap import release_free_memory
        print(release_free_memory())
    print((rss() - base) / 2**20)
""")


def _clean_env(**extra) -> dict:
    """This process's environment without malloc settings (another test's library may have set some, as dask's
    nanny setting MALLOC_TRIM_THRESHOLD_ for its workers) and without SXTSEG_MALLOC_TUNING, plus ``extra``."""
    from sxtseg.heap import _USER_SETTINGS

    drop = {*_USER_SETTINGS, "SXTSEG_MALLOC_TUNING"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _retained_mib(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", RETENTION, mode], capture_output=True, text=True, check=True,
                          env=_clean_env())
    return float(done.stdout.strip().splitlines()[-1])


def test_freed_large_buffers_go_back_to_the_system():
    # glibc's default keeps 256 MiB of freed 16 MiB buffers resident; with the threshold fixed they are given back
    assert _retained_mib("plain") > 128
    assert _retained_mib("tuned") < 32


def test_free_heap_pages_go_back_after_release_free_memory():
    # the same 256 MiB freed into the heap (glibc's default threshold), then released between blocks' worth of work
    assert _retained_mib("trimmed") < 32


def test_segment_sets_it_only_when_asked():
    code = textwrap.dedent("""
        import tempfile
        import sxtseg
        from sxtseg import models
        from sxtseg.heap import return_large_buffers_to_os
        net = models.build("unet", 3, 1, 7, channels=(4, 8), strides=(2,)).eval()
        net.metadata = {"classes": {str(i): i for i in range(7)}, "voxel_size_nm": [30.0] * 3,
                        "intensity": {"method": "percentile", "low": 1.0, "high": 99.0},
                        "input": {"patch_size": [16, 32, 32], "context_slices": 0}, "sha256": "untrained"}
        image = sxtseg.make_infected_cell((32, 64, 64), seed=3, n_dmv=2)[0]
        sxtseg.segment(image, net, output=tempfile.mkdtemp() + "/seg.zarr", progress=False)
        print(return_large_buffers_to_os())
    """)
    for setting, expected in ((None, "set"), ("on", "already set")):  # by default segment() leaves malloc alone
        run_env = _clean_env() if setting is None else _clean_env(SXTSEG_MALLOC_TUNING=setting)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=run_env)
        assert done.stdout.strip().splitlines()[-1] == expected


def test_user_malloc_settings_are_respected():
    code = "from sxtseg.heap import return_large_buffers_to_os as f; print(f(), f())"
    for env, expected in (({}, "set already set"), ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, "left to the user " * 2)):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=_clean_env(**env))
        assert done.stdout.split() == expected.split()
