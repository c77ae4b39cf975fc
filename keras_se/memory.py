"""This process's memory: its peak so far, and freed memory handed back to the system.

`keras-se export` reports its peak, and frees what it no longer needs between the steps of a
conversion, so that the next step's peak does not come on top of it.
"""

import gc
import sys


def peak_bytes():
    """This process's peak resident memory so far, in bytes (None where the `resource` module
    does not exist, as on Windows).

    Example:
    >>> peak_bytes() > 10_000_000
    True
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def release():
    """Collect garbage and hand the freed heap back to the system (glibc keeps it otherwise).

    Example:
    >>> chunk = bytearray(200_000_000)
    >>> del chunk
    >>> release()
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
