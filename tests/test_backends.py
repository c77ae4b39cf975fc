"""The layer tests and the portable application tests again, on every other Keras backend,
each in its own process; and the empty-batch behaviour with TensorFlow's oneDNN ops on and off."""

import os
import pathlib
import subprocess
import sys

import keras
import pytest
from harness import run_for_result

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
            "-n",
            "0",  # in this process: the suite's other worker already has the second core
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


ONEDNN_EMPTY_BATCH = """
import json
import numpy as np
import tensorflow as tf
from keras_se import SelectiveKernel

empty, batch = np.zeros((0, 9, 9, 8), "float32"), np.zeros((2, 9, 9, 8), "float32")
signature = [tf.TensorSpec((None, None, None, 8))]
shapes = {"raw_conv2d": tf.nn.conv2d(empty, tf.zeros((3, 3, 8, 16)), 2, "SAME").shape.as_list()}
for groups in (1, 4):
    sk = SelectiveKernel(filters=16, strides=2, groups=groups, min_channels=4)
    graph = tf.function(sk, input_signature=signature)
    shapes[f"groups={groups}"] = [
        list(sk(empty).shape),
        graph(empty).shape.as_list(),
        tf.function(sk, jit_compile=True)(empty).shape.as_list(),
        graph(batch).shape.as_list(),
    ]
print("RESULT " + json.dumps(shapes))
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's oneDNN ops")
@pytest.mark.parametrize("onednn", ["1", "0"])
def test_empty_batch_through_selective_kernel_with_onednn(onednn):
    code, shapes, output = run_for_result(
        [sys.executable, "-c", ONEDNN_EMPTY_BATCH],
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "KERAS_BACKEND": "tensorflow"},
    )
    assert code == 0 and shapes is not None, output
    # The negative control: TensorFlow's own convolution, which keras-se works around. With
    # oneDNN on it hands an empty batch back unchanged; if this starts failing, TensorFlow has
    # fixed it and the reshape in `keras_se.layers.grouped_conv` can go.
    assert shapes.pop("raw_conv2d") == ([0, 9, 9, 8] if onednn == "1" else [0, 5, 5, 16])
    # Eager, graph with unknown shapes, XLA; then a non-empty batch through the same graph.
    expected = [[0, 5, 5, 16]] * 3 + [[2, 5, 5, 16]]
    assert shapes == {"groups=1": expected, "groups=4": expected}


BACKEND_EXPORT = """
import json, sys
from keras_se import cli
folder, fmt = sys.argv[1], sys.argv[2]
codes = {}
for name in ("se_resnet18", "sknet26"):
    output = f"{folder}/{name}.onnx" if fmt == "onnx" else f"{folder}/{name}_saved_model"
    codes[name] = cli.main(["export", f"{folder}/{name}.keras", "--format", fmt, "-o", output])
print("RESULT " + json.dumps(codes))
"""


@pytest.fixture(scope="module")
def exported_from_other_backends(tmp_path_factory):
    """SE-ResNet-18 and SKNet-26 (32x32, 10 classes and their logits, BatchNorm statistics
    randomized) saved on this backend, then exported by `keras-se export` on JAX (SavedModel)
    and torch (ONNX)."""
    from harness import randomize_statistics
    from keras_se.applications import SEResNet18, SKNet26

    folder = tmp_path_factory.mktemp("backend-export")
    models = {}
    for name, constructor in (("se_resnet18", SEResNet18), ("sknet26", SKNet26)):
        models[name] = constructor(
            weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
        )
        randomize_statistics(models[name])
        models[name].save(folder / f"{name}.keras")
    outputs = {}
    for backend, fmt in (("jax", "saved_model"), ("torch", "onnx")):
        code, result, output = run_for_result(
            [sys.executable, "-c", BACKEND_EXPORT, str(folder), fmt],
            env={**os.environ, "KERAS_BACKEND": backend},
            timeout=900,
        )
        assert code == 0 and result == {"se_resnet18": 0, "sknet26": 0}, output
        outputs[backend] = output
    return folder, models, outputs


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="reads the SavedModels")
@pytest.mark.parametrize("name", ["se_resnet18", "sknet26"])
def test_jax_and_torch_exports_match_keras_on_tensorflow(exported_from_other_backends, name):
    """Each backend's own route, checked by the command against that backend's Keras, then
    here, independently, in onnxruntime and TensorFlow against this backend's Keras."""
    import numpy as np
    import onnx
    import onnxruntime
    import tensorflow as tf

    folder, models, outputs = exported_from_other_backends
    assert f"{name}.onnx (onnx, opset 20): max |onnxruntime - Keras| = " in outputs["torch"]
    assert f"{name}_saved_model (saved_model): max |TensorFlow - Keras| = " in outputs["jax"]
    assert "Warning" not in outputs["torch"]  # the tracer's warnings stay hidden
    batch = np.random.default_rng(5).standard_normal((4, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(models[name](batch, training=False))
    proto = onnx.load(str(folder / f"{name}.onnx"))
    (images,), (predictions,) = proto.graph.input, proto.graph.output
    assert (images.name, predictions.name) == ("images", "predictions")
    assert images.type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(
        str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"]
    )
    from_torch = session.run(None, {"images": batch})[0]
    np.testing.assert_allclose(from_torch, expected, atol=1e-4)
    signature = tf.saved_model.load(str(folder / f"{name}_saved_model")).signatures
    from_jax = next(iter(signature["serving_default"](images=tf.constant(batch)).values()))
    np.testing.assert_allclose(from_jax.numpy(), expected, atol=1e-4)
    # the negative control: other images' outputs are farther apart than the tolerance
    assert np.abs(from_torch - expected[::-1]).max() > 1e-3
