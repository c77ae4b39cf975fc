"""Every setting of a training run (`TrainConfig`), checked before any work starts.

Example:
>>> TrainConfig(epochs=3).peak_learning_rate
0.025
"""

import dataclasses
import math
import pathlib

from keras_se.training import distribute

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
XLA_MODES = ("auto", "on", "off")
# Peak learning rate per 256 images (linear scaling rule, Goyal et al. 2017) and weight decay.
BASE_LEARNING_RATE = {"sgd": 0.1, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 1e-4, "adamw": 0.05}


def _check_number(
    name, value, *, low, high=math.inf, integer=False, low_inclusive=True, high_inclusive=True
):
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ValueError(f"`{name}` must be {kind}, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        closed = high_inclusive and math.isfinite(high)
        interval = f"{'[' if low_inclusive else '('}{low}, {high}{']' if closed else ')'}"
        raise ValueError(f"`{name}` must be {kind} in {interval}, got {value!r}.")


def _field(default, help, *, flag=None, **argparse_keywords):
    """A `TrainConfig` field and its `keras-se train` option: `flag` (`--field-name` by
    default), `help` and further `argparse.add_argument` keywords. The CLI is generated from
    these (`command_line_options`)."""
    option = {"flag": flag, "help": help, **argparse_keywords}
    return dataclasses.field(default=default, metadata={"command_line": option})


def command_line_options():
    """`(field name, flag, argparse keywords)` of every `TrainConfig` field on the CLI.

    Example:
    >>> [(name, flag) for name, flag, _ in command_line_options()][:3]
    [('model', '--model'), ('dataset', '--dataset'), ('output_dir', '--output')]
    """
    options = []
    for field in dataclasses.fields(TrainConfig):
        if "command_line" in field.metadata:
            keywords = dict(field.metadata["command_line"])
            flag = keywords.pop("flag") or "--" + field.name.replace("_", "-")
            options.append((field.name, flag, {"default": field.default, **keywords}))
    return options


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, checked on construction (before any work starts).

    See `train` for the meaning of each field. `None` fields take their documented default.

    Example:
    >>> TrainConfig(model="SEResNet18", epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be an integer in [1, inf), got 0.
    """

    model: object = _field("SEResNet18", "model name (SEResNet18; see list_models())")
    dataset: str = _field(
        "sklearn_digits", "TFDS name, image folder, or the embedded sklearn_digits (default)"
    )
    output_dir: object = _field(None, "run folder (runs/MODEL-DATASET)", flag="--output")
    weights: str = _field(
        None,
        "start from 'imagenet', a timm checkpoint of the model by name and tag "
        "(skresnet18.ra_in1k) or a .weights.h5/.keras file of it (a new classifier for the "
        "dataset's classes)",
    )
    epochs: int = _field(
        6, "epochs (6); more than a finished run's trains it further from its checkpoint", type=int
    )
    freeze_epochs: int = _field(
        0,
        "with --weights: epochs of training the classifier alone on the frozen pretrained "
        "layers, before all layers train at 0.1x the learning rate (0)",
        type=int,
    )
    batch_size: int = _field(64, "global batch (64)", type=int)
    image_size: int = _field(32, "input size (32)", type=int)
    optimizer: str = _field(
        "sgd", "SGD with Nesterov momentum (default) or AdamW", choices=OPTIMIZERS
    )
    learning_rate: float = _field(
        None, "peak learning rate (0.1 x batch / 256 for SGD)", flag="--lr", type=float
    )
    weight_decay: float = _field(None, "(1e-4 SGD, 0.05 AdamW)", type=float)
    warmup_epochs: float = _field(1.0, "linear warm-up epochs (1)", type=float)
    label_smoothing: float = _field(0.1, "(0.1)", type=float)
    precision: str = _field("float32", "(float32)", choices=PRECISIONS)
    xla: str = _field("auto", "auto: time both modes and take the faster", choices=XLA_MODES)
    strategy: str = _field("auto", "(auto)", choices=distribute.STRATEGIES)
    sync_batch_norm: bool = _field(
        False, "BatchNorm statistics over all replicas", flag="--sync-bn", action="store_true"
    )
    data_dir: object = _field(None, "TFDS data folder (~/tensorflow_datasets)")
    download: bool = _field(False, "let TFDS download and prepare the dataset", action="store_true")
    validation_split: str = _field(None, "TFDS validation split (validation/test)")
    steps_per_epoch: int = _field(None, "steps (whole split)", type=int)
    augment: bool = _field(
        True, "no random crop and flip", flag="--no-augment", action="store_false"
    )
    overwrite: bool = _field(False, "train again over a finished run", action="store_true")
    seed: int = _field(0, "random seed (0)", type=int)
    verbose: object = "auto"

    def __post_init__(self):
        min_size = 1
        if isinstance(self.model, str):
            from keras_se.applications import model_entry

            # an unknown name fails here, with the nearest one
            min_size = model_entry(self.model).min_size
        if not isinstance(self.model, str) and not callable(self.model):
            raise TypeError(f"`model` must be a model name or a callable, got {self.model!r}.")
        for name in ("dataset", "output_dir", "data_dir", "validation_split"):
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                # An empty path would mean the current folder: a run would write there.
                raise ValueError(f"`{name}` must not be empty, got {value!r}.")
        for name in ("epochs", "batch_size", "steps_per_epoch"):
            if name != "steps_per_epoch" or self.steps_per_epoch is not None:
                _check_number(name, getattr(self, name), low=1, integer=True)
        self._check_weights()
        # The model's smallest input, before the run folder exists (a callable says at build).
        _check_number("image_size", self.image_size, low=min_size, integer=True)
        _check_number("seed", self.seed, low=0, integer=True)
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("precision", PRECISIONS),
            ("xla", XLA_MODES),
            ("strategy", distribute.STRATEGIES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"`{name}` must be one of {', '.join(choices)}, got {getattr(self, name)!r}."
                )
        if self.learning_rate is not None:
            _check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        if self.weight_decay is not None:
            _check_number("weight_decay", self.weight_decay, low=0)
        _check_number("warmup_epochs", self.warmup_epochs, low=0, high=self.epochs)
        _check_number("freeze_epochs", self.freeze_epochs, low=0, high=self.epochs, integer=True)
        if self.freeze_epochs and self.weights is None:
            raise ValueError(
                f"`freeze_epochs` {self.freeze_epochs} trains the classifier alone on "
                "pretrained layers: give `weights` (--weights imagenet or a file) too."
            )
        if self.freeze_epochs and self.warmup_epochs > self.freeze_epochs:
            raise ValueError(
                f"`warmup_epochs` {self.warmup_epochs} must be at most `freeze_epochs` "
                f"{self.freeze_epochs}: the warm-up belongs to the frozen phase."
            )
        _check_number("label_smoothing", self.label_smoothing, low=0, high=1, high_inclusive=False)

    def _check_weights(self):
        if self.weights is None:
            return
        from keras_se.applications.pretrained import checkpoint_twin, is_checkpoint_name

        if isinstance(self.model, str):
            # no checkpoint, or one of another structure: the error says which models have one
            if checkpoint_twin(self.model, self.weights) is not None:
                return
        elif is_checkpoint_name(self.weights):
            return
        path = pathlib.Path(str(self.weights)).expanduser()
        if not str(self.weights).endswith((".weights.h5", ".keras")):
            raise ValueError(
                f"`weights` must be 'imagenet', a timm pretrained name (seresnet50.a3_in1k) or "
                f"the path of a .weights.h5 or .keras file, got {self.weights!r}."
            )
        if not path.is_file():
            raise ValueError(f"`weights` file {str(self.weights)!r} does not exist.")

    @property
    def model_name(self):
        """The model's name (the constructor's name for a callable)."""
        if isinstance(self.model, str):
            return self.model
        return getattr(self.model, "__name__", None) or getattr(
            getattr(self.model, "func", None), "__name__", "model"
        )

    @property
    def peak_learning_rate(self):
        """`learning_rate`, or the base rate scaled by `batch_size / 256`."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return BASE_LEARNING_RATE[self.optimizer] * self.batch_size / 256

    @property
    def run_dir(self):
        """The run folder: `output_dir`, or `runs/<model>-<dataset>`."""
        if self.output_dir is not None:
            return pathlib.Path(self.output_dir).expanduser()
        dataset = pathlib.Path(str(self.dataset)).name.replace("/", "-").replace(":", "-")
        return pathlib.Path("runs") / f"{self.model_name}-{dataset}"

    def fingerprint(self):
        """The settings that define the run; a backup made with others is not resumed."""
        keys = ("dataset", "epochs", "batch_size", "image_size", "optimizer", "label_smoothing")
        settings = {key: str(getattr(self, key)) for key in keys}
        # (absent when unset: backups from before these settings still resume)
        if self.weights is not None:
            settings["weights"] = str(self.weights)
        if self.freeze_epochs:
            settings["freeze_epochs"] = self.freeze_epochs
        settings.update(
            model=self.model_name,
            learning_rate=self.peak_learning_rate,
            weight_decay=self.weight_decay,
            precision=self.precision,
            seed=self.seed,
        )
        return settings
