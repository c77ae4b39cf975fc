"""Model families built on the keras-se layers, installed as `keras_se.applications`.

This folder lives at the top of the repository and is mapped to `keras_se.applications` by
`pyproject.toml`, for regular and editable installs alike. Every constructor has the
`keras.applications` signature (`include_top, weights, input_tensor, input_shape, pooling,
classes, classifier_activation, name`).

Example:
>>> from keras_se.applications import SEResNet50
>>> model = SEResNet50(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg")
>>> model.output_shape
(None, 2048)
"""

from keras_se.applications.imagenet import decode_predictions, load_image, preprocess_input
from keras_se.applications.inception import (
    ScaledResidual,
    SEBNInception,
    SEInceptionResNetV2,
    SEInceptionV3,
)
from keras_se.applications.mobilenet import PlainMobileNet, SEMobileNet, SEMobileNetV2
from keras_se.applications.pretrained import TimmTwin, imagenet_twin, timm_twin
from keras_se.applications.registry import RENAMED, ModelEntry, list_models, model_entry
from keras_se.applications.resnet import ResNet
from keras_se.applications.se_resnet import (
    PlainResNet18CIFAR,
    PlainResNet50,
    PlainResNet110CIFAR,
    PlainResNet164CIFAR,
    PlainResNeXt50,
    SENet154,
    SEResNet18,
    SEResNet18CIFAR,
    SEResNet34,
    SEResNet50,
    SEResNet101,
    SEResNet110CIFAR,
    SEResNet152,
    SEResNet164CIFAR,
    SEResNeXt50,
    SEResNeXt101,
)
from keras_se.applications.shufflenet import PlainShuffleNet, SEShuffleNet
from keras_se.applications.sk_resnet import SKNet26, SKNet50, SKNet101, SKResNet18, SKResNet34
from keras_se.applications.timm_convert import convert_timm, load_timm_weights
from keras_se.applications.vgg import SEVGG16, PlainVGG16

__all__ = [
    "SEVGG16",
    "ModelEntry",
    "PlainMobileNet",
    "PlainResNeXt50",
    "PlainResNet18CIFAR",
    "PlainResNet50",
    "PlainResNet110CIFAR",
    "PlainResNet164CIFAR",
    "PlainShuffleNet",
    "PlainVGG16",
    "ResNet",
    "SEBNInception",
    "SEInceptionResNetV2",
    "SEInceptionV3",
    "SEMobileNet",
    "SEMobileNetV2",
    "SENet154",
    "SEResNeXt50",
    "SEResNeXt101",
    "SEResNet18",
    "SEResNet18CIFAR",
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet110CIFAR",
    "SEResNet152",
    "SEResNet164CIFAR",
    "SEShuffleNet",
    "SKNet26",
    "SKNet50",
    "SKNet101",
    "SKResNet18",
    "SKResNet34",
    "ScaledResidual",
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
]


def __getattr__(name):
    """`applications.ResNet50` and the other renamed plain twins say what they are called now
    (a module `__getattr__`, PEP 562, runs only for names the module does not have)."""
    if name in RENAMED:
        raise AttributeError(
            f"keras_se.applications.{name} is now {RENAMED[name]}: the old name shadowed "
            f"keras.applications.{name}, a different network."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
