"""Every registered constructor through the shared model harness (`run_model_test` in
tests/harness.py): input size refusal, shapes, the `.keras` config round trip, channels_first,
mixed precision and a short fit that trains every weight."""

import pytest
from harness import run_model_test

from keras_se import applications

# VGG's two 4096-wide fully connected layers: Adam's first steps at 1e-3 (a step of about the
# learning rate on every weight) raise the loss on eight images, and dropout 0.5 turns a
# three-step loss curve into noise.
FIT_SETTINGS = {"vgg": {"learning_rate": 1e-4, "dropout_rate": 0.0}}
# SE-ResNet-110's first stage has 16 channels, so r=16 leaves one hidden unit per SE block; a
# single ReLU unit can be off for all eight images, and then rightly gets no gradient. Four
# units show the same thing (gradients reach the SE weights) without that chance.
MODEL_SETTINGS = {"SEResNet110CIFAR": {"reduction_ratio": 4}}


@pytest.mark.parametrize("name", applications.list_models())
def test_every_constructor_passes_the_model_harness(name, tmp_path):
    entry = applications.model_entry(name)
    settings = {**FIT_SETTINGS.get(entry.family, {}), **MODEL_SETTINGS.get(name, {})}
    run_model_test(entry.constructor, entry.min_size, tmp_path, **settings)
