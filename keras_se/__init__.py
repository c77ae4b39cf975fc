"""keras-se: Squeeze-and-Excitation and Selective Kernel attention for Keras 3.

`import keras_se` imports the layers, which registers them as serializable Keras objects:
`keras.saving.load_model` then reads files that contain them.

Example:
>>> import keras, keras_se
>>> inputs = keras.Input((32, 32, 64))
>>> outputs = keras_se.SqueezeExcite(ratio=16)(inputs)
>>> keras.Model(inputs, outputs).count_params()
580
"""

import importlib
import sys

__version__ = "0.1.0"

__all__ = [
    "SelectiveKernel",
    "SqueezeExcite",
    "__version__",
    "applications",
    "inspect",
    "make_divisible",
]


def import_api():
    """Import the layers, `keras_se.applications` and `keras_se.inspect` (and so Keras).

    `import keras_se` runs it, except inside the `keras-se` console script, which runs it
    once its arguments are parsed (see `keras_se_launcher`).

    Example:
    >>> import_api().SqueezeExcite.__name__
    'SqueezeExcite'
    """
    layers = importlib.import_module("keras_se.layers")
    importlib.import_module("keras_se.applications")
    importlib.import_module("keras_se.inspect")
    module = sys.modules[__name__]
    for name in ("SelectiveKernel", "SqueezeExcite", "make_divisible"):
        setattr(module, name, getattr(layers, name))
    return module


def __getattr__(name):
    """The public API before `import_api` ran (in the console script): import it first."""
    if name in __all__:
        return getattr(import_api(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "keras_se_launcher" not in sys.modules:
    import_api()
