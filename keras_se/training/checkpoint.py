"""Checkpoints of a training run that a crash (SIGKILL at any moment) cannot corrupt.

Each epoch is committed as one folder, `epoch-NNNN/`: the model and optimizer weights, the
`state.json` that describes them (epochs done, history, digest) and any files the caller adds
(the training job's history). The folder is written under a hidden temporary name, flushed to
disk and renamed; then the symbolic link `latest` is pointed at it in one atomic rename, the
commit. A reader that follows `latest` sees one whole epoch, never a mix of two.
"""

import json
import math
import os
import pathlib
import shutil

import keras

from keras_se import integrity
from keras_se.atomic import fsync_tree, link_atomically, remove_stale_partials, staged
from keras_se.errors import JobFailed

LATEST = "latest"
STATE_FILE = "state.json"
WEIGHTS_FILE = "model.weights.h5"
_EPOCH_GLOB = "epoch-[0-9][0-9][0-9][0-9]*"


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
    each epoch's weights (model and optimizer, so the learning-rate schedule continues), its
    `state.json` (epochs done, history so far, the weights' SHA-256) and the caller's
    `extra_files` go into a new folder `epoch-NNNN/`, and only then does the symbolic link
    `latest` switch to it, in one atomic rename. Older epoch folders are deleted afterwards.
    A run killed mid-epoch resumes at the start of that epoch; no finished epoch is repeated
    or lost, and files committed together always agree.

    Call `restore(model)` after compiling and before `fit`, and pass the epochs it returns
    as `fit(initial_epoch=...)`. A backup in the layout of keras-se 0.x before per-epoch
    folders (`state.json` and `epoch-NNNN.weights.h5` side by side) is restored and
    rewritten in this layout.

    A loss or metric that is not finite stops `fit` at once (at the step where the loss
    became NaN or infinite); that epoch is not backed up, and `diverged` says where it
    happened (None while the run is healthy).

    Args:
        backup_dir: folder of the backup (created at the first epoch's end).
        run_config: a JSON-serializable description of the run. Restoring a backup made by a
            different configuration raises ValueError instead of mixing two runs.
        extra_files: optional `f(folder, history)` that writes more files into each epoch's
            folder before it is committed (the training job writes `history.json` and
            `history.csv` there).
        extra_state: optional JSON-serializable dict saved in every `state.json` (the
            training job keeps its `--xla auto` choice there, so a resumed run makes the
            same one).
        may_grow: keys of `run_config` whose value may be larger than the backup's: the run
            is extended (the training job's `epochs`: a finished run trained further).

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
    >>> os.readlink(backup.backup_dir / "latest")
    'epoch-0002'
    """

    def __init__(
        self, backup_dir, run_config=None, extra_files=None, extra_state=None, may_grow=()
    ):
        super().__init__()
        self.backup_dir = pathlib.Path(backup_dir)
        self.run_config = run_config
        self.may_grow = tuple(may_grow)
        self.extra_files = extra_files
        self.extra_state = dict(extra_state or {})
        self.history = {}
        self.diverged = None
        self._epoch = 0

    @property
    def state_path(self):
        """The path of the committed `state.json` (`latest/state.json`)."""
        return self.backup_dir / LATEST / STATE_FILE

    @property
    def _legacy_state_path(self):
        return self.backup_dir / STATE_FILE

    _remedy = "restore the file, or start the run again with --overwrite (overwrite=True)"

    def _damaged(self, path, cause):
        return ValueError(
            f"The checkpoint file {str(path)!r} is damaged ({cause}), so the run cannot resume; "
            f"{self._remedy}."
        )

    def _committed_folder(self):
        """The folder holding the committed `state.json`, or None when there is no backup."""
        latest = self.backup_dir / LATEST
        if latest.is_symlink():
            if not latest.resolve().is_dir():
                raise self._damaged(latest, f"it points to {os.readlink(latest)!r}, not a folder")
            return latest.resolve()
        return self.backup_dir if self._legacy_state_path.exists() else None

    def read_state(self):
        """The last committed state as a dict, or None when there is no backup.

        Raises:
            ValueError: `state.json` is not the JSON object this class writes.
        """
        folder = self._committed_folder()
        if folder is None:
            return None
        path = folder / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise self._damaged(path, "missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise self._damaged(path, f"not valid JSON: {error}") from None
        if not isinstance(state, dict) or "epochs_done" not in state:
            raise self._damaged(path, "not a keras-se training state")
        return state

    def check_run_config(self):
        """Raise ValueError if the backup on disk was made by another run configuration.

        A missing backup, or a `run_config` of None, passes.
        """
        state = self.read_state()
        if state is None or self.run_config is None:
            return
        saved = state.get("run_config") or {}
        differences = sorted(
            key
            for key in set(saved) | set(self.run_config)
            if saved.get(key) != self.run_config.get(key)
        )
        if differences and not all(self._grew(key, saved) for key in differences):
            raise ValueError(
                f"The backup in {self.backup_dir} belongs to another run configuration "
                f"(it differs in {', '.join(differences) or 'its format'}: saved "
                f"{state.get('run_config')}). Use another output folder, the same settings to "
                "resume it, or overwrite it."
            )

    def _grew(self, key, saved):
        if key not in self.may_grow or key not in saved or key not in self.run_config:
            return False
        return float(self.run_config[key]) > float(saved[key])

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
        folder = self._committed_folder()
        if not {"weights", "history"} <= set(state):
            raise self._damaged(folder / STATE_FILE, "not a keras-se training state")
        weights = folder / state["weights"]
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
        self.set_model(model)
        if folder == self.backup_dir:  # the layout before epoch folders: rewrite it
            self._commit(state["epochs_done"])
        self._remove_uncommitted()
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
        self._commit(epoch + 1)

    def _commit(self, epochs_done):
        """Write `epoch-NNNN/` under a temporary name, rename it, then point `latest` at it."""
        name = f"epoch-{epochs_done:04d}"
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        # A folder of that name was renamed by a run killed before its commit: it is replaced.
        with staged(self.backup_dir / name) as staging:
            folder = staging / name
            folder.mkdir()
            self.model.save_weights(folder / WEIGHTS_FILE)
            state = {
                "epochs_done": epochs_done,
                "weights": WEIGHTS_FILE,
                "weights_sha256": integrity.sha256(folder / WEIGHTS_FILE),
                "history": self.history,
                "run_config": self.run_config,
                **self.extra_state,
            }
            (folder / STATE_FILE).write_text(json.dumps(state, indent=1))
            if self.extra_files is not None:
                self.extra_files(folder, self.history)
            fsync_tree(folder)
        link_atomically(self.backup_dir / LATEST, name)
        self._remove_uncommitted()

    def _remove_uncommitted(self):
        """Delete what the committed epoch replaced: older epoch folders, files of the old
        layout and partial files of killed runs."""
        current = os.readlink(self.backup_dir / LATEST)
        for path in self.backup_dir.glob(_EPOCH_GLOB):
            if path.name != current:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        self._legacy_state_path.unlink(missing_ok=True)
        remove_stale_partials(self.backup_dir)
