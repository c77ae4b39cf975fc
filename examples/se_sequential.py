"""SqueezeExcite inside a Sequential CNN, trained on scikit-learn's bundled digits.

Run: python examples/se_sequential.py   (needs `pip install "keras-se[demo]"` and a backend)
"""

import keras

import keras_se
from keras_se.demo import load_digits_images


def main(epochs=30):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_digits_images()
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
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_val, y_val, verbose=0)[1]
    print(f"Sequential SE CNN: validation accuracy {accuracy:.2%}")
    return model, accuracy


if __name__ == "__main__":
    main()
