"""Repository-level pytest settings (the test suite's own fixtures live in tests/conftest.py)."""

# The napari widgets import Qt and napari; they hold no doctests, and the --doctest-modules walk over
# sxtseg/ must not need Qt. tests/test_napari_widgets.py imports and tests them under Xvfb.
collect_ignore = ["sxtseg/napari/_widgets.py"]
# The catalog's modules need Django configured (tests/test_catalog*.py do it); its docstrings hold no doctests.
collect_ignore_glob = ["sxtseg/catalog/*"]
