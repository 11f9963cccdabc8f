"""Thread counts follow the CPUs a job was given (affinity, cgroup, SLURM, a setting, a dask worker)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import sxtseg.kernels._stats as stats_module
from sxtseg.kernels import available_cpus, default_threads, label, region_stats


@pytest.fixture(autouse=True)
def no_setting(monkeypatch):
    for name in ("SXTSEG_NUM_THREADS", "SXTSEG_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)


def test_setting_wins(monkeypatch):
    monkeypatch.setenv("SXTSEG_NUM_THREADS", "3")
    assert default_threads() == 3
    assert default_threads(5) == 5  # an explicit argument wins over the setting
    monkeypatch.delenv("SXTSEG_NUM_THREADS")
    monkeypatch.setenv("SXTSEG_THREADS", "2")  # the older name still works
    assert default_threads() == 2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and at least 2 CPUs to restrict the affinity to fewer")
def test_affinity_not_cpu_count_decides():
    # the failure: threads defaulted to os.cpu_count(), so a job given 4 cores of a 128-core node ran 128
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from sxtseg.kernels import default_threads; print(os.cpu_count(), default_threads())")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SXTSEG_", "SLURM_"))}
    cpu_count, threads = map(int, subprocess.check_output([sys.executable, "-c", code], env=env).split())
    assert cpu_count >= 2 and threads == 1


def test_slurm_allocation_caps(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cpus() == 1 and default_threads() == 1


def test_inside_a_dask_worker_its_nthreads(monkeypatch):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert client.submit(default_threads, pure=False).result() == 1
    assert default_threads() == available_cpus()  # outside the worker again


def test_small_inputs_run_on_one_thread(monkeypatch):
    # labelling a component crop must not start a thread pool
    import sxtseg.kernels._label as label_module

    def no_pool(*args, **kwargs):
        raise AssertionError("a thread pool was started for a 32^3 crop")

    monkeypatch.setattr(label_module, "ThreadPoolExecutor", no_pool)
    monkeypatch.setattr(stats_module, "ThreadPoolExecutor", no_pool)
    mask = np.zeros((32, 32, 32), bool)
    mask[4:9, 4:9, 4:9] = mask[20:25, 20:25, 20:25] = True
    labels, n = label(mask)
    assert n == 2
    assert region_stats(labels)["count"][1:].tolist() == [125, 125]


def test_region_stats_scratch_memory_is_bounded(monkeypatch):
    # every thread keeps 192 bytes per label: with the budget below two threads' worth, one thread runs
    def no_pool(*args, **kwargs):
        raise AssertionError("threads started beyond the scratch budget")

    labels = np.arange(2 * 1024 * 1024, dtype=np.uint32).reshape(32, 256, 256) % 1000
    expected = region_stats(labels, threads=1)["count"]
    monkeypatch.setattr(stats_module, "SCRATCH_BUDGET_BYTES", 192 * 1000 * 2 - 1)
    monkeypatch.setattr(stats_module, "ThreadPoolExecutor", no_pool)
    np.testing.assert_array_equal(region_stats(labels, threads=2)["count"], expected)
