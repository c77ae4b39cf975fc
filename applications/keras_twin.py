"""Turning a `keras.applications` model into its SE twin: the same graph rebuilt with
`SqueezeExcite` layers inserted, and keras-se's `DepthwiseConv2D` in place of Keras' own.
"""

import re

import keras
from keras_se.applications import signature
from keras_se.applications.weights_file import load_weights, snake_case

from keras_se.layers import DepthwiseConv2D, SqueezeExcite, common


def _is_auto_name(layer):
    """Whether `layer` carries a name Keras made up from its class (`conv2d_17`)."""
    return re.fullmatch(rf"{snake_case(type(layer).__name__)}(_\d+)?", layer.name) is not None


def rebuild_with_attention(model, inputs, images, attention_after, name, replace=None):
    """Rebuild `model`'s graph on `images` with attention layers inserted after chosen layers.

    This turns a `keras.applications` model into its SE twin without copying its code: every
    layer is re-created from its config and called in the original order; where
    `attention_after(layer)` returns a layer, that layer is applied to the output. Names that
    Keras generated from a global counter (`conv2d_94`) are renumbered per model (`conv2d`,
    `conv2d_1`, ... as in a fresh session), so layer names do not depend on what was built
    before; a number that a layer between `inputs` and `images` already uses (the user's own
    `conv2d` before an `input_tensor`) is skipped.

    Args:
        model: the single-input, single-output model to copy.
        inputs: the inputs of the new model (see `model_input`).
        images: the tensor that takes the place of `model`'s input.
        attention_after: `layer -> keras.layers.Layer | None`.
        name: name of the new model.
        replace: optional `{layer class name: config -> new layer}` for layers that must be
            re-created differently (e.g. a class Keras does not register for loading).

    Returns:
        The new `keras.Model`; its weights are freshly initialized.

    Example:
    >>> from keras_se import SqueezeExcite
    >>> plain = keras.Sequential([keras.Input((8, 8, 32)), keras.layers.Conv2D(32, 3)])
    >>> images = keras.Input((8, 8, 32))
    >>> se = rebuild_with_attention(
    ...     plain, images, images, lambda layer: SqueezeExcite(name=f"{layer.name}_se"), "se")
    >>> [layer.name for layer in se.layers]
    ['input_layer...', 'conv2d', 'conv2d_se']
    """
    replace = replace or {}
    tensors = {id(model.inputs[0]): images}
    taken = (
        set() if images is inputs else {layer.name for layer in keras.Model(inputs, images).layers}
    )
    counts = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        config = layer.get_config()
        if _is_auto_name(layer):
            config["name"] = _next_free_name(snake_case(type(layer).__name__), counts, taken)
        clone = replace.get(type(layer).__name__, type(layer).from_config)(config)
        outputs = clone(keras.tree.map_structure(lambda t: tensors[id(t)], layer.input))
        attention = attention_after(clone)
        if attention is not None:
            outputs = attention(outputs)
        tensors[id(layer.output)] = outputs
    return keras.Model(inputs, tensors[id(model.outputs[0])], name=name)


def _next_free_name(base_name, counts, taken):
    """`base_name`, then `base_name_1`, `base_name_2`, ... on later calls, skipping `taken`."""
    while True:
        index = counts.get(base_name, 0)
        counts[base_name] = index + 1
        name = base_name if index == 0 else f"{base_name}_{index}"
        if name not in taken:
            return name


def se_after(pattern, se_name):
    """`layer name -> SE layer name`: `se_name` formatted with the groups of `pattern` where it
    matches the whole layer name, else None.

    Example:
    >>> se_after(r"conv_pw_(\\d+)_relu", "conv_pw_{}_se")("conv_pw_3_relu")
    'conv_pw_3_se'
    """
    regex = re.compile(pattern)

    def attention_name(layer_name):
        match = regex.fullmatch(layer_name)
        return se_name.format(*match.groups()) if match else None

    return attention_name


def _check_plain_options(alpha=1.0, depth_multiplier=1, dropout=0.0):
    """The MobileNets' own arguments, checked before Keras names its internal ones
    (`filters`, `rate`) in an error."""
    common.check_number("alpha", alpha)
    common.check_int("depth_multiplier", depth_multiplier)
    common.check_rate("dropout", dropout)


def se_twin(
    plain,
    *,
    attention_name,
    reduction_ratio,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    default_size,
    min_size,
    head_features,
    se_options=None,
    replace=None,
    **plain_options,
):
    """A `keras.applications` model with `SqueezeExcite` after the layers it selects.

    Arguments are checked, `plain` (a `keras.applications` constructor) builds the topology
    with `plain_options` on a fresh input of the resolved shape, and `rebuild_with_attention`
    re-creates it on the real input with an SE layer named `attention_name(layer_name)` after
    every layer for which that returns a name. Depthwise convolutions become keras-se's
    `DepthwiseConv2D` (the same layer and weights, fast where XLA compiles it on the CPU).
    `head_features(**plain_options)` is the width `plain` gives its classifier: the
    classifier is checked against the machine's memory before `plain` allocates it.

    Example:
    >>> twin = se_twin(
    ...     keras.applications.MobileNet, attention_name=se_after("(conv_pw_13)_relu", "{}_se"),
    ...     reduction_ratio=16, include_top=False, weights=None, input_tensor=None,
    ...     input_shape=(64, 64, 3), pooling="avg", classes=1000, classifier_activation=None,
    ...     name="mobilenet_last_se", default_size=224, min_size=32, head_features=lambda: 1024)
    >>> [layer.name for layer in twin.layers][-2:]
    ['conv_pw_13_se', 'global_average_pooling2d']
    """
    signature.check_arguments(
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    common.check_number("reduction_ratio", reduction_ratio)
    _check_plain_options(**plain_options)
    if include_top:
        signature.check_classifier_fits(classes, head_features(**plain_options))
    inputs, images = signature.model_input(
        input_tensor,
        input_shape,
        include_top=include_top,
        default_size=default_size,
        min_size=min_size,
    )
    model = plain(
        include_top=include_top,
        weights=None,
        input_shape=tuple(images.shape[1:]),
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        **plain_options,
    )
    data_format = keras.config.image_data_format()

    def attention_after(layer):
        se_name = attention_name(layer.name)
        if se_name is None:
            return None
        return SqueezeExcite(
            ratio=reduction_ratio, data_format=data_format, name=se_name, **(se_options or {})
        )

    # keras-se's depthwise convolution: the same layer, fast where XLA compiles it on the CPU.
    replace = {"DepthwiseConv2D": DepthwiseConv2D.from_config, **(replace or {})}
    model = rebuild_with_attention(model, inputs, images, attention_after, name, replace)
    return load_weights(model, weights, include_top=include_top)
