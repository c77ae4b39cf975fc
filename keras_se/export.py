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
import gc
import math
import os
import pathlib
import sys
import warnings
import zipfile

from keras_se import atomic, integrity, quantization, requirements
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
# What an ONNX file's input, output and their dynamic batch dimension are called (tf2onnx
# leaves the TensorFlow names: `images:0`, `Identity:0`, `unk__263`).
ONNX_NAMES = {"input": "images", "output": "predictions", "batch": "batch"}
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
        _peak_memory_bytes(),
        check,
    )


def _peak_memory_bytes():
    """This process's peak resident memory so far (None where `resource` does not exist)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


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

    return tf.TensorSpec((None, *input_shape), model.inputs[0].dtype, name="images")


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


def name_onnx_interface(model_proto):
    """Rename the graph's one input and one output to `ONNX_NAMES` and give their first
    dimension the symbolic name `batch`, everywhere the graph refers to them.

    Example:
    >>> import onnx
    >>> node = onnx.helper.make_node("Relu", ["images:0"], ["Identity:0"])
    >>> value = lambda name: onnx.helper.make_tensor_value_info(name, 1, ["unk__1", 4])
    >>> graph = onnx.helper.make_graph([node], "g", [value("images:0")], [value("Identity:0")])
    >>> model = name_onnx_interface(onnx.helper.make_model(graph))
    >>> node, output = model.graph.node[0], model.graph.output[0]
    >>> list(node.input), list(node.output), output.type.tensor_type.shape.dim[0].dim_param
    (['images'], ['predictions'], 'batch')
    """
    graph = model_proto.graph
    renames = {graph.input[0].name: ONNX_NAMES["input"], graph.output[0].name: ONNX_NAMES["output"]}
    used = {name for node in graph.node for name in (*node.input, *node.output)}
    if (used | {t.name for t in graph.initializer}) & (set(renames.values()) - set(renames)):
        return model_proto  # a graph that already uses the names: left as the converter wrote it
    for node in graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renames.get(name, name)
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = ONNX_NAMES["batch"]
    return model_proto


def _write_onnx_from_torch(model, input_shape, path, opset):
    """Keras' own torch route (`model.export(format="onnx")`: torch.onnx's TorchScript
    exporter, which keeps the batch dynamic), then the interface named as tf2onnx's.

    The tracer warns at every Python-level shape test of a layer ("the trace might be
    incorrect"); they are hidden, as the file is run on batches of 1 and 3 before it counts.
    """
    import keras
    import onnx

    images = keras.InputSpec(
        shape=(None, *input_shape), dtype=model.inputs[0].dtype, name=ONNX_NAMES["input"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(
            str(path), format="onnx", input_signature=[images], opset_version=opset, verbose=False
        )
    model_proto = name_onnx_interface(onnx.load(str(path)))
    path.write_bytes(model_proto.SerializeToString())
    return model_proto.opset_import[0].version


def detach_attributes(graph):
    """Give every node of a tf2onnx graph attributes of its own and an empty NodeProto.

    A tf2onnx node keeps its attributes as views into its NodeProto, and every optimizer pass
    rewrites that NodeProto's attributes from them (`update_proto`): with protobuf's arenas
    the earlier copies stay alive as long as a view into them does, so every constant (the
    weights) piles up pass after pass. Copied out, the old NodeProtos are freed; `update_proto`
    rebuilds the attributes whenever tf2onnx needs them.

    Example:
    >>> import onnx
    >>> from tf2onnx.graph import Graph
    >>> node = onnx.helper.make_node("Relu", ["x"], ["y"], name="relu", alpha=1.0)
    >>> graph = Graph([node], output_shapes={}, dtypes={}, opset=15, output_names=["y"])
    >>> detach_attributes(graph)
    >>> relu = graph.get_node_by_name("relu")
    >>> relu.get_attr_value("alpha"), len(relu.op.attribute), relu.input
    (1.0, 0, ['x'])
    """
    import onnx

    for node in graph.get_nodes():
        attributes = {}
        for name, value in node.attr.items():
            attributes[name] = onnx.AttributeProto()
            attributes[name].CopyFrom(value)
        old = node.op
        fresh = onnx.NodeProto(name=old.name, op_type=old.op_type, domain=old.domain)
        fresh.input.extend(old.input)
        fresh.output.extend(old.output)
        node._attr, node._op = attributes, fresh


def _collecting(optimizer_class):
    """An ONNX graph optimizer that frees its garbage when it is done.

    tf2onnx's optimizer passes (two dozen per conversion) each leave a copy of every constant
    (the model's weights) in reference cycles that Python collects only now and then, and in
    the protobuf arenas of the nodes (`detach_attributes`): without this, SE-ResNet-50 peaked
    at 8 GB for 112 MB of weights.
    """

    def optimizer():
        instance = optimizer_class()
        optimize = instance.optimize

        def optimize_and_collect(graph, iteration):
            try:
                return optimize(graph, iteration)
            finally:
                detach_attributes(graph)
                _release_memory()

        instance.optimize = optimize_and_collect
        return instance

    return optimizer


def _write_onnx(model, input_shape, path, opset):
    """tf2onnx's `from_graph_def`, step by step, so that its working copies of the weights are
    freed as soon as each step is done.

    The objects that exist before the conversion (Keras, TensorFlow, the model) are frozen out
    of Python's collections meanwhile (`gc.freeze`), so that each collection looks at the
    converter's objects only: a fraction of a second instead of a second or more each.
    """
    gc.freeze()
    try:
        return _convert_to_onnx(model, input_shape, path, opset)
    finally:
        gc.unfreeze()


def _release_memory():
    """Collect garbage and hand the freed heap back to the system (glibc keeps it otherwise,
    and the next step's peak comes on top)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def frozen_graph_def(concrete):
    """The GraphDef of a concrete function with its variables as constants.

    TensorFlow's `convert_variables_to_constants_v2` also builds and registers a new concrete
    function from that GraphDef, which keeps several more copies of the weights alive in the
    eager context (0.9 GB for SE-ResNet-50's 112 MB); only the GraphDef is needed here.

    Example:
    >>> import tensorflow as tf
    >>> weight = tf.Variable([2.0])
    >>> concrete = tf.function(lambda x: x * weight).get_concrete_function(tf.TensorSpec([1]))
    >>> sorted(node.op for node in frozen_graph_def(concrete).node)
    ['Const', 'Identity', 'Identity', 'Mul', 'NoOp', 'Placeholder']
    """
    from tensorflow.python.framework import convert_to_constants

    data = convert_to_constants._FunctionConverterDataInEager(
        func=concrete, lower_control_flow=False, aggressive_inlining=True
    )
    graph_def, _ = convert_to_constants._replace_variables_by_constants(converter_data=data)
    return graph_def


def optimize_without_weights(graph_def, input_names, output_names, threshold=65536):
    """tf2onnx's Grappler pass (constant folding, function inlining) with the large constants
    (the weights) set aside as placeholders meanwhile, and put back after.

    Grappler copies the graph it is given about eight times (serialized, parsed, as tensors,
    optimized, serialized back): 1.1 GB for SE-ResNet-50's weights, which it does not need to
    see. Constants of `threshold` bytes or more stay out; the rest (BatchNorm vectors, shapes)
    fold as before.

    Example:
    >>> import numpy as np, tensorflow as tf
    >>> kernel = np.arange(128 * 256, dtype="float32").reshape(128, 256)
    >>> graph = tf.function(lambda x: x @ tf.constant(kernel)).get_concrete_function(
    ...     tf.TensorSpec([1, 128], name="x")).graph.as_graph_def()
    >>> optimized = optimize_without_weights(graph, ["x:0"], ["Identity:0"], threshold=1024)
    >>> [len(n.attr["value"].tensor.tensor_content) for n in optimized.node if n.op == "Const"]
    [131072]
    """
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2, tensor_pb2
    from tf2onnx import tf_loader

    weights, light = {}, graph_pb2.GraphDef()
    light.versions.CopyFrom(graph_def.versions)
    light.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        value = node.attr["value"].tensor if node.op == "Const" else None
        if value is None or len(value.tensor_content) < threshold:
            light.node.add().CopyFrom(node)
            continue
        weights[node.name] = tensor_pb2.TensorProto()
        weights[node.name].CopyFrom(value)
        placeholder = light.node.add(name=node.name, op="Placeholder", device=node.device)
        placeholder.attr["dtype"].type = value.dtype
        placeholder.attr["shape"].shape.CopyFrom(value.tensor_shape)
    graph_def.Clear()
    _release_memory()
    with tf.Graph().as_default():
        light = tf_loader.tf_optimize(input_names, output_names, light)
    for node in light.node:
        if node.op == "Placeholder" and node.name in weights:
            node.op = "Const"
            del node.attr["shape"]
            node.attr["value"].tensor.CopyFrom(weights.pop(node.name))
    return light


def _convert_to_onnx(model, input_shape, path, opset):
    import tensorflow as tf
    import tf2onnx
    from onnx import helper
    from tf2onnx import constants, optimizer, tf_loader, tfonnx

    function = tf.function(lambda images: model(images, training=False))
    concrete = function.get_concrete_function(_input_spec(model, input_shape))
    input_names = [concrete.inputs[0].name]  # the images; the other inputs are captures
    output_names = [tensor.name for tensor in concrete.outputs]
    graph_def = tf_loader.fix_freezing_errors_part2(frozen_graph_def(concrete))
    del function, concrete
    _release_memory()
    drop_xla_compile_marks(graph_def)
    # With the XLA marks gone, TensorFlow's optimizer inlines the grouped convolutions.
    graph_def = optimize_without_weights(graph_def, input_names, output_names)
    _release_memory()
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(graph_def, name="")
        del graph_def
        onnx_graph = tfonnx.process_tf_graph(
            tf_graph,
            continue_on_error=True,
            opset=opset,
            input_names=input_names,
            output_names=output_names,
        )
    del tf_graph
    _release_memory()
    passes = {name: _collecting(cls) for name, cls in optimizer._get_optimizers().items()}
    onnx_graph = optimizer.optimize_graph(onnx_graph, catch_errors=True, optimizers=passes)
    # tf2onnx's `Graph.make_model`, with the converter's graph freed before the ModelProto
    # copies the GraphProto (three copies of the weights alive at once instead of five).
    graph_proto = onnx_graph.make_graph("converted from Keras by keras-se")
    opset = onnx_graph.opset
    opset_imports = [
        helper.make_opsetid(constants.ONNX_DOMAIN, opset),
        constants.AI_ONNX_ML_OPSET,
        *(onnx_graph.extra_opset or []),
    ]
    del onnx_graph
    _release_memory()
    model_proto = helper.make_model(
        graph_proto,
        producer_name="tf2onnx",
        producer_version=tf2onnx.__version__,
        opset_imports=opset_imports,
    )
    model_proto.ir_version = constants.OPSET_TO_IR_VERSION.get(opset, model_proto.ir_version)
    del graph_proto
    _release_memory()
    path.write_bytes(name_onnx_interface(model_proto).SerializeToString())
    del model_proto
    _release_memory()
    return opset
