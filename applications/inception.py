"""SE-Inception-v3, SE-Inception-ResNet-v2 and SE-BN-Inception (Hu et al., Table 2).

SE-Inception-v3 and SE-Inception-ResNet-v2 are the `keras.applications` topologies rebuilt with
a `SqueezeExcite` inserted (see `keras_twin.rebuild_with_attention`), so their plain twins are
`keras.applications.InceptionV3` / `InceptionResNetV2` themselves and every layer keeps its
Keras name. SE-BN-Inception has no Keras twin: it is built here after the SENet authors' Caffe
model (`SE-BN-Inception.prototxt`), with its blob names as layer names.
"""

import keras
from keras_se.applications import keras_twin, signature, weights_file
from keras_se.applications.conv_bn import conv_bn
from keras_se.applications.registry import register_model

from keras_se.layers import SqueezeExcite, common


@keras.saving.register_keras_serializable(package="keras_se")
class ScaledResidual(keras.layers.Layer):
    """`shortcut + scale * residual`: the addition of an Inception-ResNet block.

    `keras.applications.InceptionResNetV2` uses an unregistered `CustomScaleLayer` for this,
    which a `.keras` file cannot load in safe mode; this registered layer replaces it.

    Args:
        scale: the factor applied to the residual branch.
        **kwargs: base layer arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> shortcut, residual = np.ones((1, 2), "float32"), np.full((1, 2), 5.0, "float32")
    >>> keras.ops.convert_to_numpy(ScaledResidual(0.1)([shortcut, residual]))
    array([[1.5, 1.5]], dtype=float32)
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = common.check_number("scale", scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + residual * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@register_model(
    family="inception",
    attention="se",
    default_size=299,
    min_size=75,
    plain_twin="keras.applications.InceptionV3",
)
def SEInceptionV3(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_inception_v3",
    *,
    reduction_ratio=16,
):
    """SE-Inception-v3: `keras.applications.InceptionV3` with SE on each Inception module.

    The SE layers (`mixed0_se` ... `mixed10_se`) follow the output of each of the 11 modules.
    With reduction ratio 16 they add 1,661,620 parameters to InceptionV3.

    Args:
        include_top: whether to build the classifier (`avg_pool` -> `predictions`).
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 299x299x3 with the top
            and to any size (at least 75x75) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        reduction_ratio: reduction ratio r of the SE layers.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEInceptionV3(include_top=False, input_shape=(75, 75, 3), pooling="avg")
    >>> model.output_shape, model.get_layer("mixed10_se").reduced_channels_
    ((None, 2048), 128)
    """
    return keras_twin.se_twin(
        keras.applications.InceptionV3,
        attention_name=keras_twin.se_after(r"(mixed\d+)", "{}_se"),
        reduction_ratio=reduction_ratio,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=299,
        min_size=75,
        head_features=lambda: 2048,
    )


@register_model(
    family="inception",
    attention="se",
    default_size=299,
    min_size=75,
    plain_twin="keras.applications.InceptionResNetV2",
)
def SEInceptionResNetV2(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_inception_resnet_v2",
    *,
    reduction_ratio=16,
):
    """SE-Inception-ResNet-v2: `keras.applications.InceptionResNetV2` with SE in each block.

    The SE layer (`block35_1_se`, ..., `block8_10_se`) rescales the residual branch after its
    1x1 projection, before the scaled addition: the paper's standard integration, not SE-POST.
    The addition is a registered `ScaledResidual` layer, so the model loads in safe mode.

    Args:
        include_top: whether to build the classifier (`avg_pool` -> `predictions`).
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 299x299x3 with the top
            and to any size (at least 75x75) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        reduction_ratio: reduction ratio r of the SE layers.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEInceptionResNetV2(include_top=False, input_shape=(75, 75, 3), pooling="avg")
    >>> model.output_shape, model.get_layer("block17_1_se").reduced_channels_
    ((None, 1536), 68)
    """
    return keras_twin.se_twin(
        keras.applications.InceptionResNetV2,
        attention_name=keras_twin.se_after(r"(block(?:35|17|8)_\d+)_conv", "{}_se"),
        reduction_ratio=reduction_ratio,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=299,
        min_size=75,
        head_features=lambda: 1536,
        replace={"CustomScaleLayer": lambda config: ScaledResidual(**config)},
    )


# BN-Inception's modules as in the Caffe model: name, 1x1, 3x3 reduce, 3x3, double-3x3
# reduce, double 3x3, pool type, pool projection, stride. Stride-2 modules have no 1x1 and
# pass the max-pooled input through unprojected.
_BN_INCEPTION_MODULES = (
    ("3a", 64, 64, 64, 64, 96, "avg", 32, 1),
    ("3b", 64, 64, 96, 64, 96, "avg", 64, 1),
    ("3c", 0, 128, 160, 64, 96, "max", 0, 2),
    ("4a", 224, 64, 96, 96, 128, "avg", 128, 1),
    ("4b", 192, 96, 128, 96, 128, "avg", 128, 1),
    ("4c", 160, 128, 160, 128, 160, "avg", 128, 1),
    ("4d", 96, 128, 192, 160, 192, "avg", 128, 1),
    ("4e", 0, 128, 192, 192, 256, "max", 0, 2),
    ("5a", 352, 192, 320, 160, 224, "avg", 128, 1),
    ("5b", 352, 192, 320, 192, 224, "max", 128, 1),
)


class _BNInceptionLayers:
    """Conv-BN-ReLU units and pools of BN-Inception in one data format (Caffe semantics)."""

    def __init__(self, data_format):
        self.data_format = data_format

    def conv(self, x, filters, kernel_size, name, strides=1):
        names = {"pad": f"{name}_pad", "conv": name, "bn": f"{name}_bn", "relu": f"{name}_relu"}
        return conv_bn(
            x, filters, kernel_size, names=names, data_format=self.data_format, strides=strides
        )

    def max_pool(self, x, strides, name):
        # "same" equals Caffe's ceil mode wherever the size is even (every pool at 224 px)
        # and keeps the branches of odd-sized stride-2 modules the same size.
        return keras.layers.MaxPooling2D(
            3, strides, padding="same", data_format=self.data_format, name=name
        )(x)

    def avg_pool(self, x, name):
        # Caffe and PyTorch count the zero padding in the average; Keras' "same" does not.
        x = keras.layers.ZeroPadding2D(1, data_format=self.data_format, name=f"{name}_pad")(x)
        return keras.layers.AveragePooling2D(3, 1, data_format=self.data_format, name=name)(x)

    def module(self, x, spec):
        name, n1x1, n3x3_reduce, n3x3, double_reduce, n_double, pool, projection, strides = spec
        prefix = f"inception_{name}_"
        branches = []
        if n1x1:
            branches.append(self.conv(x, n1x1, 1, f"{prefix}1x1"))
        y = self.conv(x, n3x3_reduce, 1, f"{prefix}3x3_reduce")
        branches.append(self.conv(y, n3x3, 3, f"{prefix}3x3", strides))
        y = self.conv(x, double_reduce, 1, f"{prefix}double_3x3_reduce")
        y = self.conv(y, n_double, 3, f"{prefix}double_3x3_1")
        branches.append(self.conv(y, n_double, 3, f"{prefix}double_3x3_2", strides))
        if pool == "avg":
            y = self.avg_pool(x, f"{prefix}pool")
        else:
            y = self.max_pool(x, strides, f"{prefix}pool")
        if projection:
            y = self.conv(y, projection, 1, f"{prefix}pool_proj")
        branches.append(y)
        return keras.layers.Concatenate(
            axis=common.channel_axis(self.data_format), name=f"{prefix}output"
        )(branches)


@register_model(family="inception", attention="se")
def SEBNInception(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_bn_inception",
    *,
    reduction_ratio=16,
):
    """SE-BN-Inception: BN-Inception with SE on the output of each of its 10 Inception modules.

    The SENet paper's SE-BN-Inception (Table 2), after the authors' Caffe model: 11,931,622
    parameters, 646,398 of them in the SE layers (`inception_3a_se` ... `inception_5b_se`).
    Layer names are the Caffe blob names (`conv1_7x7_s2`, `inception_4a_double_3x3_1`, ...,
    with `_bn` and `_relu` suffixes). Convolutions have no bias; BatchNorm epsilon 1e-5.

    Args:
        include_top: whether to build the classifier (`avg_pool` -> `predictions`).
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        reduction_ratio: reduction ratio r of the SE layers.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEBNInception(include_top=False, input_shape=(64, 64, 3))
    >>> model.output_shape
    (None, 2, 2, 1024)
    """
    signature.check_arguments(
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        imagenet_note="The SENet authors' Caffe model (SE-BN-Inception.caffemodel) has "
        "ImageNet weights, but keras-se does not convert Caffe models.",
    )
    common.check_number("reduction_ratio", reduction_ratio)
    inputs, x = signature.model_input(
        input_tensor, input_shape, include_top=include_top, default_size=224, min_size=32
    )
    data_format = keras.config.image_data_format()
    layers = _BNInceptionLayers(data_format)
    x = layers.conv(x, 64, 7, "conv1_7x7_s2", strides=2)
    x = layers.max_pool(x, 2, "pool1_3x3_s2")
    x = layers.conv(x, 64, 1, "conv2_3x3_reduce")
    x = layers.conv(x, 192, 3, "conv2_3x3")
    x = layers.max_pool(x, 2, "pool2_3x3_s2")
    for spec in _BN_INCEPTION_MODULES:
        x = layers.module(x, spec)
        x = SqueezeExcite(
            ratio=reduction_ratio, data_format=data_format, name=f"inception_{spec[0]}_se"
        )(x)
    x = signature.classifier_head(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    model = keras.Model(inputs, x, name=name)
    return weights_file.load_weights(model, weights, include_top=include_top)
