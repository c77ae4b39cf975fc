"""SE-VGG-16 and its plain twin: VGG-16 with BatchNorm after every convolution, the network the
SENet paper trains (Table 2), with an SE block after each convolution's ReLU.

VGG has no residual branch to put SE on, so the paper inserts it "after the non-linearity
following each convolution": every one of the 13 convolutions is conv -> BN -> ReLU -> SE.
The classifier is VGG's: flatten, two 4096-wide ReLU layers with dropout, the predictions.

Layer names follow `keras.applications.VGG16` (`block{b}_conv{i}`, `block{b}_pool`, `flatten`,
`fc1`, `fc2`, `predictions`), with `block{b}_bn{i}`, `block{b}_relu{i}` and `block{b}_se{i}`
for what VGG16 there does not have, and `fc1_dropout` / `fc2_dropout`.
"""

import keras
from keras_se.applications import signature, weights_file
from keras_se.applications.conv_bn import conv_bn, he_initializer
from keras_se.applications.registry import register_model

from keras_se.layers import SqueezeExcite, common

# (channels, convolutions) of VGG-16's five blocks, each ending in a 2x2/2 max pool.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
FC_WIDTH = 4096
MIN_SIZE = 32  # five 2x2 pools


def _vgg16(*, attention, reduction_ratio, dropout_rate, **arguments):
    """VGG-16 with BatchNorm, with SE after every convolution's ReLU when `attention="se"`."""
    common.check_number("reduction_ratio", reduction_ratio)
    common.check_rate("dropout_rate", dropout_rate)
    include_top = arguments["include_top"]
    signature.check_arguments(
        include_top=include_top,
        weights=arguments["weights"],
        pooling=arguments["pooling"],
        classes=arguments["classes"],
        classifier_activation=arguments["classifier_activation"],
    )
    data_format = keras.config.image_data_format()
    inputs, x = signature.model_input(
        arguments["input_tensor"],
        arguments["input_shape"],
        include_top=include_top,
        default_size=224,
        min_size=MIN_SIZE,
    )
    if include_top:
        spatial = x.shape[1:3] if data_format == "channels_last" else x.shape[2:]
        if None in spatial:
            raise ValueError(
                "With include_top=True the input size must be fixed (fc1 takes the flattened "
                f"feature map, as in keras.applications.VGG16); got input shape {x.shape[1:]}."
            )
        # five 2x2 pools, then 512 channels flattened into fc1
        features = (spatial[0] // 32) * (spatial[1] // 32) * VGG16_BLOCKS[-1][0]
        common.check_weights_fit(f"fc1 ({features} inputs)", (features + 1) * FC_WIDTH)
        signature.check_classifier_fits(arguments["classes"], FC_WIDTH)
    for block, (channels, convolutions) in enumerate(VGG16_BLOCKS, 1):
        for index in range(1, convolutions + 1):
            prefix = f"block{block}_"
            names = {kind: f"{prefix}{kind}{index}" for kind in ("pad", "conv", "bn", "relu")}
            x = conv_bn(
                x,
                channels,
                3,
                names=names,
                data_format=data_format,
                kernel_initializer=he_initializer(),
            )
            if attention == "se":
                x = SqueezeExcite(
                    ratio=reduction_ratio, data_format=data_format, name=f"{prefix}se{index}"
                )(x)
        x = keras.layers.MaxPooling2D(2, data_format=data_format, name=f"block{block}_pool")(x)
    if include_top:
        x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
        for fc in ("fc1", "fc2"):
            x = keras.layers.Dense(FC_WIDTH, activation="relu", name=fc)(x)
            x = keras.layers.Dropout(dropout_rate, name=f"{fc}_dropout")(x)
        x = keras.layers.Dense(
            arguments["classes"],
            activation=arguments["classifier_activation"],
            name="predictions",
        )(x)
    else:
        x = signature.classifier_head(
            x,
            include_top=False,
            pooling=arguments["pooling"],
            classes=arguments["classes"],
            classifier_activation=None,
        )
    model = keras.Model(inputs, x, name=arguments["name"])
    return weights_file.load_weights(model, arguments["weights"], include_top=include_top)


@register_model(family="vgg", attention="se", plain_twin="PlainVGG16")
def SEVGG16(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_vgg16",
    *,
    reduction_ratio=16,
    dropout_rate=0.5,
):
    """SE-VGG-16: VGG-16 with BatchNorm after every convolution and SE after every ReLU.

    The SENet paper's SE-VGG-16 (Table 2): VGG's 13 3x3 convolutions in five blocks of
    64/128/256/512/512 channels, each conv -> BN -> ReLU -> SE (the paper's placement for a
    network without residual branches: "after the non-linearity following each
    convolution"), a 2x2 max pool after each block, then VGG's classifier (flatten, fc1 and
    fc2 of 4096 with ReLU and dropout, predictions). 15.48 GMACs at 224x224, 0.01 more than
    `PlainVGG16`, as the paper reports. The convolutions have no bias (BatchNorm follows
    each). No ImageNet checkpoint exists (`weights="imagenet"` is refused).

    Args:
        include_top: whether to build the classifier; its first layer's width follows the
            input size (25088 inputs at 224x224), as in `keras.applications.VGG16`.
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
        reduction_ratio: reduction ratio r of the SE layers.
        dropout_rate: dropout after fc1 and fc2 (VGG's 0.5).

    Returns:
        A `keras.Model`.

    Example:
    >>> model = SEVGG16(input_shape=(32, 32, 3), classes=10)
    >>> model.output_shape, model.get_layer("block5_se3").reduced_channels_
    ((None, 10), 32)
    """
    return _vgg16(attention="se", **locals())


@register_model(family="vgg", attention=None)
def PlainVGG16(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg16_bn",
    *,
    dropout_rate=0.5,
):
    """VGG-16 with BatchNorm after every convolution, the plain twin of `SEVGG16`.

    `SEVGG16` without its SE layers (the SENet paper's VGG-16 baseline, 15.47 GMACs at
    224x224). Unlike `keras.applications.VGG16` it normalizes every convolution and drops
    out after fc1 and fc2; the arguments are those of `SEVGG16` without `reduction_ratio`.

    Example:
    >>> model = PlainVGG16(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    >>> model.output_shape
    (None, 512)
    """
    return _vgg16(attention=None, reduction_ratio=16, **locals())
