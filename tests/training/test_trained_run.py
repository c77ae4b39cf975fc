"""`keras-se evaluate` and `keras-se predict` on a real run's model: the run's class names,
the accuracy Keras' own `evaluate` gives, and the probabilities the model gives the same images
through the training job's validation pipeline."""

import functools
import json

import keras
import numpy as np
import pytest
from PIL import Image
from training_job import SE_RESNET10

from keras_se import cli
from keras_se.training import data, evaluate, job, predict

SHORT_RUN = {"batch_size": 32, "xla": "off", "verbose": 0}


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
        (str(tmp_path / "own.keras"), str(paths[0])): "is neither the model of a keras-se train",
        (str(other_run), str(paths[0])): "recorded no class names",
    }
    for argv, message in cases.items():
        assert cli.main(["predict", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_scores_match_scikit_learns(tmp_path):
    from sklearn import metrics

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7), size=300)
    labels = rng.integers(0, 7, 300)
    labels[labels == 6] = 5  # a class that never occurs: its accuracy is None
    found = evaluate.scores(probabilities, labels, 7)
    np.testing.assert_array_equal(
        found["confusion"],
        metrics.confusion_matrix(labels, probabilities.argmax(1), labels=range(7)),
    )
    assert found["top1"] == pytest.approx(metrics.accuracy_score(labels, probabilities.argmax(1)))
    assert found["top_k"] == 5 and found["top_k_accuracy"] == pytest.approx(
        metrics.top_k_accuracy_score(labels, probabilities, k=5, labels=range(7))
    )
    recall = metrics.recall_score(labels, probabilities.argmax(1), labels=range(6), average=None)
    np.testing.assert_allclose(found["per_class"][:6], recall)
    assert found["per_class"][6] is None


def test_evaluation_equals_keras_evaluate_and_writes_its_files(run_dir, capsys):
    report = evaluate.evaluate(run_dir)
    model = keras.saving.load_model(run_dir / "model.keras")
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    splits = data.load_splits("sklearn_digits")
    batches = data.make_pipeline(
        splits.validation, image_size=32, batch_size=64, num_classes=10, training=False
    )
    accuracy = model.evaluate(batches, verbose=0, return_dict=True)["accuracy"]
    assert report["count"] == 449 and report["top1"] == pytest.approx(accuracy, abs=1e-6)
    assert report["class_names"] == [str(digit) for digit in range(10)]
    assert report["top_k"] == 5 and report["top_k_accuracy"] >= report["top1"]
    assert np.sum(report["confusion"]) == 449
    folder = run_dir / "evaluation-validation"
    assert json.loads((folder / "evaluation.json").read_text()) == report
    png = (folder / "confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # The command says it in one line, and never replaces an evaluation without --overwrite.
    assert cli.main(["evaluate", str(run_dir)]) == 2
    assert "holds an earlier evaluation; pass --overwrite" in capsys.readouterr().err
    assert cli.main(["evaluate", str(run_dir), "--overwrite", "--split", "train"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("sklearn_digits train: 1348 images, top-1 ") and line.count("\n") == 1


def test_a_dataset_with_other_classes_is_refused(run_dir, tmp_path, capsys):
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(6):
            Image.new("RGB", (12, 12), (index * 40, 0, 0)).save(
                tmp_path / "images" / label / f"{index}.png"
            )
    argv = [
        "evaluate",
        str(run_dir),
        "--dataset",
        str(tmp_path / "images"),
        "-o",
        str(tmp_path / "out"),
    ]
    assert cli.main(argv) == 2
    assert "are not the run's (0, 1, 2, 3, 4, ...)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def sk_run(tmp_path_factory):
    """An SK-ResNet-10 briefly trained on the embedded digits (its attention need not be good)."""
    folder = tmp_path_factory.mktemp("sk-run")
    sk_resnet10 = functools.partial(SE_RESNET10, attention="sk", name="sk_resnet10")
    job.train(sk_resnet10, output_dir=folder, epochs=1, steps_per_epoch=3, **SHORT_RUN)
    return folder


def test_sk_attention_against_scale_is_computed_on_enlarged_images(sk_run, capsys):
    """The scale analysis (SKNet, section 4.3) on a digits model: each scale's means are
    those of `keras_se.inspect.attention` on the same images enlarged by `zoom`, and the
    verdict `rises` is the comparison of those means; whether they rise is not asserted."""
    from keras_se import inspect

    argv = ["inspect", str(sk_run), "--scales", "2", "1", "3", "--batches", "1", "--batch-size"]
    assert cli.main([*argv, "32"]) == 0
    printed = capsys.readouterr().out
    assert "SK attention on the largest kernel at 1x, 2x, 3x: rises with scale in" in printed
    folder = sk_run / "inspection-validation"  # the default, next to the model
    report = json.loads((folder / "attention.json").read_text())
    assert report["files"] == ["statistics.csv", "sk_scale.png", "attention.json"]
    assert not (folder / "excitation.png").exists()  # no SE layer in an SK-ResNet
    scale = report["scale"]
    assert scale["scales"] == [1.0, 2.0, 3.0] and scale["images"] == 32
    model = keras.saving.load_model(sk_run / "model.keras")
    splits = data.load_splits("sklearn_digits")
    batch = next(
        iter(
            data.make_pipeline(
                splits.validation, image_size=32, batch_size=32, num_classes=10, training=False
            )
        )
    )[0].numpy()
    names = [f"stage{i}_block1_sk" for i in range(1, 5)]
    assert list(scale["layers"]) == names
    for index, factor in enumerate(scale["scales"]):
        found = inspect.attention(model, inspect.zoom(batch, factor), layers=names)
        for name in names:
            weights = found[name].values.mean(axis=0)  # (branches, channels)
            layer = scale["layers"][name]
            assert layer["large_branch"] == 1  # 3x3 dilated 2
            np.testing.assert_allclose(layer["large_branch_channels"][index], weights[1], atol=1e-5)
            np.testing.assert_allclose(layer["branch_means"][index], weights.mean(1), atol=1e-5)
    for name in names:
        curve = scale["layers"][name]["large_branch_attention"]
        assert scale["layers"][name]["rises"] == (curve[0] < curve[1] < curve[2])
    # the enlargement is monotone: the digit's ink grows with the scale
    ink = [float((inspect.zoom(batch, f) > 128).mean()) for f in scale["scales"]]
    assert ink[0] < ink[1] < ink[2]
    image = np.asarray(Image.open(folder / "sk_scale.png").convert("L"), "float32")
    assert image.std() > 10 and (image < 128).mean() > 0.01


def test_inspect_bad_input_is_one_line_and_nothing_is_written(run_dir, sk_run, tmp_path, capsys):
    plain = tmp_path / "plain"
    resnet10 = functools.partial(SE_RESNET10, attention=None, name="resnet10")
    job.train(resnet10, output_dir=plain, epochs=1, steps_per_epoch=1, **SHORT_RUN)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    out = tmp_path / "out"
    cases = [
        (["inspect", str(plain)], "contains no SqueezeExcite or SelectiveKernel layer"),
        (["inspect", str(run_dir), "--layers", "stage9_se"], "`layers` names 'stage9_se'"),
        (["inspect", str(run_dir), "--scales", "1", "2"], "`scales` [1.0, 2.0] is for the"),
        (["inspect", str(sk_run), "--scales", "2", "2"], "each once"),
        (["inspect", str(run_dir), "--dataset", str(tmp_path / "empty")], "has no classes"),
        (["inspect", str(tmp_path / "none")], "does not exist"),
    ]
    for argv, message in cases:
        assert cli.main([*argv, "-o", str(out)]) == 2, argv
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, (argv, error)
        assert not out.exists(), argv
    for option, value, message in [
        ("--scales", "0.5", "must be a finite number >= 1, got 0.5"),
        ("--batches", "0", "must be >= 1, got 0"),
    ]:
        with pytest.raises(SystemExit) as exit_code:  # argparse: usage, then the error
            cli.main(["inspect", str(run_dir), option, value, "-o", str(out)])
        assert exit_code.value.code == 2 and message in capsys.readouterr().err
        assert not out.exists()
    # An earlier inspection is kept unless --overwrite.
    assert cli.main(["inspect", str(run_dir), "-o", str(out), "--batches", "1"]) == 0
    before = (out / "attention.json").read_bytes()
    assert cli.main(["inspect", str(run_dir), "-o", str(out), "--split", "train"]) == 2
    assert "holds an earlier inspection; pass --overwrite" in capsys.readouterr().err
    assert (out / "attention.json").read_bytes() == before
