"""Where training images come from: a TFDS dataset, a local image folder, or the embedded digits.

`load_splits` resolves a dataset argument, checks it before any work starts (unknown names,
unprepared datasets, empty or unreadable folders) and returns the raw `(image, label)` datasets
of a training and a validation split.
"""

import atexit
import contextlib
import dataclasses
import difflib
import io
import math
import os
import pathlib
import random
import shutil
import tempfile

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_se.training.data import sklearn_digits

DEFAULT_DATASET = sklearn_digits.NAME
VALIDATION_SPLIT_NAMES = ("validation", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what tfds.folder_dataset.ImageFolder reads
IMAGE_SIGNATURES = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n"}
IMAGE_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
_TAIL_BYTES = 1024
# Datasets whose labels change under a horizontal flip: no flip augmentation for them.
NO_FLIP_DATASETS = ("sklearn_digits", "mnist", "emnist", "kmnist", "svhn_cropped", "omniglot")


@dataclasses.dataclass
class Splits:
    """The raw `(image, label)` training and validation datasets and what is known of them.

    Attributes:
        name: the dataset name (or folder path) as given.
        train, validation: `tf.data.Dataset`s of `(uint8 image HxWxC, int64 label)`.
        num_classes: number of classes.
        class_names: the name of each class, by label (the TFDS label names; the class
            folders' names for an image folder).
        num_train, num_validation: number of examples (-2 when unknown).
        image_shape: the images' `(height, width, channels)`, None entries where they vary.
        flip: whether a horizontal flip preserves the labels.
    """

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    num_classes: int
    class_names: tuple
    num_train: int
    num_validation: int
    image_shape: tuple
    flip: bool


def default_data_dir():
    """TFDS' data folder: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.

    Example:
    >>> default_data_dir().name
    'tensorflow_datasets'
    """
    return pathlib.Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _check_tfds_name(name):
    known = tfds.list_builders()
    if name.split(":")[0].split("/")[0] in known:
        return
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown dataset {name!r}.{hint} Valid names are the {len(known)} TFDS datasets "
        f"(`tfds.list_builders()`, e.g. {DEFAULT_DATASET}, cifar10, imagenette), or the path of "
        "a folder of images in class sub-folders."
    )


def _prepare_command(name, data_dir):
    return f"tfds build {name} --data_dir {data_dir}"


def _split_names(info, train_split, validation_split):
    """Default splits: `train` and the first of validation/val/test, or a 90/10 cut of train."""
    if validation_split is not None:
        return train_split, validation_split
    for candidate in VALIDATION_SPLIT_NAMES:
        if candidate in info.splits:
            return train_split, candidate
    return f"{train_split}[:90%]", f"{train_split}[90%:]"


def _load_tfds(name, data_dir, download, train_split, validation_split):
    _check_tfds_name(name)
    data_dir = pathlib.Path(data_dir) if data_dir else default_data_dir()
    builder = tfds.builder(name, data_dir=str(data_dir))
    if name == DEFAULT_DATASET and not builder.is_prepared():
        # Built from scikit-learn's bundled files in a second: nothing to download.
        with contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare()
    elif not builder.is_prepared():
        if not download:
            raise FileNotFoundError(
                f"Dataset {name!r} is not prepared in {data_dir} and downloading is off. "
                f"Prepare it once with `{_prepare_command(name, data_dir)}` (or run again "
                "with --download), then train."
            )
        builder.download_and_prepare()
    train_split, validation_split = _split_names(builder.info, train_split, validation_split)
    (train, validation), info = tfds.load(
        name,
        split=[train_split, validation_split],
        data_dir=str(data_dir),
        download=False,
        as_supervised=True,
        with_info=True,
    )
    return Splits(
        name=name,
        train=train,
        validation=validation,
        num_classes=info.features["label"].num_classes,
        class_names=tuple(info.features["label"].names),
        num_train=int(train.cardinality()),
        num_validation=int(validation.cardinality()),
        image_shape=tuple(info.features["image"].shape),
        flip=name.split(":")[0].split("/")[0] not in NO_FLIP_DATASETS,
    )


def _image_files(folder):
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _image_fault(path):
    """Why `path` is not a whole JPEG or PNG file, or None.

    Reads the first 8 bytes and the last KiB only. A JPEG ends with its EOI marker (FF D9, a
    pair that cannot occur inside the compressed data) and a PNG with its IEND chunk, so a
    file cut short, the usual damage of an interrupted copy, is found without decoding.
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(max(0, path.stat().st_size - _TAIL_BYTES))
        tail = handle.read()
    kind = next((kind for kind, magic in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)
    if kind is None:
        return "not a JPEG or PNG image"
    if IMAGE_END_MARKERS[kind] not in tail:
        return f"a {kind} image cut short (no end marker)"
    return None


def _check_images(files):
    faults = [(str(path), fault) for path in files if (fault := _image_fault(path))]
    if faults:
        shown = "; ".join(f"{path}: {fault}" for path, fault in faults[:3])
        more = f" (and {len(faults) - 3} more)" if len(faults) > 3 else ""
        raise ValueError(
            f"{len(faults)} file(s) in the image folder are not readable JPEG or PNG images: "
            f"{shown}{more}. Remove, replace or convert them."
        )


def _class_folders(folder):
    classes = sorted(path for path in folder.iterdir() if path.is_dir())
    images = {path.name: _image_files(path) for path in classes}
    if not any(images.values()):
        raise ValueError(
            f"The image folder {folder} has no classes: expected sub-folders (one per class) "
            f"holding {'/'.join(IMAGE_EXTENSIONS)} images, or train/ and validation/ folders "
            "of such class sub-folders."
        )
    empty = [name for name, files in images.items() if not files]
    if empty:
        raise ValueError(
            f"Class folder(s) without images in {folder}: {', '.join(empty)}. Add images or "
            "remove the folder: an empty class would never be predicted."
        )
    if len(images) < 2:
        raise ValueError(
            f"The image folder {folder} has one class ({next(iter(images))}); a classifier "
            "needs at least 2 class sub-folders."
        )
    return images


def _split_folder(folder, validation_fraction, seed):
    """Link each class's images into train/ and validation/ folders of a temporary root."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="keras_se_images_"))
    atexit.register(shutil.rmtree, root, True)
    for label, files in _class_folders(folder).items():
        files = list(files)
        random.Random(f"{seed}/{label}").shuffle(files)
        count = round(len(files) * validation_fraction) if len(files) > 1 else 0
        for split, members in (("validation", files[:count]), ("train", files[count:])):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for path in members:
                (root / split / label / path.name).symlink_to(path.resolve())
    return root


def _load_folder(folder, validation_fraction, seed):
    splits = {path.name: path for path in folder.iterdir() if path.is_dir()}
    validation = next((splits[name] for name in VALIDATION_SPLIT_NAMES if name in splits), None)
    if "train" in splits and validation is not None:
        root, validation_name = folder, validation.name
        classes = {}
        for split in (splits["train"], validation):
            images = _class_folders(split)
            classes[split.name] = sorted(images)
            _check_images([f for files in images.values() for f in files])
        if classes["train"] != classes[validation.name]:
            only_train = sorted(set(classes["train"]) - set(classes[validation.name]))
            only_validation = sorted(set(classes[validation.name]) - set(classes["train"]))
            raise ValueError(
                f"train/ and {validation.name}/ in {folder} must hold the same class folders: "
                f"only in train/: {', '.join(only_train) or 'none'}; only in "
                f"{validation.name}/: {', '.join(only_validation) or 'none'}."
            )
    else:
        _check_images([f for files in _class_folders(folder).values() for f in files])
        root, validation_name = _split_folder(folder, validation_fraction, seed), "validation"
        if not any(path.is_file() for path in (root / "validation").rglob("*")):
            raise ValueError(
                f"The image folder {folder} has too few images to hold out "
                f"{validation_fraction:.0%} of a class for validation (a class needs at least "
                f"{math.floor(0.5 / validation_fraction) + 1} images): add images, or put a "
                "validation/ folder next to a train/ folder."
            )
    builder = tfds.folder_dataset.ImageFolder(str(root))
    train, validation = (
        builder.as_dataset(split=split, as_supervised=True) for split in ("train", validation_name)
    )
    return Splits(
        name=str(folder),
        train=train,
        validation=validation,
        num_classes=builder.info.features["label"].num_classes,
        class_names=tuple(builder.info.features["label"].names),
        num_train=builder.info.splits["train"].num_examples,
        num_validation=builder.info.splits[validation_name].num_examples,
        image_shape=(None, None, 3),
        flip=True,
    )


def load_splits(
    dataset=DEFAULT_DATASET,
    *,
    data_dir=None,
    download=False,
    train_split="train",
    validation_split=None,
    validation_fraction=0.1,
    seed=0,
):
    """Resolve `dataset` and return its raw training and validation splits as `Splits`.

    Args:
        dataset: a TFDS name (`"cifar10"`, `"imagenette/320px-v2"`), the path of a folder of
            images (class sub-folders, optionally inside `train/` and `validation/`), or the
            embedded default `"sklearn_digits"` (prepared offline on first use).
        data_dir: TFDS data folder (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        download: allow TFDS to download and prepare a dataset that is not prepared yet.
        train_split: the TFDS training split.
        validation_split: the TFDS validation split; by default `validation`, `val` or `test`,
            whichever exists, else the last 10% of `train_split`.
        validation_fraction: share of each class held out for validation from a folder that
            has no validation split.
        seed: seed of that hold-out.

    Returns:
        `Splits`.

    Example:
    >>> import tempfile
    >>> splits = load_splits("sklearn_digits", data_dir=tempfile.mkdtemp())
    >>> splits.num_classes, splits.num_train, splits.num_validation, splits.image_shape
    (10, 1348, 449, (8, 8, 1))
    """
    if not isinstance(dataset, (str, os.PathLike)):
        raise TypeError(f"`dataset` must be a name or a folder path, got {dataset!r}.")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1), got {validation_fraction!r}.")
    path = pathlib.Path(dataset).expanduser()
    if isinstance(dataset, os.PathLike) or os.sep in str(dataset) or path.is_dir():
        if not path.is_dir():
            raise ValueError(f"The image folder {str(dataset)!r} does not exist.")
        return _load_folder(path, validation_fraction, seed)
    return _load_tfds(str(dataset), data_dir, download, train_split, validation_split)


def labelled_images(dataset, split="validation", *, data_dir=None):
    """A split's images decoded by Pillow, with their class names, for classifiers whose
    preprocessing works on Pillow images (timm's evaluation transform, `load_image`).

    Args:
        dataset: a folder of class sub-folders (the split itself, or holding it as `train/`
            and `validation/`, `val/` or `test/`), or a prepared TFDS dataset (`imagenet2012`
            after its manual download, `imagenette`).
        split: `"validation"` (a TFDS dataset's first of validation/val/test) or `"train"`.
        data_dir: TFDS data folder (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).

    Returns:
        `(class_names, count, examples)`: the dataset's class names by label, its number of
        images, and an iterator of `(PIL RGB image, label)`.

    Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for wnid in ("n01440764", "n01443537"):
    ...     (root / wnid).mkdir()
    ...     Image.new("L", (8, 6)).save(root / wnid / "a.png")
    >>> names, count, examples = labelled_images(root)
    >>> image, label = next(examples)
    >>> names, count, image.mode, image.size, label
    (('n01440764', 'n01443537'), 2, 'RGB', (8, 6), 0)
    """
    from PIL import Image

    path = pathlib.Path(dataset).expanduser()
    if isinstance(dataset, os.PathLike) or os.sep in str(dataset) or path.is_dir():
        if not path.is_dir():
            raise ValueError(f"The image folder {str(dataset)!r} does not exist.")
        names = (split,) if split == "train" else VALIDATION_SPLIT_NAMES
        folder = next((path / n for n in names if (path / n).is_dir()), path)
        classes = _class_folders(folder)
        files = [(file, label) for label, name in enumerate(classes) for file in classes[name]]
        _check_images([file for file, _ in files])

        def read_files():
            for file, label in files:
                with Image.open(file) as image:
                    yield image.convert("RGB"), label

        return tuple(classes), len(files), read_files()
    name = str(dataset)
    _check_tfds_name(name)
    data_dir = pathlib.Path(data_dir) if data_dir else default_data_dir()
    builder = tfds.builder(name, data_dir=str(data_dir))
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {data_dir}. Prepare it once with "
            f"`{_prepare_command(name, data_dir)}` (imagenet2012 needs its manual download in "
            f"{data_dir}/downloads/manual), then evaluate."
        )
    split_name = "train" if split == "train" else _split_names(builder.info, "train", None)[1]
    examples = builder.as_dataset(
        split=split_name, as_supervised=True, decoders={"image": tfds.decode.SkipDecoding()}
    )

    def read_records():
        for encoded, label in examples.as_numpy_iterator():
            with Image.open(io.BytesIO(encoded)) as image:
                yield image.convert("RGB"), int(label)

    names = tuple(builder.info.features["label"].names)
    return names, builder.info.splits[split_name].num_examples, read_records()
