"""ImageNet weights: which timm checkpoint each constructor loads, and getting it safely.

Every constructor with a timm twin accepts `weights="imagenet"`. The twin depends on the
architecture knobs, as in timm: `SEResNet50()` (the Caffe layout) is `legacy_seresnet50`,
`SEResNet50(stride_in_1x1=False, stem_pool="pad")` is timm's `seresnet50`. On first use the
checkpoint timm publishes for the twin is downloaded, its SHA-256 verified, converted with
`keras_se.applications.timm_convert` and cached as a Keras `.weights.h5` file under the Keras
cache folder (`$KERAS_HOME/models/keras_se`, `~/.keras/models/keras_se` by default); later
calls load the cached file and need no network.

Where the checkpoint lives is timm's own `pretrained_cfg`: the Hugging Face Hub file
`model.safetensors` when timm lists a hub id, else the GitHub release `.pth` file (the
`legacy_*` ports, which need PyTorch to read). The expected SHA-256 is the hash prefix in the
release file's name (torch.hub's convention) or, for Hub files, the `X-Linked-Etag` the Hub
sends with the file (the SHA-256 of the stored file, which `huggingface_hub` checks too). Set
`KERAS_SE_WEIGHTS_URL` to a mirror that serves the same paths to download from elsewhere.

Example:
>>> twin = imagenet_twin("SEResNet50", stride_in_1x1=False, stem_pool="pad")
>>> twin.name, twin.tag, twin.interpolation, twin.crop_pct
('seresnet50', 'a1_in1k', 'bicubic', 0.95)
"""

import dataclasses
import hashlib
import inspect
import os
import pathlib
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from keras_se import atomic

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BASE_URL_VARIABLE = "KERAS_SE_WEIGHTS_URL"
HUB = "https://huggingface.co"
_RELEASES = "https://github.com/rwightman/pytorch-image-models/releases/download"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[a-z]+$")
_SHA256 = re.compile(r"[0-9a-f]{64}")
DOWNLOAD_TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class TimmTwin:
    """A timm model with exactly the structure of a keras-se constructor, and its weights.

    Attributes:
        name: the timm architecture name (`timm.create_model(name)`).
        constructor: the keras-se constructor (a name in `keras_se.applications`).
        options: the constructor's architecture keywords that select this twin.
        naming: how timm names the tensors: `"legacy"` (timm's `senet.py` ports of the Caffe
            models), `"resnet"` (timm's `resnet.py`) or `"sknet"` (timm's `sknet.py`).
        tag: the pretrained tag timm loads by default (`name.tag`).
        url: where timm publishes that checkpoint.
        interpolation: resize interpolation of timm's evaluation transform.
        crop_pct: fraction of the resized image the center crop keeps.
        input_size: evaluation image size (square).
        mean: per-channel mean of the normalization (RGB, images scaled to [0, 1]).
        std: per-channel standard deviation of the normalization.

    Example:
    >>> timm_twin("skresnet18.ra_in1k").constructor
    'SKResNet18'
    """

    name: str
    constructor: str
    options: dict
    naming: str
    tag: str
    url: str
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    input_size: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    @property
    def pretrained_name(self):
        """`name.tag`, as timm names a pretrained checkpoint."""
        return f"{self.name}.{self.tag}"

    @property
    def expected_sha256_prefix(self):
        """The hash prefix pinned in a release file's name, or None for Hub files."""
        match = _HASH_IN_NAME.search(self.url)
        return match.group(1) if match else None

    @property
    def settings(self):
        """The options a user passes to the constructor for this twin (non-default ones).

        Example:
        >>> timm_twin("seresnet50").settings
        {'stride_in_1x1': False, 'stem_pool': 'pad'}
        """
        defaults = _knob_defaults(self.constructor)
        return {k: v for k, v in self.options.items() if defaults.get(k) != v}

    def build(self, **kwargs):
        """The keras-se model of this twin's architecture: `constructor(**options, **kwargs)`."""
        from keras_se.applications.registry import model_entry

        return model_entry(self.constructor).constructor(**self.options, **kwargs)


def _hub_url(name, tag):
    return f"{HUB}/timm/{name}.{tag}/resolve/main/model.safetensors"


# The two layouts of a bottleneck ResNet: the SENet authors' Caffe models (timm's `legacy_*`
# ports) stride in the first 1x1 and pool the stem in ceil mode; timm's `resnet.py` strides in
# the 3x3 and pads the stem pool.
CAFFE_LAYOUT = {"stride_in_1x1": True, "stem_pool": "ceil"}
TIMM_LAYOUT = {"stride_in_1x1": False, "stem_pool": "pad"}
_SE_BASIC = {"reduction_ratio": 16, "stem_pool": "ceil", "relu_before_se": True}
_CAFFE = {"reduction_ratio": 16, **CAFFE_LAYOUT}
_TIMM = {"reduction_ratio": 16, **TIMM_LAYOUT}
_RESNEXT_CAFFE = {"reduction_ratio": 16, "stem_pool": "ceil"}
_RESNEXT_TIMM = {"reduction_ratio": 16, "stem_pool": "pad"}


def _legacy(name, constructor, options, release_file, interpolation="bilinear"):
    """A port of the Caffe models in timm's `senet.py`, published as a GitHub release file."""
    return TimmTwin(
        name,
        constructor,
        options,
        naming="legacy",
        tag="in1k",
        url=f"{_RELEASES}/{release_file}",
        interpolation=interpolation,
    )


def _hub(name, constructor, options, tag, naming="resnet", crop_pct=0.875, input_size=224):
    """A timm model published on the Hugging Face Hub as `timm/name.tag`."""
    return TimmTwin(
        name,
        constructor,
        options,
        naming,
        tag,
        url=_hub_url(name, tag),
        crop_pct=crop_pct,
        input_size=input_size,
    )


# Each timm architecture's first checkpoint here is the one timm loads by default (`name`
# without a tag) and the one `weights="imagenet"` loads; the others are chosen by their tag
# (`weights="seresnet50.a3_in1k"`). The data configurations are timm's `pretrained_cfg`.
# fmt: off
TWINS = (
    _legacy("legacy_seresnet18", "SEResNet18", _SE_BASIC, "v0.1-weights/seresnet18-4bb0ce65.pth",
            interpolation="bicubic"),
    _legacy("legacy_seresnet34", "SEResNet34", _SE_BASIC, "v0.1-weights/seresnet34-a4004e63.pth"),
    _legacy("legacy_seresnet50", "SEResNet50", _CAFFE, "v0.1-cadene/se_resnet50-ce0d4300.pth"),
    _legacy("legacy_seresnet101", "SEResNet101", _CAFFE, "v0.1-cadene/se_resnet101-7e38fcc6.pth"),
    _legacy("legacy_seresnet152", "SEResNet152", _CAFFE, "v0.1-cadene/se_resnet152-d17c99b7.pth"),
    _hub("seresnet50", "SEResNet50", _TIMM, "a1_in1k", crop_pct=0.95),
    _hub("seresnet50", "SEResNet50", _TIMM, "a2_in1k", crop_pct=0.95),
    _hub("seresnet50", "SEResNet50", _TIMM, "a3_in1k", crop_pct=0.95, input_size=160),
    _hub("seresnet50", "SEResNet50", _TIMM, "ra2_in1k"),
    _legacy("legacy_seresnext50_32x4d", "SEResNeXt50", _RESNEXT_CAFFE,
            "v0.1-weights/legacy_se_resnext50_32x4d-f3651bad.pth"),
    _hub("seresnext50_32x4d", "SEResNeXt50", _RESNEXT_TIMM, "racm_in1k"),
    _hub("seresnext50_32x4d", "SEResNeXt50", _RESNEXT_TIMM, "gluon_in1k"),
    _legacy("legacy_seresnext101_32x4d", "SEResNeXt101", _RESNEXT_CAFFE,
            "v0.1-weights/legacy_se_resnext101_32x4d-37725eac.pth"),
    _hub("seresnext101_32x4d", "SEResNeXt101", _RESNEXT_TIMM, "gluon_in1k"),
    _legacy("legacy_senet154", "SENet154", _RESNEXT_CAFFE,
            "v0.1-weights/legacy_senet154-e9eb9fe6.pth"),
    _hub("senet154", "SENet154", _RESNEXT_TIMM, "gluon_in1k"),
    _hub("skresnet18", "SKResNet18", {"reduction_ratio": 8}, "ra_in1k", naming="sknet"),
    _hub("skresnet34", "SKResNet34", {"reduction_ratio": 8}, "ra_in1k", naming="sknet"),
    _hub("skresnext50_32x4d", "SKNet50", {"reduction_ratio": 16}, "ra_in1k", naming="sknet"),
)
# fmt: on


def _first_of_each_architecture(twins):
    first = {}
    for twin in twins:
        first.setdefault(twin.name, twin)
    return first


_BY_NAME = _first_of_each_architecture(TWINS)  # the checkpoint `name` without a tag loads
_BY_PRETRAINED_NAME = {twin.pretrained_name: twin for twin in TWINS}


def timm_twin(timm_name):
    """The registered twin of a timm model name, with or without its pretrained tag.

    Example:
    >>> timm_twin("legacy_senet154").constructor
    'SENet154'
    """
    if not isinstance(timm_name, str):
        raise TypeError(f"The timm model name must be a string, got {timm_name!r}.")
    name, _, tag = timm_name.partition(".")
    twin = _BY_NAME.get(name)
    if twin is None:
        raise ValueError(
            f"No keras-se model has the structure of the timm model {timm_name!r}. Supported "
            f"timm models: {', '.join(_BY_NAME)}."
        )
    if tag and timm_name not in _BY_PRETRAINED_NAME:
        known = [t.pretrained_name for t in TWINS if t.name == name]
        raise ValueError(
            f"keras-se knows the pretrained tag{'s' if len(known) > 1 else ''} "
            f"{', '.join(known)} of {name!r}, got {timm_name!r}; pass one of them, or {name!r} "
            "for the first (any checkpoint of this architecture converts: the tag only "
            "selects the data configuration and the ImageNet weights)."
        )
    return _BY_PRETRAINED_NAME[timm_name] if tag else twin


def is_checkpoint_name(weights):
    """Whether `weights` names a timm checkpoint that keras-se converts: `"imagenet"` (a
    twin's default one) or a pretrained name (`name.tag`), rather than a weights file.

    Example:
    >>> [is_checkpoint_name(w) for w in ("imagenet", "seresnet50.a3_in1k", "m.weights.h5")]
    [True, True, False]
    """
    return isinstance(weights, str) and (weights == "imagenet" or weights in _BY_PRETRAINED_NAME)


def _fits(twin, constructor, options):
    """Whether `constructor(**options)` has `twin`'s structure (unset options: the defaults)."""
    if twin.constructor != constructor:
        return False
    resolved = {**_knob_defaults(constructor), **options}
    return all(resolved.get(knob) == value for knob, value in twin.options.items())


def checkpoint_twin(constructor, weights, **options):
    """The twin whose ImageNet checkpoint `constructor(weights=weights, **options)` loads:
    for `"imagenet"`, the first that the options match; for a timm pretrained name
    (`"seresnet50.a3_in1k"`), that checkpoint, if its structure is the constructor's with
    these options. None for any other `weights`.

    Example:
    >>> checkpoint_twin("SEResNet50", "seresnet50.a3_in1k", stride_in_1x1=False,
    ...                 stem_pool="pad").input_size
    160
    """
    if weights == "imagenet":
        return imagenet_twin(constructor, **options)
    if not is_checkpoint_name(weights):
        name, _, tag = weights.partition(".") if isinstance(weights, str) else ("", "", "")
        if name in _BY_NAME and tag and not weights.endswith((".h5", ".keras")):
            timm_twin(weights)  # an unknown tag of a known architecture: the error lists them
        return None
    twin = _BY_PRETRAINED_NAME[weights]
    name = getattr(constructor, "__name__", constructor)
    if _fits(twin, name, options):
        return twin
    settings = "".join(f", {k}={v!r}" for k, v in twin.settings.items())
    raise ValueError(
        f"weights={weights!r} is a checkpoint of {twin.constructor}({settings.lstrip(', ')}), "
        f"not of {name} with these options: build keras_se.applications.{twin.constructor}"
        f"(weights={weights!r}{settings})."
    )


def _knob_defaults(constructor):
    from keras_se.applications.registry import model_entry

    signature = inspect.signature(model_entry(constructor).constructor)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind == parameter.KEYWORD_ONLY
    }


def imagenet_twin(constructor, **options):
    """The timm twin whose ImageNet weights `constructor(**options)` loads.

    Args:
        constructor: a keras-se constructor or its name (`"SEResNet50"`).
        **options: the constructor's architecture keywords, as they would be passed to it.

    Raises:
        ValueError: no timm checkpoint has this structure; the message lists the settings
            that have one.

    Example:
    >>> imagenet_twin("SEResNeXt50", stem_pool="ceil").pretrained_name
    'legacy_seresnext50_32x4d.in1k'
    """
    name = getattr(constructor, "__name__", constructor)
    candidates = [twin for twin in _BY_NAME.values() if twin.constructor == name]
    if not candidates:
        with_weights = sorted({twin.constructor for twin in TWINS})
        raise ValueError(
            f"weights='imagenet' is not available for {name}: no public ImageNet checkpoint "
            f"has its structure. Constructors with ImageNet weights (converted from timm): "
            f"{', '.join(with_weights)}. Pass weights=None, or the path of a .weights.h5 or "
            ".keras file saved from this architecture."
        )
    for twin in candidates:
        if _fits(twin, name, options):
            return twin
    resolved = {**_knob_defaults(name), **options}
    settings = "; ".join(
        f"{twin.pretrained_name}: {', '.join(f'{k}={v!r}' for k, v in twin.options.items())}"
        for twin in candidates
    )
    given = ", ".join(f"{k}={resolved[k]!r}" for k in candidates[0].options)
    raise ValueError(
        f"weights='imagenet' is not available for {name} with {given}: ImageNet weights "
        f"exist for these settings only ({settings})."
    )


def _structure(model):
    """What decides whether two models compute the same function with the same weights."""
    keys = ("strides", "padding", "pool_size", "dilation_rate", "groups", "activation")
    return [
        (type(layer).__name__, {k: v for k, v in layer.get_config().items() if k in keys})
        for layer in model.layers
    ], [tuple(weight.shape) for weight in model.weights]


def twin_of_model(model):
    """The timm twin with exactly the structure of `model`, a keras-se ImageNet classifier
    (for instance a `.keras` file saved from `SEResNet50(weights="imagenet")`), or None.

    The candidates are the twins whose constructor names its models as `model` is named; each
    is built at `model`'s input shape and compared layer by layer (types, strides, padding,
    pooling, groups, activations and every weight's shape), so the two layouts of one
    constructor (`legacy_seresnet50` and `seresnet50`) are told apart.

    Example:
    >>> from keras_se.applications import SKResNet18
    >>> twin_of_model(SKResNet18(input_shape=(64, 64, 3))).name
    'skresnet18'
    """
    shape = tuple(model.input_shape[1:])
    classes = model.output_shape[-1]
    for twin in _BY_NAME.values():  # an architecture's checkpoints share its structure
        if _default_model_name(twin.constructor) != model.name:
            continue
        candidate = twin.build(weights=None, input_shape=shape, classes=classes, name=model.name)
        if _structure(candidate) == _structure(model):
            return twin
    return None


def _default_model_name(constructor):
    from keras_se.applications.registry import model_entry

    signature = inspect.signature(model_entry(constructor).constructor)
    return signature.parameters["name"].default


def cache_folder():
    """Where converted weights are cached: `$KERAS_HOME/models/keras_se` (`~/.keras` default).

    Example:
    >>> cache_folder().name
    'keras_se'
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "models" / "keras_se"


def cached_weights_path(twin):
    """The cache file of a twin's converted ImageNet weights.

    Example:
    >>> cached_weights_path(timm_twin("skresnet18")).name
    'skresnet18.ra_in1k.weights.h5'
    """
    return cache_folder() / f"{twin.pretrained_name}.weights.h5"


def download_url(twin):
    """The twin's checkpoint URL, on the mirror named by `KERAS_SE_WEIGHTS_URL` if set.

    A mirror serves the same paths as the original host (huggingface.co or github.com).

    Example:
    >>> download_url(timm_twin("skresnet18"))
    'https://huggingface.co/timm/skresnet18.ra_in1k/resolve/main/model.safetensors'
    """
    base = os.environ.get(BASE_URL_VARIABLE)
    if not base:
        return twin.url
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"{BASE_URL_VARIABLE} must be an http(s) base URL such as "
            f"'https://mirror.example.org', got {base!r}."
        )
    return base.rstrip("/") + urllib.parse.urlsplit(twin.url).path


def _offline_advice(twin):
    return (
        f"To use these weights without a download, get {twin.pretrained_name!r} from timm "
        f"(the file at {twin.url}) on a machine with network access, then run `keras-se "
        f"convert-timm {twin.name} CHECKPOINT -o {twin.name}.weights.h5` and pass "
        f"weights='{twin.name}.weights.h5' to {twin.constructor}(...) with the same settings; "
        f"or set {BASE_URL_VARIABLE} to a mirror."
    )


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects and keeps the headers of every response on the way."""

    def __init__(self):
        self.headers = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.headers.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _declared_sha256(all_headers):
    """The SHA-256 a Hub-style server declares for the file (`X-Linked-Etag`), if any."""
    for headers in all_headers:
        etag = headers.get("X-Linked-Etag")
        if etag:
            value = etag.removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(value):
                return value
    return None


def download_checkpoint(twin, folder):
    """Download the twin's checkpoint into `folder`, verify its SHA-256, return its path.

    Raises:
        ConnectionError: the download failed (offline, server error); the message says how
            to convert a local checkpoint instead.
        ValueError: the file's SHA-256 is not the expected one, or nothing says what it should
            be; the file is deleted.

    Example:
    >>> download_checkpoint(timm_twin("skresnet18"), "/tmp")  # doctest: +SKIP
    PosixPath('/tmp/model.safetensors')
    """
    url = download_url(twin)
    target = pathlib.Path(folder) / pathlib.PurePosixPath(urllib.parse.urlsplit(url).path).name
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    digest = hashlib.sha256()
    print(f"Downloading the timm checkpoint {twin.pretrained_name} from {url}")
    try:
        with opener.open(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
            all_headers = [*redirects.headers, response.headers]
    except (urllib.error.URLError, OSError) as error:
        target.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise ConnectionError(
            f"Could not download the ImageNet weights of {twin.constructor} "
            f"({twin.pretrained_name}) from {url}: {reason}. {_offline_advice(twin)}"
        ) from error
    actual = digest.hexdigest()
    expected = twin.expected_sha256_prefix or _declared_sha256(all_headers)
    if expected is None or not actual.startswith(expected):
        target.unlink(missing_ok=True)
        why = (
            f"its SHA-256 is {actual}, expected {expected}{'...' if len(expected) < 64 else ''}"
            if expected
            else "the server did not declare its SHA-256 (X-Linked-Etag), so it cannot be verified"
        )
        raise ValueError(
            f"Refusing the checkpoint downloaded from {url}: {why}. The download is corrupted "
            f"or not the published file; nothing was cached. {_offline_advice(twin)}"
        )
    return target


def imagenet_weights_path(twin):
    """The cached Keras weights of a twin, downloading and converting them on first use.

    The conversion builds the twin's full model (1000-class top) once; the cache file is
    written atomically, so an interrupted first use leaves no partial file behind.

    Example:
    >>> imagenet_weights_path(timm_twin("skresnet18"))  # doctest: +SKIP
    PosixPath('/root/.keras/models/keras_se/skresnet18.ra_in1k.weights.h5')
    """
    from keras_se.applications import timm_convert

    cached = cached_weights_path(twin)
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    download = pathlib.Path(tempfile.mkdtemp(prefix=".download-", dir=cached.parent))
    try:
        path = download_checkpoint(twin, download)
        model = timm_convert.convert_timm(twin.pretrained_name, path)
        with atomic.atomic_path(cached) as partial:
            model.save_weights(partial)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return cached
