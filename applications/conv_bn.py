"""The convolution-BatchNorm-ReLU unit that the ResNet family and BN-Inception are built of,
with PyTorch's BatchNorm settings and Caffe's/PyTorch's symmetric padding.

Example:
>>> import keras
>>> x = keras.Input((32, 32, 3))
>>> y = conv_bn(x, 8, 3, strides=2, data_format="channels_last",
...             names={"pad": "pad", "conv": "conv", "bn": "bn", "relu": "relu"})
>>> y.shape, keras.Model(x, y).layers[1].name
((None, 16, 16, 8), 'pad')
"""

import keras

from keras_se.layers import DepthwiseConv2D, GroupedConv2D, common

# PyTorch's BatchNorm defaults (momentum 0.1 there is 0.9 here), as the converted weights were
# trained with.
NORM_MOMENTUM = 0.9
NORM_EPSILON = 1e-5


def he_initializer():
    """He initialization with fan-out, as timm and torchvision initialise the convolutions of
    their ResNets and VGGs.

    Example:
    >>> he_initializer().get_config()["mode"]
    'fan_out'
    """
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _pad_for_stride(x, kernel_size, strides, *, names, data_format):
    """`x` padded as Caffe and PyTorch pad a strided convolution, and the padding that the
    convolution itself then uses."""
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(
            kernel_size // 2, data_format=data_format, name=names["pad"]
        )(x)
        return x, "valid"
    return x, "same"


def conv(x, filters, kernel_size, *, names, data_format, strides=1, groups=1, **options):
    """A convolution without bias, padded as Caffe and PyTorch pad.

    A strided convolution with a kernel larger than 1 is padded by `kernel_size // 2` on every
    side first (a `ZeroPadding2D` named `names["pad"]`) and runs "valid" (Keras' "same" pads
    bottom/right only, unlike Caffe and PyTorch); others run "same". Grouped convolutions use
    `GroupedConv2D`. The convolution is named `names["conv"]`; `options` go to it
    (`kernel_initializer`).

    Example:
    >>> x = keras.Input((9, 9, 4))
    >>> conv(x, 8, 3, strides=2, names={"pad": "p", "conv": "c"}, data_format="channels_last").shape
    (None, 5, 5, 8)
    """
    x, padding = _pad_for_stride(x, kernel_size, strides, names=names, data_format=data_format)
    layer = GroupedConv2D if groups > 1 else keras.layers.Conv2D
    return layer(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=False,
        data_format=data_format,
        name=names["conv"],
        **options,
    )(x)


def depthwise_conv(x, kernel_size, *, names, data_format, strides=1, **options):
    """A depthwise convolution without bias (keras-se's `DepthwiseConv2D`, which runs each
    backend's fast kernel), padded as `conv` pads.

    Example:
    >>> x = keras.Input((9, 9, 4))
    >>> depthwise_conv(x, 3, strides=2, names={"pad": "p", "conv": "c"},
    ...                data_format="channels_last").shape
    (None, 5, 5, 4)
    """
    x, padding = _pad_for_stride(x, kernel_size, strides, names=names, data_format=data_format)
    return DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        data_format=data_format,
        name=names["conv"],
        **options,
    )(x)


def batch_norm(x, *, name, data_format):
    """BatchNormalization with PyTorch's settings (`NORM_MOMENTUM`, `NORM_EPSILON`).

    Example:
    >>> x = keras.Input((4, 4, 8))
    >>> batch_norm(x, name="bn", data_format="channels_last").shape
    (None, 4, 4, 8)
    """
    return keras.layers.BatchNormalization(
        axis=common.channel_axis(data_format),
        momentum=NORM_MOMENTUM,
        epsilon=NORM_EPSILON,
        name=name,
    )(x)


def conv_bn(
    x,
    filters,
    kernel_size,
    *,
    names,
    data_format,
    strides=1,
    groups=1,
    relu=True,
    kernel_initializer="glorot_uniform",
):
    """Convolution without bias (`conv`) -> BatchNorm -> optional ReLU.

    Args:
        x: the input tensor.
        filters: output channels.
        kernel_size: square kernel size.
        names: layer names for `"pad"`, `"conv"`, `"bn"` and `"relu"`.
        data_format: `"channels_last"` or `"channels_first"`.
        strides: square stride.
        groups: convolution groups.
        relu: whether to end with a ReLU.
        kernel_initializer: the convolution's initializer.

    Returns:
        The output tensor.
    """
    x = conv(
        x,
        filters,
        kernel_size,
        names=names,
        data_format=data_format,
        strides=strides,
        groups=groups,
        kernel_initializer=kernel_initializer,
    )
    x = batch_norm(x, name=names["bn"], data_format=data_format)
    if relu:
        x = keras.layers.ReLU(name=names["relu"])(x)
    return x
