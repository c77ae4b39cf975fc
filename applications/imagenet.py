"""ImageNet inputs and outputs as timm's data configuration defines them for each twin.

`load_image` resizes and center-crops an image exactly as timm's evaluation transform does for
the model (`Resize(floor(size / crop_pct), interpolation)` on the shorter side, then
`CenterCrop(size)`, both with Pillow), `preprocess_input` scales to [0, 1] and normalizes with
the model's mean and standard deviation, and `decode_predictions` names the top classes.
The class list (WordNet ids and the first lemma of each synset, as `keras.applications` names
them) ships with keras-se; it was taken from timm's `imagenet_synsets.txt` and
`imagenet_synset_to_lemma.txt` (Apache-2.0).

Example:
>>> import numpy as np
>>> from keras_se.applications import imagenet
>>> x = imagenet.preprocess_input(np.full((1, 2, 2, 3), 255.0))
>>> [round(float(v), 4) for v in x[0, 0, 0]]
[2.2489, 2.4286, 2.64]
"""

import functools
import json
import math
import pathlib

import keras
import numpy as np
from keras_se.applications import pretrained

from keras_se.layers import common

CLASSES_FILE = pathlib.Path(__file__).with_name("imagenet_classes.json")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def _twin(model):
    if model is None:
        return None
    if isinstance(model, pretrained.TimmTwin):
        return model
    return pretrained.timm_twin(model)


def preprocess_input(x, data_format=None, model=None):
    """Scale RGB images in [0, 255] to [0, 1] and normalize them per channel, as timm does.

    Args:
        x: a batch (or one image) of RGB images with values in [0, 255], as a NumPy array or
            a backend tensor.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        model: the timm twin (its name, e.g. `"legacy_seresnet50"`, or a `TimmTwin`) whose
            mean and std to use; None uses the ImageNet statistics every registered twin has.

    Returns:
        float32 `(x / 255 - mean) / std`, a NumPy array for NumPy input.

    Example:
    >>> import numpy as np
    >>> preprocess_input(np.zeros((3, 1, 1)), data_format="channels_first").ravel().round(3)
    array([-2.118, -2.036, -1.804], dtype=float32)
    """
    data_format = common.check_data_format(data_format)
    twin = _twin(model)
    mean = np.asarray(twin.mean if twin else pretrained.IMAGENET_MEAN, "float32")
    std = np.asarray(twin.std if twin else pretrained.IMAGENET_STD, "float32")
    rank = len(x.shape)
    if rank not in (3, 4) or x.shape[-1 if data_format == "channels_last" else -3] != 3:
        layout = "(H, W, 3)" if data_format == "channels_last" else "(3, H, W)"
        raise ValueError(
            f"`x` must be one RGB image {layout} or a batch of them for "
            f"data_format={data_format!r}, got shape {tuple(x.shape)}."
        )
    shape = (3, 1, 1) if data_format == "channels_first" else (3,)
    if isinstance(x, np.ndarray):
        return ((x.astype("float32") / 255.0 - mean.reshape(shape)) / std.reshape(shape)).astype(
            "float32"
        )
    x = keras.ops.cast(x, "float32") / 255.0
    return (x - keras.ops.reshape(mean, shape)) / keras.ops.reshape(std, shape)


def load_image(path, model, *, size=None):
    """Load an image and resize and center-crop it as timm's evaluation transform does.

    Args:
        path: an image file (any format Pillow reads), or a `PIL.Image.Image`.
        model: the timm twin (name or `TimmTwin`) whose interpolation, crop fraction and
            input size to use.
        size: the output size; defaults to the twin's input size (224).

    Returns:
        A float32 `(size, size, 3)` RGB array with values in [0, 255]; pass a batch of them to
        `preprocess_input`.

    Example:
    >>> from PIL import Image
    >>> photo = Image.new("RGB", (640, 480), "gray")  # or the path of an image file
    >>> load_image(photo, "legacy_seresnet50").shape
    (224, 224, 3)
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "load_image needs Pillow, which is not installed: pip install pillow"
        ) from None
    twin = _twin(model)
    if twin is None:
        raise ValueError("`model` must name a timm twin, e.g. 'legacy_seresnet50'.")
    size = twin.input_size if size is None else common.check_int("size", size)
    resample = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[common.check_choice("interpolation", twin.interpolation, INTERPOLATIONS)]
    image = path if isinstance(path, Image.Image) else Image.open(path)
    image = image.convert("RGB")
    width, height = image.size
    short = math.floor(size / twin.crop_pct)
    if width <= height:
        new_size = (short, int(short * height / width))
    else:
        new_size = (int(short * width / height), short)
    image = image.resize(new_size, resample)
    top = round((new_size[1] - size) / 2.0)
    left = round((new_size[0] - size) / 2.0)
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype="float32")


@functools.cache
def imagenet_classes():
    """The 1000 ImageNet-1k classes in index order, as `(wordnet_id, name)` pairs.

    Example:
    >>> imagenet_classes()[1]
    ('n01443537', 'goldfish')
    """
    return tuple(tuple(entry) for entry in json.loads(CLASSES_FILE.read_text()))


def decode_predictions(preds, top=5):
    """The `top` classes of each prediction, as `keras.applications` returns them.

    Args:
        preds: a `(batch, 1000)` array of probabilities or logits.
        top: how many classes to return per sample.

    Returns:
        One list per sample of `(wordnet_id, class_name, score)` tuples, best first.

    Example:
    >>> import numpy as np
    >>> scores = np.zeros((1, 1000)); scores[0, 1] = 0.9
    >>> decode_predictions(scores, top=1)
    [[('n01443537', 'goldfish', 0.9)]]
    """
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of ImageNet predictions, shape "
            f"(samples, 1000); got shape {preds.shape}."
        )
    top = common.check_int("top", top)
    classes = imagenet_classes()
    results = []
    for scores in preds:
        best = np.argsort(-scores, kind="stable")[:top]
        results.append([(*classes[i], float(scores[i])) for i in best])
    return results
