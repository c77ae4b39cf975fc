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

from keras_se.applications.inception import (
    ScaledResidual,
    SEBNInception,
    SEInceptionResNetV2,
    SEInceptionV3,
)
from keras_se.applications.mobilenet import SEMobileNet, SEMobileNetV2
from keras_se.applications.resnet import (
    ResNet,
    SENet154,
    SEResNet18,
    SEResNet34,
    SEResNet50,
    SEResNet101,
    SEResNet152,
    SEResNeXt50,
    SEResNeXt101,
    SKNet26,
    SKNet50,
    SKNet101,
    SKResNet18,
    SKResNet34,
)

__all__ = [
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
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet152",
    "SKNet26",
    "SKNet50",
    "SKNet101",
    "SKResNet18",
    "SKResNet34",
    "ScaledResidual",
]
