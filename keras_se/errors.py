"""Errors of keras-se's jobs that are not the user's input.

Bad input raises `ValueError` / `TypeError` before any work (the CLI: one line, exit code 2);
`JobFailed` means the work started and could not finish (the CLI: one line, exit code 1).

Example:
>>> isinstance(JobFailed("the loss became nan"), RuntimeError)
True
"""


class JobFailed(RuntimeError):
    """The job ran and failed for a reason its message names (e.g. a diverged training run).

    Example:
    >>> raise JobFailed("Training diverged: the training loss became nan in epoch 3")
    Traceback (most recent call last):
    ...
    keras_se.errors.JobFailed: Training diverged: the training loss became nan in epoch 3
    """
