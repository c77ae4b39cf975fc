"""The test suite's own setup: how pytest-xdist splits it between workers (tests/conftest.py),
and what it leaves on disk."""

import pathlib

from conftest import FULL_SIZE_MODEL_MODULES, LONGEST_FIRST, work_unit


def test_each_module_is_one_work_unit_and_full_size_model_modules_share_one():
    train = "tests/training/test_train.py"
    assert work_unit(f"{train}::test_a") == work_unit(f"{train}::test_b[x-1]") == train
    assert work_unit("tests/layers/test_saving.py::test_a") == "tests/layers/test_saving.py"
    full_size = {
        work_unit(f"tests/applications/{module}.py::test_a[SENet154]")
        for module in FULL_SIZE_MODEL_MODULES
    }
    assert full_size == {"full_size_models"}
    # the registry tests build small models only: a unit of their own
    registry = "tests/applications/test_registry.py"
    assert work_unit(f"{registry}::test_a") == registry


def test_the_longest_units_named_first_exist():
    root = pathlib.Path(__file__).resolve().parents[1]
    for unit in LONGEST_FIRST:
        assert unit == "full_size_models" or (root / unit).is_file(), unit


_WRITTEN = []


def test_a_passing_test_writes_into_its_tmp_path(tmp_path):
    (tmp_path / "weights.bin").write_bytes(bytes(1024))
    _WRITTEN.append(tmp_path)
    assert (tmp_path / "weights.bin").stat().st_size == 1024


def test_the_tmp_path_of_a_passing_test_is_gone_once_it_ended():
    """pyproject.toml's `tmp_path_retention_policy = "failed"`: the gigabytes of checkpoints
    and exports that the suite writes do not pile up on disk (they filled a CI machine's)."""
    (folder,) = _WRITTEN  # the test above ran first, in this process
    assert not folder.exists()
