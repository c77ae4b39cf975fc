"""SE-ResNet, SE-ResNeXt, SENet-154, SK-ResNet and SKNet: one ResNet builder, attention by name.

`ResNet` builds every member of the family, as timm's `ResNet` does: the block (basic or
bottleneck), its cardinality and width, the stem, and the attention module (`"se"`: a
`SqueezeExcite` on the residual branch before the addition; `"sk"`: a `SelectiveKernel` in
place of the block's 3x3 convolution; None: a plain ResNet/ResNeXt) are arguments. The public
constructors (`se_resnet.py`, `sk_resnet.py`) are short presets of it (`preset`) with the
`keras.applications` signature.

The structure matches timm and the original Caffe models weight for weight: convolutions
without bias, BatchNorm with epsilon 1e-5 (momentum 0.9, PyTorch's 0.1), explicit symmetric
zero padding before every strided convolution (Keras' `"same"` pads bottom/right only), and
the Caffe models' ceil-mode max pool.

Layer names are systematic so that converters can map them: `stem_conv1`, `stem_bn1`, ...;
`stage{s}_block{b}_conv{i}` / `_bn{i}` / `_relu{i}` for the i-th convolution of block b
(1-based) of stage s (1-4, timm's `layer1`-`layer4`), `stage{s}_block{b}_se` and `_sk` for
the attention, `_shortcut_conv` / `_shortcut_bn` for projection shortcuts, `_add` and `_out`
for the addition and its ReLU; `avg_pool`, `dropout` and `predictions` for the head.
"""

import dataclasses

import keras
from keras_se.applications import pretrained, signature, weights_file
from keras_se.applications.conv_bn import NORM_EPSILON, NORM_MOMENTUM, conv_bn

from keras_se.layers import SelectiveKernel, SqueezeExcite, common

__all__ = ["APPLICATION_ARGUMENTS", "RESNEXT_32X4D", "ResNet", "preset"]

BLOCKS = ("basic", "bottleneck")
ATTENTIONS = (None, "se", "sk")
STEMS = ("7x7", "deep", "cifar")
STEM_POOLS = ("pad", "ceil")
DEFAULT_SIZE = 224
MIN_SIZE = 32
CIFAR_SIZE = 32  # the default input of the networks with the CIFAR stem
EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv_initializer():
    """He initialization with fan-out, as timm and torchvision initialise ResNet convolutions."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


@dataclasses.dataclass(frozen=True)
class _Design:
    """The settings every block of one network shares."""

    block: str
    attention: str | None
    groups: int
    width_per_group: int
    first_width_divisor: int
    stride_in_1x1: bool
    relu_before_se: bool
    shortcut_kernel_size: int
    reduction_ratio: float
    attention_options: dict
    data_format: str

    @property
    def axis(self):
        return common.channel_axis(self.data_format)

    def conv_bn(self, x, filters, kernel_size, *, prefix, suffix, strides=1, groups=1, relu=True):
        """`conv_bn` with the family's layer names and He initialization."""
        names = {kind: f"{prefix}{kind}{suffix}" for kind in ("pad", "conv", "bn", "relu")}
        return conv_bn(
            x,
            filters,
            kernel_size,
            names=names,
            data_format=self.data_format,
            strides=strides,
            groups=groups,
            relu=relu,
            kernel_initializer=_conv_initializer(),
        )

    def selective_kernel(self, x, filters, *, strides, groups, prefix):
        return SelectiveKernel(
            filters=filters,
            strides=strides,
            groups=groups,
            ratio=self.reduction_ratio,
            norm_momentum=NORM_MOMENTUM,
            norm_epsilon=NORM_EPSILON,
            kernel_initializer=_conv_initializer(),
            data_format=self.data_format,
            name=f"{prefix}sk",
            **self.attention_options,
        )(x)

    def residual_branch(self, x, planes, strides, prefix):
        """The block's residual branch, ending with SE when the attention is `"se"`."""
        sk = self.attention == "sk"
        if self.block == "basic":
            if sk:
                x = self.selective_kernel(x, planes, strides=strides, groups=1, prefix=prefix)
            else:
                x = self.conv_bn(x, planes, 3, strides=strides, prefix=prefix, suffix=1)
            x = self.conv_bn(x, planes, 3, prefix=prefix, suffix=2, relu=self.relu_before_se)
        else:
            width = planes * self.width_per_group // 64 * self.groups
            strides_1x1, strides_3x3 = (strides, 1) if self.stride_in_1x1 else (1, strides)
            x = self.conv_bn(
                x,
                width // self.first_width_divisor,
                1,
                strides=strides_1x1,
                prefix=prefix,
                suffix=1,
            )
            if sk:
                x = self.selective_kernel(
                    x, width, strides=strides_3x3, groups=self.groups, prefix=prefix
                )
            else:
                x = self.conv_bn(
                    x, width, 3, strides=strides_3x3, groups=self.groups, prefix=prefix, suffix=2
                )
            x = self.conv_bn(x, planes * 4, 1, prefix=prefix, suffix=3, relu=False)
        if self.attention == "se":
            x = SqueezeExcite(
                ratio=self.reduction_ratio,
                data_format=self.data_format,
                name=f"{prefix}se",
                **self.attention_options,
            )(x)
        return x

    def residual_block(self, x, planes, strides, prefix):
        out_channels = planes * EXPANSION[self.block]
        shortcut = x
        if strides != 1 or x.shape[self.axis] != out_channels:
            shortcut = self.conv_bn(
                x,
                out_channels,
                self.shortcut_kernel_size if strides != 1 else 1,
                strides=strides,
                prefix=f"{prefix}shortcut_",
                suffix="",
                relu=False,
            )
        x = self.residual_branch(x, planes, strides, prefix)
        x = keras.layers.Add(name=f"{prefix}add")([x, shortcut])
        return keras.layers.ReLU(name=f"{prefix}out")(x)


def _stem(x, stem, stem_width, stem_pool, design):
    """7x7/2 conv (or three 3x3 convs, the first strided) -> 3x3/2 max pool; or for 32x32
    images one 3x3/1 conv and no pool."""
    if stem == "cifar":
        return design.conv_bn(x, stem_width, 3, prefix="stem_", suffix=1)
    if stem == "7x7":
        x = design.conv_bn(x, stem_width, 7, strides=2, prefix="stem_", suffix=1)
    else:
        widths = (stem_width, stem_width, 2 * stem_width)
        for index, width in enumerate(widths, 1):
            strides = 2 if index == 1 else 1
            x = design.conv_bn(x, width, 3, strides=strides, prefix="stem_", suffix=index)
    # Both pools follow a ReLU, so zero padding acts as PyTorch's -inf padding. `"pad"` is
    # PyTorch's padding=1; `"ceil"` is Caffe's ceil mode without padding, which equals one
    # extra row and column at the bottom/right for every input size.
    padding = 1 if stem_pool == "pad" else ((0, 1), (0, 1))
    x = keras.layers.ZeroPadding2D(padding, data_format=design.data_format, name="stem_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, 2, data_format=design.data_format, name="stem_pool")(x)


def _check_depths(depths):
    if not isinstance(depths, (list, tuple)) or not depths:
        raise ValueError(f"`depths` must be a non-empty list of block counts, got {depths!r}.")
    return tuple(common.check_int(f"depths[{i}]", d) for i, d in enumerate(depths))


def ResNet(
    depths,
    *,
    block="bottleneck",
    attention="se",
    groups=1,
    width_per_group=64,
    first_width_divisor=1,
    stem="7x7",
    stem_width=64,
    stem_pool=None,
    stride_in_1x1=False,
    relu_before_se=False,
    shortcut_kernel_size=1,
    reduction_ratio=16,
    attention_options=None,
    dropout_rate=0.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet",
    imagenet_twin=None,
):
    """Build any ResNet of the family: SE, SK or no attention, basic or bottleneck blocks.

    Args:
        depths: blocks per stage, e.g. `(3, 4, 6, 3)` for the 50-layer networks. Stage s has
            `64 * 2**(s-1)` planes; every stage after the first starts with a stride 2.
        block: `"basic"` (two 3x3 convs) or `"bottleneck"` (1x1, 3x3, 1x1 with 4x expansion).
        attention: `"se"` (SqueezeExcite on the residual branch before the addition), `"sk"`
            (SelectiveKernel in place of the 3x3 conv: the first conv of a basic block, the
            middle one of a bottleneck) or None (a plain ResNet / ResNeXt).
        groups: cardinality of the bottleneck's 3x3 conv (32 for ResNeXt 32x4d).
        width_per_group: width of each group at the first stage (4 for ResNeXt 32x4d); the
            bottleneck width is `planes * width_per_group // 64 * groups`.
        first_width_divisor: the bottleneck's first 1x1 has `width // first_width_divisor`
            channels (2 in SENet-154).
        stem: `"7x7"` (one 7x7/2 conv) or `"deep"` (3x3/2, 3x3, 3x3 convs of `stem_width`,
            `stem_width`, `2 * stem_width` channels, as SENet-154), each followed by a 3x3/2
            max pool; or `"cifar"`, one 3x3/1 conv and no pool, for 32x32 images (the CIFAR
            ResNets): the network then keeps the input's resolution through its first stage,
            its default input is 32x32 and it takes inputs down to `2 ** (stages - 1)`.
        stem_width: channels of the stem (of its first two convs with `stem="deep"`).
        stem_pool: the pooled stems' max pool: `"pad"` (the default: 3x3/2 with padding 1,
            timm / torchvision) or `"ceil"` (no padding, ceil mode: the Caffe models and
            timm's `legacy_*` ports). None with `stem="cifar"`, which has no pool.
        stride_in_1x1: put a bottleneck's stride on its first 1x1 conv (the original Caffe
            SE-ResNet) instead of the 3x3 (timm, torchvision). Bottleneck blocks only.
        relu_before_se: apply a ReLU to a basic block's residual branch after its second BN,
            before the SE (timm's `legacy_seresnet18/34`, whose ImageNet weights were trained
            so). Basic blocks only.
        shortcut_kernel_size: kernel of strided projection shortcuts: 1, or 3 as SENet-154
            (padded by 1). Projections at stride 1 are always 1x1.
        reduction_ratio: r of the SE or SK attention.
        attention_options: further keyword arguments of `SqueezeExcite` or `SelectiveKernel`
            (e.g. `{"split_input": True, "min_channels": 16, "divisor": 16}` for skresnet18).
        dropout_rate: dropout before the classifier (0.2 in SENet-154).
        include_top: whether to build the classifier (`avg_pool` -> `predictions`).
        weights: None (random initialization), `"imagenet"` (with `imagenet_twin`), or the
            path of a `.weights.h5` / `.keras` file saved from the same architecture; a file
            is checked layer by layer before loading. With `include_top=False` the file of
            the full model loads (its classifier is left out); `"imagenet"` with `classes`
            other than 1000 loads everything but the classifier, which starts fresh.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        imagenet_twin: the `pretrained.TimmTwin` whose converted checkpoint `weights="imagenet"`
            loads; the public constructors pass the twin that matches their settings.

    Returns:
        A `keras.Model`.

    Example:
    >>> resnext = ResNet((1, 1, 1, 1), attention=None, groups=32, width_per_group=4,
    ...                  input_shape=(64, 64, 3), classes=10, name="resnext10")
    >>> resnext.output_shape
    (None, 10)
    """
    depths = _check_depths(depths)
    common.check_choice("block", block, BLOCKS)
    common.check_choice("attention", attention, ATTENTIONS)
    common.check_choice("stem", stem, STEMS)
    if stem == "cifar" and stem_pool is not None:
        raise ValueError(
            f"`stem_pool` must be None with stem='cifar' (no pool), got {stem_pool!r}."
        )
    if stem != "cifar":
        stem_pool = common.check_choice("stem_pool", stem_pool or "pad", STEM_POOLS)
    if stride_in_1x1 and block != "bottleneck":
        raise ValueError(
            "`stride_in_1x1=True` applies to bottleneck blocks only, got block='basic'."
        )
    if relu_before_se and block != "basic":
        raise ValueError(
            "`relu_before_se=True` applies to basic blocks only, got block='bottleneck'."
        )
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise ValueError(
            f"Basic blocks support groups=1 and width_per_group=64 only, got groups={groups!r} "
            f"and width_per_group={width_per_group!r}."
        )
    common.check_choice("shortcut_kernel_size", shortcut_kernel_size, (1, 3))
    common.check_number("reduction_ratio", reduction_ratio)
    common.check_int("stem_width", stem_width)
    if attention_options is not None and not isinstance(attention_options, dict):
        raise TypeError(f"`attention_options` must be a dict, got {attention_options!r}.")
    common.check_rate("dropout_rate", dropout_rate)
    signature.check_arguments(
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        imagenet_available=imagenet_twin is not None,
        imagenet_note="ResNet(...) itself does not pick a checkpoint: call the named "
        "constructor with the timm twin's settings.",
    )
    design = _Design(
        block=block,
        attention=attention,
        groups=common.check_int("groups", groups),
        width_per_group=common.check_int("width_per_group", width_per_group),
        first_width_divisor=common.check_int("first_width_divisor", first_width_divisor),
        stride_in_1x1=bool(stride_in_1x1),
        relu_before_se=bool(relu_before_se),
        shortcut_kernel_size=shortcut_kernel_size,
        reduction_ratio=reduction_ratio,
        attention_options=dict(attention_options or {}),
        data_format=keras.config.image_data_format(),
    )
    inputs, x = signature.model_input(
        input_tensor,
        input_shape,
        include_top=include_top,
        default_size=CIFAR_SIZE if stem == "cifar" else DEFAULT_SIZE,
        min_size=2 ** (len(depths) - 1) if stem == "cifar" else MIN_SIZE,
    )
    # Download and convert before building, so that an offline machine fails at once.
    imagenet_path = (
        pretrained.imagenet_weights_path(imagenet_twin) if weights == "imagenet" else None
    )
    x = _stem(x, stem, stem_width, stem_pool, design)
    for stage, depth in enumerate(depths, 1):
        planes = 64 * 2 ** (stage - 1)
        for index in range(depth):
            strides = 2 if stage > 1 and index == 0 else 1
            x = design.residual_block(x, planes, strides, prefix=f"stage{stage}_block{index + 1}_")
    x = signature.classifier_head(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
    )
    model = keras.Model(inputs, x, name=name)
    if weights == "imagenet":  # with another `classes`: a new classifier on ImageNet features
        return weights_file.load_weights(
            model, imagenet_path, include_top=include_top, new_head=classes != 1000
        )
    return weights_file.load_weights(model, weights, include_top=include_top)


APPLICATION_ARGUMENTS = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
)
# ResNeXt's 32x4d grouped bottleneck (ResNeXt-50/101, SE-ResNeXt, SKNet).
RESNEXT_32X4D = {"groups": 32, "width_per_group": 4}


def preset(constructor, arguments, **architecture):
    """`ResNet` with a public constructor's `arguments` (its `locals()`: the
    `keras.applications` arguments and its keyword options) and its fixed `architecture`;
    `weights="imagenet"` loads the checkpoint of the timm twin that the options match, and
    `weights="NAME.TAG"` the timm checkpoint of that pretrained name (`seresnet50.a3_in1k`),
    if the options give its structure.

    Example:
    >>> def TinySEResNet(include_top=True, weights=None, input_tensor=None, input_shape=None,
    ...                  pooling=None, classes=1000, classifier_activation="softmax",
    ...                  name="tiny", *, reduction_ratio=16):
    ...     return preset(TinySEResNet, locals(), depths=(1, 1, 1, 1), block="basic")
    >>> TinySEResNet(input_shape=(32, 32, 3), classes=10).output_shape
    (None, 10)
    """
    options = {k: v for k, v in arguments.items() if k not in APPLICATION_ARGUMENTS}
    twin = pretrained.checkpoint_twin(constructor, arguments["weights"], **options)
    if twin is not None:
        arguments = {**arguments, "weights": "imagenet"}
    return ResNet(**architecture, **arguments, imagenet_twin=twin)
