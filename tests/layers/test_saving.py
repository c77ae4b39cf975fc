"""`.keras` files of models using every layer variant load in a new process with safe_mode=True."""

import pathlib

import keras
import numpy as np
from harness import check_fresh_process_round_trip, random_batch, to_numpy

from keras_se import SelectiveKernel, SqueezeExcite
from keras_se.layers import ChannelShuffle

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def test_keras_files_load_in_a_fresh_process_with_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 9, 8))
    x = SqueezeExcite(ratio=4, squeeze="avg_max", gate="hard_sigmoid")(inputs)
    x = ChannelShuffle(groups=2)(x)
    x = SqueezeExcite(ratio=4, mode="spatial")(x)
    x = SqueezeExcite(reduced_channels=3, mode="concurrent", activation="swish")(x)
    x = SelectiveKernel(filters=8, split_input=True, min_channels=4)(x)
    x = SelectiveKernel(filters=8, strides=2, groups=2, dilation_rate=[1, 2, 3], min_channels=4)(x)
    functional = keras.Model(inputs, x, name="functional")
    sequential = keras.Sequential(
        [keras.Input((12, 6)), SqueezeExcite(ratio=2), SelectiveKernel(filters=6, min_channels=2)],
        name="sequential",
    )
    # Non-trivial BN statistics, so that a load that dropped them would show.
    x_train = random_batch((8, 9, 9, 8), seed=3)
    functional.compile("sgd", "mse")
    functional.fit(x_train, random_batch((8, 5, 5, 8), seed=4), epochs=2, verbose=0)
    check_fresh_process_round_trip(
        {
            "functional": (functional, random_batch((3, 9, 9, 8))),
            "sequential": (sequential, random_batch((3, 12, 6))),
        },
        tmp_path,
    )


def test_a_file_saved_before_the_package_was_restructured_still_loads():
    """`tests/data/saved_before_the_registry.keras` was saved by keras-se before its modules
    moved (registry, `keras_se.training`, the split of `applications/base.py`): SE, SK, the
    grouped and depthwise convolutions and `ScaledResidual`, with its outputs at the time."""
    import keras_se.applications  # noqa: F401  (registers ScaledResidual, as a user's import would)

    data = np.load(DATA / "saved_before_the_registry.npz")
    model = keras.saving.load_model(DATA / "saved_before_the_registry.keras", safe_mode=True)
    outputs = to_numpy(model(data["images"], training=False))
    np.testing.assert_allclose(outputs, data["outputs"], rtol=1e-5, atol=1e-5)
    # The negative control: the saved outputs are not what any model would give.
    assert np.abs(data["outputs"]).max() > 1e-3
    assert not np.allclose(outputs, to_numpy(model(data["images"][::-1], training=False)))
