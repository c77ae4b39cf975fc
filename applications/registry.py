"""The one list of keras-se's models, read by the CLI, the benchmarks, the weights and the docs.

Every public constructor registers itself with `@register_model`, as timm's models do, with
what the tools need to know about it: its family, its attention, its default input size and
its plain twin (the same network without attention, the baseline of the overhead
benchmarks). Its timm twins and their ImageNet checkpoints are listed once, in
`keras_se.applications.pretrained`.

Example:
>>> from keras_se.applications import list_models, model_entry
>>> list_models("SKNet*")
['SKNet26', 'SKNet50', 'SKNet101']
>>> model_entry("SEResNeXt50").plain_twin
'PlainResNeXt50'
"""

import dataclasses
import difflib
import fnmatch
import re


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: the constructor's name, as `keras-se train --model` and `keras-se cost` take it.
        constructor: the constructor (`keras_se.applications.<name>`).
        family: `"resnet"`, `"inception"`, `"mobilenet"`, `"shufflenet"` or `"vgg"`: the
            module that builds it.
        attention: `"se"`, `"sk"` or None (a plain twin).
        default_size: the square input size of the ImageNet model (224, or 299 for the
            `keras.applications` Inceptions).
        min_size: the smallest square input the constructor accepts (32, or 75 for the
            `keras.applications` Inceptions).
        plain_twin: the model name of the same network without attention, where one exists:
            a registered name or a `keras.applications` one (`"keras.applications.InceptionV3"`).

    Example:
    >>> model_entry("SEInceptionV3").default_size, model_entry("SEInceptionV3").min_size
    (299, 75)
    """

    name: str
    constructor: object
    family: str
    attention: str | None
    default_size: int
    min_size: int
    plain_twin: str | None

    @property
    def timm_twins(self):
        """The timm checkpoints of models with this model's structure (`pretrained.TimmTwin`,
        one per pretrained tag), possibly none.

        Example:
        >>> [twin.pretrained_name for twin in model_entry("SEResNeXt50").timm_twins][1:]
        ['seresnext50_32x4d.racm_in1k', 'seresnext50_32x4d.gluon_in1k']
        """
        from keras_se.applications.pretrained import TWINS

        return tuple(twin for twin in TWINS if twin.constructor == self.name)


_MODELS = {}


def register_model(*, family, attention, default_size=224, min_size=32, plain_twin=None):
    """Decorator that adds a constructor to the registry under its function name.

    Args:
        family: the family name (see `ModelEntry`).
        attention: `"se"`, `"sk"` or None.
        default_size: the default square input size.
        min_size: the smallest square input size.
        plain_twin: the plain twin's model name, for models with attention.

    Example:
    >>> @register_model(family="example", attention=None)
    ... def TinyExample(weights=None):
    ...     return None
    >>> model_entry("TinyExample").family
    'example'
    >>> _ = _MODELS.pop("TinyExample")  # keep the registry to the real models
    """

    def register(constructor):
        name = constructor.__name__
        if name in _MODELS:
            raise ValueError(f"A model named {name!r} is already registered.")
        _MODELS[name] = ModelEntry(
            name, constructor, family, attention, default_size, min_size, plain_twin
        )
        return constructor

    return register


def list_models(pattern="*", *, family=None, attention=None, pretrained=False):
    """The registered model names in natural order (`SEResNet50` before `SEResNet101`), like
    timm's `list_models`.

    Args:
        pattern: a shell-style pattern of names (`"SE*"`, `"*ResNeXt*"`), case-sensitive.
        family: only the models of this family.
        attention: only the models with this attention (`"se"`, `"sk"`).
        pretrained: only the models with ImageNet weights (`weights="imagenet"`).

    Example:
    >>> list_models("SEResNeXt*", pretrained=True)
    ['SEResNeXt50', 'SEResNeXt101']
    """
    return sorted(
        (
            name
            for name, entry in _MODELS.items()
            if fnmatch.fnmatchcase(name, pattern)
            and family in (None, entry.family)
            and attention in (None, entry.attention)
            and (entry.timm_twins or not pretrained)
        ),
        key=_natural_order,
    )


def _natural_order(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def model_entry(name):
    """The registry entry of a model name.

    Raises:
        TypeError: `name` is not a string.
        ValueError: no model has this name; the message suggests the nearest one.

    Example:
    >>> model_entry("SEResnet50")
    Traceback (most recent call last):
    ...
    ValueError: Unknown model 'SEResnet50'; did you mean 'SEResNet50'? ...
    """
    if not isinstance(name, str):
        raise TypeError(f"The model name must be a string, got {name!r}.")
    if name not in _MODELS:
        raise ValueError(unknown_model_message(name))
    return _MODELS[name]


# Plain twins renamed so that they do not shadow `keras.applications` models of the same name,
# which are different networks (ResNet50 there has convolution biases).
RENAMED = {
    "MobileNet": "PlainMobileNet",
    "ResNet50": "PlainResNet50",
    "ResNeXt50": "PlainResNeXt50",
}


def unknown_model_message(name):
    """The error message for a name that is not a registered model: the nearest name, then
    every name.

    Example:
    >>> unknown_model_message("decode_predictions").split(";")[0]
    "Unknown model 'decode_predictions'"
    >>> unknown_model_message("ResNet50")
    "Unknown model 'ResNet50'; keras-se's plain twin ResNet50 is now called 'PlainResNet50'."
    """
    if name in RENAMED:
        return (
            f"Unknown model {name!r}; keras-se's plain twin {name} is now called {RENAMED[name]!r}."
        )
    by_lower_case = {known.lower(): known for known in _MODELS}
    close = difflib.get_close_matches(name.lower(), by_lower_case, n=1, cutoff=0.75)
    nearest = by_lower_case[close[0]] if close else None
    hint = f"; did you mean {nearest!r}?" if nearest else ";"
    return f"Unknown model {name!r}{hint} Models: {', '.join(list_models())}."
