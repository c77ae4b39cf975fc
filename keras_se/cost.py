"""Parameters and multiply-adds of a Keras model, counted from its layers.

No profiler and no backend is involved: every layer's multiply-adds (MACs) follow from its
weights and the static shapes of its input and output, so the count is the same on TensorFlow,
JAX and PyTorch and needs a fixed input size. The convention is the papers' (SENet Table 2,
SKNet Table 1, MobileNet), with every count per image:

- convolutions (also grouped, dilated, depthwise, separable, transposed) and dense layers:
  one MAC per kernel weight and output position;
- `SqueezeExcite`: its two FC layers, plus one multiply per element for the rescale (and the
  1x1 projection of the spatial gate);
- `SelectiveKernel`: its branch convolutions, its two attention FCs, plus one multiply per
  element and branch for the weighted sum of the branches;
- BatchNormalization (folded into the convolution before it at inference), activations,
  pooling, padding, additions and reshapes count 0.

A layer with weights of any other kind raises a `ValueError` naming it, so that no count is
silently short.
"""

import collections
import dataclasses
import math

import keras

from keras_se.layers import SelectiveKernel, SqueezeExcite, common

_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
_TRANSPOSED = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_FREE_WITH_WEIGHTS = (keras.layers.BatchNormalization,)


@dataclasses.dataclass(frozen=True)
class CostReport:
    """Parameter counts and multiply-adds of one model at one input size.

    Attributes:
        name: the model's name.
        input_shape: the per-image input shape the MACs are counted at.
        trainable_params: trainable weights (the figure timm and the papers report).
        non_trainable_params: the rest (BatchNorm moving statistics).
        macs: multiply-adds per image.
        attention_macs: the part of `macs` spent in SqueezeExcite / SelectiveKernel attention
            (their FCs and products; an SK layer's branch convolutions are not attention).
        attention_layers: how many SE and SK layers the model has, and how its SK layers
            select (`attention_summary`).

    Example:
    >>> report = CostReport("net", (32, 32, 3), 10, 2, 3_000_000, 1_000)
    >>> report.total_params, round(report.gmacs, 3)
    (12, 0.003)
    """

    name: str
    input_shape: tuple
    trainable_params: int
    non_trainable_params: int
    macs: int
    attention_macs: int
    attention_layers: str = "none"

    @property
    def total_params(self):
        """Trainable plus non-trainable parameters (Keras' `count_params()`)."""
        return self.trainable_params + self.non_trainable_params

    @property
    def gmacs(self):
        """Multiply-adds per image in billions."""
        return self.macs / 1e9

    def format(self):
        """The report as aligned text lines, as `keras-se cost MODEL` prints it.

        Example:
        >>> print(CostReport("net", (32, 32, 3), 10, 2, 3_000_000, 1_000, "1 SE").format())
        model                net
        input                32x32x3
        trainable params     10
        non-trainable params 2
        total params         12
        multiply-adds        0.003 GMACs (3.00 MMACs; attention 0.00 MMACs)
        attention layers     1 SE
        """
        rows = [
            ("model", self.name),
            ("input", "x".join(str(d) for d in self.input_shape)),
            ("trainable params", f"{self.trainable_params:,}"),
            ("non-trainable params", f"{self.non_trainable_params:,}"),
            ("total params", f"{self.total_params:,}"),
            (
                "multiply-adds",
                f"{self.gmacs:.3f} GMACs ({self.macs / 1e6:.2f} MMACs; attention "
                f"{self.attention_macs / 1e6:.2f} MMACs)",
            ),
            ("attention layers", self.attention_layers),
        ]
        return "\n".join(f"{label:<20} {value}" for label, value in rows)


def _size(shape):
    return math.prod(int(d) for d in shape)


def _positions(shape, data_format):
    """The number of spatial positions of a batched feature-map shape."""
    return _size(shape[i] for i in common.spatial_axes(len(shape), data_format))


def _channels(shape, data_format):
    return int(shape[common.channel_axis(data_format)])


def _squeeze_excite_macs(layer, input_shape):
    channels = _channels(input_shape, layer.data_format)
    positions = _positions(input_shape, layer.data_format)
    macs = channels * positions  # the rescale
    if layer.mode in ("channel", "concurrent"):
        macs += 2 * channels * layer.reduced_channels_
    if layer.mode in ("spatial", "concurrent"):
        macs += channels * positions
    return macs


def _selective_kernel_macs(layer, output_shape):
    """`(branch convolution MACs, attention MACs)` of a SelectiveKernel layer."""
    positions = _positions(output_shape, layer.data_format)
    filters = _channels(output_shape, layer.data_format)
    branches = sum(_size(conv.kernel.shape) * positions for conv in layer.convs)
    attention = (
        filters * layer.attention_channels_
        + layer.attention_channels_ * layer.branches * filters
        + layer.branches * filters * positions
    )
    return branches, attention


def layer_macs(layer, input_shape, output_shape):
    """`(MACs, attention MACs)` of one layer for one image, from its batched static shapes.

    Args:
        layer: a built Keras layer.
        input_shape: its input shape with the batch axis (the first input's, for layers with
            several inputs).
        output_shape: its output shape with the batch axis.

    Raises:
        ValueError: the layer has weights of a kind this module does not count, or a spatial
            size is unknown.

    Example:
    >>> conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
    >>> conv.build((None, 16, 16, 4))
    >>> layer_macs(conv, (None, 16, 16, 4), (None, 16, 16, 8))
    (73728, 0)
    """
    if any(d is None for d in (*input_shape[1:], *output_shape[1:])):
        raise ValueError(
            f"Cannot count the multiply-adds of layer {layer.name!r} at an unknown size: its "
            f"input is {tuple(input_shape)}. Build the model with a fixed `input_shape`."
        )
    if isinstance(layer, SqueezeExcite):
        macs = _squeeze_excite_macs(layer, input_shape)
        return macs, macs
    if isinstance(layer, SelectiveKernel):
        branches, attention = _selective_kernel_macs(layer, output_shape)
        return branches + attention, attention
    if isinstance(layer, _CONVOLUTIONS):
        kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        return _size(kernel.shape) * _positions(output_shape, layer.data_format), 0
    if isinstance(layer, _TRANSPOSED):
        return _size(layer.kernel.shape) * _positions(input_shape, layer.data_format), 0
    if isinstance(layer, _SEPARABLE):
        kernels = _size(layer.depthwise_kernel.shape) + _size(layer.pointwise_kernel.shape)
        return kernels * _positions(output_shape, layer.data_format), 0
    if isinstance(layer, keras.layers.Dense):
        return _size(layer.kernel.shape) * _size(input_shape[1:-1]), 0
    if layer.weights and not isinstance(layer, _FREE_WITH_WEIGHTS):
        raise ValueError(
            f"Cannot count the multiply-adds of layer {layer.name!r} "
            f"({type(layer).__name__}): keras_se.cost counts convolutions, Dense, "
            "SqueezeExcite and SelectiveKernel layers, and layers without weights as 0."
        )
    return 0, 0


def _first_shape(tensors):
    return tuple(keras.tree.flatten(tensors)[0].shape)


def count_macs(model):
    """`(MACs, attention MACs)` per image of a built model, summed over its layers.

    Nested models are counted layer by layer. The input size must be fixed. A layer is counted
    for its first call (Keras' `layer.input`), so a layer shared between several calls of the
    same model is counted once; no keras-se model shares layers.

    Example:
    >>> inputs = keras.Input((8, 8, 16))
    >>> x = keras.layers.Conv2D(32, 1, use_bias=False)(inputs)
    >>> x = SqueezeExcite(ratio=16)(x)
    >>> count_macs(keras.Model(inputs, x))  # 64*16*32 conv; 2*32*2 FCs + 64*32 rescale
    (34944, 2176)
    """
    macs = attention = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            nested = count_macs(layer)
        elif isinstance(layer, keras.layers.InputLayer):
            continue
        else:
            nested = layer_macs(layer, _first_shape(layer.input), _first_shape(layer.output))
        macs += nested[0]
        attention += nested[1]
    return macs, attention


def activation_elements(model):
    """Elements of every layer's output per image, summed: what a training step keeps for the
    backward pass, at least. Nested models are counted layer by layer.

    Example:
    >>> inputs = keras.Input((8, 8, 16))
    >>> x = keras.layers.Conv2D(32, 1)(inputs)
    >>> activation_elements(keras.Model(inputs, keras.layers.ReLU()(x)))  # two 8x8x32 maps
    4096
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += activation_elements(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            total += _size(_first_shape(layer.output)[1:])
    return total


def training_memory_bytes(model, batch_size, *, compute_bytes=4, optimizer_slots=1):
    """A lower bound of one training step's memory: the float32 weights with their gradients
    and `optimizer_slots` optimizer copies (1 for momentum SGD, 2 for Adam), and every layer's
    output for `batch_size` images at `compute_bytes` per element (2 under mixed precision).

    Example:
    >>> inputs = keras.Input((8, 8, 16))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(32, 1)(inputs))  # 544 weights
    >>> training_memory_bytes(model, batch_size=2)  # 544*4*3 + 2*2048*4
    22912
    """
    weights = sum(_size(w.shape) for w in model.weights)
    return weights * 4 * (2 + optimizer_slots) + batch_size * activation_elements(model) * (
        compute_bytes
    )


def attention_summary(model):
    """How many SqueezeExcite and SelectiveKernel layers `model` has (nested models
    included), with the SK layers' `select`.

    Example:
    >>> images = keras.Input((8, 8, 4))
    >>> x = SqueezeExcite(ratio=2)(images)
    >>> x = SelectiveKernel(filters=4, min_channels=2, select="sigmoid")(x)
    >>> attention_summary(keras.Model(images, SelectiveKernel(filters=4, min_channels=2)(x)))
    '1 SE, 2 SK (select: 1 sigmoid, 1 softmax)'
    """
    from keras_se.inspect import attention_layers

    layers = attention_layers(model).values()
    se = sum(isinstance(layer, SqueezeExcite) for layer in layers)
    selects = collections.Counter(
        layer.select for layer in layers if isinstance(layer, SelectiveKernel)
    )
    parts = [f"{se} SE"] if se else []
    if selects:
        if len(selects) == 1:
            how = next(iter(selects))
        else:
            how = ", ".join(f"{count} {name}" for name, count in sorted(selects.items()))
        parts.append(f"{selects.total()} SK (select: {how})")
    return ", ".join(parts) or "none"


def cost_report(model):
    """Trainable and total parameters and multiply-adds per image of a built model.

    Example:
    >>> from keras_se.applications import SEMobileNet
    >>> report = cost_report(SEMobileNet(weights=None))
    >>> report.trainable_params, round(report.macs / 1e6)
    (4718044, 572)
    """
    macs, attention = count_macs(model)
    return CostReport(
        name=model.name,
        input_shape=tuple(model.inputs[0].shape[1:]),
        trainable_params=sum(_size(w.shape) for w in model.trainable_weights),
        non_trainable_params=sum(_size(w.shape) for w in model.non_trainable_weights),
        macs=macs,
        attention_macs=attention,
        attention_layers=attention_summary(model),
    )
