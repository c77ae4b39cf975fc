"""The applications on every Keras backend and in both data formats.

`tests/test_backends.py` runs this file again on the backends other than the current one, so
SE and SK models are built, trained, saved and run channels_first on TensorFlow, JAX and
PyTorch.
"""

import keras
import numpy as np
import pytest
from harness import check_keras_file_round_trip, random_batch, runs_channels_first, to_numpy

from keras_se import applications

CONSTRUCTORS = [applications.SEResNet18, applications.SKResNet18]
ATTENTION = {applications.SEResNet18: "se", applications.SKResNet18: "sk"}
# Models of the other families, small enough for every backend: (constructor, options, size).
OTHER_FAMILIES = {
    "SEBNInception": (applications.SEBNInception, {}, 45),
    "SEMobileNet": (applications.SEMobileNet, {"alpha": 0.25}, 45),
    "SEMobileNetV2": (applications.SEMobileNetV2, {"alpha": 0.35}, 45),
    "SEShuffleNet": (applications.SEShuffleNet, {}, 45),
}


@pytest.fixture
def channels_first():
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format("channels_last")


@pytest.mark.parametrize("constructor", CONSTRUCTORS, ids=lambda c: c.__name__)
def test_channels_first_builds_with_the_same_weights(constructor, channels_first):
    model = constructor(include_top=False, input_shape=(3, 45, 53))
    assert model.output_shape == (None, 512, 2, 2)
    assert model.get_layer("stage1_block1_bn2").axis == 1
    assert model.get_layer(f"stage1_block1_{ATTENTION[constructor]}").data_format == (
        "channels_first"
    )
    keras.config.set_image_data_format("channels_last")
    reference = constructor(include_top=False, input_shape=(45, 53, 3))
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]


@pytest.mark.skipif(not runs_channels_first(), reason="TensorFlow CPU kernels are NHWC only")
@pytest.mark.parametrize("constructor", CONSTRUCTORS, ids=lambda c: c.__name__)
def test_channels_first_predicts_what_channels_last_does(constructor, channels_first):
    first = constructor(input_shape=(3, 45, 53), classes=5)
    keras.config.set_image_data_format("channels_last")
    last = constructor(input_shape=(45, 53, 3), classes=5)
    first.set_weights(last.get_weights())
    x = random_batch((2, 45, 53, 3))
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2), verbose=0),
        last.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("constructor", CONSTRUCTORS, ids=lambda c: c.__name__)
def test_trains_and_round_trips_on_this_backend(constructor, tmp_path):
    keras.utils.set_random_seed(0)
    model = constructor(input_shape=(32, 32, 3), classes=3)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    x, y = random_batch((6, 32, 32, 3), seed=2), np.arange(6) % 3
    attention = model.get_layer(f"stage4_block2_{ATTENTION[constructor]}")
    before = [to_numpy(w).copy() for w in attention.trainable_weights]
    losses = model.fit(x, y, epochs=4, batch_size=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses
    for weight, old in zip(attention.trainable_weights, before, strict=True):
        assert not np.array_equal(to_numpy(weight), old), weight.path
    check_keras_file_round_trip(model, x[:2], tmp_path)


@pytest.mark.skipif(not runs_channels_first(), reason="TensorFlow CPU kernels are NHWC only")
@pytest.mark.parametrize("name", OTHER_FAMILIES)
def test_other_families_predict_the_same_channels_first(name, channels_first):
    constructor, options, size = OTHER_FAMILIES[name]
    first = constructor(input_shape=(3, size, size), classes=5, **options)
    keras.config.set_image_data_format("channels_last")
    last = constructor(input_shape=(size, size, 3), classes=5, **options)
    first.set_weights(last.get_weights())
    x = random_batch((2, size, size, 3))
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2), verbose=0),
        last.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
