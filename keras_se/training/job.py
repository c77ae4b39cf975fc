"""The training job: any `keras_se.applications` model, trained with `model.fit`.

`train()` (and `keras-se train`) checks every argument, chooses a `tf.distribute` strategy,
reads a TFDS dataset, an image folder or the embedded digits, trains with SGD + Nesterov
momentum (or AdamW) on a cosine schedule with linear warm-up, backs up every epoch so that a
killed run resumes where it stopped, and writes a run folder:

    model.keras          the trained model (takes RGB images in [0, 255]), written atomically
    checkpoints/         the last epoch's folder (weights and optimizer state, state.json,
                         history), committed atomically: `checkpoints/latest` points to it
    history.json, .csv   loss, accuracy and learning rate per epoch (train and validation):
                         links to the committed epoch's files, so they always agree with it
    curves.png           loss and accuracy curves
    logs/                TensorBoard event files
    summary.json         the final numbers, also printed at the end
"""

import json
import os
import shutil
import time

import keras

from keras_se import atomic, integrity, requirements
from keras_se.training import checkpoint, distribute, optimization
from keras_se.training.config import TrainConfig
from keras_se.training.records import EpochLog, plot_history, write_history
from keras_se.training.trained import MODEL_FILE, SUMMARY_FILE
from keras_se.training.xla_probe import choose_xla

CHECKPOINT_DIR = "checkpoints"
HISTORY_FILES = ("history.json", "history.csv")


def _refuse_finished_run(config):
    """A finished run is only trained further when `epochs` goes beyond its last checkpoint."""
    if not (config.run_dir / MODEL_FILE).exists() or config.overwrite:
        return
    state = _backup(config, config.run_dir).read_state()
    if state is None:
        raise FileExistsError(
            f"{config.run_dir / MODEL_FILE} already exists and its checkpoints are gone, so the "
            "run cannot be trained further. Use another output folder, or --overwrite "
            "(overwrite=True) to train it again from scratch."
        )
    if state["epochs_done"] >= config.epochs:
        raise FileExistsError(
            f"{config.run_dir / MODEL_FILE} already exists: that run is finished after "
            f"{state['epochs_done']} epochs. Raise --epochs above {state['epochs_done']} to "
            "train it further from its last checkpoint, use another output folder, or "
            "--overwrite (overwrite=True) to train it again from scratch."
        )


def _backup(config, work_dir, xla=None):
    return checkpoint.CrashSafeBackup(
        work_dir / CHECKPOINT_DIR,
        run_config=config.fingerprint(),
        extra_files=write_history,
        extra_state={"xla": xla},
        may_grow=("epochs",),  # more epochs: the finished run is trained further
    )


def _link_history(work_dir):
    """Make the run folder's history files links to the committed epoch's, once there is one."""
    if not (work_dir / CHECKPOINT_DIR / checkpoint.LATEST).is_symlink():
        return
    for name in HISTORY_FILES:
        link = f"{CHECKPOINT_DIR}/{checkpoint.LATEST}/{name}"
        if not (work_dir / name).is_symlink() or os.readlink(work_dir / name) != link:
            atomic.link_atomically(work_dir / name, link)


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


def input_statistics(config):
    """`(mean, std)` (RGB, for images in [0, 1]) that the run's model normalizes with: those
    of the timm checkpoint that `weights` names (`"imagenet"` or a pretrained name), else
    ImageNet's (which every converted timm twin uses, and a network trained from scratch
    learns around).

    Example:
    >>> input_statistics(TrainConfig(model="SEResNet18"))[0]
    (0.485, 0.456, 0.406)
    """
    from keras_se.applications import pretrained

    twin = isinstance(config.model, str) and pretrained.checkpoint_twin(
        config.model, config.weights
    )
    return (twin.mean, twin.std) if twin else (pretrained.IMAGENET_MEAN, pretrained.IMAGENET_STD)


def _build_model(config, num_classes, *, pretrained=True):
    """The run's model: RGB images in [0, 255] -> normalization -> the constructor's network
    -> float32 softmax. `pretrained=False` leaves out `config.weights` (for the memory check
    and the XLA probe, which need only the structure)."""
    from keras_se import applications
    from keras_se.applications import weights_file
    from keras_se.applications.pretrained import is_checkpoint_name

    constructor = (
        applications.model_entry(config.model).constructor
        if isinstance(config.model, str)
        else config.model
    )
    size = config.image_size
    images = keras.Input((size, size, 3), name="images")
    mean, std = input_statistics(config)
    normalized = keras.layers.Normalization(
        # scaled to RGB in [0, 255], the range the data sources give
        mean=[255 * m for m in mean],
        variance=[(255 * s) ** 2 for s in std],
        name="normalize",
    )(images)
    weights = config.weights if pretrained else None
    checkpoint = is_checkpoint_name(weights)
    backbone = constructor(
        # a timm checkpoint: the constructor loads it, with a new classifier for `num_classes`
        weights=weights if checkpoint else None,
        input_tensor=normalized,
        classes=num_classes,
        classifier_activation=None,
    )
    if weights is not None and not checkpoint:
        weights_file.load_weights(backbone, weights, new_head=True)
    # Softmax in float32 so that mixed precision keeps the probabilities and the loss exact.
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(
        backbone.output
    )
    return keras.Model(images, probabilities, name=backbone.name)


def _check_memory(config, num_classes):
    """On a CPU, refuse a model, image size and batch whose training step cannot fit in this
    machine's memory (a lower bound: `cost.training_memory_bytes`), before any training.

    GPU memory is not checked here: Keras' own out-of-memory error names the device.
    """
    import tensorflow as tf

    from keras_se import cost
    from keras_se.layers import common

    available = common.physical_memory_bytes()
    if available is None or tf.config.list_physical_devices("GPU"):
        return
    model = _build_model(config, num_classes, pretrained=False)
    needed = cost.training_memory_bytes(
        model,
        config.batch_size,
        compute_bytes=2 if config.precision.startswith("mixed") else 4,
        optimizer_slots=2 if config.optimizer == "adamw" else 1,
    )
    del model
    if needed > available:
        raise ValueError(
            f"Training {config.model_name} on {config.image_size}x{config.image_size} images in "
            f"batches of {config.batch_size} needs at least {needed / 2**30:.1f} GiB, and this "
            f"machine has {available / 2**30:.1f} GiB: lower --image-size or --batch-size."
        )


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


def _say(verbose, text):
    """A progress line of the run (the first compile can take minutes with nothing else shown)."""
    if verbose:
        print(f"keras-se train: {text}", flush=True)


def _describe_classes(names, shown=5):
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} classes ({listed})"


def train(model="SEResNet18", dataset="sklearn_digits", **options):
    """Train an application model with `model.fit`; write and return its run summary.

    Args:
        model: a registered model name (`keras_se.applications.list_models()`), or a
            callable with the applications signature (e.g.
            `functools.partial(ResNet, (1, 1, 1, 1), block="basic")`).
        dataset: the embedded `"sklearn_digits"` (offline), any TFDS name, or the path of an
            image folder (class sub-folders, optionally inside `train/` + `validation/`).
        **options: the other `TrainConfig` fields:
            `output_dir` (run folder, default `runs/<model>-<dataset>`); `weights` (None;
            `"imagenet"`, a timm pretrained name of the model's checkpoint such as
            `"skresnet18.ra_in1k"`, or a `.weights.h5`/`.keras` file of the model: every
            layer but the classifier starts from it, the classifier is new for the dataset's
            classes; the input is normalized with the checkpoint's mean and std);
            `epochs` (6; more than a finished run's trains it further); `freeze_epochs` (0;
            with `weights`: that many epochs of the classifier alone on the frozen layers,
            then all layers at 0.1x the rate);
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


def _record_failure(work_dir, backup):
    """Mark the run failed in `summary.json` and raise `TrainingDiverged` (the CLI: exit 1)."""
    state = backup.read_state() or {"epochs_done": 0}
    kept = (
        f"the checkpoint of epoch {state['epochs_done']} is kept"
        if state["epochs_done"]
        else "no epoch finished, so no checkpoint is kept"
    )
    reason = f"Training diverged: {backup.diverged}; {kept}."
    summary = {"status": "failed", "reason": reason, "epochs_done": state["epochs_done"]}
    atomic.write_text_atomically(work_dir / SUMMARY_FILE, json.dumps(summary, indent=1))
    raise checkpoint.TrainingDiverged(
        f"{reason} Lower the learning rate (--lr) or use --precision float32, then start "
        "again with --overwrite."
    )


def _run(config):
    import tensorflow as tf

    from keras_se.training import data

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
    verbose = config.verbose if is_chief else 0
    _say(
        verbose,
        f"{splits.name}: {_describe_classes(list(splits.class_names))}, {num_train} training "
        f"and {num_validation} validation images",
    )
    steps_per_epoch = config.steps_per_epoch or num_train // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"`batch_size` {config.batch_size} is larger than the {num_train} training images."
        )
    _check_memory(config, splits.num_classes)
    pipeline = dict(
        image_size=config.image_size,
        batch_size=config.batch_size,
        num_classes=splits.num_classes,
        seed=config.seed,
    )
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
    # Files a killed run was writing (`.NAME.partial-*`, up to a weights file each).
    for folder in (work_dir, work_dir / CHECKPOINT_DIR):
        atomic.remove_stale_partials(folder)
    if config.overwrite:
        shutil.rmtree(work_dir / CHECKPOINT_DIR, ignore_errors=True)
        for name in HISTORY_FILES:
            (work_dir / name).unlink(missing_ok=True)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        xla, xla_timings = choose_xla(
            config,
            saved=(_backup(config, work_dir).read_state() or {}).get("xla"),
            build_model=lambda: _build_model(config, splits.num_classes, pretrained=False),
            replicas=strategy.num_replicas_in_sync,
            num_classes=splits.num_classes,
        )
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model = _build_model(config, splits.num_classes)
            if config.sync_batch_norm:
                for layer in model.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.synchronized = True
            model.compile(
                optimizer=optimization.make_optimizer(config, model, steps_per_epoch),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                # Weighted: validation's padding rows weigh 0 (see data.make_pipeline).
                weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=xla,
            )
            # On every variable, before any is frozen: both phases use this optimizer.
            model.optimizer.build(model.trainable_variables)
        backup = _backup(config, work_dir, xla)
        with strategy.scope():
            initial_epoch, _ = backup.restore(model)
        _link_history(work_dir)
        start_from = f", from {config.weights}" if config.weights else ""
        _say(
            verbose,
            f"{model.name}: {model.count_params():,} parameters{start_from}, "
            f"{config.image_size}x{config.image_size} images in batches of {config.batch_size} "
            f"on {strategy.num_replicas_in_sync} replica(s), {config.precision}, XLA "
            f"{'on' if xla else 'off'}",
        )
        _say(
            verbose,
            (f"resuming after epoch {initial_epoch}; " if initial_epoch else "")
            + f"compiling the training step, epoch {initial_epoch + 1} of {config.epochs} "
            "starts after it",
        )
        epoch_log = EpochLog()
        start = time.perf_counter()
        epochs_done = initial_epoch
        for end, frozen in optimization.phases(config, initial_epoch):
            optimization.enter_phase(model, config, steps_per_epoch, frozen)
            # The batches from where the run stands: a resumed run reads what an
            # uninterrupted one would have read (see make_pipeline's `start_batch`).
            train_batches = data.make_pipeline(
                splits.train,
                training=True,
                num_examples=num_train,
                augment=config.augment,
                flip=splits.flip,
                start_batch=epochs_done * steps_per_epoch,
                stop_batch=max(end, epochs_done + 1) * steps_per_epoch,
                **pipeline,
            )
            model.fit(
                train_batches,
                epochs=end,
                initial_epoch=epochs_done,
                steps_per_epoch=steps_per_epoch,
                validation_data=validation_batches,
                shuffle=False,  # the pipeline shuffles
                callbacks=[
                    epoch_log,
                    keras.callbacks.TensorBoard(work_dir / "logs", write_graph=False),
                    backup,
                    keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: _link_history(work_dir)),
                ],
                verbose=verbose,
            )
            if backup.diverged is not None:
                break
            epochs_done = end
        train_seconds = time.perf_counter() - start
        if backup.diverged is not None:
            _record_failure(work_dir, backup)
        if config.freeze_epochs:  # frozen only for the run's first phase: saved to train whole
            optimization.enter_phase(model, config, steps_per_epoch, frozen=False)
        atomic.save_model_atomically(model, work_dir / MODEL_FILE)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    history = backup.history
    plot_history(history, work_dir / "curves.png")
    # Throughput from the epochs after the first of this session (compilation excluded).
    timed = epoch_log.train_seconds[1:] or epoch_log.train_seconds
    images = len(timed) * steps_per_epoch * config.batch_size
    images_per_second = images / sum(timed) if timed else 0.0
    result = {
        "status": "finished",
        "model": model.name,
        "dataset": splits.name,
        # what `keras-se evaluate` needs to find the same validation images again
        "data_dir": None if config.data_dir is None else str(config.data_dir),
        "validation_split": config.validation_split,
        "seed": config.seed,
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
        "class_names": list(splits.class_names),
        "num_train": num_train,
        "num_validation": num_validation,
        "val_accuracy": history["val_accuracy"][-1],
        "val_loss": history["val_loss"][-1],
        "train_seconds": train_seconds,
        "images_per_second": images_per_second,
        "run_dir": str(work_dir),
        "model_path": str(work_dir / MODEL_FILE),
        "model_sha256": integrity.sha256(work_dir / MODEL_FILE),
        "tensorflow": tf.__version__,
    }
    atomic.write_text_atomically(work_dir / SUMMARY_FILE, json.dumps(result, indent=1))
    if verbose:
        print(_summary_text(result))
    return result
