"""Every docstring example in the package and every Python example in the README and docs/
runs and prints what it shows."""

import contextlib
import doctest
import importlib
import io
import pathlib
import pkgutil
import re
import textwrap

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


REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A ```python block (indented in a list item or not), optionally preceded by
# `<!-- not run: REASON -->`.
BLOCK = re.compile(
    r"^(?P<indent> *)(?:<!-- not run: (?P<reason>[^>]+) -->\n(?P=indent))?```python\n"
    r"(?P<code>.*?)^(?P=indent)```",
    re.S | re.M,
)
# `print(...)  # EXPECTED`: the line it prints, "..." standing for anything.
PRINT = re.compile(r"^print\(.*\)  # (?P<expected>.+)$", re.M)


def _blocks():
    for page in PAGES:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            code = textwrap.dedent(match["code"])
            yield f"{page.relative_to(REPO)}#{number}", code, match["reason"]


BLOCKS = list(_blocks())


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(code, PRINT.findall(code), id=name)
        for name, code, reason in BLOCKS
        if reason is None
    ],
)
def test_documentation_code_runs_and_prints_what_it_says(code, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write model.keras and the like
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "<documentation>", "exec"), {"__name__": "__documentation__"})
    printed = output.getvalue().splitlines()
    assert expected, "every run example prints something it promises"
    assert len(printed) == len(expected), printed
    for line, promise in zip(printed, expected, strict=True):
        pattern = ".*".join(re.escape(part) for part in promise.split("..."))
        assert re.fullmatch(pattern, line), (line, promise)


def test_only_the_examples_that_need_a_network_or_minutes_are_not_run():
    skipped = {name: reason for name, _, reason in BLOCKS if reason is not None}
    assert set(skipped) == {"docs/limitations.md#1", "docs/training.md#1", "docs/weights.md#1"}
    # Each names the test that covers what the example does.
    assert all("tests/" in reason for reason in skipped.values())
    assert len(BLOCKS) - len(skipped) >= 5
