"""tensorflow-datasets input for the training job (needs TensorFlow and tensorflow-datasets).

Example:
>>> import tempfile
>>> from keras_se.training import data
>>> splits = data.load_splits("sklearn_digits", data_dir=tempfile.mkdtemp())
>>> batches = data.make_pipeline(splits.train, image_size=32, batch_size=64,
...                              num_classes=splits.num_classes, training=True,
...                              num_examples=splits.num_train, flip=splits.flip)
>>> images, labels = next(iter(batches))
>>> tuple(images.shape), tuple(labels.shape)
((64, 32, 32, 3), (64, 10))
"""

from keras_se.training.data.pipeline import make_pipeline
from keras_se.training.data.sklearn_digits import SklearnDigits
from keras_se.training.data.sources import DEFAULT_DATASET, Splits, default_data_dir, load_splits

__all__ = [
    "DEFAULT_DATASET",
    "SklearnDigits",
    "Splits",
    "default_data_dir",
    "load_splits",
    "make_pipeline",
]
