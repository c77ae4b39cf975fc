"""SqueezeExcite on 1D feature maps in a functional model, saved and reloaded as `.keras`.

Each 8x8 digit is read as a sequence of 8 rows with 8 features; the SE layer infers its
channels and works the same on rank-3 (1D), rank-4 (2D) and rank-5 (3D) inputs.

Run: python examples/se_functional.py   (needs `pip install "keras-se[examples]"` and a backend)
"""

import pathlib
import tempfile

import keras
import numpy as np
from digits import fit_on_digits  # examples/digits.py, next to this file

import keras_se


def main(epochs=20):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8))  # each digit as 8 rows of 8 features
    x = keras.layers.Conv1D(48, 3, padding="same", activation="relu")(inputs)
    x = keras_se.SqueezeExcite(ratio=4, squeeze="avg_max", gate="hard_sigmoid", name="se1")(x)
    x = keras.layers.Conv1D(48, 3, padding="same", activation="relu")(x)
    x = keras_se.SqueezeExcite(ratio=4, name="se2")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs, name="se_1d")
    accuracy, (x_val, _) = fit_on_digits(model, epochs)  # compile with Adam, fit, evaluate

    path = pathlib.Path(tempfile.mkdtemp()) / "se_1d.keras"
    model.save(path)
    # `import keras_se` registers the layers; safe_mode=True loads no arbitrary code.
    reloaded = keras.saving.load_model(path, safe_mode=True)
    same = np.allclose(reloaded.predict(x_val, verbose=0), model.predict(x_val, verbose=0))
    print(
        f"1D SE model: validation accuracy {accuracy:.2%}; reloaded predictions identical: {same}"
    )
    return reloaded, accuracy, same


if __name__ == "__main__":
    main()
