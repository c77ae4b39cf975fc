"""The models the benchmarks compare, and building any application model by name.

Every SE/SK model of the benchmarks is paired with its plain twin, built by the same builder
with the attention off: `PlainResNet50` / `PlainResNeXt50` are `keras_se.applications.ResNet`
presets with `attention=None`, `PlainMobileNet` is `keras.applications.MobileNet` rebuilt with
keras-se's depthwise convolution as `SEMobileNet` is, and `InceptionV3` is the `keras.applications`
model that `SEInceptionV3` is rebuilt from. The ResNet-50 pair uses timm's layout
(stride on the 3x3, padded stem pool) so that both have an exact timm twin for the peer
column; `timm_name` is the timm model with the same structure: the same trainable parameter
count, except that Keras' InceptionV3 has no BatchNorm scale (timm's `inception_v3` has 17,216
more parameters), timm's `vgg16_bn` has convolution biases before its BatchNorms (4,224 more),
and timm's `mobilenetv1_100` uses ReLU where Keras' MobileNet uses ReLU6. `PlainVGG16` and
`SEVGG16` are built by one builder with the attention off and on.
"""

import ast
import dataclasses
import inspect

import keras
from keras_se.applications import pretrained, registry
from keras_se.applications.pretrained import TIMM_LAYOUT


@dataclasses.dataclass(frozen=True)
class BenchModel:
    """One model of the benchmarks.

    Attributes:
        name: the name in tables and on the command line.
        constructor: the constructor's name, resolved by `model_constructor`.
        options: keyword arguments of the constructor that fix the architecture.
        timm_name: the timm model of the same structure, measured in the peer column.

    Example:
    >>> BENCH_MODELS["SKNet50"].plain_twin, BENCH_MODELS["SKNet50"].timm_name
    ('PlainResNeXt50', 'skresnext50_32x4d')
    """

    name: str
    constructor: str
    options: dict
    timm_name: str | None

    @property
    def plain_twin(self):
        """The benchmark name of the model without attention (the registry's plain twin),
        None for a plain model."""
        if self.constructor not in registry.list_models():
            return None
        twin = registry.model_entry(self.constructor).plain_twin
        return twin and twin.removeprefix("keras.applications.")

    def build(self, image_size, classes=1000):
        """The model at `image_size` with a `classes`-way head that outputs logits.

        Example:
        >>> BENCH_MODELS["SEMobileNet"].build(64, classes=10).output_shape
        (None, 10)
        """
        return build_model(self.constructor, image_size, classes=classes, **self.options)


BENCH_MODELS = {
    model.name: model
    for model in (
        BenchModel("PlainResNet50", "PlainResNet50", TIMM_LAYOUT, "resnet50"),
        BenchModel("SEResNet50", "SEResNet50", TIMM_LAYOUT, "seresnet50"),
        BenchModel("PlainResNeXt50", "PlainResNeXt50", {}, "resnext50_32x4d"),
        BenchModel("SEResNeXt50", "SEResNeXt50", {}, "seresnext50_32x4d"),
        BenchModel("SKNet50", "SKNet50", {}, "skresnext50_32x4d"),
        BenchModel("PlainMobileNet", "PlainMobileNet", {}, "mobilenetv1_100"),
        BenchModel("SEMobileNet", "SEMobileNet", {}, None),
        BenchModel("InceptionV3", "keras.applications.InceptionV3", {}, "inception_v3"),
        BenchModel("SEInceptionV3", "SEInceptionV3", {}, None),
        BenchModel("PlainVGG16", "PlainVGG16", {}, "vgg16_bn"),
        BenchModel("SEVGG16", "SEVGG16", {}, None),
        BenchModel("PlainResNet110CIFAR", "PlainResNet110CIFAR", {}, None),
        BenchModel("SEResNet110CIFAR", "SEResNet110CIFAR", {}, None),
        BenchModel("PlainResNet164CIFAR", "PlainResNet164CIFAR", {}, None),
        BenchModel("SEResNet164CIFAR", "SEResNet164CIFAR", {}, None),
        BenchModel("PlainShuffleNet", "PlainShuffleNet", {}, None),
        BenchModel("SEShuffleNet", "SEShuffleNet", {}, None),
    )
}
ATTENTION_MODELS = tuple(name for name, model in BENCH_MODELS.items() if model.plain_twin)


def model_constructor(name):
    """`(constructor, options)` for a model name.

    `name` is a `keras_se.applications` constructor (`"SEResNet50"`), a `keras.applications`
    one (`"DenseNet121"`, or `"keras.applications.ResNet50"` where keras-se has the same name),
    or a timm twin (`"seresnet50"`: the keras-se constructor with that twin's settings).

    Raises:
        ValueError: the name is none of these; the message lists the keras-se constructors.

    Example:
    >>> constructor, options = model_constructor("seresnet50")
    >>> constructor.__name__, options
    ('SEResNet50', {'stride_in_1x1': False, 'stem_pool': 'pad'})
    """
    if not isinstance(name, str):
        raise TypeError(f"The model name must be a string, got {name!r}.")
    if name in registry.list_models():
        return registry.model_entry(name).constructor, {}
    theirs = {
        short: constructor
        for short in dir(keras.applications)
        if short[:1].isupper()
        and inspect.isfunction(constructor := getattr(keras.applications, short))
    }
    short = name.removeprefix("keras.applications.")
    if short in theirs:
        return theirs[short], {}
    try:
        twin = pretrained.timm_twin(name)
    except ValueError:
        raise ValueError(
            registry.unknown_model_message(name) + " Also accepted: keras.applications "
            "constructors (e.g. InceptionV3, or keras.applications.ResNet50) and timm twin "
            "names (e.g. seresnet50, legacy_seresnet50, skresnext50_32x4d)."
        ) from None
    return registry.model_entry(twin.constructor).constructor, dict(twin.settings)


def build_model(name, image_size=None, classes=1000, **options):
    """Build the model `name` (see `model_constructor`) with its classifier, random weights.

    Args:
        name: the model name.
        image_size: square input size; None for the constructor's default (224, 299 for
            Inception).
        classes: classes of the head; the head outputs logits.
        **options: further constructor keywords (e.g. `stem_pool="pad"`).

    Example:
    >>> build_model("SEResNet50", 64, classes=10, stem_pool="pad").output_shape
    (None, 10)
    """
    constructor, twin_options = model_constructor(name)
    input_shape = None
    if image_size is not None:
        size = int(image_size)
        channels_last = keras.config.image_data_format() == "channels_last"
        input_shape = (size, size, 3) if channels_last else (3, size, size)
    return constructor(
        weights=None,
        input_shape=input_shape,
        classes=classes,
        classifier_activation=None,
        **{**twin_options, **options},
    )


def parse_options(assignments):
    """`{"key": value}` from `["key=value", ...]`, each value a Python literal or a bare word.

    Example:
    >>> parse_options(["stride_in_1x1=False", "stem_pool=pad", "reduction_ratio=8"])
    {'stride_in_1x1': False, 'stem_pool': 'pad', 'reduction_ratio': 8}
    """
    options = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(
                f"Options are KEY=VALUE with a Python name as KEY, got {assignment!r}."
            )
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options
