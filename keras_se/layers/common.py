"""Helpers shared by the attention layers: argument checks and channel-width arithmetic.

Every check raises before any work starts and names the argument, the value it got and what
is allowed, so a bad configuration never surfaces as a backend traceback.
"""

import math
import numbers
import os

import keras

SUPPORTED_RANKS = (3, 4, 5)
DATA_FORMATS = ("channels_last", "channels_first")


def make_divisible(value, divisor, min_value=None, round_limit=0.9):
    """Round `value` to the nearest multiple of `divisor`, as timm does for reduced widths.

    The result is at least `min_value` (default: `divisor`) and, when rounding down would lose
    more than `1 - round_limit` of `value`, one `divisor` is added back.

    Args:
        value: the unrounded width, e.g. `channels / ratio`.
        divisor: the multiple to round to.
        min_value: the smallest width returned; defaults to `divisor`.
        round_limit: fraction of `value` the result may not fall below (0 disables the check).

    Returns:
        The rounded width as an `int`.

    Example:
    >>> make_divisible(256 / 16, 8)
    16
    >>> make_divisible(24 / 16, 8)
    8
    >>> make_divisible(24 / 16, 8, min_value=4)
    4
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def reduced_width(channels, ratio, min_channels, divisor=None, round_limit=0.0):
    """Width of an attention bottleneck: `channels / ratio`, never below `min_channels`.

    Without `divisor` the width is `floor(channels / ratio)` as in the SENet and SKNet papers
    (the Caffe models); with one it is rounded like timm's `make_divisible`.
    """
    if divisor is None:
        width = int(channels // ratio)
    else:
        width = make_divisible(channels / ratio, divisor, round_limit=round_limit)
    return max(min_channels, width)


def check_number(name, value, *, maximum=None):
    """Return `value` if it is a finite real number > 0 (and <= `maximum`), else raise.

    Example:
    >>> check_number("ratio", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: `ratio` must be a finite number > 0, got inf.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r} of type {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be in (0, {maximum}], got {value!r}.")
    return value


def check_rate(name, value):
    """Return `value` if it is a number in [0, 1) (a dropout rate), else raise.

    Example:
    >>> check_rate("dropout", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: `dropout` must be a number in [0, 1), got 1.5.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}.")
    return value


def check_int(name, value, *, minimum=1, allow_none=False):
    """Return `value` if it is an int >= `minimum` (or None when allowed), else raise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        allowed = "an integer or None" if allow_none else "an integer"
        raise TypeError(
            f"`{name}` must be {allowed}, got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}.")
    return int(value)


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise naming the allowed values."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")
    return value


def check_data_format(value):
    """Resolve `data_format` (None means `keras.config.image_data_format()`) and validate it."""
    if value is None:
        value = keras.config.image_data_format()
    return check_choice("data_format", value, DATA_FORMATS)


def check_activation(name, value):
    """Resolve a Keras activation name or callable, raising a ValueError naming `name`."""
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras activation name or a callable, got {value!r}."
        ) from error


def check_floating_policy(layer):
    """Raise unless `layer` computes in floating point (its `dtype` argument).

    Example:
    >>> check_floating_policy(keras.layers.Layer(dtype="int32"))
    Traceback (most recent call last):
    ...
    ValueError: Layer computes in floating point: `dtype` must be a float dtype or a mixed ...
    """
    if not keras.backend.is_float_dtype(layer.dtype_policy.compute_dtype):
        raise ValueError(
            f"{type(layer).__name__} computes in floating point: `dtype` must be a float dtype "
            f"or a mixed policy ('float32', 'mixed_float16', ...), got "
            f"{layer.dtype_policy.name!r}."
        )


def check_floating_input(layer, inputs):
    """Raise unless `inputs` are floating-point feature maps (Keras casts only floats).

    Example:
    >>> check_floating_input(keras.layers.Layer(), keras.ops.ones((1, 2), dtype="int32"))
    Traceback (most recent call last):
    ...
    TypeError: Layer expects floating-point feature maps, got int32: cast them first, e.g. ...
    """
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise TypeError(
            f"{type(layer).__name__} expects floating-point feature maps, got {dtype}: cast them "
            f"first, e.g. keras.ops.cast(x, 'float32')."
        )


def physical_memory_bytes():
    """This machine's physical memory in bytes, or None where the OS does not say.

    Example:
    >>> physical_memory_bytes() > 2**20
    True
    """
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def check_weights_fit(owner, count):
    """Raise before `count` float32 weights are allocated if they exceed this machine's
    physical memory (a width or class count typed with too many zeros). keras-se's variables
    are float32 under every policy it supports, mixed ones included.

    Example:
    >>> check_weights_fit("Dense(units=10**12)", 10**12)
    Traceback (most recent call last):
    ...
    ValueError: Dense(units=10**12) would need 3725.3 GiB for its weights; this machine has ...
    """
    needed = count * 4
    available = physical_memory_bytes()
    if available is not None and needed > available:
        raise ValueError(
            f"{owner} would need {needed / 2**30:.1f} GiB for its weights; this machine has "
            f"{available / 2**30:.1f} GiB of memory."
        )


def fresh_initializer(initializer):
    """A new instance of `initializer`, for a sublayer or weight of its own.

    An unseeded Keras initializer picks its seed when it is created, so one instance draws the
    same values at every call: sublayers sharing it would start with equal weights (or, for
    other shapes, the same numbers reshaped). `keras.layers.MultiHeadAttention` clones its
    initializers per sublayer for the same reason. A seeded initializer keeps its seed; an
    initializer that is a plain function is returned as it is.

    Example:
    >>> import numpy as np
    >>> shared = keras.initializers.GlorotUniform()
    >>> bool(np.array_equal(shared((2, 2)), shared((2, 2))))
    True
    >>> first, second = fresh_initializer(shared), fresh_initializer(shared)
    >>> bool(np.array_equal(first((2, 2)), second((2, 2))))
    False
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    return initializer.__class__.from_config(initializer.get_config())


def channel_axis(data_format):
    """The channel axis of a feature map in `data_format`."""
    return -1 if data_format == "channels_last" else 1


def check_feature_map(layer_name, input_shape, data_format):
    """Validate a feature-map shape and return its channel count.

    The input must be a batch of 1D, 2D or 3D feature maps (rank 3, 4 or 5) whose channel
    dimension is known and non-zero.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) not in SUPPORTED_RANKS:
        raise ValueError(
            f"{layer_name} expects a batch of 1D, 2D or 3D feature maps (input rank 3, 4 or 5), "
            f"got an input of rank {len(input_shape)} with shape {input_shape}."
        )
    channels = input_shape[channel_axis(data_format)]
    if channels is None or channels < 1:
        raise ValueError(
            f"{layer_name} needs a known, non-zero channel dimension; with "
            f"data_format={data_format!r} the channel axis of input shape {input_shape} "
            f"is {channels!r}."
        )
    return int(channels)


def feature_map_spec(input_shape, data_format):
    """The `keras.InputSpec` a built layer keeps: the rank and channel count it was built for.

    A later call with another layout is refused by Keras ("expected axis 1 of input shape to
    have value 64"), as for Keras' convolutions; the first call cannot tell a channels_last
    tensor from a channels_first one by its shape.

    Example:
    >>> feature_map_spec((None, 8, 8, 64), "channels_last").axes
    {-1: 64}
    """
    return keras.InputSpec(
        ndim=len(input_shape),
        axes={channel_axis(data_format): input_shape[channel_axis(data_format)]},
    )


def freeze_built_parts(layer):
    """Make the sublayers and weights that `layer.build` created follow `trainable=False`.

    A frozen layer saved to `.keras` comes back through `from_config(trainable=False)`,
    before `build` creates its sublayers and weights, which Keras makes trainable. Setting
    `layer.trainable = False` again does not reach them: TensorFlow's attribute tracking
    skips an assignment of the value an attribute already has, so this calls Keras' setter.

    Example:
    >>> from keras_se import SqueezeExcite
    >>> se = SqueezeExcite(ratio=4, trainable=False)
    >>> se.build((None, 6, 6, 8))  # calls freeze_built_parts
    >>> [variable.trainable for variable in se.weights]
    [False, False, False, False]
    """
    keras.layers.Layer.trainable.fset(layer, False)


def spatial_axes(rank, data_format):
    """The spatial axes of a feature map of `rank` (batch first) in `data_format`."""
    channels = channel_axis(data_format) % rank
    return tuple(i for i in range(1, rank) if i != channels)


def broadcast_shape(rank, channels, data_format):
    """Shape that broadcasts a per-channel vector over a feature map of `rank` (batch first)."""
    ones = [1] * (rank - 2)
    if data_format == "channels_last":
        return (-1, *ones, channels)
    return (-1, channels, *ones)


def attention_dtype(compute_dtype):
    """The dtype attention weights are computed in: float32 under float16/bfloat16 compute."""
    return "float32" if compute_dtype in ("float16", "bfloat16") else compute_dtype
