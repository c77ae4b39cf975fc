"""The cost report (parameters, multiply-adds) and the benchmark harness.

Multiply-adds are checked against the papers (within 1%) and, exactly, against PyTorch's own
FLOP counter run on the timm twins. The harness runs for real on tiny inputs (one step per
run); no test asserts a speed.
"""

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras_se.benchmarks import BENCH_MODELS, export_memory, harness, models, report, worker
from PIL import Image

from keras_se import SelectiveKernel, SqueezeExcite, cli
from keras_se.cost import cost_report, count_macs, layer_macs

# (model, constructor options, the paper's multiply-adds in billions): SENet Table 2 (Caffe
# layout; ResNet-50 3.86, SE-ResNet-50 3.87, SE-ResNeXt-50 4.25), timm's results table for its
# seresnet50 layout (4.11), SKNet Table 1 (4.47) and SENet Table 3 (SE-MobileNet 572 M).
PAPER_GMACS = [
    ("SEResNet50", {}, 3.87),
    ("SEResNet50", models.TIMM_LAYOUT, 4.11),
    ("PlainResNet50", {}, 3.86),
    ("SEResNeXt50", {}, 4.25),
    ("SKNet50", {}, 4.47),
    ("SEMobileNet", {}, 0.572),
]


@pytest.mark.parametrize(("name", "options", "paper"), PAPER_GMACS)
def test_multiply_adds_match_the_papers_within_one_percent(name, options, paper):
    report_ = cost_report(models.build_model(name, 224, **options))
    assert report_.input_shape == (224, 224, 3)
    assert abs(report_.gmacs / paper - 1) < 0.01, report_.format()


def _elementwise_products(model):
    """The attention products PyTorch's FLOP counter does not count (it counts matmuls and
    convolutions only): the SE rescale and the SK weighted sum, one per output element."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, SqueezeExcite):
            total += math.prod(layer.output.shape[1:])
        elif isinstance(layer, SelectiveKernel):
            total += layer.branches * math.prod(layer.output.shape[1:])
    return total


@pytest.mark.parametrize("name", ["SEResNet50", "SKNet50", "SEResNeXt50", "PlainMobileNet"])
def test_multiply_adds_equal_pytorch_flop_counter_on_the_timm_twin(name):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from torch.utils.flop_counter import FlopCounterMode

    size = 96
    model = BENCH_MODELS[name].build(size)
    twin = timm.create_model(BENCH_MODELS[name].timm_name).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        twin(torch.zeros(1, 3, size, size))
    macs, _ = count_macs(model)
    assert macs - _elementwise_products(model) == counter.get_total_flops() // 2


def test_layer_macs_of_every_convolution_kind():
    def built(layer, shape):
        inputs = keras.Input(shape[1:])
        outputs = layer(inputs)
        return layer_macs(layer, tuple(inputs.shape), tuple(outputs.shape))[0]

    # Output positions x kernel weights, each counted by hand.
    assert built(keras.layers.Conv2D(8, 3, strides=2, groups=2), (1, 9, 9, 4)) == 16 * (9 * 2 * 8)
    assert built(keras.layers.DepthwiseConv2D(3, padding="same"), (1, 5, 5, 6)) == 25 * 9 * 6
    assert built(keras.layers.SeparableConv2D(4, 3), (1, 5, 5, 6)) == 9 * (9 * 6 + 6 * 4)
    assert built(keras.layers.Conv2DTranspose(4, 3, strides=2), (1, 5, 5, 6)) == 25 * 9 * 6 * 4
    assert built(keras.layers.Conv1D(5, 3, dilation_rate=2), (1, 10, 2)) == 6 * 3 * 2 * 5
    assert built(keras.layers.Dense(7), (1, 3, 4)) == 3 * 4 * 7
    se = SqueezeExcite(reduced_channels=3, mode="concurrent")
    assert built(se, (1, 4, 4, 12)) == 2 * 12 * 3 + 2 * 16 * 12
    sk = SelectiveKernel(filters=8, strides=2, groups=2, attention_channels=4)
    assert built(sk, (1, 8, 8, 4)) == 2 * 16 * (9 * 2 * 8) + 8 * 4 + 4 * 16 + 2 * 8 * 16


def test_cost_report_refuses_unknown_weighted_layers_and_unknown_sizes():
    inputs = keras.Input((8, 8, 4))
    norm = keras.Model(inputs, keras.layers.LayerNormalization(name="norm")(inputs))
    with pytest.raises(ValueError, match=r"layer 'norm' \(LayerNormalization\)"):
        cost_report(norm)
    any_size = keras.applications.MobileNet(weights=None, include_top=False)
    with pytest.raises(ValueError, match="fixed `input_shape`"):
        cost_report(any_size)


def _settings(layers):
    """Every layer's class and config without its name (Keras numbers unnamed layers
    globally), sorted: the SE layers change the order in which Keras lists the layers."""
    return sorted(
        json.dumps(
            [type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"}],
            sort_keys=True,
            default=str,
        )
        for layer in layers
    )


def test_plain_twins_are_the_attention_models_without_attention():
    for name in (
        "SEResNet50",
        "SEResNeXt50",
        "SEMobileNet",
        "SEInceptionV3",
        "SEVGG16",
        "SEShuffleNet",
    ):
        model = BENCH_MODELS[name].build(96)
        plain = BENCH_MODELS[BENCH_MODELS[name].plain_twin].build(96)
        without_attention = [x for x in model.layers if not isinstance(x, SqueezeExcite)]
        assert _settings(without_attention[1:]) == _settings(plain.layers[1:])
        attention = sum(
            math.prod(w.shape)
            for layer in model.layers
            if isinstance(layer, SqueezeExcite)
            for w in layer.weights
        )
        assert attention > 0
        assert model.count_params() - attention == plain.count_params()


def test_timm_peers_have_the_same_parameter_count():
    timm = pytest.importorskip("timm")
    for model in BENCH_MODELS.values():
        if model.timm_name is None:
            continue
        ours = cost_report(model.build(None)).trainable_params
        theirs = sum(p.numel() for p in timm.create_model(model.timm_name).parameters())
        # Keras' InceptionV3 has BatchNorm without a scale, timm's has one per channel;
        # timm's VGG-16-BN has a bias in each convolution, keras-se's has BatchNorm only.
        extra = {"InceptionV3": 17_216, "PlainVGG16": 4_224}.get(model.name, 0)
        assert theirs == ours + extra, model.name


def test_model_names_resolve_to_constructors_and_bad_names_are_refused():
    constructor, options = models.model_constructor("legacy_seresnet50")
    assert (constructor.__name__, options) == ("SEResNet50", {})
    assert models.model_constructor("InceptionV3")[0] is keras.applications.InceptionV3
    assert models.model_constructor("keras.applications.ResNet50")[0] is (
        keras.applications.ResNet50
    )
    with pytest.raises(ValueError, match=r"Unknown model 'SEResNet51'.*SEResNet50"):
        models.model_constructor("SEResNet51")
    with pytest.raises(TypeError, match="must be a string"):
        models.model_constructor(50)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        models.parse_options(["stem_pool"])


def test_cost_prints_the_cost_report(capsys):
    argv = ["cost", "SEResNet50", "--set", "stride_in_1x1=False", "--set", "stem_pool=pad"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "trainable params     28,088,024" in lines
    assert "total params         28,141,144" in lines
    assert any(line.startswith("multiply-adds        4.097 GMACs") for line in lines)
    assert lines[-1] == "attention layers     16 SE"  # one per bottleneck block
    assert cli.main(["cost", "SKResNet18", "--image-size", "64"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "attention layers     8 SK (select: softmax)"
    assert cli.main(["cost", "ResNet50", "--image-size", "64"]) == 0  # keras.applications
    assert capsys.readouterr().out.splitlines()[-1] == "attention layers     none"
    assert cli.main(["cost", "NoSuchNet"]) == 2
    assert "Unknown model 'NoSuchNet'" in capsys.readouterr().err
    # `info` is the environment only: a model name is refused (argparse, exit 2).
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["info", "SEResNet50"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: SEResNet50" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """SE-MobileNet and MobileNet on JAX and timm (on one thread), two runs of one step of 2
    images at 32x32."""
    output = tmp_path_factory.mktemp("bench")
    lines = []
    measurements = harness.run_benchmarks(
        ["SEMobileNet"],
        ["jax", "timm"],
        batch_size=2,
        image_size=32,
        warmup=1,
        iterations=1,
        repeats=2,
        threads=1,
        output_dir=output,
        command="keras-se bench SEMobileNet",
        log=lines.append,
    )
    return measurements, output, lines


def test_harness_measures_every_model_runtime_and_mode(tiny_run):
    measurements, _, lines = tiny_run
    # One worker per runtime and group; SEMobileNet has no timm twin, so timm measures the
    # plain MobileNet only.
    assert [(m.model, m.runtime, m.mode) for m in measurements] == [
        ("PlainMobileNet", "jax", "inference"),
        ("PlainMobileNet", "jax", "training"),
        ("SEMobileNet", "jax", "inference"),
        ("SEMobileNet", "jax", "training"),
        ("PlainMobileNet", "timm", "inference"),
        ("PlainMobileNet", "timm", "training"),
    ]
    for m in measurements:
        assert m.error is None
        assert len(m.images_per_s) == 2 and all(rate > 0 for rate in m.images_per_s)
        assert m.first_step_s > 0 and m.peak_memory_mb >= 0
        assert m.memory == "process RSS" and "cores" in m.device
        assert m.threads == (1 if m.runtime == "timm" else None)  # JAX sizes its own pool
    plain, se = measurements[0], measurements[2]
    assert se.overhead_pct == pytest.approx(100 * (plain.median / se.median - 1))
    assert plain.overhead_pct is None
    assert lines[0].startswith("PlainMobileNet on jax: inference ")
    assert "SEMobileNet" in lines[-1] and "training, images/s" in lines[-1]


def test_harness_writes_csv_markdown_and_chart(tiny_run):
    measurements, output, _ = tiny_run
    with open(output / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == report.CSV_COLUMNS
    assert len(rows) == len(measurements)
    for row, m in zip(rows, measurements, strict=True):
        assert (row["model"], row["runtime"], row["mode"]) == (m.model, m.runtime, m.mode)
        runs = [float(v) for v in row["images_per_s_runs"].split(";")]
        assert float(row["images_per_s"]) == pytest.approx(np.median(runs), rel=1e-3)
    assert rows[2]["plain_twin"] == "PlainMobileNet" and float(rows[2]["overhead_pct"]) != 0
    markdown = (output / "results.md").read_text()
    assert "`keras-se bench SEMobileNet`" in markdown
    assert (
        "| SEMobileNet | " in markdown
        and "## Peak working memory of a training step (MiB)" in markdown
    )
    with Image.open(output / "overhead.png") as chart:
        assert chart.format == "PNG" and chart.width > 400 and chart.height > 200
        # Not a blank image: bars and text were drawn.
        assert len(chart.convert("RGB").getcolors(maxcolors=1 << 20)) > 10


def test_worker_runs_on_jax_without_tensorflow():
    """The GPU machines have JAX and no TensorFlow: the worker must not need it."""
    spec = dict(
        models=["SEMobileNet"],
        runtime="jax",
        modes=["training"],
        batch_size=2,
        image_size=32,
        warmup=1,
        iterations=1,
        repeats=1,
        precision="mixed_bfloat16",
        threads=None,
    )
    code = f"""
        import importlib.abc, sys

        class NoTensorFlow(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    raise ImportError(f"{{name}} is blocked for this test")

        sys.meta_path.insert(0, NoTensorFlow())
        from keras_se.benchmarks import worker
        worker.main([{json.dumps(spec)!r}])
        print("tensorflow" in sys.modules)
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result_line, flag = done.stdout.strip().splitlines()[-2:]
    result = json.loads(result_line.removeprefix(worker.RESULT_PREFIX))
    assert result["results"]["SEMobileNet"]["training"]["images_per_s"][0] > 0
    assert flag == "False"


def one_step_run(runtime, output_dir, **settings):
    """SE-MobileNet and MobileNet on `runtime`: one inference step of 2 images at 32x32 each,
    without progress lines."""
    return harness.run_benchmarks(
        ["SEMobileNet"],
        [runtime],
        ["inference"],
        batch_size=2,
        image_size=32,
        warmup=1,
        iterations=1,
        repeats=1,
        output_dir=output_dir,
        log=lambda line: None,
        **settings,
    )


def test_threads_reach_tensorflow(tmp_path):
    measurements = one_step_run("tensorflow", tmp_path, threads=1)
    assert [(m.model, m.threads, m.error) for m in measurements] == [
        ("PlainMobileNet", 1, None),
        ("SEMobileNet", 1, None),
    ]
    with open(tmp_path / "results.csv", newline="") as file:
        assert [row["threads"] for row in csv.DictReader(file)] == ["1", "1"]


def test_a_failing_worker_is_reported_and_the_run_goes_on(tmp_path):
    measurements = one_step_run("jax", tmp_path, timeout=1)
    assert [m.error for m in measurements] == ["timed out after 1 s"] * 2
    assert "timed out after 1 s" in (tmp_path / "results.md").read_text()
    assert (
        cli.main(
            [
                "bench",
                "SEMobileNet",
                "--runtimes",
                "jax",
                "--image-size",
                "32",
                "--timeout",
                "1",
                "-o",
                str(tmp_path / "cli"),
            ]
        )
        == 1
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(models=["SEResNet51"]), ValueError, r"`models`.*SEResNet51"),
        (dict(models="SEResNet50"), ValueError, "non-empty list"),
        (dict(runtimes=["tensorflow-jit"]), ValueError, "`runtimes`.*tensorflow-jit"),
        (dict(modes=["backward"]), ValueError, "`modes`.*backward"),
        (dict(batch_size=0), ValueError, "`batch_size`"),
        (dict(models=["SEInceptionV3"], image_size=64), ValueError, "at least 75 for"),
        (dict(precision="float16"), ValueError, "`precision`"),
        (dict(threads=0), ValueError, "`threads`"),
        (dict(runtimes=["torch"]), ImportError, "'torch' needs torch"),
        (dict(output_dir=""), ValueError, "`output_dir` must not be empty"),
    ],
)
def test_bad_settings_are_refused_before_any_work(kwargs, error, match, monkeypatch, tmp_path):
    def no_worker(*args):
        raise AssertionError("a worker started")

    monkeypatch.setattr(harness, "_run_worker", no_worker)
    monkeypatch.setattr(harness, "available_runtimes", lambda: ["tensorflow", "jax"])
    settings = {"models": ["SEResNet50"], "runtimes": ["jax"], "output_dir": tmp_path, **kwargs}
    with pytest.raises(error, match=match):
        harness.run_benchmarks(**settings)
    assert not any(tmp_path.iterdir())


def test_an_output_folder_that_cannot_be_written_is_refused_before_measuring(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(harness, "_run_worker", lambda *args: pytest.fail("a worker started"))
    (tmp_path / "a_file").write_text("kept\n")
    with pytest.raises(ValueError, match=r"cannot be a folder: .*a_file' is a file"):
        harness.run_benchmarks(["SEMobileNet"], ["jax"], output_dir=tmp_path / "a_file" / "out")
    # Read-only for this user (root may write anywhere, so the check is simulated there).
    monkeypatch.setattr(harness.os, "access", lambda path, mode: False)
    argv = ["bench", "SEMobileNet", "--runtimes", "jax", "-o", str(tmp_path / "new" / "out")]
    assert cli.main(argv) == 2
    assert "is not writable" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_existing_results_are_kept_without_overwrite(monkeypatch, tmp_path, capsys):
    (tmp_path / "results.csv").write_text("earlier results\n")
    monkeypatch.setattr(harness, "_run_worker", lambda *args: pytest.fail("a worker started"))
    with pytest.raises(FileExistsError, match="overwrite"):
        harness.run_benchmarks(["SEMobileNet"], ["jax"], output_dir=tmp_path)
    assert cli.main(["bench", "SEMobileNet", "--runtimes", "jax", "-o", str(tmp_path)]) == 2
    assert "already holds benchmark results" in capsys.readouterr().err
    assert (tmp_path / "results.csv").read_text() == "earlier results\n"


def test_export_memory_measures_a_real_export_in_a_child_process(tmp_path):
    """benchmarks/export_memory.py: the child's peak resident memory (TensorFlow alone is
    several hundred MB) and the exported file, checked by `keras-se export` itself."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), SqueezeExcite(), keras.layers.Flatten()])
    keras_file = tmp_path / "tiny.keras"
    model.save(keras_file)
    peak, seconds = export_memory.measure(keras_file, "tflite", tmp_path / "tiny.tflite")
    assert 200e6 < peak < 20e9 and seconds > 0
    assert (tmp_path / "tiny.tflite").stat().st_size > 0
    with pytest.raises(subprocess.CalledProcessError):  # a failed export is not a measurement
        export_memory.measure(tmp_path / "missing.keras", "tflite", tmp_path / "x.tflite")
