"""Files that a crash (SIGKILL at any moment) cannot corrupt.

Every file is written under a temporary name in its final folder (`.NAME.partial-*`), flushed
to disk, then renamed over the target with `os.replace`, which is atomic: a reader sees the old
file or the new one, never half of one. The training job, the weights cache, `convert-timm`
and `export` write through these. A kill leaves only a hidden partial file, which the next
run into the same folder removes (`remove_stale_partials`).
"""

import contextlib
import ctypes
import errno
import os
import pathlib
import secrets
import shutil
import tempfile

PARTIAL_MARK = ".partial-"


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
        prefix=f".{path.name.removesuffix(suffix)}{PARTIAL_MARK}", suffix=suffix, dir=path.parent
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


def link_atomically(link, target):
    """Make `link` a symbolic link to `target` (a path relative to `link`'s folder), replacing
    what `link` was in one atomic step: a reader follows the old link or the new one.

    The training job commits each epoch by pointing `checkpoints/latest` at its folder.

    Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("epoch-1", "epoch-2"):
    ...     (root / name).mkdir()
    >>> link_atomically(root / "latest", "epoch-1")
    >>> link_atomically(root / "latest", "epoch-2")
    >>> os.readlink(root / "latest")
    'epoch-2'
    """
    link = pathlib.Path(link)
    partial = link.parent / f".{link.name}{PARTIAL_MARK}{secrets.token_hex(4)}"
    os.symlink(target, partial)
    try:
        os.replace(partial, link)
    finally:
        partial.unlink(missing_ok=True)
    _fsync_folder(link.parent)


def fsync_tree(folder):
    """Flush every file of `folder` (not recursive) and the folder itself to disk.

    Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "state.json").write_text("{}")
    >>> fsync_tree(folder)
    """
    for path in pathlib.Path(folder).iterdir():
        if path.is_file() and not path.is_symlink():
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
    _fsync_folder(folder)


def remove_stale_partials(folder, name="*"):
    """Remove the partial files and folders that killed writes left in `folder`; return them.

    Only `.NAME.partial-*` entries are touched (NAME matching the glob `name`). Call it where
    no other process is writing into `folder` (a run folder, an export target's folder).

    Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".model.partial-x1y2.keras").write_text("half")
    >>> _ = (folder / "model.keras").write_text("whole")
    >>> [path.name for path in remove_stale_partials(folder)]
    ['.model.partial-x1y2.keras']
    >>> sorted(path.name for path in folder.iterdir())
    ['model.keras']
    """
    removed = sorted(pathlib.Path(folder).glob(f".{name}{PARTIAL_MARK}*"))
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def _exchange(first, second):
    """Swap two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where the
    system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not glibc >= 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # kernel or file system cannot
        return False
    raise OSError(code, os.strerror(code), os.fspath(first), None, os.fspath(second))


@contextlib.contextmanager
def staged(path):
    """Yield a fresh hidden folder next to `path`; the block writes `folder / path.name` (a
    file or a folder), which then replaces `path` in one step (`replace_path`). The folder is
    removed in every case, and so are those that killed writes of `path` left earlier.

    `export` writes its files and SavedModel folders through this, and the training job
    each epoch's checkpoint folder.

    Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "epoch-0001"
    >>> with staged(target) as folder:
    ...     (folder / target.name).mkdir()
    ...     _ = (folder / target.name / "state.json").write_text("{}")
    >>> [path.name for path in target.iterdir()], len(list(target.parent.iterdir()))
    (['state.json'], 1)
    """
    path = pathlib.Path(path)
    remove_stale_partials(path.parent, path.name)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}{PARTIAL_MARK}", dir=path.parent))
    try:
        yield staging
        replace_path(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_path(source, target):
    """Move the file or folder `source` to `target`, replacing what is there in one step.

    A file replaces a file atomically everywhere (`os.replace`). A folder replacing a folder
    is swapped atomically where Linux allows (`renameat2`), then the old one is deleted;
    elsewhere the old folder is moved aside first, and a kill between the two renames leaves
    it at `.NAME.replaced-*` next to `target`.

    Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("old", "new"):
    ...     (root / name).mkdir()
    ...     _ = (root / name / "version.txt").write_text(name)
    >>> replace_path(root / "new", root / "old")
    >>> (root / "old" / "version.txt").read_text(), (root / "new").exists()
    ('new', False)
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    if not (source.is_dir() and target.is_dir()):
        os.replace(source, target)
    elif _exchange(source, target):
        shutil.rmtree(source)
    else:
        aside = pathlib.Path(
            tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent)
        )
        os.replace(target, aside / target.name)
        os.replace(source, target)
        shutil.rmtree(aside)
    _fsync_folder(target.parent)
