"""keras-se: Squeeze-and-Excitation and Selective Kernel attention for Keras 3.

Example:
>>> import keras, keras_se
>>> inputs = keras.Input((32, 32, 64))
>>> outputs = keras_se.SqueezeExcite(ratio=16)(inputs)
>>> keras.Model(inputs, outputs).count_params()
580
"""

from keras_se import applications
from keras_se.layers import SelectiveKernel, SqueezeExcite, make_divisible

__version__ = "0.1.0"

__all__ = ["SelectiveKernel", "SqueezeExcite", "__version__", "applications", "make_divisible"]
