"""The model registry: every public constructor is in it once, helpers are not, and what it
says about each model (twins, default size, attention) is true of the model."""

import inspect
import re

import keras
import pytest
from keras_se.applications import pretrained, registry

from keras_se import SelectiveKernel, SqueezeExcite, applications

# The public names of keras_se.applications that are not models.
NOT_MODELS = {
    "ModelEntry",
    "ResNet",  # the builder every ResNet constructor calls
    "ScaledResidual",  # a layer
    "TimmTwin",
    "convert_timm",
    "decode_predictions",
    "imagenet_twin",
    "list_models",
    "load_image",
    "load_timm_weights",
    "model_entry",
    "preprocess_input",
    "timm_twin",
}


def test_every_public_constructor_is_registered_once_and_nothing_else():
    models = applications.list_models()
    assert len(models) == len(set(models)) == 31
    assert set(models) == set(applications.__all__) - NOT_MODELS
    for name in models:
        entry = applications.model_entry(name)
        assert entry.name == name and entry.constructor is getattr(applications, name)
        assert inspect.signature(entry.constructor).parameters["weights"].default is None
    # The negative control: the helpers exported next to the constructors are refused.
    for name in NOT_MODELS:
        with pytest.raises(ValueError, match=f"Unknown model '{name}'"):
            applications.model_entry(name)


def test_the_pretrained_models_are_those_with_a_timm_twin():
    with_twins = {twin.constructor for twin in pretrained.TWINS}
    with_weights = applications.list_models(pretrained=True)
    assert set(with_weights) == with_twins and len(with_weights) == len(with_twins) == 11
    assert [t.name for t in applications.model_entry("SENet154").timm_twins] == [
        "legacy_senet154",
        "senet154",
    ]
    assert applications.model_entry("SKNet26").timm_twins == ()


def test_names_are_in_natural_order_and_filters_select_by_pattern_family_and_attention():
    assert applications.list_models("SEResNet*") == [
        "SEResNet18",
        "SEResNet18CIFAR",
        "SEResNet34",
        "SEResNet50",
        "SEResNet101",
        "SEResNet110CIFAR",
        "SEResNet152",
        "SEResNet164CIFAR",
    ]
    assert applications.list_models("SEResNeXt*") == ["SEResNeXt50", "SEResNeXt101"]
    assert applications.list_models(family="inception") == [
        "SEBNInception",
        "SEInceptionResNetV2",
        "SEInceptionV3",
    ]
    assert applications.list_models(attention="sk") == [
        "SKNet26",
        "SKNet50",
        "SKNet101",
        "SKResNet18",
        "SKResNet34",
    ]
    models = applications.list_models()
    plain = [name for name in models if applications.model_entry(name).attention is None]
    assert plain == [
        "PlainMobileNet",
        "PlainResNeXt50",
        "PlainResNet18CIFAR",
        "PlainResNet50",
        "PlainResNet110CIFAR",
        "PlainResNet164CIFAR",
        "PlainShuffleNet",
        "PlainVGG16",
    ]
    assert applications.list_models(family="vgg") == ["PlainVGG16", "SEVGG16"]
    assert applications.list_models(family="shufflenet") == ["PlainShuffleNet", "SEShuffleNet"]


def test_plain_twins_exist_and_have_no_attention():
    twins = {}
    for name in applications.list_models():
        twin = applications.model_entry(name).plain_twin
        if twin is None:
            continue
        twins[name] = twin
        if twin.startswith("keras.applications."):
            assert callable(getattr(keras.applications, twin.split(".")[-1]))
        else:
            assert applications.model_entry(twin).attention is None
    assert twins == {
        "SEInceptionResNetV2": "keras.applications.InceptionResNetV2",
        "SEInceptionV3": "keras.applications.InceptionV3",
        "SEMobileNet": "PlainMobileNet",
        "SEMobileNetV2": "keras.applications.MobileNetV2",
        "SEResNeXt50": "PlainResNeXt50",
        "SEResNet18CIFAR": "PlainResNet18CIFAR",
        "SEResNet110CIFAR": "PlainResNet110CIFAR",
        "SEResNet164CIFAR": "PlainResNet164CIFAR",
        "SEShuffleNet": "PlainShuffleNet",
        "SEVGG16": "PlainVGG16",
        "SEResNet50": "PlainResNet50",
        "SKNet50": "PlainResNeXt50",
    }


@pytest.mark.parametrize("name", ["SEBNInception", "SEInceptionV3", "SKResNet18"])
def test_default_size_and_attention_are_those_of_the_built_model(name):
    entry = applications.model_entry(name)
    model = entry.constructor(weights=None)
    size = entry.default_size
    assert model.input_shape == (None, size, size, 3)
    layer_type = {"se": SqueezeExcite, "sk": SelectiveKernel}[entry.attention]
    assert any(isinstance(layer, layer_type) for layer in model.layers)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SEResnet50", "did you mean 'SEResNet50'?"),
        ("SKNet5", "did you mean 'SKNet50'?"),
        ("seresnext50_32x4d", "did you mean 'SEResNeXt50'?"),
        ("decode_predictions", "Unknown model 'decode_predictions'; Models: PlainMobileNet, "),
        ("MobileNet", "plain twin MobileNet is now called 'PlainMobileNet'."),
    ],
)
def test_an_unknown_name_gets_the_nearest_model(name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        applications.model_entry(name)
    with pytest.raises(TypeError, match="must be a string, got 50"):
        applications.model_entry(50)


def test_no_public_name_shadows_a_keras_application():
    shadowed = set(applications.__all__) & set(dir(keras.applications))
    assert not shadowed
    # the negative control: the comparison sees keras.applications' constructors
    assert "ResNet50" in dir(keras.applications) and "MobileNet" in dir(keras.applications)


@pytest.mark.parametrize("old, new", sorted(registry.RENAMED.items()))
def test_a_renamed_plain_twin_names_its_new_name(old, new):
    assert new in applications.list_models(attention=None)
    with pytest.raises(AttributeError, match=f"keras_se.applications.{old} is now {new}"):
        getattr(applications, old)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchNet'"):
        applications.NoSuchNet  # noqa: B018


def test_a_second_model_with_the_same_name_is_refused():
    with pytest.raises(ValueError, match="'SEResNet50' is already registered"):
        registry.register_model(family="resnet", attention="se")(applications.SEResNet50)


def _python_literal(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_each_written_docstring_names_its_timm_twins_and_their_settings():
    for name in applications.list_models(family="resnet"):
        entry = applications.model_entry(name)
        doc = " ".join(entry.constructor.__doc__.split())
        for twin in entry.timm_twins:
            assert f"`{twin.pretrained_name}`" in doc, (name, twin.pretrained_name)
            for key, value in twin.settings.items():
                assert f"{key}={_python_literal(value)}" in doc, (name, twin.name, key)
        if not entry.timm_twins:
            assert '`weights="imagenet"` is refused' in doc, name
