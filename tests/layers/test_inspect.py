"""`keras_se.inspect`: the gates and branch weights it returns against numpy, computed from the
layers' weights; the model untouched; the summaries against direct numpy sums; bad input.

In `tests/layers`, so the backend tests run it on JAX and PyTorch too."""

import keras
import numpy as np
import numpy_reference as ref
import pytest
from harness import random_batch, randomize_weights, to_numpy
from layer_weights import se_weights, sk_weights

from keras_se import SelectiveKernel, SqueezeExcite, inspect
from keras_se.layers import recording

SHAPE = (6, 8, 8, 8)
CLASSES = 3


def chain_model(select):
    """Every SE mode, then SK with 2 and 3 branches, one after another."""
    images = keras.Input(SHAPE[1:])
    x = SqueezeExcite(ratio=2, name="se_channel")(images)
    x = SqueezeExcite(mode="spatial", name="se_spatial")(x)
    x = SqueezeExcite(
        ratio=2, mode="concurrent", squeeze="avg_max", gate="hard_sigmoid", name="se_concurrent"
    )(x)
    x = SelectiveKernel(filters=8, min_channels=4, select=select, name="sk2")(x)
    x = SelectiveKernel(
        filters=8,
        kernel_size=[3, 3, 1],
        dilation_rate=[1, 2, 1],
        min_channels=4,
        select=select,
        name="sk3",
    )(x)
    model = keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))
    for layer in model.layers:
        randomize_weights(layer, seed=len(layer.name))
    return model


def reference_attention(model, x, select):
    """The chain in numpy: every layer's output feeds the next, every gate is kept."""
    gates = {}
    x, found = ref.squeeze_excite(x, se_weights(model.get_layer("se_channel")), with_gates=True)
    gates["se_channel"] = found
    x, found = ref.squeeze_excite(
        x, se_weights(model.get_layer("se_spatial")), mode="spatial", with_gates=True
    )
    gates["se_spatial"] = found
    x, found = ref.squeeze_excite(
        x,
        se_weights(model.get_layer("se_concurrent")),
        mode="concurrent",
        squeeze="avg_max",
        gate="hard_sigmoid",
        with_gates=True,
    )
    gates["se_concurrent"] = found
    for name in ("sk2", "sk3"):
        layer = model.get_layer(name)
        x, gates[name] = ref.selective_kernel(
            x,
            sk_weights(layer),
            kernel_sizes=layer.kernel_sizes,
            dilations=layer.dilation_rates,
            select=select,
            with_attention=True,
        )
    return gates


@pytest.fixture(scope="module", params=["softmax", "sigmoid"])
def chain(request):
    return request.param, chain_model(request.param)


def test_gates_equal_the_numpy_reference_in_every_mode(chain):
    select, model = chain
    x = random_batch(SHAPE)
    found = inspect.attention(model, x, batch_size=4)  # two batches, joined
    expected = reference_attention(model, x, select)
    assert found.names == ("se_channel", "se_spatial", "se_concurrent", "sk2", "sk3")
    assert found.count == SHAPE[0] and found.labels is None
    assert [layer.kind for layer in found.layers] == ["squeeze_excite"] * 3 + [
        "selective_kernel"
    ] * 2
    for name in ("se_channel", "se_concurrent"):
        np.testing.assert_allclose(
            found[name].values, expected[name]["channel"], rtol=1e-4, atol=1e-5
        )
    assert found["se_channel"].spatial is None and found["se_spatial"].values is None
    for name in ("se_spatial", "se_concurrent"):
        assert found[name].spatial.shape == (SHAPE[0], 8, 8)
        np.testing.assert_allclose(
            found[name].spatial, expected[name]["spatial"], rtol=1e-4, atol=1e-5
        )
    for name, branches in (("sk2", 2), ("sk3", 3)):
        assert found[name].values.shape == (SHAPE[0], branches, 8)
        np.testing.assert_allclose(found[name].values, expected[name], rtol=1e-4, atol=1e-5)
    sums = found["sk3"].values.sum(axis=1)
    # softmax: the weights of a channel sum to 1; sigmoid: they do not (the negative control)
    assert np.allclose(sums, 1.0, atol=1e-5) == (select == "softmax")


def test_inspection_leaves_the_model_and_its_outputs_unchanged(chain):
    _, model = chain
    x = random_batch(SHAPE, seed=3)
    outputs, weights, layers = to_numpy(model(x)), model.get_weights(), list(model.layers)
    inspect.attention(model, x)
    assert list(model.layers) == layers
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # BatchNorm statistics included
    np.testing.assert_array_equal(to_numpy(model(x)), outputs)


def test_nothing_is_reported_outside_a_recording(chain):
    _, model = chain
    seen = []
    with recording.recording(lambda layer, kind, value: seen.append(kind)):
        model(random_batch(SHAPE))
    # every layer reports once per call; se_concurrent reports both its gates
    assert seen == ["channel", "spatial", "channel", "spatial", "branches", "branches"]
    model(random_batch(SHAPE))
    assert len(seen) == 6


def test_chosen_layers_data_forms_and_bounded_batches(chain):
    _, model = chain
    x = random_batch((10, *SHAPE[1:]))
    labels = np.arange(10) % CLASSES
    whole = inspect.attention(model, (x, labels), layers=["sk3", "se_channel"])
    assert whole.names == ("se_channel", "sk3")  # in the order the model ran them
    np.testing.assert_array_equal(whole.labels, labels)

    def batches():  # an iterable of (images, one-hot labels) batches, as tf.data yields
        for start in range(0, 10, 4):
            yield x[start : start + 4], np.eye(CLASSES)[labels[start : start + 4]]

    streamed = inspect.attention(model, batches(), layers="sk3", max_batches=2)
    assert streamed.count == 8  # two batches of 4, the third never read
    np.testing.assert_array_equal(streamed.labels, labels[:8])
    np.testing.assert_allclose(streamed["sk3"].values, whole["sk3"].values[:8], atol=1e-6)


def test_layers_of_nested_models_are_named_by_their_model():
    inner = keras.Sequential(
        [keras.Input((8, 8, 8)), SqueezeExcite(ratio=2, name="se")], name="inner"
    )
    images = keras.Input((8, 8, 8))
    outer = keras.Model(images, SqueezeExcite(ratio=2, name="se")(inner(images)))
    assert list(inspect.attention_layers(outer)) == ["inner/se", "se"]
    found = inspect.attention(outer, random_batch((2, 8, 8, 8)))
    assert found.names == ("inner/se", "se")
    direct = inspect.attention(inner, random_batch((2, 8, 8, 8)))
    np.testing.assert_allclose(found["inner/se"].values, direct["se"].values, atol=1e-6)


def test_class_excitation_and_statistics_equal_direct_sums(chain):
    _, model = chain
    x = random_batch((9, *SHAPE[1:]), seed=5)
    labels = np.array([0, 2, 2, 0, 2, 0, 0, 2, 2])  # class 1 has no image
    found = inspect.attention(model, (x, labels))
    per_class = inspect.class_excitation(found, num_classes=CLASSES)
    assert sorted(per_class) == ["se_channel", "se_concurrent"]  # SE layers with channel gates
    gates = found["se_channel"].values
    assert per_class["se_channel"].shape == (CLASSES, 8)
    np.testing.assert_allclose(per_class["se_channel"][0], gates[labels == 0].mean(axis=0))
    np.testing.assert_allclose(per_class["se_channel"][2], gates[labels == 2].mean(axis=0))
    assert np.isnan(per_class["se_channel"][1]).all()

    rows = {row["layer"]: row for row in inspect.gate_statistics(found, saturation=0.05)}
    assert list(rows) == list(found.names)
    branch = found["sk2"].values
    assert rows["sk2"]["channels"] == 8 and rows["sk2"]["class_spread"] is None
    assert rows["sk2"]["mean"] == pytest.approx(branch.mean(), abs=1e-6)
    assert rows["sk2"]["std"] == pytest.approx(branch.std(), abs=1e-6)
    saturated = np.mean((branch <= 0.05) | (branch >= 0.95))
    assert rows["sk2"]["saturated"] == pytest.approx(saturated)
    spread = np.std(per_class["se_channel"][[0, 2]], axis=0).mean()
    assert rows["se_channel"]["class_spread"] == pytest.approx(spread, abs=1e-6)
    assert rows["se_spatial"]["channels"] is None  # the spatial gate has no channels


def test_zoom_enlarges_monotonically():
    images = np.zeros((1, 24, 24, 1), "float32")
    images[0, 10:14, 10:14] = 1.0  # a 4x4 object in the middle
    np.testing.assert_allclose(inspect.zoom(images, 1.0), images, atol=1e-6)
    areas = [float(inspect.zoom(images, scale).sum()) for scale in (1.0, 1.5, 2.0, 3.0)]
    for scale, area in zip((1.0, 1.5, 2.0, 3.0), areas, strict=True):
        assert area == pytest.approx(16 * scale**2, rel=0.15)  # the area grows as scale^2
    assert areas == sorted(areas)
    first = np.moveaxis(images, -1, 1)  # the same crop of channels_first images
    np.testing.assert_allclose(
        inspect.zoom(first, 2.0, "channels_first"), np.moveaxis(inspect.zoom(images, 2.0), -1, 1)
    )


def test_scale_attention_groups_each_scale_like_separate_inspections(chain):
    _, model = chain
    x = random_batch((5, *SHAPE[1:]), seed=7)
    result = inspect.scale_attention(model, x, scales=[2, 1], batch_size=2)  # 3 batches
    assert result.scales == (1.0, 2.0) and result.count == 5
    assert sorted(result.means) == ["sk2", "sk3"]  # SK layers only
    assert result.large_branch == {"sk2": 1, "sk3": 1}  # 3x3 dilated 2: a 5x5 field
    for index, scale in enumerate(result.scales):
        separate = inspect.attention(model, inspect.zoom(x, scale), layers=["sk2", "sk3"])
        for name in ("sk2", "sk3"):
            np.testing.assert_allclose(
                result.means[name][index], separate[name].values.mean(axis=0), atol=1e-5
            )
    curve = result.large_branch_attention("sk2")
    np.testing.assert_allclose(curve, result.means["sk2"][:, 1].mean(axis=-1))
    assert result.rises("sk2") == bool(curve[1] > curve[0])


def test_bad_input_is_refused_in_one_line(chain):
    _, model = chain
    x = random_batch(SHAPE)
    plain = keras.Sequential([keras.Input((8, 8, 8)), keras.layers.Conv2D(4, 3)], name="plain")
    images, shared = keras.Input((8, 8, 8)), SqueezeExcite(ratio=2, name="shared")
    twice = keras.Model(images, shared(shared(images)))
    cases = [
        (lambda: inspect.attention(plain, x), "contains no SqueezeExcite or SelectiveKernel"),
        (lambda: inspect.attention(model, x, layers=["se9"]), "`layers` names 'se9'"),
        (lambda: inspect.attention(twice, x), "'shared' runs 2 times in one call"),
        (lambda: inspect.attention(model, x[:0]), "`data` holds no images"),
        (lambda: inspect.attention(model, iter([])), "`data` holds no images"),
        (lambda: inspect.attention(model, random_batch((2, 8, 8, 3))), r"shape \(8, 8, 3\)"),
        (lambda: inspect.attention(model, x, batch_size=0), "`batch_size` must be >= 1"),
        (lambda: inspect.scale_attention(model, x, scales=[0.5]), "`scales` must be numbers"),
        (lambda: inspect.scale_attention(model, x, scales=[]), "at least one scale"),
        (lambda: inspect.scale_attention(model, x, scales=[2, 2.0]), "each once"),
        (
            lambda: inspect.scale_attention(model, x, layers=["se_channel"]),
            "no SelectiveKernel layer",
        ),
        (
            lambda: inspect.class_excitation(inspect.attention(model, x)),
            "needs the class of every image",
        ),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
    with pytest.raises(TypeError, match="`data` must be an array of images"):
        inspect.attention(model, 3)
