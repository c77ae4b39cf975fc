"""The package as a user meets it: install layout, imports, console script and examples."""

import doctest
import importlib.metadata
import math
import os
import pathlib
import runpy
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import keras
import numpy as np
import pytest

import keras_se
from keras_se import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_python(code, env=None, cwd=None):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_version_matches_the_installed_metadata():
    assert importlib.metadata.version("keras-se") == keras_se.__version__


def test_public_api():
    assert keras_se.SqueezeExcite.__module__ == "keras_se.layers.squeeze_excite"
    assert keras_se.applications.__name__ == "keras_se.applications"
    for name in ("SqueezeExcite", "SelectiveKernel"):
        registered = keras.saving.get_registered_object(f"keras_se>{name}")
        assert registered is getattr(keras_se, name)


@pytest.mark.parametrize("hook", ["build_wheel", "build_editable"])
def test_top_level_folders_install_inside_keras_se(hook, tmp_path):
    """Regular and editable wheels map the top-level applications/ and benchmarks/ folders.

    The wheels come from setuptools' PEP 517 hooks, as pip builds them, and are unpacked into a
    folder of their own: installing with pip would replace this environment's keras-se.
    """
    wheels, site_dir = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    build = f"""
        import setuptools.build_meta as backend
        print(backend.{hook}({str(wheels)!r}))
    """
    wheel_name = run_python(build, cwd=REPO).split()[-1]
    with zipfile.ZipFile(wheels / wheel_name) as wheel:
        wheel.extractall(site_dir)
    # keras from this environment (without running its .pth files, so without its own
    # editable keras_se), keras_se only from the unpacked wheel, and not from the cwd.
    check = f"""
        import site, sys
        sys.path.append({sysconfig.get_path("purelib")!r})
        finders = len(sys.meta_path)
        site.addsitedir({str(site_dir)!r})
        sys.path.insert(0, {str(site_dir)!r})
        sys.meta_path[:0] = sys.meta_path[finders:]  # the wheel's editable finder goes first
        import keras_se.applications, keras_se.benchmarks
        print(keras_se.__file__)
        print(keras_se.applications.__file__)
        print(keras_se.benchmarks.__file__)
    """
    result = subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(check)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    package_file, applications_file, benchmarks_file = map(pathlib.Path, result.stdout.split())
    if hook == "build_editable":
        assert package_file == REPO / "keras_se" / "__init__.py"
        assert applications_file == REPO / "applications" / "__init__.py"
        assert benchmarks_file == REPO / "benchmarks" / "__init__.py"
    else:
        assert package_file == site_dir / "keras_se" / "__init__.py"
        assert applications_file == site_dir / "keras_se" / "applications" / "__init__.py"
        assert benchmarks_file == site_dir / "keras_se" / "benchmarks" / "__init__.py"


def test_layers_run_on_jax_without_tensorflow():
    """DESIGN.md: keras_se and keras_se.applications import and run where TensorFlow is absent."""
    output = run_python(
        """
        import importlib.abc, sys

        class NoTensorFlow(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras"):
                    raise ImportError(f"{name} is blocked for this test")

        sys.meta_path.insert(0, NoTensorFlow())
        import numpy as np
        import keras_se, keras_se.applications
        x = np.ones((2, 8, 8, 16), "float32")
        se, sk = keras_se.SqueezeExcite(ratio=4), keras_se.SelectiveKernel(8, min_channels=4)
        print(se(x).shape, sk(x).shape)
        print("tensorflow" in sys.modules)
        """,
        env={"KERAS_BACKEND": "jax"},
    )
    assert output.split("\n")[:2] == ["(2, 8, 8, 16) (2, 8, 8, 8)", "False"]


def test_info_command(capsys):
    assert cli.main(["info"]) == 0
    output = capsys.readouterr().out
    assert f"keras-se   {keras_se.__version__}" in output
    assert f"backend    {keras.backend.backend()}" in output
    assert "devices    cpu" in output


def test_console_script_runs_on_the_torch_backend(tmp_path):
    executable = _console_script()
    result = subprocess.run(
        [executable, "info"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend    torch" in result.stdout
    assert "devices    cpu" in result.stdout
    # The training job needs tf.data and tf.distribute: it says so before any work.
    result = subprocess.run(
        [executable, "train", "--output", "/nonexistent/run"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "keras-se train: The training job runs on the TensorFlow backend (tf.data and "
        "tf.distribute), but KERAS_BACKEND is 'torch'. Run it with KERAS_BACKEND=tensorflow."
    )
    # Export writes ONNX on torch (torch.onnx); a format only TensorFlow writes, or an opset
    # torch does not, is refused in one line before anything is written.
    for argv, message in [
        (
            ["--format", "tflite", "-o", "m.tflite"],
            "keras-se export: `format` 'tflite' is not written on the torch backend, which "
            "exports onnx; run with KERAS_BACKEND=tensorflow, which exports every format.",
        ),
        (
            ["--format", "onnx", "-o", "m.onnx", "--opset", "21"],
            "keras-se export: `opset` must be between 13 and 20 (the ONNX opsets the torch "
            "backend's converter writes), got 21.",
        ),
    ]:
        result = subprocess.run(
            [executable, "export", "/nonexistent/model.keras", *argv],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "KERAS_BACKEND": "torch"},
            cwd=tmp_path,
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1] == message
        assert list(tmp_path.iterdir()) == []


def _console_script():
    executable = shutil.which("keras-se", path=os.path.dirname(sys.executable))
    assert executable, "the keras-se console script is not installed next to this Python"
    return executable


def test_console_script_answers_help_and_argument_errors_without_importing_keras():
    """`keras-se --help`, a command's `--help` and argument errors import neither Keras nor a
    backend (TensorFlow alone takes seconds to import): Python's import log of the real
    console script shows it. Its start-up time is a benchmark figure (RESULTS.md)."""
    cases = [
        (["--help"], 0, "convert-timm"),
        (["train", "--help"], 0, "--freeze-epochs"),
        (["export", "m.keras", "--format", "pdf"], 2, "invalid choice: 'pdf'"),
        (["evaluate"], 2, "the following arguments are required: model"),
        (["predict", "run", "a.png", "--top", "0"], 2, "--top: must be >= 1, got 0"),
        (["inspect", "--help"], 0, "--scales"),
        (["inspect", "run", "--scales", "0.5"], 2, "--scales: must be a finite number >= 1"),
        # The negative control: a command that runs (--verbose: the import log stays on stderr).
        (["info", "--verbose"], 0, "backend    tensorflow"),
    ]
    for argv, code, text in cases:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", _console_script(), *argv],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        )
        imported = {
            line.rsplit("|", 1)[-1].strip()
            for line in result.stderr.splitlines()
            if line.startswith("import time:")
        }
        output = result.stdout + result.stderr
        assert result.returncode == code and text in output, (argv, output[-3000:])
        assert "argparse" in imported, argv  # the import log is there
        heavy = {"keras", "tensorflow", "jax", "torch"} & imported
        if argv[0] == "info":
            assert {"keras", "tensorflow"} <= heavy, heavy
        else:
            assert heavy == set(), (argv, heavy)


def test_console_script_prints_no_tensorflow_log_lines_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    quiet, verbose = (
        subprocess.run(
            [_console_script(), "info", *flags],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        for flags in ([], ["--verbose"])
    )
    assert quiet.returncode == verbose.returncode == 0
    assert "backend    tensorflow" in quiet.stdout
    assert quiet.stderr == ""
    # The negative control: TensorFlow logs at import (oneDNN, CPU instructions), to stderr.
    assert "I0000" in verbose.stderr or "oneDNN" in verbose.stderr, verbose.stderr[-2000:]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["cost", "SEResNet18", "--image-size", "-3"], "--image-size: must be >= 1, got -3"),
        # `demo` became examples/ (issue 19): the command is gone, not silently kept
        (["demo"], "invalid choice: 'demo'"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def run_example(name, **kwargs):
    """Run an example's `main` as `python examples/NAME.py` would: with examples/ importable,
    where its shared `digits` module lives."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return runpy.run_path(str(EXAMPLES / f"{name}.py"))["main"](**kwargs)
    finally:
        sys.path.remove(str(EXAMPLES))


def test_example_se_sequential():
    model, accuracy = run_example("se_sequential")
    assert isinstance(model, keras.Sequential)
    assert sum(isinstance(layer, keras_se.SqueezeExcite) for layer in model.layers) == 2
    assert accuracy >= 0.85


def test_example_se_functional_1d_round_trip():
    model, accuracy, identical = run_example("se_functional")
    assert model.get_layer("se1").reduced_channels_ == 12
    assert identical
    assert accuracy >= 0.9


def test_example_sk_residual_block():
    model, accuracy = run_example("sk_residual_block", epochs=3)
    sk = model.get_layer("block2_sk")
    assert (sk.strides, sk.groups, sk.branches) == (2, 4, 2)
    assert model.get_layer("block2_out").output.shape == (None, 4, 4, 64)
    assert accuracy >= 0.8


def test_example_sk_select_ablation_pairs_the_two_selects():
    """Three epochs, two seeds (the README's numbers: five seeds, ten epochs)."""
    results = run_example("sk_select_ablation", seeds=(0, 1), epochs=3)
    assert sorted(results) == ["sigmoid", "softmax"]
    for found in results.values():
        assert len(found["accuracy"]) == 2 and min(found["accuracy"]) > 0.6  # chance: 0.1
    np.testing.assert_allclose(results["softmax"]["branch_sum"], 1.0, atol=1e-5)
    assert not np.allclose(results["sigmoid"]["branch_sum"], 1.0, atol=1e-3)  # free to drift
    # "paired by seed": both selects start from the same weights
    sys.path.insert(0, str(EXAMPLES))
    try:
        from sk_residual_block import sk_resnet_tiny
    finally:
        sys.path.remove(str(EXAMPLES))
    initial = {}
    for select in ("softmax", "sigmoid"):
        keras.utils.set_random_seed(1)
        model = sk_resnet_tiny(select)
        assert model.get_layer("block2_sk").select == select
        initial[select] = model.get_weights()
    for a, b in zip(initial["softmax"], initial["sigmoid"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_example_cifar_senet18_trains_the_notebooks_model():
    """Two epochs (85% when measured; 97.55% after the default three, too long for the suite)."""
    model, accuracy = run_example("cifar_senet18", epochs=2)
    senet18 = model.get_layer("se_resnet18_cifar")
    assert sum(math.prod(w.shape) for w in senet18.trainable_weights) == 11_263_042
    assert model.input_shape == (None, 32, 32, 3)
    assert accuracy >= 0.75  # chance is 10%


def test_example_digits_helpers_do_what_their_docstrings_show():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import digits
    finally:
        sys.path.remove(str(EXAMPLES))
    result = doctest.testmod(digits)
    assert result.attempted >= 5 and result.failed == 0, result
    with pytest.raises(ValueError, match="validation_fraction"):
        digits.load_digits_images(validation_fraction=1.0)
