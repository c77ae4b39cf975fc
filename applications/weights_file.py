"""Loading a weights file into a keras-se model, checked layer by layer first.

Keras matches the layers of a weights file by position within each layer type; these checks
read the file's HDF5 groups so that a file saved from another architecture is refused by
name before anything is loaded.
"""

import io
import os
import re
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


def check_weights_file(model, path, *, extra_allowed=()):
    """Raise naming the first layer whose weights in the file at `path` do not fit `model`.

    Keras matches the layers of a weights file by position within each layer type, so a file
    from a deeper model loads into a shallower one without complaint. This check compares
    every layer's weight shapes with the file's, and refuses layers left over in the file
    except those named in `extra_allowed` (keys as the file names them, e.g. `"dense"`).

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
            base = snake_case(type(layer).__name__)
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
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> load_weights(model, None) is model
    True
    """
    if weights is not None:
        path = os.fspath(weights)
        check_weights_file(model, path, extra_allowed=() if include_top else ("dense",))
        model.load_weights(path)
    return model
