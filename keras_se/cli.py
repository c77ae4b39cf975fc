"""The `keras-se` command.

Example:
    keras-se train    # train SE-ResNet-18 on the embedded digits (offline), write runs/...
    keras-se evaluate runs/SEResNet18-sklearn_digits   # top-1/top-5, per class, confusion.png
    keras-se predict runs/SEResNet18-sklearn_digits photo.png   # classes, with the run's names
    keras-se inspect runs/SEResNet18-sklearn_digits    # SE gates per class, SK vs scale, PNGs
    keras-se export runs/SEResNet18-sklearn_digits/model.keras --format onnx
    keras-se convert-timm skresnet18 model.safetensors -o sk_resnet18.weights.h5
    keras-se info     # versions, Keras backend and devices
    keras-se cost SEResNet50 --image-size 224   # parameters and multiply-adds of a model
    keras-se bench SEResNet50 --batch-size 16   # SE-ResNet-50 vs ResNet-50 images/s, memory

Only the chosen command's arguments are defined, and Keras (with TensorFlow: seconds) is
imported once they are parsed, so `--help` and argument errors answer at once; `bench` is the
exception, its arguments list the registered models. TensorFlow's and absl's log lines and
the converters' warnings are hidden unless the command gets `--verbose`.
"""

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import sys
import warnings

from keras_se.errors import JobFailed

BACKEND_PACKAGES = ("tensorflow", "tensorflow-cpu", "jax", "torch")


def _installed_version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _devices():
    import keras

    if keras.backend.backend() == "torch":  # keras.distribution.list_devices needs jax or tf
        import torch

        return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    return keras.distribution.list_devices()


def print_cost_report(name, image_size=None, options=None):
    """Print the cost report of a model: parameters and multiply-adds (`keras_se.cost`).

    Args:
        name: a keras-se or keras.applications constructor, or a timm twin name.
        image_size: square input size (None: the model's default, 224 or 299).
        options: constructor keywords, e.g. `{"stem_pool": "pad"}`.

    Example:
    >>> print_cost_report("SEMobileNet", image_size=224)
    model                se_mobilenet
    input                224x224x3
    trainable params     4,718,044
    non-trainable params 21,888
    total params         4,739,932
    multiply-adds        0.572 GMACs (571.93 MMACs; attention 3.19 MMACs)
    attention layers     13 SE
    """
    from keras_se.benchmarks.models import build_model
    from keras_se.cost import cost_report

    print(cost_report(build_model(name, image_size, **(options or {}))).format())


def info():
    """Print versions, the active Keras backend and its devices.

    Example:
    >>> info()  # doctest: +SKIP
    keras-se 0.1.0 ...
    """
    import keras

    import keras_se

    print(f"keras-se   {keras_se.__version__}")
    print(f"python     {platform.python_version()}")
    print(f"keras      {keras.__version__}")
    for package in BACKEND_PACKAGES:
        print(f"{package:<10} {_installed_version(package) or 'not installed'}")
    print(f"backend    {keras.backend.backend()}")
    print(f"devices    {', '.join(_devices())}")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _train_arguments(parser):
    from keras_se.training import config

    parser.description = (
        "Train a keras_se.applications model on the embedded digits (offline), a "
        "TFDS dataset or an image folder. A killed run started again with the same command "
        "resumes after its last finished epoch."
    )
    for name, flag, keywords in config.command_line_options():
        parser.add_argument(flag, dest=name, **keywords)
    parser.set_defaults(run=_train)


def _train(args):
    from keras_se.training import config, job

    job.train(**{name: getattr(args, name) for name, _, _ in config.command_line_options()})


def _export_arguments(parser):
    from keras_se import export, quantization

    parser.description = (
        "Write the model in another format, run it with that format's runtime "
        "(onnxruntime, TensorFlow, LiteRT) on random batches of 1 and 3 images and compare "
        "with Keras; the file is only written when the max absolute difference is within "
        "the tolerance. The TensorFlow backend writes every format, JAX a SavedModel and "
        "torch ONNX (KERAS_BACKEND). A quantized TFLite file (--quantize) is checked by its "
        "accuracy on a labelled validation split instead."
    )
    add = parser.add_argument
    add("model", help="a .keras file")
    add("--format", choices=export.FORMATS, required=True)
    add("-o", "--output", default=None, help="output path (next to MODEL: model.onnx, ...)")
    add(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset: 13 to 18 on TensorFlow (15), 13 to 20 on torch (20)",
    )
    add(
        "--tolerance",
        type=float,
        default=export.DEFAULT_TOLERANCE,
        help=f"largest max absolute difference from Keras ({export.DEFAULT_TOLERANCE:g})",
    )
    add(
        "--quantize",
        choices=quantization.QUANTIZATIONS,
        default=None,
        help="TFLite only: float16 weights, int8 weights (dynamic) or full integer (int8), "
        "checked by accuracy on a validation split",
    )
    add("--dataset", default=None, help="labelled images for --quantize (the run's by default)")
    add("--data-dir", default=None, help="TFDS data folder (the run's by default)")
    add(
        "--max-accuracy-drop",
        type=float,
        default=quantization.DEFAULT_MAX_ACCURACY_DROP,
        help="--quantize: largest top-1 accuracy lost to quantization (0.01: one point)",
    )
    add("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(run=_export)


def _export(args):
    from keras_se import export

    # The converters and LiteRT's interpreter log from C++ (tflite's delegate and quantizer).
    with contextlib.nullcontext() if args.verbose else _native_stderr_silenced():
        report = export.export(
            args.model,
            args.output,
            args.format,
            opset=args.opset,
            tolerance=args.tolerance,
            overwrite=args.overwrite,
            quantize=args.quantize,
            dataset=args.dataset,
            data_dir=args.data_dir,
            max_accuracy_drop=args.max_accuracy_drop,
        )
    print(f"exported {report}")


def _labelled_split_arguments(add):
    """The model and the labelled images `evaluate` and `inspect` read (as
    `trained.labelled_batches` takes them)."""
    from keras_se.training.trained import SPLITS

    add("model", help="a run folder of keras-se train, its model.keras, or an ImageNet .keras")
    add("--dataset", default=None, help="TFDS name or image folder (the run's)")
    add("--data-dir", default=None, help="TFDS data folder (the run's)")
    add("--split", choices=SPLITS, default="validation", help="(validation)")
    add("--batch-size", type=_positive_int, default=64, help="images per batch (64)")


def _evaluate_arguments(parser):
    parser.description = (
        "Evaluate the model of a keras-se train run (its folder or its "
        "model.keras) on a split of its dataset (by default the run's own validation "
        "images) or of another dataset with the same classes: top-1 and top-5 accuracy, "
        "per-class accuracy, evaluation.json and confusion.png. A keras-se ImageNet "
        "classifier saved as .keras is evaluated on ImageNet images (a folder of class "
        "sub-folders named by WordNet id, or TFDS imagenet2012) with its timm twin's "
        "evaluation transform, as timm's validate.py does."
    )
    add = parser.add_argument
    _labelled_split_arguments(add)
    add("-o", "--output", default=None, help="results folder (RUN/evaluation-SPLIT)")
    add("--overwrite", action="store_true", help="replace an earlier evaluation there")
    parser.set_defaults(run=_evaluate)


def _evaluate(args):
    from keras_se.training.evaluate import evaluate

    report = evaluate(
        args.model,
        args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        output_dir=args.output,
        overwrite=args.overwrite,
    )
    worst = sorted(
        (accuracy, name)
        for name, accuracy in zip(report["class_names"], report["per_class"], strict=True)
        if accuracy is not None
    )[:3]
    print(
        f"{report['dataset']} {report['split']}: {report['count']} images, top-1 "
        f"{report['top1']:.4f}, top-{report['top_k']} {report['top_k_accuracy']:.4f}; "
        f"weakest classes: {', '.join(f'{name} {accuracy:.3f}' for accuracy, name in worst)}"
    )


def _scale(text):
    value = float(text)
    if not value >= 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text}")
    return value


def _inspect_arguments(parser):
    parser.description = (
        "Look inside the attention of a keras-se train run's model (its folder or "
        "model.keras) or of a keras-se ImageNet classifier, on a split of its dataset, as "
        "the papers do: the mean SE excitation of every channel per class at several depths "
        "(excitation.png), gate statistics per layer (statistics.csv), the SK attention on "
        "the largest kernel as the images are enlarged (sk_scale.png), and every number in "
        "attention.json."
    )
    add = parser.add_argument
    _labelled_split_arguments(add)
    add(
        "--layers",
        nargs="+",
        default=None,
        help="attention layers the figures show (6 SE layers over the depth, every SK layer)",
    )
    add(
        "--scales",
        nargs="+",
        type=_scale,
        default=None,
        help="SK analysis: enlargements of the images (1 1.5 2)",
    )
    add("--batches", type=_positive_int, default=None, help="batches of the split to inspect (8)")
    add("-o", "--output", default=None, help="results folder (RUN/inspection-SPLIT)")
    add("--overwrite", action="store_true", help="replace an earlier inspection there")
    parser.set_defaults(run=_inspect)


def _inspect(args):
    from keras_se.training import inspection

    report = inspection.inspect_model(
        args.model,
        args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        layers=args.layers,
        scales=args.scales,
        batch_size=args.batch_size,
        output_dir=args.output,
        overwrite=args.overwrite,
        # None: inspection's default (its module imports Keras, so it is not read here)
        **({} if args.batches is None else {"max_batches": args.batches}),
    )
    print(inspection.format_summary(report))


def _predict_arguments(parser):
    parser.description = (
        "Classify image files with the model of a keras-se train run (its folder "
        "or its model.keras): each image is resized as the run's validation images were, and "
        "the most probable classes are printed with the run's class names. A keras-se "
        "ImageNet classifier saved as .keras takes them through its timm twin's evaluation "
        "transform and names ImageNet's classes."
    )
    add = parser.add_argument
    add("model", help="a run folder of keras-se train, its model.keras, or an ImageNet .keras")
    add("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")
    add("--top", type=_positive_int, default=5, help="classes per image (5, at most all)")
    add("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=_predict)


def _predict(args):
    from keras_se.training.predict import predict

    results = predict(args.model, args.images, top=args.top)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for result in results:
        guesses = ", ".join(
            f"{guess['class']} {guess['probability']:.3f}" for guess in result["predictions"]
        )
        print(f"{result['image']}: {guesses}")


def _convert_arguments(parser):
    parser.description = (
        "Read a timm checkpoint (.safetensors; .pth/.bin with PyTorch), map every "
        "tensor onto the keras-se model with the same structure, check every shape, and "
        "save the Keras weights. Fails naming the first tensor that does not fit."
    )
    add = parser.add_argument
    add("timm_name", help="timm model name, e.g. legacy_seresnet50 or skresnet18.ra_in1k")
    add("checkpoint", help="the timm checkpoint file")
    add("-o", "--output", default=None, help="output .weights.h5 (TIMM_NAME.weights.h5)")
    add("--no-top", action="store_true", help="leave out the classifier (include_top=False)")
    add("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(run=_convert)


def _convert(args):
    from keras_se.applications import pretrained, timm_convert

    twin = pretrained.timm_twin(args.timm_name)
    output = args.output or f"{twin.name}.weights.h5"
    top = {"include_top": False} if args.no_top else {}
    model = timm_convert.convert_timm(
        args.timm_name, args.checkpoint, output, overwrite=args.overwrite, **top
    )
    settings = "".join(f", {k}={v!r}" for k, v in {**twin.settings, **top}.items())
    print(
        f"converted {args.checkpoint} ({twin.name}, {model.count_params():,} values) to "
        f"{output}\nload it with keras_se.applications.{twin.constructor}("
        f"weights={output!r}{settings})"
    )


def _info_arguments(parser):
    parser.description = (
        "Versions of keras-se, Python, Keras and the backends, the active Keras "
        "backend and its devices."
    )
    parser.set_defaults(run=lambda args: info())


def _cost_arguments(parser):
    parser.description = (
        "A model's trainable and total parameters and multiply-adds per image at "
        "the input size, counted from its layers (convolutions, dense layers and the SE/SK "
        "attention)."
    )
    add = parser.add_argument
    add(
        "model",
        help="a keras-se model (SEResNet50), a keras.applications one (DenseNet121) or a "
        "timm twin name (seresnet50)",
    )
    add("--image-size", type=_positive_int, default=None, help="input size (model default)")
    add(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor option, e.g. --set stem_pool=pad (repeatable)",
    )
    parser.set_defaults(run=_cost)


def _cost(args):
    from keras_se.benchmarks.models import parse_options

    print_cost_report(args.model, args.image_size, parse_options(args.set))


def _bench_arguments(parser):
    from keras_se.benchmarks import harness, models

    parser.description = (
        "Measure inference and training images/s (median of the runs) and peak "
        "memory of each model and its plain twin on every runtime, one worker process per "
        "runtime and group, the models' timed rounds interleaved; "
        "print the table and write results.csv, results.md and overhead.png."
    )
    add = parser.add_argument
    add(
        "models",
        nargs="*",
        default=list(models.ATTENTION_MODELS),
        help=f"attention models ({', '.join(models.ATTENTION_MODELS)}: all by default); "
        "each brings its plain twin",
    )
    add(
        "--runtimes",
        nargs="+",
        choices=harness.RUNTIMES,
        default=None,
        help="Keras backends (tensorflow-xla: jit_compile) and timm (default: every installed)",
    )
    add("--modes", nargs="+", choices=harness.MODES, default=list(harness.MODES))
    add("--batch-size", type=_positive_int, default=16, help="images per step (16)")
    add("--image-size", type=_positive_int, default=224, help="input size (224)")
    add("--warmup", type=_positive_int, default=2, help="untimed steps first (2)")
    add("--iterations", type=_positive_int, default=3, help="steps per timed run (3)")
    add("--repeats", type=_positive_int, default=3, help="timed runs, median shown (3)")
    add("--precision", choices=harness.PRECISIONS, default="float32")
    add("--threads", type=_positive_int, default=None, help="CPU threads (all cores)")
    add("-o", "--output", default="bench-results", help="results folder (bench-results)")
    add("--overwrite", action="store_true", help="replace results in the folder")
    add("--timeout", type=_positive_int, default=3600, help="seconds per worker (3600)")
    parser.set_defaults(run=_bench)


def _bench(args):
    from keras_se.benchmarks import harness

    measurements = harness.run_benchmarks(
        args.models,
        args.runtimes,
        args.modes,
        batch_size=args.batch_size,
        image_size=args.image_size,
        warmup=args.warmup,
        iterations=args.iterations,
        repeats=args.repeats,
        precision=args.precision,
        threads=args.threads,
        output_dir=args.output,
        overwrite=args.overwrite,
        timeout=args.timeout,
        command=args.command_line,
    )
    print(f"wrote results.csv, results.md and overhead.png to {args.output}")
    return 1 if any(m.error for m in measurements) else 0


COMMANDS = {
    "info": ("print versions, the Keras backend and its devices", _info_arguments),
    "cost": ("print a model's parameters and multiply-adds", _cost_arguments),
    "bench": (
        "images/s and peak memory of SE/SK models next to their plain twins",
        _bench_arguments,
    ),
    "train": ("train an application model with model.fit and write a run folder", _train_arguments),
    "evaluate": (
        "accuracy of a trained run's model, class by class, with a confusion matrix",
        _evaluate_arguments,
    ),
    "predict": ("name the classes a trained run's model sees in image files", _predict_arguments),
    "inspect": (
        "SE gates per class and SK attention vs. scale of a trained model, as the papers plot",
        _inspect_arguments,
    ),
    "export": (
        "export a .keras model to ONNX, SavedModel or TFLite and check it against Keras",
        _export_arguments,
    ),
    "convert-timm": (
        "convert a timm checkpoint into the weights of its keras-se twin",
        _convert_arguments,
    ),
}


def build_parser(commands=None):
    """The `keras-se` argument parser: one sub-command per job, each with its `run` function.

    Args:
        commands: the sub-commands whose arguments are defined (None: all of them). The others
            are listed by name only, so `main` defines just the one it runs.

    Example:
    >>> build_parser().parse_args(["cost", "SEResNet50"]).run.__name__
    '_cost'
    """
    parser = argparse.ArgumentParser(
        prog="keras-se",
        description="Squeeze-and-Excitation and Selective Kernel layers for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add_arguments) in COMMANDS.items():
        command = subparsers.add_parser(name, help=summary, description=summary)
        if commands is None or name in commands:
            add_arguments(command)
            command.add_argument(
                "--verbose",
                action="store_true",
                help="show TensorFlow's and absl's log lines and the converters' warnings",
            )
    return parser


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null meanwhile (Python's own errors still show: they
    are printed after). TensorFlow 2.21's C++ libraries log while they load, before the level
    in `TF_CPP_MIN_LOG_LEVEL` applies (tensorflow/tensorflow#100442)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_logs():
    """Hide TensorFlow's C++ and Python log lines, absl's and the converters' warnings.

    Call it before TensorFlow is imported: its C++ log level is read then (`main` also hides
    what TensorFlow's libraries print while they load). A level the user set in
    `TF_CPP_MIN_LOG_LEVEL` is kept.

    Example:
    >>> _quiet_logs()
    >>> logging.getLogger("absl").level == logging.ERROR
    True
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # errors only, in this and child processes
    for name in ("tensorflow", "absl", "tf2onnx", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings(
        "ignore", module=r"(tensorflow|tf2onnx|tf_keras|absl|tensorflow_datasets|google|onnx)\b"
    )


def main(argv=None):
    """Entry point of the `keras-se` console script: bad input is one line on stderr and
    exit code 2; a job that started and failed (`keras_se.errors.JobFailed`, or an `OSError`
    such as a full disk) is one line and exit code 1.

    Example:
    >>> main(["cost", "NoSuchNet"])
    2
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser([command]).parse_args(argv)
    args.command_line = " ".join(["keras-se", *argv])
    if not args.verbose:
        _quiet_logs()
    try:
        import keras_se

        # Keras and the layers (deferred by the console script), with the backend
        with contextlib.nullcontext() if args.verbose else _native_stderr_silenced():
            keras_se.import_api()
        status = args.run(args)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, ImportError) as error:
        print(f"keras-se {args.command}: {error}", file=sys.stderr)
        return 2
    except JobFailed as error:  # the work started and failed (a training run diverged)
        print(f"keras-se {args.command}: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the machine failed the work: disk full, permissions, ...
        where = f" ({error.filename})" if error.filename else ""
        print(f"keras-se {args.command}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
