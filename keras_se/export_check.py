"""Run an exported model in its own runtime and compare it with Keras.

onnxruntime runs `.onnx` files, TensorFlow SavedModels and the LiteRT interpreter `.tflite`
files, on a random batch of each size in `CHECK_BATCH_SIZES` (the batch dimension is dynamic
in every format). `keras_se.export` writes an artifact only once this check has passed.
"""

import numpy as np

from keras_se import memory

RUNTIMES = {"onnx": "onnxruntime", "saved_model": "TensorFlow", "tflite": "LiteRT"}
CHECK_BATCH_SIZES = (1, 3)
# Spatial size of the check batch for a model built with undefined height and width.
DEFAULT_CHECK_SIZE = 224


def _check_batch(input_shape, seed):
    size = max(CHECK_BATCH_SIZES)
    shape = [size, *(DEFAULT_CHECK_SIZE if dim is None else dim for dim in input_shape)]
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _runner(artifact, format):
    """A function from a numpy batch to the exported model's numpy output."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    if format == "saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(str(artifact)).signatures["serving_default"]
        return lambda batch: next(iter(signature(images=tf.constant(batch)).values())).numpy()
    return tflite_runner(artifact)


def tflite_runner(artifact):
    """A function from a numpy batch to a `.tflite` file's numpy output (LiteRT interpreter),
    for any batch size.

    Example:
    >>> import keras, pathlib, tempfile
    >>> import tensorflow as tf
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model.export(str(folder / "dense"), format="tf_saved_model", verbose=False)
    >>> converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "dense"))
    >>> path = folder / "dense.tflite"
    >>> _ = path.write_bytes(converter.convert())
    >>> tflite_runner(path)(np.ones((5, 4), "float32")).shape
    (5, 2)
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(artifact))
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(batch):
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return run


def compare_with_keras(model, input_shape, artifact, format, seed):
    """The max absolute difference between the artifact's and Keras' outputs on random batches
    of each size in `CHECK_BATCH_SIZES`, and the max absolute Keras output.

    Example:
    >>> import keras, pathlib, tempfile
    >>> import tensorflow as tf
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "dense"
    >>> images = tf.TensorSpec((None, 4), name="images")  # the input name keras-se exports
    >>> model.export(str(folder), format="tf_saved_model", input_signature=[images],
    ...              verbose=False)
    >>> difference, scale = compare_with_keras(model, (4,), folder, "saved_model", seed=0)
    >>> difference < 1e-6 < scale
    True
    """
    import keras

    batch = _check_batch(input_shape, seed)
    run = _runner(artifact, format)
    outputs = [run(batch[:size]) for size in CHECK_BATCH_SIZES]
    del run  # the runtime's memory is handed back before Keras runs
    memory.release()
    # One image at a time: TensorFlow keeps the memory of the largest activations it has
    # computed, and a batch of 3 at 224x224 kept 0.5 GB for SE-ResNet-50.
    expected = np.concatenate(
        [keras.ops.convert_to_numpy(model(image[None], training=False)) for image in batch]
    )
    differences = []
    for size, output in zip(CHECK_BATCH_SIZES, outputs, strict=True):
        if output.shape != expected[:size].shape:
            raise ValueError(
                f"The {format} export returns shape {output.shape} for a batch of {size}, "
                f"Keras {expected[:size].shape}."
            )
        differences.append(float(np.max(np.abs(output - expected[:size]))))
    return max(differences), float(np.max(np.abs(expected)))
