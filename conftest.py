"""Repository-level pytest settings (the test suite's own fixtures live in tests/conftest.py)."""

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
