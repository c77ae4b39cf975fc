"""`keras-se predict`: the classes a trained run's model, or a keras-se ImageNet classifier,
sees in image files.

For a run's model, images are decoded and resized exactly as the training job's validation
images were (`data.pipeline.resize_to`), so the model sees what it was validated on; for an
ImageNet classifier, with its timm twin's evaluation transform (`applications.load_image`).
"""

import pathlib

import numpy as np

from keras_se.layers import common
from keras_se.training.trained import open_trained_model


def _check_files(paths):
    for path in paths:
        if not pathlib.Path(path).is_file():
            raise FileNotFoundError(f"Image {str(path)!r} does not exist.")


def load_images(paths, image_size):
    """Decode image files (JPEG, PNG, GIF, BMP) to a float32 `(N, size, size, 3)` RGB batch
    in [0, 255], resized as the training job's validation images are.

    Raises:
        FileNotFoundError: a path that is not a file.
        ValueError: a file that is not an image TensorFlow can decode.

    Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> Image.new("L", (40, 30), 128).save(path)
    >>> load_images([path], 32).shape
    (1, 32, 32, 3)
    """
    import tensorflow as tf

    from keras_se.training.data.pipeline import resize_to

    paths = [pathlib.Path(path) for path in paths]
    _check_files(paths)
    resize = resize_to(image_size)
    images = []
    for path in paths:
        try:
            image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError:
            raise ValueError(
                f"Image {str(path)!r} cannot be decoded: it is not a whole JPEG, PNG, GIF or "
                "BMP file."
            ) from None
        images.append(resize(image, 0)[0].numpy())
    return np.stack(images)


def predict(model, images, *, top=5):
    """The `top` classes of each image, by the model of a `keras-se train` run or a keras-se
    ImageNet classifier.

    Args:
        model: the run folder, or its `model.keras`; or the `.keras` file of a keras-se
            ImageNet classifier (see `trained.open_trained_model`).
        images: image file paths.
        top: how many classes to give per image (at most the number of classes).

    Returns:
        One dict per image, in order: `{"image": path, "predictions": [{"class": name,
        "index": i, "probability": p}, ...]}`, most probable first.

    Example:
    >>> predict("runs/digits", ["seven.png"], top=1)  # doctest: +SKIP
    [{'image': 'seven.png', 'predictions': [{'class': '7', 'index': 7, 'probability': 0.98}]}]
    """
    images = [str(path) for path in images]
    if not images:
        raise ValueError("`images` is empty: give at least one image file.")
    _check_files(images)
    top = common.check_int("top", top)
    trained = open_trained_model(model)
    if top > len(trained.class_names):
        raise ValueError(
            f"`top` must be at most the {len(trained.class_names)} classes of the model, got {top}."
        )
    probabilities = trained.probabilities(trained.load_images(images))
    results = []
    for path, scores in zip(images, probabilities, strict=True):
        best = np.argsort(-scores, kind="stable")[:top]
        results.append(
            {
                "image": path,
                "predictions": [
                    {
                        "class": trained.class_names[i],
                        "index": int(i),
                        "probability": float(scores[i]),
                    }
                    for i in best
                ],
            }
        )
    return results
