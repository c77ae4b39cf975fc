"""The data and training loop the examples share: scikit-learn's bundled handwritten digits.

Real data without a download, on any Keras backend (no TensorFlow needed). The examples import
it as a sibling module, so copy this file along with the example you copy. `keras-se train`
reads the same digits as its embedded `sklearn_digits` dataset, through tensorflow-datasets.
"""

import keras
import numpy as np


def load_digits_images(validation_fraction=0.25, seed=0):
    """The 1,797 8x8 digit images bundled with scikit-learn, scaled to [0, 1], split in two.

    Args:
        validation_fraction: share of the images held out for validation, in (0, 1).
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
            "The examples train on the digits bundled with scikit-learn: "
            "pip install 'keras-se[examples]'."
        ) from error
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(images))
    split = round(len(images) * (1 - validation_fraction))
    train, val = order[:split], order[split:]
    return (images[train], labels[train]), (images[val], labels[val])


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
    >>> accuracy > 0.85  # a linear classifier; the SE/SK networks of the examples reach ~97%
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
