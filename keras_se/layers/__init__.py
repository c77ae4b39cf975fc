"""Channel-attention layers, written with `keras.ops` so they run on every Keras backend, and
the grouped and depthwise convolutions they and the applications use."""

from keras_se.layers.channel_shuffle import ChannelShuffle
from keras_se.layers.common import make_divisible
from keras_se.layers.grouped_conv import (
    DepthwiseConv2D,
    GroupedConv1D,
    GroupedConv2D,
    GroupedConv3D,
)
from keras_se.layers.selective_kernel import SelectiveKernel
from keras_se.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ChannelShuffle",
    "DepthwiseConv2D",
    "GroupedConv1D",
    "GroupedConv2D",
    "GroupedConv3D",
    "SelectiveKernel",
    "SqueezeExcite",
    "make_divisible",
]
