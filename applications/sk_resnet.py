"""SK-ResNet-18/34 (timm) and SKNet-26/50/101 (Li et al.): presets of the one ResNet builder
(`keras_se.applications.resnet.ResNet`) with a `SelectiveKernel` in place of a 3x3.

Each constructor takes the `keras.applications` arguments (documented in
`ResNet`) and, keyword-only, the options that select a timm twin's layout (also documented
in `ResNet`). `weights="imagenet"` loads the checkpoint of the timm twin the options match,
converted and cached on first use (`keras_se.applications.pretrained`).
"""

from keras_se.applications.registry import register_model
from keras_se.applications.resnet import RESNEXT_32X4D, preset

# timm's skresnet18/34: each SK layer splits its input between the two branches.
_SK_RESNET_OPTIONS = {"split_input": True, "min_channels": 16, "divisor": 16}
# The SKNet paper's SK unit: M=2 branches, L=32 (the attention's minimum width).
_SKNET = {"attention": "sk", **RESNEXT_32X4D, "attention_options": {"min_channels": 32}}


@register_model(family="resnet", attention="sk")
def SKResNet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="sk_resnet18",
    *,
    reduction_ratio=8,
):
    """SK-ResNet-18: basic blocks 2/2/2/2 whose first 3x3 is a `SelectiveKernel`.

    timm's `skresnet18` (ImageNet: `skresnet18.ra_in1k`): each SK layer splits its input
    between a 3x3 and a dilated 3x3 branch.

    Example:
    >>> SKResNet18(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(
        SKResNet18,
        locals(),
        depths=(2, 2, 2, 2),
        block="basic",
        attention="sk",
        attention_options=_SK_RESNET_OPTIONS,
    )


@register_model(family="resnet", attention="sk")
def SKResNet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="sk_resnet34",
    *,
    reduction_ratio=8,
):
    """SK-ResNet-34: basic blocks 3/4/6/3 whose first 3x3 is a `SelectiveKernel`.

    timm's `skresnet34` (ImageNet: `skresnet34.ra_in1k`).

    Example:
    >>> SKResNet34(include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 512)
    """
    return preset(
        SKResNet34,
        locals(),
        depths=(3, 4, 6, 3),
        block="basic",
        attention="sk",
        attention_options=_SK_RESNET_OPTIONS,
    )


@register_model(family="resnet", attention="sk")
def SKNet26(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="sknet26",
    *,
    reduction_ratio=16,
):
    """SKNet-26 (Li et al.): SK-ResNeXt 32x4d bottlenecks 2/2/2/2, M=2, L=32.

    No timm model has this structure (its parameter count is the paper's formula's), so
    `weights="imagenet"` is refused.

    Example:
    >>> SKNet26(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(SKNet26, locals(), depths=(2, 2, 2, 2), **_SKNET)


@register_model(family="resnet", attention="sk", plain_twin="PlainResNeXt50")
def SKNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="sknet50",
    *,
    reduction_ratio=16,
):
    """SKNet-50 (Li et al.): SK-ResNeXt 32x4d bottlenecks 3/4/6/3, M=2, L=32.

    timm's `skresnext50_32x4d` (ImageNet: `skresnext50_32x4d.ra_in1k`).

    Example:
    >>> SKNet50(include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2048)
    """
    return preset(SKNet50, locals(), depths=(3, 4, 6, 3), **_SKNET)


@register_model(family="resnet", attention="sk")
def SKNet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="sknet101",
    *,
    reduction_ratio=16,
):
    """SKNet-101 (Li et al.): SK-ResNeXt 32x4d bottlenecks 3/4/23/3, M=2, L=32.

    No timm model has this structure, so `weights="imagenet"` is refused.

    Example:
    >>> SKNet101(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(SKNet101, locals(), depths=(3, 4, 23, 3), **_SKNET)
