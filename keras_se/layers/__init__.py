"""Channel-attention layers, written with `keras.ops` so they run on every Keras backend."""

from keras_se.layers.common import make_divisible
from keras_se.layers.selective_kernel import SelectiveKernel
from keras_se.layers.squeeze_excite import SqueezeExcite

__all__ = ["SelectiveKernel", "SqueezeExcite", "make_divisible"]
