"""Export to ONNX, SavedModel and TFLite: parity with Keras for one model of every family (the
grouped-convolution ones explicitly), dynamic batch, the CLI, and bad input."""

import collections
import os
import resource
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
import tf2onnx
from ai_edge_litert.interpreter import Interpreter
from harness import random_batch, randomize_statistics, to_numpy
from keras_se.applications.resnet import ResNet

from keras_se import applications, cli, export

TOLERANCE = 1e-4
TINY = dict(depths=(1, 1, 1, 1), classes=10, classifier_activation=None)
CIFAR = dict(
    stem="cifar", stem_width=16, widths=(16, 32, 64), classes=10, classifier_activation=None
)
# One model of every family, small: the public constructors where they are quick to convert,
# the builder at depth 1 per stage for the grouped-convolution families (same blocks, stems
# and shortcuts as SE-ResNeXt-50, SENet-154 and SKNet-50). SENet-154's 3x3 projection
# shortcuts make even its depth-1, 4-stage version a 33M-parameter model whose ONNX conversion
# took 9 GB and 27 s (before keras-se freed tf2onnx's copies as it goes); its first two stages
# (1.8M parameters: the deep stem, 64 groups, stride in the 1x1, 3x3 shortcuts, SE) take 0.5 GB
# and 2 s.
FAMILIES = {
    "se_resnet18": lambda: applications.SEResNet18(
        input_shape=(32, 32, 3), classes=10, classifier_activation=None
    ),
    "se_resnext_grouped": lambda: ResNet(
        **TINY, groups=32, width_per_group=4, input_shape=(32, 32, 3), name="se_resnext"
    ),
    "senet154_grouped": lambda: ResNet(
        **{**TINY, "depths": (1, 1)},
        groups=64,
        width_per_group=4,
        first_width_divisor=2,
        stem="deep",
        stem_pool="ceil",
        stride_in_1x1=True,
        shortcut_kernel_size=3,
        input_shape=(33, 33, 3),
        name="senet",
    ),
    "sknet_grouped": lambda: ResNet(
        **TINY, attention="sk", groups=32, width_per_group=4, input_shape=(32, 32, 3), name="sk"
    ),
    "se_bn_inception": lambda: applications.SEBNInception(
        input_shape=(32, 32, 3), classes=10, classifier_activation=None
    ),
    "se_mobilenet_v2": lambda: applications.SEMobileNetV2(
        alpha=0.35, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    ),
    # He et al.'s CIFAR blocks at depth 1 per stage: the option-A shortcut (subsample and
    # zero channels) of SE-ResNet-110, the pre-activation bottleneck of SE-ResNet-164.
    "se_resnet110_cifar_blocks": lambda: ResNet(
        (1, 1, 1), block="basic", shortcut="zero_pad", **CIFAR, name="se_resnet_a"
    ),
    "se_resnet164_cifar_blocks": lambda: ResNet(
        (1, 1, 1), block="preact_bottleneck", **CIFAR, name="se_preact_resnet"
    ),
    # Its convolutions, SE after every ReLU and 2x2 pools (15M parameters); the 4096-wide
    # classifier (another 19M at 32x32) is two plain Dense layers.
    # The grouped 1x1 convolutions, the channel shuffle (a gather), the depthwise ones and the
    # concatenation with the average-pooled input.
    "se_shufflenet": lambda: applications.SEShuffleNet(
        input_shape=(32, 32, 3), classes=10, classifier_activation=None
    ),
    "se_vgg16": lambda: applications.SEVGG16(
        include_top=False, pooling="avg", input_shape=(32, 32, 3)
    ),
}
GROUPS = {
    "se_resnext_grouped": 32,
    "senet154_grouped": 64,
    "sknet_grouped": 32,
    "se_shufflenet": 3,
}


@pytest.fixture(scope="module")
def family_models():
    """Each family's model, built once, with random BatchNorm statistics and biases so that
    outputs are of order one and every layer shows in the comparison."""
    built = {}
    for name, make in FAMILIES.items():
        keras.utils.set_random_seed(0)
        built[name] = make()
        randomize_statistics(built[name])
    return built


@pytest.fixture(scope="module")
def exported(family_models, tmp_path_factory):
    """`exported(family, format)` exports once per module and returns (report, folder)."""
    done = {}

    def get(family, format):
        if (family, format) not in done:
            folder = tmp_path_factory.mktemp(f"{family}-{format}")
            path = folder / f"{family}{export.SUFFIXES[format]}"
            done[family, format] = export.export(family_models[family], path, format), folder
        return done[family, format]

    return get


def run_exported(path, format, batch):
    """Run an exported file with its runtime, independently of keras_se.export."""
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]
    if format == "saved_model":
        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        (output,) = serving(images=tf.constant(batch)).values()
        return output.numpy()
    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    (output,) = runner(images=batch).values()
    return output


def batch_dimension(path, format):
    """The exported input's batch dimension: None/-1/a symbolic name when it is dynamic."""
    if format == "onnx":
        return onnxruntime.InferenceSession(str(path)).get_inputs()[0].shape[0]
    if format == "saved_model":
        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        return serving.structured_input_signature[1]["images"].shape[0]
    return Interpreter(model_path=str(path)).get_input_details()[0]["shape_signature"][0]


@pytest.mark.parametrize("format", export.FORMATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_matches_keras_in_every_format(family_models, exported, family, format):
    model = family_models[family]
    report, folder = exported(family, format)
    path = folder / f"{family}{export.SUFFIXES[format]}"

    assert report.path == path and path.exists()
    assert report.max_abs_diff <= TOLERANCE
    assert report.max_abs_output > 0.1  # a real comparison, not of near-zero outputs
    dynamic = batch_dimension(path, format)
    assert dynamic is None or dynamic == -1 or isinstance(dynamic, str), dynamic
    # Checked again here with a new batch of another size, through each runtime's own API.
    batch = random_batch((2, *model.input_shape[1:]), seed=11)
    expected = to_numpy(model(batch, training=False))
    np.testing.assert_allclose(run_exported(path, format, batch), expected, rtol=0, atol=TOLERANCE)
    assert [p.name for p in folder.iterdir()] == [path.name]  # no staging folder left behind


def test_onnx_files_name_their_input_output_and_batch(exported):
    """`images` in, `predictions` out, the batch dimension `batch` (tf2onnx wrote `images:0`,
    `Identity:0` and `unk__263`), and the opset the report gives."""
    report, _ = exported("se_resnet18", "onnx")
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    ((name, shape),) = [(value.name, value.shape) for value in session.get_inputs()]
    assert (name, shape) == ("images", ["batch", 32, 32, 3])
    ((name, shape),) = [(value.name, value.shape) for value in session.get_outputs()]
    assert (name, shape) == ("predictions", ["batch", 10])
    model = onnx.load(str(report.path))
    assert model.opset_import[0].version == report.opset == 15
    # Every reference moved with the names: the graph checks, and no node keeps an old name.
    onnx.checker.check_model(model)
    names = {name for node in model.graph.node for name in (*node.input, *node.output)}
    assert {"images", "predictions"} <= names and not {"images:0", "Identity:0"} & names


def test_the_export_command_prints_no_converter_warnings_unless_verbose(keras_file, tmp_path):
    script = shutil.which("keras-se", path=os.path.dirname(sys.executable))
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    runs = {}
    for flags in ([], ["--verbose"]):
        argv = [script, "export", str(keras_file), "--format", "onnx", "--overwrite"]
        argv += ["-o", str(tmp_path / "m.onnx"), *flags]
        runs[bool(flags)] = subprocess.run(argv, capture_output=True, text=True, env=environment)
    assert runs[False].returncode == runs[True].returncode == 0, runs[False].stderr[-2000:]
    assert runs[False].stdout.startswith("exported ") and runs[False].stderr == ""
    # The negative control: TensorFlow's lines are there to hide (its graph optimizer's).
    assert "Starting new session" in runs[True].stderr, runs[True].stderr[-2000:]


@pytest.mark.parametrize("family", GROUPS)
def test_grouped_convolutions_become_plain_onnx_convs(exported, family):
    """Keras runs grouped convs in a nested XLA function; the export inlines it, so the ONNX
    graph has grouped `Conv` nodes and no TensorFlow function call."""
    report, _ = exported(family, "onnx")
    assert report.max_abs_diff <= TOLERANCE
    graph = onnx.load(str(report.path)).graph
    ops = {node.op_type for node in graph.node}
    assert not {op for op in ops if "PartitionedCall" in op}, ops
    groups = {
        attribute.i
        for node in graph.node
        if node.op_type == "Conv"
        for attribute in node.attribute
        if attribute.name == "group"
    }
    assert GROUPS[family] in groups, groups


@pytest.mark.parametrize(
    "family", ["se_resnet18", "senet154_grouped", "sknet_grouped", "se_mobilenet_v2"]
)
def test_onnx_graph_is_the_one_tf2onnx_builds_with_the_weights_inside(
    family_models, exported, family
):
    """keras-se converts with the weights set aside (`keras_se.onnx_conversion`), then does to
    them what tf2onnx does to constants. tf2onnx's own conversion, weights inside, is the
    reference: no node or parameter more (BatchNorm folded into every convolution, kernel
    layouts applied, the SK branches' equal kernels stored once), the same outputs."""
    model = family_models[family]
    report, _ = exported(family, "onnx")
    ours = onnx.load(str(report.path)).graph
    spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images")]
    function = tf.function(lambda images: model(images, training=False))
    reference, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=15)

    def operations(graph):
        return collections.Counter(node.op_type for node in graph.node)

    def parameters(graph):
        return sum(int(np.prod(tensor.dims)) for tensor in graph.initializer)

    assert operations(ours)["Conv"] == operations(reference.graph)["Conv"] > 0
    assert not operations(ours) - operations(reference.graph), operations(ours)
    # At most a Reshape's shape vector fewer (a kernel reshape tf2onnx leaves in the graph).
    assert 0 <= parameters(reference.graph) - parameters(ours) <= 8
    assert [value.name for value in ours.input] == ["images"]
    batch = random_batch((2, *model.input_shape[1:]), seed=5)
    theirs = onnxruntime.InferenceSession(reference.SerializeToString())
    np.testing.assert_allclose(
        run_exported(report.path, "onnx", batch),
        theirs.run(None, {theirs.get_inputs()[0].name: batch})[0],
        rtol=0,
        atol=1e-5,
    )


def test_saved_model_runs_without_xla_and_has_a_serving_signature(exported):
    """TF Serving refuses XLA-compiled functions unless XLA:CPU is switched on."""
    path = exported("sknet_grouped", "saved_model")[0].path
    assert b"_XlaMustCompile" not in (path / "saved_model.pb").read_bytes()
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["images"]
    assert tf.saved_model.experimental.read_fingerprint(str(path)).saved_model_checksum > 0


def test_without_the_fix_tf2onnx_leaves_the_xla_call_in_the_graph(family_models):
    """The reason for `drop_xla_compile_marks`: the nested XLA function of a Keras grouped conv
    (a user's own model, or a `.keras` file saved before keras-se had `GroupedConv2D`) survives
    tf2onnx's own inlining. keras-se's grouped models have no such call. If Keras stops nesting
    it, this test says so."""
    import tf2onnx

    def graph_of(model):
        function = tf.function(lambda images: model(images, training=False))
        concrete = function.get_concrete_function(tf.TensorSpec((None, 32, 32, 3), name="images"))
        names = [concrete.inputs[0].name], [concrete.outputs[0].name]
        return tf2onnx.tf_loader.from_function(concrete, *names)

    def calls(graph_def):
        return [node for node in graph_def.node if node.op == "StatefulPartitionedCall"]

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)
    x = keras.layers.Conv2D(8, 3, groups=4)(x)
    graph_def = graph_of(keras.Model(inputs, keras.layers.Conv2D(8, 3, groups=2)(x)))
    assert len(calls(graph_def)) == 2  # one per grouped Keras Conv2D
    assert export.drop_xla_compile_marks(graph_def) == 2 * 2  # functions and calls
    assert not any("_XlaMustCompile" in node.attr for node in graph_def.node)
    ours = graph_of(family_models["se_resnext_grouped"])
    assert calls(ours) == [] and export.drop_xla_compile_marks(ours) == 0


def test_mixed_precision_model_is_exported_in_float32(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        mixed = applications.SEResNet18(input_shape=(32, 32, 3), classes=4)
    finally:
        keras.config.set_dtype_policy(previous)
    path = tmp_path / "mixed.onnx"
    report = export.export(mixed, path, "onnx")
    assert report.max_abs_diff <= TOLERANCE
    graph = onnx.load(str(path)).graph
    types = {tensor.data_type for tensor in graph.initializer}
    assert onnx.TensorProto.FLOAT in types and onnx.TensorProto.FLOAT16 not in types
    batch = random_batch((2, 32, 32, 3), seed=3)
    np.testing.assert_allclose(
        run_exported(path, "onnx", batch), to_numpy(mixed(batch)), rtol=0, atol=0.01
    )


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, family_models):
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    family_models["se_resnet18"].save(path)
    return path


def test_cli_exports_next_to_the_keras_file(keras_file, capsys):
    assert cli.main(["export", str(keras_file), "--format", "onnx", "--opset", "13"]) == 0
    output = capsys.readouterr().out
    target = keras_file.with_suffix(".onnx")
    assert output.startswith(f"exported {target} (onnx, opset 13): max |onnxruntime - Keras| = ")
    # The summary ends with this process's peak memory, as getrusage reports it.
    peak_gb = float(output.split("peak memory ")[1].split(" GB")[0])
    assert 0.1 < peak_gb <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9 + 0.05
    assert onnx.load(str(target)).opset_import[0].version == 13
    assert export.default_path(keras_file, "saved_model") == keras_file.parent / "model_saved_model"


def test_cli_reports_bad_input_in_one_line(keras_file, tmp_path, capsys):
    existing = tmp_path / "exists.tflite"
    existing.write_bytes(b"keep me")
    code = cli.main(["export", str(keras_file), "--format", "tflite", "-o", str(existing)])
    assert code == 2
    assert capsys.readouterr().err == (
        f"keras-se export: {existing} already exists; choose another path or pass "
        "overwrite=True (--overwrite).\n"
    )
    assert existing.read_bytes() == b"keep me"


def test_overwrite_replaces_an_existing_export(family_models, tmp_path):
    """In one step (the two folders are swapped), removing what killed exports of the same
    target left."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "old.txt").write_text("old")
    (tmp_path / ".model.partial-k1ll").mkdir()  # a killed export of this target
    other = tmp_path / ".other.onnx.partial-k1ll"  # another target's: not this export's
    other.write_text("")
    export.export(family_models["se_mobilenet_v2"], path, "saved_model", overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["assets", "fingerprint.pb", "saved_model.pb", "variables"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "model"]


def test_replacing_a_folder_is_one_atomic_swap(tmp_path, monkeypatch):
    """The swap (`renameat2(RENAME_EXCHANGE)`) leaves no moment without a folder at the
    target; where the system cannot swap, the old folder is moved aside first."""
    from keras_se import atomic

    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "version.txt").write_text(name)
    renames = []
    monkeypatch.setattr(atomic.os, "replace", lambda *paths: renames.append(paths))
    atomic.replace_path(tmp_path / "new", tmp_path / "old")
    assert renames == [] and (tmp_path / "old" / "version.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    # the negative control: without the swap, two renames happen
    monkeypatch.setattr(atomic, "_exchange", lambda *paths: False)
    (tmp_path / "newer").mkdir()
    atomic.replace_path(tmp_path / "newer", tmp_path / "old")
    assert len(renames) == 2


def test_a_failed_check_writes_nothing(family_models, tmp_path):
    path = tmp_path / "strict.onnx"
    with pytest.raises(ValueError, match=r"differs from Keras by up to .* the tolerance 1e-12"):
        export.export(family_models["se_resnet18"], path, "onnx", tolerance=1e-12)
    assert list(tmp_path.iterdir()) == []


def _not_a_keras_file(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    return path


def _weights_file(tmp_path):
    path = tmp_path / "model.weights.h5"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.save_weights(path)
    return path


def _corrupted_keras_file(tmp_path):
    path = tmp_path / "corrupted.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["config.json"] = entries["config.json"][: len(entries["config.json"]) // 2]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make_model", "message"),
    [
        (_not_a_keras_file, r"must be a Keras model saved as a `\.keras` file"),
        (_weights_file, r"must be a Keras model saved as a `\.keras` file"),
        (_corrupted_keras_file, r"could not be loaded as a Keras model; the file is corrupted"),
    ],
)
def test_files_that_are_not_keras_models_are_rejected(make_model, message, tmp_path):
    source = make_model(tmp_path)
    with pytest.raises(ValueError, match=message):
        export.export(source, tmp_path / "out.onnx", "onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.keras"):
        export.export(tmp_path / "missing.keras", format="onnx")


def _two_input_model():
    left, right = keras.Input((4,)), keras.Input((4,))
    return keras.Model([left, right], keras.layers.Add()([left, right]))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"format": "coreml"}, ValueError, "`format` must be one of onnx, saved_model, tflite"),
        ({"format": "onnx", "opset": 19}, ValueError, "`opset` must be between 13 and 18"),
        ({"format": "onnx", "opset": 9}, ValueError, "got 9"),
        ({"format": "onnx", "opset": "15"}, TypeError, "`opset` must be an integer"),
        ({"format": "tflite", "opset": 15}, ValueError, "applies to the onnx format only"),
        ({"format": "onnx", "tolerance": -1}, ValueError, "`tolerance` must be a positive"),
        ({"format": "onnx", "path": "m.tflite"}, ValueError, "must end in .onnx"),
        ({"format": "saved_model", "path": "m.onnx"}, ValueError, "is a folder"),
        ({"format": "onnx", "path": None}, ValueError, "`path` is required"),
        ({"format": "onnx", "path": "/nonexistent/m.onnx"}, ValueError, "not writable"),
        ({"format": "onnx", "path": __file__ + "/m.onnx"}, ValueError, "not writable"),
    ],
)
def test_bad_arguments_fail_before_any_work(family_models, kwargs, error, message, tmp_path):
    kwargs = {"path": tmp_path / "m.onnx", **kwargs}
    with pytest.raises(error, match=message):
        export.export(family_models["se_resnet18"], **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_models_with_several_inputs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="to be exported, got 2 inputs and 1 outputs"):
        export.export(_two_input_model(), tmp_path / "m.onnx", "onnx")
