"""SE-Inception-v3, SE-Inception-ResNet-v2, SE-BN-Inception, SE-MobileNet and SE-MobileNetV2:
exact SE deltas over their plain twins, topology, placement, training, saving, bad input."""

import math

import keras
import numpy as np
import pytest
from harness import check_fresh_process_round_trip, random_batch, randomize_statistics, to_numpy
from torch_reference import bn_inception_forward

from keras_se import SqueezeExcite, applications


def count(weights):
    return sum(math.prod(w.shape) for w in weights)


def se_params(channels, width):
    """Two FCs with biases: C -> d -> C."""
    return 2 * channels * width + width + channels


def floor_width(channels):
    return channels // 16


def mobilenet_v3_width(channels):
    """C / 4 rounded to the nearest multiple of 8, at least 8 (MobileNetV3's rule)."""
    return max(8, int(channels / 4 + 4) // 8 * 8)


# constructor: (plain keras.applications twin, input size, SE layer count, SE width rule,
# expected SE parameters: ../shared/reference/models.md where it gives them).
TWINS = {
    "SEInceptionV3": (keras.applications.InceptionV3, 75, 11, floor_width, 1_661_620),
    "SEInceptionResNetV2": (keras.applications.InceptionResNetV2, 75, 40, floor_width, None),
    "SEMobileNet": (keras.applications.MobileNet, 32, 13, floor_width, 486_068),
    "SEMobileNetV2": (keras.applications.MobileNetV2, 32, 17, mobilenet_v3_width, None),
}


@pytest.fixture(scope="module")
def twins():
    """Each SE model and its plain twin with the 1000-class head, built once, small inputs."""
    built = {}
    for name, (plain, size, *_) in TWINS.items():
        keras.utils.set_random_seed(0)
        built[name] = (
            getattr(applications, name)(input_shape=(size, size, 3)),
            plain(weights=None, input_shape=(size, size, 3)),
        )
    return built


@pytest.mark.parametrize("name", TWINS)
def test_the_se_twin_adds_exactly_its_se_blocks(name, twins):
    model, plain = twins[name]
    _, _, se_count, width_rule, expected = TWINS[name]
    se_layers = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    assert len(se_layers) == se_count
    by_formula = 0
    for layer in se_layers:
        channels = layer.input.shape[-1]
        assert layer.reduced_channels_ == width_rule(channels), layer.name
        by_formula += se_params(channels, width_rule(channels))
    if expected is not None:
        assert by_formula == expected
    assert count(model.trainable_weights) - count(plain.trainable_weights) == by_formula
    assert count(model.non_trainable_weights) == count(plain.non_trainable_weights)


def test_se_mobilenet_has_the_papers_parameter_count(twins):
    assert count(twins["SEMobileNet"][0].trainable_weights) == 4_718_044


def open_gates(model):
    """Make every SE gate exactly 1 (sigmoid(30) rounds to 1.0 in float32)."""
    for layer in model.layers:
        if isinstance(layer, SqueezeExcite):
            kernel, bias = layer.expand.get_weights()
            layer.expand.set_weights([np.zeros_like(kernel), np.full_like(bias, 30.0)])


@pytest.mark.parametrize("name", TWINS)
def test_with_open_gates_the_twin_computes_the_keras_application(name, twins):
    """Same layers, same connections: with SE gates at 1 and the plain model's weights, the
    rebuilt graph reproduces `keras.applications` exactly."""
    model, plain = twins[name]
    randomize_statistics(plain, seed=4)
    se_weights = {
        id(w) for layer in model.layers if isinstance(layer, SqueezeExcite) for w in layer.weights
    }
    others = [w for w in model.weights if id(w) not in se_weights]
    for weight, value in zip(others, plain.get_weights(), strict=True):
        weight.assign(value)
    open_gates(model)
    size = TWINS[name][1]
    x = random_batch((2, size, size, 3), seed=6)
    np.testing.assert_allclose(
        to_numpy(model(x, training=False)),
        to_numpy(plain(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "name, feeds, follower",
    [
        ("SEInceptionV3", "mixed4", "mixed4_se"),
        ("SEInceptionResNetV2", "block17_7_conv", "block17_7_se"),
        ("SEMobileNet", "conv_pw_5_relu", "conv_pw_5_se"),
        ("SEMobileNetV2", "block_6_depthwise_relu", "block_6_se"),
        ("SEMobileNetV2", "expanded_conv_depthwise_relu", "expanded_conv_se"),
    ],
)
def test_se_sits_where_the_paper_puts_it(name, feeds, follower, twins):
    model = twins[name][0]
    assert model.get_layer(follower).input is model.get_layer(feeds).output
    consumers = [
        layer
        for layer in model.layers
        if any(t is model.get_layer(follower).output for t in keras.tree.flatten(layer.input))
    ]
    assert consumers, follower
    if name == "SEInceptionResNetV2":
        # the residual branch, before the scaled addition
        (add,) = consumers
        assert isinstance(add, applications.ScaledResidual)
        assert add.input[1] is model.get_layer(follower).output
    if name == "SEMobileNetV2":
        assert [c.name for c in consumers] == [follower.replace("_se", "_project")]


def test_layer_names_do_not_depend_on_what_was_built_before():
    keras.applications.MobileNetV2(weights=None)  # advances Keras' global name counters
    first = applications.SEInceptionV3(include_top=False, input_shape=(75, 75, 3))
    second = applications.SEInceptionV3(include_top=False, input_shape=(75, 75, 3))
    # every layer but the input, which Keras names like keras.applications does
    assert [layer.name for layer in first.layers[1:]] == [layer.name for layer in second.layers[1:]]
    assert first.get_layer("conv2d").kernel.shape == (3, 3, 3, 32)


@pytest.fixture(scope="module")
def se_bn_inception():
    keras.utils.set_random_seed(0)
    return applications.SEBNInception(classifier_activation=None, input_shape=(None, None, 3))


def test_se_bn_inception_matches_the_caffe_count(se_bn_inception):
    se_layers = [layer for layer in se_bn_inception.layers if isinstance(layer, SqueezeExcite)]
    assert len(se_layers) == 10
    assert count(se_bn_inception.trainable_weights) == 11_931_622
    assert sum(count(layer.trainable_weights) for layer in se_layers) == 646_398
    assert sum(se_params(c, c // 16) for c in (layer.input.shape[-1] for layer in se_layers)) == (
        646_398
    )


def test_se_bn_inception_matches_an_independent_pytorch_forward(se_bn_inception):
    randomize_statistics(se_bn_inception, seed=8)
    x = random_batch((2, 160, 160, 3), seed=9)
    expected = bn_inception_forward(se_bn_inception, x)
    np.testing.assert_allclose(
        to_numpy(se_bn_inception(x, training=False)),
        expected,
        rtol=1e-4,
        atol=1e-4 * max(1.0, float(np.abs(expected).max())),
    )


def test_se_bn_inception_runs_on_any_size_of_at_least_32(se_bn_inception):
    features = keras.Model(
        se_bn_inception.input, se_bn_inception.get_layer("inception_5b_se").output
    )
    for size, expected in [(32, 1), (45, 2), (224, 7)]:
        assert tuple(features(random_batch((1, size, size, 3))).shape) == (
            1,
            expected,
            expected,
            1024,
        )


FAMILIES = {
    "SEInceptionV3": dict(input_shape=(75, 75, 3)),
    "SEInceptionResNetV2": dict(input_shape=(75, 75, 3)),
    "SEBNInception": dict(input_shape=(32, 32, 3)),
    "SEMobileNet": dict(input_shape=(32, 32, 3), alpha=0.5),
    "SEMobileNetV2": dict(input_shape=(32, 32, 3), alpha=0.35),
}


def test_each_family_loads_in_a_fresh_process_with_safe_mode(tmp_path):
    """Each family's layers are registered by `import keras_se` alone. (Every constructor
    round-trips in this process through the model harness: tests/applications/
    test_every_model.py.)"""
    models = {}
    for name, options in FAMILIES.items():
        keras.utils.set_random_seed(0)
        size = options["input_shape"][0]
        model = getattr(applications, name)(classes=4, **options)
        randomize_statistics(model, seed=4)
        models[name] = (model, random_batch((3, size, size, 3), seed=7))
    check_fresh_process_round_trip(models, tmp_path)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("SEInceptionV3", dict(input_shape=(74, 80, 3)), "at least 75x75"),
        ("SEInceptionResNetV2", dict(include_top=False, input_shape=(None, 60, 3)), "75x75"),
        ("SEMobileNet", dict(input_shape=(31, 31, 3)), "at least 32x32"),
        ("SEMobileNetV2", dict(input_shape=(32, 32, 0)), "channel"),
        ("SEBNInception", dict(input_shape=(16, 16, 3)), "at least 32x32"),
        ("SEInceptionV3", dict(pooling="max"), "include_top=False"),
        ("SEMobileNet", dict(classes=0), "classes"),
        ("SEMobileNetV2", dict(reduction_ratio=-1), "reduction_ratio"),
        ("SEBNInception", dict(weights="imagenet"), "SE-BN-Inception.caffemodel"),
        ("SEInceptionV3", dict(weights="imagenet"), "no timm checkpoint"),
        ("SEMobileNet", dict(weights="nowhere.weights.h5"), "does not exist"),
        # MobileNet's own arguments, named as the user gave them (Keras names `filters`/`rate`)
        ("SEMobileNet", dict(alpha=0), "`alpha` must be a finite number > 0, got 0"),
        ("SEMobileNetV2", dict(alpha=0.0), "`alpha` must be a finite number > 0, got 0.0"),
        ("SEMobileNet", dict(dropout=1.5), r"`dropout` must be a number in \[0, 1\), got 1.5"),
        ("PlainMobileNet", dict(depth_multiplier=0), "`depth_multiplier` must be >= 1"),
        # the Keras templates allocate their classifier first: it is checked before them
        # (the widths are those of the built models' heads, as run_model_test checks at 1.0)
        ("SEMobileNet", dict(alpha=0.5, classes=10**9), r"classes from 512 features\) would"),
        ("SEMobileNetV2", dict(alpha=1.4, classes=10**9), r"classes from 1792 features\)"),
        ("SEMobileNetV2", dict(alpha=0.35, classes=10**9), r"classes from 1280 features\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(applications, name)(**kwargs)


def test_a_weights_file_of_another_width_is_refused(tmp_path):
    path = tmp_path / "mobilenet.weights.h5"
    applications.SEMobileNet(alpha=0.25, input_shape=(32, 32, 3), classes=3).save_weights(path)
    with pytest.raises(ValueError, match="'conv1'"):
        applications.SEMobileNet(alpha=0.5, input_shape=(32, 32, 3), classes=3, weights=path)
    loaded = applications.SEMobileNet(alpha=0.25, input_shape=(32, 32, 3), classes=3, weights=path)
    assert loaded.output_shape == (None, 3)
    # MobileNet's classifier is a 1x1 convolution (`conv_preds`): the full file still loads
    # into the headless model, with the same features.
    headless = applications.SEMobileNet(
        alpha=0.25, input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=path
    )
    x = random_batch((2, 32, 32, 3))
    pooled = keras.Model(loaded.inputs, loaded.get_layer("global_average_pooling2d").output)
    np.testing.assert_allclose(
        to_numpy(headless(x)), to_numpy(pooled(x)).reshape(2, -1), rtol=1e-6, atol=1e-6
    )


def test_scaled_residual_round_trips_its_config():
    layer = applications.ScaledResidual(0.17, name="block8_1_scale")
    clone = applications.ScaledResidual.from_config(layer.get_config())
    assert clone.scale == 0.17 and clone.name == "block8_1_scale"
    with pytest.raises(ValueError, match="scale"):
        applications.ScaledResidual(0)


def test_the_mobilenet_twin_is_keras_mobilenet_with_keras_se_depthwise_convolutions(tmp_path):
    from keras_se.layers import DepthwiseConv2D

    options = dict(alpha=0.25, input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    theirs = keras.applications.MobileNet(weights=None, **options)
    randomize_statistics(theirs)
    path = tmp_path / "mobilenet.weights.h5"
    theirs.save_weights(path)
    ours = applications.PlainMobileNet(weights=path, **options)

    def weighted(model):
        return [
            (layer.name, [w.shape for w in layer.weights])
            for layer in model.layers
            if layer.weights
        ]

    assert len(ours.layers) == len(theirs.layers) and weighted(ours) == weighted(theirs)
    depthwise = [layer for layer in ours.layers if "DepthwiseConv2D" in type(layer).__name__]
    assert len(depthwise) == 13 and all(type(layer) is DepthwiseConv2D for layer in depthwise)
    x = random_batch((2, 32, 32, 3))
    np.testing.assert_allclose(
        to_numpy(ours(x, training=False)), to_numpy(theirs(x, training=False)), atol=1e-5
    )


def test_an_input_tensor_from_layers_named_as_keras_names_them_is_accepted():
    """The user's `conv2d` (its name in a fresh session) before `input_tensor` used to clash
    with the twin's renumbered `conv2d`; keras.applications.InceptionV3 takes the same tensor."""
    images = keras.Input((75, 75, 3))
    user_conv = keras.layers.Conv2D(3, 1, name="conv2d")
    features = keras.layers.BatchNormalization(name="batch_normalization")(user_conv(images))
    model = applications.SEInceptionV3(include_top=False, input_tensor=features, pooling="avg")
    names = [layer.name for layer in model.layers]
    assert model.inputs[0] is images and model.get_layer("conv2d") is user_conv
    assert len(names) == len(set(names)) and "conv2d_1" in names
    plain = keras.applications.InceptionV3(
        weights=None, include_top=False, input_tensor=features, pooling="avg"
    )
    assert model.output_shape == plain.output_shape == (None, 2048)
