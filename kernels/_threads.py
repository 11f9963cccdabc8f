"""How many threads a kernel may use: the CPUs this process was given, not the machine's.

A job given 4 cores of a 128-core HPC node sees ``os.cpu_count() == 128``;
running 128 threads there makes it slower, not faster.  The count is, in
order of precedence:

1. ``SXTSEG_NUM_THREADS`` (or the older ``SXTSEG_THREADS``) when set;
2. inside a ``dask.distributed`` worker, that worker's ``nthreads``;
3. otherwise the CPUs this process may run on (``os.sched_getaffinity``,
   which SLURM and taskset restrict), capped by a cgroup CPU quota
   (``/sys/fs/cgroup/cpu.max``, as containers and some schedulers set) and
   by ``SLURM_CPUS_PER_TASK``.

Kernels also take fewer threads than that for small inputs (one per
:data:`MIN_VOXELS_PER_THREAD` voxels), so that labelling a component crop
does not pay for starting a thread pool.

Examples
--------
>>> from sxtseg.kernels import default_threads
>>> default_threads() >= 1
True
>>> default_threads(voxels=1000)  # a tiny input: one thread
1
"""

from __future__ import annotations

import math
import os
import sys

__all__ = ["MIN_VOXELS_PER_THREAD", "available_cpus", "default_threads"]

#: Inputs get at most one thread per this many voxels (a 64^3 crop runs on one thread).
MIN_VOXELS_PER_THREAD = 1 << 20


def _cgroup_quota() -> float | None:
    """CPUs allowed by a cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) quota, None when unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as fh:
            quota = int(fh.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
            period = int(fh.read())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _dask_worker_threads() -> int | None:
    """``nthreads`` of the dask.distributed worker running this code, None outside a worker."""
    if "distributed" not in sys.modules:  # never import distributed just to ask
        return None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    state = getattr(worker, "state", worker)
    nthreads = getattr(state, "nthreads", None) or getattr(worker, "nthreads", None)
    return int(nthreads) if nthreads else None


def available_cpus() -> int:
    """CPUs this process may use: affinity, capped by a cgroup quota and ``SLURM_CPUS_PER_TASK``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return max(1, cpus)


def default_threads(threads: int | None = None, *, voxels: int | None = None) -> int:
    """Threads a kernel should use.

    Parameters
    ----------
    threads : int, optional
        Asked for by the caller; wins when given (at least 1).
    voxels : int, optional
        Size of the input: at most one thread per
        :data:`MIN_VOXELS_PER_THREAD` voxels.

    Returns
    -------
    int
        At least 1.
    """
    if threads:
        return max(1, int(threads))
    if voxels is not None and int(voxels) < 2 * MIN_VOXELS_PER_THREAD:
        return 1  # a small input: no need to ask the system (files read per call would cost more than the work)
    setting = os.environ.get("SXTSEG_NUM_THREADS") or os.environ.get("SXTSEG_THREADS")
    if setting and setting.strip().isdigit() and int(setting) > 0:
        count = int(setting)
    else:
        count = _dask_worker_threads() or available_cpus()
    if voxels is not None:
        count = min(count, max(1, int(voxels) // MIN_VOXELS_PER_THREAD))
    return max(1, count)
