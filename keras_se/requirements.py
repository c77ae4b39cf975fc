"""Checks that a job can run where it was started (its backend, its packages), made before
any work.

Example:
>>> require_tensorflow("The demo", "it uses tf.data", modules=("numpy",), extra="demo")
"""

import importlib


def require_tensorflow(job, reason, modules, extra):
    """Raise a clear error unless Keras runs on TensorFlow and every module imports.

    Args:
        job: What needs it, as the start of a sentence ("The training job").
        reason: Why it needs TensorFlow ("tf.data and tf.distribute").
        modules: Import names the job needs.
        extra: The keras-se extra that installs them.

    Raises:
        ValueError: the Keras backend is not TensorFlow.
        ImportError: a module is missing; the message gives the pip command.

    Example:
    >>> require_tensorflow("Export", "it converts graphs", modules=(), extra="export")
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{job} runs on the TensorFlow backend ({reason}), but KERAS_BACKEND is "
            f"{backend!r}. Run it with KERAS_BACKEND=tensorflow."
        )
    require_modules(job, modules, f"tensorflow-cpu,{extra}")


def require_modules(job, modules, extras):
    """Raise an ImportError naming the pip command unless every module imports.

    Args:
        job: What needs them, as the start of a sentence ("Export").
        modules: Import names the job needs.
        extras: The keras-se extras that install them (`"torch,export"`).

    Example:
    >>> require_modules("Export", ("no_such_module",), "export")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ImportError: Export needs no_such_module, which is not installed. Install it with: ...
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ImportError(
                f"{job} needs {module}, which is not installed. Install it with: "
                f'pip install "keras-se[{extras}]".'
            ) from None
