"""The training job behind `keras-se train`: `model.fit` of a registered model on the embedded
digits (offline), a TFDS dataset or an image folder, under a `tf.distribute` strategy, with
crash-safe checkpoints and a run folder that holds everything a person needs.

Modules: `job` (settings and the run), `data` (sources and the input pipeline), `distribute`
(strategies), `checkpoint` (resumable backups), `keras_compat` (a fix for Keras under
multi-worker training).

Example:
>>> from keras_se.training import TrainConfig
>>> TrainConfig(model="SKResNet18").model
'SKResNet18'
"""

from keras_se.training.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name):
    """`train`, imported on first use: `keras-se train --help` reads `TrainConfig` without
    importing Keras."""
    if name == "train":
        from keras_se.training.job import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
