"""Loading a weights file into a keras-se model, checked layer by layer first.

Keras matches the layers of a weights file by position within each layer type; these checks
read the file's HDF5 groups so that a file saved from another architecture is refused by
name before anything is loaded.
"""

import io
import os
import re
import tempfile
import zipfile

import h5py


def snake_case(name):
    """A class name as Keras names it inside weights files and auto-named layers.

    Example:
    >>> snake_case("Conv2D"), snake_case("DepthwiseConv2D")
    ('conv2d', 'depthwise_conv2d')
    """
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


def classifier_layer(model):
    """The model's classifier: its last layer with weights (`predictions`, or MobileNet's
    `conv_preds`).

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="predictions"),
    ...                           keras.layers.Activation("softmax")])
    >>> classifier_layer(model).name
    'predictions'
    """
    return next(layer for layer in reversed(model.layers) if layer.weights)


def _is_classifier_on(shapes, features):
    """Whether stored `shapes` are a classifier's (a kernel `(..., features, classes)`, of
    a Dense or 1x1 convolution, and a bias `(classes,)`) on `features` features."""
    if len(shapes) != 2:
        return False
    bias, kernel = sorted(shapes, key=len)
    return (
        len(bias) == 1
        and len(kernel) >= 2
        and kernel[-2:] == (features, bias[0])
        and all(size == 1 for size in kernel[:-2])
    )


def _feature_width(model):
    shape = model.output_shape
    if len(shape) == 2:
        return shape[-1]
    import keras

    return shape[-1] if keras.config.image_data_format() == "channels_last" else shape[1]


def check_weights_file(model, path, *, include_top=True, new_head=False):
    """Raise naming the first layer whose weights in the file at `path` do not fit `model`;
    return the layers not to load from it.

    Keras matches the layers of a weights file by position within each layer type, so a file
    from a deeper model loads into a shallower one without complaint. This check compares
    every layer's weight shapes with the file's, and refuses layers left over in the file,
    with two exceptions for a classifier:

    - `include_top=False`: the file may hold one more layer, a classifier on the model's
      feature width (the file of the full model, as `keras.applications` drops the top);
    - `new_head=True`: the model's classifier may differ from the file's in its number of
      classes; it is returned, to be skipped, and keeps its fresh initialization.

    Example:
    >>> import tempfile, pathlib, keras
    >>> small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
    >>> large = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
    >>> path = str(pathlib.Path(tempfile.mkdtemp()) / "large.weights.h5")
    >>> large.save_weights(path)
    >>> check_weights_file(small, path)
    Traceback (most recent call last):
    ...
    ValueError: ...layer 'fc' (Dense) has weights of shapes [(2,), (4, 2)] but the file ...
    >>> [layer.name for layer in check_weights_file(small, path, new_head=True)]
    ['fc']
    """
    try:
        stored = _open_weights(path)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"`weights` file {path!r} is not a Keras weights file ({error})."
        ) from error
    problem = f"`weights` file {path!r} does not fit model {model.name!r}"
    classifier = classifier_layer(model) if include_top and new_head else None
    skipped = []
    with stored:
        layers = stored.get("layers")
        if layers is None:
            raise ValueError(f"{problem}: it holds no layer weights.")
        seen, used = {}, set()
        for layer in model.layers:
            base = snake_case(type(layer).__name__)
            count = seen.get(base, 0)
            seen[base] = count + 1
            key = base if count == 0 else f"{base}_{count}"
            expected = sorted(tuple(w.shape) for w in layer.weights)
            found = _stored_shapes(layers[key]) if key in layers else None
            if found is None and not expected:
                continue
            if found != expected and layer is classifier and found is not None:
                if _is_classifier_on(found, layer.kernel.shape[-2]):
                    skipped.append(layer)
                    used.add(key)
                    continue
            if found != expected:
                raise ValueError(
                    f"{problem}: layer {layer.name!r} ({type(layer).__name__}) has weights of "
                    f"shapes {expected} but the file holds {found or 'none'} for it. The file "
                    "was saved from another architecture or with other settings."
                )
            used.add(key)
        extra = sorted(k for k in layers if k not in used and _stored_shapes(layers[k]))
        if (
            not include_top
            and len(extra) == 1
            and _is_classifier_on(_stored_shapes(layers[extra[0]]), _feature_width(model))
        ):
            extra = []  # the full model's classifier
        if extra:
            raise ValueError(
                f"{problem}: the file holds weights for layers the model does not have, "
                f"starting with {extra[0]!r}. It was saved from a larger architecture."
            )
    return skipped


def load_weights(model, weights, *, include_top=True, new_head=False):
    """Check the `weights` file against `model`, then load it (no-op for None).

    With `include_top=False` the file may be that of the full model: its classifier is not
    loaded. With `new_head=True` the model's classifier may have another number of classes
    than the file's: everything else is loaded, and the classifier keeps its fresh weights
    (timm's `num_classes`, keras-hub's `num_classes` with a preset).

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> load_weights(model, None) is model
    True
    """
    if weights is None:
        return model
    path = os.fspath(weights)
    skipped = check_weights_file(model, path, include_top=include_top, new_head=new_head)
    if not skipped:
        model.load_weights(path)
        return model
    with tempfile.TemporaryDirectory() as folder:
        if path.endswith(".keras"):  # Keras skips objects only in a .weights.h5 file
            with zipfile.ZipFile(path) as archive:
                path = archive.extract("model.weights.h5", folder)
        model.load_weights(path, objects_to_skip=skipped)
    return model
