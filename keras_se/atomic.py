"""Files that a crash (SIGKILL at any moment) cannot corrupt.

Every file is written under a temporary name in its final folder, flushed to disk, then
renamed over the target with `os.replace`, which is atomic: a reader sees the old file or the
new one, never half of one. The training job, the weights cache and `convert-timm` write
through these.
"""

import contextlib
import os
import pathlib
import tempfile


def _fsync_folder(folder):
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _mode_for(path):
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; when the block succeeds, rename it to `path`.

    The temporary name keeps `path`'s suffixes (Keras checks `.keras` / `.weights.h5`). On
    an error the temporary file is removed and `path` is left as it was. The file gets the
    permissions of the file it replaces, or those of a new file under the umask (a plain
    temporary file would be readable by its owner only).

    Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(target) as partial:
    ...     _ = partial.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = pathlib.Path(path)
    suffix = "".join(path.suffixes)
    descriptor, name = tempfile.mkstemp(
        prefix=f".{path.name.removesuffix(suffix)}.partial-", suffix=suffix, dir=path.parent
    )
    os.close(descriptor)
    partial = pathlib.Path(name)
    try:
        yield partial
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, _mode_for(path))
        os.replace(partial, path)
        _fsync_folder(path.parent)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path, text):
    """Write `text` to `path` atomically.

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_text_atomically(path, "{}")
    >>> path.read_text()
    '{}'
    """
    with atomic_path(path) as partial:
        partial.write_text(text)


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file: `path` is complete or untouched.

    Example:
    >>> import tempfile, pathlib, keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.keras"
    >>> save_model_atomically(model, path)
    >>> keras.saving.load_model(path).output_shape
    (None, 1)
    """
    with atomic_path(path) as partial:
        model.save(partial)
