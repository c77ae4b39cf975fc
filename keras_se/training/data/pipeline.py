"""The tf.data input pipeline: decode, resize, augment, cache, shuffle, batch, prefetch.

Images leave the pipeline as float32 RGB in [0, 255]; the training job's model normalizes them
itself, so a saved model takes plain RGB images.
"""

import functools
import math

import tensorflow as tf

CACHE_LIMIT_BYTES = 1 << 30  # cache the resized images in memory when they take at most 1 GiB
SHUFFLE_BUFFER = 10_000
CROP_PADDING = 1.125  # training images are resized to 1.125x the size, then randomly cropped


def resize_to(size):
    """`(image, label) -> (float32 RGB image, size x size, label)`: how every image is resized
    (anti-aliased; grey-scale repeated to RGB), in the pipelines and for `keras-se predict`.

    Example:
    >>> image, label = resize_to(4)(tf.zeros((8, 6, 1), tf.uint8), 3)
    >>> tuple(image.shape), image.dtype.name, label
    ((4, 4, 3), 'float32', 3)
    """

    def resize(image, label):
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.image.resize(image, (size, size), antialias=True)
        return tf.ensure_shape(image, (size, size, 3)), label

    return resize


def _augment(image_size, flip):
    def augment(example, seeds):
        (image, label) = example
        image = tf.image.stateless_random_crop(image, (image_size, image_size, 3), seeds[0])
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        return image, label

    return augment


def make_pipeline(
    dataset,
    *,
    image_size,
    batch_size,
    num_classes,
    training,
    num_examples=-2,
    augment=True,
    flip=True,
    seed=0,
    full_batches=False,
    start_batch=0,
    stop_batch=None,
):
    """Batches of `(float32 RGB images in [0, 255], one-hot float32 labels)` from `(image, label)`.

    Every image becomes RGB (grey-scale is repeated). Validation images are resized to
    `image_size`. Training images are resized to `ceil(1.125 * image_size)`, cached, shuffled,
    then randomly cropped to `image_size` and flipped left-right (`flip`), with stateless seeds
    so that a run is reproducible. The last partial batch of each pass is dropped in training
    (fixed shapes for XLA and every replica busy) and kept in validation. The resized images
    are cached in memory (filled at once, in one pass) when `num_examples` says they fit in
    1 GiB. Sharding across workers is by data (`AutoShardPolicy.DATA`).

    Training batches are numbered over the whole run: pass `p` over the data holds batches
    `p * (num_examples // batch_size)` onwards, shuffled with the seed `seed * 1000003 + p`
    and augmented with seeds made of that and each example's position, so a batch is the
    same whichever batch the stream starts at. A run asks for the batches `start_batch` to
    `stop_batch`; a run resumed after epoch `k` starts at `k * steps_per_epoch` and reads
    exactly what the uninterrupted run read there.

    `full_batches=True` (validation only) pads the last batch to the full `batch_size` with
    blank images and yields `(images, labels, sample_weights)`. `tf.distribute` splits a
    global batch over the replicas in order, `batch_size / replicas` rows each, so a short last
    batch leaves the later replicas with none, and TensorFlow's oneDNN convolutions return an
    empty batch with the wrong shape (see docs/limitations.md). Full batches give
    every replica rows on every strategy. The padding weighs 0 and every real image
    `padded_count / num_examples`: Keras averages the loss over the rows it receives (padding
    included) and the metrics over the weights, so both then equal the plain mean over the
    real images.

    Args:
        dataset: a `tf.data.Dataset` of `(uint8 image HxWxC, int label)`, C in {1, 3}.
        image_size: side of the square output images.
        batch_size: global batch size.
        num_classes: depth of the one-hot labels (they allow label smoothing).
        training: training (augment, shuffle, drop the remainder) or validation pipeline.
        num_examples: size of `dataset` if known (-2 when unknown: no cache); needed by
            `full_batches` and by training.
        augment: random crop (and flip) in training; off gives a deterministic pipeline.
        flip: random horizontal flip (off for digits and text).
        seed: seed of the shuffle and the augmentation.
        full_batches: pad the last validation batch, adding sample weights (see above).
        start_batch: training: the first batch (see above).
        stop_batch: training: the end of the batches, excluded (a run: epochs x steps per
            epoch); None: the end of the pass that holds `start_batch`.

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Example:
    >>> images = tf.zeros((10, 8, 8, 1), "uint8")
    >>> data = tf.data.Dataset.from_tensor_slices((images, tf.range(10)))
    >>> batches = make_pipeline(data, image_size=32, batch_size=4, num_classes=10,
    ...                         training=True, num_examples=10)
    >>> [tuple(x.shape) for x in next(iter(batches))], len(batches)
    ([(4, 32, 32, 3), (4, 10)], 2)
    >>> len(make_pipeline(data, image_size=32, batch_size=4, num_classes=10, training=True,
    ...                   num_examples=10, start_batch=3, stop_batch=8))  # passes 2 to 4
    5
    >>> padded = make_pipeline(data, image_size=32, batch_size=4, num_classes=10,
    ...                        training=False, num_examples=10, full_batches=True)
    >>> [weights.numpy().tolist() for _, _, weights in padded][-1]
    [1.2000000476837158, 1.2000000476837158, 0.0, 0.0]
    """
    if full_batches and (training or num_examples < 1):
        raise ValueError(
            "`full_batches` pads validation batches and needs their number of examples: got "
            f"training={training!r}, num_examples={num_examples!r}."
        )
    if training and num_examples < batch_size:
        raise ValueError(
            "Training batches need `num_examples` (the size of `dataset`) of at least "
            f"`batch_size` {batch_size!r}, got {num_examples!r}."
        )
    if training and not (0 <= start_batch and (stop_batch is None or start_batch < stop_batch)):
        raise ValueError(
            "`start_batch` and `stop_batch` must satisfy 0 <= start_batch < stop_batch, got "
            f"{start_batch!r} and {stop_batch!r}."
        )
    stored_size = math.ceil(image_size * CROP_PADDING) if training and augment else image_size
    data = dataset.map(resize_to(stored_size), num_parallel_calls=tf.data.AUTOTUNE)
    if 0 <= num_examples * stored_size**2 * 3 * 4 <= CACHE_LIMIT_BYTES:
        data = data.cache()
        # Fill the cache now, in one pass. Keras' fit and evaluate peek at a batch through one
        # iterator, then read through a second while the first still runs: two iterators
        # filling one cache at once, which TF resolves by discarding a partial cache.
        data.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
    if training:
        data = _run_batches(
            data,
            start_batch,
            stop_batch,
            batch_size=batch_size,
            num_examples=num_examples,
            seed=seed,
            prepare=_training_example(image_size, num_classes, augment, flip),
        )
        return data.prefetch(tf.data.AUTOTUNE).with_options(_sharding())
    data = data.map(
        lambda image, label: (image, tf.one_hot(label, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if full_batches:
        data = _pad_to_full_batches(data, num_examples, batch_size, image_size, num_classes)
    data = data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return data.with_options(_sharding())


def _sharding():
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _training_example(image_size, num_classes, augment, flip):
    """`(seed pair, (image, label)) -> (image, one-hot label)`, augmented with that seed."""
    crop_and_flip = _augment(image_size, flip)

    def prepare(seeds, example):
        image, label = crop_and_flip(example, seeds) if augment else example
        return image, tf.one_hot(label, num_classes)

    return prepare


def _run_batches(data, start_batch, stop_batch, *, batch_size, num_examples, seed, prepare):
    """The training batches `start_batch` to `stop_batch` of a run (see `make_pipeline`).

    Each pass drops its last partial batch; the examples of the first pass before
    `start_batch` are skipped before they are augmented. The passes are Python-seeded
    datasets, concatenated: a seed tensor inside `flat_map` breaks `Dataset.shuffle` when the
    global seed is 0.
    """
    buffer = min(num_examples, SHUFFLE_BUFFER)
    batches_per_pass = num_examples // batch_size
    first_pass, offset = divmod(start_batch, batches_per_pass)
    if stop_batch is None:
        stop_batch = (first_pass + 1) * batches_per_pass
    last_pass = (stop_batch - 1) // batches_per_pass

    def one_pass(index, skip):
        pass_seed = seed * 1_000_003 + index

        def with_seeds(position, example):
            seeds = tf.stack([[pass_seed, 2 * position], [pass_seed, 2 * position + 1]])
            return prepare(seeds, example)

        shuffled = data.shuffle(buffer, seed=pass_seed, reshuffle_each_iteration=False)
        examples = shuffled.enumerate().skip(skip * batch_size)
        return examples.map(with_seeds, num_parallel_calls=tf.data.AUTOTUNE).batch(
            batch_size, drop_remainder=True
        )

    passes = [one_pass(first_pass, offset)]
    passes += [one_pass(index, 0) for index in range(first_pass + 1, last_pass + 1)]
    return functools.reduce(tf.data.Dataset.concatenate, passes).take(stop_batch - start_batch)


def _pad_to_full_batches(data, num_examples, batch_size, image_size, num_classes):
    padded_count = math.ceil(num_examples / batch_size) * batch_size
    weight = tf.constant(padded_count / num_examples, tf.float32)
    blank = (
        tf.zeros((image_size, image_size, 3), tf.float32),
        tf.zeros((num_classes,), tf.float32),
        tf.constant(0.0, tf.float32),
    )
    padding = tf.data.Dataset.from_tensors(blank).repeat(padded_count - num_examples)
    return data.map(lambda image, label: (image, label, weight)).concatenate(padding)
