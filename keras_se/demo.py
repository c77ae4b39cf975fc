"""A short demo of the layers on real data, offline: scikit-learn's bundled handwritten digits.

It trains a small CNN that uses `SqueezeExcite` and a residual `SelectiveKernel` block, reports
validation accuracy, saves the model as `.keras`, loads it back with `safe_mode=True` and checks
the reloaded model predicts the same. The main job is `keras-se train` (`keras_se.training`).
"""

import pathlib
import tempfile
import time

import keras
import numpy as np

from keras_se.layers import SelectiveKernel, SqueezeExcite

MODEL_FILE = "keras_se_demo.keras"


def load_digits_images(validation_fraction=0.25, seed=0):
    """The 1,797 8x8 digit images bundled with scikit-learn, scaled to [0, 1], split in two.

    Args:
        validation_fraction: share of the images held out for validation.
        seed: seed of the shuffle before the split.

    Returns:
        `((x_train, y_train), (x_val, y_val))` with images of shape `(n, 8, 8, 1)`.

    Example:
    >>> (x_train, y_train), (x_val, y_val) = load_digits_images()
    >>> x_train.shape, x_val.shape
    ((1348, 8, 8, 1), (449, 8, 8, 1))
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1), got {validation_fraction!r}.")
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "The digits data set ships with scikit-learn: pip install 'keras-se[demo]'."
        ) from error
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(images))
    split = round(len(images) * (1 - validation_fraction))
    train, val = order[:split], order[split:]
    return (images[train], labels[train]), (images[val], labels[val])


def _batch_norm():
    # Momentum 0.9 (PyTorch's 0.1): Keras' default 0.99 leaves the moving statistics far from
    # the data after the demo's few hundred steps, and inference accuracy collapses.
    return keras.layers.BatchNormalization(momentum=0.9)


def build_demo_model(input_shape=(8, 8, 1), classes=10):
    """A small CNN: conv -> SE -> residual SK block with SE -> pooling -> classifier.

    Example:
    >>> model = build_demo_model()
    >>> model.output_shape
    (None, 10)
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(_batch_norm()(x))
    x = SqueezeExcite(ratio=8, name="stem_se")(x)
    shortcut = x
    x = SelectiveKernel(filters=32, ratio=8, min_channels=8, name="block_sk")(x)
    x = keras.layers.Conv2D(32, 1, use_bias=False)(x)
    x = SqueezeExcite(ratio=8, name="block_se")(_batch_norm()(x))
    x = keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="keras_se_demo")


def fit_on_digits(model, epochs, batch_size=32, learning_rate=1e-3, seed=0, verbose=0):
    """Train a 10-class softmax `model` on the digits and return its validation accuracy.

    The images are reshaped to the model's input shape, so a model may read them as 8x8x1
    images or as sequences of 8 rows with 8 features. Compiles with Adam and sparse
    cross-entropy.

    Returns:
        `(val_accuracy, (x_val, y_val))`, with the validation data in the model's input shape.

    Example:
    >>> model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10, activation="softmax")])
    >>> accuracy, _ = fit_on_digits(model, epochs=20)
    >>> accuracy > 0.85  # a linear classifier; the demo's SE/SK network reaches ~97%
    True
    """
    (x_train, y_train), (x_val, y_val) = load_digits_images(seed=seed)
    x_train, x_val = (x.reshape((-1, *model.input_shape[1:])) for x in (x_train, x_val))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
    )
    return float(model.evaluate(x_val, y_val, verbose=0)[1]), (x_val, y_val)


def run_demo(epochs=15, batch_size=64, output_dir=None, seed=0, verbose=1):
    """Train the demo model on the digits, save and reload it; return a summary dict.

    Args:
        epochs: training epochs (each takes under a second on two CPU cores).
        batch_size: batch size.
        output_dir: folder for the `.keras` file; a new temporary folder when None. An
            existing model file there is never overwritten.
        seed: seed of the data split and of Keras' random generators.
        verbose: Keras' progress output (0 silences it and the summary).

    Returns:
        A dict with `val_accuracy`, `seconds`, `model_path` and `reload_max_abs_diff`.

    Example:
    >>> summary = run_demo(epochs=1, verbose=0)
    >>> sorted(summary)
    ['model_path', 'reload_max_abs_diff', 'seconds', 'val_accuracy']
    """
    output_dir = pathlib.Path(output_dir or tempfile.mkdtemp(prefix="keras_se_demo_"))
    model_path = output_dir / MODEL_FILE
    if model_path.exists():
        raise FileExistsError(
            f"{model_path} already exists; choose another output folder or remove the file."
        )
    output_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(seed)
    model = build_demo_model()
    start = time.perf_counter()
    val_accuracy, (x_val, _) = fit_on_digits(
        model, epochs, batch_size, learning_rate=3e-3, seed=seed, verbose=verbose
    )
    seconds = time.perf_counter() - start

    model.save(model_path)
    reloaded = keras.saving.load_model(model_path, safe_mode=True)
    difference = np.max(
        np.abs(reloaded.predict(x_val, verbose=0) - model.predict(x_val, verbose=0))
    )
    summary = {
        "val_accuracy": val_accuracy,
        "seconds": seconds,
        "model_path": str(model_path),
        "reload_max_abs_diff": float(difference),
    }
    if verbose:
        print(
            f"\nkeras-se demo ({keras.backend.backend()} backend): validation accuracy "
            f"{val_accuracy:.2%} on {len(x_val)} held-out digits after {epochs} epochs in "
            f"{seconds:.1f} s.\nSaved {model_path}; reloaded with safe_mode=True, max abs "
            f"difference of predictions {difference:.2e}."
        )
    return summary
