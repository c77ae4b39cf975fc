"""scikit-learn's bundled handwritten digits as a tensorflow-datasets dataset: `sklearn_digits`.

The 1,797 8x8 grey-scale digits of the UCI "Optical Recognition of Handwritten Digits" test set
(Alpaydin and Kaynak, 1998) ship inside scikit-learn, so this dataset needs no download: it is
the training job's offline default. Importing this module registers the builder with TFDS.
"""

import typing

import numpy as np
import tensorflow_datasets as tfds

NAME = "sklearn_digits"
TRAIN_EXAMPLES = 1348  # the remaining 449 (a quarter) form the test split
SPLIT_SEED = 0


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "The sklearn_digits dataset ships with scikit-learn: pip install 'keras-se[train]'."
        ) from error
    return load_digits()


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
    """The digits bundled with scikit-learn: 8x8x1 uint8 images, 10 classes, train/test splits.

    Pixel values 0..16 are scaled to 0..255. The split is a fixed shuffle (seed 0): 1,348
    training and 449 test images. Prepared offline in a second or two.

    Example:
    >>> import tempfile
    >>> import tensorflow_datasets as tfds
    >>> from keras_se.training.data import sklearn_digits
    >>> builder = tfds.builder("sklearn_digits", data_dir=tempfile.mkdtemp())
    >>> builder.download_and_prepare()  # doctest: +ELLIPSIS
    Downloading and preparing dataset ...
    Dataset sklearn_digits downloaded and prepared to .... Subsequent calls will reuse this data.
    >>> builder.info.splits["train"].num_examples, builder.info.splits["test"].num_examples
    (1348, 449)
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: typing.ClassVar = {
        "1.0.0": "First release: scikit-learn's digits, a fixed 1348/449 split."
    }

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "The 8x8 handwritten digits bundled with scikit-learn (UCI optdigits test set), "
                "pixel values 0..16 scaled to 0..255."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
            citation=(
                "@misc{optdigits, author={Alpaydin, E. and Kaynak, C.}, year={1998}, "
                "title={Optical Recognition of Handwritten Digits}, publisher={UCI}}"
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        digits = _digits()
        order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.images))
        images = np.round(digits.images * (255 / 16)).astype("uint8")[..., None]
        return {
            "train": self._generate_examples(images, digits.target, order[:TRAIN_EXAMPLES]),
            "test": self._generate_examples(images, digits.target, order[TRAIN_EXAMPLES:]),
        }

    def _generate_examples(self, images, labels, indices):
        for index in indices:
            yield int(index), {"image": images[index], "label": int(labels[index])}
