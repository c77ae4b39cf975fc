"""`--xla auto`: compile the training step with XLA only where it is faster, by a timed probe.

Example:
>>> use_xla("on", None)
(True, {})
"""

import time

import keras
import numpy as np

# Timed training steps of a throwaway copy of the model in each mode.
XLA_PROBE_STEPS = 3


def time_training_steps(build_model, *, batch_shape, num_classes, jit_compile, steps):
    """Seconds per training step of a fresh `build_model()` on random data (the fastest of
    `steps` steps, after one untimed step that compiles).

    Example:
    >>> build = lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                                   keras.layers.Dense(4, activation="softmax")])
    >>> time_training_steps(build, batch_shape=(2, 8, 8, 3), num_classes=4,
    ...                     jit_compile=False, steps=2) > 0
    True
    """
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
        loss="categorical_crossentropy",
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, batch_shape).astype("float32")
    labels = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch_shape[0])]
    model.train_on_batch(images, labels)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    return min(times)


def use_xla(xla, probe):
    """Whether the training job compiles its step with XLA (`jit_compile=True`).

    `"on"` and `"off"` decide. `"auto"` calls `probe(jit_compile)` (seconds per step, e.g.
    `time_training_steps` on a throwaway copy of the model) for both modes and takes the
    faster. No size rule holds on a CPU: measured on 2 cores (images/s, graph mode / XLA, batch
    8), ResNet-50 trains at 67.8 / 38.0 at 32 px and 43.0 / 12.7 at 64 px, MobileNet at
    162 / 173 at 32 px and 96.7 / 39.1 at 96 px (docs/training.md, "Mixed precision and XLA").

    Returns:
        `(use, timings)`: whether to use XLA, and `{"graph": s, "xla": s}` per step when
        probed (else an empty dict).

    Example:
    >>> use_xla("auto", lambda jit_compile: 0.5 if jit_compile else 0.8)
    (True, {'graph': 0.8, 'xla': 0.5})
    >>> use_xla("off", None)
    (False, {})
    """
    if xla != "auto":
        return xla == "on", {}
    timings = {"graph": probe(False), "xla": probe(True)}
    return timings["xla"] < timings["graph"], timings


def choose_xla(config, *, saved, build_model, replicas, num_classes):
    """`(xla, probe timings)` for a run: `use_xla` with a probe of a throwaway
    `build_model()` on one replica's batch.

    A resumed `auto` run keeps the choice it `saved` when it started. Multi-worker runs cannot
    probe (each worker would decide for itself): `auto` uses XLA on GPUs, graph mode on CPUs.

    Example:
    >>> from keras_se.training.config import TrainConfig
    >>> choose_xla(TrainConfig(), saved=False, build_model=None, replicas=1, num_classes=10)
    (False, {})
    """
    if config.xla == "auto" and saved is not None:
        return saved, {}
    if config.xla == "auto" and config.strategy == "multi-worker":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU")), {}
    per_replica = config.batch_size // replicas
    return use_xla(
        config.xla,
        lambda jit_compile: time_training_steps(
            build_model,
            batch_shape=(per_replica, config.image_size, config.image_size, 3),
            num_classes=num_classes,
            jit_compile=jit_compile,
            steps=XLA_PROBE_STEPS,
        ),
    )
