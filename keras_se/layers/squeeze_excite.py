"""Squeeze-and-Excitation channel attention (Hu et al., 2018) and its spatial variants.

`SqueezeExcite` recalibrates the channels of a feature map: squeeze each channel to one number
by global pooling, excite with two fully connected layers (reduce by `ratio`, activation, expand)
and a gate, then rescale the input channels by the gate. `mode="spatial"` gives the sSE block
and `mode="concurrent"` the scSE block of Roy et al. (MICCAI 2018).
"""

import keras
from keras import ops

from keras_se.layers import common, recording

SQUEEZE_TYPES = ("avg", "max", "avg_max")
GATES = ("sigmoid", "hard_sigmoid")
MODES = ("channel", "spatial", "concurrent")


def _apply_gate(gate, logits):
    """Apply the named gate: `sigmoid`, or `hard_sigmoid` defined as relu6(x + 3) / 6."""
    if gate == "sigmoid":
        return ops.sigmoid(logits)
    return ops.relu6(logits + 3.0) / 6.0


@keras.saving.register_keras_serializable(package="keras_se")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-Excitation block: rescale feature-map channels by a learned gate.

    The channel count is inferred when the layer is built; inputs are batches of 1D, 2D or 3D
    feature maps (rank 3, 4 or 5) in either data format. The output has the input's shape.
    Under a mixed precision policy the gate is computed in float32 and cast back to the
    compute dtype.

    Args:
        ratio: reduction factor of the bottleneck: reduced width is `channels / ratio`
            (floored, as in the paper) unless `reduced_channels` is given. Default 16.
        reduced_channels: explicit bottleneck width; overrides `ratio` when set.
        divisor: if set, round `channels / ratio` to a multiple of `divisor` like timm's
            `make_divisible` (timm's SE-ResNet uses 8); None floors as in the paper.
        min_channels: the smallest bottleneck width (>= 1), so the width never reaches 0:
            a 3-channel input with ratio 16 gets a width of 1.
        squeeze: global pooling used to squeeze: `"avg"` (the paper), `"max"`, or
            `"avg_max"` (the mean of both, as timm's `add_maxpool`).
        gate: `"sigmoid"` (the paper) or `"hard_sigmoid"` (relu6(x + 3) / 6, MobileNetV3);
            used by the channel and the spatial gate alike.
        activation: activation between the two fully connected layers. Default `"relu"`.
        mode: `"channel"` (cSE, the paper), `"spatial"` (sSE: a 1x1 convolution to one map
            and a gate per position) or `"concurrent"` (scSE: the sum of the cSE and sSE
            outputs, Roy et al. 2018).
        use_bias: whether the fully connected layers and the spatial convolution have biases.
        kernel_initializer: initializer of the kernels (each from a copy of its own).
        bias_initializer: initializer of the biases.
        kernel_regularizer: regularizer of the kernels.
        bias_regularizer: regularizer of the biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Example:
    >>> import numpy as np
    >>> se = SqueezeExcite(ratio=16)
    >>> tuple(se(np.ones((2, 8, 8, 64), "float32")).shape)
    (2, 8, 8, 64)
    >>> se.reduced_channels_
    4
    """

    def __init__(
        self,
        ratio=16,
        reduced_channels=None,
        divisor=None,
        min_channels=1,
        squeeze="avg",
        gate="sigmoid",
        activation="relu",
        mode="channel",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        common.check_floating_policy(self)
        self.ratio = common.check_number("ratio", ratio)
        self.reduced_channels = common.check_int(
            "reduced_channels", reduced_channels, allow_none=True
        )
        self.divisor = common.check_int("divisor", divisor, allow_none=True)
        self.min_channels = common.check_int("min_channels", min_channels)
        self.squeeze = common.check_choice("squeeze", squeeze, SQUEEZE_TYPES)
        self.gate = common.check_choice("gate", gate, GATES)
        self.activation = common.check_activation("activation", activation)
        self.mode = common.check_choice("mode", mode, MODES)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.data_format = common.check_data_format(data_format)
        self.reduced_channels_ = None

    def _weight_kwargs(self, dtype):
        return dict(
            use_bias=self.use_bias,
            kernel_initializer=common.fresh_initializer(self.kernel_initializer),
            bias_initializer=common.fresh_initializer(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=dtype,
        )

    def build(self, input_shape):
        channels = common.check_feature_map("SqueezeExcite", input_shape, self.data_format)
        gate_dtype = common.attention_dtype(self.compute_dtype)
        if self.mode in ("channel", "concurrent"):
            self.reduced_channels_ = self.reduced_channels or common.reduced_width(
                channels, self.ratio, self.min_channels, self.divisor
            )
            common.check_weights_fit(
                f"SqueezeExcite {self.name!r} ({self.reduced_channels_} reduced channels for "
                f"{channels})",
                (2 * channels + 1) * self.reduced_channels_ + channels,
            )
            self.reduce = keras.layers.Dense(
                self.reduced_channels_, name="reduce", **self._weight_kwargs(gate_dtype)
            )
            self.expand = keras.layers.Dense(
                channels, name="expand", **self._weight_kwargs(gate_dtype)
            )
            self.reduce.build((None, channels))
            self.expand.build((None, self.reduced_channels_))
        if self.mode in ("spatial", "concurrent"):
            # A 1x1 convolution to one map, written as a contraction over the channel axis: it
            # works for every rank and data format (TensorFlow's CPU convolutions are NHWC-only)
            # and, with autocast off, keeps the gate in float32 under mixed precision.
            self.spatial_kernel = self.add_weight(
                name="spatial_kernel",
                shape=(channels,),
                initializer=common.fresh_initializer(self.kernel_initializer),
                regularizer=self.kernel_regularizer,
                dtype=gate_dtype,
                autocast=False,
            )
            self.spatial_bias = None
            if self.use_bias:
                self.spatial_bias = self.add_weight(
                    name="spatial_bias",
                    shape=(),
                    initializer=common.fresh_initializer(self.bias_initializer),
                    regularizer=self.bias_regularizer,
                    dtype=gate_dtype,
                    autocast=False,
                )
        self.input_spec = common.feature_map_spec(input_shape, self.data_format)
        if not self.trainable:
            common.freeze_built_parts(self)

    def _channel_gate(self, inputs):
        rank = len(inputs.shape)
        axis = common.channel_axis(self.data_format) % rank
        spatial_axes = common.spatial_axes(rank, self.data_format)
        if self.squeeze == "avg":
            squeezed = ops.mean(inputs, axis=spatial_axes)
        elif self.squeeze == "max":
            squeezed = ops.max(inputs, axis=spatial_axes)
        else:
            squeezed = 0.5 * (
                ops.mean(inputs, axis=spatial_axes) + ops.max(inputs, axis=spatial_axes)
            )
        hidden = self.activation(self.reduce(squeezed))
        gate = _apply_gate(self.gate, self.expand(hidden))
        recording.report(self, "channel", gate)
        channels = inputs.shape[axis]
        return ops.reshape(gate, common.broadcast_shape(rank, channels, self.data_format))

    def _spatial_gate(self, inputs):
        axis = common.channel_axis(self.data_format) % len(inputs.shape)
        kernel = self.spatial_kernel
        logits = ops.tensordot(ops.cast(inputs, kernel.dtype), kernel, axes=([axis], [0]))
        if self.spatial_bias is not None:
            logits = logits + self.spatial_bias
        gate = _apply_gate(self.gate, logits)
        recording.report(self, "spatial", gate)
        return ops.expand_dims(gate, axis)

    def call(self, inputs):
        common.check_floating_input(self, inputs)
        if inputs.shape[0] == 0:
            # An empty batch has nothing to gate (the output has the input's shape and dtype),
            # and Keras' `max` refuses empty tensors on the torch and eager TensorFlow backends.
            return inputs
        if self.mode == "channel":
            gate = self._channel_gate(inputs)
        elif self.mode == "spatial":
            gate = self._spatial_gate(inputs)
        else:
            gate = self._channel_gate(inputs) + self._spatial_gate(inputs)
        return inputs * ops.cast(gate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            ratio=self.ratio,
            reduced_channels=self.reduced_channels,
            divisor=self.divisor,
            min_channels=self.min_channels,
            squeeze=self.squeeze,
            gate=self.gate,
            activation=keras.activations.serialize(self.activation),
            mode=self.mode,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
            data_format=self.data_format,
        )
        return config
