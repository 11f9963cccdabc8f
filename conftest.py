"""Repository-level pytest settings (the test suite's own fixtures live in tests/conftest.py)."""

import os

# pytest-xdist workers share the machine's cores: each worker's OpenMP (torch) and BLAS pools get
# its share, not every core each (two workers of two threads each on two cores oversubscribed them,
# and OpenMP's spinning threads took CPU time from the other worker). Child processes inherit it.
# sxtseg's own labelling threads (SXTSEG_NUM_THREADS) are left alone: tests choose them explicitly.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS) if hasattr(os, "sched_getaffinity") else 1)
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_variable, _SHARE)

# The napari widgets import Qt and napari; they hold no doctests, and the --doctest-modules walk over
# sxtseg/ must not need Qt. tests/test_napari_widgets.py imports and tests them under Xvfb.
collect_ignore = ["sxtseg/napari/_widgets.py"]
# The catalog's modules need Django configured (tests/test_catalog*.py do it); its docstrings hold no doctests.
collect_ignore_glob = ["sxtseg/catalog/*"]

# The longest test files first, so that `pytest -n 2 --dist loadfile --no-loadscope-reorder` (the
# README's command) starts them early and the short files fill in around them (longest first:
# without it, pytest-xdist orders files by their number of tests and the 2.5-minute soak test,
# one test, ran last on one worker while the other idled). Seconds per file on the 2-core AMD EPYC
# VM, 2026-12-02, from `--junitxml`; a file not listed keeps its place after these.
LONGEST_FILES_FIRST = [
    "tests/test_benchmarks.py",  # 430 s
    "tests/test_soak_resume.py",  # 155 s
    "tests/test_catalog.py",  # 155 s
    "tests/test_napari_widgets.py",  # 85 s
    "tests/test_cxr.py",  # 85 s
    "tests/test_ct.py",  # 80 s
    "tests/test_default_model.py",  # 80 s
    "tests/test_chunked_memory.py",  # 65 s
    "tests/test_pipeline.py",  # 45 s
    "tests/test_chunked_label.py",  # 35 s
    "tests/test_resume.py",  # 30 s
    "tests/test_instances.py",  # 25 s
]


def pytest_collection_modifyitems(session, config, items):
    rank = {path: k for k, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: order within a file kept
