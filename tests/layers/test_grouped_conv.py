"""`GroupedConv1D/2D/3D` and `DepthwiseConv2D` against Keras' own layers: outputs and gradients
for every stride, dilation, padding, data format and group count, on each backend's route
(TensorFlow eager, graph and XLA; JAX jitted; PyTorch), and the usual layer checks."""

import keras
import numpy as np
import pytest
from harness import random_batch, run_layer_test, to_numpy

from keras_se.layers import (
    DepthwiseConv2D,
    GroupedConv1D,
    GroupedConv2D,
    GroupedConv3D,
    grouped_conv,
)

BACKEND = keras.backend.backend()
# (strides, dilation): Keras refuses strides > 1 together with dilation > 1.
GEOMETRIES = [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)]
# TensorFlow: eager runs the kernels a graph-mode step runs; XLA takes the other route. JAX:
# jitted, as in training (the route depends on the device only).
MODES = {"tensorflow": ("eager", "xla"), "jax": ("jit",), "torch": ("eager",)}[BACKEND]


def outputs_and_gradients(layer, x, mode):
    """The layer's output and the gradients of `sum(output * r)` (a fixed random `r`) with
    respect to the input and every trainable weight, computed the way `mode` runs a step."""
    shape = layer.compute_output_shape(x.shape)
    cotangent = random_batch(shape, seed=7)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * cotangent)
            return y, tape.gradient(loss, [x, *layer.trainable_variables])

        if mode != "eager":
            step = tf.function(step, jit_compile=mode == "xla")
        y, grads = step(tf.constant(x))
    elif BACKEND == "jax":
        import jax

        def loss(weights, x):
            y, _ = layer.stateless_call(weights, [], x)
            return (y * cotangent).sum(), y

        weights = [v.value for v in layer.trainable_variables]
        step = jax.jit(jax.value_and_grad(loss, argnums=(1, 0), has_aux=True))
        (_, y), (grad_x, grad_w) = step(weights, x)
        grads = [grad_x, *grad_w]
    else:
        import torch

        inputs = torch.tensor(x, requires_grad=True)
        y = layer(inputs)
        (y * torch.tensor(cotangent)).sum().backward()
        grads = [inputs.grad, *(v.value.grad for v in layer.trainable_variables)]
    return to_numpy(y), [to_numpy(g) for g in grads]


def assert_same_as_keras(ours, theirs, x):
    """`ours` and Keras' layer `theirs` with the same weights: the same output and gradients
    (within 1e-5 of the largest value), `ours` run in every mode of the backend."""
    theirs.build(x.shape)
    ours.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    ours.set_weights([random_batch(w.shape, seed=i + 1) for i, w in enumerate(theirs.weights)])
    theirs.set_weights(ours.get_weights())
    expected_y, expected_grads = outputs_and_gradients(theirs, x, MODES[0])
    for mode in MODES:
        y, grads = outputs_and_gradients(ours, x, mode)
        assert y.shape == expected_y.shape, mode
        for actual, expected in zip([y, *grads], [expected_y, *expected_grads], strict=True):
            scale = np.abs(expected).max()
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=mode)


def channels(x, data_format):
    return x if data_format == "channels_last" else np.moveaxis(x, -1, 1)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("strides", "dilation"), GEOMETRIES)
def test_grouped_conv2d_equals_keras_conv2d(strides, dilation, padding, data_format):
    x = channels(random_batch((2, 11, 9, 8)), data_format)
    for groups in (1, 2, 4, 8):
        options = dict(
            strides=strides,
            dilation_rate=dilation,
            padding=padding,
            groups=groups,
            data_format=data_format,
        )
        assert_same_as_keras(
            GroupedConv2D(16, 3, **options), keras.layers.Conv2D(16, 3, **options), x
        )


@pytest.mark.parametrize(
    ("rank", "layer", "keras_layer", "padding"),
    [
        (1, GroupedConv1D, keras.layers.Conv1D, "causal"),
        (1, GroupedConv1D, keras.layers.Conv1D, "same"),
        (3, GroupedConv3D, keras.layers.Conv3D, "same"),
    ],
)
def test_grouped_conv_1d_and_3d_equal_keras(rank, layer, keras_layer, padding):
    x = random_batch((2, *[9, 7, 6][:rank], 4))
    for strides, dilation in ((1, 1), (2, 1), (1, 2)):
        options = dict(strides=strides, dilation_rate=dilation, padding=padding, groups=2)
        assert_same_as_keras(layer(6, 3, **options), keras_layer(6, 3, **options), x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("strides", "dilation"), GEOMETRIES)
def test_depthwise_conv2d_equals_keras(strides, dilation, padding, data_format):
    x = channels(random_batch((2, 11, 9, 6)), data_format)
    for multiplier in (1, 2):
        options = dict(
            strides=strides,
            dilation_rate=dilation,
            padding=padding,
            depth_multiplier=multiplier,
            data_format=data_format,
            activation="relu",
        )
        assert_same_as_keras(
            DepthwiseConv2D(3, **options), keras.layers.DepthwiseConv2D(3, **options), x
        )


@pytest.mark.skipif(BACKEND != "jax", reason="inspects the JAX program")
def test_on_the_jax_cpu_no_grouped_or_depthwise_convolution_reaches_xla():
    import jax

    x = random_batch((1, 8, 8, 8))

    def group_counts(layer):
        layer.build(x.shape)
        weights = [v.value for v in layer.trainable_variables]
        program = jax.make_jaxpr(lambda w: layer.stateless_call(w, [], x)[0])(weights)
        return [
            eqn.params["feature_group_count"]
            for eqn in program.eqns
            if eqn.primitive.name == "conv_general_dilated"
        ]

    # The negative control: Keras' own layers hand XLA one grouped convolution each.
    assert group_counts(keras.layers.Conv2D(16, 3, groups=4)) == [4]
    assert group_counts(keras.layers.DepthwiseConv2D(3)) == [8]
    assert group_counts(GroupedConv2D(16, 3, groups=4)) == [1, 1, 1, 1]
    assert group_counts(DepthwiseConv2D(3)) == []


@pytest.mark.skipif(BACKEND != "tensorflow", reason="inspects the TensorFlow graph")
def test_on_tensorflow_grouped_convolutions_skip_keras_xla_wrapper():
    import tensorflow as tf

    x = tf.constant(random_batch((1, 8, 8, 8)))

    def graph_ops(layer, jit_compile=False):
        layer.build(x.shape)
        graph = tf.function(layer, jit_compile=jit_compile).get_concrete_function(x).graph
        return [op.type for op in graph.get_operations()]

    def xla_marked(layer):
        layer.build(x.shape)
        definition = tf.function(layer).get_concrete_function(x).graph.as_graph_def()
        return any("_XlaMustCompile" in f.attr for f in definition.library.function)

    # The negative control: Keras' own grouped convolution is an XLA-compiled function.
    assert xla_marked(keras.layers.Conv2D(16, 3, groups=4))
    assert not xla_marked(GroupedConv2D(16, 3, groups=4))
    # Inside an XLA-compiled step: one ordinary convolution per group, and no depthwise op.
    assert graph_ops(GroupedConv2D(16, 3, groups=4), jit_compile=True).count("Conv2D") == 4
    xla_ops = graph_ops(DepthwiseConv2D(3), jit_compile=True)
    assert "DepthwiseConv2dNative" not in xla_ops and "Conv2D" not in xla_ops
    assert "DepthwiseConv2dNative" in graph_ops(DepthwiseConv2D(3))
    expected = "Conv2D" if grouped_conv._tensorflow_has_onednn() else "ConcatV2"
    assert expected in graph_ops(GroupedConv2D(16, 3, groups=4))


@pytest.mark.parametrize(
    ("backend", "where", "route"),
    [
        ("torch", {"on_gpu": False}, "native"),
        ("jax", {"on_gpu": False}, "per_group"),
        ("jax", {"on_gpu": True}, "native"),
        ("tensorflow", {"on_gpu": True, "in_xla_step": True}, "native"),
        ("tensorflow", {"on_gpu": False, "onednn": True}, "native"),
        ("tensorflow", {"on_gpu": False, "onednn": True, "rank": 5}, "per_group"),
        ("tensorflow", {"on_gpu": False, "onednn": True, "in_xla_step": True}, "per_group"),
        ("tensorflow", {"on_gpu": False, "onednn": False}, "per_group"),
    ],
)
def test_grouped_route_by_backend_and_device(backend, where, route):
    assert grouped_conv.grouped_route(backend, **where) == route


@pytest.mark.parametrize(
    ("backend", "where", "route"),
    [
        ("torch", {"on_gpu": False}, "native"),
        ("jax", {"on_gpu": False}, "taps"),
        ("jax", {"on_gpu": True}, "native"),
        ("tensorflow", {"on_gpu": False}, "native"),
        ("tensorflow", {"on_gpu": False, "in_xla_step": True}, "taps"),
        ("tensorflow", {"on_gpu": True, "in_xla_step": True}, "native"),
    ],
)
def test_depthwise_route_by_backend_and_device(backend, where, route):
    assert grouped_conv.depthwise_route(backend, **where) == route


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize(
    ("padding", "strides", "dilation"),
    [
        ("same", 1, 1),
        ("same", 2, 1),
        ("same", 3, 1),
        ("same", 1, 3),
        ("valid", 1, 1),
        ("valid", 3, 1),
        ("valid", 1, 2),
    ],
)
@pytest.mark.parametrize("groups", [1, 2])
def test_an_empty_batch_gets_the_shape_of_a_full_one(rank, padding, strides, dilation, groups):
    conv = getattr(grouped_conv, f"GroupedConv{rank}D")(
        6, 3, strides=strides, dilation_rate=dilation, padding=padding, groups=groups
    )
    x = random_batch((2, *[11, 9, 8][:rank], 4))
    full = tuple(conv(x).shape)
    assert tuple(conv(x[:0]).shape) == (0, *full[1:])
    if rank == 2:
        depthwise = DepthwiseConv2D(3, strides=strides, dilation_rate=dilation, padding=padding)
        assert tuple(depthwise(x[:0]).shape) == (0, *depthwise(x).shape[1:])


@pytest.mark.parametrize(
    ("make_layer", "input_shape", "expected_shape"),
    [
        (
            lambda **kw: GroupedConv2D(8, 3, groups=4, padding="same", **kw),
            (2, 6, 6, 4),
            (2, 6, 6, 8),
        ),
        (lambda **kw: GroupedConv1D(8, 3, groups=2, **kw), (2, 6, 4), (2, 4, 8)),
        (
            lambda **kw: DepthwiseConv2D(3, strides=2, depth_multiplier=2, **kw),
            (2, 6, 6, 4),
            (2, 2, 2, 8),
        ),
    ],
    ids=["GroupedConv2D", "GroupedConv1D", "DepthwiseConv2D"],
)
def test_layer_harness(make_layer, input_shape, expected_shape, tmp_path):
    run_layer_test(make_layer, random_batch(input_shape), expected_shape, tmp_path)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's oneDNN switch")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_without_onednn_tensorflow_runs_one_convolution_per_group(monkeypatch, data_format):
    # TensorFlow's Eigen kernels (TF_ENABLE_ONEDNN_OPTS=0) have no grouped gradient, so that
    # route must not reach `tf.nn.convolution` with a grouped kernel.
    monkeypatch.setattr(grouped_conv, "_tensorflow_has_onednn", lambda: False)
    x = channels(random_batch((2, 11, 9, 8)), data_format)
    for strides, dilation in ((2, 1), (1, 2)):
        options = dict(strides=strides, dilation_rate=dilation, groups=4, data_format=data_format)
        assert_same_as_keras(
            GroupedConv2D(16, 3, **options), keras.layers.Conv2D(16, 3, **options), x
        )
