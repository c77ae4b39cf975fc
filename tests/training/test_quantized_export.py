"""Quantized TFLite (`keras-se export --format tflite --quantize ...`) of a digits model trained
by the training job: the accuracy the LiteRT interpreter gives on the run's validation split,
recomputed here, within a point of Keras' (float16 within a tenth), the tensors stored in the
promised types, and bad input refused in one line with nothing written."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from training_job import SE_RESNET10

from keras_se import cli, export, quantization
from keras_se.export_check import tflite_runner
from keras_se.training import data, job

# quantization: (largest accuracy drop, largest size as a share of the float32 weights)
EXPECTED = {"float16": (0.001, 0.55), "dynamic": (0.01, 0.3), "int8": (0.01, 0.3)}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """SE-ResNet-10 trained on the embedded digits with the job's defaults (6 epochs, 32 px)."""
    folder = tmp_path_factory.mktemp("run")
    return job.train(SE_RESNET10, output_dir=folder, xla="off", verbose=0), folder


def _tensor_types(path):
    interpreter = Interpreter(model_path=str(path))
    types = [np.dtype(detail["dtype"]).name for detail in interpreter.get_tensor_details()]
    return {name: types.count(name) / len(types) for name in set(types)}


@pytest.mark.parametrize("quantize", EXPECTED)
def test_quantized_files_keep_the_accuracy_of_the_run(digits_run, tmp_path, quantize):
    result, folder = digits_run
    path = tmp_path / "model.tflite"
    report = export.export(folder / "model.keras", path, "tflite", quantize=quantize)
    check = report.accuracy_check
    # Keras' accuracy is the run's; the file's is what LiteRT gives on the same images.
    assert result["val_accuracy"] >= 0.95, result
    assert check.images == 449 and check.dataset == "sklearn_digits"
    assert check.keras_accuracy == pytest.approx(result["val_accuracy"], abs=1.5 / 449)
    splits = data.load_splits("sklearn_digits")
    batches = data.make_pipeline(
        splits.validation, image_size=32, batch_size=100, num_classes=10, training=False
    )
    run = tflite_runner(path)
    correct = sum(
        int(np.sum(np.argmax(run(images.numpy()), 1) == np.argmax(labels.numpy(), 1)))
        for images, labels in batches
    )
    assert check.export_accuracy == correct / 449
    max_drop, max_size = EXPECTED[quantize]
    assert check.accuracy_drop <= max_drop, check
    assert check.size_bytes == path.stat().st_size <= max_size * check.float_size_bytes
    assert str(check) in str(report) and "tolerance" not in str(report)
    # The file stores what was asked for.
    types = _tensor_types(path)
    if quantize == "float16":
        assert types.get("float16", 0) > 0.1 and "int8" not in types, types
    elif quantize == "dynamic":
        assert types.get("int8", 0) > 0.1 and types["float32"] > 0.5, types
    else:  # activations too (biases in int32); float32 only at the input and output
        assert types.get("int8", 0) > 0.6 and types.get("float32", 0) < 0.05, types
        assert "float16" not in types and set(types) <= {"int8", "int32", "float32"}, types


def test_the_console_script_prints_the_check_and_no_converter_lines(digits_run, tmp_path):
    """The quantizer and LiteRT's interpreter log from C++; without --verbose nothing shows."""
    _, folder = digits_run
    script = shutil.which("keras-se", path=os.path.dirname(sys.executable))
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [script, "export", str(folder / "model.keras"), "--format", "tflite"]
    argv += ["--quantize", "int8", "-o", str(tmp_path / "m.tflite")]
    done = subprocess.run(argv, capture_output=True, text=True, env=environment)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    assert done.stdout.startswith(f"exported {tmp_path / 'm.tflite'} (tflite, int8 on 449 ")
    assert "sklearn_digits validation images: top-1 " in done.stdout, done.stdout
    # The negative control: the quantizer's line is there to hide.
    argv += ["--overwrite", "--verbose"]
    verbose = subprocess.run(argv, capture_output=True, text=True, env=environment)
    assert verbose.returncode == 0 and "fully_quantize" in verbose.stderr, verbose.stderr[-2000:]


def test_an_accuracy_loss_above_the_limit_writes_nothing(digits_run, tmp_path, monkeypatch):
    """The refusal itself, with the check made to report a 3-point loss."""
    _, folder = digits_run
    real = quantization.compare_accuracy

    def losing(*args, **kwargs):
        check = real(*args, **kwargs)
        return type(check)(**{**vars(check), "export_accuracy": check.keras_accuracy - 0.03})

    monkeypatch.setattr(quantization, "compare_accuracy", losing)
    with pytest.raises(ValueError, match=r"accuracy is 3\.00% below Keras.*nothing was written"):
        export.export(folder / "model.keras", tmp_path / "m.tflite", "tflite", quantize="dynamic")
    assert list(tmp_path.iterdir()) == []


def test_bad_quantization_input_is_one_line_and_writes_nothing(digits_run, tmp_path, capsys):
    _, folder = digits_run
    loose = tmp_path / "loose.keras"  # not a run's model: no dataset to default to
    keras.models.load_model(folder / "model.keras").save(loose)
    gray = tmp_path / "gray.keras"
    keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    ).save(gray)
    five = tmp_path / "five.keras"
    keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)]
    ).save(five)
    model = str(folder / "model.keras")
    output = ["-o", str(tmp_path / "m.tflite")]
    digits = ["--dataset", "sklearn_digits"]
    cases = [
        ([str(loose), "--format", "tflite", "--quantize", "int8"], "pass `dataset`"),
        (
            [str(gray), "--format", "tflite", "--quantize", "int8", *digits],
            "the model takes (28, 28, 1)",
        ),
        (
            [str(five), "--format", "tflite", "--quantize", "float16", *digits],
            "has 10 classes and the model 5 outputs",
        ),
        ([model, "--format", "onnx", "--quantize", "int8"], "applies to the tflite format only"),
        ([model, "--format", "tflite", *digits], "quantized exports only"),
        (
            [model, "--format", "tflite", "--quantize", "int8", "--max-accuracy-drop", "0"],
            "`max_accuracy_drop` must be a finite number > 0",
        ),
    ]
    before = sorted(tmp_path.iterdir()) + sorted(folder.iterdir())
    for argv, message in cases:
        capsys.readouterr()
        assert cli.main(["export", *argv, *output]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert sorted(tmp_path.iterdir()) + sorted(folder.iterdir()) == before
