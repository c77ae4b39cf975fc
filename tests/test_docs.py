"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import keras_se.benchmarks
import pytest

import keras_se

# applications/ and benchmarks/ sit outside keras_se/ and are mapped into it, so walking
# keras_se's own folder does not find them.
MAPPED = (keras_se.applications, keras_se.benchmarks)
MODULES = sorted(
    {"keras_se", *(package.__name__ for package in MAPPED)}
    | {m.name for m in pkgutil.walk_packages(keras_se.__path__, "keras_se.")}
    | {
        m.name
        for package in MAPPED
        for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    }
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
