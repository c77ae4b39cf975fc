"""SE-ResNet, SE-ResNeXt, SENet-154, SK-ResNet and SKNet: one ResNet builder, attention by name.

`ResNet` builds every member of the family, as timm's `ResNet` does: the block (basic or
bottleneck), its cardinality and width, the stem, and the attention module (`"se"`: a
`SqueezeExcite` on the residual branch before the addition; `"sk"`: a `SelectiveKernel` in
place of the block's 3x3 convolution; None: a plain ResNet/ResNeXt) are arguments. The public
constructors are short presets of it with the `keras.applications` signature.

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
import inspect

import keras
from keras_se.applications import base
from keras_se.applications import weights as pretrained

from keras_se.layers import GroupedConv2D, SelectiveKernel, SqueezeExcite, common

__all__ = [
    "ResNeXt50",
    "ResNet",
    "ResNet50",
    "SENet154",
    "SEResNeXt50",
    "SEResNeXt101",
    "SEResNet18",
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet152",
    "SKNet26",
    "SKNet50",
    "SKNet101",
    "SKResNet18",
    "SKResNet34",
]

BLOCKS = ("basic", "bottleneck")
ATTENTIONS = (None, "se", "sk")
STEMS = ("7x7", "deep")
STEM_POOLS = ("pad", "ceil")
DEFAULT_SIZE = 224
MIN_SIZE = 32
NORM_MOMENTUM = 0.9
NORM_EPSILON = 1e-5
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
        """Convolution (no bias) -> BatchNorm -> optional ReLU, padded symmetrically."""
        padding = "same"
        if strides > 1 and kernel_size > 1:
            x = keras.layers.ZeroPadding2D(
                kernel_size // 2, data_format=self.data_format, name=f"{prefix}pad{suffix}"
            )(x)
            padding = "valid"
        conv = GroupedConv2D if groups > 1 else keras.layers.Conv2D
        x = conv(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            groups=groups,
            use_bias=False,
            kernel_initializer=_conv_initializer(),
            data_format=self.data_format,
            name=f"{prefix}conv{suffix}",
        )(x)
        x = keras.layers.BatchNormalization(
            axis=self.axis, momentum=NORM_MOMENTUM, epsilon=NORM_EPSILON, name=f"{prefix}bn{suffix}"
        )(x)
        if relu:
            x = keras.layers.ReLU(name=f"{prefix}relu{suffix}")(x)
        return x

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
    """7x7/2 conv (or three 3x3 convs, the first strided) -> 3x3/2 max pool."""
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
    stem_pool="pad",
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
            `stem_width`, `2 * stem_width` channels, as SENet-154).
        stem_width: channels of the stem (of its first two convs with `stem="deep"`).
        stem_pool: `"pad"` (3x3/2 max pool with padding 1, timm / torchvision) or `"ceil"`
            (no padding, ceil mode: the Caffe models and timm's `legacy_*` ports).
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
            is checked layer by layer before loading.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        imagenet_twin: the `weights.TimmTwin` whose converted checkpoint `weights="imagenet"`
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
    common.check_choice("stem_pool", stem_pool, STEM_POOLS)
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
    if not (isinstance(dropout_rate, (int, float)) and 0 <= dropout_rate < 1):
        raise ValueError(f"`dropout_rate` must be in [0, 1), got {dropout_rate!r}.")
    base.check_arguments(
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
    inputs, x = base.model_input(
        input_tensor,
        input_shape,
        include_top=include_top,
        default_size=DEFAULT_SIZE,
        min_size=MIN_SIZE,
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
    x = base.classifier_head(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
    )
    model = keras.Model(inputs, x, name=name)
    if weights == "imagenet":
        return base.load_weights(model, imagenet_path, include_top=include_top)
    return base.load_weights(model, weights)


_APPLICATION_ARGS_DOC = """\
        include_top: whether to build the classifier (`avg_pool` -> `predictions`).
        weights: None (random initialization), `"imagenet"` (the timm twin's ImageNet
            weights, see above; `classes` must then be 1000 with the top), or the path of a
            `.weights.h5` / `.keras` file saved from the same architecture, checked layer by
            layer before loading.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name."""

_KNOB_DOCS = {
    "reduction_ratio": "reduction ratio r of the attention.",
    "stride_in_1x1": "stride on the bottleneck's first 1x1 (Caffe) instead of its 3x3 (timm).",
    "stem_pool": '`"ceil"` (Caffe ceil-mode max pool) or `"pad"` (padding 1, timm).',
    "relu_before_se": "a ReLU after the second BN of each block, before SE (timm's legacy\n"
    "            SE-ResNet-18/34).",
    "dropout_rate": "dropout before the classifier.",
}


def _twins_doc(function_name, knobs, plain_twin_of=()):
    """The docstring lines naming the constructor's timm twins and their ImageNet weights."""
    if plain_twin_of:
        names = " and ".join(f"`{name}`" for name in plain_twin_of)
        return (
            f"The plain twin of {names}: the same builder and layout without attention,\n"
            "    the baseline of the SE overhead benchmarks. keras-se converts no checkpoint for\n"
            '    it: `weights="imagenet"` is not available.'
        )
    twins = [twin for twin in pretrained.TWINS if twin.constructor == function_name]
    if not twins:
        return (
            "No timm model has this structure (its parameter count is the formula's);\n"
            '    `weights="imagenet"` is not available.'
        )
    lines = ["Same structure and trainable parameter count as timm's"]
    for twin in twins:
        changed = {k: v for k, v in twin.options.items() if knobs.get(k) != v}
        settings = ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "the defaults"
        lines.append(f"    `{twin.name}` (with {settings}),")
    lines[-1] = lines[-1].rstrip(",") + "."
    lines.append(
        '    `weights="imagenet"` loads that twin\'s timm checkpoint (`name.tag`: '
        + ", ".join(f"`{twin.pretrained_name}`" for twin in twins)
        + "),\n    converted and cached on first use."
    )
    return "\n".join(lines)


def _constructor(function_name, *, summary, model_name, knobs, plain_twin_of=(), **architecture):
    """A public constructor: `ResNet` with a fixed architecture and the `keras.applications`
    signature, plus the keyword options in `knobs` (name -> default). `plain_twin_of` names the
    attention models whose plain twin this is."""

    def constructor(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=model_name,
        **options,
    ):
        unknown = sorted(set(options) - set(knobs))
        if unknown:
            allowed = ", ".join(knobs)
            raise TypeError(
                f"{function_name}() got an unexpected keyword argument {unknown[0]!r}; besides "
                f"the keras.applications arguments it accepts {allowed}."
            )
        twin = pretrained.imagenet_twin(function_name, **options) if weights == "imagenet" else None
        return ResNet(
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            imagenet_twin=twin,
            **architecture,
            **{**knobs, **options},
        )

    signature = inspect.signature(constructor)
    parameters = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    parameters += [
        inspect.Parameter(knob, inspect.Parameter.KEYWORD_ONLY, default=default)
        for knob, default in knobs.items()
    ]
    constructor.__signature__ = signature.replace(parameters=parameters)
    constructor.__name__ = constructor.__qualname__ = function_name
    knob_docs = "\n".join(
        f"        {knob}: {_KNOB_DOCS[knob]} Default {value!r}." for knob, value in knobs.items()
    )
    constructor.__doc__ = f"""{summary}

    {_twins_doc(function_name, knobs, plain_twin_of)}

    Args:
{_APPLICATION_ARGS_DOC}
{knob_docs}

    Returns:
        A `keras.Model`.

    Example:
    >>> model = {function_name}(weights=None, input_shape=(64, 64, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    """
    return constructor


_SE_CAFFE = {"reduction_ratio": 16, "stem_pool": "ceil"}
_SE_LEGACY_BASIC = {**_SE_CAFFE, "relu_before_se": True}
_SE_CAFFE_BOTTLENECK = {"reduction_ratio": 16, "stride_in_1x1": True, "stem_pool": "ceil"}
_SE = dict(attention="se")
_SE_RESNEXT = dict(attention="se", groups=32, width_per_group=4)
_SK_RESNET = dict(
    block="basic",
    attention="sk",
    attention_options={"split_input": True, "min_channels": 16, "divisor": 16},
)
_SKNET = dict(attention="sk", groups=32, width_per_group=4, attention_options={"min_channels": 32})

SEResNet18 = _constructor(
    "SEResNet18",
    summary="SE-ResNet-18 (Hu et al.): basic blocks 2/2/2/2, SE before each addition.",
    model_name="se_resnet18",
    knobs=_SE_LEGACY_BASIC,
    depths=(2, 2, 2, 2),
    block="basic",
    **_SE,
)
SEResNet34 = _constructor(
    "SEResNet34",
    summary="SE-ResNet-34 (Hu et al.): basic blocks 3/4/6/3, SE before each addition.",
    model_name="se_resnet34",
    knobs=_SE_LEGACY_BASIC,
    depths=(3, 4, 6, 3),
    block="basic",
    **_SE,
)
SEResNet50 = _constructor(
    "SEResNet50",
    summary="SE-ResNet-50 (Hu et al.): bottlenecks 3/4/6/3 in the original Caffe layout.",
    model_name="se_resnet50",
    knobs=_SE_CAFFE_BOTTLENECK,
    depths=(3, 4, 6, 3),
    **_SE,
)
SEResNet101 = _constructor(
    "SEResNet101",
    summary="SE-ResNet-101 (Hu et al.): bottlenecks 3/4/23/3 in the original Caffe layout.",
    model_name="se_resnet101",
    knobs=_SE_CAFFE_BOTTLENECK,
    depths=(3, 4, 23, 3),
    **_SE,
)
SEResNet152 = _constructor(
    "SEResNet152",
    summary="SE-ResNet-152 (Hu et al.): bottlenecks 3/8/36/3 in the original Caffe layout.",
    model_name="se_resnet152",
    knobs=_SE_CAFFE_BOTTLENECK,
    depths=(3, 8, 36, 3),
    **_SE,
)
ResNet50 = _constructor(
    "ResNet50",
    summary="ResNet-50 without attention, in SEResNet50's layout (by default the Caffe one).",
    model_name="resnet50",
    knobs={"stride_in_1x1": True, "stem_pool": "ceil"},
    plain_twin_of=("SEResNet50",),
    depths=(3, 4, 6, 3),
    attention=None,
)
ResNeXt50 = _constructor(
    "ResNeXt50",
    summary="ResNeXt-50 (32x4d) without attention: grouped bottlenecks 3/4/6/3.",
    model_name="resnext50_32x4d",
    knobs={"stem_pool": "pad"},
    plain_twin_of=("SEResNeXt50", "SKNet50"),
    depths=(3, 4, 6, 3),
    attention=None,
    groups=32,
    width_per_group=4,
)
SEResNeXt50 = _constructor(
    "SEResNeXt50",
    summary="SE-ResNeXt-50 (32x4d): grouped bottlenecks 3/4/6/3, stride on the 3x3.",
    model_name="se_resnext50_32x4d",
    knobs={"reduction_ratio": 16, "stem_pool": "pad"},
    depths=(3, 4, 6, 3),
    **_SE_RESNEXT,
)
SEResNeXt101 = _constructor(
    "SEResNeXt101",
    summary="SE-ResNeXt-101 (32x4d): grouped bottlenecks 3/4/23/3, stride on the 3x3.",
    model_name="se_resnext101_32x4d",
    knobs={"reduction_ratio": 16, "stem_pool": "pad"},
    depths=(3, 4, 23, 3),
    **_SE_RESNEXT,
)
SENet154 = _constructor(
    "SENet154",
    summary=(
        "SENet-154: 64x4d grouped bottlenecks 3/8/36/3 with the first 1x1 halved, a deep stem\n"
        "    (3x3 convs of 64, 64, 128) and 3x3 stride-2 projection shortcuts."
    ),
    model_name="senet154",
    knobs={**_SE_CAFFE, "dropout_rate": 0.2},
    depths=(3, 8, 36, 3),
    attention="se",
    groups=64,
    width_per_group=4,
    first_width_divisor=2,
    stem="deep",
    shortcut_kernel_size=3,
)
SKResNet18 = _constructor(
    "SKResNet18",
    summary="SK-ResNet-18: basic blocks 2/2/2/2 whose first 3x3 is a SelectiveKernel.",
    model_name="sk_resnet18",
    knobs={"reduction_ratio": 8},
    depths=(2, 2, 2, 2),
    **_SK_RESNET,
)
SKResNet34 = _constructor(
    "SKResNet34",
    summary="SK-ResNet-34: basic blocks 3/4/6/3 whose first 3x3 is a SelectiveKernel.",
    model_name="sk_resnet34",
    knobs={"reduction_ratio": 8},
    depths=(3, 4, 6, 3),
    **_SK_RESNET,
)
SKNet26 = _constructor(
    "SKNet26",
    summary="SKNet-26 (Li et al.): SK-ResNeXt 32x4d bottlenecks 2/2/2/2, M=2, L=32.",
    model_name="sknet26",
    knobs={"reduction_ratio": 16},
    depths=(2, 2, 2, 2),
    **_SKNET,
)
SKNet50 = _constructor(
    "SKNet50",
    summary="SKNet-50 (Li et al.): SK-ResNeXt 32x4d bottlenecks 3/4/6/3, M=2, L=32.",
    model_name="sknet50",
    knobs={"reduction_ratio": 16},
    depths=(3, 4, 6, 3),
    **_SKNET,
)
SKNet101 = _constructor(
    "SKNet101",
    summary="SKNet-101 (Li et al.): SK-ResNeXt 32x4d bottlenecks 3/4/23/3, M=2, L=32.",
    model_name="sknet101",
    knobs={"reduction_ratio": 16},
    depths=(3, 4, 23, 3),
    **_SKNET,
)
