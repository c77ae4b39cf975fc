"""The layer tests and the portable application tests again, on every other Keras backend,
each in its own process."""

import os
import pathlib
import subprocess
import sys

import keras
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != keras.backend.backend()])
def test_layer_suite_passes_on_backend(backend):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/layers",
            "tests/applications/test_portable.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, (
        f"{backend}: {summary}\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
    )
    assert " passed" in summary and "failed" not in summary, summary
