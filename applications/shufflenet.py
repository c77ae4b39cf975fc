"""SE-ShuffleNet and its plain twin: ShuffleNet v1 (Zhang et al., 2018) with an SE block in
each unit, the SENet paper's SE-ShuffleNet (Table 3).

ShuffleNet's unit is a bottleneck of a grouped 1x1 convolution, a channel shuffle, a 3x3
depthwise convolution and a second grouped 1x1 convolution, each followed by BatchNorm (ReLU
after the first only). With stride 1 the branch is added to the input; with stride 2 it is
concatenated with a 3x3/2 average pool of the input (the unit's output widens). ReLU ends each
unit. The paper's network (its Table 1): a 3x3/2 convolution of 24 channels, a 3x3/2 max pool,
stages 2-4 of 4, 8 and 4 units (the first of each with stride 2), global average pooling and
the classifier; the stages' widths and the bottleneck (a quarter of the unit's output) follow
the number of groups `g`.

SE goes where the SENet paper puts it in networks with a residual branch: on the branch, after
its last BatchNorm, before the addition or the concatenation.

Layer names: `stem_conv`, `stem_bn`, `stem_relu`, `stem_pool`; in unit `u` of stage `s`
(`stage{s}_unit{u}_`): `conv1`, `bn1`, `relu1`, `shuffle`, `dwconv`, `bn2`, `conv3`, `bn3`,
`se`, `add` or (`shortcut_pool`, `concat`), `relu`; then `avg_pool` and `predictions`.
"""

import keras
from keras_se.applications import signature, weights_file
from keras_se.applications.conv_bn import batch_norm, conv, conv_bn, depthwise_conv, he_initializer
from keras_se.applications.registry import register_model

from keras_se.layers import ChannelShuffle, SqueezeExcite, common

# ShuffleNet paper, Table 1: output channels of stages 2-4 for each number of groups.
STAGE_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
STAGE_UNITS = (4, 8, 4)
STEM_WIDTH = 24
MIN_SIZE = 32  # five stride-2 steps


def _unit(x, width, *, groups, stride, grouped_input, attention, reduction_ratio, prefix):
    """One ShuffleNet unit; `grouped_input` is False for the first unit, whose 24 input
    channels are too few to split (the paper's exception)."""
    data_format = keras.config.image_data_format()
    axis = common.channel_axis(data_format)
    in_width = x.shape[axis]
    branch_width = width - in_width if stride == 2 else width
    first_groups = groups if grouped_input else 1
    y = conv_bn(
        x,
        width // 4,
        1,
        groups=first_groups,
        names={kind: f"{prefix}{kind}1" for kind in ("pad", "conv", "bn", "relu")},
        data_format=data_format,
        kernel_initializer=he_initializer(),
    )
    if first_groups > 1:
        y = ChannelShuffle(groups, data_format=data_format, name=f"{prefix}shuffle")(y)
    y = depthwise_conv(
        y,
        3,
        strides=stride,
        names={"pad": f"{prefix}dwconv_pad", "conv": f"{prefix}dwconv"},
        data_format=data_format,
    )
    y = batch_norm(y, name=f"{prefix}bn2", data_format=data_format)
    y = conv(
        y,
        branch_width,
        1,
        groups=groups,
        names={"pad": None, "conv": f"{prefix}conv3"},
        data_format=data_format,
        kernel_initializer=he_initializer(),
    )
    y = batch_norm(y, name=f"{prefix}bn3", data_format=data_format)
    if attention == "se":
        y = SqueezeExcite(ratio=reduction_ratio, data_format=data_format, name=f"{prefix}se")(y)
    if stride == 2:
        shortcut = keras.layers.ZeroPadding2D(
            1, data_format=data_format, name=f"{prefix}shortcut_pad"
        )(x)
        shortcut = keras.layers.AveragePooling2D(
            3, 2, data_format=data_format, name=f"{prefix}shortcut_pool"
        )(shortcut)
        y = keras.layers.Concatenate(axis=axis, name=f"{prefix}concat")([shortcut, y])
    else:
        y = keras.layers.Add(name=f"{prefix}add")([x, y])
    return keras.layers.ReLU(name=f"{prefix}relu")(y)


def _shufflenet(*, attention, groups, reduction_ratio, **arguments):
    """ShuffleNet v1 1x with `groups` groups, with SE in every unit when `attention="se"`."""
    common.check_choice("groups", groups, tuple(STAGE_WIDTHS))
    common.check_number("reduction_ratio", reduction_ratio)
    signature.check_arguments(
        include_top=arguments["include_top"],
        weights=arguments["weights"],
        pooling=arguments["pooling"],
        classes=arguments["classes"],
        classifier_activation=arguments["classifier_activation"],
    )
    signature.check_classifier_fits(arguments["classes"], STAGE_WIDTHS[groups][-1])
    data_format = keras.config.image_data_format()
    inputs, x = signature.model_input(
        arguments["input_tensor"],
        arguments["input_shape"],
        include_top=arguments["include_top"],
        default_size=224,
        min_size=MIN_SIZE,
    )
    x = conv_bn(
        x,
        STEM_WIDTH,
        3,
        strides=2,
        names={"pad": "stem_pad", "conv": "stem_conv", "bn": "stem_bn", "relu": "stem_relu"},
        data_format=data_format,
        kernel_initializer=he_initializer(),
    )
    # PyTorch pads its max pool with -inf; after a ReLU, zeros are the same.
    x = keras.layers.ZeroPadding2D(1, data_format=data_format, name="stem_pool_pad")(x)
    x = keras.layers.MaxPooling2D(3, 2, data_format=data_format, name="stem_pool")(x)
    for stage, (width, units) in enumerate(zip(STAGE_WIDTHS[groups], STAGE_UNITS, strict=True), 2):
        for unit in range(1, units + 1):
            x = _unit(
                x,
                width,
                groups=groups,
                stride=2 if unit == 1 else 1,
                grouped_input=(stage, unit) != (2, 1),
                attention=attention,
                reduction_ratio=reduction_ratio,
                prefix=f"stage{stage}_unit{unit}_",
            )
    x = signature.classifier_head(
        x,
        include_top=arguments["include_top"],
        pooling=arguments["pooling"],
        classes=arguments["classes"],
        classifier_activation=arguments["classifier_activation"],
    )
    model = keras.Model(inputs, x, name=arguments["name"])
    return weights_file.load_weights(
        model, arguments["weights"], include_top=arguments["include_top"]
    )


@register_model(family="shufflenet", attention="se", plain_twin="PlainShuffleNet")
def SEShuffleNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_shufflenet",
    *,
    groups=3,
    reduction_ratio=16,
):
    """SE-ShuffleNet: ShuffleNet v1 1x with an SE block on the branch of every unit.

    The SENet paper's SE-ShuffleNet (Table 3, 1x with g=3): ShuffleNet's 16 units, each with
    `SqueezeExcite` after the branch's last BatchNorm, before the addition (stride 1) or the
    concatenation with the pooled input (stride 2). With g=3: 2,484,533 trainable parameters
    and 139.7 million multiply-adds at 224x224, 618,805 and 2.2 million more than
    `PlainShuffleNet` (the paper: 2.4M and 142 MFLOPs against 1.8M and 140). The
    channel shuffle is `keras_se.layers.ChannelShuffle`; the grouped and depthwise
    convolutions are keras-se's fast ones. No ImageNet checkpoint exists (`weights="imagenet"`
    is refused).

    Args:
        include_top: whether to build the classifier.
        weights: None (random initialization) or the path of a `.weights.h5` / `.keras` file
            saved from the same architecture; it is checked layer by layer before loading.
            With `include_top=False` the file of the full model loads (without its
            classifier).
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: image shape without the batch axis; defaults to 224x224x3 with the top
            and to any size (at least 32x32) without it.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or `"max"`.
        classes: number of classes of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: model name.
        groups: groups of the 1x1 convolutions, 1, 2, 3, 4 or 8; the stages' widths follow
            ShuffleNet's Table 1 (240/480/960 for 3).
        reduction_ratio: reduction ratio r of the SE layers.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEShuffleNet(input_shape=(64, 64, 3), classes=10)
    >>> model.output_shape, model.get_layer("stage4_unit4_se").reduced_channels_
    ((None, 10), 60)
    """
    return _shufflenet(attention="se", **locals())


@register_model(family="shufflenet", attention=None)
def PlainShuffleNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="shufflenet",
    *,
    groups=3,
):
    """ShuffleNet v1 1x, the plain twin of `SEShuffleNet`.

    `SEShuffleNet` without its SE layers: the SENet paper's ShuffleNet baseline (with g=3,
    1,865,728 trainable parameters and 137.5 million multiply-adds at 224x224; the paper
    rounds them to 1.8M and ShuffleNet 1x's 140 MFLOPs). The arguments are those of
    `SEShuffleNet` without `reduction_ratio`.

    Example:
    >>> model = PlainShuffleNet(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    >>> model.output_shape
    (None, 960)
    """
    return _shufflenet(attention=None, reduction_ratio=16, **locals())
