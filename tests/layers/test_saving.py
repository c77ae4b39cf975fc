"""`.keras` files of models using every layer variant load in a new process with safe_mode=True."""

import keras
from harness import check_fresh_process_round_trip, random_batch

from keras_se import SelectiveKernel, SqueezeExcite


def test_keras_files_load_in_a_fresh_process_with_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 9, 8))
    x = SqueezeExcite(ratio=4, squeeze="avg_max", gate="hard_sigmoid")(inputs)
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
