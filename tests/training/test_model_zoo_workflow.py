"""The model-zoo workflow end to end, offline, through the `keras-se` commands: a timm model
(random weights) -> `convert-timm` -> its ImageNet predictions equal timm's -> `train
--weights FILE --freeze-epochs 1` on an image folder (the head alone moves) -> `--epochs 2` on
the finished run (the backbone moves) -> `evaluate` equals `model.evaluate` -> `predict` names
the folder's classes. timm runs in its own process: it must not be imported after
TensorFlow."""

import json
import sys
import typing
import warnings

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from harness import layers_moved, run_for_result, to_numpy
from keras_se.applications import SEResNet18, imagenet
from PIL import Image

from keras_se import cli
from keras_se.training import data

CLASSES = ("circle", "square", "stripes")
TIMM_NAME = "legacy_seresnet18"
TIMM_REFERENCE = """
import json, pathlib, sys
import numpy as np, safetensors.torch, timm, torch
from PIL import Image

folder = pathlib.Path(sys.argv[1])
torch.manual_seed(0)
model = timm.create_model("legacy_seresnet18", pretrained=False).eval()
with torch.no_grad():  # statistics and a classifier far from their initial values
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 1.5)
    model.last_linear.weight.normal_(0, 0.2)
safetensors.torch.save_file(model.state_dict(), str(folder / "timm.safetensors"))
config = timm.data.resolve_data_config({}, model=model)
transform = timm.data.create_transform(**config)
paths = sorted(str(p) for p in (folder / "photos").iterdir())
batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
with torch.no_grad():
    probabilities = model(batch).softmax(-1).numpy()
np.save(folder / "timm_probabilities.npy", probabilities)
print("RESULT " + json.dumps({"paths": paths, "interpolation": config["interpolation"]}))
"""


class KerasSeWnidPhotos(tfds.core.GeneratorBasedBuilder):
    """A TFDS dataset with ImageNet's labels, as `imagenet2012` has (a validation split whose
    ClassLabel names are WordNet ids), built from PNG files: `PHOTOS` maps each file to its
    WordNet id."""

    VERSION = tfds.core.Version("1.0.0")
    PHOTOS: typing.ClassVar[dict] = {}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(
                        names=[wnid for wnid, _ in imagenet.imagenet_classes()]
                    ),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"validation": self._generate_examples()}

    def _generate_examples(self):
        for path, wnid in self.PHOTOS.items():
            yield path, {"image": path, "label": wnid}


def _picture(kind, seed, size=(44, 36)):
    """A noisy picture of one of the CLASSES (learnable, and not square)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[:height, :width]
    if kind == "circle":
        shape = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 3) ** 2
    elif kind == "square":
        shape = (abs(x - width / 2) < height / 3) & (abs(y - height / 2) < height / 3)
    else:
        shape = (x // 4) % 2 == 0
    pixels = rng.integers(0, 90, (height, width, 3)) + 150 * shape[..., None]
    return Image.fromarray(pixels.clip(0, 255).astype("uint8"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The image folder, a few photos, timm's random model as safetensors and timm's
    probabilities for the photos (with timm's own evaluation transform)."""
    folder = tmp_path_factory.mktemp("zoo")
    for label, kind in enumerate(CLASSES):
        (folder / "images" / kind).mkdir(parents=True)
        for index in range(12):
            _picture(kind, 100 * label + index).save(folder / "images" / kind / f"{index}.png")
    (folder / "photos").mkdir()
    for index in range(6):
        _picture(CLASSES[index % 3], 1000 + index, size=(300, 260)).save(
            folder / "photos" / f"{index}.png"
        )
    code, result, output = run_for_result([sys.executable, "-c", TIMM_REFERENCE, str(folder)])
    assert code == 0 and result is not None, output
    result["probabilities"] = np.load(folder / "timm_probabilities.npy")
    return folder, result


@pytest.fixture(scope="module")
def converted(workspace):
    """`keras-se convert-timm`: the Keras weights of timm's model, 1000 classes."""
    folder, _ = workspace
    output = folder / "se_resnet18.weights.h5"
    argv = ["convert-timm", TIMM_NAME, str(folder / "timm.safetensors"), "-o", str(output)]
    assert cli.main(argv) == 0
    return output


@pytest.fixture(scope="module")
def imagenet_model(workspace, converted):
    """The converted model as a user saves it: an ImageNet classifier in a `.keras` file."""
    folder, _ = workspace
    path = folder / "se_resnet18.keras"
    SEResNet18(weights=str(converted)).save(path)
    return path


def test_the_converted_model_predicts_what_timm_does(workspace, imagenet_model, capsys):
    """`keras-se predict` on the converted model saved as `.keras`: the twin is recognized
    from the file's structure and its evaluation transform applied (timm's own transform ran
    in the reference): the top 5 classes and their probabilities are timm's (1e-4)."""
    _, reference = workspace
    path = imagenet_model
    capsys.readouterr()
    assert cli.main(["predict", str(path), *reference["paths"], "--top", "5", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    names = [name for _, name in imagenet.imagenet_classes()]
    expected = reference["probabilities"]
    for result, probabilities in zip(results, expected, strict=True):
        best = np.argsort(-probabilities, kind="stable")[:5]
        assert [guess["index"] for guess in result["predictions"]] == best.tolist()
        assert [guess["class"] for guess in result["predictions"]] == [names[i] for i in best]
        found = [guess["probability"] for guess in result["predictions"]]
        np.testing.assert_allclose(found, probabilities[best], atol=1e-4)
    # The negative controls: the comparison is not between near-uniform or equal rows ...
    assert expected.max() > 0.05 and np.abs(expected[0] - expected[1]).max() > 0.01
    # ... and a plain square resize instead of timm's resize-and-crop moves the probabilities.
    model = keras.saving.load_model(path)
    plain = np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((224, 224))) for p in reference["paths"]]
    )
    logits = model.predict(imagenet.preprocess_input(plain.astype("float32")), verbose=0)
    assert np.abs(to_numpy(logits) - expected).max() > 1e-3


def test_an_imagenet_folder_evaluates_as_timm_scores_it(workspace, imagenet_model, tmp_path):
    """`keras-se evaluate` of the converted model on a folder of class sub-folders named by
    WordNet id: the top-1 and top-5 that timm's probabilities give for the same files."""
    _, reference = workspace
    path = imagenet_model
    wnids = [wnid for wnid, _ in imagenet.imagenet_classes()]
    expected = reference["probabilities"]
    labels = []
    for index, photo in enumerate(reference["paths"]):
        # Half of the photos filed under timm's top class, half under its tenth.
        label = int(np.argsort(-expected[index], kind="stable")[0 if index % 2 else 9])
        (tmp_path / "val" / wnids[label]).mkdir(parents=True, exist_ok=True)
        Image.open(photo).save(tmp_path / "val" / wnids[label] / f"{index}.png")
        labels.append(label)
    argv = ["evaluate", str(path), "--dataset", str(tmp_path / "val"), "-o", str(tmp_path / "e")]
    assert cli.main([*argv, "--batch-size", "4"]) == 0
    report = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    top5 = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    labels = np.asarray(labels)
    assert report["count"] == 6
    assert report["top1"] == pytest.approx(np.mean(np.argmax(expected, 1) == labels)) == 0.5
    assert report["top_k_accuracy"] == pytest.approx(np.mean(np.any(top5 == labels[:, None], 1)))
    assert (tmp_path / "e" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    # `keras-se inspect` reads the same images the same way: its classes are the labels above.
    argv = ["inspect", str(path), "--dataset", str(tmp_path / "val"), "-o", str(tmp_path / "i")]
    assert cli.main([*argv, "--batch-size", "4"]) == 0
    inspected = json.loads((tmp_path / "i" / "attention.json").read_text())
    assert inspected["images"] == 6 and len(inspected["class_names"]) == 1000
    assert inspected["images_per_class"] == np.bincount(labels, minlength=1000).tolist()
    assert len(inspected["statistics"]) == 8  # one SE layer per basic block
    rows = (tmp_path / "i" / "class_excitation.csv").read_text().splitlines()[1:]
    shown = inspected["shown"]["squeeze_excite"]
    channels = {row["layer"]: row["channels"] for row in inspected["statistics"]}
    assert len(rows) == len(set(labels.tolist())) * sum(channels[name] for name in shown)
    # The same photos as a TFDS dataset with ImageNet's labels (as imagenet2012 after its
    # manual download): decoded by Pillow from the stored PNG bytes, scored the same.
    KerasSeWnidPhotos.PHOTOS = {
        str(file): file.parent.name for file in sorted((tmp_path / "val").rglob("*.png"))
    }
    tfds.builder("keras_se_wnid_photos", data_dir=str(tmp_path / "tfds")).download_and_prepare()
    argv = ["evaluate", str(path), "--dataset", "keras_se_wnid_photos", "-o", str(tmp_path / "t")]
    assert cli.main([*argv, "--data-dir", str(tmp_path / "tfds")]) == 0
    from_tfds = json.loads((tmp_path / "t" / "evaluation.json").read_text())
    assert {k: from_tfds[k] for k in ("count", "top1", "top_k_accuracy", "per_class")} == {
        k: report[k] for k in ("count", "top1", "top_k_accuracy", "per_class")
    }


def test_an_imagenet_model_refuses_bad_input_in_one_line(
    workspace, imagenet_model, tmp_path, capsys
):
    """Evaluating without a dataset, a dataset whose classes are not WordNet ids, an image that
    does not decode, a `.keras` file that is neither a run's model nor an ImageNet classifier:
    one line, exit code 2, nothing written."""
    folder, reference = workspace
    path = imagenet_model
    other = tmp_path / "other.keras"
    SEResNet18(weights=None, classes=10).save(other)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    cases = [
        (["evaluate", str(path)], "`dataset` is required for the ImageNet classifier"),
        (
            ["evaluate", str(path), "--dataset", str(folder / "images")],
            "must be ImageNet WordNet ids (n01440764, ...) for an ImageNet classifier; circle",
        ),
        (["predict", str(path), str(tmp_path / "broken.png")], "cannot be decoded"),
        (["predict", str(other), reference["paths"][0]], "nor a keras-se ImageNet classifier"),
    ]

    def files():  # where the commands would write: next to the models
        return sorted(p for folder in (tmp_path, path.parent) for p in folder.rglob("*"))

    before = files()
    for argv, message in cases:
        capsys.readouterr()
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert files() == before


def test_fine_tuning_moves_the_head_first_then_the_backbone(workspace, converted, capsys):
    """`keras-se train --weights FILE --freeze-epochs 1`: after the frozen epoch every
    backbone weight and BatchNorm statistic is the converted file's, byte for byte, and the
    new 3-class head has trained; `--epochs 2` on the finished run continues from its
    checkpoint into the second phase, which moves the backbone. `evaluate` then reports
    Keras' own accuracy and `predict` names the folder's classes."""
    folder, reference = workspace
    run = folder / "run"
    argv = ["train", "--model", "SEResNet18", "--dataset", str(folder / "images")]
    argv += ["--weights", str(converted), "--freeze-epochs", "1", "--output", str(run)]
    argv += ["--batch-size", "8", "--xla", "off", "--no-augment"]
    assert cli.main([*argv, "--epochs", "1"]) == 0
    pretrained = SEResNet18(weights=str(converted), input_shape=(32, 32, 3))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frozen = keras.saving.load_model(run / "model.keras")
    # Saved to train as a whole: its optimizer state loads onto every variable.
    assert all(layer.trainable for layer in frozen.layers)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)], caught
    assert layers_moved(pretrained, frozen) == []
    assert frozen.get_layer("predictions").kernel.shape == (512, 3)
    out = capsys.readouterr().out
    # What the job says before the first compile, which can take minutes.
    assert (
        f"keras-se train: {folder / 'images'}: 3 classes (circle, square, stripes), 33 "
        "training and 3 validation images\n" in out
    )
    assert f"parameters, from {converted}, 32x32 images in batches of 8 on 1 replica(s)" in out
    assert "compiling the training step, epoch 1 of 1 starts after it" in out
    assert cli.main([*argv, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 1; compiling the training step, epoch 2 of 2" in out
    tuned = keras.saving.load_model(run / "model.keras")
    moved = layers_moved(pretrained, tuned)
    assert len(moved) > 30 and "stem_conv1" in moved
    head = [to_numpy(w) for w in tuned.get_layer("predictions").weights]
    assert not np.array_equal(head[0], to_numpy(frozen.get_layer("predictions").kernel))

    assert cli.main(["evaluate", str(run)]) == 0
    report = json.loads((run / "evaluation-validation" / "evaluation.json").read_text())
    splits = data.load_splits(str(folder / "images"))
    batches = data.make_pipeline(
        splits.validation, image_size=32, batch_size=8, num_classes=3, training=False
    )
    tuned.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = tuned.evaluate(batches, verbose=0)
    assert report["class_names"] == list(CLASSES) and report["count"] == 3
    assert report["top1"] == pytest.approx(accuracy)

    capsys.readouterr()
    photos = reference["paths"][:3]
    assert cli.main(["predict", str(run), *photos, "--top", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [sorted(g["class"] for g in r["predictions"]) for r in results] == [sorted(CLASSES)] * 3
