"""ChannelShuffle against numpy's reshape-transpose of the ShuffleNet paper, in both data
formats and every rank, and its bad input."""

import keras
import numpy as np
import pytest
from harness import random_batch, to_numpy

from keras_se.layers import ChannelShuffle


def _numpy_shuffle(x, groups, channel_axis):
    """The paper's definition: channels reshaped to (groups, n), transposed, flattened."""
    x = np.moveaxis(x, channel_axis, -1)
    *outer, channels = x.shape
    shuffled = x.reshape(*outer, groups, channels // groups).swapaxes(-1, -2)
    return np.moveaxis(shuffled.reshape(*outer, channels), -1, channel_axis)


@pytest.mark.parametrize(
    ("shape", "groups", "data_format"),
    [
        ((2, 5, 7, 12), 3, "channels_last"),
        ((2, 12, 5, 7), 4, "channels_first"),
        ((3, 9, 8), 2, "channels_last"),
        ((1, 3, 4, 5, 6), 3, "channels_last"),
        ((2, 6, 3, 4, 5), 2, "channels_first"),
    ],
)
def test_shuffle_equals_the_papers_reshape_and_transpose(shape, groups, data_format):
    x = random_batch(shape, seed=len(shape) + groups)
    channel_axis = -1 if data_format == "channels_last" else 1
    y = to_numpy(ChannelShuffle(groups, data_format=data_format)(x))
    np.testing.assert_array_equal(y, _numpy_shuffle(x, groups, channel_axis))
    # The negative control: the shuffle moves channels (only groups=1 would not).
    assert not np.array_equal(y, x)


def test_shuffling_by_the_group_size_undoes_it():
    """A shuffle of g groups of n is undone by one of n groups of g (the transpose back)."""
    x = random_batch((2, 3, 3, 12), seed=1)
    y = ChannelShuffle(3)(x)
    np.testing.assert_array_equal(to_numpy(ChannelShuffle(4)(y)), x)
    assert not np.array_equal(to_numpy(ChannelShuffle(3)(y)), x)


def test_any_spatial_size_and_an_empty_batch():
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, ChannelShuffle(2, name="shuffle")(inputs))
    assert model.output_shape == (None, None, None, 6)
    for shape in ((1, 4, 9, 6), (0, 2, 2, 6)):
        x = random_batch(shape, seed=2)
        assert to_numpy(model(x)).shape == shape
    restored = ChannelShuffle.from_config(model.get_layer("shuffle").get_config())
    assert (restored.groups, restored.data_format, restored.name) == (2, "channels_last", "shuffle")


def test_bad_input_is_refused_naming_the_value():
    with pytest.raises(ValueError, match="`groups` must be >= 1, got 0"):
        ChannelShuffle(0)
    with pytest.raises(TypeError, match="groups"):
        ChannelShuffle(2.5)
    with pytest.raises(ValueError, match=r"divisible by 3; the input has 8 channels"):
        ChannelShuffle(3)(np.zeros((1, 2, 2, 8), "float32"))
    with pytest.raises(ValueError, match="rank 3, 4 or 5"):
        ChannelShuffle(2)(np.zeros((4, 6), "float32"))
    with pytest.raises(ValueError, match="data_format"):
        ChannelShuffle(2, data_format="NHWC")
