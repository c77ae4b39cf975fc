"""Dataset input: the embedded digits builder, TFDS names, image folders and the pipeline."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from keras_se.training import data
from keras_se.training.data import sklearn_digits


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return data.load_splits("sklearn_digits", data_dir=tmp_path_factory.mktemp("tfds"))


def _as_numpy(dataset):
    images, labels = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.stack(images), np.array(labels)


def test_digits_builder_holds_scikit_learns_digits_exactly(digits):
    reference = load_digits()
    expected = np.round(reference.images * (255 / 16)).astype("uint8")
    order = np.random.default_rng(sklearn_digits.SPLIT_SEED).permutation(len(expected))
    train_images, train_labels = _as_numpy(digits.train)
    val_images, val_labels = _as_numpy(digits.validation)
    assert (digits.num_train, digits.num_validation, digits.num_classes) == (1348, 449, 10)
    # TFDS shuffles the stored order: compare as sets of (image bytes, label) pairs.
    for images, labels, indices in (
        (train_images, train_labels, order[:1348]),
        (val_images, val_labels, order[1348:]),
    ):
        got = sorted(zip((i.tobytes() for i in images[..., 0]), labels, strict=True))
        want = sorted(
            zip((expected[i].tobytes() for i in indices), reference.target[indices], strict=True)
        )
        assert got == want
    assert not digits.flip  # a flipped 2 is not a 2


def test_digits_need_no_network_and_are_tfds_registered(digits):
    assert "sklearn_digits" in tfds.list_builders()
    assert digits.image_shape == (8, 8, 1)
    assert digits.class_names == tuple(str(digit) for digit in range(10))


def test_pipeline_resizes_crops_normalizes_nothing_and_one_hot_encodes(digits):
    batches = data.make_pipeline(
        digits.validation,
        image_size=32,
        batch_size=100,
        num_classes=10,
        training=False,
        num_examples=digits.num_validation,
    )
    sizes = [int(images.shape[0]) for images, _ in batches]
    assert sizes == [100, 100, 100, 100, 49]  # validation keeps the last partial batch
    images, labels = next(iter(batches))
    assert images.shape == (100, 32, 32, 3) and images.dtype == tf.float32
    assert float(tf.reduce_min(images)) >= 0 and float(tf.reduce_max(images)) <= 255.5
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grey repeated to RGB
    np.testing.assert_array_equal(tf.reduce_sum(labels, axis=1), np.ones(100))

    options = dict(image_size=32, batch_size=64, num_classes=10, training=True, seed=3)
    training = data.make_pipeline(digits.train, num_examples=digits.num_train, **options)
    assert len(training) == 1348 // 64  # one pass; the partial batch is dropped
    two_passes = data.make_pipeline(
        digits.train, num_examples=digits.num_train, stop_batch=2 * 21, **options
    )
    batches = [images for images, _ in two_passes.as_numpy_iterator()]
    assert len(batches) == 42
    np.testing.assert_array_equal(batches[0], next(iter(training))[0])  # reproducible
    assert not np.array_equal(batches[0], batches[21])  # reshuffled and re-augmented


def test_full_batches_pad_validation_with_zero_weight_blanks(digits):
    options = dict(image_size=16, batch_size=64, num_classes=10, training=False)
    plain = list(data.make_pipeline(digits.validation, **options).as_numpy_iterator())
    padded = list(
        data.make_pipeline(
            digits.validation, **options, num_examples=digits.num_validation, full_batches=True
        ).as_numpy_iterator()
    )
    # 449 images: 7 full batches and 1 image, padded to 8 batches of 64.
    assert [len(batch[0]) for batch in plain] == [64] * 7 + [1]
    assert [len(batch[0]) for batch in padded] == [64] * 8
    images, labels, weights = (np.concatenate(parts) for parts in zip(*padded, strict=True))
    # The real images come first, unchanged and in order; the 63 blanks weigh nothing.
    np.testing.assert_array_equal(images[:449], np.concatenate([b[0] for b in plain]))
    np.testing.assert_array_equal(labels[:449], np.concatenate([b[1] for b in plain]))
    assert not images[449:].any() and not labels[449:].any()
    np.testing.assert_allclose(weights[:449], 512 / 449, rtol=1e-7)
    assert not weights[449:].any()
    # Weighted means over the padded rows are the plain means over the real images.
    values = np.random.default_rng(0).normal(size=512)
    assert np.sum(weights * values) / np.sum(weights) == pytest.approx(values[:449].mean())
    assert np.sum(weights * values) / 512 == pytest.approx(values[:449].mean())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # full_batches pads validation batches and needs their number
        (
            {"full_batches": True, "training": True, "num_examples": 449},
            "`full_batches` pads validation batches.*got training=True, num_examples=449",
        ),
        (
            {"full_batches": True, "training": False},
            "`full_batches` pads validation batches.*got training=False, num_examples=-2",
        ),
        # training batches are numbered over passes of a known size
        ({"training": True}, r"need `num_examples` .* of at least `batch_size` 64, got -2"),
        ({"training": True, "num_examples": 40}, r"at least `batch_size` 64, got 40"),
        (
            {"training": True, "num_examples": 449, "start_batch": -1},
            r"0 <= start_batch < stop_batch, got -1 and",
        ),
        ({"training": True, "num_examples": 449, "start_batch": 5, "stop_batch": 5}, "5 and 5"),
    ],
)
def test_bad_pipeline_options_are_refused(digits, options, message):
    with pytest.raises(ValueError, match=message):
        data.make_pipeline(
            digits.validation, image_size=16, batch_size=64, num_classes=10, **options
        )


def test_augmentation_crops_and_flips_only_when_asked():
    image = np.arange(36 * 36, dtype="float32").reshape(36, 36, 1) % 251
    dataset = tf.data.Dataset.from_tensors((image.astype("uint8"), 0)).repeat(64)

    def batch(**options):
        pipeline = data.make_pipeline(
            dataset,
            image_size=32,
            batch_size=64,
            num_classes=2,
            training=True,
            num_examples=64,
            **options,
        )
        return next(iter(pipeline))[0].numpy()

    plain = batch(augment=False)
    assert all(np.array_equal(plain[0], x) for x in plain)
    cropped = batch(flip=False)
    assert len({x.tobytes() for x in cropped}) > 1  # different crops
    flipped = batch(flip=True)
    unflipped = {x.tobytes() for x in cropped}
    assert any(x.tobytes() not in unflipped for x in flipped)


def _write_images(folder, count, size=(20, 24), kinds=("png", "jpg")):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for index in range(count):
        pixels = rng.integers(0, 255, (size[0] + index, size[1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.{kinds[index % len(kinds)]}")


def test_image_folder_of_class_folders_is_split_per_class(tmp_path):
    for label in ("cat", "dog", "eel"):
        _write_images(tmp_path / label, 10)
    (tmp_path / "cat" / "notes.txt").write_text("not an image, not an image extension")
    splits = data.load_splits(tmp_path, validation_fraction=0.2)
    assert (splits.num_classes, splits.num_train, splits.num_validation) == (3, 24, 6)
    assert splits.class_names == ("cat", "dog", "eel")  # the names of labels 0, 1, 2
    val_labels = [int(label) for _, label in splits.validation]
    assert sorted(val_labels) == [0, 0, 1, 1, 2, 2]
    batches = data.make_pipeline(
        splits.train,
        image_size=32,
        batch_size=8,
        num_classes=3,
        training=True,
        num_examples=splits.num_train,
    )
    images, labels = next(iter(batches))
    assert images.shape == (8, 32, 32, 3) and labels.shape == (8, 3)


def test_image_folder_with_train_and_validation_folders(tmp_path):
    for split, count in (("train", 6), ("validation", 2)):
        for label in ("a", "b"):
            _write_images(tmp_path / split / label, count)
    splits = data.load_splits(str(tmp_path))
    assert (splits.num_classes, splits.num_train, splits.num_validation) == (2, 12, 4)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="has no classes"):
        data.load_splits(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="has no classes"):
        data.load_splits(tmp_path)
    _write_images(tmp_path / "cat", 3)
    with pytest.raises(ValueError, match=r"Class folder\(s\) without images in .*: empty_class\."):
        data.load_splits(tmp_path)
    (tmp_path / "empty_class").rmdir()
    with pytest.raises(ValueError, match=r"has one class \(cat\); a classifier needs at least 2"):
        data.load_splits(tmp_path)
    _write_images(tmp_path / "dog", 3)
    # 3 images a class: 10% of each rounds to none (TFDS used to fail on the empty split)
    with pytest.raises(ValueError, match=r"too few images to hold out 10% .* at least 6 images"):
        data.load_splits(tmp_path)
    _write_images(tmp_path / "cat", 6)
    assert data.load_splits(tmp_path).num_validation == 1  # the negative control
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg: not a JPEG or PNG image\."):
        data.load_splits(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        data.load_splits(str(tmp_path / "missing") + "/")


@pytest.mark.parametrize("kind", ["jpg", "png"])
def test_an_image_cut_short_is_refused_before_training(tmp_path, kind):
    """A truncated file used to end the run mid-epoch in a TensorFlow decode error."""
    for label in ("cat", "dog"):
        _write_images(tmp_path / label, 10, kinds=(kind,))
    whole = tmp_path / "dog" / f"1.{kind}"
    data.load_splits(tmp_path)  # the negative control: every image is whole
    whole.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    name = {"jpg": "JPEG", "png": "PNG"}[kind]
    with pytest.raises(ValueError, match=rf"1\.{kind}: a {name} image cut short \(no end marker\)"):
        data.load_splits(tmp_path)


def test_train_and_validation_folders_must_hold_the_same_classes(tmp_path):
    for split, labels in (("train", ("a", "b", "c")), ("validation", ("a", "b", "d"))):
        for label in labels:
            _write_images(tmp_path / split / label, 2)
    with pytest.raises(ValueError, match=r"only in train/: c; only in validation/: d\."):
        data.load_splits(tmp_path)


def test_unknown_dataset_names_close_matches():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar1O'\. Did you mean cifar10"):
        data.load_splits("cifar1O")
    with pytest.raises(TypeError, match="`dataset` must be a name"):
        data.load_splits(42)


def test_unprepared_dataset_fails_at_once_with_the_command(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as error:
        data.load_splits("cifar10", data_dir=tmp_path)
    assert time.perf_counter() - start < 5  # no network retries
    assert f"`tfds build cifar10 --data_dir {tmp_path}`" in str(error.value)
    assert "--download" in str(error.value)


def test_tfds_path_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        splits = data.load_splits(
            "cifar10", data_dir=tmp_path, download=True, validation_split="test"
        )
        assert (splits.num_classes, splits.num_train, splits.image_shape) == (10, 24, (32, 32, 3))
        assert splits.flip
        batches = data.make_pipeline(
            splits.train,
            image_size=32,
            batch_size=8,
            num_classes=10,
            training=True,
            num_examples=splits.num_train,
        )
        assert [tuple(x.shape) for x in next(iter(batches))] == [(8, 32, 32, 3), (8, 10)]


def test_cache_is_filled_once_and_survives_a_peeking_iterator():
    reads = tf.Variable(0, dtype="int64")

    def counted(image, label):
        reads.assign_add(1)
        return image, label

    images = tf.zeros((20, 8, 8, 1), "uint8")
    source = tf.data.Dataset.from_tensor_slices((images, tf.range(20))).map(counted)
    batches = data.make_pipeline(
        source, image_size=16, batch_size=4, num_classes=20, training=False, num_examples=20
    )
    assert int(reads.numpy()) == 20  # filled when the pipeline is made
    peek = iter(batches)
    next(peek)  # as Keras' fit does before its real pass
    labels = [int(i) for _, onehot in batches for i in np.argmax(onehot, axis=1)]
    assert labels == list(range(20)) and int(reads.numpy()) == 20


def test_a_stream_from_any_batch_is_the_tail_of_the_stream_from_the_start():
    """What a resumed run reads (`start_batch`) is what the uninterrupted run read there,
    across pass boundaries and with random crops; each pass is shuffled anew."""
    keras.utils.set_random_seed(0)  # a global seed of 0 once broke seeded passes
    images = tf.cast(tf.reshape(tf.range(30 * 8 * 8) % 251, (30, 8, 8, 1)), tf.uint8)
    dataset = tf.data.Dataset.from_tensor_slices((images, tf.range(30)))

    def stream(start_batch, count):
        batches = data.make_pipeline(
            dataset,
            image_size=6,
            batch_size=4,
            num_classes=30,
            training=True,
            num_examples=30,
            start_batch=start_batch,
            stop_batch=start_batch + count,
        )
        return list(batches.as_numpy_iterator())

    whole = stream(0, 20)  # 7 batches per pass (30 // 4)
    for start in (3, 9, 14):
        for resumed, original in zip(stream(start, 20 - start), whole[start:], strict=True):
            np.testing.assert_array_equal(resumed[0], original[0])
            np.testing.assert_array_equal(resumed[1], original[1])
    first_pass, second_pass = (
        [label.argmax(-1).tolist() for _, label in whole[p * 7 : p * 7 + 7]] for p in (0, 1)
    )
    assert first_pass != second_pass  # reshuffled, not repeated
