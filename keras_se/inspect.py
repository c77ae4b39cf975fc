"""Look inside the attention: the gates of `SqueezeExcite` and the branch weights of
`SelectiveKernel` in a model, and the papers' analyses of them.

`attention` runs a model on a batch or a dataset and returns what every attention layer
computed, in the order the model ran them: an SE layer's channel gates (images x channels; and
its spatial gate map in the sSE/scSE modes) and an SK layer's branch weights (images x branches
x channels). It calls the user's model as it is, in inference mode, and keeps only the gates.
On top of it:

- `class_excitation`: the mean gate of every channel per class (SENet, section 7.2, Fig. 6:
  early layers excite every class alike, late ones per class);
- `gate_statistics`: mean, spread and fraction saturated of each layer's gates, and how much
  the per-class means differ (`class_spread`);
- `scale_attention`: the SK weights on each branch as the same images are enlarged by
  central crops resized back (SKNet, section 4.3, Figs. 3-4: larger objects shift weight to
  the larger receptive field).

Works on every Keras backend; only the figures need matplotlib.

Example:
>>> import keras, numpy as np, keras_se
>>> images = keras.Input((16, 16, 8))
>>> x = keras_se.SqueezeExcite(ratio=4, name="se")(images)
>>> x = keras_se.SelectiveKernel(filters=8, min_channels=4, name="sk")(x)
>>> found = attention(keras.Model(images, x), np.ones((3, 16, 16, 8), "float32"))
>>> found.names, found["se"].values.shape, found["sk"].values.shape
(('se', 'sk'), (3, 8), (3, 2, 8))
"""

import dataclasses
import math
import numbers

import keras
import numpy as np

from keras_se.layers import SelectiveKernel, SqueezeExcite, common, recording

KINDS = {SqueezeExcite: "squeeze_excite", SelectiveKernel: "selective_kernel"}
DEFAULT_SCALES = (1.0, 1.5, 2.0)  # the SKNet paper's enlargements (section 4.3)
SATURATION = 0.01  # a gate within this of 0 or 1 counts as saturated


@dataclasses.dataclass(frozen=True)
class LayerAttention:
    """What one attention layer computed for every image.

    Attributes:
        name: the layer's name; inside a nested model, prefixed by the model's (`outer/se`).
        kind: `"squeeze_excite"` or `"selective_kernel"`.
        layer: the layer itself (its config says e.g. the SK branches' dilation rates).
        values: SE: the channel gates, `(images, channels)` (None in the spatial-only mode);
            SK: the branch weights, `(images, branches, channels)`.
        spatial: SE in the `"spatial"` and `"concurrent"` modes: the gate of every position,
            `(images, *spatial)`; else None.
    """

    name: str
    kind: str
    layer: object
    values: object
    spatial: object = None


@dataclasses.dataclass(frozen=True)
class Attention:
    """The attention of every inspected layer, in the order the model ran them.

    Attributes:
        layers: the `LayerAttention` of each layer.
        labels: the integer class of every image (None when the data had no labels).
    """

    layers: tuple
    labels: object = None

    @property
    def names(self):
        """The names of the inspected layers, in the order the model ran them."""
        return tuple(found.name for found in self.layers)

    @property
    def count(self):
        """How many images were inspected."""
        first = self.layers[0]
        return len(first.values if first.values is not None else first.spatial)

    def __getitem__(self, name):
        for found in self.layers:
            if found.name == name:
                return found
        raise KeyError(f"No inspected layer is named {name!r}; there are {self.names}.")


def attention_layers(model):
    """The `SqueezeExcite` and `SelectiveKernel` layers of a model, by name, in the order
    the model lists them (nested models' layers named `model/layer`).

    Example:
    >>> from keras_se.applications import SEResNet18
    >>> names = list(attention_layers(SEResNet18(weights=None, input_shape=(32, 32, 3))))
    >>> len(names), names[0]
    (8, 'stage1_block1_se')
    """
    found = {}

    def walk(layer, prefix, seen):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, tuple(KINDS)):
            found.setdefault(prefix + layer.name, layer)
            return
        children = getattr(layer, "layers", None)
        if children is None:  # a custom layer: its sublayers are attributes
            children = [
                item
                for value in vars(layer).values()
                for item in (value if isinstance(value, (list, tuple)) else [value])
                if isinstance(item, keras.layers.Layer)
            ]
        nested = prefix if layer is model else f"{prefix}{layer.name}/"
        for child in children:
            walk(child, nested if isinstance(layer, keras.Model) else prefix, seen)

    walk(model, "", set())
    return found


def chosen_layers(model, layers=None):
    """The attention layers to inspect, by name: all of them or those named in `layers`.

    Raises:
        ValueError: the model has no attention layer, or `layers` names one it does not have.

    Example:
    >>> images = keras.Input((8, 8, 4))
    >>> model = keras.Model(images, SqueezeExcite(ratio=2, name="se")(images))
    >>> list(chosen_layers(model, ["se"]))
    ['se']
    """
    available = attention_layers(model)
    if not available:
        raise ValueError(
            f"Model {model.name!r} contains no SqueezeExcite or SelectiveKernel layer: there "
            "is no attention to inspect."
        )
    if layers is None:
        return available
    if isinstance(layers, str):
        layers = [layers]
    unknown = [name for name in layers if name not in available]
    if unknown:
        shown = ", ".join(list(available)[:6])
        raise ValueError(
            f"`layers` names {unknown[0]!r}, which is not an attention layer of model "
            f"{model.name!r} ({len(available)} of them: {shown}, ...)."
        )
    return {name: available[name] for name in layers}


def _labels_of(value):
    labels = np.asarray(keras.ops.convert_to_numpy(value))
    return np.argmax(labels, axis=-1) if labels.ndim == 2 else labels.astype("int64").ravel()


def _batches(data, batch_size, max_batches):
    """`(images, labels or None)` batches of `data`: an array of images, an `(images, labels)`
    pair of arrays, or an iterable of such batches (a `tf.data.Dataset`, a generator)."""
    if hasattr(data, "shape") or (
        isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape")
    ):
        images, labels = data if isinstance(data, tuple) else (data, None)
        images = keras.ops.convert_to_numpy(images)
        labels = None if labels is None else _labels_of(labels)
        batches = (
            (images[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
            for i in range(0, len(images), batch_size)
        )
    else:
        try:
            elements = iter(data)
        except TypeError:
            raise TypeError(
                f"`data` must be an array of images, an (images, labels) pair or an iterable "
                f"of batches (a tf.data.Dataset), got {type(data).__name__}."
            ) from None
        batches = (
            (element[0], _labels_of(element[1]) if len(element) > 1 else None)
            if isinstance(element, (tuple, list))
            else (element, None)
            for element in elements
        )
    for number, batch in enumerate(batches):
        if max_batches is not None and number >= max_batches:
            return
        yield batch


def _check_batch(model, images):
    expected = tuple(model.inputs[0].shape[1:])
    found = tuple(images.shape[1:])
    if len(found) != len(expected) or any(
        e is not None and e != f for e, f in zip(expected, found, strict=False)
    ):
        raise ValueError(
            f"The data's images have shape {found}, but model {model.name!r} takes "
            f"{expected} (None: any size): resize the images to the model's input."
        )


def attention(model, data, *, layers=None, batch_size=64, max_batches=None):
    """Run `model` on `data` and return what its attention layers computed, image by image.

    The model is called as it is (`training=False`: BatchNorm uses its moving statistics,
    nothing is updated or rebuilt); only the gates of the inspected layers are kept, so
    memory grows with `max_batches`, not with the activations.

    Args:
        model: a built Keras model with one input that contains `SqueezeExcite` or
            `SelectiveKernel` layers (also inside nested models or custom layers).
        data: images as the model takes them: an array, an `(images, labels)` pair, or an
            iterable of batches, each `images` or `(images, labels, ...)` (a
            `tf.data.Dataset`); labels are integers or one-hot rows.
        layers: names of the attention layers to inspect (`attention_layers` lists them);
            None: all.
        batch_size: images per call when `data` is an array.
        max_batches: stop after this many batches (None: all of `data`).

    Returns:
        An `Attention`: one `LayerAttention` per layer, in the order the model ran them.

    Raises:
        ValueError: no attention layer in the model, an unknown layer name, no images in
            `data`, or images of another shape than the model's input.

    Example:
    >>> from keras_se.applications import SEResNet18
    >>> model = SEResNet18(weights=None, input_shape=(32, 32, 3), classes=10)
    >>> found = attention(model, np.zeros((4, 32, 32, 3), "float32"))
    >>> len(found.layers), found.count, found["stage4_block2_se"].values.shape
    (8, 4, (4, 512))
    """
    if len(model.inputs) != 1:
        raise ValueError(f"`model` must take one input, {model.name!r} takes {len(model.inputs)}.")
    chosen = chosen_layers(model, layers)
    wanted = {id(layer): name for name, layer in chosen.items()}
    batch_size = common.check_int("batch_size", batch_size)
    if max_batches is not None:
        max_batches = common.check_int("max_batches", max_batches)
    gathered, labels = {}, []

    for images, batch_labels in _batches(data, batch_size, max_batches):
        _check_batch(model, images)
        if not len(images):
            continue
        calls = {}

        def receive(layer, kind, value, calls=calls):
            if id(layer) in wanted:
                calls.setdefault((id(layer), kind), []).append(value)

        with recording.recording(receive):
            model(images, training=False)
        for (key, kind), values in calls.items():
            name = wanted[key]
            if len(values) > 1:
                raise ValueError(
                    f"Layer {name!r} runs {len(values)} times in one call of model "
                    f"{model.name!r} (a shared layer): its gates cannot be told apart; inspect "
                    "a model in which it runs once."
                )
            entry = gathered.setdefault(name, {"layer": chosen[name]})
            entry.setdefault(kind, []).append(np.asarray(keras.ops.convert_to_numpy(values[0])))
        if batch_labels is not None:
            labels.append(batch_labels)
    if not gathered:
        raise ValueError("`data` holds no images: there is nothing to inspect.")
    found = tuple(
        LayerAttention(
            name=name,
            kind=_kind(calls["layer"]),
            layer=calls["layer"],
            values=_joined(calls.get("channel", calls.get("branches"))),
            spatial=_joined(calls.get("spatial")),
        )
        for name, calls in gathered.items()
    )
    return Attention(found, np.concatenate(labels) if labels else None)


def _kind(layer):
    return next(kind for cls, kind in KINDS.items() if isinstance(layer, cls))


def _joined(parts):
    return None if parts is None else np.concatenate(parts).astype("float32")


def class_excitation(found, num_classes=None):
    """The mean channel gate per class of every SE layer: `{name: (classes, channels)}`,
    the curves of the SENet paper's Fig. 6 (a class without images gets a row of NaN).

    Example:
    >>> layer = LayerAttention("se", "squeeze_excite", None, np.array([[0.2], [0.4], [1.0]]))
    >>> class_excitation(Attention((layer,), np.array([0, 0, 1])))["se"].tolist()
    [[0.30000000000000004], [1.0]]
    """
    if found.labels is None:
        raise ValueError(
            "The per-class excitation needs the class of every image: pass `data` with labels."
        )
    num_classes = num_classes or int(found.labels.max()) + 1
    result = {}
    for layer in found.layers:
        if layer.kind != "squeeze_excite" or layer.values is None:
            continue
        sums = np.zeros((num_classes, layer.values.shape[1]))
        np.add.at(sums, found.labels, layer.values)
        counts = np.bincount(found.labels, minlength=num_classes)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            result[layer.name] = np.where(counts > 0, sums / counts, np.nan)
    return result


def gate_statistics(found, saturation=SATURATION):
    """One row of statistics per inspected layer (its channel gates or branch weights).

    Each row: `layer`, `kind`, `channels`, `mean`, `std`, `saturated` (the fraction within
    `saturation` of 0 or 1) and `class_spread`: the standard deviation across classes of the
    per-class mean gate, averaged over channels (SE only and with labels; else None). Near 0,
    every class is excited alike (the paper's early layers); larger, the layer is
    class-specific.

    Example:
    >>> layer = LayerAttention("se", "squeeze_excite", None, np.array([[0.2], [0.4], [1.0]]))
    >>> row = gate_statistics(Attention((layer,), np.array([0, 0, 1])))[0]
    >>> row["channels"], round(row["mean"], 3), round(row["saturated"], 3), row["class_spread"]
    (1, 0.533, 0.333, 0.35)
    """
    saturation = common.check_number("saturation", saturation, maximum=0.5)
    per_class = class_excitation(found) if found.labels is not None else {}
    rows = []
    for layer in found.layers:
        values = layer.values if layer.values is not None else layer.spatial
        spread = per_class.get(layer.name)
        rows.append(
            {
                "layer": layer.name,
                "kind": layer.kind,
                "channels": int(layer.values.shape[-1]) if layer.values is not None else None,
                "mean": float(values.mean()),
                "std": float(values.std()),
                "saturated": float(np.mean((values <= saturation) | (values >= 1 - saturation))),
                "class_spread": None
                if spread is None
                else round(float(np.nanmean(np.nanstd(spread, axis=0))), 6),
            }
        )
    return rows


def zoom(images, scale, data_format="channels_last"):
    """Enlarge what is in the middle of `images` by `scale`: the central `1 / scale` of each
    side, resized back to the full size (bilinear), as the SKNet paper enlarges its objects.
    `images` is a batch of 2D images laid out as `data_format` says.

    Example:
    >>> images = np.zeros((1, 8, 8, 1), "float32")
    >>> images[0, 3:5, 3:5] = 1.0  # a 2x2 object in the middle
    >>> int((zoom(images, 2.0)[0, ..., 0] > 0.5).sum())  # now 4x4
    16
    """
    scale = float(scale)
    if not (math.isfinite(scale) and scale >= 1.0):
        raise ValueError(f"`scale` must be a finite number >= 1 (an enlargement), got {scale!r}.")
    data_format = common.check_data_format(data_format)
    images = np.asarray(keras.ops.convert_to_numpy(images))
    if images.ndim != 4:
        raise ValueError(
            f"`images` must be a batch of 2D images (rank 4), got shape {images.shape}."
        )
    rows = 2 if data_format == "channels_first" else 1
    height, width = images.shape[rows : rows + 2]
    crop_h = max(1, round(height / scale))
    crop_w = max(1, round(width / scale))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    crop = images[(slice(None),) * rows + window]
    resized = keras.ops.image.resize(
        crop.astype("float32"), (height, width), interpolation="bilinear", data_format=data_format
    )
    return np.asarray(keras.ops.convert_to_numpy(resized))


def check_scales(scales):
    """`scales` as a sorted tuple of distinct enlargements >= 1, else a ValueError.

    Example:
    >>> check_scales([2, 1.5, 1])
    (1.0, 1.5, 2.0)
    """
    if isinstance(scales, numbers.Real):
        scales = [scales]
    checked = []
    for scale in scales:
        if (
            isinstance(scale, bool)
            or not isinstance(scale, numbers.Real)
            or not math.isfinite(scale)
            or scale < 1
        ):
            raise ValueError(f"`scales` must be numbers >= 1 (enlargements), got {scale!r}.")
        checked.append(float(scale))
    if not checked or len(set(checked)) != len(checked):
        raise ValueError(f"`scales` must list at least one scale, each once, got {scales!r}.")
    return tuple(sorted(checked))


def largest_branch(layer):
    """The index of the SK branch with the largest receptive field (`(k - 1) * d + 1`).

    Example:
    >>> largest_branch(SelectiveKernel(dilation_rate=[1, 2]))
    1
    """
    fields = [
        (k - 1) * d + 1 for k, d in zip(layer.kernel_sizes, layer.dilation_rates, strict=True)
    ]
    return int(np.argmax(fields))


@dataclasses.dataclass(frozen=True)
class ScaleAttention:
    """The SK branch weights of the same images at several enlargements.

    Attributes:
        scales: the enlargements, increasing (1: the images as they are).
        means: `{layer name: (scales, branches, channels)}`, the mean weight of each branch
            and channel over the images at each scale.
        large_branch: `{layer name: index}` of the branch with the largest receptive field.
        count: how many images were used at each scale.
    """

    scales: tuple
    means: dict
    large_branch: dict
    count: int

    def large_branch_attention(self, name):
        """The mean weight on layer `name`'s largest-receptive-field branch at each scale."""
        return self.means[name][:, self.large_branch[name]].mean(axis=-1)

    def rises(self, name):
        """Whether the attention on the largest-receptive-field branch grows with every
        enlargement (the SKNet paper's finding; a report, not a requirement)."""
        return bool(np.all(np.diff(self.large_branch_attention(name)) > 0))


def scale_attention(
    model, data, *, scales=DEFAULT_SCALES, layers=None, batch_size=64, max_batches=None
):
    """The `SelectiveKernel` branch weights of the same images enlarged by each of `scales`
    (`zoom`), averaged over the images: the SKNet paper's analysis of section 4.3.

    Args:
        model: as for `attention`, on 2D images (laid out as its SK layers' `data_format`).
        data: as for `attention` (labels are not needed).
        scales: enlargements >= 1 (default 1, 1.5 and 2, the paper's).
        layers: names of SK layers (None: every SK layer of the model).
        batch_size: images per call when `data` is an array.
        max_batches: stop after this many batches (None: all of `data`).

    Returns:
        A `ScaleAttention`.

    Example:
    >>> import keras, keras_se
    >>> images = keras.Input((16, 16, 8))
    >>> x = keras_se.SelectiveKernel(filters=8, min_channels=4, name="sk")(images)
    >>> found = scale_attention(keras.Model(images, x), np.ones((2, 16, 16, 8), "float32"))
    >>> found.scales, found.means["sk"].shape, found.large_branch["sk"]
    ((1.0, 1.5, 2.0), (3, 2, 8), 1)
    """
    scales = check_scales(scales)
    chosen = chosen_layers(model, layers)
    sk = {name: layer for name, layer in chosen.items() if isinstance(layer, SelectiveKernel)}
    if not sk:
        raise ValueError(
            f"Model {model.name!r} has no SelectiveKernel layer among those chosen: the scale "
            "analysis reads the SK branch weights."
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            f"The scale analysis enlarges 2D images: `model` must take one input of rank 4, "
            f"{model.name!r} takes {[tuple(i.shape) for i in model.inputs]}."
        )
    data_format = next(iter(sk.values())).data_format
    sums = {scale: {} for scale in scales}
    count = 0
    for images, _ in _batches(data, batch_size, max_batches):
        _check_batch(model, images)
        if not len(images):
            continue
        for scale in scales:
            enlarged = zoom(images, scale, data_format)
            batch = attention(model, enlarged, layers=list(sk), batch_size=len(images))
            for layer in batch.layers:
                total = layer.values.sum(axis=0, dtype="float64")
                sums[scale][layer.name] = sums[scale].get(layer.name, 0.0) + total
        count += len(images)
    if not count:
        raise ValueError("`data` holds no images: there is nothing to inspect.")
    means = {name: np.stack([sums[scale][name] / count for scale in scales]) for name in sk}
    return ScaleAttention(
        scales, means, {name: largest_branch(layer) for name, layer in sk.items()}, count
    )
