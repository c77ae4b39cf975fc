"""SqueezeExcite inside a Sequential CNN, trained on scikit-learn's bundled digits.

Run: python examples/se_sequential.py   (needs `pip install "keras-se[examples]"` and a backend)
"""

import keras
from digits import fit_on_digits  # examples/digits.py, next to this file

import keras_se


def main(epochs=30):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras_se.SqueezeExcite(ratio=8),  # channel attention (the paper's SE)
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras_se.SqueezeExcite(ratio=8, mode="concurrent"),  # scSE: channel + spatial
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    accuracy, _ = fit_on_digits(model, epochs)  # compile with Adam, fit, evaluate
    print(f"Sequential SE CNN: validation accuracy {accuracy:.2%}")
    return model, accuracy


if __name__ == "__main__":
    main()
