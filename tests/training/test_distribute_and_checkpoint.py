"""Strategy choice, TF_CONFIG checks, the Keras multi-worker fix, and crash-safe files."""

import json
import os
import shutil
import stat
import types

import keras
import numpy as np
import pytest

from keras_se import atomic
from keras_se.training import checkpoint, distribute, keras_compat

GOOD_CLUSTER = {"worker": ["127.0.0.1:2000", "127.0.0.1:2001"]}


def _tf_config(value):
    return {"TF_CONFIG": value if isinstance(value, str) else json.dumps(value)}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not set"),
        ("{cluster:", "is not valid JSON"),
        ({"cluster": GOOD_CLUSTER}, "needs a 'task'"),
        ({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}, "needs a 'cluster'"),
        ({"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}, "host:port"),
        ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}, "non-empty lists"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": 2}}, "out of range"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": "0"}}, "integer"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "chief", "index": 0}}, "type is one of"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": 0}, "x": 1}, "only"),
    ],
)
def test_bad_tf_config_is_refused_with_an_example(value, message):
    with pytest.raises(ValueError, match=message) as error:
        distribute.read_tf_config(_tf_config(value))
    assert '"cluster": {"worker": ["host1:12345"' in str(error.value)


def test_worker_roles():
    config = distribute.read_tf_config(
        _tf_config({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": 0}})
    )
    assert distribute.worker_role(config) == (True, "worker-0")
    with_chief = {"cluster": {"chief": ["a:1"], **GOOD_CLUSTER}}
    assert distribute.worker_role({**with_chief, "task": {"type": "worker", "index": 0}}) == (
        False,
        "worker-0",
    )
    assert distribute.worker_role({**with_chief, "task": {"type": "chief", "index": 0}})[0]


def test_strategy_choices_and_batch_split():
    with pytest.raises(ValueError, match="`strategy` must be one of auto, one-device"):
        distribute.make_strategy("tpu")
    strategy = distribute.make_strategy("auto")  # no GPU here: one device
    assert type(strategy).__name__ == "OneDeviceStrategy"
    assert distribute.check_batch_size(48, strategy) == 48
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    assert distribute.check_batch_size(64, two) == 32
    with pytest.raises(ValueError, match=r"batch_size` 63 .* divisible by the 2 replicas"):
        distribute.check_batch_size(63, two)
    with pytest.raises(ValueError, match="positive integer"):
        distribute.check_batch_size(0, two)


def test_multi_worker_strategy_checks_tf_config_first(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}}')
    with pytest.raises(ValueError, match="TF_CONFIG needs a 'task'"):
        distribute.make_strategy("multi-worker")


def test_the_installed_keras_still_needs_both_fixes():
    # Keras 3.15: both defects of keras-team/keras#20585 are present (the 2-worker training
    # test shows the fixed fit working). When this fails, Keras changed: check whether the
    # fix can go.
    assert keras_compat.needed_fixes() == ["build", "reduce"]


def test_fixes_apply_only_where_the_code_still_matches():
    from keras.src.backend.tensorflow import trainer

    def make_module(build, reduce):
        module = types.SimpleNamespace(
            TensorFlowTrainer=type("T", (), {"_maybe_symbolic_build": build}),
            reduce_per_replica=reduce,
            _collective_all_reduce_multi_worker=lambda strategy: True,
        )
        return module

    buggy = make_module(trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica)
    assert keras_compat.apply_multi_worker_fit_fix(buggy) == ["build", "reduce"]
    assert buggy.reduce_per_replica is not trainer.reduce_per_replica
    assert keras_compat.apply_multi_worker_fit_fix(buggy) == []  # idempotent

    def fixed_build(self, iterator=None, data_batch=None):
        return data_batch

    def fixed_reduce(values, strategy, reduction):
        return values

    fixed = make_module(fixed_build, fixed_reduce)
    assert keras_compat.apply_multi_worker_fit_fix(fixed) == []
    assert fixed.reduce_per_replica is fixed_reduce


def test_patched_reduce_averages_scalars_across_workers():
    from keras.src.backend.tensorflow import trainer

    calls = []

    class FakeStrategy:
        def reduce(self, kind, value, axis):
            calls.append((kind, axis))
            return value

    module = types.SimpleNamespace(
        TensorFlowTrainer=trainer.TensorFlowTrainer,
        reduce_per_replica=trainer.reduce_per_replica,
        _collective_all_reduce_multi_worker=lambda strategy: True,
    )
    keras_compat._fix_reduce(module)
    import tensorflow as tf

    scalar, vector = tf.constant(1.0), tf.constant([1.0, 2.0])
    out = module.reduce_per_replica({"loss": scalar, "outputs": vector}, FakeStrategy(), "auto")
    assert calls == [("MEAN", None)]  # axis=None for the scalar, where Keras passes axis=0
    assert out["outputs"] is vector  # everything else is left to Keras


def _read_all(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_atomic_path_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert _read_all(tmp_path) == {"model.keras": b"old"}  # no partial file left behind
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    atomic.save_model_atomically(model, target)
    assert keras.saving.load_model(target).count_params() == 3


def test_atomic_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic.write_text_atomically(tmp_path / "new.json", "{}")
        kept = tmp_path / "kept.json"
        kept.write_text("")
        kept.chmod(0o640)
        atomic.write_text_atomically(kept, "{}")
    finally:
        os.umask(umask)
    # New files follow the umask like open() would, replaced files keep their mode.
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def _small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def test_backup_restores_weights_optimizer_and_history(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(2, 8, 3)).astype("float32")[0], np.ones((8, 2))
    keras.utils.set_random_seed(0)
    model = _small_model()
    backup = checkpoint.CrashSafeBackup(tmp_path, run_config={"run": 1})
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[backup])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0003", "latest"]
    # A folder half-written by a killed backup is never read, and goes at the next restore.
    (tmp_path / ".epoch-0004.partial-x").mkdir()
    (tmp_path / ".epoch-0004.partial-x" / "model.weights.h5").write_bytes(b"\x89HDF")
    restored = _small_model()
    again = checkpoint.CrashSafeBackup(tmp_path, run_config={"run": 1})
    epochs_done, history = again.restore(restored)
    assert epochs_done == 3 and len(history["loss"]) == 3
    assert int(restored.optimizer.iterations) == 6
    for a, b in zip(
        model.weights + model.optimizer.variables,
        restored.weights + restored.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0003", "latest"]
    with pytest.raises(ValueError, match="belongs to another run configuration"):
        checkpoint.CrashSafeBackup(tmp_path, run_config={"run": 2}).restore(_small_model())


def test_a_backup_in_the_layout_before_epoch_folders_resumes_and_is_rewritten(tmp_path):
    """keras-se 0.x kept `state.json` and `epoch-NNNN.weights.h5` side by side. Such a backup
    (made here from a new one) restores the same weights, digest checked, and leaves the
    folder in today's layout."""
    model = _small_model()
    backup = checkpoint.CrashSafeBackup(tmp_path)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=2, verbose=0, callbacks=[backup])
    state = json.loads((tmp_path / "latest" / "state.json").read_text())
    os.replace(tmp_path / "latest" / "model.weights.h5", tmp_path / "epoch-0002.weights.h5")
    (tmp_path / "state.json").write_text(json.dumps({**state, "weights": "epoch-0002.weights.h5"}))
    shutil.rmtree(tmp_path / "epoch-0002")
    (tmp_path / "latest").unlink()
    restored = _small_model()
    assert checkpoint.CrashSafeBackup(tmp_path).restore(restored)[0] == 2
    for a, b in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "latest"]
    assert (
        json.loads((tmp_path / "latest" / "state.json").read_text())["history"] == state["history"]
    )


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate the weights", r"resume: .*epoch-0002/model.weights.h5 changed after keras-se"),
        # a checkpoint from before the digests: the weights file fails to load
        ("truncate old weights", r"epoch-0002/model.weights.h5' is damaged \(.*truncated file"),
        ("delete the weights", r"epoch-0002/model.weights.h5' is damaged \(missing\)"),
        ("truncate the state", r"epoch-0002/state.json' is damaged \(not valid JSON: "),
        ("replace the state", r"epoch-0002/state.json' is damaged \(not a keras-se training st"),
        ("delete the state", r"epoch-0002/state.json' is damaged \(missing\)"),
        ("delete the epoch", r"/latest' is damaged \(it points to 'epoch-0002', not a folder\)"),
        # a valid file with other values: it would load silently
        ("rewrite the weights", r"resume: .*epoch-0002/model.weights.h5 changed after keras-se"),
    ],
)
def test_a_damaged_backup_is_refused_naming_the_file_and_the_way_out(damage, match, tmp_path):
    model = _small_model()
    backup = checkpoint.CrashSafeBackup(tmp_path)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=2, verbose=0, callbacks=[backup])
    weights, state = tmp_path / "latest" / "model.weights.h5", tmp_path / "latest" / "state.json"
    if damage.startswith("truncate") and damage.endswith("weights"):
        weights.write_bytes(weights.read_bytes()[:1000])
        if damage == "truncate old weights":
            old = json.loads(state.read_text())
            del old["weights_sha256"]
            state.write_text(json.dumps(old))
    elif damage == "delete the weights":
        weights.unlink()
    elif damage == "rewrite the weights":
        model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
        model.save_weights(weights)  # a valid file, other values: only the digest tells
    elif damage == "delete the state":
        state.unlink()
    elif damage == "delete the epoch":
        shutil.rmtree(tmp_path / "epoch-0002")
    elif damage == "truncate the state":
        state.write_text(state.read_text()[:40])
    else:
        state.write_text("[1, 2]")
    with pytest.raises(ValueError, match=match) as error:
        checkpoint.CrashSafeBackup(tmp_path).restore(_small_model())
    assert "--overwrite" in str(error.value) and "\n" not in str(error.value)


def test_a_diverging_fit_stops_at_once_and_keeps_the_last_finite_epoch(tmp_path):
    """Epoch 1 trains normally; from epoch 2 the learning rate is 1e30, the loss becomes
    infinite or NaN, and fit stops there without backing that epoch up."""
    keras.utils.set_random_seed(0)
    model = _small_model()
    backup = checkpoint.CrashSafeBackup(tmp_path)
    explode = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch == 0 else 1e30)
    x, y = np.random.default_rng(0).normal(size=(64, 3)), np.ones((64, 2))
    history = model.fit(
        x, y, epochs=5, batch_size=4, verbose=0, callbacks=[explode, backup]
    ).history
    assert len(history["loss"]) == 2  # stopped in epoch 2, not after epoch 5
    assert backup.diverged.startswith("the training loss became ")
    assert backup.diverged.endswith("of epoch 2")
    state = backup.read_state()
    assert state["epochs_done"] == 1 and all(np.isfinite(state["history"]["loss"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001", "latest"]
    # the negative control: the same run without the explosion finishes all five epochs
    healthy = checkpoint.CrashSafeBackup(tmp_path / "healthy")
    _small_model().fit(x, y, epochs=5, batch_size=4, verbose=0, callbacks=[healthy])
    assert healthy.diverged is None and healthy.read_state()["epochs_done"] == 5
