"""Doctests of sxtseg.kernels, imported under their installed name.

pytest's ``--doctest-modules`` would import ``kernels/_*.py`` by path, as a
top-level package ``kernels``; Numba's on-disk cache (keyed by file) would
then refer to a module that does not exist when the kernels load as
``sxtseg.kernels``.  So they are run here with :mod:`doctest` instead.
"""

import doctest
import importlib
import pkgutil

import pytest

import sxtseg.kernels

MODULES = [f"sxtseg.kernels.{m.name}" for m in pkgutil.iter_modules(sxtseg.kernels.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_kernel_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no docstring example"
