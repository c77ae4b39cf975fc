"""`keras-se evaluate`: a trained run's model on a labelled split, class by class.

Writes `evaluation.json` (top-1 and top-k accuracy, per-class accuracy, the confusion matrix)
and `confusion.png`, atomically, into the run's `evaluation-SPLIT/` folder by default.
"""

import json
import pathlib

import numpy as np

from keras_se import atomic
from keras_se.layers import common
from keras_se.training.trained import open_trained_model

SPLITS = ("validation", "train")


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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    confusion = np.asarray(confusion)
    side = min(4 + 0.35 * len(class_names), 24)
    figure, axis = pyplot.subplots(figsize=(side, side))
    axis.imshow(confusion, cmap="Blues")
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90)
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if len(class_names) <= 30:
        for (row, column), count in np.ndenumerate(confusion):
            axis.text(column, row, str(count), ha="center", va="center", fontsize=8)
    figure.tight_layout()
    with atomic.atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=100)
    pyplot.close(figure)


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
        model: the run folder, or its `model.keras`.
        dataset: a TFDS name or image folder whose classes are the run's; by default the
            run's own dataset, split as the run split it (its validation split and seed).
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
    from keras_se.training import data

    common.check_choice("split", split, SPLITS)
    batch_size = common.check_int("batch_size", batch_size)
    trained = open_trained_model(model)
    run = trained.summary
    output_dir = pathlib.Path(output_dir or trained.path.parent / f"evaluation-{split}")
    results = output_dir / "evaluation.json"
    if results.exists() and not overwrite:
        raise FileExistsError(
            f"{results} holds an earlier evaluation; pass --overwrite (overwrite=True) to "
            "replace it, or another output folder."
        )
    same = dataset is None or str(dataset) == run["dataset"]
    splits = data.load_splits(
        run["dataset"] if dataset is None else dataset,
        data_dir=data_dir or run.get("data_dir"),
        validation_split=run.get("validation_split") if same else None,
        seed=run.get("seed", 0) if same else 0,
    )
    if splits.class_names != trained.class_names:
        raise ValueError(
            f"The classes of dataset {splits.name!r} ({', '.join(splits.class_names[:5])}, ...) "
            f"are not the run's ({', '.join(trained.class_names[:5])}, ...) in the same order."
        )
    batches = data.make_pipeline(
        getattr(splits, split),
        image_size=trained.image_size,
        batch_size=batch_size,
        num_classes=splits.num_classes,
        training=False,
    )
    probabilities, labels = [], []
    for images, one_hot in batches:
        probabilities.append(np.asarray(trained.model.predict_on_batch(images), "float64"))
        labels.append(np.argmax(one_hot, axis=1))
    found = scores(np.concatenate(probabilities), np.concatenate(labels), splits.num_classes)
    report = {
        "model": str(trained.path),
        "dataset": splits.name,
        "split": split,
        "class_names": list(trained.class_names),
        **found,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(found["confusion"], trained.class_names, output_dir / "confusion.png")
    atomic.write_text_atomically(results, json.dumps(report, indent=1))
    return report
