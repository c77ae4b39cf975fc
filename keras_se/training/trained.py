"""The models `keras-se predict`, `evaluate` and `inspect` take, read back with what they need
to be used: a finished training run (its folder or its `model.keras`, checked against its
digest, with the names of the classes it was trained on), or a keras-se ImageNet classifier
saved as `.keras` (with its timm twin, whose evaluation transform prepares its images); and
the labelled images to score or inspect them on (`labelled_batches`)."""

import dataclasses
import pathlib

import numpy as np

from keras_se import integrity

MODEL_FILE = "model.keras"
SUMMARY_FILE = "summary.json"
SPLITS = ("validation", "train")  # what `evaluate` can score a model on


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A run's model and what it needs to be used on new images.

    Attributes:
        model: the `keras.Model`; it takes RGB images in [0, 255] of `image_size` squared,
            resized as the training job's validation images were, and outputs probabilities.
        class_names: the name of each output, by index.
        path: the `model.keras` file.
        summary: the run's `summary.json` (its dataset, split and seed among others).
    """

    model: object
    class_names: tuple
    path: pathlib.Path
    summary: dict

    @property
    def image_size(self):
        """The side of the square images the model takes."""
        return int(self.model.input_shape[1])

    def load_images(self, paths):
        """Image files as the batch the model takes: resized as the run's validation images."""
        from keras_se.training.predict import load_images

        return load_images(paths, self.image_size)

    def probabilities(self, batch):
        """The model's class probabilities for a prepared batch (float64)."""
        return np.asarray(self.model.predict_on_batch(batch), "float64")


@dataclasses.dataclass(frozen=True)
class ImageNetModel:
    """A keras-se ImageNet classifier from a `.keras` file, and the timm twin it matches.

    Attributes:
        model: the `keras.Model` (1000 classes; it takes images normalized by
            `preprocess_input`, as every `keras_se.applications` constructor does).
        twin: its `pretrained.TimmTwin`: images are resized, cropped and normalized with the
            twin's evaluation transform (`load_image`, `preprocess_input`).
        path: the `.keras` file.
    """

    model: object
    twin: object
    path: pathlib.Path

    @property
    def class_names(self):
        """The ImageNet class names, by index (`tench`, `goldfish`, ...)."""
        from keras_se.applications.imagenet import imagenet_classes

        return tuple(name for _, name in imagenet_classes())

    @property
    def image_size(self):
        """The side of the square images the model takes: its input's, else the twin's."""
        return int(self.model.input_shape[1] or self.twin.input_size)

    def prepare(self, images):
        """PIL images as the batch the model takes (the twin's evaluation transform)."""
        from keras_se.applications.imagenet import load_image, preprocess_input

        batch = np.stack([load_image(image, self.twin, size=self.image_size) for image in images])
        return preprocess_input(batch, model=self.twin)

    def load_images(self, paths):
        """Image files as the batch the model takes (the twin's evaluation transform)."""
        from PIL import Image, UnidentifiedImageError

        images = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            except (UnidentifiedImageError, OSError):
                raise ValueError(
                    f"Image {str(path)!r} cannot be decoded: it is not an image file Pillow "
                    "reads whole."
                ) from None
        return self.prepare(images)

    def probabilities(self, batch):
        """Class probabilities (float64): the softmax of the logits of a model built with
        `classifier_activation=None`."""
        outputs = np.asarray(self.model.predict_on_batch(batch), "float64")
        if self.model.layers[-1].get_config().get("activation") == "softmax":
            return outputs
        exponentials = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)


def _open_imagenet_model(path):
    from keras_se.applications.pretrained import twin_of_model
    from keras_se.export import load_keras_file

    model = load_keras_file(path)
    twin = twin_of_model(model) if model.output_shape[-1] == 1000 else None
    if twin is None:
        raise ValueError(
            f"{str(path)!r} is neither the model of a keras-se train run (no {SUMMARY_FILE} "
            "next to it names it) nor a keras-se ImageNet classifier with the structure of a "
            "timm twin, so its class names and preprocessing are unknown; pass a run folder."
        )
    return ImageNetModel(model, twin, path)


def run_splits(run, dataset=None, data_dir=None):
    """The labelled splits to score a run's model on: `dataset` (by default the run's own,
    split as the run split it: its validation split and seed), in the run's TFDS folder
    unless `data_dir` says otherwise.

    Example:
    >>> run_splits({"dataset": "sklearn_digits", "seed": 0}).num_validation
    449
    """
    from keras_se.training import data

    same = dataset is None or str(dataset) == run["dataset"]
    return data.load_splits(
        run["dataset"] if dataset is None else dataset,
        data_dir=data_dir or run.get("data_dir"),
        validation_split=run.get("validation_split") if same else None,
        seed=run.get("seed", 0) if same else 0,
    )


def labelled_batches(trained, dataset, split, data_dir, batch_size):
    """The labelled images of a split, prepared as `trained` takes them.

    A run's model sees `dataset` (by default its own, split as the run split it: see
    `run_splits`) through the training job's validation pipeline; an ImageNet classifier sees
    images Pillow decodes through its timm twin's evaluation transform, as timm's
    `validate.py` does. Everything is checked before the first image is read.

    Args:
        trained: a `TrainedModel` or `ImageNetModel` (`open_trained_model`).
        dataset: a TFDS name or image folder with the model's classes (required for an
            ImageNet classifier: class sub-folders named by WordNet id, or `imagenet2012`).
        split: `"validation"` or `"train"`.
        data_dir: TFDS data folder (by default the run's).
        batch_size: images per batch.

    Returns:
        `(dataset name, iterator of (images, integer labels) batches)`.

    Example:
    >>> labelled_batches(None, None, "test", None, 8)
    Traceback (most recent call last):
    ...
    ValueError: `split` must be one of 'validation', 'train', got 'test'.
    """
    from keras_se.layers import common

    common.check_choice("split", split, SPLITS)
    batch_size = common.check_int("batch_size", batch_size)
    if isinstance(trained, ImageNetModel):
        return _imagenet_batches(trained, dataset, split, data_dir, batch_size)
    return _run_batches(trained, dataset, split, data_dir, batch_size)


def _run_batches(trained, dataset, split, data_dir, batch_size):
    """A run's dataset (split as the run split it) or one with its classes."""
    from keras_se.training import data

    splits = run_splits(trained.summary, dataset, data_dir)
    if splits.class_names != trained.class_names:
        raise ValueError(
            f"The classes of dataset {splits.name!r} ({', '.join(splits.class_names[:5])}, ...) "
            f"are not the run's ({', '.join(trained.class_names[:5])}, ...) in the same order."
        )
    pipeline = data.make_pipeline(
        getattr(splits, split),
        image_size=trained.image_size,
        batch_size=batch_size,
        num_classes=splits.num_classes,
        training=False,
    )
    batches = ((images, np.argmax(one_hot, axis=1)) for images, one_hot in pipeline)
    return splits.name, batches


def _imagenet_batches(trained, dataset, split, data_dir, batch_size):
    """ImageNet images Pillow decodes, with the classifier's twin's evaluation transform."""
    from keras_se.applications.imagenet import imagenet_classes
    from keras_se.training.data.sources import labelled_images

    if dataset is None:
        raise ValueError(
            f"`dataset` is required for the ImageNet classifier {str(trained.path)!r}: "
            "a folder of ImageNet images in class sub-folders named by WordNet id (n01440764, "
            "...), or a TFDS dataset with those classes (imagenet2012, manual download)."
        )
    names, count, examples = labelled_images(dataset, split, data_dir=data_dir)
    index = {wnid: i for i, (wnid, _) in enumerate(imagenet_classes())}
    unknown = [name for name in names if name not in index]
    if unknown:
        raise ValueError(
            f"The classes of dataset {str(dataset)!r} must be ImageNet WordNet ids (n01440764, "
            f"...) for an ImageNet classifier; {', '.join(unknown[:3])} "
            f"{'is' if len(unknown) == 1 else 'are'} not."
        )
    if not count:
        raise ValueError(f"The {split} split of dataset {str(dataset)!r} holds no images.")

    def batches():
        images, labels = [], []
        for number, (image, label) in enumerate(examples, start=1):
            images.append(image)
            labels.append(index[names[label]])
            if len(images) == batch_size or number == count:
                yield trained.prepare(images), np.asarray(labels)
                images, labels = [], []

    return str(dataset), batches()


def open_trained_model(path):
    """Load the model of a `keras-se train` run (the run folder or its `model.keras`), or a
    keras-se ImageNet classifier saved as a `.keras` file (`ImageNetModel`).

    A run's model is checked against the SHA-256 its `summary.json` recorded; every model is
    loaded with `safe_mode=True`.

    Raises:
        FileNotFoundError: nothing at `path`, or a folder without `model.keras`.
        ValueError: neither a run's model (no `summary.json` naming it) nor an ImageNet
            classifier with a timm twin's structure, a run from before class names were
            recorded, or a damaged file.

    Example:
    >>> open_trained_model("runs/none")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: `model` 'runs/none' does not exist...
    """
    from keras_se.export import load_keras_file

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"`model` {str(path)!r} does not exist; pass a run folder of keras-se train or "
            "its model.keras."
        )
    model_path = path / MODEL_FILE if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(
            f"The folder {str(path)!r} holds no {MODEL_FILE}: it is not a finished run of "
            "keras-se train (a run that is still going, or was killed, has none yet)."
        )
    summary = integrity.run_summary(model_path)
    if summary is None:
        return _open_imagenet_model(model_path)
    names = summary.get("class_names")
    if not isinstance(names, list) or len(names) != summary.get("num_classes"):
        raise ValueError(
            f"The run of {str(model_path)!r} recorded no class names (it was trained before "
            "keras-se recorded them); train it again to use it here."
        )
    return TrainedModel(load_keras_file(model_path), tuple(names), model_path, summary)
