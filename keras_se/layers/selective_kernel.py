"""Selective Kernel convolution (Li et al., "Selective Kernel Networks", CVPR 2019).

Split: M convolution branches with different receptive fields (by default a 3x3 and a 3x3
dilated by 2, the paper's stand-in for 5x5), each conv -> BatchNorm -> ReLU. Fuse: sum the
branches, global average pool, FC -> BN -> ReLU to a width d = max(C / ratio, L). Select: one FC
to M * C logits laid out path-major as (M, C), a softmax across the M branches for every channel,
and the branch outputs summed with those weights. `select="sigmoid"` replaces the softmax with an
independent sigmoid gate per branch and channel (the weights no longer sum to 1), for ablations.
"""

import math
import numbers
from typing import NamedTuple

import keras
from keras import ops

from keras_se.layers import common, grouped_conv, recording

SELECTS = ("softmax", "sigmoid")

_CONV_BY_RANK = {
    3: grouped_conv.GroupedConv1D,
    4: grouped_conv.GroupedConv2D,
    5: grouped_conv.GroupedConv3D,
}


class _BranchPlan(NamedTuple):
    """How a branch realises its convolution with Keras ops.

    Keras convolutions reject `strides > 1` together with `dilation_rate > 1`, so a strided,
    dilated branch is rewritten exactly: after symmetric padding, a stride-s convolution with
    dilation d reads only every s-th input position when s divides d, so the input is
    subsampled by s and convolved with dilation d / s at stride 1; otherwise the branch runs
    at stride 1 and its output is subsampled by s. The kernel has the same shape either way.
    """

    pad: int
    input_step: int
    conv_strides: int
    conv_dilation: int
    output_step: int


def _branch_plan(kernel, dilation, strides):
    if strides == 1:
        return _BranchPlan(0, 1, 1, dilation, 1)
    pad = dilation * (kernel - 1) // 2
    if dilation == 1:
        return _BranchPlan(pad, 1, strides, 1, 1)
    if dilation % strides == 0:
        return _BranchPlan(pad, strides, 1, dilation // strides, 1)
    return _BranchPlan(pad, 1, 1, dilation, strides)


def _per_branch(name, value):
    """`value` as a tuple of positive ints (one per branch), or a single positive int."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{name}` must name at least 1 branch, got {value!r}.")
        return tuple(common.check_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    return common.check_int(name, value)


def _branch_specs(kernel_size, dilation_rate):
    """Pair kernel sizes with dilation rates, one pair per branch, validating both."""
    kernels = _per_branch("kernel_size", kernel_size)
    dilations = _per_branch("dilation_rate", dilation_rate)
    if (
        isinstance(kernels, tuple)
        and isinstance(dilations, tuple)
        and len(kernels) != len(dilations)
    ):
        raise ValueError(
            f"`kernel_size` and `dilation_rate` must list the same number of branches, got "
            f"{len(kernels)} kernel sizes {kernels} and {len(dilations)} dilation rates "
            f"{dilations}."
        )
    branches = max(len(v) if isinstance(v, tuple) else 1 for v in (kernels, dilations))
    kernels = kernels if isinstance(kernels, tuple) else (kernels,) * branches
    dilations = dilations if isinstance(dilations, tuple) else (dilations,) * branches
    for kernel in kernels:
        if kernel % 2 == 0:
            raise ValueError(
                f"`kernel_size` entries must be odd so that every branch pads symmetrically and "
                f"keeps the same output size, got {kernel_size!r}."
            )
    return kernels, dilations


@keras.saving.register_keras_serializable(package="keras_se")
class SelectiveKernel(keras.layers.Layer):
    """Selective Kernel convolution: branches of different receptive fields, mixed by attention.

    Works on 1D, 2D and 3D feature maps (rank 3, 4 or 5 inputs). Each branch is a grouped
    convolution without bias -> BatchNorm -> activation; with `strides` > 1 the input is padded
    symmetrically (PyTorch style) so that weights ported from timm give the same outputs. The
    output has `filters` channels and spatial size `ceil(size / strides)`. Under mixed precision
    the attention (FCs, BN and softmax) runs in float32.

    Args:
        filters: output channels of every branch and of the layer; None keeps the input's.
        kernel_size: kernel size of every branch (an int), or a list with one per branch.
        dilation_rate: dilation of every branch (an int), or a list with one per branch. The
            number of branches M is the length of the list(s). Default `(1, 2)`: a 3x3 and a
            3x3 dilated by 2, the paper's configuration.
        strides: stride of every branch.
        groups: groups of every branch convolution (cardinality); it must divide the input
            channels of each branch and `filters`.
        ratio: reduction of the attention width: d = max(floor(filters / ratio), min_channels).
        min_channels: L, the smallest attention width. Default 32 as in the paper.
        attention_channels: explicit attention width d; overrides `ratio` and `min_channels`.
        divisor: if set, round `filters / ratio` to a multiple of `divisor` like timm's
            `make_divisible` before applying `min_channels`.
        split_input: feed each branch its own equal slice of the input channels (timm's
            skresnet18/34) instead of the whole input (the paper).
        select: how the attention logits become branch weights: `"softmax"` across the M
            branches for every channel (the paper: the weights of a channel sum to 1) or
            `"sigmoid"`, an independent gate in (0, 1) per branch and channel.
        activation: activation after each branch's BN and in the attention. Default `"relu"`.
        norm_momentum: momentum of the BatchNorm layers (0.9 matches PyTorch's 0.1).
        norm_epsilon: epsilon of the BatchNorm layers (1e-5 as PyTorch and Caffe).
        kernel_initializer: initializer of the convolution and attention kernels (each kernel
            draws from a copy of its own, so the branches do not start equal).
        kernel_regularizer: regularizer of the convolution and attention kernels.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Example:
    >>> import numpy as np
    >>> sk = SelectiveKernel(filters=64, groups=32, ratio=16, min_channels=32)
    >>> tuple(sk(np.ones((2, 16, 16, 64), "float32")).shape)
    (2, 16, 16, 64)
    >>> sk.branches, sk.attention_channels_
    (2, 32)
    """

    def __init__(
        self,
        filters=None,
        kernel_size=3,
        dilation_rate=(1, 2),
        strides=1,
        groups=1,
        ratio=16,
        min_channels=32,
        attention_channels=None,
        divisor=None,
        split_input=False,
        select="softmax",
        activation="relu",
        norm_momentum=0.9,
        norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        common.check_floating_policy(self)
        self.filters = common.check_int("filters", filters, allow_none=True)
        self.kernel_sizes, self.dilation_rates = _branch_specs(kernel_size, dilation_rate)
        self.strides = common.check_int("strides", strides)
        self.groups = common.check_int("groups", groups)
        if self.filters is not None and self.filters % self.groups:
            raise ValueError(
                f"`filters` ({self.filters}) must be divisible by `groups` ({self.groups})."
            )
        self.ratio = common.check_number("ratio", ratio)
        self.min_channels = common.check_int("min_channels", min_channels)
        self.attention_channels = common.check_int(
            "attention_channels", attention_channels, allow_none=True
        )
        self.divisor = common.check_int("divisor", divisor, allow_none=True)
        if not isinstance(split_input, (bool, numbers.Integral)):
            raise TypeError(f"`split_input` must be a bool, got {split_input!r}.")
        self.split_input = bool(split_input)
        self.select = common.check_choice("select", select, SELECTS)
        self.activation = common.check_activation("activation", activation)
        self.norm_momentum = common.check_number("norm_momentum", norm_momentum, maximum=1.0)
        self.norm_epsilon = common.check_number("norm_epsilon", norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.data_format = common.check_data_format(data_format)
        self.attention_channels_ = None

    @property
    def branches(self):
        """The number of branches M."""
        return len(self.kernel_sizes)

    def _check_channels(self, in_channels):
        """Validate the input channel count against `split_input` and `groups`."""
        branch_in = in_channels
        if self.split_input:
            if in_channels % self.branches:
                raise ValueError(
                    f"SelectiveKernel with split_input=True needs input channels divisible by "
                    f"the {self.branches} branches, got {in_channels} input channels."
                )
            branch_in = in_channels // self.branches
        if branch_in % self.groups:
            raise ValueError(
                f"`groups` ({self.groups}) must divide the {branch_in} input channels of each "
                f"branch (input channels {in_channels}, split_input={self.split_input})."
            )
        # `filters` given explicitly was checked against `groups` at construction; the default
        # (the input channels) is a multiple of `branch_in`, hence of `groups`.
        return branch_in, self.filters or in_channels

    def _norm(self, name, axis, dtype):
        return keras.layers.BatchNormalization(
            axis=axis,
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            name=name,
            dtype=dtype,
        )

    def _plans(self):
        return [
            _branch_plan(kernel, dilation, self.strides)
            for kernel, dilation in zip(self.kernel_sizes, self.dilation_rates, strict=True)
        ]

    def _resize(self, shape, pad, step):
        """A static shape after padding by `pad` per side and subsampling by `step`."""
        spatial = common.spatial_axes(len(shape), self.data_format)
        return tuple(
            math.ceil((d + 2 * pad) / step) if i in spatial and d is not None else d
            for i, d in enumerate(shape)
        )

    def _pad(self, inputs, pad):
        if pad == 0:
            return inputs
        rank = len(inputs.shape)
        spatial = common.spatial_axes(rank, self.data_format)
        return ops.pad(inputs, [(pad, pad) if i in spatial else (0, 0) for i in range(rank)])

    def _subsample(self, inputs, step):
        if step == 1:
            return inputs
        rank = len(inputs.shape)
        spatial = common.spatial_axes(rank, self.data_format)
        return inputs[
            tuple(slice(None, None, step) if i in spatial else slice(None) for i in range(rank))
        ]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        in_channels = common.check_feature_map("SelectiveKernel", input_shape, self.data_format)
        branch_in, filters = self._check_channels(in_channels)
        self.attention_channels_ = self.attention_channels or common.reduced_width(
            filters, self.ratio, self.min_channels, self.divisor, round_limit=0.9
        )
        spatial_rank = len(input_shape) - 2
        kernel_elements = sum(kernel**spatial_rank for kernel in self.kernel_sizes)
        common.check_weights_fit(
            f"SelectiveKernel {self.name!r} ({filters} filters from {in_channels} channels)",
            kernel_elements * (branch_in // self.groups) * filters
            + (self.branches + 1) * filters * self.attention_channels_,
        )
        axis = common.channel_axis(self.data_format)
        branch_shape = list(input_shape)
        branch_shape[axis] = branch_in
        conv = _CONV_BY_RANK[len(input_shape)]
        self.convs, self.norms = [], []
        for index, plan in enumerate(self._plans()):
            layer = conv(
                filters,
                self.kernel_sizes[index],
                strides=plan.conv_strides,
                padding="same" if self.strides == 1 else "valid",
                dilation_rate=plan.conv_dilation,
                groups=self.groups,
                use_bias=False,
                kernel_initializer=common.fresh_initializer(self.kernel_initializer),
                kernel_regularizer=self.kernel_regularizer,
                data_format=self.data_format,
                name=f"branch{index}_conv",
                dtype=self.dtype_policy,
            )
            layer.build(self._resize(branch_shape, plan.pad, plan.input_step))
            norm = self._norm(f"branch{index}_norm", axis, self.dtype_policy)
            norm.build(self.compute_output_shape(input_shape))
            self.convs.append(layer)
            self.norms.append(norm)

        attention_dtype = common.attention_dtype(self.compute_dtype)
        dense = dict(
            use_bias=False, kernel_regularizer=self.kernel_regularizer, dtype=attention_dtype
        )
        self.attention_reduce = keras.layers.Dense(
            self.attention_channels_,
            name="attention_reduce",
            kernel_initializer=common.fresh_initializer(self.kernel_initializer),
            **dense,
        )
        self.attention_norm = self._norm("attention_norm", -1, attention_dtype)
        self.attention_select = keras.layers.Dense(
            self.branches * filters,
            name="attention_select",
            kernel_initializer=common.fresh_initializer(self.kernel_initializer),
            **dense,
        )
        self.attention_reduce.build((None, filters))
        self.attention_norm.build((None, self.attention_channels_))
        self.attention_select.build((None, self.attention_channels_))
        self.input_spec = common.feature_map_spec(input_shape, self.data_format)
        if not self.trainable:
            common.freeze_built_parts(self)

    def call(self, inputs, training=None):
        common.check_floating_input(self, inputs)
        rank = len(inputs.shape)
        axis = common.channel_axis(self.data_format) % rank
        if self.split_input:
            branch_inputs = ops.split(inputs, self.branches, axis=axis)
        else:
            branch_inputs = [inputs] * self.branches
        paths = []
        for x, conv, norm, plan in zip(
            branch_inputs, self.convs, self.norms, self._plans(), strict=True
        ):
            x = conv(self._subsample(self._pad(x, plan.pad), plan.input_step))
            x = self._subsample(x, plan.output_step)
            paths.append(self.activation(norm(x, training=training)))

        fused = paths[0]
        for path in paths[1:]:
            fused = fused + path
        pooled = ops.mean(fused, axis=common.spatial_axes(rank, self.data_format))
        hidden = self.activation(
            self.attention_norm(self.attention_reduce(pooled), training=training)
        )
        filters = fused.shape[axis]
        logits = ops.reshape(self.attention_select(hidden), (-1, self.branches, filters))
        if self.select == "softmax":
            weights = ops.softmax(logits, axis=1)
        else:
            weights = ops.sigmoid(logits)
        recording.report(self, "branches", weights)
        weights = ops.cast(weights, inputs.dtype)

        shape = common.broadcast_shape(rank, filters, self.data_format)
        outputs = paths[0] * ops.reshape(weights[:, 0], shape)
        for index in range(1, self.branches):
            outputs = outputs + paths[index] * ops.reshape(weights[:, index], shape)
        return outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        axis = common.channel_axis(self.data_format) % len(input_shape)
        spatial = common.spatial_axes(len(input_shape), self.data_format)
        filters = self.filters or input_shape[axis]
        return tuple(
            filters
            if i == axis
            else (math.ceil(d / self.strides) if i in spatial and d is not None else d)
            for i, d in enumerate(input_shape)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_sizes),
            dilation_rate=list(self.dilation_rates),
            strides=self.strides,
            groups=self.groups,
            ratio=self.ratio,
            min_channels=self.min_channels,
            attention_channels=self.attention_channels,
            divisor=self.divisor,
            split_input=self.split_input,
            select=self.select,
            activation=keras.activations.serialize(self.activation),
            norm_momentum=self.norm_momentum,
            norm_epsilon=self.norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            data_format=self.data_format,
        )
        return config
