"""What every keras-se application shares: argument checks, the input, the head and weights.

The constructors follow `keras.applications`: `include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name`. Every argument is checked before
any layer is built, and a `weights` file is checked layer by layer against the model before
anything is loaded into it.
"""

import io
import os
import re
import zipfile

import h5py
import keras

from keras_se.layers import DepthwiseConv2D, SqueezeExcite, common

POOLINGS = (None, "avg", "max")
WEIGHTS_SUFFIXES = (".weights.h5", ".keras")


def check_arguments(
    *,
    include_top,
    weights,
    pooling,
    classes,
    classifier_activation,
    imagenet_available=False,
    imagenet_note=None,
):
    """Validate the `keras.applications` arguments before the model is built.

    Args:
        include_top: whether the classifier head is built.
        weights: None, `"imagenet"` (where available), or the path of a `.weights.h5` /
            `.keras` file of the same architecture.
        pooling: None, `"avg"` or `"max"`; only with `include_top=False`.
        classes: number of classes of the head, an int >= 1.
        classifier_activation: a Keras activation name or callable, or None.
        imagenet_available: whether `weights="imagenet"` has a checkpoint to load.
        imagenet_note: a sentence added to the error for `weights="imagenet"` when it is not
            available (e.g. where other weights exist).

    Example:
    >>> check_arguments(include_top=True, weights=None, pooling="avg", classes=10,
    ...                 classifier_activation="softmax")
    Traceback (most recent call last):
    ...
    ValueError: `pooling` applies only with include_top=False ...; got pooling='avg' ...
    """
    if not isinstance(include_top, bool):
        raise TypeError(f"`include_top` must be True or False, got {include_top!r}.")
    common.check_choice("pooling", pooling, POOLINGS)
    if include_top and pooling is not None:
        raise ValueError(
            "`pooling` applies only with include_top=False (the top already ends in global "
            f"average pooling); got pooling={pooling!r} with include_top=True."
        )
    common.check_int("classes", classes)
    if classifier_activation is not None:
        common.check_activation("classifier_activation", classifier_activation)
    _check_weights_argument(weights, imagenet_available, imagenet_note)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "weights='imagenet' with include_top=True needs classes=1000 (the ImageNet "
            f"classifier), got classes={classes!r}. Use include_top=False (with pooling) and "
            "add your own classifier to fine-tune on other classes."
        )


def _check_weights_argument(weights, imagenet_available, imagenet_note):
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if not imagenet_available:
            from keras_se.applications import weights as pretrained

            with_weights = sorted({twin.constructor for twin in pretrained.TWINS})
            raise ValueError(
                "weights='imagenet' is not available for this architecture: no timm "
                f"checkpoint has its structure.{' ' + imagenet_note if imagenet_note else ''} "
                "Constructors with ImageNet weights (converted from timm): "
                f"{', '.join(with_weights)}. Pass weights=None, or the "
                "path of a .weights.h5 or .keras file saved from this same architecture "
                "(`model.save_weights(...)` or `model.save(...)`)."
            )
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be None or the path of a weights file, got {weights!r} of type "
            f"{type(weights).__name__}."
        )
    path = os.fspath(weights)
    if not path.endswith(WEIGHTS_SUFFIXES):
        raise ValueError(
            f"`weights` must be None or a path ending in {' or '.join(WEIGHTS_SUFFIXES)} "
            f"(a file written by `model.save_weights` or `model.save`), got {path!r}."
        )
    if not os.path.isfile(path):
        raise ValueError(f"`weights` file {path!r} does not exist.")


def _check_input_shape(input_shape, *, min_size, data_format):
    """Validate a per-sample image shape (no batch axis) and return it as a tuple."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be a tuple of 3 entries (height, width, channels), or "
            f"(channels, height, width) with channels_first; got {input_shape!r}."
        )
    shape = tuple(input_shape)
    axis = common.channel_axis(data_format)
    channels = shape[axis]
    spatial = shape[:2] if data_format == "channels_last" else shape[1:]
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(
            f"The input needs a known channel count >= 1; with data_format={data_format!r} "
            f"the channel axis of input shape {shape} is {channels!r}."
        )
    for size in spatial:
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < min_size:
            raise ValueError(
                f"The input must be at least {min_size}x{min_size} pixels; got input shape "
                f"{shape} (data_format={data_format!r})."
            )
    return shape


def model_input(input_tensor, input_shape, *, include_top, default_size, min_size):
    """The model's input layer(s) and the image tensor the network starts from.

    `input_shape` defaults to `input_tensor`'s shape, else to `default_size` square with 3
    channels when the top is included and to any size otherwise, as in `keras.applications`.

    Returns:
        `(inputs, images)`: what `keras.Model` takes as inputs, and the image tensor.

    Example:
    >>> inputs, images = model_input(None, (40, 48, 3), include_top=False,
    ...                              default_size=224, min_size=32)
    >>> tuple(images.shape)
    (None, 40, 48, 3)
    """
    data_format = keras.config.image_data_format()
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise TypeError(
                "`input_tensor` must be a Keras tensor (from `keras.Input` or a layer called on "
                f"one), got {type(input_tensor).__name__}."
            )
        tensor_shape = tuple(input_tensor.shape)
        if len(tensor_shape) != 4:
            raise ValueError(
                f"`input_tensor` must be a batch of images (rank 4), got shape {tensor_shape}."
            )
        if input_shape is None:
            input_shape = tensor_shape[1:]
        elif (
            any(
                given is not None and actual is not None and given != actual
                for given, actual in zip(input_shape, tensor_shape[1:], strict=False)
            )
            or len(input_shape) != 3
        ):
            raise ValueError(
                f"`input_shape` {tuple(input_shape)} does not match the shape "
                f"{tensor_shape[1:]} of `input_tensor`."
            )
    if input_shape is None:
        size = default_size if include_top else None
        input_shape = (size, size, 3) if data_format == "channels_last" else (3, size, size)
    shape = _check_input_shape(input_shape, min_size=min_size, data_format=data_format)
    if input_tensor is None:
        images = keras.Input(shape)
        return images, images
    sources = keras.utils.get_source_inputs(input_tensor)
    return sources[0] if len(sources) == 1 else sources, input_tensor


def classifier_head(x, *, include_top, pooling, classes, classifier_activation, dropout_rate=0.0):
    """Global pooling and, with `include_top`, dropout and the `predictions` Dense layer.

    Layer names follow `keras.applications`: `avg_pool` / `max_pool`, `predictions`.

    Example:
    >>> features = keras.Input((7, 7, 512))
    >>> logits = classifier_head(features, include_top=True, pooling=None, classes=10,
    ...                          classifier_activation=None)
    >>> tuple(logits.shape)
    (None, 10)
    """
    data_format = keras.config.image_data_format()
    if include_top or pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(data_format=data_format, name="max_pool")(x)
    if include_top:
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return x


def _snake_case(name):
    """A class name as Keras names it inside weights files (`Conv2D` -> `conv2d`)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _stored_shapes(group):
    """The shapes of every array under an HDF5 group, sorted."""
    shapes = []
    group.visititems(
        lambda _, item: shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None
    )
    return sorted(shapes)


def _open_weights(path):
    """The weights HDF5 file of a `.weights.h5` file or of a `.keras` archive."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def check_weights_file(model, path, *, extra_allowed=()):
    """Raise naming the first layer whose weights in the file at `path` do not fit `model`.

    Keras matches the layers of a weights file by position within each layer type, so a file
    from a deeper model loads into a shallower one without complaint. This check compares
    every layer's weight shapes with the file's, and refuses layers left over in the file
    except those named in `extra_allowed` (keys as the file names them, e.g. `"dense"`).

    Example:
    >>> import tempfile, pathlib
    >>> small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
    >>> large = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
    >>> path = str(pathlib.Path(tempfile.mkdtemp()) / "large.weights.h5")
    >>> large.save_weights(path)
    >>> check_weights_file(small, path)
    Traceback (most recent call last):
    ...
    ValueError: ...layer 'fc' (Dense) has weights of shapes [(2,), (4, 2)] but the file ...
    """
    try:
        stored = _open_weights(path)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"`weights` file {path!r} is not a Keras weights file ({error})."
        ) from error
    problem = f"`weights` file {path!r} does not fit model {model.name!r}"
    with stored:
        layers = stored.get("layers")
        if layers is None:
            raise ValueError(f"{problem}: it holds no layer weights.")
        seen, used = {}, set()
        for layer in model.layers:
            base = _snake_case(type(layer).__name__)
            count = seen.get(base, 0)
            seen[base] = count + 1
            key = base if count == 0 else f"{base}_{count}"
            expected = sorted(tuple(w.shape) for w in layer.weights)
            found = _stored_shapes(layers[key]) if key in layers else None
            if found is None and not expected:
                continue
            if found != expected:
                raise ValueError(
                    f"{problem}: layer {layer.name!r} ({type(layer).__name__}) has weights of "
                    f"shapes {expected} but the file holds {found or 'none'} for it. The file "
                    "was saved from another architecture or with other settings."
                )
            used.add(key)
        extra = sorted(
            k
            for k in layers
            if k not in used and k not in extra_allowed and _stored_shapes(layers[k])
        )
        if extra:
            raise ValueError(
                f"{problem}: the file holds weights for layers the model does not have, "
                f"starting with {extra[0]!r}. It was saved from a larger architecture."
            )


def load_weights(model, weights, *, include_top=True):
    """Check the `weights` file against `model`, then load it (no-op for None).

    With `include_top=False` the file may hold a classifier the model lacks (the `predictions`
    Dense layer of a full model, as in the cached ImageNet weights); it is not loaded.

    Example:
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> load_weights(model, None) is model
    True
    """
    if weights is not None:
        path = os.fspath(weights)
        check_weights_file(model, path, extra_allowed=() if include_top else ("dense",))
        model.load_weights(path)
    return model


def _is_auto_name(layer):
    """Whether `layer` carries a name Keras made up from its class (`conv2d_17`)."""
    return re.fullmatch(rf"{_snake_case(type(layer).__name__)}(_\d+)?", layer.name) is not None


def rebuild_with_attention(model, inputs, images, attention_after, name, replace=None):
    """Rebuild `model`'s graph on `images` with attention layers inserted after chosen layers.

    This turns a `keras.applications` model into its SE twin without copying its code: every
    layer is re-created from its config and called in the original order; where
    `attention_after(layer)` returns a layer, that layer is applied to the output. Names that
    Keras generated from a global counter (`conv2d_94`) are renumbered per model (`conv2d`,
    `conv2d_1`, ... as in a fresh session), so layer names do not depend on what was built
    before.

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
    counts = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        config = layer.get_config()
        if _is_auto_name(layer):
            base_name = _snake_case(type(layer).__name__)
            index = counts.get(base_name, 0)
            counts[base_name] = index + 1
            config["name"] = base_name if index == 0 else f"{base_name}_{index}"
        clone = replace.get(type(layer).__name__, type(layer).from_config)(config)
        outputs = clone(keras.tree.map_structure(lambda t: tensors[id(t)], layer.input))
        attention = attention_after(clone)
        if attention is not None:
            outputs = attention(outputs)
        tensors[id(layer.output)] = outputs
    return keras.Model(inputs, tensors[id(model.outputs[0])], name=name)


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

    Example:
    >>> twin = se_twin(
    ...     keras.applications.MobileNet, attention_name=se_after("(conv_pw_13)_relu", "{}_se"),
    ...     reduction_ratio=16, include_top=False, weights=None, input_tensor=None,
    ...     input_shape=(64, 64, 3), pooling="avg", classes=1000, classifier_activation=None,
    ...     name="mobilenet_last_se", default_size=224, min_size=32)
    >>> [layer.name for layer in twin.layers][-2:]
    ['conv_pw_13_se', 'global_average_pooling2d']
    """
    check_arguments(
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    common.check_number("reduction_ratio", reduction_ratio)
    inputs, images = model_input(
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
    return load_weights(model, weights)
