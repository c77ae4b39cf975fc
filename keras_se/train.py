"""The training job: any `keras_se.applications` model, trained with `model.fit`.

`train()` (and `keras-se train`) checks every argument, chooses a `tf.distribute` strategy,
reads a TFDS dataset, an image folder or the embedded digits, trains with SGD + Nesterov
momentum (or AdamW) on a cosine schedule with linear warm-up, backs up every epoch so that a
killed run resumes where it stopped, and writes a run folder:

    model.keras          the trained model (takes RGB images in [0, 255]), written atomically
    checkpoints/         the last epoch's weights and optimizer state, and state.json
    history.json, .csv   loss, accuracy and learning rate per epoch (train and validation)
    curves.png           loss and accuracy curves
    logs/                TensorBoard event files
    summary.json         the final numbers, also printed at the end
"""

import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import shutil
import time

import keras
import numpy as np

from keras_se import checkpoint, distribute, requirements

MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"
OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
XLA_MODES = ("auto", "on", "off")
# `--xla auto`: timed training steps of a throwaway copy of the model in each mode.
XLA_PROBE_STEPS = 3
# Peak learning rate per 256 images (linear scaling rule, Goyal et al. 2017) and weight decay.
BASE_LEARNING_RATE = {"sgd": 0.1, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 1e-4, "adamw": 0.05}
# ImageNet statistics of RGB in [0, 255]; the model normalizes its input with them.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
NOT_MODELS = ("ResNet", "ScaledResidual")


def model_names():
    """The names `train(model=...)` accepts: every constructor in `keras_se.applications`.

    Example:
    >>> "SEResNet50" in model_names()
    True
    """
    from keras_se import applications

    return sorted(name for name in applications.__all__ if name not in NOT_MODELS)


def _check_number(
    name, value, *, low, high=math.inf, integer=False, low_inclusive=True, high_inclusive=True
):
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ValueError(f"`{name}` must be {kind}, got {value!r}.")
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        interval = f"{'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
        raise ValueError(f"`{name}` must be {kind} in {interval}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, checked on construction (before any work starts).

    See `train` for the meaning of each field. `None` fields take their documented default.

    Example:
    >>> TrainConfig(model="SEResNet18", epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be an integer in [1, inf], got 0.
    """

    model: object = "SEResNet18"
    dataset: str = "sklearn_digits"
    output_dir: object = None
    epochs: int = 6
    batch_size: int = 64
    image_size: int = 32
    optimizer: str = "sgd"
    learning_rate: float = None
    weight_decay: float = None
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    precision: str = "float32"
    xla: str = "auto"
    strategy: str = "auto"
    sync_batch_norm: bool = False
    data_dir: object = None
    download: bool = False
    validation_split: str = None
    steps_per_epoch: int = None
    augment: bool = True
    overwrite: bool = False
    seed: int = 0
    verbose: object = "auto"

    def __post_init__(self):
        if isinstance(self.model, str) and self.model not in model_names():
            raise ValueError(
                f"Unknown model {self.model!r}. Valid names: {', '.join(model_names())}."
            )
        if not isinstance(self.model, str) and not callable(self.model):
            raise TypeError(f"`model` must be a model name or a callable, got {self.model!r}.")
        for name in ("epochs", "batch_size", "image_size", "steps_per_epoch"):
            if name != "steps_per_epoch" or self.steps_per_epoch is not None:
                _check_number(name, getattr(self, name), low=1, integer=True)
        _check_number("seed", self.seed, low=0, integer=True)
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("precision", PRECISIONS),
            ("xla", XLA_MODES),
            ("strategy", distribute.STRATEGIES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"`{name}` must be one of {', '.join(choices)}, got {getattr(self, name)!r}."
                )
        if self.learning_rate is not None:
            _check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        if self.weight_decay is not None:
            _check_number("weight_decay", self.weight_decay, low=0)
        _check_number("warmup_epochs", self.warmup_epochs, low=0, high=self.epochs)
        _check_number("label_smoothing", self.label_smoothing, low=0, high=1, high_inclusive=False)

    @property
    def model_name(self):
        """The model's name (the constructor's name for a callable)."""
        if isinstance(self.model, str):
            return self.model
        return getattr(self.model, "__name__", None) or getattr(
            getattr(self.model, "func", None), "__name__", "model"
        )

    @property
    def peak_learning_rate(self):
        """`learning_rate`, or the base rate scaled by `batch_size / 256`."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return BASE_LEARNING_RATE[self.optimizer] * self.batch_size / 256

    @property
    def run_dir(self):
        """The run folder: `output_dir`, or `runs/<model>-<dataset>`."""
        if self.output_dir is not None:
            return pathlib.Path(self.output_dir).expanduser()
        dataset = pathlib.Path(str(self.dataset)).name.replace("/", "-").replace(":", "-")
        return pathlib.Path("runs") / f"{self.model_name}-{dataset}"

    def fingerprint(self):
        """The settings that define the run; a backup made with others is not resumed."""
        keys = ("dataset", "epochs", "batch_size", "image_size", "optimizer", "label_smoothing")
        settings = {key: str(getattr(self, key)) for key in keys}
        settings.update(
            model=self.model_name,
            learning_rate=self.peak_learning_rate,
            weight_decay=self.weight_decay,
            precision=self.precision,
            seed=self.seed,
        )
        return settings


def _refuse_finished_run(config):
    if (config.run_dir / MODEL_FILE).exists() and not config.overwrite:
        raise FileExistsError(
            f"{config.run_dir / MODEL_FILE} already exists: that run is finished. Use another "
            "output folder, or --overwrite (overwrite=True) to train it again from scratch."
        )


def _backup(config, work_dir, xla=None):
    return checkpoint.CrashSafeBackup(
        work_dir / CHECKPOINT_DIR,
        run_config=config.fingerprint(),
        on_epoch_saved=lambda _, history: write_history(work_dir, history),
        extra_state={"xla": xla},
    )


def _make_run_dir(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(
            f"`output_dir` {str(folder)!r} is not a writable folder: {error.strerror or error}."
        ) from None


def _build_model(config, num_classes):
    from keras_se import applications

    constructor = (
        getattr(applications, config.model) if isinstance(config.model, str) else config.model
    )
    size = config.image_size
    images = keras.Input((size, size, 3), name="images")
    normalized = keras.layers.Normalization(
        mean=IMAGENET_MEAN, variance=[s**2 for s in IMAGENET_STD], name="normalize"
    )(images)
    backbone = constructor(
        weights=None, input_tensor=normalized, classes=num_classes, classifier_activation=None
    )
    # Softmax in float32 so that mixed precision keeps the probabilities and the loss exact.
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(
        backbone.output
    )
    return keras.Model(images, probabilities, name=backbone.name)


def _optimizer(config, model, steps_per_epoch):
    total_steps = config.epochs * steps_per_epoch
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else config.peak_learning_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=config.peak_learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    weight_decay = (
        DEFAULT_WEIGHT_DECAY[config.optimizer]
        if config.weight_decay is None
        else config.weight_decay
    )
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=weight_decay or None
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    # No decay for BatchNorm scales and shifts and for biases (every variable of rank <= 1).
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in model.trainable_variables if len(v.shape) <= 1]
    )
    return optimizer


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
    checkpoint.write_text_atomically(run_dir / "history.json", json.dumps(history, indent=1))
    keys = sorted(history)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(history[key][epoch] for key in keys)])
    checkpoint.write_text_atomically(run_dir / "history.csv", table.getvalue())


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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with checkpoint.atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=100)
    pyplot.close(figure)


def _count_examples(dataset, known):
    return known if known >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def _summary_text(result):
    resumed = f", resumed after epoch {result['resumed_from']}" if result["resumed_from"] else ""
    return (
        f"\nkeras-se train: {result['model']} on {result['dataset']}, {result['epochs']} "
        f"epochs{resumed}, {result['replicas']} replica(s) ({result['strategy']}), "
        f"{result['precision']}, XLA {'on' if result['xla'] else 'off'}\n"
        f"  validation accuracy {result['val_accuracy']:.2%}, loss {result['val_loss']:.4f} "
        f"({result['num_validation']} images)\n"
        f"  training {result['train_seconds']:.1f} s this session, "
        f"{result['images_per_second']:.0f} images/s\n"
        f"  run folder {result['run_dir']}: {MODEL_FILE}, {CHECKPOINT_DIR}/, history.json, "
        "history.csv, curves.png, logs/, summary.json"
    )


def train(model="SEResNet18", dataset="sklearn_digits", **options):
    """Train an application model with `model.fit`; write and return its run summary.

    Args:
        model: a `keras_se.applications` constructor name (see `model_names()`), or a
            callable with the applications signature (e.g.
            `functools.partial(ResNet, (1, 1, 1, 1), block="basic")`).
        dataset: the embedded `"sklearn_digits"` (offline), any TFDS name, or the path of an
            image folder (class sub-folders, optionally inside `train/` + `validation/`).
        **options: the other `TrainConfig` fields:
            `output_dir` (run folder, default `runs/<model>-<dataset>`); `epochs` (6);
            `batch_size` (64, the global batch: it must split evenly across replicas);
            `image_size` (32); `optimizer` (`"sgd"`: Nesterov momentum 0.9, or `"adamw"`);
            `learning_rate` (peak rate; default 0.1 x batch_size / 256 for SGD, 1e-3 x
            batch_size / 256 for AdamW); `weight_decay` (1e-4 SGD, 0.05 AdamW; never on BN
            or biases); `warmup_epochs` (1: linear warm-up, then cosine decay to 0);
            `label_smoothing` (0.1); `precision` (`float32`, `mixed_float16`,
            `mixed_bfloat16`); `xla` (`on`, `off`, or `auto`: on for GPUs and
            for small images on a CPU, see `use_xla`); `strategy`
            (`auto`, `one-device`, `mirrored`, `multi-worker`); `sync_batch_norm` (BN
            statistics over all replicas); `data_dir` and `download` (TFDS);
            `validation_split`; `steps_per_epoch` (default: the whole training split);
            `augment` (random crop and flip); `overwrite` (train again over a finished run);
            `seed`; `verbose` (Keras' progress bars: `"auto"`, 0, 1, 2).

    Returns:
        The summary dict (also in `summary.json`): `val_accuracy`, `val_loss`, `epochs`,
        `resumed_from`, `train_seconds`, `images_per_second`, `run_dir`, `model_path`, ...

    Example:
    >>> import tempfile
    >>> result = train("SEResNet18", epochs=1, steps_per_epoch=2, batch_size=8,
    ...                output_dir=tempfile.mkdtemp(), verbose=0)  # doctest: +SKIP
    >>> sorted(result)[:3]  # doctest: +SKIP
    ['dataset', 'epochs', 'images_per_second']
    """
    config = TrainConfig(model=model, dataset=dataset, **options)
    requirements.require_tensorflow(
        "The training job",
        "tf.data and tf.distribute",
        modules=("tensorflow_datasets", "matplotlib", "tensorboard"),
        extra="train",
    )
    if config.strategy == "multi-worker":
        distribute.read_tf_config()
    _refuse_finished_run(config)
    if not config.overwrite:
        _backup(config, config.run_dir).check_run_config()
    return _run(config)


def time_training_steps(build_model, *, batch_shape, num_classes, jit_compile, steps):
    """Seconds per training step of a fresh `build_model()` on random data (the fastest of
    `steps` steps, after one untimed step that compiles).

    Example:
    >>> build = lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                                   keras.layers.Dense(4, activation="softmax")])
    >>> time_training_steps(build, batch_shape=(2, 8, 8, 3), num_classes=4,
    ...                     jit_compile=False, steps=2) > 0
    True
    """
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
        loss="categorical_crossentropy",
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, batch_shape).astype("float32")
    labels = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch_shape[0])]
    model.train_on_batch(images, labels)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    return min(times)


def use_xla(xla, probe):
    """Whether the training job compiles its step with XLA (`jit_compile=True`).

    `"on"` and `"off"` decide. `"auto"` calls `probe(jit_compile)` (seconds per step, e.g.
    `time_training_steps` on a throwaway copy of the model) for both modes and takes the
    faster. No size rule holds on a CPU: measured on 2 cores (images/s, graph mode / XLA, batch
    8), ResNet-50 trains at 67.8 / 38.0 at 32 px and 43.0 / 12.7 at 64 px, MobileNet at
    162 / 173 at 32 px and 96.7 / 39.1 at 96 px (README, "Mixed precision and XLA").

    Returns:
        `(use, timings)`: whether to use XLA, and `{"graph": s, "xla": s}` per step when
        probed (else an empty dict).

    Example:
    >>> use_xla("auto", lambda jit_compile: 0.5 if jit_compile else 0.8)
    (True, {'graph': 0.8, 'xla': 0.5})
    >>> use_xla("off", None)
    (False, {})
    """
    if xla != "auto":
        return xla == "on", {}
    timings = {"graph": probe(False), "xla": probe(True)}
    return timings["xla"] < timings["graph"], timings


def _choose_xla(config, work_dir, num_classes, strategy):
    """`(xla, probe timings)` for the run: `use_xla` with a probe of a throwaway copy of the
    model on one replica's batch.

    A resumed `auto` run keeps the choice it saved when it started. Multi-worker runs cannot
    probe (each worker would decide for itself): `auto` uses XLA on GPUs, graph mode on CPUs.
    """
    saved = (_backup(config, work_dir).read_state() or {}).get("xla")
    if config.xla == "auto" and saved is not None:
        return saved, {}
    if config.xla == "auto" and config.strategy == "multi-worker":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU")), {}
    per_replica = config.batch_size // strategy.num_replicas_in_sync
    return use_xla(
        config.xla,
        lambda jit_compile: time_training_steps(
            lambda: _build_model(config, num_classes),
            batch_shape=(per_replica, config.image_size, config.image_size, 3),
            num_classes=num_classes,
            jit_compile=jit_compile,
            steps=XLA_PROBE_STEPS,
        ),
    )


def _run(config):
    import tensorflow as tf

    from keras_se import data

    strategy = distribute.make_strategy(config.strategy)
    distribute.check_batch_size(config.batch_size, strategy)
    is_chief, worker_id = True, None
    if config.strategy == "multi-worker":
        is_chief, worker_id = distribute.worker_role(distribute.read_tf_config())
    keras.utils.set_random_seed(config.seed)  # before the pipelines: same shuffles every run
    splits = data.load_splits(
        config.dataset,
        data_dir=config.data_dir,
        download=config.download,
        validation_split=config.validation_split,
        seed=config.seed,
    )
    num_train = _count_examples(splits.train, splits.num_train)
    num_validation = _count_examples(splits.validation, splits.num_validation)
    steps_per_epoch = config.steps_per_epoch or num_train // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"`batch_size` {config.batch_size} is larger than the {num_train} training images."
        )
    pipeline = dict(
        image_size=config.image_size,
        batch_size=config.batch_size,
        num_classes=splits.num_classes,
        seed=config.seed,
    )
    train_batches = data.make_pipeline(
        splits.train,
        training=True,
        num_examples=num_train,
        augment=config.augment,
        flip=splits.flip,
        **pipeline,
    ).repeat()
    # Full, zero-weight-padded batches: no replica ever gets an empty batch (see make_pipeline).
    validation_batches = data.make_pipeline(
        splits.validation,
        training=False,
        num_examples=num_validation,
        full_batches=True,
        **pipeline,
    )
    # Non-chief workers keep their own checkpoints (they restore from them) and logs.
    work_dir = config.run_dir if is_chief else config.run_dir / "workers" / worker_id
    _make_run_dir(work_dir)
    if config.overwrite:
        shutil.rmtree(work_dir / CHECKPOINT_DIR, ignore_errors=True)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        xla, xla_timings = _choose_xla(config, work_dir, splits.num_classes, strategy)
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model = _build_model(config, splits.num_classes)
            if config.sync_batch_norm:
                for layer in model.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.synchronized = True
            model.compile(
                optimizer=_optimizer(config, model, steps_per_epoch),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                # Weighted: validation's padding rows weigh 0 (see data.make_pipeline).
                weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=xla,
            )
        backup = _backup(config, work_dir, xla)
        with strategy.scope():
            initial_epoch, _ = backup.restore(model)
        verbose = config.verbose if is_chief else 0
        epoch_log = EpochLog()
        start = time.perf_counter()
        model.fit(
            train_batches,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation_batches,
            shuffle=False,  # the pipeline shuffles
            callbacks=[
                epoch_log,
                keras.callbacks.TensorBoard(work_dir / "logs", write_graph=False),
                backup,
            ],
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - start
        checkpoint.save_model_atomically(model, work_dir / MODEL_FILE)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    history = backup.history
    plot_history(history, work_dir / "curves.png")
    # Throughput from the epochs after the first of this session (compilation excluded).
    timed = epoch_log.train_seconds[1:] or epoch_log.train_seconds
    images = len(timed) * steps_per_epoch * config.batch_size
    images_per_second = images / sum(timed) if timed else 0.0
    result = {
        "model": model.name,
        "dataset": splits.name,
        "epochs": config.epochs,
        "resumed_from": initial_epoch,
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "precision": config.precision,
        "xla": xla,
        "xla_probe_seconds_per_step": xla_timings,
        "batch_size": config.batch_size,
        "learning_rate": config.peak_learning_rate,
        "num_classes": splits.num_classes,
        "num_train": num_train,
        "num_validation": num_validation,
        "val_accuracy": history["val_accuracy"][-1],
        "val_loss": history["val_loss"][-1],
        "train_seconds": train_seconds,
        "images_per_second": images_per_second,
        "run_dir": str(work_dir),
        "model_path": str(work_dir / MODEL_FILE),
        "tensorflow": tf.__version__,
    }
    checkpoint.write_text_atomically(work_dir / "summary.json", json.dumps(result, indent=1))
    if verbose:
        print(_summary_text(result))
    return result
