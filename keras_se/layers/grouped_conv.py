"""Grouped and depthwise convolutions that run each backend's fast kernel.

`GroupedConv1D/2D/3D` are `keras.layers.Conv1D/2D/3D` and `DepthwiseConv2D` is
`keras.layers.DepthwiseConv2D`: same arguments, same weights in the same layout, same outputs.
Only the way the convolution is computed differs, chosen per backend and device by measurement
(8x24x24x256 input, 3x3 kernel, 32 groups, forward and backward, on a 2-core CPU):

| backend, where | grouped convolution | measured |
|---|---|---|
| TensorFlow, CPU with oneDNN | native `tf.nn.convolution` (oneDNN) | 6.2 ms; Keras: 3,055 ms |
| TensorFlow, CPU without oneDNN | one convolution per group, then concatenation | 18.5 ms |
| TensorFlow, XLA-compiled step, CPU | one convolution per group | 15.5 ms; native: 3,055 ms |
| TensorFlow, GPU | native (cuDNN) | not measured here |
| JAX, CPU | one convolution per group | 20.9 ms; `feature_group_count`: 3,078 ms |
| JAX, GPU | `feature_group_count` (cuDNN) | not measured here |
| PyTorch | Keras' own (`torch.nn.functional.conv2d(groups=...)`) | native |

Keras' TensorFlow backend runs every grouped convolution inside a nested
`tf.function(jit_compile=True)` (XLA), whose CPU backward pass is what makes grouped models
hundreds of times slower there; TensorFlow's Eigen kernels (oneDNN off) have no grouped gradient
at all. XLA's CPU backend compiles grouped convolutions, and depthwise ones, into slow generic
loops, so on the CPU under XLA (JAX, or a TensorFlow step compiled with `jit_compile=True`)
grouped convolutions run as one ordinary convolution per group, and depthwise ones as a sum of
`kh * kw` shifted, per-channel scaled copies of the input (3x3, 8x48x48x64, forward and
backward: 26 ms on JAX against 85 ms for XLA's depthwise convolution).

Every result also has the shape the convolution defines when the batch is empty: TensorFlow's
oneDNN convolutions return an empty batch unchanged, whatever the filters and strides.

Example:
>>> import numpy as np
>>> conv = GroupedConv2D(64, 3, groups=32, padding="same")
>>> tuple(conv(np.zeros((2, 8, 8, 64), "float32")).shape)
(2, 8, 8, 64)
"""

import functools

import keras
from keras import ops

from keras_se.layers import common


def _conv_length(size, kernel, stride, dilation, padding):
    """Output length of a convolution along one spatial axis (`padding` "same" or "valid")."""
    if padding == "same":
        return (size + stride - 1) // stride
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _with_output_shape(layer, inputs, outputs, channels, padding):
    """`outputs` of convolution `layer` reshaped to the shape it defines for `inputs`.

    This costs nothing for a non-empty batch and corrects an empty one (oneDNN hands it back
    unchanged). Symbolic inputs pass through as they are.
    """
    batch, *dims = ops.shape(inputs)
    if batch is None:
        return outputs
    rank = len(inputs.shape)
    channel_axis = common.channel_axis(layer.data_format) % rank
    spatial = iter(zip(layer.kernel_size, layer.strides, layer.dilation_rate, strict=True))
    shape = [batch]
    for index, size in enumerate(dims, start=1):
        if index == channel_axis:
            shape.append(channels)
        else:
            shape.append(_conv_length(size, *next(spatial), padding))
    return ops.reshape(outputs, shape)


def _on_gpu():
    """Whether the backend computes on a GPU (the device Keras places new tensors on)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return False


def _in_xla_step():
    """Whether the TensorFlow graph being traced is compiled by XLA (`jit_compile=True`)."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph()
    )


@functools.cache
def _tensorflow_has_onednn():
    """Whether TensorFlow runs its CPU convolutions with oneDNN (`TF_ENABLE_ONEDNN_OPTS`)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def grouped_route(backend, *, on_gpu, in_xla_step=False, onednn=False, rank=4):
    """How a grouped convolution is computed: `"native"` or `"per_group"` (see the table above).

    TensorFlow's oneDNN `Conv3D` refuses grouped kernels ("input and filter must have the same
    depth"), so 3D convolutions run per group there.

    Example:
    >>> grouped_route("jax", on_gpu=False), grouped_route("jax", on_gpu=True)
    ('per_group', 'native')
    >>> grouped_route("tensorflow", on_gpu=False, in_xla_step=False, onednn=True)
    'native'
    """
    if backend == "torch" or on_gpu:
        return "native"
    if backend == "tensorflow" and onednn and not in_xla_step and rank in (3, 4):
        return "native"
    return "per_group"


def _current_grouped_route(rank):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return grouped_route(backend, on_gpu=_on_gpu())
    return grouped_route(
        backend,
        on_gpu=_on_gpu(),
        in_xla_step=_in_xla_step(),
        onednn=_tensorflow_has_onednn(),
        rank=rank,
    )


def _channels_last(convolution, inputs, kernel, **options):
    """`convolution` of channels-first `inputs`, computed channels-last (TensorFlow's CPU
    convolution kernels are NHWC only)."""
    rank = len(inputs.shape)
    outputs = convolution(
        ops.transpose(inputs, (0, *range(2, rank), 1)),
        kernel,
        **{**options, "data_format": "channels_last"},
    )
    return ops.transpose(outputs, (0, rank - 1, *range(1, rank - 1)))


def _tensorflow_native(inputs, kernel, *, strides, padding, dilation_rate, data_format):
    """`tf.nn.convolution` with a grouped kernel, without Keras' XLA wrapper."""
    import tensorflow as tf

    spatial = "DHW"[5 - len(inputs.shape) :]
    tf_format = f"N{spatial}C" if data_format == "channels_last" else f"NC{spatial}"
    return tf.nn.convolution(
        inputs,
        ops.cast(kernel, inputs.dtype),
        strides=list(strides),
        padding=padding.upper(),
        data_format=tf_format,
        dilations=list(dilation_rate),
    )


def grouped_convolution(inputs, kernel, *, strides, padding, dilation_rate, data_format):
    """`keras.ops.conv` with the groups given by the kernel, on each backend's fast kernel.

    Args:
        inputs: a batch of feature maps of rank 3, 4 or 5.
        kernel: `(*kernel_size, in_channels / groups, filters)`, Keras' layout.
        strides: one stride per spatial axis.
        padding: `"same"` or `"valid"`.
        dilation_rate: one dilation per spatial axis.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        The convolution, equal to `keras.ops.conv` (to float rounding).

    Example:
    >>> import numpy as np
    >>> x, k = np.ones((1, 5, 5, 4), "float32"), np.ones((3, 3, 2, 6), "float32")
    >>> y = grouped_convolution(x, k, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
    ...                         data_format="channels_last")
    >>> tuple(y.shape), float(y[0, 0, 0, 0])
    ((1, 3, 3, 6), 18.0)
    """
    rank = len(inputs.shape)
    axis = common.channel_axis(data_format) % rank
    groups = inputs.shape[axis] // kernel.shape[-2]
    options = dict(
        strides=tuple(strides),
        padding=padding,
        dilation_rate=tuple(dilation_rate),
        data_format=data_format,
    )
    backend = keras.backend.backend()
    if backend == "tensorflow" and data_format == "channels_first" and not _on_gpu():
        return _channels_last(grouped_convolution, inputs, kernel, **options)
    if groups == 1:
        return ops.conv(inputs, kernel, **options)
    if _current_grouped_route(rank) == "native":
        if backend == "tensorflow":
            return _tensorflow_native(inputs, kernel, **options)
        return ops.conv(inputs, kernel, **options)
    pieces = zip(
        ops.split(inputs, groups, axis=axis), ops.split(kernel, groups, axis=-1), strict=True
    )
    return ops.concatenate([ops.conv(x, k, **options) for x, k in pieces], axis=axis)


def depthwise_route(backend, *, on_gpu, in_xla_step=False):
    """How a depthwise convolution is computed: `"native"` or `"taps"` (see the module docstring).

    Example:
    >>> depthwise_route("tensorflow", on_gpu=False), depthwise_route("jax", on_gpu=False)
    ('native', 'taps')
    """
    if backend == "torch" or on_gpu:
        return "native"
    if backend == "tensorflow" and not in_xla_step:
        return "native"
    return "taps"


def depthwise_by_taps(inputs, kernel, *, strides, padding, dilation_rate, data_format):
    """A 2D depthwise convolution as a sum of shifted, per-channel scaled copies of `inputs`.

    `kernel` is `(kh, kw, channels, depth_multiplier)` as in `keras.layers.DepthwiseConv2D`.
    Every term is an elementwise product that XLA fuses, forward and backward, instead of the
    generic loop its CPU backend emits for a depthwise convolution. The spatial size must be
    known.

    Example:
    >>> import numpy as np
    >>> x, k = np.ones((1, 4, 4, 2), "float32"), np.ones((3, 3, 2, 1), "float32")
    >>> y = depthwise_by_taps(x, k, strides=(1, 1), padding="same", dilation_rate=(1, 1),
    ...                       data_format="channels_last")
    >>> [float(v) for v in y[0, :, 0, 0]]
    [4.0, 6.0, 6.0, 4.0]
    """
    if data_format == "channels_first":
        return _channels_last(
            depthwise_by_taps,
            inputs,
            kernel,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
        )
    kernel_h, kernel_w, channels, multiplier = kernel.shape
    kernel = ops.cast(kernel, inputs.dtype)
    sizes = inputs.shape[1:3]
    geometry = list(zip(sizes, (kernel_h, kernel_w), strides, dilation_rate, strict=True))
    outs = [_conv_length(size, k, s, d, padding) for size, k, s, d in geometry]
    if padding == "same":
        pads = []
        for (size, k, s, d), out in zip(geometry, outs, strict=True):
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        inputs = ops.pad(inputs, [(0, 0), *pads, (0, 0)])
    (stride_h, stride_w), (dilation_h, dilation_w) = strides, dilation_rate
    outputs = None
    for i in range(kernel_h):
        for j in range(kernel_w):
            top, left = i * dilation_h, j * dilation_w
            tap = inputs[
                :,
                top : top + (outs[0] - 1) * stride_h + 1 : stride_h,
                left : left + (outs[1] - 1) * stride_w + 1 : stride_w,
                :,
            ]
            if multiplier == 1:
                term = tap * kernel[i, j, :, 0]
            else:
                term = ops.reshape(
                    ops.expand_dims(tap, -1) * kernel[i, j],
                    (ops.shape(tap)[0], outs[0], outs[1], channels * multiplier),
                )
            outputs = term if outputs is None else outputs + term
    return outputs


class _GroupedConv:
    """`convolution_op` of `keras.layers.Conv{1,2,3}D` through `grouped_convolution`."""

    def convolution_op(self, inputs, kernel):
        padding = self.padding
        if padding == "causal":
            inputs = ops.pad(inputs, self._compute_causal_padding())
            padding = "valid"
        outputs = grouped_convolution(
            inputs,
            kernel,
            strides=self.strides,
            padding=padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return _with_output_shape(self, inputs, outputs, self.filters, padding)


@keras.saving.register_keras_serializable(package="keras_se")
class GroupedConv1D(_GroupedConv, keras.layers.Conv1D):
    """`keras.layers.Conv1D` whose grouped convolution runs each backend's fast kernel.

    The arguments, weights and outputs are those of `keras.layers.Conv1D`; see the module
    docstring for how each backend computes it.

    Example:
    >>> import numpy as np
    >>> conv = GroupedConv1D(8, 3, groups=4, padding="causal")
    >>> tuple(conv(np.zeros((2, 10, 8), "float32")).shape)
    (2, 10, 8)
    """

    def call(self, inputs):
        # Conv1D's own `call` bypasses `convolution_op`; the base class's uses it.
        return super(keras.layers.Conv1D, self).call(inputs)


@keras.saving.register_keras_serializable(package="keras_se")
class GroupedConv2D(_GroupedConv, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose grouped convolution runs each backend's fast kernel.

    A drop-in for `keras.layers.Conv2D(groups=...)`: the same arguments, the same weights in
    the same layout (`(kh, kw, in_channels / groups, filters)`), so weights move between the two
    with `set_weights` or a weights file. See the module docstring for the kernel each backend
    and device uses.

    Example:
    >>> import numpy as np
    >>> conv = GroupedConv2D(128, 3, groups=32, strides=2, padding="same", use_bias=False)
    >>> y = conv(np.zeros((2, 16, 16, 64), "float32"))
    >>> tuple(y.shape), tuple(conv.kernel.shape)
    ((2, 8, 8, 128), (3, 3, 2, 128))
    """


@keras.saving.register_keras_serializable(package="keras_se")
class GroupedConv3D(_GroupedConv, keras.layers.Conv3D):
    """`keras.layers.Conv3D` whose grouped convolution runs each backend's fast kernel.

    Example:
    >>> import numpy as np
    >>> tuple(GroupedConv3D(8, 3, groups=2)(np.zeros((1, 5, 5, 5, 4), "float32")).shape)
    (1, 3, 3, 3, 8)
    """


@keras.saving.register_keras_serializable(package="keras_se")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` that stays fast where XLA compiles it on the CPU.

    A drop-in with the same arguments and weights (`(kh, kw, channels, depth_multiplier)`).
    TensorFlow outside XLA, PyTorch and GPUs run the backend's depthwise kernel; JAX on the CPU
    and a TensorFlow step compiled by XLA on the CPU run `depthwise_by_taps`, which XLA fuses.

    Example:
    >>> import numpy as np
    >>> conv = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)
    >>> tuple(conv(np.zeros((2, 8, 8, 16), "float32")).shape)
    (2, 4, 4, 32)
    """

    def call(self, inputs):
        channels = self._get_input_channel(inputs.shape) * self.depth_multiplier
        backend = keras.backend.backend()
        in_xla_step = backend == "tensorflow" and _in_xla_step()
        route = depthwise_route(backend, on_gpu=_on_gpu(), in_xla_step=in_xla_step)
        options = dict(
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if route == "taps" and None not in inputs.shape[1:]:
            outputs = depthwise_by_taps(inputs, self.kernel, **options)
        elif backend == "tensorflow" and self.data_format == "channels_first" and not _on_gpu():
            outputs = _channels_last(ops.depthwise_conv, inputs, self.kernel, **options)
        else:
            outputs = ops.depthwise_conv(inputs, self.kernel, **options)
        outputs = _with_output_shape(self, inputs, outputs, channels, self.padding)
        if self.use_bias:
            outputs = outputs + ops.reshape(
                self.bias, common.broadcast_shape(4, channels, self.data_format)[1:]
            )
        return self.activation(outputs)
