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
import itertools

import keras
from keras_se.applications import pretrained, signature, weights_file
from keras_se.applications.conv_bn import (
    NORM_EPSILON,
    NORM_MOMENTUM,
    batch_norm,
    conv,
    conv_bn,
    he_initializer,
)

from keras_se.layers import SelectiveKernel, SqueezeExcite, common

__all__ = ["APPLICATION_ARGUMENTS", "RESNEXT_32X4D", "ResNet", "preset"]

BLOCKS = ("basic", "bottleneck", "preact_bottleneck")
ATTENTIONS = (None, "se", "sk")
SHORTCUTS = ("projection", "zero_pad")
STEMS = ("7x7", "deep", "cifar")
STEM_POOLS = ("pad", "ceil")
DEFAULT_SIZE = 224
MIN_SIZE = 32
CIFAR_SIZE = 32  # the default input of the networks with the CIFAR stem
EXPANSION = {"basic": 1, "bottleneck": 4, "preact_bottleneck": 4}


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
    shortcut: str
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
            kernel_initializer=he_initializer(),
        )

    def selective_kernel(self, x, filters, *, strides, groups, prefix):
        return SelectiveKernel(
            filters=filters,
            strides=strides,
            groups=groups,
            ratio=self.reduction_ratio,
            norm_momentum=NORM_MOMENTUM,
            norm_epsilon=NORM_EPSILON,
            kernel_initializer=he_initializer(),
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
        return self.attention_layer(x, prefix)

    def attention_layer(self, x, prefix):
        """SE at the end of a residual branch, when the attention is `"se"`."""
        if self.attention != "se":
            return x
        return SqueezeExcite(
            ratio=self.reduction_ratio,
            data_format=self.data_format,
            name=f"{prefix}se",
            **self.attention_options,
        )(x)

    def zero_pad_shortcut(self, x, out_channels, strides, prefix):
        """He et al.'s parameter-free shortcut (their option A, fb.resnet.torch's type A):
        every `strides`-th position, then zero channels appended up to `out_channels`."""
        if strides != 1:
            x = keras.layers.MaxPooling2D(
                1, strides, data_format=self.data_format, name=f"{prefix}shortcut_subsample"
            )(x)
        if out_channels != x.shape[self.axis]:
            zeros = keras.layers.Rescaling(0.0, name=f"{prefix}shortcut_zeros")(x)
            x = keras.layers.Concatenate(self.axis, name=f"{prefix}shortcut_pad")([x, zeros])
        return x

    def residual_block(self, x, planes, strides, prefix):
        if self.block == "preact_bottleneck":
            return self.preact_block(x, planes, strides, prefix)
        out_channels = planes * EXPANSION[self.block]
        shortcut = x
        if strides != 1 or x.shape[self.axis] != out_channels:
            if self.shortcut == "zero_pad":
                shortcut = self.zero_pad_shortcut(x, out_channels, strides, prefix)
            else:
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

    def preact_block(self, x, planes, strides, prefix):
        """He et al.'s pre-activation bottleneck ("Identity Mappings in Deep Residual
        Networks"): BN -> ReLU -> 1x1, BN -> ReLU -> 3x3 (strided), BN -> ReLU -> 1x1 of 4x
        planes, SE on that, added to the shortcut with nothing after the addition. A
        projection shortcut (1x1 conv, no BN) takes the pre-activated input, as the CIFAR
        implementations (kuangliu's pytorch-cifar `PreActBottleneck`) do."""

        def preactivated(x, index):
            names = {kind: f"{prefix}{kind}{index}" for kind in ("bn", "relu")}
            x = batch_norm(x, name=names["bn"], data_format=self.data_format)
            return keras.layers.ReLU(name=names["relu"])(x)

        def convolution(x, filters, kernel_size, name, strides=1):
            return conv(
                x,
                filters,
                kernel_size,
                names={"pad": name.replace("conv", "pad"), "conv": name},
                data_format=self.data_format,
                strides=strides,
                kernel_initializer=he_initializer(),
            )

        out_channels = planes * EXPANSION[self.block]
        inputs = preactivated(x, 1)
        shortcut = x
        if strides != 1 or x.shape[self.axis] != out_channels:
            shortcut = convolution(inputs, out_channels, 1, f"{prefix}shortcut_conv", strides)
        x = convolution(inputs, planes, 1, f"{prefix}conv1")
        x = convolution(preactivated(x, 2), planes, 3, f"{prefix}conv2", strides)
        x = convolution(preactivated(x, 3), out_channels, 1, f"{prefix}conv3")
        x = self.attention_layer(x, prefix)
        return keras.layers.Add(name=f"{prefix}add")([x, shortcut])


def _stem(x, stem, stem_width, stem_pool, design):
    """7x7/2 conv (or three 3x3 convs, the first strided) -> 3x3/2 max pool; or for 32x32
    images one 3x3/1 conv and no pool."""
    if stem == "cifar":
        if design.block == "preact_bottleneck":  # each block normalizes its own input
            names = {"pad": "stem_pad1", "conv": "stem_conv1"}
            return conv(
                x,
                stem_width,
                3,
                names=names,
                data_format=design.data_format,
                kernel_initializer=he_initializer(),
            )
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


def _check_widths(widths, stages, stem_width, block, shortcut):
    """The planes of each stage, checked: one per stage, and with `shortcut="zero_pad"` each
    stage's output keeping or doubling the channels of its input."""
    if widths is None:
        widths = tuple(64 * 2**stage for stage in range(stages))
    if not isinstance(widths, (list, tuple)) or len(widths) != stages:
        raise ValueError(
            f"`widths` must list the planes of each of the {stages} stages, got {widths!r}."
        )
    widths = tuple(common.check_int(f"widths[{i}]", w) for i, w in enumerate(widths))
    if shortcut == "zero_pad":
        channels = [stem_width] + [w * EXPANSION[block] for w in widths]
        for before, after in itertools.pairwise(channels):
            if after not in (before, 2 * before):
                raise ValueError(
                    "shortcut='zero_pad' needs every stage to keep or double the channels "
                    f"(stem_width, then widths x {EXPANSION[block]}); got {channels}."
                )
    return widths


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
    widths=None,
    stride_in_1x1=False,
    relu_before_se=False,
    shortcut="projection",
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
            `widths[s-1]` planes; every stage after the first starts with a stride 2.
        block: `"basic"` (two 3x3 convs), `"bottleneck"` (1x1, 3x3, 1x1 with 4x expansion) or
            `"preact_bottleneck"` (He et al.'s pre-activation bottleneck, BN -> ReLU before
            each conv and nothing after the addition; the network then ends with BN -> ReLU
            (`final_bn`, `final_relu`), and a CIFAR stem is its conv alone). SE only.
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
        widths: planes of each stage; default `64 * 2**(s-1)` for stage s (64, 128, 256,
            512). He et al.'s CIFAR ResNets: `(16, 32, 64)` with `stem_width=16`.
        stem_pool: the pooled stems' max pool: `"pad"` (the default: 3x3/2 with padding 1,
            timm / torchvision) or `"ceil"` (no padding, ceil mode: the Caffe models and
            timm's `legacy_*` ports). None with `stem="cifar"`, which has no pool.
        stride_in_1x1: put a bottleneck's stride on its first 1x1 conv (the original Caffe
            SE-ResNet) instead of the 3x3 (timm, torchvision). Bottleneck blocks only.
        relu_before_se: apply a ReLU to a basic block's residual branch after its second BN,
            before the SE (timm's `legacy_seresnet18/34`, whose ImageNet weights were trained
            so). Basic blocks only.
        shortcut: where a block changes the shape, `"projection"` (a 1x1 conv and BN; He et
            al.'s option B) or `"zero_pad"` (their parameter-free option A, used by their CIFAR
            ResNets: every second position, then zero channels appended; each stage must keep
            or double the channels). Basic and bottleneck blocks; the pre-activation block
            always projects (a 1x1 conv without BN).
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
            f"`relu_before_se=True` applies to basic blocks only, got block={block!r}."
        )
    if block != "bottleneck" and (groups != 1 or width_per_group != 64):
        raise ValueError(
            f"{block.capitalize().replace('_', '-')} blocks support groups=1 and "
            f"width_per_group=64 only, got groups={groups!r} and "
            f"width_per_group={width_per_group!r}."
        )
    if block == "preact_bottleneck" and attention == "sk":
        raise ValueError(
            "block='preact_bottleneck' supports attention='se' or None, got attention='sk'."
        )
    common.check_choice("shortcut", shortcut, SHORTCUTS)
    if shortcut == "zero_pad" and block == "preact_bottleneck":
        raise ValueError(
            "shortcut='zero_pad' applies to basic and bottleneck blocks; the pre-activation "
            "block projects its shortcut."
        )
    common.check_int("stem_width", stem_width)
    widths = _check_widths(widths, len(depths), stem_width, block, shortcut)
    common.check_choice("shortcut_kernel_size", shortcut_kernel_size, (1, 3))
    common.check_number("reduction_ratio", reduction_ratio)
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
        shortcut=shortcut,
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
    for stage, (depth, planes) in enumerate(zip(depths, widths, strict=True), 1):
        for index in range(depth):
            strides = 2 if stage > 1 and index == 0 else 1
            x = design.residual_block(x, planes, strides, prefix=f"stage{stage}_block{index + 1}_")
    if block == "preact_bottleneck":
        x = batch_norm(x, name="final_bn", data_format=design.data_format)
        x = keras.layers.ReLU(name="final_relu")(x)
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
