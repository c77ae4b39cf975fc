"""A custom residual bottleneck with SelectiveKernel and SqueezeExcite (SKNet-style).

Run: python examples/sk_residual_block.py   (needs `pip install "keras-se[examples]"` and a backend)
"""

import keras
from digits import fit_on_digits  # examples/digits.py, next to this file

import keras_se


def sk_bottleneck(x, filters, strides=1, groups=4, select="softmax", name="block"):
    """1x1 reduce -> SK 3x3 (two branches, grouped) -> 1x1 expand -> SE, plus a shortcut.

    `select`: how the SK layer weighs its branches (`"softmax"`, the paper's, or `"sigmoid"`).
    """
    width = filters // 2
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_proj"
        )(x)
        shortcut = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
    x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_reduce")(x)
    x = keras.layers.ReLU()(
        keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_reduce_bn")(x)
    )
    x = keras_se.SelectiveKernel(
        filters=width,
        strides=strides,
        groups=groups,
        ratio=4,
        min_channels=8,
        select=select,
        name=f"{name}_sk",
    )(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_expand")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_expand_bn")(x)
    x = keras_se.SqueezeExcite(ratio=8, name=f"{name}_se")(x)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add()([x, shortcut]))


def sk_resnet_tiny(select="softmax"):
    """A stem and two residual SK bottlenecks for the 8x8 digits, 10 classes."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = sk_bottleneck(x, 64, select=select, name="block1")
    # 8x8 -> 4x4; the dilated branch too
    x = sk_bottleneck(x, 64, strides=2, select=select, name="block2")
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="sk_resnet_tiny")


def main(epochs=10):
    keras.utils.set_random_seed(0)
    model = sk_resnet_tiny()
    accuracy, _ = fit_on_digits(model, epochs)  # compile with Adam, fit, evaluate
    print(f"Residual SK network: validation accuracy {accuracy:.2%}")
    return model, accuracy


if __name__ == "__main__":
    main()
