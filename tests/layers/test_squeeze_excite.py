import keras
import numpy as np
import numpy_reference as ref
import pytest
from harness import random_batch, randomize_weights, run_layer_test, to_numpy
from layer_weights import se_weights

from keras_se import SqueezeExcite

SHAPES = {  # (rank, data_format) -> input shape
    (3, "channels_last"): (2, 9, 24),
    (3, "channels_first"): (2, 24, 9),
    (4, "channels_last"): (2, 5, 6, 24),
    (4, "channels_first"): (2, 24, 5, 6),
    (5, "channels_last"): (2, 3, 4, 5, 24),
    (5, "channels_first"): (2, 24, 3, 4, 5),
}


def assert_matches_reference(layer, x, **reference_kwargs):
    layer(x)
    randomize_weights(layer)
    expected = ref.from_channels_last(
        ref.squeeze_excite(
            ref.to_channels_last(x, layer.data_format), se_weights(layer), **reference_kwargs
        ),
        layer.data_format,
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["channel", "spatial", "concurrent"])
@pytest.mark.parametrize("squeeze", ["avg", "max", "avg_max"])
@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
def test_matches_numpy_reference_for_every_mode_squeeze_and_gate(mode, squeeze, gate):
    x = random_batch(SHAPES[(4, "channels_last")]) * 3
    layer = SqueezeExcite(ratio=4, mode=mode, squeeze=squeeze, gate=gate)
    assert_matches_reference(layer, x, squeeze=squeeze, gate=gate, mode=mode)


@pytest.mark.parametrize(("rank", "data_format"), list(SHAPES))
@pytest.mark.parametrize("mode", ["channel", "concurrent"])
def test_matches_numpy_reference_for_every_rank_and_data_format(rank, data_format, mode):
    x = random_batch(SHAPES[(rank, data_format)])
    layer = SqueezeExcite(ratio=4, mode=mode, data_format=data_format)
    assert_matches_reference(layer, x, mode=mode)


@pytest.mark.parametrize("activation", ["swish", "tanh"])
def test_inner_activation_and_no_bias_match_reference(activation):
    x = random_batch((2, 4, 4, 16))
    layer = SqueezeExcite(ratio=2, activation=activation, use_bias=False, mode="concurrent")
    assert_matches_reference(layer, x, activation=activation, mode="concurrent")
    assert sorted(w.path.split("/", 1)[1] for w in layer.weights) == [
        "expand/kernel",
        "reduce/kernel",
        "spatial_kernel",
    ]


def test_data_format_defaults_to_the_keras_image_data_format():
    previous = keras.config.image_data_format()
    try:
        keras.config.set_image_data_format("channels_first")
        assert SqueezeExcite().data_format == "channels_first"
    finally:
        keras.config.set_image_data_format(previous)


# Reduced widths and parameter counts: the SE block has 2*C*d + d + C weights with bias
# (shared/reference/models.md); d = C // 16 in the paper and the Caffe models.
@pytest.mark.parametrize("channels", [64, 128, 256, 512, 1024, 2048])
def test_reduced_width_and_parameter_count_follow_the_paper(channels):
    layer = SqueezeExcite(ratio=16)
    layer.build((None, 7, 7, channels))
    d = channels // 16
    assert layer.reduced_channels_ == d
    assert layer.count_params() == 2 * channels * d + d + channels


@pytest.mark.parametrize(
    ("kwargs", "channels", "expected_width"),
    [
        ({"ratio": 16}, 3, 1),  # would be 0: the minimum width keeps it at 1
        ({"ratio": 16, "min_channels": 4}, 3, 4),
        ({"ratio": 16}, 24, 1),  # the paper floors 1.5
        ({"ratio": 16, "divisor": 8}, 24, 8),  # timm rounds to a multiple of 8, at least 8
        ({"ratio": 16, "divisor": 8}, 64, 8),  # timm seresnet18 stage 1: 4 -> 8
        ({"ratio": 16, "divisor": 8}, 1000, 64),  # 62.5 -> 64
        ({"ratio": 4.5}, 18, 4),
        ({"reduced_channels": 7}, 64, 7),
    ],
)
def test_reduced_width_rules(kwargs, channels, expected_width):
    layer = SqueezeExcite(**kwargs)
    layer.build((None, 4, 4, channels))
    assert layer.reduced_channels_ == expected_width
    assert layer.count_params() == 2 * channels * expected_width + expected_width + channels


@pytest.mark.parametrize(("mode", "extra"), [("spatial", 0), ("concurrent", 1)])
def test_spatial_parameter_count(mode, extra):
    channels = 32
    layer = SqueezeExcite(ratio=16, mode=mode)
    layer.build((None, 4, 4, channels))
    channel_params = 2 * channels * 2 + 2 + channels
    assert layer.count_params() == channels + 1 + extra * channel_params


@pytest.mark.parametrize("mode", ["channel", "spatial"])
def test_gate_is_computed_in_float32_under_mixed_precision(mode):
    """Weights 1000.3 and -1000 on an all-ones input give a gate logit of 0.3 in float32; in
    float16 1000.3 rounds to 1000.5 and the logit becomes 0.5, so the output tells them apart."""
    channels = 4
    layer = SqueezeExcite(reduced_channels=1, mode=mode, dtype="mixed_float16")
    x = np.ones((1, 2, 2, channels), "float32")
    layer(x)
    cancelling = np.array([1000.3, -1000.0, 0.0, 0.0], "float32")
    if mode == "channel":
        layer.reduce.set_weights([cancelling[:, None], np.zeros(1, "float32")])
        layer.expand.set_weights([np.ones((1, channels), "float32"), np.zeros(channels, "float32")])
    else:
        layer.set_weights([cancelling, np.zeros((), "float32")])
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), ref.sigmoid(0.3), atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({"ratio": 4}, (4, 6, 6, 12)),
        (
            {"ratio": 4, "mode": "concurrent", "squeeze": "avg_max", "gate": "hard_sigmoid"},
            (4, 6, 6, 12),
        ),
        ({"ratio": 4, "mode": "spatial", "data_format": "channels_first"}, (4, 12, 5, 5)),
        ({"ratio": 4, "squeeze": "max"}, (4, 10, 12)),
        ({"ratio": 4, "data_format": "channels_first"}, (4, 12, 3, 3, 3)),
    ],
)
def test_layer_harness(kwargs, shape, tmp_path):
    def make_layer(**extra):
        return SqueezeExcite(**kwargs, **extra)

    x = random_batch(shape)
    run_layer_test(make_layer, x, expected_shape=shape, tmp_path=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ratio": 0}, ValueError, r"`ratio` must be a finite number > 0, got 0"),
        ({"ratio": -2.5}, ValueError, r"`ratio` must be a finite number > 0, got -2.5"),
        ({"ratio": float("inf")}, ValueError, r"`ratio` must be a finite number > 0, got inf"),
        ({"ratio": float("nan")}, ValueError, r"`ratio` must be a finite number > 0, got nan"),
        ({"dtype": "int32"}, ValueError, r"`dtype` must be a float dtype .* got 'int32'"),
        ({"ratio": "16"}, TypeError, r"`ratio` must be a number, got '16'"),
        ({"ratio": True}, TypeError, r"`ratio` must be a number"),
        ({"reduced_channels": 0}, ValueError, r"`reduced_channels` must be >= 1, got 0"),
        ({"reduced_channels": 2.5}, TypeError, r"`reduced_channels` must be an integer or None"),
        ({"min_channels": 0}, ValueError, r"`min_channels` must be >= 1, got 0"),
        ({"divisor": 0}, ValueError, r"`divisor` must be >= 1"),
        (
            {"squeeze": "mean"},
            ValueError,
            r"`squeeze` must be one of 'avg', 'max', 'avg_max', got 'mean'",
        ),
        ({"gate": "softmax"}, ValueError, r"`gate` must be one of 'sigmoid', 'hard_sigmoid'"),
        ({"mode": "both"}, ValueError, r"`mode` must be one of 'channel', 'spatial', 'concurrent'"),
        ({"data_format": "NHWC"}, ValueError, r"`data_format` must be one of 'channels_last'"),
        (
            {"activation": "no_such_activation"},
            ValueError,
            r"`activation` must be a Keras activation",
        ),
    ],
)
def test_bad_arguments_are_rejected_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        SqueezeExcite(**kwargs)


@pytest.mark.parametrize(
    ("shape", "data_format", "match"),
    [
        ((None, 16), "channels_last", r"input rank 3, 4 or 5\), got an input of rank 2"),
        ((None, 2, 2, 2, 2, 16), "channels_last", r"got an input of rank 6"),
        ((None, 8, 8, None), "channels_last", r"known, non-zero channel dimension.*is None"),
        ((None, 8, 8, 0), "channels_last", r"known, non-zero channel dimension.*is 0"),
        ((None, None, 8, 8), "channels_first", r"known, non-zero channel dimension.*is None"),
    ],
)
def test_bad_input_shapes_are_rejected_at_build(shape, data_format, match):
    with pytest.raises(ValueError, match=match):
        SqueezeExcite(data_format=data_format).build(shape)


def test_a_width_that_cannot_fit_in_memory_is_refused_before_allocating():
    layer = SqueezeExcite(reduced_channels=10**10, name="wide")
    with pytest.raises(
        ValueError, match=r"'wide' \(10000000000 reduced.* would need 6\d\d\.\d GiB"
    ):
        layer.build((None, 4, 4, 8))
    assert not layer.weights
    # the negative control: a large width that fits is built
    SqueezeExcite(reduced_channels=10**5).build((None, 4, 4, 8))


def test_integer_feature_maps_are_refused_instead_of_gated_to_zero():
    images = np.ones((1, 4, 4, 8), "int32")
    with pytest.raises(TypeError, match="expects floating-point feature maps, got int32"):
        SqueezeExcite()(images)
    assert SqueezeExcite()(images.astype("float32")).shape == (1, 4, 4, 8)


def test_reduce_and_expand_start_from_weights_of_their_own():
    """One initializer instance draws the same numbers at every call: the reduce (24x6) and
    expand (6x24) kernels would hold the same numbers reshaped. Each gets its own, and the
    same random seed still builds the same layer."""

    def kernels(seed):
        keras.utils.set_random_seed(seed)
        layer = SqueezeExcite(ratio=4)
        layer.build((None, 5, 5, 24))
        return [to_numpy(dense.kernel).ravel() for dense in (layer.reduce, layer.expand)]

    reduce, expand = kernels(0)
    assert reduce.shape == expand.shape and not np.allclose(reduce, expand)
    assert all(np.array_equal(a, b) for a, b in zip(kernels(0), [reduce, expand], strict=True))
    assert not np.allclose(kernels(1)[0], reduce)
