"""The 32x32 family through `keras-se train`: the CIFAR notebooks' SENet-18 trains on the
embedded digits at their native 32 px (no upscaling to an ImageNet size) to the default job's
bar."""

import json

import keras

from keras_se import cli


def test_the_cifar_senet18_trains_on_the_digits_at_32_px_to_95_percent(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--model", "SEResNet18CIFAR", "--epochs", "4", "--output", str(run)]
    assert cli.main(argv) == 0
    assert "32x32 images in batches of 64" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_accuracy"] >= 0.95, summary
    assert (summary["num_validation"], summary["epochs"]) == (449, 4)
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    # The notebook's network at its own size: a 3x3/1 stem, no pool, a 4x4 map at the end.
    assert model.input_shape == (None, 32, 32, 3)
    assert model.get_layer("stem_conv1").strides == (1, 1)
    assert model.get_layer("stage4_block2_se").output.shape == (None, 4, 4, 512)
