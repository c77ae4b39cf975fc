"""What a training run records in its folder besides the model: the per-epoch history
(`history.json`, `history.csv`), the learning curves (`curves.png`) and the epoch timings.
"""

import csv
import io
import json
import pathlib
import time

import keras

from keras_se import atomic
from keras_se.training import figures


class EpochLog(keras.callbacks.Callback):
    """Adds the learning rate to each epoch's logs and times the training part of each epoch.

    `train_seconds` lists, per epoch run, the seconds from its start to its validation (or
    its end): compilation is in the first, validation in none.

    Example:
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.5), "mse")
    >>> log = EpochLog()
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[log])
    >>> history.history["learning_rate"], len(log.train_seconds)
    ([0.5, 0.5], 2)
    """

    def __init__(self):
        super().__init__()
        self.train_seconds = []
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def _end_of_training_part(self):
        if self._epoch_start is not None:
            self.train_seconds.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None

    def on_test_begin(self, logs=None):
        self._end_of_training_part()

    def on_epoch_end(self, epoch, logs=None):
        self._end_of_training_part()
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        if callable(rate):
            rate = rate(optimizer.iterations)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def write_history(run_dir, history):
    """Write `history.json` and `history.csv` (one row per epoch) atomically.

    Example:
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_history(folder, {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})
    >>> print((folder / "history.csv").read_text().strip())
    epoch,loss,val_loss
    1,0.9,1.0
    2,0.5,0.7
    """
    run_dir = pathlib.Path(run_dir)
    atomic.write_text_atomically(run_dir / "history.json", json.dumps(history, indent=1))
    keys = sorted(history)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(history[key][epoch] for key in keys)])
    atomic.write_text_atomically(run_dir / "history.csv", table.getvalue())


def plot_history(history, path):
    """Draw loss and accuracy per epoch, training and validation, to a PNG file.

    Example:
    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.8],
    ...               "val_accuracy": [0.4, 0.7]}, path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    figure, axes = figures.pyplot().subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figures.save_png(figure, path)
