"""The CIFAR-10 notebooks' "SENet-18" in Keras: `keras_se.applications.SEResNet18CIFAR`.

The model most people first meet SE in is a ResNet-18 for 32x32 images with an SE block in
every basic block (a 3x3 stem without max pool, 4x4 average pool, 11,263,042 parameters). Here
it is built with the `keras.applications` signature and trained the notebooks' way: SGD with
momentum 0.9 and weight decay 5e-4, the learning rate 0.1 annealed by a cosine.

By default it trains on real data that needs no download: scikit-learn's digits, enlarged
from 8x8 to 32x32 and repeated into three channels, the shape of a CIFAR-10 image (no flips:
digits are not mirror-symmetric). With `--cifar10` it trains on CIFAR-10 itself, with the
notebooks' random crops and flips (Keras downloads it once, 170 MB; 200 epochs reach about 95%
there, which takes a GPU).

Run: python examples/cifar_senet18.py [--cifar10] [--epochs N]
     (needs `pip install "keras-se[examples]"` and a backend)
"""

import argparse

import keras
import numpy as np
from digits import load_digits_images  # examples/digits.py, next to this file
from keras_se.applications import SEResNet18CIFAR


def digits_as_cifar_images():
    """The digits as 32x32 RGB images in [0, 1] (each pixel repeated 4x4, gray in 3 channels)."""
    (x_train, y_train), (x_val, y_val) = load_digits_images()

    def enlarge(images):
        return images.repeat(4, axis=1).repeat(4, axis=2).repeat(3, axis=3)

    return (enlarge(x_train), y_train), (enlarge(x_val), y_val)


def cifar10_images():
    """CIFAR-10 in [0, 1] (downloaded by Keras on first use)."""
    (x_train, y_train), (x_val, y_val) = keras.datasets.cifar10.load_data()
    return (x_train / np.float32(255), y_train.ravel()), (x_val / np.float32(255), y_val.ravel())


def main(epochs=3, cifar10=False, batch_size=64):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = cifar10_images() if cifar10 else digits_as_cifar_images()
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2))
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Normalization(mean=mean, variance=std**2)(inputs)
    if cifar10:  # the notebooks' augmentation: 4-pixel padded random crops, horizontal flips
        x = keras.layers.ZeroPadding2D(4)(x)
        x = keras.layers.RandomCrop(32, 32)(x)
        x = keras.layers.RandomFlip("horizontal")(x)
    senet18 = SEResNet18CIFAR(weights=None, input_shape=(32, 32, 3), classes=10)
    model = keras.Model(inputs, senet18(x), name="senet18_cifar")

    steps = epochs * -(-len(x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(0.1 * batch_size / 128, steps)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    accuracy = float(model.evaluate(x_val, y_val, batch_size=256, verbose=0)[1])
    parameters = sum(int(np.prod(weight.shape)) for weight in senet18.trainable_weights)
    print(
        f"SENet-18 ({parameters:,} parameters) after {epochs} epochs on "
        f"{'CIFAR-10' if cifar10 else 'the digits at 32x32'}: validation accuracy {accuracy:.2%}"
    )
    return model, accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar10", action="store_true", help="train on CIFAR-10 (download)")
    parser.add_argument("--epochs", type=int, default=3)
    arguments = parser.parse_args()
    main(epochs=arguments.epochs, cifar10=arguments.cifar10)
