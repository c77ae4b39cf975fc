"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import keras_se

MODULES = sorted(
    {"keras_se", "keras_se.applications"}
    | {m.name for m in pkgutil.walk_packages(keras_se.__path__, "keras_se.")}
    | {
        m.name
        for m in pkgutil.walk_packages(keras_se.applications.__path__, "keras_se.applications.")
    }
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
