"""ImageNet weights from timm: exact conversion, the download path, preprocessing and decoding.

The reference is timm itself: every registered twin is created by timm with random weights
and random BatchNorm statistics, saved as safetensors, converted, and compared logit for logit
on the same random images. Downloads go to a local HTTP server on 127.0.0.1 that behaves like
the Hugging Face Hub (redirect, `X-Linked-Etag`) or a GitHub release (hash in the file name).
"""

import hashlib
import http.server
import pathlib
import struct
import threading

import numpy as np
import pytest
import safetensors.torch
import sklearn.datasets
import timm
import timm.data
import torch
from keras_se.applications import pretrained, timm_checkpoint

from keras_se import applications
from keras_se.cli import main

IMAGE_SIZE = (2, 64, 80, 3)


def random_timm_model(name, seed=0):
    """timm's model in eval mode with random weights and non-trivial BatchNorm statistics.

    BN scales stay below 1 so that the deep twins keep a moderate output scale: with timm's
    default initialization SE-ResNet-152's float32 logits differ from its own float64 logits
    by 40%, which would hide any conversion error.
    """
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.3)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model


def timm_logits(model, images_nhwc):
    with torch.no_grad():
        return model(torch.from_numpy(images_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def save_safetensors(model, path):
    safetensors.torch.save_file(model.state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=IMAGE_SIZE).astype("float32")


@pytest.fixture(scope="module")
def skresnet18(tmp_path_factory, images):
    """timm's skresnet18 (random), its checkpoint as safetensors and its logits."""
    model = random_timm_model("skresnet18")
    path = save_safetensors(model, tmp_path_factory.mktemp("sk") / "model.safetensors")
    return model, path, timm_logits(model, images)


# One per architecture: a checkpoint's tag changes its data configuration, not its tensors.
ARCHITECTURES = tuple({twin.name: twin for twin in reversed(pretrained.TWINS)}.values())


@pytest.mark.parametrize("twin", ARCHITECTURES, ids=lambda twin: twin.name)
def test_every_twin_converts_to_the_same_logits_as_timm(twin, tmp_path, images):
    reference = random_timm_model(twin.name)
    path = save_safetensors(reference, tmp_path / "model.safetensors")
    expected = timm_logits(reference, images)
    model = applications.convert_timm(
        twin.name, path, input_shape=IMAGE_SIZE[1:], classifier_activation=None
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(p.numel() for p in reference.parameters())
    logits = np.asarray(model.predict(images, verbose=0))
    assert np.std(expected) > 0.01  # the comparison is not between near-constant outputs
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_a_pth_checkpoint_converts_like_its_safetensors(tmp_path, images):
    reference = random_timm_model("legacy_seresnet18")
    torch.save(reference.state_dict(), tmp_path / "model.pth")
    from_pth = applications.convert_timm(
        "legacy_seresnet18", tmp_path / "model.pth", input_shape=IMAGE_SIZE[1:]
    )
    from_safetensors = applications.convert_timm(
        "legacy_seresnet18",
        save_safetensors(reference, tmp_path / "model.safetensors"),
        input_shape=IMAGE_SIZE[1:],
    )
    for a, b in zip(from_pth.weights, from_safetensors.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_legacy_basic_block_relu_before_se_is_needed(tmp_path, images):
    """Without the ReLU timm's legacy SE-ResNet-18 applies before SE, the same weights give
    other logits: the comparison above can see a structural difference."""
    reference = random_timm_model("legacy_seresnet18")
    tensors = timm_checkpoint.read_checkpoint(
        save_safetensors(reference, tmp_path / "m.safetensors")
    )
    model = applications.SEResNet18(
        input_shape=IMAGE_SIZE[1:], classifier_activation=None, relu_before_se=False
    )
    applications.load_timm_weights(model, tensors, "legacy_seresnet18")
    expected = timm_logits(reference, images)
    difference = np.abs(np.asarray(model.predict(images, verbose=0)) - expected).max()
    assert difference > 0.05 * np.abs(expected).max()


def test_swapping_the_sk_paths_changes_the_logits(skresnet18, images):
    """The SK paths (3x3 and dilated 3x3) and the path-major attention map one to one."""
    _, path, expected = skresnet18
    tensors = timm_checkpoint.read_checkpoint(path)
    swapped = dict(tensors)
    for name in tensors:
        if ".paths.0." in name:
            other = name.replace(".paths.0.", ".paths.1.")
            swapped[name], swapped[other] = tensors[other], tensors[name]
    keras_model = applications.SKResNet18(input_shape=IMAGE_SIZE[1:], classifier_activation=None)
    applications.load_timm_weights(keras_model, swapped, "skresnet18")
    difference = np.abs(np.asarray(keras_model.predict(images, verbose=0)) - expected).max()
    assert difference > 0.01 * np.abs(expected).max()


def test_the_registry_matches_timm_pretrained_configs():
    for twin in pretrained.TWINS:
        config = timm.models.get_pretrained_cfg(twin.pretrained_name)
        assert config is not None, twin.pretrained_name
        # An architecture's first checkpoint in keras-se is timm's default one.
        default = timm.models.get_pretrained_cfg(twin.name).tag
        assert pretrained.timm_twin(twin.name).tag == default, twin.name
        if config.hf_hub_id:
            assert (
                twin.url
                == f"https://huggingface.co/{config.hf_hub_id}/resolve/main/model.safetensors"
            )
        else:
            assert twin.url == config.url, twin.name
        assert (twin.interpolation, twin.crop_pct) == (config.interpolation, config.crop_pct)
        assert (twin.mean, twin.std) == (config.mean, config.std)
        assert (3, twin.input_size, twin.input_size) == config.input_size
        # The twin's options fix every architecture knob of its constructor.
        knobs = set(pretrained._knob_defaults(twin.constructor)) - {"dropout_rate"}
        assert set(twin.options) == knobs, twin.name
        assert pretrained.imagenet_twin(twin.constructor, **twin.options).name == twin.name
        assert pretrained.timm_twin(twin.pretrained_name) is twin


def test_imagenet_twin_follows_the_architecture_settings():
    assert pretrained.imagenet_twin("SEResNet50").name == "legacy_seresnet50"
    timm_layout = dict(stride_in_1x1=False, stem_pool="pad")
    assert pretrained.imagenet_twin("SEResNet50", **timm_layout).name == "seresnet50"
    assert pretrained.imagenet_twin("SENet154", stem_pool="pad").pretrained_name == (
        "senet154.gluon_in1k"
    )
    with pytest.raises(ValueError, match=r"stem_pool='pad'.*legacy_seresnet50\.in1k"):
        pretrained.imagenet_twin("SEResNet50", stem_pool="pad")
    with pytest.raises(ValueError, match="reduction_ratio=8"):
        applications.SEResNet50(weights="imagenet", reduction_ratio=8)


def test_a_checkpoint_is_chosen_by_its_timm_tag():
    """`weights="NAME.TAG"` picks one of an architecture's checkpoints (and its data
    configuration); `"imagenet"` and `NAME` alone are timm's default one. A tag that timm does
    not publish, or a checkpoint of another structure, is refused saying what would fit."""
    assert pretrained.timm_twin("seresnet50").tag == "a1_in1k"
    a3 = pretrained.timm_twin("seresnet50.a3_in1k")
    assert (a3.input_size, a3.crop_pct, a3.interpolation) == (160, 0.95, "bicubic")
    timm_layout = dict(stride_in_1x1=False, stem_pool="pad")
    assert pretrained.checkpoint_twin("SEResNet50", "seresnet50.a3_in1k", **timm_layout) is a3
    assert pretrained.checkpoint_twin("SEResNet50", "imagenet", **timm_layout).tag == "a1_in1k"
    assert pretrained.checkpoint_twin("SEResNet50", "se.weights.h5") is None
    message = r"seresnet50\.a1_in1k, seresnet50\.a2_in1k, seresnet50\.a3_in1k, seresnet50\.ra2"
    with pytest.raises(ValueError, match=message):
        applications.SEResNet50(weights="seresnet50.a9_in1k", **timm_layout)
    with pytest.raises(ValueError, match=r"checkpoint of SEResNet50\(stride_in_1x1=False"):
        applications.SEResNet50(weights="seresnet50.a3_in1k")  # the Caffe layout
    with pytest.raises(ValueError, match="timm checkpoint of SKResNet18, not of this"):
        applications.SEInceptionV3(weights="skresnet18.ra_in1k")


def test_a_tagged_checkpoint_downloads_from_its_own_address(hub, images, tmp_path):
    """Only the a3 checkpoint of seresnet50 is served: `weights="seresnet50.a3_in1k"` loads
    it (timm's logits), into its own cache file; `"imagenet"` (a1) finds nothing to load."""
    twin = pretrained.timm_twin("seresnet50.a3_in1k")
    reference = random_timm_model("seresnet50")
    data = save_safetensors(reference, tmp_path / "a3.safetensors")
    _serve(hub, twin, data.read_bytes())
    timm_layout = dict(stride_in_1x1=False, stem_pool="pad", input_shape=IMAGE_SIZE[1:])
    model = applications.SEResNet50(
        weights="seresnet50.a3_in1k", classifier_activation=None, **timm_layout
    )
    expected = timm_logits(reference, images)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-4)
    assert pretrained.cached_weights_path(twin).is_file()
    with pytest.raises(ConnectionError, match=r"seresnet50\.a1_in1k"):
        applications.SEResNet50(weights="imagenet", **timm_layout)


@pytest.mark.parametrize(
    "constructor, match",
    [
        (applications.SKNet26, "no public ImageNet checkpoint"),
        (applications.SEInceptionV3, "no timm checkpoint"),
        (applications.SEBNInception, "Caffe"),
    ],
)
def test_imagenet_is_refused_where_no_checkpoint_exists(constructor, match):
    with pytest.raises(ValueError, match=match) as error:
        constructor(weights="imagenet")
    assert "SEResNet50" in str(error.value)  # lists the constructors that have weights


# Mismatched and damaged checkpoints ---------------------------------------------------------


def test_a_checkpoint_of_another_architecture_names_the_missing_tensor(skresnet18):
    _, path, _ = skresnet18
    with pytest.raises(ValueError, match=r"no tensor 'layer0\.conv1\.weight'.*'stem_conv1'"):
        applications.convert_timm("legacy_seresnet18", path, classes=1000)


def test_a_checkpoint_of_other_widths_names_the_tensor_and_shapes(tmp_path):
    tensors = random_timm_model("legacy_seresnet18").state_dict()
    tensors["layer1.0.se_module.fc1.weight"] = torch.zeros(8, 64, 1, 1)
    path = tmp_path / "wide.safetensors"
    safetensors.torch.save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"'layer1\.0\.se_module\.fc1\.weight' has shape \(8, 64"):
        applications.convert_timm("legacy_seresnet18", path)


def test_leftover_tensors_are_refused_and_nothing_is_assigned(skresnet18):
    _, path, _ = skresnet18
    tensors = timm_checkpoint.read_checkpoint(path)
    tensors["layer5.0.conv1.weight"] = np.zeros((4, 4, 3, 3), "float32")
    model = applications.SKResNet18(input_shape=IMAGE_SIZE[1:])
    before = [np.asarray(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"'layer5\.0\.conv1\.weight'.*no place"):
        applications.load_timm_weights(model, tensors, "skresnet18")
    for value, weight in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(value, np.asarray(weight))


def test_a_truncated_safetensors_file_names_the_first_cut_tensor(skresnet18, tmp_path):
    _, path, _ = skresnet18
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: 8 + header_size + 1000])
    with pytest.raises(ValueError, match=r"truncated: tensor '[\w.]+' needs bytes"):
        applications.convert_timm("skresnet18", truncated)
    truncated.write_bytes(data[:4])
    with pytest.raises(ValueError, match="too short"):
        timm_checkpoint.read_checkpoint(truncated)


def test_safetensors_reader_matches_the_safetensors_package(skresnet18):
    _, path, _ = skresnet18
    ours = timm_checkpoint.read_safetensors(path)
    theirs = safetensors.torch.load_file(str(path))
    assert list(ours) == sorted(theirs, key=list(ours).index) and set(ours) == set(theirs)
    for name, tensor in theirs.items():
        np.testing.assert_array_equal(ours[name], tensor.numpy())
    half = {"w": torch.randn(3, 4).to(torch.bfloat16), "h": torch.randn(5).half()}
    safetensors.torch.save_file(half, str(path.with_name("half.safetensors")))
    read = timm_checkpoint.read_safetensors(path.with_name("half.safetensors"))
    np.testing.assert_array_equal(read["w"], half["w"].float().numpy())
    np.testing.assert_array_equal(read["h"], half["h"].numpy())


@pytest.mark.parametrize(
    "name, checkpoint, error, match",
    [
        ("resnet50", "m.safetensors", ValueError, "Supported timm models: legacy_seresnet18"),
        ("skresnet18.other_tag", "m.safetensors", ValueError, r"tag skresnet18\.ra_in1k of"),
        ("skresnet18", "m.npz", ValueError, r"\.safetensors file or a PyTorch"),
        ("skresnet18", "missing.safetensors", FileNotFoundError, "does not exist"),
        (3, "m.safetensors", TypeError, "must be a string"),
    ],
)
def test_bad_converter_arguments(name, checkpoint, error, match, tmp_path):
    with pytest.raises(error, match=match):
        applications.convert_timm(name, tmp_path / checkpoint)


# The command line --------------------------------------------------------------------------


def test_cli_converts_and_never_overwrites(skresnet18, tmp_path, capsys, images):
    _, path, expected = skresnet18
    output = tmp_path / "sk.weights.h5"
    assert main(["convert-timm", "skresnet18", str(path), "-o", str(output)]) == 0
    assert "SKResNet18(weights=" in capsys.readouterr().out
    model = applications.SKResNet18(
        weights=str(output), input_shape=IMAGE_SIZE[1:], classifier_activation=None
    )
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-4)
    written = output.read_bytes()
    assert main(["convert-timm", "skresnet18", str(path), "-o", str(output)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert output.read_bytes() == written
    assert main(["convert-timm", "legacy_seresnet50", str(path), "-o", str(tmp_path / "x")]) == 2
    assert ".weights.h5" in capsys.readouterr().err
    # --no-top: the features, without the classifier (a smaller file)
    notop = tmp_path / "sk_notop.weights.h5"
    assert main(["convert-timm", "skresnet18", str(path), "-o", str(notop), "--no-top"]) == 0
    assert "include_top=False" in capsys.readouterr().out
    assert 0 < notop.stat().st_size < output.stat().st_size
    features = applications.SKResNet18(
        weights=str(notop), include_top=False, pooling="avg", input_shape=IMAGE_SIZE[1:]
    )
    kernel, bias = model.get_layer("predictions").get_weights()
    logits = features.predict(images, verbose=0) @ kernel + bias
    np.testing.assert_allclose(logits, expected, atol=1e-4)


# Downloads ---------------------------------------------------------------------------------


class _Server:
    """A local server with Hub-style (redirect + X-Linked-Etag) and release-style routes."""

    def __init__(self):
        self.files = {}  # path -> (bytes served, X-Linked-Etag or None)
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path.startswith("/blob/"):
                    data, _ = server.files[self.path.removeprefix("/blob")]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path in server.files:
                    _, etag = server.files[self.path]
                    self.send_response(302)
                    self.send_header("Location", f"/blob{self.path}")
                    if etag:
                        self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.end_headers()
                else:
                    self.send_response(404)
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server():
    server = _Server()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def hub(server, monkeypatch, tmp_path):
    """Downloads go to the local server; the Keras cache is a fresh folder."""
    monkeypatch.setenv(pretrained.BASE_URL_VARIABLE, server.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    server.files.clear()
    server.requests.clear()
    return server


def _serve(server, twin, data, etag="sha256"):
    path = "/" + pretrained.download_url(twin).split("/", 3)[3]
    digest = hashlib.sha256(data).hexdigest() if etag == "sha256" else etag
    server.files[path] = (data, digest)
    return path


def test_imagenet_weights_download_verify_convert_and_cache(hub, skresnet18, images):
    model, path, expected = skresnet18
    twin = pretrained.timm_twin("skresnet18")
    _serve(hub, twin, path.read_bytes())
    keras_model = applications.SKResNet18(
        weights="imagenet", input_shape=IMAGE_SIZE[1:], classifier_activation=None
    )
    np.testing.assert_allclose(keras_model.predict(images, verbose=0), expected, atol=1e-4)
    cached = pretrained.cached_weights_path(twin)
    assert cached.is_file() and cached.parent == pretrained.cache_folder()
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no download left over
    served = len(hub.requests)
    assert served == 2  # the redirect and the file

    features = applications.SKResNet18(
        weights="imagenet", include_top=False, pooling="avg", input_shape=IMAGE_SIZE[1:]
    )
    assert len(hub.requests) == served  # the cache answered
    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        pooled = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    np.testing.assert_allclose(features.predict(images, verbose=0), pooled, atol=1e-4)
    # ImageNet features and a new 10-class classifier in one call (timm's num_classes)
    import keras  # here: timm is imported before TensorFlow in this module

    tuned = applications.SKResNet18(weights="imagenet", classes=10, input_shape=IMAGE_SIZE[1:])
    assert len(hub.requests) == served
    body = keras.Model(tuned.inputs, tuned.get_layer("avg_pool").output)
    np.testing.assert_allclose(body.predict(images, verbose=0), pooled, atol=1e-4)
    head = tuned.get_layer("predictions")
    assert tuple(head.kernel.shape) == (512, 10) and not np.any(
        keras.ops.convert_to_numpy(head.bias)
    )


def test_a_corrupted_download_is_rejected_and_nothing_is_cached(hub, skresnet18):
    _, path, _ = skresnet18
    twin = pretrained.timm_twin("skresnet18")
    data = bytearray(path.read_bytes())
    honest = hashlib.sha256(data).hexdigest()
    data[len(data) // 2] ^= 0xFF
    _serve(hub, twin, bytes(data), etag=honest)
    with pytest.raises(ValueError, match=f"SHA-256 is [0-9a-f]{{64}}, expected {honest}"):
        applications.SKResNet18(weights="imagenet")
    _serve(hub, twin, path.read_bytes(), etag=None)
    with pytest.raises(ValueError, match="cannot be verified"):
        applications.SKResNet18(weights="imagenet")
    cache = pretrained.cache_folder()
    assert not cache.exists() or not any(cache.iterdir())


def test_a_release_file_must_match_the_hash_in_its_name(hub, tmp_path):
    """legacy_* checkpoints are GitHub release files named with their SHA-256 prefix."""
    twin = pretrained.timm_twin("legacy_seresnet18")
    assert twin.expected_sha256_prefix == "4bb0ce65"
    torch.save(random_timm_model("legacy_seresnet18").state_dict(), tmp_path / "m.pth")
    data = (tmp_path / "m.pth").read_bytes()
    _serve(hub, twin, data)  # a Hub-style hash does not override the pinned one
    with pytest.raises(ValueError, match=r"expected 4bb0ce65\.\.\."):
        applications.SEResNet18(weights="imagenet")
    assert not pretrained.cached_weights_path(twin).exists()


def test_offline_fails_at_once_with_the_way_to_convert_a_local_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with socket_closed_port() as port:
        monkeypatch.setenv(pretrained.BASE_URL_VARIABLE, f"http://127.0.0.1:{port}")
        with pytest.raises(ConnectionError) as error:
            applications.SEResNeXt50(weights="imagenet")
    message = str(error.value)
    assert "seresnext50_32x4d.racm_in1k" in message
    assert "keras-se convert-timm seresnext50_32x4d CHECKPOINT" in message
    assert not pretrained.cached_weights_path(pretrained.timm_twin("seresnext50_32x4d")).exists()
    monkeypatch.setenv(pretrained.BASE_URL_VARIABLE, "mirror.example.org")
    with pytest.raises(ValueError, match="http"):
        applications.SEResNeXt50(weights="imagenet")


class socket_closed_port:
    """A localhost port nothing listens on."""

    def __enter__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return self.socket.getsockname()[1]

    def __exit__(self, *exc):
        self.socket.close()


# Preprocessing and decoding ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["legacy_seresnet50", "seresnet50"])
def test_load_image_and_preprocess_input_match_timm_eval_transform(name):
    """bilinear / crop 0.875 (legacy) and bicubic / crop 0.95 (seresnet50) on a real photo."""
    photo = pathlib.Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"
    config = timm.data.resolve_data_config({}, model=timm.create_model(name))
    transform = timm.data.create_transform(**config)
    from PIL import Image

    expected = transform(Image.open(photo).convert("RGB")).numpy().transpose(1, 2, 0)
    image = applications.load_image(photo, name)
    assert image.shape == (224, 224, 3)
    ours = applications.preprocess_input(image[None], model=name)[0]
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    channels_first = applications.preprocess_input(
        image.transpose(2, 0, 1), data_format="channels_first"
    )
    np.testing.assert_allclose(channels_first.transpose(1, 2, 0), ours, atol=1e-6)


def test_preprocess_input_accepts_tensors_and_refuses_other_shapes():
    import keras

    image = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    from_tensor = applications.preprocess_input(keras.ops.convert_to_tensor(image))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(from_tensor), applications.preprocess_input(image), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"\(H, W, 3\).*\(2, 5, 5, 4\)"):
        applications.preprocess_input(np.zeros((2, 5, 5, 4)))


def test_decode_predictions_names_classes_as_timm_does():
    info = timm.data.ImageNetInfo()
    classes = applications.imagenet.imagenet_classes()
    assert len(classes) == 1000
    for index, (wordnet_id, name) in enumerate(classes):
        assert wordnet_id == info.index_to_label_name(index)
        assert name == info.index_to_description(index).split(",")[0].replace(" ", "_")
    scores = np.random.default_rng(0).random((2, 1000))
    decoded = applications.decode_predictions(scores, top=3)
    for row, result in zip(scores, decoded, strict=True):
        best = np.argsort(-row)[:3]
        assert [entry[0] for entry in result] == [classes[i][0] for i in best]
        assert [entry[2] for entry in result] == pytest.approx(row[best].tolist())
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        applications.decode_predictions(np.zeros((2, 10)))
