"""Quantized TFLite: float16, dynamic-range int8 and full-integer int8, checked by accuracy.

A quantized model cannot reproduce Keras to 1e-4, so `keras-se export --format tflite
--quantize ...` checks it the way a deployment is judged: the LiteRT interpreter and Keras
classify the same labelled validation images, and the report gives both accuracies, how often
their top-1 agree, and the file sizes. The images are what `keras-se train` reads (a TFDS
name, an image folder or the embedded `sklearn_digits`), prepared as its validation images
are; for the model of a run, the run's own dataset and validation split by default.

- `float16`: weights stored in float16 (half the size), computed in float32.
- `dynamic`: weights stored in int8 (a quarter), activations quantized on the fly.
- `int8`: full-integer: weights and activations in int8, their ranges calibrated on
  `CALIBRATION_IMAGES` training images; input and output stay float32 (the converter adds the
  quantize and dequantize steps), so the file takes the same images as the float one.

Example:
>>> QUANTIZATIONS
('float16', 'dynamic', 'int8')
"""

import dataclasses
import pathlib

import numpy as np

QUANTIZATIONS = ("float16", "dynamic", "int8")
CALIBRATION_IMAGES = 200
DEFAULT_MAX_ACCURACY_DROP = 0.01  # one point of top-1 accuracy


@dataclasses.dataclass(frozen=True)
class QuantizationCheck:
    """How a quantized TFLite file classifies the validation images next to Keras.

    Example:
    >>> check = QuantizationCheck("int8", "sklearn_digits", 449, 0.9866, 0.9844, 0.9933,
    ...                           1_300_000, 5_000_000)
    >>> print(check)  # doctest: +NORMALIZE_WHITESPACE
    int8 on 449 sklearn_digits validation images: top-1 98.44% (Keras 98.66%),
    agreement 99.33%, 1.3 MB (float32 weights 5.0 MB)
    """

    quantize: str
    dataset: str
    images: int
    keras_accuracy: float
    export_accuracy: float
    agreement: float  # the share of images on which both predict the same class
    size_bytes: int
    float_size_bytes: int  # the model's weights in float32 (about a float32 TFLite file)

    @property
    def accuracy_drop(self):
        """Keras' top-1 accuracy minus the quantized file's."""
        return self.keras_accuracy - self.export_accuracy

    def __str__(self):
        return (
            f"{self.quantize} on {self.images} {self.dataset} validation images: top-1 "
            f"{self.export_accuracy:.2%} (Keras {self.keras_accuracy:.2%}), agreement "
            f"{self.agreement:.2%}, {self.size_bytes / 1e6:.1f} MB (float32 weights "
            f"{self.float_size_bytes / 1e6:.1f} MB)"
        )


def check_options(quantize, format, max_accuracy_drop):
    """Validate the quantization arguments of `export`.

    Example:
    >>> check_options("int8", "onnx", 0.01)
    Traceback (most recent call last):
    ...
    ValueError: `quantize` applies to the tflite format only, not to 'onnx'.
    """
    from keras_se.layers import common

    if quantize is None:
        return
    common.check_choice("quantize", quantize, QUANTIZATIONS)
    if format != "tflite":
        raise ValueError(f"`quantize` applies to the tflite format only, not to {format!r}.")
    common.check_number("max_accuracy_drop", max_accuracy_drop, maximum=1)


def validation_data(model, model_path, dataset, data_dir):
    """The labelled splits a quantized export is calibrated and checked on, and the image size.

    `dataset` defaults to the dataset of the run `model_path` belongs to, split as the run
    split it. Refused: no dataset and no run, a model without a fixed square RGB input (the
    images are prepared as `keras-se train` prepares them), other classes than the model's.

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> splits, size = validation_data(model, None, "sklearn_digits", None)
    >>> splits.num_validation, size
    (449, 32)
    """
    from keras_se import integrity
    from keras_se.training import data
    from keras_se.training.trained import run_splits

    run = integrity.run_summary(model_path) if model_path is not None else None
    if dataset is None and run is None:
        raise ValueError(
            "A quantized export is checked on labelled images: pass `dataset` (--dataset: a "
            "TFDS name, an image folder or sklearn_digits), or export the model.keras of a "
            "keras-se train run, whose dataset is used."
        )
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] is None or shape[0] != shape[1] or shape[2] != 3:
        raise ValueError(
            "A quantized export is checked on images prepared as keras-se train prepares them "
            f"(square RGB of a fixed size); the model takes {shape}, which they cannot match."
        )
    if run is None:
        splits = data.load_splits(dataset, data_dir=data_dir)
    else:
        splits = run_splits(run, dataset, data_dir)
    classes = model.outputs[0].shape[-1]
    if splits.num_classes != classes:
        raise ValueError(
            f"Dataset {splits.name!r} has {splits.num_classes} classes and the model "
            f"{classes} outputs; quantize with the dataset the model was trained on."
        )
    return splits, shape[0]


def convert(saved_model, quantize, calibration_images):
    """The TFLite flat buffer of a SavedModel, quantized; `calibration_images` (an iterable of
    float32 batches of one image) calibrates `int8`.

    Example:
    >>> import keras, pathlib, tempfile
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "dense"
    >>> model.export(str(folder), format="tf_saved_model", verbose=False)
    >>> convert(folder, "float16", [])[4:8]  # a TFLite flat buffer's identifier
    b'TFL3'
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        images = list(calibration_images)
        converter.representative_dataset = lambda: ([image] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def calibration_batches(splits, image_size, count=CALIBRATION_IMAGES):
    """Up to `count` training images, one per batch, as the validation pipeline prepares them.

    Example:
    >>> from keras_se.training import data
    >>> images = list(calibration_batches(data.load_splits("sklearn_digits"), 32, count=5))
    >>> len(images), images[0].shape, images[0].dtype.name
    (5, (1, 32, 32, 3), 'float32')
    """
    from keras_se.training import data

    batches = data.make_pipeline(
        splits.train.take(count),
        image_size=image_size,
        batch_size=1,
        num_classes=1,
        training=False,
    )
    return (images.numpy() for images, _ in batches)


def compare_accuracy(model, artifact, splits, image_size, quantize):
    """Keras and the TFLite file on the validation split: a `QuantizationCheck`.

    Example:
    >>> import keras, pathlib, tempfile
    >>> from keras_se.training import data
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model.export(str(folder / "flat"), format="tf_saved_model", verbose=False)
    >>> _ = (folder / "m.tflite").write_bytes(convert(folder / "flat", "float16", []))
    >>> check = compare_accuracy(model, folder / "m.tflite", data.load_splits("sklearn_digits"),
    ...                          32, "float16")
    >>> check.images, check.agreement > 0.95, check.float_size_bytes
    (449, True, 122920)
    """
    from keras_se.export_check import tflite_runner
    from keras_se.training import data

    run = tflite_runner(artifact)
    batches = data.make_pipeline(
        splits.validation,
        image_size=image_size,
        batch_size=64,
        num_classes=splits.num_classes,
        training=False,
    )
    keras_top1, export_top1, labels = [], [], []
    for images, one_hot in batches:
        images = images.numpy()
        keras_top1.append(np.argmax(model.predict_on_batch(images), axis=1))
        export_top1.append(np.argmax(run(images), axis=1))
        labels.append(np.argmax(one_hot.numpy(), axis=1))
    keras_top1, export_top1, labels = (np.concatenate(x) for x in (keras_top1, export_top1, labels))
    return QuantizationCheck(
        quantize,
        str(splits.name),
        len(labels),
        float(np.mean(keras_top1 == labels)),
        float(np.mean(export_top1 == labels)),
        float(np.mean(keras_top1 == export_top1)),
        pathlib.Path(artifact).stat().st_size,
        sum(4 * int(np.prod(weight.shape)) for weight in model.weights),
    )
