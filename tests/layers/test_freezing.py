"""Frozen SE and SK layers stay frozen through `get_config`, a `.keras` file and `fit`
(tests/test_backends.py runs this module on the other backends too)."""

import keras
import numpy as np
import pytest
from harness import random_batch, to_numpy

from keras_se import SelectiveKernel, SqueezeExcite

LAYERS = {
    "se_channel": lambda: SqueezeExcite(ratio=4),
    "se_spatial": lambda: SqueezeExcite(mode="spatial"),
    "se_concurrent": lambda: SqueezeExcite(ratio=4, mode="concurrent"),
    "sk_2_branches": lambda: SelectiveKernel(filters=8, min_channels=4),
    "sk_3_branches": lambda: SelectiveKernel(filters=8, dilation_rate=[1, 2, 3], min_channels=4),
}


def _model_around(layer):
    """The layer between an input and a small trainable head, as in transfer learning."""
    inputs = keras.Input((6, 6, 8))
    features = keras.layers.GlobalAveragePooling2D()(layer(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(features))


def _fit(model):
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(random_batch((8, 6, 6, 8), seed=1), np.ones((8, 2)), epochs=2, verbose=0)


def _frozen_everywhere(layer):
    return not layer.trainable_weights and not any(
        variable.trainable or sublayer.trainable
        for sublayer in layer._flatten_layers()
        for variable in sublayer.weights
    )


@pytest.mark.parametrize("name", LAYERS)
def test_a_frozen_layer_stays_frozen_after_reloading_and_fit_leaves_it_unchanged(name, tmp_path):
    """Its inner Dense, BatchNorm and convolution layers are created in `build`, after
    `from_config` has set `trainable=False`: they used to come back trainable (0 -> 14
    trainable tensors in a small model), and `fit` changed them and SK's BN statistics."""
    keras.utils.set_random_seed(0)
    layer = LAYERS[name]()
    model = _model_around(layer)
    layer.trainable = False
    model.save(tmp_path / "frozen.keras")
    loaded = keras.saving.load_model(tmp_path / "frozen.keras", safe_mode=True)
    reloaded = loaded.layers[1]
    clone = type(layer).from_config(layer.get_config())
    clone.build((None, 6, 6, 8))
    assert [_frozen_everywhere(x) for x in (layer, reloaded, clone)] == [True] * 3
    assert [w.path for w in loaded.trainable_weights] == ["head/kernel", "head/bias"]
    before = [to_numpy(w) for w in reloaded.weights]  # BatchNorm statistics included
    _fit(loaded)
    for saved, now in zip(before, reloaded.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(now), saved, err_msg=now.path)
    # The negative control: unfrozen, the same layer's weights all move in the same fit.
    keras.utils.set_random_seed(0)
    trainable = LAYERS[name]()
    model = _model_around(trainable)
    before = [to_numpy(w) for w in trainable.weights]
    _fit(model)
    after = [to_numpy(w) for w in trainable.weights]
    assert not any(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
