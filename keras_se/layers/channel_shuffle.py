"""ShuffleNet's channel shuffle (Zhang et al., 2018): let the groups of a grouped convolution
see each other's channels.

The channels of a feature map made by a convolution with `g` groups come in `g` blocks of `n`.
The shuffle reshapes the channel axis to `(g, n)`, transposes it to `(n, g)` and flattens it,
so that output channel `j * g + i` is input channel `i * n + j`: the next grouped convolution's
every group gets channels from every group of the previous one.

Example:
>>> import numpy as np
>>> shuffle = ChannelShuffle(groups=3)
>>> np.asarray(shuffle(np.arange(6, dtype="float32").reshape(1, 1, 1, 6))).ravel().tolist()
[0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
"""

import keras
from keras import ops

from keras_se.layers import common


def shuffle_order(channels, groups):
    """The input channel each output channel of the shuffle takes.

    Example:
    >>> shuffle_order(6, 2)
    [0, 3, 1, 4, 2, 5]
    """
    per_group = channels // groups
    return [i * per_group + j for j in range(per_group) for i in range(groups)]


@keras.saving.register_keras_serializable(package="keras_se")
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle: interleave the channels of `groups` equal blocks.

    The operation of ShuffleNet v1 and v2: a fixed permutation of the channel axis (computed
    as one gather, so any spatial size works on every backend and exports as ONNX `Gather` and
    TFLite `GATHER`). Inputs are batches of 1D, 2D or 3D feature maps whose channel count is a
    multiple of `groups`; the output has the input's shape. The layer has no weights.

    Args:
        groups: number of channel blocks (the groups of the grouped convolution before it).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> x = np.random.rand(2, 4, 4, 12).astype("float32")
    >>> y = ChannelShuffle(groups=3)(x)
    >>> bool(np.array_equal(y[..., 1], x[..., 4]))  # the first channel of the second group
    True
    """

    def __init__(self, groups, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = common.check_int("groups", groups)
        self.data_format = common.check_data_format(data_format)
        self._order = None

    def build(self, input_shape):
        channels = common.check_feature_map("ChannelShuffle", input_shape, self.data_format)
        if channels % self.groups:
            raise ValueError(
                f"ChannelShuffle(groups={self.groups}) needs a channel count divisible by "
                f"{self.groups}; the input has {channels} channels (input shape "
                f"{tuple(input_shape)}, data_format={self.data_format!r})."
            )
        self.input_spec = common.feature_map_spec(input_shape, self.data_format)
        self._order = shuffle_order(channels, self.groups)

    def call(self, inputs):
        return ops.take(inputs, self._order, axis=common.channel_axis(self.data_format))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "data_format": self.data_format}
