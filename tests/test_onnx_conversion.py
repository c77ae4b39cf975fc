"""keras_se.onnx_conversion's steps on the weights, each against onnxruntime running the graph
before the step (the whole conversion is checked against tf2onnx's own in test_export.py)."""

import copy

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper, numpy_helper

from keras_se import onnx_conversion

CHANNELS = 4
SIZE = 4  # as many columns as channels: a (C,) vector broadcasts over the width, not channels


def conv_graph(after, *, extra_reader=False, shared_weight=False, bias=False):
    """x -> Conv(w[, b]) -> each of `after` ((op, constant name)) -> y, with a Relu at the end.
    `extra_reader`: the Conv's output is read by a second node too; `shared_weight`: a second
    Conv reads the same weight."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", *(["b"] if bias else [])], ["t0"], group=2, pads=[1] * 4
        )
    ]
    for index, (op, name) in enumerate(after):
        nodes.append(helper.make_node(op, [f"t{index}", name], [f"t{index + 1}"]))
    nodes.append(helper.make_node("Relu", [f"t{len(after)}"], ["y"]))
    outputs = [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)]
    if extra_reader:
        nodes.append(helper.make_node("Sigmoid", ["t0"], ["z"]))
        outputs.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None))
    if shared_weight:
        nodes.append(helper.make_node("Conv", ["x", "w"], ["v"], group=2, pads=[1] * 4))
        outputs.append(helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, None))
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, CHANNELS, SIZE, SIZE])
    return helper.make_graph(nodes, "g", [x], outputs)


def arrays_and_constants(rng):
    arrays = {
        "w": rng.standard_normal((CHANNELS, CHANNELS // 2, 3, 3)).astype("float32"),
        "b": rng.standard_normal(CHANNELS).astype("float32"),
        "shift": rng.standard_normal((CHANNELS, 1, 1)).astype("float32"),
    }
    constants = {
        "scale": rng.uniform(0.5, 2.0, (1, CHANNELS, 1, 1)).astype("float32"),
        "row": rng.uniform(0.5, 2.0, (SIZE,)).astype("float32"),  # over the width
    }
    return arrays, constants


def run(graph, arrays, constants):
    """The graph's outputs in onnxruntime, with `arrays` and `constants` as initializers."""
    graph = copy.deepcopy(graph)
    del graph.initializer[:]
    for name, value in {**arrays, **constants}.items():
        graph.initializer.append(numpy_helper.from_array(value, name))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    session = onnxruntime.InferenceSession(model.SerializeToString())
    image = np.random.default_rng(9).standard_normal((1, CHANNELS, SIZE, SIZE)).astype("float32")
    return session.run(None, {"x": image})


def fold(graph, arrays, constants):
    graph = copy.deepcopy(graph)
    for name, value in constants.items():
        graph.initializer.append(numpy_helper.from_array(value, name))
    arrays = dict(arrays)
    onnx_conversion.fold_into_convolutions(graph, arrays)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return graph, arrays, constants


@pytest.mark.parametrize("bias", [False, True])
def test_batchnorm_after_a_grouped_conv_folds_into_its_weight_and_bias(bias):
    arrays, constants = arrays_and_constants(np.random.default_rng(0))
    graph = conv_graph([("Mul", "scale"), ("Add", "shift")], bias=bias)
    used = {name: arrays[name] for name in ("w", "shift", *(["b"] if bias else []))}
    folded, folded_arrays, folded_constants = fold(graph, used, {"scale": constants["scale"]})

    assert [node.op_type for node in folded.node] == ["Conv", "Relu"]
    assert not folded_constants  # the scale is in the weight now, and left the graph
    (expected,) = run(graph, used, {"scale": constants["scale"]})
    (actual,) = run(folded, folded_arrays, folded_constants)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(folded_arrays["w"], arrays["w"])  # the weight did change


@pytest.mark.parametrize(
    "case",
    [
        dict(after=[("Mul", "row")]),  # not per channel
        dict(after=[("Mul", "scale")], extra_reader=True),  # the unscaled output is read too
        dict(after=[("Mul", "scale")], shared_weight=True),  # another Conv reads the weight
    ],
    ids=["width_vector", "output_read_twice", "weight_shared"],
)
def test_what_cannot_be_folded_stays_as_it_is(case):
    arrays, constants = arrays_and_constants(np.random.default_rng(1))
    graph = conv_graph(**case)
    used = {"w": arrays["w"]}
    folded, folded_arrays, folded_constants = fold(graph, used, constants)

    assert [node.op_type for node in folded.node] == [node.op_type for node in graph.node]
    np.testing.assert_array_equal(folded_arrays["w"], arrays["w"])
    for actual, expected in zip(
        run(folded, folded_arrays, folded_constants), run(graph, used, constants), strict=True
    ):
        np.testing.assert_array_equal(actual, expected)


def test_only_equal_weights_are_merged():
    rng = np.random.default_rng(2)
    value = rng.standard_normal((3, 4)).astype("float32")
    arrays = {
        "a": value,
        "a_again": value.copy(),
        "transposed": value.reshape(4, 3).copy(),  # the same bytes, another shape
        "changed": value + np.float32(1e-6),
        "float64": value.astype("float64"),
    }
    nodes = [helper.make_node("Identity", [name], [f"{name}_out"]) for name in arrays]
    graph = helper.make_graph(nodes, "g", [], [])
    onnx_conversion.merge_duplicate_weights(graph, arrays)

    assert sorted(arrays) == ["a", "changed", "float64", "transposed"]
    assert [node.input[0] for node in graph.node] == [
        "a",
        "a",
        "transposed",
        "changed",
        "float64",
    ]


def test_written_file_is_the_model_with_its_weights_as_initializers(tmp_path):
    """Parsed back, the file written a weight at a time equals the ModelProto that onnx
    would have serialized whole: every field, every initializer, in order (a 1 MB weight
    makes the length prefixes several bytes long)."""
    rng = np.random.default_rng(3)
    arrays = {
        "big": rng.standard_normal((256, 1024)).astype("float32"),
        "shape": np.array([1, -1], "int64"),
        "small": rng.standard_normal(3).astype("float16"),
    }
    node = helper.make_node("MatMul", ["x", "big"], ["y"], name="matmul")
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 256])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 1024])
    small = numpy_helper.from_array(np.ones(2, "float32"), "already_there")
    graph = helper.make_graph([node], "g", [x], [y], [small], doc_string="a graph")
    model = helper.make_model(
        graph, producer_name="test", opset_imports=[helper.make_opsetid("", 15)]
    )
    helper.set_model_props(model, {"source": "keras-se"})
    expected = copy.deepcopy(model)
    for name, value in arrays.items():
        expected.graph.initializer.append(numpy_helper.from_array(value, name))
    path = tmp_path / "model.onnx"

    onnx_conversion.write_onnx(model, dict(arrays), path)

    written = onnx.load(str(path))
    assert written == expected
    onnx.checker.check_model(written)
    assert model.graph.initializer[:] == [small]  # the caller's model is left as it was
    assert path.stat().st_size == len(expected.SerializeToString())
    session = onnxruntime.InferenceSession(str(path))
    features = rng.standard_normal((2, 256)).astype("float32")
    np.testing.assert_allclose(
        session.run(None, {"x": features})[0], features @ arrays["big"], rtol=1e-5, atol=1e-4
    )
