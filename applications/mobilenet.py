"""SE-MobileNet and SE-MobileNetV2: the `keras.applications` MobileNets with SE blocks.

Both are the `keras.applications` topologies rebuilt with `SqueezeExcite` layers inserted (see
`keras_twin.rebuild_with_attention`), so `alpha`, `depth_multiplier` and the layer names are those
of `keras.applications.MobileNet` / `MobileNetV2`, which are their plain twins.
"""

import keras
from keras_se.applications import keras_twin
from keras_se.applications.registry import register_model

from keras_se.layers import make_divisible


@register_model(family="mobilenet", attention="se", plain_twin="PlainMobileNet")
def SEMobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_mobilenet",
    *,
    reduction_ratio=16,
):
    """SE-MobileNet: MobileNet v1 with SE after each of its 13 pointwise convolutions.

    The SENet paper's SE-MobileNet (Table 3): `conv_pw_{i}_se` follows `conv_pw_{i}_relu`.
    With alpha 1.0 it has 4,718,044 trainable parameters, 486,068 more than MobileNet.

    Args:
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        alpha: width multiplier, as in `keras.applications.MobileNet`.
        depth_multiplier: depth multiplier of the depthwise convolutions.
        dropout: dropout rate before the classifier.
        include_top: whether to build the classifier.
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        reduction_ratio: reduction ratio r of the SE layers.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEMobileNet(alpha=0.5, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    >>> model.output_shape, model.get_layer("conv_pw_13_se").reduced_channels_
    ((None, 512), 32)
    """
    return _mobilenet(keras_twin.se_after(r"conv_pw_(\d+)_relu", "conv_pw_{}_se"), **locals())


@register_model(family="mobilenet", attention=None)
def PlainMobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="mobilenet",
):
    """MobileNet v1, the plain twin of `SEMobileNet`: `keras.applications.MobileNet` rebuilt
    with keras-se's `DepthwiseConv2D`.

    The layers, names, weights and outputs are those of `keras.applications.MobileNet` (its
    weights files load into it); only the depthwise convolutions differ in how they compute,
    so that they stay fast where XLA compiles them on the CPU (JAX, `jit_compile=True`). The
    arguments are those of `SEMobileNet` without `reduction_ratio`.

    Example:
    >>> model = PlainMobileNet(
    ...     alpha=0.25, include_top=False, input_shape=(32, 32, 3), pooling="avg"
    ... )
    >>> type(model.get_layer("conv_dw_1")).__module__, model.output_shape
    ('keras_se.layers.grouped_conv', (None, 256))
    """
    return _mobilenet(lambda layer_name: None, **locals())


def _mobilenet(attention_name, reduction_ratio=16, **arguments):
    """`keras.applications.MobileNet` with SE after the layers `attention_name` selects."""
    return keras_twin.se_twin(
        keras.applications.MobileNet,
        attention_name=attention_name,
        reduction_ratio=reduction_ratio,
        default_size=224,
        min_size=32,
        # keras.applications.MobileNet: the last pointwise convolution has int(1024 alpha)
        head_features=lambda alpha, **_: int(1024 * alpha),
        **arguments,
    )


@register_model(family="mobilenet", attention="se", plain_twin="keras.applications.MobileNetV2")
def SEMobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_mobilenet_v2",
    *,
    reduction_ratio=4,
    divisor=8,
):
    """SE-MobileNetV2: MobileNetV2 with SE after the depthwise conv of every inverted residual.

    The MnasNet / MobileNetV3 placement: `block_{i}_se` (`expanded_conv_se` for the first
    block) follows `block_{i}_depthwise_relu`, on the expanded channels, before the linear
    projection. The SE width is the expanded width divided by `reduction_ratio`, rounded to the
    nearest multiple of `divisor` (timm's `make_divisible`), as in MobileNetV3.

    Args:
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        alpha: width multiplier, as in `keras.applications.MobileNetV2`.
        include_top: whether to build the classifier.
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        reduction_ratio: the SE width is `expanded channels / reduction_ratio` (4: MobileNetV3).
        divisor: the SE width is rounded to a multiple of this (None: floor, as in SENet).

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEMobileNetV2(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    >>> model.output_shape, model.get_layer("block_16_se").reduced_channels_
    ((None, 1280), 240)
    """
    return keras_twin.se_twin(
        keras.applications.MobileNetV2,
        attention_name=keras_twin.se_after(r"(block_\d+|expanded_conv)_depthwise_relu", "{}_se"),
        reduction_ratio=reduction_ratio,
        se_options={"divisor": divisor},
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=224,
        min_size=32,
        # keras.applications.MobileNetV2: 1280 features, widened (to a multiple of 8) only
        head_features=lambda alpha: 1280 if alpha <= 1.0 else make_divisible(1280 * alpha, 8),
        alpha=alpha,
    )
