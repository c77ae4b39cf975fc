"""SE-ResNet, SE-ResNeXt, SENet-154, SK-ResNet and SKNet: exact structure, shapes, training,
saving, weights files and bad input."""

import math

import keras
import numpy as np
import pytest
from harness import check_fresh_process_round_trip, random_batch, randomize_statistics, to_numpy
from keras_se.applications.resnet import ResNet
from torch_reference import resnet_forward

from keras_se import SelectiveKernel, SqueezeExcite, applications

# Trainable parameters and BatchNorm moving statistics with the 1000-class head, from
# ../shared/reference/models.md: timm's param_count for the models with a timm twin, the
# formula count of the SKNet paper's definition for SKNet26 and SKNet101, and the plain twins
# (ResNet-50 without conv bias, ResNeXt-50 32x4d).
REFERENCE_COUNTS = {
    "PlainResNet50": (25_557_032, 53_120),
    "PlainResNeXt50": (25_028_904, 68_224),
    "SEResNet18": (11_778_592, 9_600),
    "SEResNet34": (21_958_868, 17_024),
    "SEResNet50": (28_088_024, 53_120),
    "SEResNet101": (49_326_872, 105_344),
    "SEResNet152": (66_821_848, 151_424),
    "SEResNeXt50": (27_559_896, 68_224),
    "SEResNeXt101": (48_955_416, 137_856),
    "SENet154": (115_088_984, 247_552),
    "SKResNet18": (11_958_056, 13_952),
    "SKResNet34": (22_282_376, 25_568),
    "SKNet26": (16_746_408, None),
    "SKNet50": (27_479_784, 84_544),
    "SKNet101": (48_736_040, None),
    # The CIFAR-10 notebook's SENet-18 and ResNet-18, with their 10-class heads.
    "SEResNet18CIFAR": (11_263_042, 9_600),
    "PlainResNet18CIFAR": (11_173_962, 9_600),
    # He et al.'s CIFAR ResNet-110 (option A shortcuts) and pre-activation ResNet-164 with
    # 10 classes, as the CIFAR implementations count them (the papers round both to 1.7M),
    # and with the SE blocks added (2 C^2/16 + C/16 + C on each block's C output channels).
    "PlainResNet110CIFAR": (1_727_962, 8_096),
    "SEResNet110CIFAR": (1_727_962 + 18 * (49 + 162 + 580), 8_096),
    "PlainResNet164CIFAR": (1_703_258, 24_224),
    "SEResNet164CIFAR": (1_703_258 + 18 * (580 + 2_184 + 8_464), 24_224),
}

# Each constructor as timm / the Caffe models describe it, for the PyTorch reference.
_SE_CAFFE = dict(attention="se", stem_pool="ceil")
_SE_BASIC = dict(block="basic", relu_before_se=True, **_SE_CAFFE)
_SE_BOTTLENECK = dict(block="bottleneck", stride_in_1x1=True, **_SE_CAFFE)
_SE_RESNEXT = dict(block="bottleneck", attention="se", groups=32, stem_pool="pad")
_SK_BASIC = dict(block="basic", attention="sk", split_input=True, stem_pool="pad")
_SKNET = dict(block="bottleneck", attention="sk", groups=32, stem_pool="pad")
_HE_CIFAR = dict(depths=(18, 18, 18), widths=(16, 32, 64), stem="cifar")
ARCHITECTURES = {
    "PlainResNet50": dict(
        depths=(3, 4, 6, 3), block="bottleneck", stride_in_1x1=True, stem_pool="ceil"
    ),
    "PlainResNeXt50": dict(depths=(3, 4, 6, 3), block="bottleneck", groups=32, stem_pool="pad"),
    "SEResNet18": dict(depths=(2, 2, 2, 2), **_SE_BASIC),
    "SEResNet34": dict(depths=(3, 4, 6, 3), **_SE_BASIC),
    "SEResNet50": dict(depths=(3, 4, 6, 3), **_SE_BOTTLENECK),
    "SEResNet101": dict(depths=(3, 4, 23, 3), **_SE_BOTTLENECK),
    "SEResNet152": dict(depths=(3, 8, 36, 3), **_SE_BOTTLENECK),
    "SEResNeXt50": dict(depths=(3, 4, 6, 3), **_SE_RESNEXT),
    "SEResNeXt101": dict(depths=(3, 4, 23, 3), **_SE_RESNEXT),
    "SENet154": dict(depths=(3, 8, 36, 3), block="bottleneck", groups=64, stem="deep", **_SE_CAFFE),
    "SKResNet18": dict(depths=(2, 2, 2, 2), **_SK_BASIC),
    "PlainResNet110CIFAR": dict(block="basic", shortcut="zero_pad", **_HE_CIFAR),
    "SEResNet110CIFAR": dict(block="basic", shortcut="zero_pad", attention="se", **_HE_CIFAR),
    "PlainResNet164CIFAR": dict(block="preact_bottleneck", **_HE_CIFAR),
    "SEResNet164CIFAR": dict(block="preact_bottleneck", attention="se", **_HE_CIFAR),
    "SKResNet34": dict(depths=(3, 4, 6, 3), **_SK_BASIC),
    "SKNet26": dict(depths=(2, 2, 2, 2), **_SKNET),
    "SKNet50": dict(depths=(3, 4, 6, 3), **_SKNET),
    "SKNet101": dict(depths=(3, 4, 23, 3), **_SKNET),
    "SEResNet18CIFAR": dict(depths=(2, 2, 2, 2), block="basic", attention="se", stem="cifar"),
    "PlainResNet18CIFAR": dict(depths=(2, 2, 2, 2), block="basic", stem="cifar"),
}
assert set(ARCHITECTURES) == set(REFERENCE_COUNTS) == set(applications.list_models(family="resnet"))


def count(weights):
    return sum(math.prod(w.shape) for w in weights)


@pytest.fixture(scope="module")
def any_size_models():
    """Every constructor with its 1000-class head (logits), built once, for any input size."""
    built = {}

    def get(name):
        if name not in built:
            keras.utils.set_random_seed(0)
            built[name] = getattr(applications, name)(
                input_shape=(None, None, 3), classifier_activation=None
            )
        return built[name]

    return get


@pytest.mark.parametrize("name", REFERENCE_COUNTS)
def test_parameter_counts_equal_the_reference(name, any_size_models):
    model = any_size_models(name)
    trainable, statistics = REFERENCE_COUNTS[name]
    assert count(model.trainable_weights) == trainable
    non_trainable = count(model.non_trainable_weights)
    # BatchNorm keeps a moving mean and variance per gamma; nothing else is non-trainable.
    assert non_trainable == 2 * count(w for w in model.weights if w.path.endswith("/gamma"))
    if statistics is not None:
        assert non_trainable == statistics


@pytest.mark.parametrize("name", REFERENCE_COUNTS)
def test_outputs_match_an_independent_pytorch_forward(name, any_size_models):
    """Odd, non-square inputs: every padding, pool mode and stride placement shows."""
    model = any_size_models(name)
    randomize_statistics(model, seed=2)
    images = random_batch((2, 45, 53, 3), seed=5)
    expected = resnet_forward(model, images, ARCHITECTURES[name])
    logits = to_numpy(model(images, training=False))
    # float32 rounding grows with depth and with the logits' scale (up to ~2000 for
    # SE-ResNet-152 with these statistics, where the two frameworks differ by ~1e-4 of it);
    # a structural error (padding side, pool mode, stride placement) changes the logits by a
    # large fraction of their scale.
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-3 * scale)


# Changes the PyTorch reference can make to each CIFAR network that a structural error in the
# Keras model would look like: SE after a ReLU or after the addition, the stride on the other
# conv, an ImageNet stem, the zero channels of an option-A shortcut before the others.
CIFAR_NEGATIVE_CONTROLS = {
    "SEResNet18CIFAR": ({"relu_before_se": True}, {"stem": "7x7", "stem_pool": "pad"}),
    "SEResNet110CIFAR": ({"relu_before_se": True}, {"zero_pad_first": True}),
    "SEResNet164CIFAR": ({"se_after_add": True}, {"stride_in_1x1": True}),
}


@pytest.mark.parametrize("name", CIFAR_NEGATIVE_CONTROLS)
def test_the_cifar_references_tell_a_misplaced_se_and_a_wrong_stride(name, any_size_models):
    """The negative controls of the CIFAR networks' comparisons: the same weights run with
    a structural change give other logits."""
    model = any_size_models(name)
    randomize_statistics(model, seed=3)
    images = random_batch((2, 32, 32, 3), seed=6)
    arch = ARCHITECTURES[name]
    logits = to_numpy(model(images, training=False))
    scale = max(1.0, float(np.abs(logits).max()))
    np.testing.assert_allclose(logits, resnet_forward(model, images, arch), atol=1e-3 * scale)
    for wrong in CIFAR_NEGATIVE_CONTROLS[name]:
        difference = np.abs(resnet_forward(model, images, {**arch, **wrong}) - logits).max()
        assert difference > 0.01 * scale, wrong


def test_the_cifar_networks_take_32x32_by_default_and_refuse_less_than_8():
    assert applications.SEResNet18CIFAR().input_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="at least 8x8"):
        applications.SEResNet18CIFAR(input_shape=(7, 7, 3))
    with pytest.raises(ValueError, match=r"`stem_pool` must be None with stem='cifar'"):
        ResNet((1, 1), block="basic", stem="cifar", stem_pool="pad", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="weights='imagenet' is not available for SEResNet18CIFAR"):
        applications.SEResNet18CIFAR(weights="imagenet")
    # He et al.'s three-stage CIFAR networks: 32x32 by default, down to 4x4.
    for constructor in (applications.SEResNet110CIFAR, applications.PlainResNet164CIFAR):
        assert constructor().input_shape == (None, 32, 32, 3)
        with pytest.raises(ValueError, match="at least 4x4"):
            constructor(input_shape=(3, 3, 3))


def test_default_input_is_224_with_the_top_and_any_size_without():
    assert applications.SEResNet18().input_shape == (None, 224, 224, 3)
    assert applications.SEResNet18(include_top=False).input_shape == (None, None, None, 3)


def feature_size(size, stem_pool):
    """Spatial size after the stem (7x7/2, pad 3), the 3x3/2 pool and three stride-2 stages."""
    size = math.ceil(size / 2)
    size = math.ceil((size - 3) / 2) + 1 if stem_pool == "ceil" else (size - 1) // 2 + 1
    for _ in range(3):
        size = math.ceil(size / 2)
    return size


@pytest.mark.parametrize(
    "name, channels, stem_pool",
    [("SEResNet50", 2048, "ceil"), ("SKResNet18", 512, "pad"), ("SEResNeXt50", 2048, "pad")],
)
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_headless_shapes_for_any_input_of_at_least_32_pixels(name, channels, stem_pool, pooling):
    model = getattr(applications, name)(include_top=False, pooling=pooling)
    for height, width in [(32, 32), (45, 53), (64, 40)]:
        y = to_numpy(model(random_batch((1, height, width, 3)), training=False))
        if pooling is None:
            size = feature_size(height, stem_pool), feature_size(width, stem_pool)
            expected = (1, *size, channels)
        else:
            expected = (1, channels)
        assert y.shape == expected
    if pooling == "max":
        features = keras.Model(model.input, model.get_layer(model.layers[-2].name).output)
        x = random_batch((1, 45, 53, 3))
        np.testing.assert_allclose(
            to_numpy(model(x)), to_numpy(features(x)).max(axis=(1, 2)), rtol=1e-6
        )


def test_layer_names_are_systematic():
    model = applications.SEResNet50(include_top=False, input_shape=(64, 64, 3))
    names = {layer.name for layer in model.layers}
    for name in [
        "stem_conv1",
        "stem_bn1",
        "stem_pool",
        "stage2_block3_conv2",
        "stage2_block3_se",
        "stage2_block1_shortcut_conv",
        "stage4_block3_out",
    ]:
        assert name in names
    assert isinstance(model.get_layer("stage2_block3_se"), SqueezeExcite)
    sknet = applications.SKNet26(include_top=False, input_shape=(64, 64, 3))
    assert isinstance(sknet.get_layer("stage3_block1_sk"), SelectiveKernel)
    assert "stage3_block1_conv2" not in {layer.name for layer in sknet.layers}
    senet = applications.SENet154(input_shape=(64, 64, 3), classes=5)
    assert senet.get_layer("stage2_block1_shortcut_conv").kernel.shape == (3, 3, 256, 512)
    assert senet.get_layer("stage1_block1_conv1").filters == 128  # the halved first 1x1
    assert senet.get_layer("dropout").rate == 0.2


def test_input_tensor_is_used_and_its_source_becomes_the_model_input():
    images = keras.Input((48, 48, 3), name="images")
    scaled = keras.layers.Rescaling(1 / 255.0)(images)
    model = applications.SKResNet18(include_top=False, input_tensor=scaled, pooling="avg")
    assert model.inputs[0] is images
    assert model.output_shape == (None, 512)
    x = random_batch((2, 48, 48, 3))
    direct = applications.SKResNet18(include_top=False, input_shape=(48, 48, 3), pooling="avg")
    direct.set_weights(model.get_weights())
    np.testing.assert_allclose(
        to_numpy(model(x)), to_numpy(direct(x / 255.0)), rtol=1e-5, atol=1e-6
    )


def senet_family(**kwargs):
    """SENet-154's structure (deep stem, halved first 1x1, 64 groups, 3x3 shortcuts, dropout)
    at depth 1/1/1/1, through the same builder, so that it saves and loads in seconds."""
    return ResNet(
        (1, 1, 1, 1),
        attention="se",
        groups=64,
        width_per_group=4,
        first_width_divisor=2,
        stem="deep",
        stem_pool="ceil",
        shortcut_kernel_size=3,
        dropout_rate=0.2,
        name="senet_family",
        **kwargs,
    )


FAMILIES = {
    "se_resnet": applications.SEResNet18,
    "se_resnext": applications.SEResNeXt50,
    "senet": senet_family,
    "sk_resnet": applications.SKResNet18,
    "sknet": applications.SKNet26,
}


def test_each_family_loads_in_a_fresh_process_with_safe_mode(tmp_path):
    """Each family's layers are registered by `import keras_se` alone. (Every constructor
    round-trips in this process through the model harness: tests/applications/
    test_every_model.py.)"""
    models = {}
    for family, constructor in FAMILIES.items():
        keras.utils.set_random_seed(0)
        model = constructor(input_shape=(32, 32, 3), classes=4)
        randomize_statistics(model, seed=4)
        models[family] = (model, random_batch((3, 32, 32, 3), seed=7))
    check_fresh_process_round_trip(models, tmp_path)


@pytest.fixture(scope="module")
def saved_se_resnet18(tmp_path_factory):
    """A trained-looking SEResNet18 (10 classes, 32px) and its weights as .weights.h5."""
    keras.utils.set_random_seed(3)
    model = applications.SEResNet18(input_shape=(32, 32, 3), classes=10)
    randomize_statistics(model, seed=3)
    path = tmp_path_factory.mktemp("weights") / "se_resnet18.weights.h5"
    model.save_weights(path)
    return model, path


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_path_loads_the_same_architecture(suffix, saved_se_resnet18, tmp_path):
    model, path = saved_se_resnet18
    if suffix == ".keras":
        path = tmp_path / "se_resnet18.keras"
        model.save(path)
    loaded = applications.SEResNet18(input_shape=(32, 32, 3), classes=10, weights=str(path))
    x = random_batch((2, 32, 32, 3))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "make, culprit",
    [
        # another architecture: the first layer that differs is named
        (lambda: applications.SKResNet18(input_shape=(32, 32, 3), classes=10), "stage1_block1_sk"),
        (lambda: applications.SEResNet34(input_shape=(32, 32, 3), classes=10), "stage1_block3"),
        # the same network with other settings
        (lambda: applications.SEResNet18(input_shape=(32, 32, 3), classes=5), "predictions"),
        (lambda: applications.SEResNet18(input_shape=(32, 32, 1), classes=10), "stem_conv1"),
        (
            lambda: applications.SEResNet18(input_shape=(32, 32, 3), reduction_ratio=8, classes=10),
            "stage1_block1_se",
        ),
        # a file with more layers than the model (Keras alone would load it silently)
        (lambda: applications.SEResNet18(input_shape=(32, 32, 3), include_top=False), "'dense'"),
    ],
)
def test_weights_of_another_architecture_are_refused_naming_the_layer(
    make, culprit, saved_se_resnet18
):
    _, path = saved_se_resnet18
    target = make()
    untouched = [to_numpy(w).copy() for w in target.weights]
    with pytest.raises(ValueError, match="does not fit") as error:
        applications.weights_file.load_weights(target, path)
    assert culprit in str(error.value)
    for weight, old in zip(target.weights, untouched, strict=True):
        np.testing.assert_array_equal(to_numpy(weight), old)


@pytest.mark.parametrize("pooling", [None, "avg"])
def test_the_full_models_file_loads_into_a_headless_model(pooling, saved_se_resnet18, tmp_path):
    """As `keras.applications` loads its notop files: the file of the full model, converted
    from timm or saved by a user, gives the features the full model computes before its
    classifier."""
    model, path = saved_se_resnet18
    features = keras.Model(model.inputs, model.get_layer("avg_pool").output)
    if pooling is None:
        features = keras.Model(model.inputs, model.get_layer("avg_pool").input)
    keras_path = tmp_path / "se_resnet18.keras"
    model.save(keras_path)
    x = random_batch((2, 32, 32, 3))
    for weights in (path, keras_path):
        headless = applications.SEResNet18(
            input_shape=(32, 32, 3), include_top=False, pooling=pooling, weights=weights
        )
        np.testing.assert_allclose(
            to_numpy(headless(x, training=False)),
            to_numpy(features(x, training=False)),
            rtol=1e-6,
            atol=1e-6,
        )
    # Still refused: the file of a larger network, which is more than a classifier on top.
    larger = tmp_path / "se_resnet34.weights.h5"
    applications.SEResNet34(input_shape=(32, 32, 3), classes=10).save_weights(larger)
    with pytest.raises(ValueError, match="does not fit"):
        applications.SEResNet18(input_shape=(32, 32, 3), include_top=False, weights=larger)


def test_the_constructor_refuses_a_mismatching_weights_file(saved_se_resnet18):
    _, path = saved_se_resnet18
    with pytest.raises(ValueError, match="stem_conv1"):
        applications.SEResNet18(input_shape=(32, 32, 4), classes=10, weights=path)


def test_a_file_that_is_not_a_weights_file_is_refused(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("not HDF5")
    with pytest.raises(ValueError, match="not a Keras weights file"):
        applications.SEResNet18(input_shape=(32, 32, 3), weights=path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(pooling="avg"), ValueError, "include_top=False"),
        (dict(include_top=False, pooling="mean"), ValueError, "pooling"),
        (dict(include_top="yes"), TypeError, "include_top"),
        (dict(classes=0), ValueError, "classes"),
        (dict(classes=10.0), TypeError, "classes"),
        (dict(classes=10**9), ValueError, r"classifier \(1000000000 classes from 512 features\)"),
        (dict(weights="imagenet", stem_pool="pad"), ValueError, "legacy_seresnet18.in1k"),
        (dict(weights="missing.weights.h5"), ValueError, "does not exist"),
        (dict(weights="model.h5"), ValueError, ".weights.h5 or .keras"),
        (dict(weights=3), TypeError, "weights"),
        (dict(input_shape=(31, 64, 3)), ValueError, "at least 32x32"),
        (dict(include_top=False, input_shape=(None, 16, 3)), ValueError, "at least 32x32"),
        (dict(input_shape=(64, 64)), ValueError, "input_shape"),
        (dict(input_shape=(64, 64, None)), ValueError, "channel"),
        (dict(input_shape=(64, 64, 0)), ValueError, "channel"),
        (
            dict(input_tensor=keras.Input((64, 64, 3)), input_shape=(64, 64, 1)),
            ValueError,
            "does not match",
        ),
        (dict(input_tensor=keras.Input((64, 3))), ValueError, "rank 4"),
        (dict(classifier_activation="softestmax"), ValueError, "classifier_activation"),
        (dict(reduction_ratio=0), ValueError, "reduction_ratio"),
        (dict(stem_pool="avg"), ValueError, "stem_pool"),
        (dict(groups=32), TypeError, "unexpected keyword argument 'groups'"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        applications.SEResNet18(**kwargs)


def test_input_tensor_must_be_a_keras_tensor():
    with pytest.raises(TypeError, match="`input_tensor` must be a Keras tensor"):
        applications.SEResNet18(input_tensor=np.zeros((1, 64, 64, 3), "float32"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(attention="cbam"), "`attention` must be one of None, 'se', 'sk'"),
        (dict(block="basic", stride_in_1x1=True), "bottleneck blocks only"),
        (dict(block="basic", groups=32), "groups=1"),
        (dict(block="preact"), "block"),
        (dict(stem="3x3"), "stem"),
        (dict(shortcut_kernel_size=2), "shortcut_kernel_size"),
        (dict(dropout_rate=1.0), "dropout_rate"),
        (dict(shortcut="identity"), "`shortcut` must be one of 'projection', 'zero_pad'"),
        (dict(block="preact_bottleneck", attention="sk"), "supports attention='se' or None"),
        (dict(block="preact_bottleneck", groups=32), "Preact-bottleneck blocks support groups=1"),
        (dict(block="preact_bottleneck", shortcut="zero_pad"), "projects its shortcut"),
        (dict(widths=(16, 32)), r"`widths` must list the planes of each of the 4 stages"),
        (dict(widths=(16, 32, 64, 0)), r"widths\[3\]"),
        # Option A can only append as many zeros as there are channels: 64 -> 256 cannot.
        (dict(shortcut="zero_pad"), r"keep or double the channels .*\[64, 256, 512"),
    ],
)
def test_builder_refuses_unknown_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet((1, 1, 1, 1), **kwargs)


def test_builder_refuses_bad_depths():
    with pytest.raises(ValueError, match="depths"):
        ResNet(())
    with pytest.raises(ValueError, match=r"depths\[1\]"):
        ResNet((2, 0, 2, 2))


def test_imagenet_error_says_where_weights_exist_or_that_none_do():
    with pytest.raises(ValueError, match=r"skresnext50_32x4d\.ra_in1k: reduction_ratio=16"):
        applications.SKNet50(weights="imagenet", reduction_ratio=8)
    with pytest.raises(ValueError, match="no public ImageNet checkpoint") as error:
        applications.SKNet101(weights="imagenet")
    assert "weights=None" in str(error.value)
    with pytest.raises(ValueError, match=r"no timm checkpoint.*named constructor"):
        ResNet((1, 1, 1, 1), weights="imagenet")
