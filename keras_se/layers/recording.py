"""What the attention layers computed in a forward pass, handed to whoever asked for it.

`SqueezeExcite` and `SelectiveKernel` report their gates and branch weights through
`report`; it does nothing unless a `recording` is active, so a model runs exactly as before.
`keras_se.inspect` records while it calls a model eagerly on a batch.
"""

import contextlib
import contextvars

_RECEIVER = contextvars.ContextVar("keras_se_attention_receiver", default=None)


def report(layer, kind, value):
    """Hand `value` (what `layer` computed, named by `kind`) to the active recording, if any.

    Example:
    >>> report(None, "channel", 0.5)  # no recording: nothing happens
    """
    receiver = _RECEIVER.get()
    if receiver is not None:
        receiver(layer, kind, value)


@contextlib.contextmanager
def recording(receiver):
    """Call `receiver(layer, kind, value)` for every value the layers report meanwhile.

    Example:
    >>> seen = []
    >>> with recording(lambda layer, kind, value: seen.append((kind, value))):
    ...     report(None, "channel", 0.5)
    >>> seen
    [('channel', 0.5)]
    """
    token = _RECEIVER.set(receiver)
    try:
        yield
    finally:
        _RECEIVER.reset(token)
