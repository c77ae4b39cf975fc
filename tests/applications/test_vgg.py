"""SE-VGG-16 and its plain twin: the paper's cost, torchvision's parameter count, the structure
against an independent PyTorch forward, and bad input. The harness checks (shapes, `.keras`
round trip, channels_first, mixed precision, fit) run in test_every_model.py."""

import keras
import numpy as np
import pytest
import torch
import torchvision
from harness import random_batch, randomize_statistics, to_numpy
from torch_reference import vgg16_forward

from keras_se import applications
from keras_se.cost import cost_report

# SENet paper, Table 2: GFLOPs (multiply-adds) at 224x224.
PAPER_GMACS = {"PlainVGG16": 15.47, "SEVGG16": 15.48}


@pytest.fixture(scope="module")
def imagenet_models():
    """Both networks at 224x224 with 1000 classes (138M parameters each)."""
    models = {name: getattr(applications, name)() for name in PAPER_GMACS}
    yield models
    models.clear()
    keras.backend.clear_session()


def _torchvision_vgg16_bn_parameters():
    """torchvision's VGG-16-BN, counted without allocating it; its convolutions have biases,
    keras-se's do not (BatchNorm follows each)."""
    with torch.device("meta"):
        network = torchvision.models.vgg16_bn()
    convolution_biases = sum(
        module.bias.numel() for module in network.modules() if isinstance(module, torch.nn.Conv2d)
    )
    return sum(p.numel() for p in network.parameters()) - convolution_biases


def _se_parameters(channels, ratio=16):
    """The SENet paper's SE block: FC C -> C/r and FC C/r -> C, both with biases."""
    reduced = channels // ratio
    return 2 * channels * reduced + reduced + channels


def test_parameter_counts_equal_torchvisions_vgg16_bn_plus_the_se_blocks(imagenet_models):
    plain = _torchvision_vgg16_bn_parameters()
    assert cost_report(imagenet_models["PlainVGG16"]).trainable_params == plain
    se = sum(
        _se_parameters(channels) * convolutions
        for channels, convolutions in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
    )
    assert cost_report(imagenet_models["SEVGG16"]).trainable_params == plain + se


def test_multiply_adds_are_the_papers_within_one_percent(imagenet_models):
    gmacs = {name: cost_report(model).gmacs for name, model in imagenet_models.items()}
    for name, paper in PAPER_GMACS.items():
        assert gmacs[name] == pytest.approx(paper, rel=0.01), name
    # SE's cost is a few hundredths of a GMAC, as the paper's 0.01 says.
    assert 0 < gmacs["SEVGG16"] - gmacs["PlainVGG16"] < 0.03


@pytest.fixture(scope="module")
def se_vgg16():
    keras.utils.set_random_seed(0)
    model = applications.SEVGG16(input_shape=(67, 75, 3), classes=7, classifier_activation=None)
    randomize_statistics(model, seed=2)
    return model


def test_outputs_match_an_independent_pytorch_forward(se_vgg16):
    """Odd sizes (67x75): the pools' floor shows, and the flatten order reaches fc1."""
    images = random_batch((2, 67, 75, 3), seed=5)
    logits = to_numpy(se_vgg16(images, training=False))
    expected = vgg16_forward(se_vgg16, images)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5 * scale)


def test_the_reference_tells_a_misplaced_se_and_another_pool(se_vgg16):
    """The negative controls: the same weights with SE before each ReLU (which changes only
    what SE squeezes: ReLU commutes with a positive gate), or with average pools, give other
    logits, by far more than the tolerance of the comparison above."""
    images = random_batch((2, 67, 75, 3), seed=6)
    logits = to_numpy(se_vgg16(images, training=False))
    scale = float(np.abs(logits).max())
    for wrong in ({"se_before_relu": True}, {"pool": "avg"}):
        difference = np.abs(vgg16_forward(se_vgg16, images, **wrong) - logits).max()
        assert difference > 1e-3 * scale, wrong


def test_plain_twin_is_the_same_network_without_se():
    keras.utils.set_random_seed(1)
    options = dict(input_shape=(32, 32, 3), classes=3, classifier_activation=None)
    plain, se = applications.PlainVGG16(**options), applications.SEVGG16(**options)
    se_layers = [layer.name for layer in se.layers if "_se" in layer.name]
    assert len(se_layers) == 13 and not any("_se" in layer.name for layer in plain.layers)
    assert [layer.name for layer in se.layers[1:] if layer.name not in se_layers] == [
        layer.name
        for layer in plain.layers[1:]  # after the inputs, named by Keras
    ]
    images = random_batch((2, 32, 32, 3), seed=3)
    randomize_statistics(plain, seed=4)
    np.testing.assert_allclose(
        to_numpy(plain(images, training=False)),
        vgg16_forward(plain, images, se=False),
        rtol=1e-4,
        atol=1e-5,
    )


def test_bad_input_is_refused_before_building():
    with pytest.raises(ValueError, match="input size must be fixed"):
        applications.SEVGG16(input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"weights='imagenet' is not available.*SEResNet50"):
        applications.PlainVGG16(weights="imagenet")
    with pytest.raises(ValueError, match="dropout_rate"):
        applications.SEVGG16(input_shape=(32, 32, 3), dropout_rate=1.5)
    with pytest.raises(ValueError, match=r"fc1 \(\d+ inputs\) would need"):
        applications.PlainVGG16(input_shape=(32 * 400, 32 * 400, 3))
    # Without the top, any size from 32 up builds.
    features = applications.SEVGG16(include_top=False, input_shape=(None, None, 3), pooling="max")
    assert features.output_shape == (None, 512)
