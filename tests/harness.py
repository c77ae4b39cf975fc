"""The shared test harness that every keras-se layer and model runs through.

Modelled on keras-hub's `TestCase.run_layer_test` and `run_backbone_test`: `run_layer_test`
checks a layer's output shapes, config round trip, Sequential and functional use, mixed
precision, that training reaches every weight, and `.keras` saving; `run_model_test` checks an
application constructor the same way. Everything uses `keras.ops`, so the same checks run on
every backend.
"""

import contextlib
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def random_batch(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize_weights(layer, seed=1):
    """Give every weight a non-trivial random value: BN variances positive, gammas near 1, so
    that inference-mode BatchNorm and every bias matter in numerical comparisons."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in layer.weights:
        value = rng.normal(scale=0.3, size=weight.shape)
        if weight.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, size=weight.shape)
        elif weight.path.endswith("gamma"):
            value = 1.0 + value
        values.append(value.astype("float32"))
    layer.set_weights(values)


def randomize_statistics(model, seed=1):
    """Random BatchNorm statistics, gammas, betas and biases; kernels keep their initialization.

    Deep networks keep a sane output scale this way, while every BatchNorm and bias still
    changes the output, so numerical comparisons see them.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = weight.path.rsplit("/", 1)[-1]
        if name == "moving_variance":
            value = rng.uniform(0.5, 2.0, size=weight.shape)
        elif name == "gamma":
            value = rng.uniform(0.5, 1.5, size=weight.shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(scale=0.2, size=weight.shape)
        else:
            continue
        weight.assign(value.astype("float32"))


def layers_moved(reference, model, keep=("predictions",)):
    """The names of `reference`'s layers with weights (but those in `keep`) whose weights in
    `model` (its layer of the same name) are no longer `reference`'s, value for value."""
    return sorted(
        layer.name
        for layer in reference.layers
        if layer.weights
        and layer.name not in keep
        and any(
            not np.array_equal(to_numpy(a), to_numpy(b))
            for a, b in zip(layer.weights, model.get_layer(layer.name).weights, strict=True)
        )
    )


def check_output_shape(layer, x, expected_shape):
    """The eager output, `compute_output_shape` and a symbolic call agree with `expected_shape`."""
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_shape)
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(expected_shape)
    symbolic = layer(keras.Input(x.shape[1:]))
    assert tuple(symbolic.shape) == (None, *tuple(expected_shape)[1:])


def check_other_layout_refused(layer, x):
    """Built, the layer refuses the same feature maps in the other data format, naming the
    channel axis and the count it was built for (its first call cannot tell them apart).
    Inputs whose two candidate channel axes have the same size are not informative; the
    layer tests use none."""
    first = layer.data_format == "channels_first"
    axis = 1 if first else x.ndim - 1
    other = np.moveaxis(x, axis, -1 if first else 1)
    assert other.shape[axis] != x.shape[axis], "use an input whose layouts differ"
    spec_axis = 1 if first else -1
    with pytest.raises(ValueError, match=f"expected axis {spec_axis} of input shape to have value"):
        layer(other)


def check_empty_batch(layer, x, expected_shape):
    """A batch of zero examples gives zero outputs of the expected shape (a replica of a
    distributed evaluation can receive one; TensorFlow's oneDNN convolutions get it wrong)."""
    empty = x[:0]
    assert empty.shape[0] == 0
    assert tuple(layer(empty).shape) == (0, *tuple(expected_shape)[1:])


def check_config_round_trip(layer, x):
    """`get_config` is JSON-serializable and `from_config` rebuilds an identical layer."""
    config = layer.get_config()
    json.dumps(config)
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(layer(x)), rtol=1e-6, atol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def check_sequential_and_functional(make_layer, x):
    """The layer works in a Sequential and a functional model, which agree on the same weights."""
    inputs = keras.Input(x.shape[1:])
    functional = keras.Model(inputs, make_layer()(inputs))
    sequential = keras.Sequential([keras.Input(x.shape[1:]), make_layer()])
    sequential.set_weights(functional.get_weights())
    np.testing.assert_allclose(
        functional.predict(x, verbose=0), sequential.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def check_mixed_precision(make_layer, x, tolerance=0.05):
    """Under each mixed policy: variables stay float32, the output is in the compute dtype and
    close to the float32 layer's output with the same weights."""
    reference = make_layer()
    expected = to_numpy(reference(x))
    for policy in MIXED_POLICIES:
        layer = make_layer(dtype=policy)
        layer(x)
        layer.set_weights(reference.get_weights())
        y = layer(x)
        compute_dtype = keras.DTypePolicy(policy).compute_dtype
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype, policy
        for variable in layer.weights:
            assert variable.dtype == "float32", (policy, variable.path, variable.dtype)
        np.testing.assert_allclose(
            to_numpy(keras.ops.cast(y, "float32")), expected, rtol=tolerance, atol=tolerance
        )


def check_fit_trains_every_weight(make_layer, x, classes=3, epochs=6):
    """A few full-batch fit steps lower the loss and change every trainable weight of the layer."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(x.shape[1:])
    layer = make_layer()
    outputs = keras.layers.Dense(classes)(keras.layers.Flatten()(layer(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    labels = np.arange(len(x)) % classes
    before = [to_numpy(v).copy() for v in layer.trainable_variables]
    assert before, "the layer has no trainable weights"
    losses = model.fit(x, labels, epochs=epochs, batch_size=len(x), verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses
    for variable, old in zip(layer.trainable_variables, before, strict=True):
        assert not np.allclose(to_numpy(variable), old), f"{variable.path} was not trained"
    return model


def fit_briefly(model, x, y, epochs=3, learning_rate=1e-3):
    """Fit `model` full-batch on `(x, y)` with Adam; return the trainable weights before
    training and the loss of every epoch.

    The fit runs eagerly: tracing the training step of a model with hundreds of layers costs
    three to four times more than these few steps themselves (SE-Inception-ResNet-v2: 99 s
    traced, 28 s eager). Compiled training is covered by the layer harness and
    `tests/applications/test_portable.py`; what this checks is that gradients reach every weight.
    """
    model.compile(
        keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", run_eagerly=True
    )
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    losses = model.fit(x, y, epochs=epochs, batch_size=len(x), verbose=0).history["loss"]
    return before, losses


def check_trained(model, before, losses):
    """The loss went down and every trainable weight changed (gradients reach every layer)."""
    assert losses[-1] < losses[0], losses
    for weight, old in zip(model.trainable_weights, before, strict=True):
        assert not np.array_equal(to_numpy(weight), old), f"{weight.path} was not trained"


def check_keras_file_round_trip(model, x, directory):
    """A `.keras` file loads back with `safe_mode=True` and predicts the same."""
    path = directory / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )
    return loaded


_FRESH_LOADER = textwrap.dedent(
    """
    import sys, pathlib
    import numpy as np
    import keras
    import keras_se  # registers the custom layers, as a user does before loading

    for path in sorted(pathlib.Path(sys.argv[1]).glob("*.keras")):
        model = keras.saving.load_model(path, safe_mode=True)
        x = np.load(path.with_suffix(".x.npy"))
        # A direct inference call, not predict(): the same computation without tracing a
        # tf.function per model (about half of the time for the full-size models).
        y = model(x, training=False)
        np.save(path.with_suffix(".loaded.npy"), keras.ops.convert_to_numpy(y))
        del model  # one model in memory at a time
        keras.backend.clear_session()
    """
)


def run_for_result(argv, env=None, timeout=300):
    """Run `argv` (a Python script printing `RESULT <json>`) in a fresh process.

    Returns `(returncode, result, output)`: the last RESULT line's JSON (None without one) and
    the tail of stdout and stderr, for assertion messages.
    """
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT ") :]) if lines else None
    return done.returncode, result, done.stdout[-3000:] + done.stderr[-3000:]


def check_fresh_process_round_trip(models, directory):
    """Save `{name: (model, x)}` as `.keras` files, load them all in a new Python process with
    `safe_mode=True` and compare its predictions with this process's."""
    for name, (model, x) in models.items():
        path = directory / f"{name}.keras"
        model.save(path)
        np.save(path.with_suffix(".x.npy"), x)
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_LOADER, str(directory)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (model, x) in models.items():
        loaded = np.load(directory / f"{name}.loaded.npy")
        expected = to_numpy(model(x, training=False))
        np.testing.assert_allclose(loaded, expected, rtol=1e-6, atol=1e-6)


def run_layer_test(make_layer, x, expected_shape, tmp_path, mixed_precision_tolerance=0.05):
    """Every harness check for one layer configuration.

    `make_layer(**kwargs)` returns a fresh, unbuilt layer; `kwargs` may carry `dtype`.
    """
    layer = make_layer()
    check_output_shape(layer, x, expected_shape)
    check_other_layout_refused(layer, x)
    check_empty_batch(layer, x, expected_shape)
    check_config_round_trip(layer, x)
    check_sequential_and_functional(make_layer, x)
    check_mixed_precision(make_layer, x, mixed_precision_tolerance)
    model = check_fit_trains_every_weight(make_layer, x)
    check_keras_file_round_trip(model, x, tmp_path)


def runs_channels_first():
    """TensorFlow runs convolutions channels_first only on a GPU (its CPU kernels are NHWC)."""
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def global_setting(set_value, value, default):
    """Keras' global image data format or dtype policy set to `value` for a `with` block."""
    set_value(value)
    try:
        yield
    finally:
        set_value(default)


def _json_config(model):
    # A `.keras` file stores the config as JSON: tuples come back as lists.
    return json.loads(json.dumps(model.get_config()))


def check_model_output(model, x, classes):
    """The symbolic and the eager output have `classes` probabilities per image."""
    assert model.output_shape == (None, classes)
    probabilities = to_numpy(model(x, training=False))
    assert probabilities.shape == (len(x), classes)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def check_model_file_round_trip(model, x, directory):
    """Saved as `.keras` and loaded with `safe_mode=True`, the model has the same config (the
    config round trip: loading rebuilds the model from it) and computes the same outputs."""
    path = directory / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert _json_config(loaded) == _json_config(model)
    np.testing.assert_allclose(
        to_numpy(loaded(x, training=False)),
        to_numpy(model(x, training=False)),
        rtol=1e-6,
        atol=1e-6,
    )


def check_model_channels_first(make_model, model, x):
    """Built channels_first, the model has the same weights and output; where the backend runs
    channels_first convolutions, it computes the same outputs from the transposed images."""
    size = x.shape[1]
    with global_setting(keras.config.set_image_data_format, "channels_first", "channels_last"):
        first = make_model(input_shape=(x.shape[-1], size, x.shape[2]))
    assert first.output_shape == model.output_shape
    assert [w.shape for w in first.weights] == [w.shape for w in model.weights]
    if runs_channels_first():
        first.set_weights(model.get_weights())
        np.testing.assert_allclose(
            to_numpy(first(x.transpose(0, 3, 1, 2), training=False)),
            to_numpy(model(x, training=False)),
            rtol=1e-5,
            atol=1e-6,
        )


def check_model_mixed_precision(make_model, model, x, policy="mixed_float16", tolerance=0.01):
    """Built under a mixed global policy, every variable is float32, the output is in the
    compute dtype and close to the float32 model's with the same weights."""
    with global_setting(keras.config.set_dtype_policy, policy, "float32"):
        mixed = make_model(input_shape=x.shape[1:])
    mixed.set_weights(model.get_weights())
    y = mixed(x, training=False)
    assert keras.backend.standardize_dtype(y.dtype) == keras.DTypePolicy(policy).compute_dtype
    assert {variable.dtype for variable in mixed.weights} == {"float32"}
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(y, "float32")),
        to_numpy(model(x, training=False)),
        atol=tolerance,
    )


def run_model_test(constructor, min_size, directory, classes=4, learning_rate=1e-3, **options):
    """Every harness check for one application constructor, as keras-hub's `run_backbone_test`
    does for its backbones.

    The model is built at its smallest input size (`min_size` square; one pixel less is
    refused) with a `classes`-way head, so that every constructor, SENet-154 included, runs
    on a CPU in seconds. `options` are more constructor arguments (e.g. MobileNet's `alpha`).
    Checks: input size refusal, a classifier too large for the machine refused before it is
    allocated (naming the width the built model's head really has), output shapes, the
    config round trip through a `.keras` file, channels_first, mixed precision, and a short
    `fit` (Adam at `learning_rate`) that lowers the loss and changes every trainable weight.
    """
    small = min_size - 1
    with pytest.raises(ValueError, match=f"at least {min_size}x{min_size}"):
        constructor(input_shape=(small, small, 3), classes=classes, **options)
    with pytest.raises(ValueError, match=r"classifier \(1000000000000 classes from") as refused:
        constructor(input_shape=(min_size, min_size, 3), classes=10**12, **options)

    def make_model(**shape):
        return constructor(classes=classes, **shape, **options)

    keras.utils.set_random_seed(0)
    x = random_batch((8, min_size, min_size, 3), seed=7)
    model = make_model(input_shape=x.shape[1:])
    randomize_statistics(model)  # so that the comparisons below see every BatchNorm
    head = next(layer for layer in reversed(model.layers) if layer.weights)  # the classifier
    assert f"from {head.kernel.shape[-2]} features" in str(refused.value)
    check_model_output(model, x[:2], classes)
    check_model_file_round_trip(model, x[:2], directory)
    check_model_channels_first(make_model, model, x[:2])
    check_model_mixed_precision(make_model, model, x[:2])
    check_trained(
        model, *fit_briefly(model, x, np.arange(len(x)) % classes, learning_rate=learning_rate)
    )
