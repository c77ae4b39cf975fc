"""`keras-se predict` on a real run's model: the run's class names, and the probabilities the
model gives the same images through the training job's validation pipeline."""

import json

import keras
import numpy as np
import pytest
from PIL import Image
from training_job import SE_RESNET10

from keras_se import cli
from keras_se.training import data, job, predict


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short run on the embedded digits (1 epoch of 3 steps: the model need not be good)."""
    folder = tmp_path_factory.mktemp("run")
    options = dict(epochs=1, steps_per_epoch=3, batch_size=32, xla="off", verbose=0)
    job.train(SE_RESNET10, output_dir=folder, **options)
    return folder


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """Six validation digits as PNG files, and the batch the validation pipeline makes of
    the same images."""
    splits = data.load_splits("sklearn_digits")
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for index, (image, _) in enumerate(splits.validation.take(6).as_numpy_iterator()):
        paths.append(folder / f"{index}.png")
        Image.fromarray(image[..., 0]).save(paths[-1])
    pipeline = data.make_pipeline(
        splits.validation, image_size=32, batch_size=6, num_classes=10, training=False
    )
    return paths, next(iter(pipeline))[0].numpy()


def test_predictions_name_the_runs_classes_with_the_models_probabilities(run_dir, digit_files):
    paths, batch = digit_files
    model = keras.saving.load_model(run_dir / "model.keras")
    expected = model.predict(batch, verbose=0)
    results = predict.predict(run_dir, paths, top=10)
    assert [result["image"] for result in results] == [str(path) for path in paths]
    for result, scores in zip(results, expected, strict=True):
        found = {guess["class"]: guess["probability"] for guess in result["predictions"]}
        assert sorted(found) == [str(digit) for digit in range(10)]  # the digits' names
        np.testing.assert_allclose([found[str(d)] for d in range(10)], scores, atol=1e-6)
        probabilities = [guess["probability"] for guess in result["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert result["predictions"][0]["index"] == int(np.argmax(scores))
    # The negative control: the images differ enough for the comparison to mean something.
    assert np.abs(expected - expected[::-1]).max() > 1e-4
    # The run's model.keras names the same run (one image: float noise of another batch).
    (alone,) = predict.predict(run_dir / "model.keras", paths[:1], top=1)
    (guess,) = alone["predictions"]
    assert guess["class"] == results[0]["predictions"][0]["class"]
    assert guess["probability"] == pytest.approx(results[0]["predictions"][0]["probability"])


def test_the_command_prints_text_or_json(run_dir, digit_files, capsys):
    paths, _ = digit_files
    assert cli.main(["predict", str(run_dir), str(paths[0]), str(paths[1]), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{paths[0]}: ")
    assert len(lines[0].split(": ", 1)[1].split(", ")) == 3
    assert cli.main(["predict", str(run_dir), str(paths[0]), "--json", "--top", "2"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["image"] == str(paths[0]) and len(result["predictions"]) == 2


def test_bad_input_is_one_line_and_exit_code_2(run_dir, digit_files, tmp_path, capsys):
    paths, _ = digit_files
    (tmp_path / "notes.png").write_text("not an image")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(tmp_path / "own.keras")
    other_run = tmp_path / "old_run"
    other_run.mkdir()
    for name in ("model.keras", "summary.json"):
        (other_run / name).write_bytes((run_dir / name).read_bytes())
    summary = json.loads((other_run / "summary.json").read_text())
    del summary["class_names"]  # as a run from before class names were recorded
    (other_run / "summary.json").write_text(json.dumps({**summary, "model_path": "model.keras"}))
    cases = {
        (str(run_dir), str(tmp_path / "missing.png")): "missing.png' does not exist",
        (str(run_dir), str(tmp_path / "notes.png")): "notes.png' cannot be decoded",
        (str(run_dir), str(paths[0]), "--top", "11"): "`top` must be at most the 10 classes",
        (str(tmp_path), str(paths[0])): "holds no model.keras: it is not a finished run",
        (str(tmp_path / "own.keras"), str(paths[0])): "is not the model of a keras-se train run",
        (str(other_run), str(paths[0])): "recorded no class names",
    }
    for argv, message in cases.items():
        assert cli.main(["predict", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
