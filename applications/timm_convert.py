"""Convert timm checkpoints of the SE-ResNet / SKNet twins into keras-se models, exactly.

Every Keras variable is mapped to one timm tensor by name (the layer names of
`keras_se.applications.resnet` on one side, timm's module names on the other), its shape is
checked after the layout change, and the conversion fails naming the first tensor that does
not fit: a variable without a tensor, a tensor of another shape, or a tensor left over. Nothing
is assigned until every tensor has been checked, so nothing is left at random initialization.

Layouts: a PyTorch convolution kernel `(out, in / groups, kh, kw)` becomes Keras'
`(kh, kw, in / groups, out)` (grouped convolutions order their groups the same way in both);
1x1-convolution FCs (SE `fc1`/`fc2`, SK `fc_reduce`/`fc_select`) and the classifier become
Dense kernels `(in, out)`; BatchNorm `weight, bias, running_mean, running_var` become `gamma,
beta, moving_mean, moving_variance`. SK's `fc_select` produces path-major logits `(M, C)` in
timm and in `SelectiveKernel`, so it maps without reordering. The symmetric padding and the
Caffe stride/pool layout are properties of the keras-se model the twin selects.

Checkpoints are read by `keras_se.applications.timm_checkpoint`.

Example:
>>> model = convert_timm("skresnet18", "skresnet18.safetensors")  # doctest: +SKIP
>>> model.save_weights("sk_resnet18.weights.h5")  # doctest: +SKIP
"""

import dataclasses
import os
import pathlib
import re

import numpy as np
from keras_se.applications import pretrained
from keras_se.applications.timm_checkpoint import read_checkpoint

from keras_se import atomic
from keras_se.layers import SelectiveKernel, SqueezeExcite

_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
_IGNORED = re.compile(r".*num_batches_tracked$")


@dataclasses.dataclass(frozen=True)
class _Target:
    """One Keras variable, the timm tensor it takes, and how the layout changes."""

    variable: object
    layer: str
    tensor: str
    layout: str  # "conv", "dense" or "vector"


def _convert(array, layout):
    if layout == "conv" and array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    if layout == "dense" and array.ndim in (2, 4):
        return array.reshape(array.shape[:2]).T
    return array


def _batch_norm(layer, tensor_prefix, owner):
    return [
        _Target(variable, owner, f"{tensor_prefix}.{suffix}", "vector")
        for variable, suffix in zip(
            (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance),
            _BN_TENSORS,
            strict=True,
        )
    ]


def _dense(layer, tensor_prefix, owner):
    targets = [_Target(layer.kernel, owner, f"{tensor_prefix}.weight", "dense")]
    if layer.use_bias:
        targets.append(_Target(layer.bias, owner, f"{tensor_prefix}.bias", "vector"))
    return targets


def _conv(layer, tensor_prefix, owner):
    if layer.use_bias:
        raise ValueError(f"Layer {owner!r} has a bias, which timm's convolutions do not.")
    return [_Target(layer.kernel, owner, f"{tensor_prefix}.weight", "conv")]


class _Naming:
    """timm's module names for the layers of a keras-se ResNet, in one of timm's schemes."""

    def __init__(self, naming, model):
        self.naming = naming
        self.deep_stem = any(layer.name == "stem_conv2" for layer in model.layers)
        self.bottleneck = any(layer.name.endswith("_conv3") for layer in model.layers)

    def stem(self, kind, index):
        if self.naming == "legacy":
            return f"layer0.{kind}{index}"
        if not self.deep_stem:
            return f"{kind}1"
        if kind == "bn" and index == 3:
            return "bn1"
        return f"conv1.{3 * (index - 1) + (kind == 'bn')}"

    def block_layer(self, block, kind, index):
        if self.naming == "sknet":
            return f"{block}.conv{index}.{'conv' if kind == 'conv' else 'bn'}"
        return f"{block}.{kind}{index}"

    def se(self, block):
        return f"{block}.{'se_module' if self.naming == 'legacy' else 'se'}"

    def sk(self, block):
        return f"{block}.conv{2 if self.bottleneck else 1}"


def classifier_name(naming):
    """timm's name of the classifier in a naming scheme."""
    return "last_linear" if naming == "legacy" else "fc"


_STEM = re.compile(r"stem_(conv|bn)(\d)")
_BLOCK = re.compile(r"stage(\d)_block(\d+)_(?:(conv|bn)(\d)|shortcut_(conv|bn)|(se)|(sk))")


def _targets(model, naming):
    """Every Keras variable of `model` with the timm tensor it takes, or raise for a layer
    timm has no counterpart of."""
    names = _Naming(naming, model)
    targets = []
    for layer in model.layers:
        if not layer.weights:
            continue
        stem, block = _STEM.fullmatch(layer.name), _BLOCK.fullmatch(layer.name)
        if stem:
            kind, index = stem.group(1), int(stem.group(2))
            prefix = names.stem(kind, index)
        elif block:
            stage, number, kind, index, shortcut, se, _ = block.groups()
            prefix = f"layer{stage}.{int(number) - 1}"
            if kind:
                prefix = names.block_layer(prefix, kind, int(index))
            elif shortcut:
                prefix, kind = f"{prefix}.downsample.{int(shortcut == 'bn')}", shortcut
            elif se:
                targets += _squeeze_excite(layer, names.se(prefix))
                continue
            else:
                targets += _selective_kernel(layer, names.sk(prefix))
                continue
        elif layer.name == "predictions":
            targets += _dense(layer, classifier_name(naming), layer.name)
            continue
        else:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has no counterpart in timm's "
                f"{naming!r} models; only keras-se ResNet-family models convert."
            )
        if kind == "conv":
            targets += _conv(layer, prefix, layer.name)
        else:
            targets += _batch_norm(layer, prefix, layer.name)
    return targets


def _squeeze_excite(layer, prefix):
    if not isinstance(layer, SqueezeExcite) or layer.mode != "channel":
        raise ValueError(f"Layer {layer.name!r} is not a channel SqueezeExcite.")
    return _dense(layer.reduce, f"{prefix}.fc1", layer.name) + _dense(
        layer.expand, f"{prefix}.fc2", layer.name
    )


def _selective_kernel(layer, prefix):
    if not isinstance(layer, SelectiveKernel):
        raise ValueError(f"Layer {layer.name!r} is not a SelectiveKernel.")
    targets = []
    for index, (conv, norm) in enumerate(zip(layer.convs, layer.norms, strict=True)):
        targets += _conv(conv, f"{prefix}.paths.{index}.conv", layer.name)
        targets += _batch_norm(norm, f"{prefix}.paths.{index}.bn", layer.name)
    targets += _dense(layer.attention_reduce, f"{prefix}.attn.fc_reduce", layer.name)
    targets += _batch_norm(layer.attention_norm, f"{prefix}.attn.bn", layer.name)
    targets += _dense(layer.attention_select, f"{prefix}.attn.fc_select", layer.name)
    return targets


def load_timm_weights(model, tensors, timm_name, *, source="the checkpoint"):
    """Assign a timm state dict to a keras-se model of the twin's architecture.

    Every variable of `model` must find its tensor with the right shape, and every tensor of
    the checkpoint must find its variable (except the classifier when `model` has no top, and
    BatchNorm's `num_batches_tracked` counters); otherwise nothing is assigned and the error
    names the first tensor that does not fit.

    Args:
        model: a model built by the twin's constructor and settings (any input size, with or
            without the top).
        tensors: `{timm tensor name: numpy array}`, e.g. from `read_checkpoint`.
        timm_name: the timm model name (`"legacy_seresnet50"`, tag optional); it selects the
            naming scheme.
        source: how to name the checkpoint in errors.

    Returns:
        The number of tensors assigned.

    Example:
    >>> from keras_se.applications import SKResNet18
    >>> model = SKResNet18(include_top=False, input_shape=(64, 64, 3))
    >>> tensors = read_checkpoint("model.safetensors")  # doctest: +SKIP
    >>> load_timm_weights(model, tensors, "skresnet18")  # doctest: +SKIP
    """
    twin = pretrained.timm_twin(timm_name)
    problem = f"{source} does not fit {model.name!r} as timm's {twin.name!r}"
    targets = _targets(model, twin.naming)
    has_top = any(layer.name == "predictions" for layer in model.layers)
    values = []
    for target in targets:
        if target.tensor not in tensors:
            raise ValueError(
                f"{problem}: it has no tensor {target.tensor!r} for layer {target.layer!r}. "
                "It holds weights of another architecture (or other settings)."
            )
        value = _convert(np.asarray(tensors[target.tensor]), target.layout)
        expected = tuple(target.variable.shape)
        if tuple(value.shape) != expected:
            raise ValueError(
                f"{problem}: tensor {target.tensor!r} has shape "
                f"{tuple(tensors[target.tensor].shape)}, which gives {tuple(value.shape)} for "
                f"layer {target.layer!r}; the layer needs {expected}."
            )
        values.append(value)
    used = {target.tensor for target in targets}
    head = classifier_name(twin.naming)
    leftover = [
        name
        for name in tensors
        if name not in used
        and not _IGNORED.fullmatch(name)
        and not (not has_top and name.startswith(f"{head}."))
    ]
    if leftover:
        raise ValueError(
            f"{problem}: tensor {leftover[0]!r} (one of {len(leftover)} left over) has no "
            "place in the model. It holds weights of a larger or another architecture."
        )
    for target, value in zip(targets, values, strict=True):
        target.variable.assign(value.astype(target.variable.dtype))
    return len(targets)


def convert_timm(timm_name, checkpoint_path, output=None, *, overwrite=False, **kwargs):
    """Build the keras-se twin of a timm model and load a timm checkpoint into it.

    Args:
        timm_name: a timm model name (`"legacy_seresnet50"`, `"skresnext50_32x4d.ra_in1k"`).
        checkpoint_path: a `.safetensors` checkpoint (or `.pth`/`.bin` with PyTorch).
        output: optional `.weights.h5` path to save the converted weights to (atomically).
        overwrite: replace an existing `output`.
        **kwargs: further constructor arguments (`input_shape`, `classifier_activation`,
            `include_top`, ...); `classes` defaults to the checkpoint's classifier size.

    Returns:
        The converted `keras.Model`.

    Example:
    >>> model = convert_timm("legacy_seresnet50", "se_resnet50-ce0d4300.pth",
    ...                      "se_resnet50.weights.h5")  # doctest: +SKIP
    """
    twin = pretrained.timm_twin(timm_name)
    if output is not None:
        output = pathlib.Path(output)
        if not output.name.endswith(".weights.h5"):
            raise ValueError(f"`output` must end in .weights.h5, got {str(output)!r}.")
        if output.exists() and not overwrite:
            raise FileExistsError(
                f"{str(output)!r} exists; pass overwrite=True (--overwrite) to replace it."
            )
        if not output.parent.is_dir():
            raise ValueError(f"The folder of `output` {str(output.parent)!r} does not exist.")
    tensors = read_checkpoint(checkpoint_path)
    head = f"{classifier_name(twin.naming)}.weight"
    if kwargs.get("include_top", True) and "classes" not in kwargs:
        if head not in tensors:
            raise ValueError(
                f"Checkpoint {os.fspath(checkpoint_path)!r} has no classifier tensor {head!r}: "
                f"it is not a timm {twin.name!r} checkpoint."
            )
        kwargs["classes"] = int(tensors[head].shape[0])
    model = twin.build(weights=None, **kwargs)
    load_timm_weights(
        model, tensors, twin.name, source=f"Checkpoint {os.fspath(checkpoint_path)!r}"
    )
    if output is not None:
        with atomic.atomic_path(output) as partial:
            model.save_weights(partial)
    return model
