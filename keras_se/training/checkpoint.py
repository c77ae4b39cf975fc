"""Checkpoints of a training run that a crash (SIGKILL at any moment) cannot corrupt.

Each epoch's weights and the `state.json` that points at them are written atomically
(`keras_se.atomic`), so a killed run resumes from its last finished epoch.
"""

import json
import math
import pathlib

import keras

from keras_se import integrity
from keras_se.atomic import atomic_path, write_text_atomically
from keras_se.errors import JobFailed

STATE_FILE = "state.json"


class TrainingDiverged(JobFailed):
    """The loss (or another metric) stopped being a finite number: the run stopped there.

    Example:
    >>> issubclass(TrainingDiverged, JobFailed)  # so `keras-se train` exits with 1
    True
    """


class CrashSafeBackup(keras.callbacks.Callback):
    """Back up the model and optimizer after every epoch so that a killed run can resume.

    Unlike `keras.callbacks.BackupAndRestore`, which overwrites its weights file in place and
    records the epoch in a second file, a SIGKILL at any moment leaves a consistent backup:
    each epoch's weights (model and optimizer, so the learning-rate schedule continues) go to
    a new `epoch-NNNN.weights.h5`, and only then does an atomically replaced `state.json`
    point to them and record the epochs done and the history so far. Older weights files are
    deleted afterwards. A run killed mid-epoch resumes at the start of that epoch; no
    finished epoch is repeated or lost.

    Call `restore(model)` after compiling and before `fit`, and pass the epochs it returns
    as `fit(initial_epoch=...)`.

    A loss or metric that is not finite stops `fit` at once (at the step where the loss
    became NaN or infinite); that epoch is not backed up, and `diverged` says where it
    happened (None while the run is healthy).

    Args:
        backup_dir: folder of the backup (created at the first epoch's end).
        run_config: a JSON-serializable description of the run. Restoring a backup made by a
            different configuration raises ValueError instead of mixing two runs.
        on_epoch_saved: optional `f(epochs_done, history)` called after each backup (the
            training job writes its history files there).
        extra_state: optional JSON-serializable dict saved in every `state.json` (the
            training job keeps its `--xla auto` choice there, so a resumed run makes the
            same one).

    Example:
    >>> import tempfile, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> backup = CrashSafeBackup(tempfile.mkdtemp())
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[backup])
    >>> fresh = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> fresh.compile("sgd", "mse")
    >>> epochs_done, history = backup.restore(fresh)
    >>> epochs_done, len(history["loss"]), int(fresh.optimizer.iterations)
    (2, 2, 2)
    """

    def __init__(self, backup_dir, run_config=None, on_epoch_saved=None, extra_state=None):
        super().__init__()
        self.backup_dir = pathlib.Path(backup_dir)
        self.run_config = run_config
        self.on_epoch_saved = on_epoch_saved
        self.extra_state = dict(extra_state or {})
        self.history = {}
        self.diverged = None
        self._epoch = 0

    @property
    def state_path(self):
        """The path of `state.json`."""
        return self.backup_dir / STATE_FILE

    _remedy = "restore the file, or start the run again with --overwrite (overwrite=True)"

    def _damaged(self, path, cause):
        return ValueError(
            f"The checkpoint file {str(path)!r} is damaged ({cause}), so the run cannot resume; "
            f"{self._remedy}."
        )

    def read_state(self):
        """The last saved state as a dict, or None when there is no backup.

        Raises:
            ValueError: `state.json` is not the JSON object this class writes.
        """
        if not self.state_path.exists():
            return None
        try:
            state = json.loads(self.state_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise self._damaged(self.state_path, f"not valid JSON: {error}") from None
        if not isinstance(state, dict) or "epochs_done" not in state:
            raise self._damaged(self.state_path, "not a keras-se training state")
        return state

    def check_run_config(self):
        """Raise ValueError if the backup on disk was made by another run configuration.

        A missing backup, or a `run_config` of None, passes.
        """
        state = self.read_state()
        if state is None or self.run_config is None:
            return
        if state.get("run_config") != self.run_config:
            differences = sorted(
                key
                for key in set(state.get("run_config") or {}) | set(self.run_config)
                if (state.get("run_config") or {}).get(key) != self.run_config.get(key)
            )
            raise ValueError(
                f"The backup in {self.backup_dir} belongs to another run configuration "
                f"(it differs in {', '.join(differences) or 'its format'}: saved "
                f"{state.get('run_config')}). Use another output folder, the same settings to "
                "resume it, or overwrite it."
            )

    def restore(self, model):
        """Load the last backup into the compiled `model`: `(epochs_done, history)`.

        Returns `(0, {})` when there is no backup.
        """
        state = self.read_state()
        if state is None:
            return 0, {}
        self.check_run_config()
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if not {"weights", "history"} <= set(state):
            raise self._damaged(self.state_path, "not a keras-se training state")
        weights = self.backup_dir / state["weights"]
        if not weights.is_file():
            raise self._damaged(weights, "missing")
        try:
            integrity.check(weights, state.get("weights_sha256"), self._remedy)
        except ValueError as error:
            raise ValueError(f"The run cannot resume: {error}") from None
        try:
            model.load_weights(weights)
        except (OSError, ValueError) as error:  # h5py: OSError; Keras: ValueError
            cause = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self._damaged(weights, cause) from None
        self.history = {key: list(values) for key, values in state["history"].items()}
        return state["epochs_done"], self.history

    def on_train_begin(self, logs=None):
        self.diverged = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # As keras.callbacks.TerminateOnNaN: stop at the first step whose loss is not finite.
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (
                f"the training loss became {float(loss)} at step {batch + 1} of epoch "
                f"{self._epoch + 1}"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        bad = sorted(key for key, value in (logs or {}).items() if not math.isfinite(value))
        if self.diverged is None and bad:
            self.diverged = f"{', '.join(bad)} became {logs[bad[0]]} in epoch {epoch + 1}"
        if self.diverged is not None:
            # Nothing of this epoch is kept: the last backup is the last finite state.
            self.model.stop_training = True
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.backup_dir / weights) as partial:
            self.model.save_weights(partial)
        state = {
            "epochs_done": epoch + 1,
            "weights": weights,
            "weights_sha256": integrity.sha256(self.backup_dir / weights),
            "history": self.history,
            "run_config": self.run_config,
            **self.extra_state,
        }
        write_text_atomically(self.state_path, json.dumps(state, indent=1))
        for old in self.backup_dir.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink(missing_ok=True)
        if self.on_epoch_saved is not None:
            self.on_epoch_saved(epoch + 1, self.history)
