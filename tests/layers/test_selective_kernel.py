import keras
import numpy as np
import numpy_reference as ref
import pytest
from harness import random_batch, randomize_weights, run_layer_test, to_numpy
from layer_weights import bn_weights, sk_weights

from keras_se import SelectiveKernel


def reference_output(layer, x, training=False):
    expected = ref.selective_kernel(
        ref.to_channels_last(x, layer.data_format),
        sk_weights(layer),
        kernel_sizes=layer.kernel_sizes,
        dilations=layer.dilation_rates,
        strides=layer.strides,
        groups=layer.groups,
        split_input=layer.split_input,
        select=layer.select,
        training=training,
    )
    return ref.from_channels_last(expected, layer.data_format)


CONFIGS = {
    "paper default (3x3 + 3x3 dilated 2)": ({"filters": 16}, (2, 9, 9, 8)),
    "grouped, more filters": ({"filters": 16, "groups": 4, "min_channels": 4}, (2, 8, 8, 8)),
    "split input (timm skresnet18)": (
        {"filters": 12, "split_input": True, "ratio": 8},
        (2, 7, 7, 8),
    ),
    "stride 2, dilation multiple of stride": (
        {"filters": 8, "strides": 2, "groups": 2},
        (2, 9, 10, 8),
    ),
    "stride 2, odd dilation": (
        {"filters": 8, "strides": 2, "dilation_rate": [1, 3]},
        (2, 11, 8, 4),
    ),
    "three branches, mixed kernels, stride 3": (
        {"filters": 6, "kernel_size": [3, 5, 1], "dilation_rate": [1, 1, 2], "strides": 3},
        (2, 10, 7, 3),
    ),
    "sigmoid select, three branches": (
        {"filters": 8, "dilation_rate": [1, 2, 3], "select": "sigmoid", "min_channels": 4},
        (2, 8, 8, 4),
    ),
    "1D": ({"filters": 8, "groups": 2}, (2, 13, 4)),
    "3D strided": ({"filters": 4, "strides": 2}, (2, 5, 6, 5, 4)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_numpy_reference_in_inference(name):
    kwargs, shape = CONFIGS[name]
    x = random_batch(shape)
    layer = SelectiveKernel(**kwargs)
    layer(x)
    randomize_weights(layer)
    np.testing.assert_allclose(
        to_numpy(layer(x, training=False)), reference_output(layer, x), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", ["grouped, more filters", "stride 2, odd dilation", "1D"])
def test_matches_numpy_reference_channels_first(name):
    kwargs, shape = CONFIGS[name]
    x = np.moveaxis(random_batch(shape), -1, 1)
    layer = SelectiveKernel(**kwargs, data_format="channels_first")
    layer(x)
    randomize_weights(layer)
    np.testing.assert_allclose(to_numpy(layer(x)), reference_output(layer, x), rtol=1e-4, atol=1e-4)


def test_training_uses_batch_statistics_and_updates_moving_averages():
    kwargs, shape = CONFIGS["grouped, more filters"]
    x = random_batch(shape)
    layer = SelectiveKernel(**kwargs)
    layer(x)
    randomize_weights(layer)
    expected = reference_output(layer, x, training=True)  # batch statistics everywhere
    moving_before = to_numpy(layer.norms[0].moving_mean).copy()
    attention_before = to_numpy(layer.attention_norm.moving_mean).copy()
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(to_numpy(layer.norms[0].moving_mean), moving_before)
    assert not np.allclose(to_numpy(layer.attention_norm.moving_mean), attention_before)
    # and inference afterwards uses the (updated) moving statistics
    np.testing.assert_allclose(
        to_numpy(layer(x, training=False)), reference_output(layer, x), rtol=1e-4, atol=1e-4
    )


def test_softmax_is_across_branches_not_channels():
    """With identical branches the output equals one branch, whatever the attention logits,
    only if the weights of every channel sum to one over the branches."""
    x = random_batch((2, 6, 6, 8))
    layer = SelectiveKernel(filters=8, dilation_rate=[1, 1, 1], min_channels=4)
    layer(x)
    randomize_weights(layer)
    for conv, norm in zip(layer.convs[1:], layer.norms[1:], strict=True):
        conv.set_weights(layer.convs[0].get_weights())
        norm.set_weights(layer.norms[0].get_weights())
    branch = ref.ACTIVATIONS["relu"](
        ref.batch_norm(
            ref.conv(x, to_numpy(layer.convs[0].kernel)),
            bn_weights(layer.norms[0]),
            training=False,
            epsilon=1e-5,
        )
    )
    np.testing.assert_allclose(to_numpy(layer(x)), branch, rtol=1e-4, atol=1e-4)


def expected_trainable(in_channels, filters, kernel_sizes, groups, split_input, d):
    """Paths: conv k*k*(cin/groups)*C + BN 2C each; attention: C*d + BN 2d + d*M*C."""
    m = len(kernel_sizes)
    cin = in_channels // m if split_input else in_channels
    paths = sum(k * k * (cin // groups) * filters + 2 * filters for k in kernel_sizes)
    return paths + filters * d + 2 * d + d * m * filters


# timm twins (shared/reference/models.md): skresnet18/34 use split input with attention width
# make_divisible(C / 8, 16); SKNet-50 (skresnext50_32x4d) uses G=32, r=16, L=32, no split.
@pytest.mark.parametrize(("channels", "expected_d"), [(64, 16), (128, 16), (256, 32), (512, 64)])
def test_skresnet18_units_match_timm(channels, expected_d):
    layer = SelectiveKernel(filters=channels, split_input=True, ratio=8, min_channels=16)
    layer.build((None, 8, 8, channels))
    timm_style = SelectiveKernel(
        filters=channels, split_input=True, ratio=8, min_channels=16, divisor=16
    )
    timm_style.build((None, 8, 8, channels))
    assert layer.attention_channels_ == timm_style.attention_channels_ == expected_d
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == expected_trainable(channels, channels, [3, 3], 1, True, expected_d)
    assert layer.count_params() == trainable + 2 * 2 * channels + 2 * expected_d


@pytest.mark.parametrize(("width", "expected_d"), [(128, 32), (256, 32), (512, 32), (1024, 64)])
def test_sknet50_units_match_the_paper_and_timm(width, expected_d):
    layer = SelectiveKernel(filters=width, groups=32, ratio=16, min_channels=32)
    layer.build((None, 8, 8, width))
    timm_style = SelectiveKernel(filters=width, groups=32, ratio=16, min_channels=32, divisor=32)
    timm_style.build((None, 8, 8, width))
    assert (
        layer.attention_channels_
        == timm_style.attention_channels_
        == max(width // 16, 32)
        == expected_d
    )
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == expected_trainable(width, width, [3, 3], 32, False, expected_d)


def test_attention_runs_in_float32_under_mixed_precision():
    layer = SelectiveKernel(filters=8, min_channels=4, dtype="mixed_bfloat16")
    y = layer(random_batch((2, 6, 6, 8)))
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert layer.convs[0].compute_dtype == "bfloat16"
    for sublayer in (layer.attention_reduce, layer.attention_norm, layer.attention_select):
        assert sublayer.compute_dtype == "float32"


@pytest.mark.parametrize(
    ("kwargs", "shape", "expected_shape"),
    [
        ({"filters": 8, "min_channels": 4}, (4, 6, 6, 8), (4, 6, 6, 8)),
        (
            {"filters": 8, "groups": 2, "strides": 2, "split_input": True, "min_channels": 4},
            (4, 7, 7, 8),
            (4, 4, 4, 8),
        ),
        ({"filters": 6, "min_channels": 4}, (4, 9, 4), (4, 9, 6)),
        ({"filters": 8, "min_channels": 4, "select": "sigmoid"}, (4, 6, 6, 8), (4, 6, 6, 8)),
    ],
)
def test_layer_harness(kwargs, shape, expected_shape, tmp_path):
    def make_layer(**extra):
        return SelectiveKernel(**kwargs, **extra)

    run_layer_test(
        make_layer, random_batch(shape), expected_shape, tmp_path, mixed_precision_tolerance=0.1
    )


def test_layer_harness_channels_first(tmp_path):
    def make_layer(**extra):
        return SelectiveKernel(
            filters=8, strides=2, min_channels=4, data_format="channels_first", **extra
        )

    run_layer_test(
        make_layer,
        random_batch((4, 4, 7, 7)),
        (4, 8, 4, 4),
        tmp_path,
        mixed_precision_tolerance=0.1,
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"filters": 0}, ValueError, r"`filters` must be >= 1, got 0"),
        (
            {"filters": 10, "groups": 4},
            ValueError,
            r"`filters` \(10\) must be divisible by `groups` \(4\)",
        ),
        ({"kernel_size": []}, ValueError, r"`kernel_size` must name at least 1 branch"),
        ({"dilation_rate": ()}, ValueError, r"`dilation_rate` must name at least 1 branch"),
        (
            {"kernel_size": [3, 3, 3], "dilation_rate": [1, 2]},
            ValueError,
            r"same number of branches, got 3 kernel sizes",
        ),
        ({"kernel_size": 4}, ValueError, r"`kernel_size` entries must be odd"),
        ({"kernel_size": [3, 0]}, ValueError, r"`kernel_size\[1\]` must be >= 1, got 0"),
        ({"dilation_rate": [1, 2.0]}, TypeError, r"`dilation_rate\[1\]` must be an integer"),
        ({"strides": 0}, ValueError, r"`strides` must be >= 1, got 0"),
        ({"groups": 0}, ValueError, r"`groups` must be >= 1, got 0"),
        ({"ratio": 0}, ValueError, r"`ratio` must be a finite number > 0, got 0"),
        ({"ratio": float("inf")}, ValueError, r"`ratio` must be a finite number > 0, got inf"),
        ({"norm_momentum": 2.0}, ValueError, r"`norm_momentum` must be in \(0, 1.0\], got 2.0"),
        ({"norm_epsilon": -1e-5}, ValueError, r"`norm_epsilon` must be a finite number > 0"),
        ({"dtype": "int32"}, ValueError, r"`dtype` must be a float dtype .* got 'int32'"),
        ({"ratio": None}, TypeError, r"`ratio` must be a number, got None"),
        ({"min_channels": 0}, ValueError, r"`min_channels` must be >= 1"),
        ({"split_input": "yes"}, TypeError, r"`split_input` must be a bool"),
        ({"select": "max"}, ValueError, r"`select` must be one of 'softmax', 'sigmoid', got 'max'"),
        ({"data_format": "channels_middle"}, ValueError, r"`data_format` must be one of"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        SelectiveKernel(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "shape", "match"),
    [
        (
            {"groups": 3},
            (None, 8, 8, 8),
            r"`groups` \(3\) must divide the 8 input channels of each branch",
        ),
        (
            {"filters": 8, "groups": 4, "split_input": True},
            (None, 8, 8, 12),
            r"`groups` \(4\) must divide the 6 input",
        ),
        (
            {"filters": 8, "split_input": True},
            (None, 8, 8, 7),
            r"input channels divisible by the 2 branches, got 7",
        ),
        ({}, (None, 2, 2, 2, 2, 8), r"input rank 3, 4 or 5\), got an input of rank 6"),
        ({}, (None, 8), r"got an input of rank 2"),
        ({}, (None, 8, 8, None), r"known, non-zero channel dimension"),
    ],
)
def test_bad_input_shapes_are_rejected_at_build(kwargs, shape, match):
    with pytest.raises(ValueError, match=match):
        SelectiveKernel(**kwargs).build(shape)


def test_filters_that_cannot_fit_in_memory_are_refused_before_allocating():
    layer = SelectiveKernel(filters=10**7, name="wide")
    with pytest.raises(ValueError, match=r"'wide' \(10000000 filters from 8 channels\) would need"):
        layer.build((None, 4, 4, 8))
    assert not layer.weights


def test_integer_feature_maps_are_refused():
    images = np.ones((1, 4, 4, 8), "int32")
    with pytest.raises(TypeError, match="expects floating-point feature maps, got int32"):
        SelectiveKernel(filters=8, min_channels=4)(images)


def built_weights(seed, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = SelectiveKernel(16, **kwargs)
    layer.build((None, 9, 9, 16))
    return {weight.path.split("/", 1)[1]: to_numpy(weight) for weight in layer.weights}


@pytest.mark.parametrize("initializer", ["glorot_uniform", keras.initializers.HeNormal()])
def test_branches_and_attention_start_from_weights_of_their_own(initializer):
    """One initializer instance draws the same numbers at every call; each branch and each
    attention kernel gets its own, and the same random seed still builds the same layer."""
    weights = built_weights(0, kernel_initializer=initializer)
    first, second = weights["branch0_conv/kernel"], weights["branch1_conv/kernel"]
    assert first.shape == second.shape and not np.allclose(first, second)
    reduce, select = (weights[f"attention_{name}/kernel"].ravel() for name in ("reduce", "select"))
    assert not np.allclose(reduce, select[: reduce.size] * reduce.std() / select.std())
    again = built_weights(0, kernel_initializer=initializer)
    assert all(np.array_equal(weights[name], again[name]) for name in weights)
    other_seed = built_weights(1, kernel_initializer=initializer)
    assert not np.allclose(weights["branch0_conv/kernel"], other_seed["branch0_conv/kernel"])
