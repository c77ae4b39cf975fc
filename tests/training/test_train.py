"""The training job end to end: accuracy on real data, run folder, distribution, crash safety."""

import contextlib
import dataclasses
import errno
import itertools
import json
import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from harness import layers_moved, randomize_statistics, run_for_result, to_numpy
from keras_se.applications import pretrained
from training_job import SE_RESNET10

from keras_se import cli
from keras_se.training import checkpoint, data, job, xla_probe

JOB = pathlib.Path(__file__).parents[1] / "training_job.py"
SMALL_RUN = {"batch_size": 32, "xla": "off", "verbose": 0}


def _run_job(options):
    """Run tests/training_job.py in a fresh process; return (returncode, result, output)."""
    return run_for_result([sys.executable, str(JOB), json.dumps(options)])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """SE-ResNet-10 trained on the embedded digits with the job's defaults (6 epochs, 32 px)."""
    folder = tmp_path_factory.mktemp("run")
    return job.train(SE_RESNET10, output_dir=folder, verbose=0), folder


def test_embedded_digits_train_a_small_se_resnet_to_95_percent(digits_run):
    result, folder = digits_run
    assert result["val_accuracy"] >= 0.95, result
    assert (result["num_train"], result["num_validation"], result["epochs"]) == (1348, 449, 6)
    assert result["strategy"] == "OneDeviceStrategy"  # the default
    # `--xla auto` (the default) timed both modes and took the faster.
    probe = result["xla_probe_seconds_per_step"]
    assert set(probe) == {"graph", "xla"} and min(probe.values()) > 0, probe
    assert result["xla"] == (probe["xla"] < probe["graph"])
    # The saved model reproduces that accuracy on its own, from plain RGB images.
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    splits = data.load_splits("sklearn_digits")
    batches = data.make_pipeline(
        splits.validation, image_size=32, batch_size=128, num_classes=10, training=False
    )
    correct = sum(
        int(np.sum(np.argmax(model.predict(images, verbose=0), 1) == np.argmax(labels, 1)))
        for images, labels in batches
    )
    assert correct / 449 == pytest.approx(result["val_accuracy"], abs=1.5 / 449)


def test_run_folder_holds_everything_a_person_needs(digits_run):
    result, folder = digits_run
    history = json.loads((folder / "history.json").read_text())
    assert sorted(history) == [
        "accuracy",
        "learning_rate",
        "loss",
        "val_accuracy",
        "val_loss",
    ]
    assert all(len(values) == 6 for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    # Linear warm-up to 0.1 x 64 / 256 over the first epoch, then cosine decay to zero.
    rates = history["learning_rate"]
    assert rates[0] == pytest.approx(0.025) and rates[-1] == pytest.approx(0, abs=1e-7)
    assert all(a > b for a, b in itertools.pairwise(rates))
    rows = (folder / "history.csv").read_text().splitlines()
    assert rows[0].split(",")[0] == "epoch" and len(rows) == 7
    png = (folder / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    events = [p for p in (folder / "logs").rglob("events.out.tfevents.*")]
    assert {p.parent.name for p in events} == {"train", "validation"}
    assert json.loads((folder / "summary.json").read_text()) == json.loads(json.dumps(result))
    # One committed epoch folder; the history files are its own (links), so they agree.
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch-0006", "latest"]
    assert sorted(p.name for p in (folder / "checkpoints" / "latest").iterdir()) == [
        "history.csv",
        "history.json",
        "model.weights.h5",
        "state.json",
    ]
    for name in ("history.json", "history.csv"):
        assert os.readlink(folder / name) == f"checkpoints/latest/{name}"
    state = _committed(folder)
    assert state["epochs_done"] == 6 and state["history"] == history
    assert result["images_per_second"] > 0 and result["train_seconds"] > 0


def test_inspect_draws_the_attention_of_the_default_run(digits_run, tmp_path, capsys):
    """`keras-se inspect` on the model the default job trains: the figures decode and are not
    blank, every class has its row, the numbers equal `keras_se.inspect` on the same images."""
    from PIL import Image

    from keras_se import inspect

    _, folder = digits_run
    output = tmp_path / "inspection"
    assert cli.main(["inspect", str(folder), "-o", str(output), "--batches", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("sklearn_digits validation: 128 images through 4 attention")
    assert printed[-1].startswith("wrote statistics.csv, class_excitation.csv, excitation.png")
    assert len(printed) == 7  # header, table head, 4 layers, files
    report = json.loads((output / "attention.json").read_text())
    assert report["images"] == 128 and sum(report["images_per_class"]) == 128
    layers = [row["layer"] for row in report["statistics"]]
    assert layers == [f"stage{i}_block1_se" for i in range(1, 5)]
    assert report["shown"]["squeeze_excite"] == layers and "scale" not in report
    rows = (output / "class_excitation.csv").read_text().splitlines()
    assert rows[0] == "layer,class,channel,mean_gate"
    assert len(rows) - 1 == 10 * (64 + 128 + 256 + 512)  # every class present, every channel
    for layer, channels in zip(layers, (64, 128, 256, 512), strict=True):
        curves = report["class_excitation"][layer]
        assert len(curves) == 10 and all(len(row) == channels for row in curves)
    statistics = (output / "statistics.csv").read_text().splitlines()
    assert statistics[0] == "layer,kind,channels,mean,std,saturated,class_spread"
    assert len(statistics) == 5
    for name in ("excitation.png",):
        image = np.asarray(Image.open(output / name).convert("L"), "float32")
        assert image.shape[0] > 300 and image.std() > 10  # decoded, and drawn on
        assert (image < 128).mean() > 0.01  # curves and text, not a white page

    # The same numbers from the API on the first 128 validation images.
    model = keras.saving.load_model(folder / "model.keras")
    splits = data.load_splits("sklearn_digits")
    batches = data.make_pipeline(
        splits.validation, image_size=32, batch_size=64, num_classes=10, training=False
    )
    found = inspect.attention(model, batches, max_batches=2)
    per_class = inspect.class_excitation(found, num_classes=10)
    for layer in layers:
        np.testing.assert_allclose(report["class_excitation"][layer], per_class[layer], atol=1e-6)
    assert report["images_per_class"] == np.bincount(found.labels, minlength=10).tolist()
    mean = report["statistics"][3]["mean"]
    assert mean == pytest.approx(float(found.layers[3].values.mean()), abs=1e-6)


def test_a_run_model_with_changed_bytes_is_refused_by_export(digits_run, tmp_path):
    """4 KiB overwritten inside the weights of `model.keras`: the zip still opens and the
    model used to load and export with outputs off by 0.89. Its digest in summary.json (the
    SHA-256 of the file) now refuses it before Keras reads it."""
    from keras_se import export, integrity

    result, folder = digits_run
    assert result["status"] == "finished"
    assert result["model_sha256"] == integrity.sha256(folder / "model.keras")
    for name in ("model.keras", "summary.json"):
        shutil.copy(folder / name, tmp_path / name)
    copy = tmp_path / "model.keras"
    assert export.load_keras_file(copy).name == "se_resnet10"  # the negative control
    data = bytearray(copy.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model.keras changed after keras-se wrote it"):
        export.export(copy, tmp_path / "model.onnx", "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "summary.json"]


def test_a_finished_run_is_never_overwritten(digits_run, capsys):
    _, folder = digits_run
    before = (folder / "model.keras").read_bytes()
    with pytest.raises(FileExistsError, match="already exists: that run is finished"):
        job.train(SE_RESNET10, output_dir=folder)
    assert cli.main(["train", "--output", str(folder)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (folder / "model.keras").read_bytes() == before


def test_a_finished_run_trains_further_when_its_epochs_are_raised(digits_run, tmp_path):
    """`--epochs` above a finished run's: training goes on from its last checkpoint (the
    learning-rate schedule is recomputed for the new total, as timm's `--resume` does), and
    the history keeps the first epochs. Equal epochs, or a run whose checkpoints are gone,
    are refused with what to do."""
    _, folder = digits_run
    run = tmp_path / "run"
    shutil.copytree(folder, run, symlinks=True)
    before = keras.saving.load_model(run / "model.keras")
    first = json.loads((run / "history.json").read_text())
    with pytest.raises(FileExistsError, match=r"finished after 6 epochs\. Raise --epochs above 6"):
        job.train(SE_RESNET10, output_dir=run, epochs=6, **SMALL_RUN)
    unfinished = tmp_path / "unfinished"  # fewer epochs than a backup's: another run
    shutil.copytree(folder, unfinished, symlinks=True)
    (unfinished / "model.keras").unlink()
    with pytest.raises(ValueError, match=r"differs in epochs: saved"):
        job.train(SE_RESNET10, output_dir=unfinished, epochs=5, verbose=0)
    result = job.train(SE_RESNET10, output_dir=run, epochs=7, steps_per_epoch=2, verbose=0)
    assert (result["resumed_from"], result["epochs"]) == (6, 7)
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 7 and history["loss"][:6] == first["loss"]
    assert _committed(run)["epochs_done"] == 7
    after = keras.saving.load_model(run / "model.keras")
    kernel = after.get_layer("stem_conv1").kernel
    assert not np.array_equal(to_numpy(kernel), to_numpy(before.get_layer("stem_conv1").kernel))
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(FileExistsError, match="its checkpoints are gone"):
        job.train(SE_RESNET10, output_dir=run, epochs=8, **SMALL_RUN)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"model": "SEResnet50"},
            ValueError,
            r"Unknown model 'SEResnet50'; did you mean 'SEResNet50'\? Models: .*SKNet50",
        ),
        # Helpers exported next to the constructors are not models.
        ({"model": "decode_predictions"}, ValueError, r"Unknown model 'decode_predictions'; M"),
        ({"model": "ResNet50"}, ValueError, r"plain twin ResNet50 is now called 'PlainResNet50'"),
        ({"model": 3}, TypeError, "`model` must be a model name or a callable"),
        ({"epochs": 0}, ValueError, r"`epochs` must be an integer in \[1, inf\), got 0"),
        # A timm checkpoint of another layout than the constructor's defaults, an unknown tag.
        (
            {"model": "SEResNet50", "weights": "seresnet50.a3_in1k"},
            ValueError,
            r"checkpoint of SEResNet50\(stride_in_1x1=False, stem_pool='pad'\)",
        ),
        ({"model": "SKResNet18", "weights": "skresnet18.a1"}, ValueError, "tag skresnet18.ra_in1k"),
        # Below the model's smallest input: refused before the run folder exists.
        (
            {"model": "SEInceptionV3", "image_size": 74},
            ValueError,
            r"`image_size` must be an integer in \[75, inf\), got 74",
        ),
        ({"model": "SEResNet18", "image_size": 31}, ValueError, r"in \[32, inf\), got 31"),
        ({"batch_size": 2.5}, ValueError, "`batch_size` must be an integer"),
        ({"optimizer": "lamb"}, ValueError, "`optimizer` must be one of sgd, adamw"),
        ({"precision": "float16"}, ValueError, "`precision` must be one of float32"),
        ({"xla": True}, ValueError, "`xla` must be one of auto, on, off"),
        ({"learning_rate": 0}, ValueError, r"`learning_rate` must be a number in \(0, inf\)"),
        # Non-finite numbers would train to NaN and mark the run finished.
        (
            {"learning_rate": math.inf},
            ValueError,
            "`learning_rate` must be a finite number, got inf",
        ),
        ({"weight_decay": math.inf}, ValueError, "`weight_decay` must be a finite number, got inf"),
        ({"label_smoothing": math.nan}, ValueError, "`label_smoothing` must be a finite number"),
        # An empty path means the current folder: a run would write its model there.
        ({"output_dir": ""}, ValueError, "`output_dir` must not be empty, got ''"),
        ({"dataset": ""}, ValueError, "`dataset` must not be empty, got ''"),
        ({"weights": "imagenet", "model": "SEMobileNet"}, ValueError, "not available for SEMobi"),
        ({"weights": "w.h5"}, ValueError, "`weights` must be 'imagenet', a timm pretrained name"),
        ({"weights": "gone.weights.h5"}, ValueError, "`weights` file 'gone.weights.h5' does not"),
        ({"freeze_epochs": 2}, ValueError, "alone on pretrained layers: give `weights`"),
        ({"freeze_epochs": 7, "weights": "imagenet"}, ValueError, r"`freeze_epochs` must be an"),
        (
            {"freeze_epochs": 1, "warmup_epochs": 2, "weights": "imagenet"},
            ValueError,
            "`warmup_epochs` 2 must be at most `freeze_epochs` 1",
        ),
        ({"validation_split": " "}, ValueError, "`validation_split` must not be empty"),
        ({"label_smoothing": 1}, ValueError, r"`label_smoothing` must be a number in \[0, 1\)"),
        ({"warmup_epochs": 7}, ValueError, r"`warmup_epochs` must be a number in \[0, 6\]"),
        ({"dataset": "cifar1O"}, ValueError, "Unknown dataset 'cifar1O'. Did you mean cifar10"),
        ({"dataset": "mnist"}, FileNotFoundError, "tfds build mnist --data_dir"),
        ({"strategy": "multi-worker"}, ValueError, "TF_CONFIG is not set"),
        ({"strategy": "everything"}, ValueError, "`strategy` must be one of auto"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, monkeypatch, options, error, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    options = {"model": SE_RESNET10, "output_dir": tmp_path / "run", **options}
    options["data_dir"] = tmp_path / "tfds"
    start = time.perf_counter()
    with pytest.raises(error, match=message):
        job.train(**options)
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "run").exists()


def test_a_step_that_cannot_fit_in_memory_is_refused_before_the_run_folder(tmp_path):
    """100000 px used to train for 105 s and end in an out-of-memory traceback. (The default
    job, 32 px in batches of 64, passes the same check in every other training test.)"""
    start = time.perf_counter()
    with pytest.raises(
        ValueError,
        match=r"Training SEResNet18 on 100000x100000 images in batches of 64 needs at least "
        r"\d+\.\d GiB, and this machine has \d+\.\d GiB: lower --image-size or --batch-size\.",
    ):
        job.train("SEResNet18", image_size=100000, output_dir=tmp_path / "run", verbose=0)
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "run").exists()


def test_a_backup_of_other_settings_is_not_resumed(tmp_path):
    # (the layout before epoch folders, which is still read)
    state = tmp_path / "run" / "checkpoints" / "state.json"
    state.parent.mkdir(parents=True)
    fingerprint = job.TrainConfig(model="SEResNet18", epochs=6).fingerprint()
    state.write_text(json.dumps({"epochs_done": 2, "run_config": fingerprint}))
    start = time.perf_counter()
    # (fewer epochs: more would train the run further, see the test above)
    with pytest.raises(ValueError, match=r"it differs in epochs: saved .*the same settings"):
        job.train("SEResNet18", epochs=4, output_dir=tmp_path / "run")
    assert time.perf_counter() - start < 10
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == ["checkpoints", "state.json"]


def test_a_missing_training_package_is_named_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"needs tensorboard.*keras-se\[tensorflow-cpu,train\]"):
        job.train(SE_RESNET10, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("xla", "graph_seconds", "xla_seconds", "expected"),
    [
        ("auto", 0.08, 0.30, False),
        ("auto", 0.30, 0.08, True),
        ("on", 1, 2, True),
        ("off", 2, 1, False),
    ],
)
def test_xla_auto_takes_the_faster_mode_and_on_off_do_not_probe(
    xla, graph_seconds, xla_seconds, expected
):
    calls = []

    def probe(jit_compile):
        calls.append(jit_compile)
        return xla_seconds if jit_compile else graph_seconds

    use, timings = xla_probe.use_xla(xla, probe)
    assert use is expected
    assert calls == ([False, True] if xla == "auto" else [])
    assert timings == ({"graph": graph_seconds, "xla": xla_seconds} if xla == "auto" else {})


def test_the_xla_probe_times_real_training_steps_that_change_the_weights():
    built = []

    def build():
        model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
        model.add(keras.layers.Dense(4, activation="softmax"))
        built.append((model, [w.copy() for w in model.get_weights()]))
        return model

    seconds = xla_probe.time_training_steps(
        build, batch_shape=(4, 8, 8, 3), num_classes=4, jit_compile=True, steps=2
    )
    model, initial = built[0]
    assert len(built) == 1 and 0 < seconds < 60
    assert model.optimizer.iterations.numpy() == 3  # one compiling step and two timed ones
    assert not np.allclose(model.get_weights()[0], initial[0])


def test_a_resumed_auto_run_keeps_the_xla_choice_it_started_with(tmp_path):
    options = dict(epochs=1, steps_per_epoch=2, batch_size=32, augment=False, verbose=0)
    first = job.train(SE_RESNET10, output_dir=tmp_path, **options)
    assert set(first["xla_probe_seconds_per_step"]) == {"graph", "xla"}
    state_path = tmp_path / "checkpoints" / "latest" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["xla"] == first["xla"]
    # Pretend the first run chose the other mode and was killed before saving its model.
    state["xla"] = not first["xla"]
    state_path.write_text(json.dumps(state))
    (tmp_path / "model.keras").unlink()
    resumed = job.train(SE_RESNET10, output_dir=tmp_path, **options)
    assert resumed["resumed_from"] == 1 and resumed["xla"] is (not first["xla"])
    assert resumed["xla_probe_seconds_per_step"] == {}  # no second probe


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_in_half_precision_with_float32_outputs(tmp_path, precision):
    result = job.train(
        SE_RESNET10,
        output_dir=tmp_path,
        precision=precision,
        epochs=1,
        steps_per_epoch=2,
        batch_size=16,
        xla="off",
        verbose=0,
    )
    assert result["precision"] == precision
    assert np.isfinite(result["val_loss"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    compute = precision.removeprefix("mixed_")
    assert model.get_layer("stem_conv1").compute_dtype == compute
    assert model.get_layer("stem_conv1").kernel.dtype == "float32"
    images = np.zeros((2, 32, 32, 3), "float32")
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32


def test_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"`output_dir` .*a_file/run' is not a writable folder"):
        job.train(SE_RESNET10, output_dir=blocker / "run", epochs=1, steps_per_epoch=1)


def test_image_folder_errors_reach_the_job(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="has no classes"):
        job.train(SE_RESNET10, dataset=str(tmp_path / "images"), output_dir=tmp_path / "run")


def test_a_diverging_run_stops_is_marked_failed_and_exits_with_1(tmp_path, monkeypatch, capsys):
    """A finite but absurd learning rate (1e30, accepted) sends the loss to NaN in the first
    epoch: the run stops there, `summary.json` says why, nothing else is written."""
    with pytest.raises(checkpoint.TrainingDiverged) as error:
        job.train(
            SE_RESNET10,
            output_dir=tmp_path,
            learning_rate=1e30,
            warmup_epochs=0,
            epochs=3,
            steps_per_epoch=4,
            **SMALL_RUN,
        )
    message = str(error.value)
    assert re.match(
        r"Training diverged: the training loss became (nan|inf) at step \d of epoch 1; "
        r"no epoch finished, so no checkpoint is kept\. Lower the learning rate",
        message,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs_done"] == 0
    assert summary["reason"] in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "logs") == ["summary.json"]
    # The command line turns it into one line and exit code 1 (not 2: the input was valid).
    monkeypatch.setattr(job, "train", lambda **_: (_ for _ in ()).throw(error.value))
    assert cli.main(["train", "--output", str(tmp_path / "again")]) == 1
    assert capsys.readouterr().err == f"keras-se train: {message}\n"


@contextlib.contextmanager
def _small_disk(folder, megabytes):
    """A tmpfs of `megabytes` mounted at `folder` where this process may mount one (root on
    Linux). Yields a function that grows it, or None where it could not be mounted."""
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True).returncode == 0

    def grow(size):
        subprocess.run(["mount", "-o", f"remount,size={size}m", str(folder)], check=True)

    try:
        yield grow if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_run_without_losing_the_last_checkpoint(tmp_path, monkeypatch):
    """Epoch 1's checkpoint (about 40 MB for SE-ResNet-10 with its momentum) fits on a 60 MB
    disk; epoch 2's cannot be written next to it. The run stops with ENOSPC, epoch 1 stays
    the resumable state, no partial file is left, and once there is space the same command
    resumes from epoch 1. Without a mountable tmpfs, the full disk is simulated."""
    options = dict(epochs=2, steps_per_epoch=2, augment=False, **SMALL_RUN)
    with _small_disk(tmp_path / "disk", 60) as grow:
        run_dir = tmp_path / "disk" / "run"
        if grow is None:
            save = keras.Model.save_weights

            def save_until_full(model, path, *args, **kwargs):
                if "epoch-0002" in str(path):
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                return save(model, path, *args, **kwargs)

            monkeypatch.setattr(keras.Model, "save_weights", save_until_full)
        with pytest.raises(OSError) as error:
            job.train(SE_RESNET10, output_dir=run_dir, **options)
        assert error.value.errno == errno.ENOSPC
        assert _committed(run_dir)["epochs_done"] == 1
        assert not list(run_dir.rglob(".*.partial-*")) and not (run_dir / "model.keras").exists()
        if grow is None:
            monkeypatch.undo()
        else:
            grow(400)
        result = job.train(SE_RESNET10, output_dir=run_dir, **options)
        assert result["resumed_from"] == 1 and result["status"] == "finished"


def test_a_run_folder_made_read_only_mid_run_is_one_line_and_exit_code_1(
    tmp_path, monkeypatch, capsys
):
    """`checkpoints/` turns read-only at epoch 2's commit (bind-mounted read-only onto itself;
    simulated where this process cannot mount): `keras-se train` says so in one line with
    exit code 1 (it used to print a PermissionError traceback), and epoch 1 stays committed."""
    train, commit = job.train, checkpoint.CrashSafeBackup._commit
    monkeypatch.setattr(job, "train", lambda **options: train(**{**options, "model": SE_RESNET10}))
    run_dir, mounts = tmp_path / "run", []

    def commit_read_only(backup, epochs_done):
        if epochs_done == 2:
            folder = str(backup.backup_dir)
            if subprocess.run(["mount", "--bind", folder, folder]).returncode == 0:
                mounts.append(folder)
            remount = ["mount", "-o", "remount,bind,ro", folder]
            if not mounts or subprocess.run(remount).returncode != 0:
                raise OSError(errno.EROFS, "Read-only file system", folder)
        commit(backup, epochs_done)

    monkeypatch.setattr(checkpoint.CrashSafeBackup, "_commit", commit_read_only)
    argv = ["train", "--output", str(run_dir), "--epochs", "2", "--steps-per-epoch", "2"]
    try:
        assert cli.main([*argv, "--batch-size", "32", "--xla", "off", "--no-augment"]) == 1
    finally:
        for folder in mounts:
            subprocess.run(["umount", "-l", folder], check=False)
    err = capsys.readouterr().err
    assert err.startswith("keras-se train: Read-only file system") and err.count("\n") == 1
    assert _committed(run_dir)["epochs_done"] == 1


def test_environment_faults_are_one_line_and_exit_code_1(monkeypatch, capsys):
    def full_disk(**_):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/checkpoints/state.json")

    monkeypatch.setattr(job, "train", full_disk)
    assert cli.main(["train"]) == 1
    assert capsys.readouterr().err == (
        "keras-se train: No space left on device (runs/x/checkpoints/state.json)\n"
    )


def test_cli_reports_bad_input_in_one_line(capsys):
    assert cli.main(["train", "--model", "Nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-se train: Unknown model 'Nope'") and "SEResNet50" in err
    assert err.count("\n") == 1
    assert cli.main(["train", "--model", "decode_predictions"]) == 2
    assert "Unknown model 'decode_predictions'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--strategy", "tpu"])
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_every_cli_option_reaches_the_training_config(monkeypatch):
    calls = []
    monkeypatch.setattr(job, "train", lambda *args, **kwargs: calls.append((args, kwargs)))
    argv = (
        "train --model SKNet50 --weights imagenet --freeze-epochs 2 --dataset cifar10 "
        "--data-dir /d --download "
        "--validation-split "
        "test --output /o --epochs 9 --batch-size 128 --image-size 64 --steps-per-epoch 5 "
        "--optimizer adamw --lr 0.002 --weight-decay 0.01 --warmup-epochs 2 --label-smoothing "
        "0.2 --precision mixed_bfloat16 --xla off --strategy mirrored --sync-bn --no-augment "
        "--overwrite --seed 7"
    )
    assert cli.main(argv.split()) == 0
    ((args, kwargs),) = calls
    config = job.TrainConfig(*args, **kwargs)
    assert dataclasses.asdict(config) == {
        **dataclasses.asdict(job.TrainConfig()),
        **dict(model="SKNet50", weights="imagenet", dataset="cifar10", data_dir="/d"),
        **dict(download=True, freeze_epochs=2),
        **dict(validation_split="test", output_dir="/o", epochs=9, batch_size=128),
        **dict(image_size=64, steps_per_epoch=5, optimizer="adamw", learning_rate=0.002),
        **dict(weight_decay=0.01, warmup_epochs=2, label_smoothing=0.2, xla="off"),
        **dict(precision="mixed_bfloat16", strategy="mirrored", sync_batch_norm=True),
        **dict(augment=False, overwrite=True, seed=7),
    }


def test_image_folder_trains_end_to_end(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in (("red", 0), ("blue", 2)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(12):
            pixels = rng.integers(0, 60, (40, 36, 3), dtype=np.uint8)
            pixels[..., colour] += 180
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    result = job.train(
        SE_RESNET10,
        dataset=str(tmp_path / "images"),
        output_dir=tmp_path / "run",
        epochs=2,
        batch_size=8,
        xla="off",
        verbose=0,
    )
    assert (result["num_classes"], result["num_train"], result["num_validation"]) == (2, 22, 2)
    assert (tmp_path / "run" / "model.keras").exists()


MIRRORED_CHECK = """
import json, sys
from training_job import SE_RESNET10, split_cpu
split_cpu(2)
import keras, numpy as np
from keras_se.training import data, distribute, job
strategy = distribute.make_strategy("mirrored")
with strategy.scope():
    model = SE_RESNET10(input_shape=(32, 32, 3), classes=10)
kinds = sorted({type(v.value).__name__ for v in model.weights})
try:
    job.train(SE_RESNET10, strategy="mirrored", batch_size=33, output_dir=sys.argv[1] + "/x")
    error = None
except ValueError as e:
    error = str(e)
# 449 validation images at batch 32: the last global batch holds 1 image, which would leave
# the second replica with none.
common = dict(epochs=1, steps_per_epoch=4, batch_size=32, augment=False, xla="off",
              verbose=0, sync_batch_norm=True, warmup_epochs=0, learning_rate=0.05)
runs = {s: job.train(SE_RESNET10, strategy=s, output_dir=f"{sys.argv[1]}/{s}", **common)
        for s in ("mirrored", "one-device")}
models = {s: keras.saving.load_model(r["model_path"]) for s, r in runs.items()}
weights = {s: m.get_weights() for s, m in models.items()}
keras.utils.set_random_seed(0)
initial = job._build_model(job.TrainConfig(model=SE_RESNET10), 10).get_weights()
# The validation numbers recomputed in numpy from each saved model's predictions (the job
# validates after the last epoch's training, with these weights): cross-entropy with the
# job's label smoothing 0.1, and accuracy, over the 449 images.
validation = data.make_pipeline(data.load_splits("sklearn_digits").validation, image_size=32,
                                batch_size=32, num_classes=10, training=False)
labels = np.concatenate([y for _, y in validation])
reference = {}
for s, m in models.items():
    p = np.concatenate([m.predict_on_batch(x) for x, _ in validation]).astype("float64")
    p = np.clip(p / p.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    reference[s] = {"count": len(p),
                    "val_loss": float(np.mean(-np.sum((labels * 0.9 + 0.01) * np.log(p), 1))),
                    "val_accuracy": float(np.mean(p.argmax(1) == labels.argmax(1)))}
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync, "kinds": kinds, "error": error,
    "strategies": {s: r["strategy"] for s, r in runs.items()},
    "reported": {s: {k: r[k] for k in ("val_loss", "val_accuracy")} for s, r in runs.items()},
    "reference": reference,
    # How far the two runs ended apart, relative to how far training moved the weights (both
    # as the norm over every weight).
    "relative_difference": float(np.sqrt(
        sum(np.sum((m - o) ** 2) for m, o in zip(weights["mirrored"], weights["one-device"]))
        / sum(np.sum((o - i) ** 2) for o, i in zip(weights["one-device"], initial)))),
    "smallest_change": min(float(np.max(np.abs(o - i)))
                           for o, i in zip(weights["one-device"], initial)),
}))
"""


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    """MIRRORED_CHECK's result, once per `TF_ENABLE_ONEDNN_OPTS` value (computed when asked)."""
    results = {}

    def get(onednn):
        if onednn not in results:
            folder = tmp_path_factory.mktemp(f"mirrored-onednn-{onednn}")
            code, result, output = run_for_result(
                [sys.executable, "-c", textwrap.dedent(MIRRORED_CHECK), str(folder)],
                env={**os.environ, "PYTHONPATH": str(JOB.parent), "TF_ENABLE_ONEDNN_OPTS": onednn},
                timeout=400,
            )
            assert code == 0 and result is not None, output
            results[onednn] = result
        return results[onednn]

    return get


@pytest.mark.parametrize("onednn", ["1", "0"])
def test_mirrored_validation_is_exact_with_an_empty_replica_share(mirrored_runs, onednn):
    result = mirrored_runs(onednn)
    assert result["replicas"] == 2
    assert result["kinds"] == ["MirroredVariable"]
    assert "`batch_size` 33 is the global batch and must be divisible by the 2" in result["error"]
    assert result["strategies"] == {
        "mirrored": "MirroredStrategy",
        "one-device": "OneDeviceStrategy",
    }
    # The reported numbers are the plain means over the 449 images on both strategies (the
    # zero-weight padding of the last batch counts for nothing), to float32 precision.
    for strategy, reported in result["reported"].items():
        reference = result["reference"][strategy]
        assert reference["count"] == 449
        assert reported["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-5), strategy
        assert reported["val_accuracy"] == pytest.approx(reference["val_accuracy"], abs=1e-6)


@pytest.mark.parametrize("onednn", ["1", "0"])
def test_mirrored_training_over_two_cpus_matches_one_device(mirrored_runs, onednn):
    result = mirrored_runs(onednn)
    # Same data, same initial weights, BN statistics over both replicas: the same training.
    # Every tensor moved, and the two runs agree to float32 reduction-order noise: measured
    # 3e-5 to 3.6e-4 at seeds 0, 1 and 2, oneDNN on and off; the same runs without
    # synchronized BN measured 0.84.
    assert result["smallest_change"] > 1e-4, result
    assert result["relative_difference"] < 0.01, result


@pytest.mark.parametrize("onednn", ["1", "0"])
def test_multi_worker_training_with_two_processes(tmp_path, onednn):
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    options = {
        "output_dir": str(tmp_path),
        "strategy": "multi-worker",
        "epochs": 2,
        "steps_per_epoch": 3,
        "sync_batch_norm": True,
        **SMALL_RUN,
    }
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                [sys.executable, str(JOB), json.dumps(options)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "TF_CONFIG": tf_config, "TF_ENABLE_ONEDNN_OPTS": onednn},
            )
        )
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300)[0])
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    # The RESULT line only: gRPC may log after it when the other worker has already exited.
    results = [
        json.loads(next(line for line in o.splitlines() if line.startswith("RESULT "))[7:])
        for o in outputs
    ]
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["run_dir"] == str(tmp_path)  # the chief writes the run folder
    assert results[1]["run_dir"] == str(tmp_path / "workers" / "worker-1")
    assert results[0]["val_accuracy"] == results[1]["val_accuracy"]
    chief, other = (keras.saving.load_model(r["model_path"]).get_weights() for r in results)
    # Gradients and (with sync_batch_norm) BN statistics were all-reduced across the workers.
    for a, b in zip(chief, other, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 2


def _committed(run_dir):
    """The committed epoch of a run folder (`latest/state.json`): None before the first."""
    state = run_dir / "checkpoints" / "latest" / "state.json"
    return json.loads(state.read_text()) if state.exists() else None


def _start_job(options, *flags):
    """tests/training_job.py in a fresh process, stdout and stderr merged into one pipe."""
    argv = [sys.executable, str(JOB), json.dumps(options), "--deterministic", *flags]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_run_killed_at_five_moments_ends_as_the_uninterrupted_run(tmp_path):
    """Real SIGKILLs, one after another on the same run folder: three at the named moments of
    an epoch's commit (its weights half written; its folder renamed but `latest` not switched;
    `latest` switched and nothing after), then two at random moments (a random training step
    and a random delay after it, which can land in validation or a commit). Each time the same
    command resumes from the last committed epoch; the run then ends with the weights and
    history of the same run uninterrupted (TensorFlow's op determinism on), because a resumed
    run also reads the input stream from where the killed one stood (augmentation included).
    Partial files of the kills are removed, and other files are left alone."""
    options = {"epochs": 4, "steps_per_epoch": 3, "seed": 5, **SMALL_RUN}
    straight = _start_job({**options, "output_dir": str(tmp_path / "straight")})
    output = straight.communicate(timeout=300)[0]
    assert straight.returncode == 0, output[-3000:]
    run = tmp_path / "resumed"
    killed_options = {**options, "output_dir": str(run)}
    seen = {}
    for moment in ("writing:1", "renamed:1", "committed:2"):
        process = _start_job(killed_options, "--kill", moment)
        output = process.communicate(timeout=300)[0]
        assert process.returncode == -signal.SIGKILL, output[-3000:]
        state = _committed(run)
        history = json.loads((run / "history.json").read_text()) if state else None
        seen[moment] = {
            "epochs_done": state and state["epochs_done"],
            "folders": sorted(p.name for p in (run / "checkpoints").glob("epoch-*")),
            "history_epochs": history and len(history["loss"]),
        }
    assert seen == {
        # a half-written weights file is never committed: nothing to resume yet
        "writing:1": {"epochs_done": None, "folders": [], "history_epochs": None},
        "renamed:1": {"epochs_done": None, "folders": ["epoch-0001"], "history_epochs": None},
        # the history files are the committed epoch's, before anything else has happened
        "committed:2": {
            "epochs_done": 2,
            "folders": ["epoch-0001", "epoch-0002"],
            "history_epochs": 2,
        },
    }
    rng = np.random.default_rng(20)
    for first, last in ((7, 9), (10, 11)):  # steps of epoch 3, then of epoch 4 (12 in all)
        target, delay = f"STEP {rng.integers(first, last + 1)}", rng.uniform(0, 0.5)
        process = _start_job(killed_options, "--report-steps")
        output = []
        for line in process.stdout:
            output.append(line)
            if line.strip() == target:
                time.sleep(delay)
                process.kill()
                break
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL, "".join(output)[-3000:]
    # What a kill in the middle of a write leaves (kept whatever the kill moments were).
    stale = [
        run / "checkpoints" / ".epoch-0004.partial-k1ll" / "model.weights.h5",
        run / ".model.partial-k1ll.keras",
    ]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a file")
    kept = run / "notes.partial-not-hidden.txt"  # not one of keras-se's partial files
    kept.write_text("mine")
    resumed_from = _committed(run)["epochs_done"]
    process = _start_job(killed_options)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    result = json.loads(next(x for x in output.splitlines() if x.startswith("RESULT "))[7:])
    assert result["resumed_from"] == resumed_from >= 2
    assert not any(path.exists() for path in stale) and kept.read_text() == "mine"
    assert not list(run.rglob(".*.partial-*"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0004", "latest"]
    folders = (tmp_path / "straight", run)
    weights = [
        keras.saving.load_model(f / "model.keras", safe_mode=True).get_weights() for f in folders
    ]
    for original, resumed in zip(*weights, strict=True):
        np.testing.assert_allclose(resumed, original, atol=1e-6)
    straight_history, history = (json.loads((f / "history.json").read_text()) for f in folders)
    assert sorted(history) == sorted(straight_history)
    assert all(len(values) == 4 for values in history.values())
    for key, values in straight_history.items():
        np.testing.assert_allclose(history[key], values, rtol=1e-6, err_msg=key)


def test_a_run_starts_from_a_weights_file_with_a_new_classifier(tmp_path):
    """`weights=FILE` (`--weights`): every layer of the model but its classifier starts from
    the file, saved here from the same network with 7 classes; the classifier is new, for the
    digits' 10. A file of another network is refused naming the layer."""
    keras.utils.set_random_seed(1)
    source = SE_RESNET10(input_shape=(32, 32, 3), classes=7)
    randomize_statistics(source, seed=1)
    path = tmp_path / "se_resnet10.weights.h5"
    source.save_weights(path)
    model = job._build_model(job.TrainConfig(model=SE_RESNET10, weights=str(path)), 10)
    loaded = {layer.name: layer for layer in model.layers}
    compared = 0
    for layer in source.layers:
        if layer.weights and layer.name != "predictions":
            for a, b in zip(layer.weights, loaded[layer.name].weights, strict=True):
                np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)
                compared += 1
    assert compared > 50
    assert tuple(loaded["predictions"].kernel.shape) == (512, 10)
    # The negative control: without `weights` the same layers start elsewhere.
    fresh = job._build_model(job.TrainConfig(model=SE_RESNET10), 10)
    conv = fresh.get_layer("stem_conv1").kernel
    assert not np.array_equal(to_numpy(conv), to_numpy(source.get_layer("stem_conv1").kernel))
    other = tmp_path / "plain.weights.h5"
    SE_RESNET10(input_shape=(32, 32, 3), attention=None, classes=7).save_weights(other)
    with pytest.raises(ValueError, match="does not fit"):
        job._build_model(job.TrainConfig(model=SE_RESNET10, weights=str(other)), 10)
    result = job.train(
        SE_RESNET10,
        weights=str(path),
        output_dir=tmp_path / "run",
        epochs=1,
        steps_per_epoch=2,
        **SMALL_RUN,
    )
    assert result["status"] == "finished" and result["num_classes"] == 10


def test_the_input_is_normalized_with_the_checkpoints_statistics(monkeypatch):
    """A run from a timm checkpoint (`--weights NAME.TAG` or `imagenet`) normalizes its input
    with that checkpoint's mean and std (every published twin's are ImageNet's, so the test
    gives one others); a run from scratch or from a file uses ImageNet's."""
    twin = pretrained.timm_twin("skresnet18.ra_in1k")
    odd = dataclasses.replace(twin, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    monkeypatch.setattr(pretrained, "_BY_PRETRAINED_NAME", {twin.pretrained_name: odd})
    config = job.TrainConfig(model="SKResNet18", weights="skresnet18.ra_in1k")
    assert job.input_statistics(config) == ((0.5,) * 3, (0.25,) * 3)
    normalize = job._build_model(config, 3, pretrained=False).get_layer("normalize")
    np.testing.assert_allclose(normalize.get_config()["mean"], [127.5] * 3)
    np.testing.assert_allclose(normalize.get_config()["variance"], [63.75**2] * 3)
    scratch = job.input_statistics(job.TrainConfig(model="SKResNet18"))
    assert scratch == (pretrained.IMAGENET_MEAN, pretrained.IMAGENET_STD)


def test_freeze_epochs_train_the_classifier_alone_then_every_layer(tmp_path, monkeypatch):
    """`--weights FILE --freeze-epochs 1`: after the frozen epoch every layer but the
    classifier holds the file's weights and BatchNorm statistics byte for byte, and the
    classifier has moved; in the second epoch (every layer, 0.1x the rate) the rest moves too.
    A run killed at the phase boundary resumes into the second phase and ends as the run that
    went straight through."""
    keras.utils.set_random_seed(1)
    source = SE_RESNET10(input_shape=(32, 32, 3), classes=7)
    randomize_statistics(source, seed=1)
    path = tmp_path / "pretrained.weights.h5"
    source.save_weights(path)
    options = dict(weights=str(path), freeze_epochs=1, warmup_epochs=0, steps_per_epoch=2)
    options.update(SMALL_RUN, augment=False)

    def trained(name, epochs):
        job.train(SE_RESNET10, output_dir=tmp_path / name, epochs=epochs, **options)
        return keras.saving.load_model(tmp_path / name / "model.keras")

    frozen = trained("frozen", epochs=1)
    assert layers_moved(source, frozen) == []
    keras.utils.set_random_seed(0)  # the job's seed: the classifier it started from
    start = job._build_model(job.TrainConfig(model=SE_RESNET10, **options), 10)
    head = [to_numpy(w) for w in frozen.get_layer("predictions").weights]
    assert not np.array_equal(head[0], to_numpy(start.get_layer("predictions").kernel))
    straight = trained("straight", epochs=2)
    assert len(layers_moved(source, straight)) > 20
    assert "stem_conv1" in layers_moved(source, straight)
    # Killed right after the frozen phase's commit, then the same command again.
    commit = checkpoint.CrashSafeBackup._commit

    def commit_then_die(backup, epochs_done):
        commit(backup, epochs_done)
        raise KeyboardInterrupt  # what a kill leaves: epoch 1 committed, nothing after

    monkeypatch.setattr(checkpoint.CrashSafeBackup, "_commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        job.train(SE_RESNET10, output_dir=tmp_path / "resumed", epochs=2, **options)
    monkeypatch.undo()
    result = job.train(SE_RESNET10, output_dir=tmp_path / "resumed", epochs=2, **options)
    assert result["resumed_from"] == 1
    resumed = keras.saving.load_model(tmp_path / "resumed" / "model.keras")
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), atol=1e-5, err_msg=a.path)
