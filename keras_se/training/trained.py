"""A finished training run read back: its model, checked against its digest, and the names of
the classes it was trained on (`keras-se predict` and `evaluate` take a run folder or its
`model.keras`)."""

import dataclasses
import pathlib

from keras_se import integrity

MODEL_FILE = "model.keras"
SUMMARY_FILE = "summary.json"


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


def open_trained_model(path):
    """Load the model of a `keras-se train` run: the run folder or its `model.keras`.

    The model is checked against the SHA-256 its `summary.json` recorded, and loaded with
    `safe_mode=True`.

    Raises:
        FileNotFoundError: nothing at `path`, or a folder without `model.keras`.
        ValueError: not a run's model (no `summary.json` naming it), a run from before class
            names were recorded, or a damaged file.

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
        raise ValueError(
            f"{str(model_path)!r} is not the model of a keras-se train run (no {SUMMARY_FILE} "
            "next to it names it), so its class names and preprocessing are unknown; pass a "
            "run folder."
        )
    names = summary.get("class_names")
    if not isinstance(names, list) or len(names) != summary.get("num_classes"):
        raise ValueError(
            f"The run of {str(model_path)!r} recorded no class names (it was trained before "
            "keras-se recorded them); train it again to use it here."
        )
    return TrainedModel(load_keras_file(model_path), tuple(names), model_path, summary)
