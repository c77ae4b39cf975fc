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
