"""`keras-se evaluate`: a trained run's model, or a keras-se ImageNet classifier, on a
labelled split, class by class.

Writes `evaluation.json` (top-1 and top-k accuracy, per-class accuracy, the confusion matrix)
and `confusion.png`, atomically, into the `evaluation-SPLIT/` folder next to the model by
default. A run's model sees its images through the training job's validation pipeline; an
ImageNet classifier through its timm twin's evaluation transform, on images Pillow decodes,
as timm's `validate.py` does, so its top-1 on ImageNet's validation images is timm's.
"""

import json
import pathlib

import numpy as np

from keras_se import atomic
from keras_se.layers import common
from keras_se.training import figures
from keras_se.training.trained import SPLITS, labelled_batches, open_trained_model


def scores(probabilities, labels, num_classes, top=5):
    """Top-1 and top-k accuracy (k = `top`, at most the number of classes), per-class
    accuracy and the confusion matrix (rows: true class, columns: predicted class) of
    `probabilities` against integer `labels`.

    Example:
    >>> found = scores(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), np.array([0, 1, 1]), 2)
    >>> found["top1"], found["per_class"], found["confusion"]
    (0.6666666666666666, [1.0, 0.5], [[1, 0], [1, 1]])
    """
    top = min(top, num_classes)
    predicted = np.argmax(probabilities, axis=1)
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    confusion = np.zeros((num_classes, num_classes), int)
    np.add.at(confusion, (labels, predicted), 1)
    counts = confusion.sum(axis=1)
    return {
        "count": len(labels),
        "top1": float(np.mean(predicted == labels)),
        "top_k": top,
        "top_k_accuracy": float(np.mean(np.any(best == labels[:, None], axis=1))),
        "per_class": [
            float(confusion[i, i] / counts[i]) if counts[i] else None for i in range(num_classes)
        ],
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion, class_names, path):
    """Save the confusion matrix as a PNG (true classes down, predicted across).

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "confusion.png"
    >>> plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    confusion = np.asarray(confusion)
    side = min(4 + 0.35 * len(class_names), 24)
    figure, axis = figures.pyplot().subplots(figsize=(side, side))
    axis.imshow(confusion, cmap="Blues")
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90)
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if len(class_names) > 100:  # ImageNet: too many to name
        axis.set_xticks([])
        axis.set_yticks([])
    elif len(class_names) <= 30:
        for (row, column), count in np.ndenumerate(confusion):
            axis.text(column, row, str(count), ha="center", va="center", fontsize=8)
    figures.save_png(figure, path)


def evaluate(
    model,
    dataset=None,
    *,
    split="validation",
    data_dir=None,
    batch_size=64,
    output_dir=None,
    overwrite=False,
):
    """Evaluate the model of a `keras-se train` run on a split of a labelled dataset.

    Args:
        model: the run folder, or its `model.keras`; or the `.keras` file of a keras-se
            ImageNet classifier (see `trained.open_trained_model`).
        dataset: a TFDS name or image folder whose classes are the run's; by default the
            run's own dataset, split as the run split it (its validation split and seed).
            For an ImageNet classifier (required): a folder whose class sub-folders are
            WordNet ids (`n01440764`, ... ImageNet's validation images, or some classes of
            them), or a TFDS dataset with such classes (`imagenet2012`, manual download).
        split: `"validation"` or `"train"`.
        data_dir: TFDS data folder (by default the run's).
        batch_size: images per batch.
        output_dir: where `evaluation.json` and `confusion.png` go (default: the run folder's
            `evaluation-SPLIT/`).
        overwrite: replace the files of an earlier evaluation there.

    Returns:
        The `evaluation.json` dict: the `scores`, with the model, dataset, split and class
        names.

    Example:
    >>> evaluate("runs/SEResNet18-sklearn_digits")["top1"]  # doctest: +SKIP
    0.9844097995545658
    """
    common.check_choice("split", split, SPLITS)
    batch_size = common.check_int("batch_size", batch_size)
    trained = open_trained_model(model)
    output_dir = pathlib.Path(output_dir or trained.path.parent / f"evaluation-{split}")
    results = output_dir / "evaluation.json"
    if results.exists() and not overwrite:
        raise FileExistsError(
            f"{results} holds an earlier evaluation; pass --overwrite (overwrite=True) to "
            "replace it, or another output folder."
        )
    name, batches = labelled_batches(trained, dataset, split, data_dir, batch_size)
    probabilities, labels = [], []
    for images, batch_labels in batches:
        probabilities.append(trained.probabilities(images))
        labels.append(batch_labels)
    found = scores(np.concatenate(probabilities), np.concatenate(labels), len(trained.class_names))
    report = {
        "model": str(trained.path),
        "dataset": name,
        "split": split,
        "class_names": list(trained.class_names),
        **found,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(found["confusion"], trained.class_names, output_dir / "confusion.png")
    atomic.write_text_atomically(results, json.dumps(report, indent=1))
    return report
