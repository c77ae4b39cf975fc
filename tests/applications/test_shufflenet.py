"""SE-ShuffleNet and its plain twin: parameter counts from the ShuffleNet paper's Table 1, the
SENet paper's figures, the structure against an independent PyTorch forward (with negative
controls), and bad input. The harness checks (shapes, `.keras` round trip, channels_first,
mixed precision, fit) run in test_every_model.py."""

import keras
import numpy as np
import pytest
from harness import random_batch, randomize_statistics, to_numpy
from torch_reference import SHUFFLENET_WIDTHS, shufflenet_forward

from keras_se import applications
from keras_se.cost import cost_report

# SENet paper, Table 3 (ShuffleNet 1x, g=3): parameters and MFLOPs (multiply-adds) at 224.
PAPER = {"PlainShuffleNet": (1.8e6, 140), "SEShuffleNet": (2.4e6, 142)}


def _shufflenet_parameters(groups, *, se, classes=1000, ratio=16):
    """Trainable parameters of ShuffleNet 1x counted from the paper's Table 1: convolutions
    without biases, BatchNorm's scale and shift, the classifier with its bias, and the
    SENet paper's SE block (two FCs with biases) on each unit's branch."""

    def conv_bn(inputs, outputs, kernel=1, groups=1):
        return kernel * kernel * inputs // groups * outputs + 2 * outputs

    def se_block(channels):
        return 2 * channels * (channels // ratio) + channels // ratio + channels

    total = conv_bn(3, 24, kernel=3)
    channels = 24
    for width, units in zip(SHUFFLENET_WIDTHS[groups], (4, 8, 4), strict=True):
        for unit in range(units):
            branch = width - channels if unit == 0 else width
            first_groups = 1 if channels == 24 else groups
            total += conv_bn(channels, width // 4, groups=first_groups)
            total += 9 * (width // 4) + 2 * (width // 4)  # depthwise 3x3 and its BN
            total += conv_bn(width // 4, branch, groups=groups)
            total += se_block(branch) if se else 0
            channels = width
    return total + channels * classes + classes


@pytest.fixture(scope="module")
def imagenet_models():
    return {name: getattr(applications, name)() for name in PAPER}


def test_parameter_counts_follow_the_papers_tables(imagenet_models):
    counts = {name: cost_report(m).trainable_params for name, m in imagenet_models.items()}
    assert counts == {
        "PlainShuffleNet": _shufflenet_parameters(3, se=False),
        "SEShuffleNet": _shufflenet_parameters(3, se=True),
    }
    # The papers give two digits: 1.8M and 2.4M (1,865,728 and 2,484,533, truncated).
    for name, (paper, _) in PAPER.items():
        assert paper <= counts[name] < paper + 1e5, name
    for groups in (1, 2, 4, 8):
        model = applications.SEShuffleNet(groups=groups, input_shape=(32, 32, 3), classes=10)
        assert model.count_params() - sum(
            int(np.prod(w.shape)) for w in model.non_trainable_weights
        ) == _shufflenet_parameters(groups, se=True, classes=10), groups


def test_multiply_adds_are_the_papers(imagenet_models):
    """137.5 and 139.7 MMACs. The SENet paper's 140 is ShuffleNet 1x's complexity class (the
    ShuffleNet paper gives 140 MFLOPs for 1x whatever the groups); the SE blocks' 2.2 MMACs
    are the paper's 142 - 140."""
    mmacs = {name: cost_report(m).macs / 1e6 for name, m in imagenet_models.items()}
    for name, (_, paper) in PAPER.items():
        assert mmacs[name] == pytest.approx(paper, rel=0.02), name
    assert mmacs["SEShuffleNet"] - mmacs["PlainShuffleNet"] == pytest.approx(2, abs=0.3)


@pytest.fixture(scope="module")
def se_shufflenet():
    keras.utils.set_random_seed(0)
    model = applications.SEShuffleNet(
        input_shape=(67, 75, 3), classes=7, classifier_activation=None
    )
    randomize_statistics(model, seed=2)
    return model


def _unit_output(model, unit):
    return keras.Model(model.input, model.get_layer(f"{unit}_relu").output)


def test_outputs_match_an_independent_pytorch_forward(se_shufflenet):
    """Odd sizes (67x75), so the paddings of the strided convolutions and pools show. The
    feature maps after stages 2 and 4 are compared too: the logits of an untrained network
    with random statistics depend little on the image."""
    images = random_batch((2, 67, 75, 3), seed=5)
    logits = to_numpy(se_shufflenet(images, training=False))
    expected = shufflenet_forward(se_shufflenet, images)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    for unit, shape in (("stage2_unit4", (2, 9, 10, 240)), ("stage4_unit4", (2, 3, 3, 960))):
        features = to_numpy(_unit_output(se_shufflenet, unit)(images, training=False))
        expected = shufflenet_forward(se_shufflenet, images, features=unit)
        assert features.shape == shape
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)


def test_the_reference_tells_a_misplaced_se_a_wrong_stride_and_shuffle(se_shufflenet):
    """The negative controls: SE on the sum instead of the branch, the stride on the first 1x1
    convolution instead of the depthwise one, no shuffle, or the shuffle's inverse
    (channels as (n, groups), as some ports write it) give other feature maps after stage 2,
    by far more than the tolerance above."""
    images = random_batch((2, 67, 75, 3), seed=6)
    features = to_numpy(_unit_output(se_shufflenet, "stage2_unit4")(images, training=False))
    for wrong in (
        {"se_after_add": True},
        {"stride_on_conv1": True},
        {"shuffle": "none"},
        {"shuffle": "inverse"},
    ):
        other = shufflenet_forward(se_shufflenet, images, features="stage2_unit4", **wrong)
        assert np.abs(other - features).max() > 0.02, wrong


@pytest.mark.parametrize("groups", [2, 8])
def test_other_group_counts_match_the_reference(groups):
    keras.utils.set_random_seed(groups)
    model = applications.PlainShuffleNet(
        groups=groups, input_shape=(40, 40, 3), classes=5, classifier_activation=None
    )
    randomize_statistics(model, seed=3)
    assert model.get_layer("stage4_unit4_conv3").groups == groups
    images = random_batch((2, 40, 40, 3), seed=groups)
    expected = shufflenet_forward(model, images, groups=groups, se=False)
    np.testing.assert_allclose(
        to_numpy(model(images, training=False)), expected, rtol=1e-4, atol=1e-5
    )


def test_plain_twin_is_the_same_network_without_se():
    options = dict(input_shape=(32, 32, 3), classes=3)
    plain, se = applications.PlainShuffleNet(**options), applications.SEShuffleNet(**options)
    se_layers = [layer.name for layer in se.layers if layer.name.endswith("_se")]
    assert len(se_layers) == 16 and not any(layer.name.endswith("_se") for layer in plain.layers)
    assert sorted(layer.name for layer in se.layers[1:] if layer.name not in se_layers) == (
        sorted(layer.name for layer in plain.layers[1:])  # after the inputs, named by Keras
    )


def test_bad_input_is_refused_before_building():
    with pytest.raises(ValueError, match=r"`groups` must be one of 1, 2, 3, 4, 8, got 5"):
        applications.SEShuffleNet(groups=5)
    with pytest.raises(ValueError, match=r"weights='imagenet' is not available.*SEResNet50"):
        applications.PlainShuffleNet(weights="imagenet")
    with pytest.raises(ValueError, match="reduction_ratio"):
        applications.SEShuffleNet(reduction_ratio=0)
    with pytest.raises(ValueError, match="at least 32"):
        applications.SEShuffleNet(input_shape=(31, 64, 3), include_top=False)
    with pytest.raises(ValueError, match="classes"):
        applications.SEShuffleNet(classes=10**12)
