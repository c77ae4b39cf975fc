"""The `keras.applications` signature every keras-se constructor has: its argument checks, the
input and the classifier head.

The constructors take `include_top, weights, input_tensor, input_shape, pooling, classes,
classifier_activation, name`. Every argument is checked before any layer is built.
"""

import os

import keras

from keras_se.layers import common

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


def _check_weights_argument(weights, imagenet_available, imagenet_note):
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if not imagenet_available:
            from keras_se.applications import pretrained

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
    from keras_se.applications import pretrained

    if pretrained.is_checkpoint_name(path):
        raise ValueError(
            f"weights={path!r} is a timm checkpoint of "
            f"{pretrained.timm_twin(path).constructor}, not of this architecture."
        )
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


def check_classifier_fits(classes, features):
    """Raise before a `classes`-way classifier on `features` features is allocated if its
    weights exceed this machine's memory (`classes=10**9`).

    Example:
    >>> check_classifier_fits(10**12, 2048)
    Traceback (most recent call last):
    ...
    ValueError: The classifier (1000000000000 classes from 2048 features) would need ...
    """
    common.check_weights_fit(
        f"The classifier ({classes} classes from {features} features)", (features + 1) * classes
    )


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
        check_classifier_fits(classes, x.shape[-1])
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return x
