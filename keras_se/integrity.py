"""SHA-256 digests of the files keras-se writes, so that a changed file is refused, not used.

A checkpoint's `state.json` records the digest of the weights file it points to, and a run's
`summary.json` the digest of its `model.keras`; both are written atomically after the file
they describe, so a digest and its file never disagree because of a kill. Resuming, exporting
and loading a run's model check the file against its digest first.

Example:
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "weights.h5"
>>> _ = path.write_bytes(b"weights")
>>> digest = sha256(path)
>>> check(path, digest)
>>> _ = path.write_bytes(b"weighTs")
>>> check(path, digest)
Traceback (most recent call last):
...
ValueError: ...weights.h5 changed after keras-se wrote it (SHA-256 ...
"""

import hashlib
import json
import pathlib

CHUNK_BYTES = 1 << 20


def sha256(path):
    """The SHA-256 of the file at `path`, as 64 hex digits (read 1 MiB at a time).

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = path.write_bytes(b"")
    >>> sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check(path, expected, remedy="restore it, or write it again"):
    """Raise ValueError if the file at `path` does not have the SHA-256 `expected`.

    `expected` None (a file written before keras-se recorded digests) passes.

    Example:
    >>> check("any/file/at/all", None)  # no digest recorded: nothing to check
    """
    if expected is None:
        return
    actual = sha256(path)
    if actual != expected:
        raise ValueError(
            f"{path} changed after keras-se wrote it (SHA-256 {actual[:16]}..., recorded "
            f"{expected[:16]}...): it is damaged or was edited; {remedy}."
        )


def run_summary(path):
    """The `summary.json` of the training run whose model is the `.keras` file at `path`, as
    a dict, or None for a file that is not a finished run's model.

    Example:
    >>> run_summary("/nonexistent/model.keras") is None
    True
    """
    path = pathlib.Path(path)
    try:
        summary = json.loads((path.parent / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    if pathlib.Path(str(summary.get("model_path", ""))).name != path.name:
        return None
    return summary


def run_model_digest(path):
    """The SHA-256 that a training run recorded for its `.keras` file at `path` (in the
    `summary.json` next to it), or None for a file that is not a run's model.

    Example:
    >>> run_model_digest("/nonexistent/model.keras") is None
    True
    """
    return (run_summary(path) or {}).get("model_sha256")
