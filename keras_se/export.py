"""Export a Keras model to ONNX, SavedModel or TFLite and check it against Keras.

`export()` (and `keras-se export`) writes the file, loads it back with its own runtime
(onnxruntime, TensorFlow, the LiteRT interpreter), runs it on a random batch of 1 and of 3
images (the batch dimension is dynamic in every format) and compares the outputs with Keras'.
The file only appears at its final path once that check has passed; an existing file is never
replaced without `overwrite=True`. A quantized TFLite file (`quantize=`) is checked by its
accuracy on a labelled validation split instead (`keras_se.quantization`).

Each Keras backend exports through the route Keras 3 itself provides (`BACKEND_FORMATS`):
TensorFlow every format (tf2onnx, SavedModel, the TFLite converter), JAX a SavedModel (jax2tf,
with TensorFlow installed) and PyTorch ONNX (torch.onnx). The check is the same for all.

Grouped convolutions: keras-se's models (SE-ResNeXt, SENet-154, SKNet) use
`keras_se.layers.GroupedConv2D`, which traces to ordinary grouped `Conv2D` ops. Keras' own
`Conv2D(groups > 1)` (in a user's model, or a `.keras` file saved before keras-se had that
layer) runs inside a nested `tf.function(jit_compile=True)`; an exported graph keeps that
function behind a call that tf2onnx cannot convert and that TF Serving refuses unless XLA:CPU
is switched on. The exported graphs therefore drop the `_XlaMustCompile` mark from their
functions, which lets the converters inline them into plain `Conv2D` ops (TensorFlow,
onnxruntime and LiteRT all run grouped convolutions natively). Training is untouched: only
the exported copy of the graph changes.
"""

import dataclasses
import math
import os
import pathlib
import warnings
import zipfile

from keras_se import atomic, integrity, memory, onnx_conversion, quantization, requirements
from keras_se.export_check import CHECK_BATCH_SIZES, RUNTIMES, compare_with_keras

FORMATS = ("onnx", "saved_model", "tflite")
# The formats each Keras backend writes, through Keras 3's own `model.export` routes.
BACKEND_FORMATS = {
    "tensorflow": FORMATS,  # tf2onnx, tf.saved_model, the TFLite converter
    "jax": ("saved_model",),  # jax2tf: a TensorFlow graph calling the XLA-compiled JAX function
    "torch": ("onnx",),  # torch.onnx (the TorchScript exporter keeps the batch dynamic)
}
SUFFIXES = {"onnx": ".onnx", "saved_model": "", "tflite": ".tflite"}
# ONNX opsets each route converts to: tf2onnx 1.17 (its README: 14 to 18; 13 works for these
# models) and torch.onnx's TorchScript exporter (up to 20, its default).
ONNX_OPSETS = {"tensorflow": range(13, 19), "torch": range(13, 21)}
DEFAULT_TOLERANCE = 1e-4
_XLA_MARK = "_XlaMustCompile"
_NO_INLINE_MARK = "_noinline"
# What each backend's export needs installed, and the keras-se extras that install it.
_PACKAGES = {
    ("tensorflow", "onnx"): (("tf2onnx", "onnxruntime"), "tensorflow-cpu,export"),
    ("tensorflow", "saved_model"): ((), "tensorflow-cpu,export"),
    ("tensorflow", "tflite"): (("ai_edge_litert",), "tensorflow-cpu,export"),
    ("jax", "saved_model"): (("tensorflow",), "jax,tensorflow-cpu,export"),
    ("torch", "onnx"): (("onnx", "onnxruntime"), "torch,export"),
}


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export()` wrote and how closely it reproduces Keras.

    Example:
    >>> report = ExportReport(pathlib.Path("m.onnx"), "onnx", 2e-7, 3.5, 1e-4, (1, 3), 15, 2**31)
    >>> str(report).split(": ")[1].split(", outputs")[0]
    'max |onnxruntime - Keras| = 2e-07 on batches of 1 and 3'
    >>> str(report).split(", ")[-1]
    'peak memory 2.1 GB'
    """

    path: pathlib.Path
    format: str
    max_abs_diff: float
    max_abs_output: float  # the scale the difference is measured against
    tolerance: float
    batch_sizes: tuple
    opset: int | None = None
    # The process's peak resident memory when the export was done (the export's own peak in
    # `keras-se export`, where the export is what the process does).
    peak_memory_bytes: int | None = None
    # A quantized TFLite file's check (`quantization.QuantizationCheck`), which replaces the
    # tolerance: its max difference on the random batches is kept for information only.
    accuracy_check: quantization.QuantizationCheck | None = None

    def __str__(self):
        if self.accuracy_check is not None:
            check = f"{self.path} (tflite, {self.accuracy_check})"
        else:
            detail = f", opset {self.opset}" if self.opset is not None else ""
            batches = " and ".join(str(size) for size in self.batch_sizes)
            check = (
                f"{self.path} ({self.format}{detail}): max |{RUNTIMES[self.format]} - Keras| = "
                f"{self.max_abs_diff:.3g} on batches of {batches}, outputs up to "
                f"{self.max_abs_output:.3g} (tolerance {self.tolerance:g})"
            )
        if self.peak_memory_bytes:
            check += f", peak memory {self.peak_memory_bytes / 1e9:.1f} GB"
        return check


def export(
    model,
    path=None,
    format="onnx",
    *,
    opset=None,
    tolerance=DEFAULT_TOLERANCE,
    overwrite=False,
    seed=0,
    quantize=None,
    dataset=None,
    data_dir=None,
    max_accuracy_drop=quantization.DEFAULT_MAX_ACCURACY_DROP,
):
    """Export `model` and check the exported file against Keras.

    Args:
        model: A `keras.Model` with one input and one output, or the path of a `.keras` file
            (loaded with `safe_mode=True`).
        path: Where to write: a `.onnx` or `.tflite` file, or a SavedModel folder. Defaults to
            the `.keras` file's path with the format's suffix (`model.onnx`, `model.tflite`,
            `model_saved_model/`); required when `model` is a `keras.Model`.
        format: `"onnx"` (tf2onnx, or torch.onnx on the torch backend; checked with
            onnxruntime), `"saved_model"` (a `serving_default` signature for TF Serving,
            checked with TensorFlow) or `"tflite"` (checked with the LiteRT interpreter); the
            current Keras backend must write it (`BACKEND_FORMATS`).
        opset: ONNX opset (13 to 18 through tf2onnx, default 15; 13 to 20 through torch.onnx,
            default 20). ONNX only.
        tolerance: Largest max absolute difference from Keras that passes the check (not
            for quantized files, which `max_accuracy_drop` checks).
        overwrite: Replace an existing file or folder at `path`.
        seed: Seed of the random check batch.
        quantize: TFLite only: `"float16"`, `"dynamic"` (int8 weights) or `"int8"` (full
            integer, calibrated on training images); see `keras_se.quantization`. The file is
            checked on a labelled validation split instead of to `tolerance`.
        dataset: the labelled images of a quantized export (a TFDS name, an image folder or
            `"sklearn_digits"`); by default the dataset of the run `model` comes from.
        data_dir: TFDS data folder (by default the run's).
        max_accuracy_drop: how much lower the quantized file's top-1 accuracy may be than
            Keras' on the validation split (0.01: one point).

    Returns:
        An `ExportReport` with the path and the max absolute difference.

    Raises:
        ValueError: bad argument, a format the Keras backend cannot write, not a `.keras`
            file, or the check failed (nothing is written).
        FileExistsError: `path` exists and `overwrite` is False.

    Example:
    >>> import tempfile, pathlib, keras_se
    >>> model = keras_se.applications.SEResNet18(input_shape=(32, 32, 3), classes=10)
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "se_resnet18.onnx"
    >>> export(model, target, "onnx").max_abs_diff < 1e-4  # doctest: +SKIP
    True
    """
    import keras  # here, not at the top: `keras-se export --help` answers without it

    backend = keras.backend.backend()
    _check_options(format, opset, tolerance, seed, backend)
    quantization.check_options(quantize, format, max_accuracy_drop)
    if dataset is not None and quantize is None:
        raise ValueError("`dataset` applies to quantized exports only (`quantize`).")
    path = _output_path(model, path, format, overwrite)
    requirements.require_modules("Export", *_PACKAGES[backend, format])
    model_path = None
    if not isinstance(model, keras.Model):
        model_path = pathlib.Path(model)
        model = load_keras_file(model_path)
    input_shape = _check_model(model)
    model = float32_copy(model)
    if quantize is not None:
        splits, image_size = quantization.validation_data(model, model_path, dataset, data_dir)

    check = None
    with atomic.staged(path) as staging:
        artifact = staging / path.name
        if format == "onnx" and backend == "torch":
            opset = _write_onnx_from_torch(model, input_shape, artifact, opset)
        elif format == "onnx":
            opset = _write_onnx(model, input_shape, artifact, opset)
        else:
            saved_model = artifact if format == "saved_model" else staging / "saved_model"
            _write_saved_model(model, input_shape, saved_model)
            if quantize is not None:
                calibration = quantization.calibration_batches(splits, image_size)
                artifact.write_bytes(quantization.convert(saved_model, quantize, calibration))
            elif format == "tflite":
                import tensorflow as tf

                converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
                artifact.write_bytes(converter.convert())
        difference, scale = compare_with_keras(model, input_shape, artifact, format, seed)
        if quantize is not None:
            check = quantization.compare_accuracy(model, artifact, splits, image_size, quantize)
            if check.accuracy_drop > max_accuracy_drop:
                raise ValueError(
                    f"The {quantize} TFLite file's top-1 accuracy is {check.accuracy_drop:.2%} "
                    f"below Keras' ({check}), more than max_accuracy_drop "
                    f"{max_accuracy_drop:g}; nothing was written to {path}."
                )
        elif not difference <= tolerance:
            raise ValueError(
                f"The {format} export differs from Keras by up to {difference:.3g} "
                f"(max absolute difference), above the tolerance {tolerance:g}; nothing was "
                f"written to {path}."
            )
    return ExportReport(
        path,
        format,
        difference,
        scale,
        tolerance,
        CHECK_BATCH_SIZES,
        opset,
        memory.peak_bytes(),
        check,
    )


def load_keras_file(path):
    """Load a `.keras` file with `safe_mode=True`, with a clear error for anything else.

    Example:
    >>> import tempfile, pathlib, keras
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.keras"
    >>> keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    >>> load_keras_file(path).output_shape
    (None, 1)
    """
    import keras

    import keras_se  # noqa: F401  (registers the custom layers before loading)

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`model` file {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"`model` must be a Keras model saved as a `.keras` file (model.save('m.keras')), "
            f"got {str(path)!r}, which is not one."
        )
    integrity.check(path, integrity.run_model_digest(path), "train it again or restore it")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        raise ValueError(
            f"{str(path)!r} could not be loaded as a Keras model; the file is corrupted or was "
            f"not written by Keras 3: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(model, keras.Model):
        raise ValueError(f"{str(path)!r} holds a {type(model).__name__}, not a keras.Model.")
    return model


def default_path(keras_file, format):
    """Where `export` writes when no path is given: next to the `.keras` file.

    Example:
    >>> default_path("runs/model.keras", "saved_model").as_posix()
    'runs/model_saved_model'
    """
    keras_file = pathlib.Path(keras_file)
    if format == "saved_model":
        return keras_file.with_name(f"{keras_file.stem}_saved_model")
    return keras_file.with_suffix(SUFFIXES[format])


def _check_options(format, opset, tolerance, seed, backend):
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}; got {format!r}.")
    formats = BACKEND_FORMATS.get(backend, ())
    if format not in formats:
        raise ValueError(
            f"`format` {format!r} is not written on the {backend} backend, which exports "
            f"{' and '.join(formats) or 'no format'}; run with KERAS_BACKEND=tensorflow, which "
            "exports every format."
        )
    if opset is not None:
        if format != "onnx":
            raise ValueError(f"`opset` applies to the onnx format only, not to {format!r}.")
        if isinstance(opset, bool) or not isinstance(opset, int):
            raise TypeError(f"`opset` must be an integer, got {opset!r}.")
        opsets = ONNX_OPSETS[backend]
        if opset not in opsets:
            raise ValueError(
                f"`opset` must be between {opsets[0]} and {opsets[-1]} (the ONNX opsets the "
                f"{backend} backend's converter writes), got {opset}."
            )
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance <= 0
    ):
        raise ValueError(f"`tolerance` must be a positive number, got {tolerance!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an integer, got {seed!r}.")


def _output_path(model, path, format, overwrite):
    import keras

    if path is None:
        if isinstance(model, keras.Model):
            raise ValueError("`path` is required when `model` is a keras.Model.")
        if not isinstance(model, str | os.PathLike):
            raise TypeError(f"`model` must be a keras.Model or a .keras path, got {model!r}.")
        path = default_path(model, format)
    path = pathlib.Path(path)
    suffix = SUFFIXES[format]
    if suffix and path.suffix != suffix:
        raise ValueError(f"`path` of a {format} export must end in {suffix}, got {str(path)!r}.")
    if not suffix and path.suffix in (".onnx", ".tflite", ".keras"):
        raise ValueError(f"`path` of a SavedModel is a folder, got the file name {str(path)!r}.")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another path or pass overwrite=True (--overwrite)."
        )
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"The output folder {str(folder)!r} does not exist or is not writable.")
    return path


def _check_model(model):
    """The input shape (without batch) the export uses; one input and one output."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"`model` must have one input and one output to be exported, got "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    return tuple(model.inputs[0].shape[1:])


def float32_copy(model):
    """`model` itself when it computes in float32, else a float32 copy with the same weights.

    A model trained with mixed precision is exported in float32: its variables are float32
    already, and the exported graph then matches Keras to float32 rounding.

    Example:
    >>> import keras
    >>> keras.config.set_dtype_policy("mixed_float16")
    >>> mixed = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> keras.config.set_dtype_policy("float32")
    >>> float32_copy(mixed).layers[0].compute_dtype
    'float32'
    """
    import keras

    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _input_spec(model, input_shape):
    import tensorflow as tf

    name = onnx_conversion.ONNX_NAMES["input"]
    return tf.TensorSpec((None, *input_shape), model.inputs[0].dtype, name=name)


def drop_xla_compile_marks(graph_def):
    """Let converters inline the functions Keras compiles with XLA (grouped convolutions).

    Removes, in place, `_XlaMustCompile` from every node and function of `graph_def`, and the
    `_noinline` mark that TensorFlow gives such functions. Returns how many functions and call
    nodes were marked.

    Example:
    >>> from tensorflow.core.framework import graph_pb2
    >>> graph = graph_pb2.GraphDef()
    >>> graph.node.add(name="conv", op="StatefulPartitionedCall").attr[_XLA_MARK].b = True
    >>> drop_xla_compile_marks(graph)
    1
    """
    removed = 0
    for function in graph_def.library.function:
        if _XLA_MARK in function.attr:
            del function.attr[_XLA_MARK]
            function.attr.pop(_NO_INLINE_MARK, None)
            removed += 1
    nodes = [*graph_def.node]
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    for node in nodes:
        if _XLA_MARK in node.attr:
            del node.attr[_XLA_MARK]
            removed += 1
    return removed


def _write_saved_model(model, input_shape, folder):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    model.export(
        str(folder),
        format="tf_saved_model",
        input_signature=[_input_spec(model, input_shape)],
        verbose=False,
    )
    graph_file = folder / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(graph_file.read_bytes())
    if sum(drop_xla_compile_marks(graph.graph_def) for graph in saved_model.meta_graphs):
        graph_file.write_bytes(saved_model.SerializeToString())
        fingerprinting_utils.write_fingerprint(str(folder))  # its checksum covers the graph


def _write_onnx_from_torch(model, input_shape, path, opset):
    """Keras' own torch route (`model.export(format="onnx")`: torch.onnx's TorchScript
    exporter, which keeps the batch dynamic), then the interface named as tf2onnx's.

    The tracer warns at every Python-level shape test of a layer ("the trace might be
    incorrect"); they are hidden, as the file is run on batches of 1 and 3 before it counts.
    """
    import keras
    import onnx

    images = keras.InputSpec(
        shape=(None, *input_shape),
        dtype=model.inputs[0].dtype,
        name=onnx_conversion.ONNX_NAMES["input"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(
            str(path), format="onnx", input_signature=[images], opset_version=opset, verbose=False
        )
    model_proto = onnx_conversion.name_onnx_interface(onnx.load(str(path)))
    path.write_bytes(model_proto.SerializeToString())
    return model_proto.opset_import[0].version


def _write_onnx(model, input_shape, path, opset):
    """tf2onnx on the model's graph (`keras_se.onnx_conversion`), with the XLA marks dropped."""
    import tensorflow as tf

    function = tf.function(lambda images: model(images, training=False))
    concrete = function.get_concrete_function(_input_spec(model, input_shape))
    input_names = [concrete.inputs[0].name]  # the images; the other inputs are captures
    output_names = [tensor.name for tensor in concrete.outputs]
    # Passed on without a name here, so that the converter frees the GraphDef (as large as
    # the weights) as soon as it has set the weights aside.
    return onnx_conversion.convert(
        _frozen_without_xla_marks(concrete), input_names, output_names, path, opset
    )


def _frozen_without_xla_marks(concrete):
    """The frozen GraphDef of a concrete function, its XLA marks dropped: TensorFlow's
    optimizer then inlines the grouped convolutions."""
    from tf2onnx import tf_loader

    graph_def = tf_loader.fix_freezing_errors_part2(onnx_conversion.frozen_graph_def(concrete))
    drop_xla_compile_marks(graph_def)
    return graph_def
