"""Independent numpy re-implementations of the keras-se layers, written from the papers.

Everything here works in channels_last; callers transpose channels_first data around it. The
convolution is the textbook direct sum over kernel offsets with symmetric zero padding, so it
shares nothing with the layer's own padding/subsampling plan.
"""

import itertools

import numpy as np

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


GATES = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}


def to_channels_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def from_channels_last(x, data_format):
    return np.moveaxis(x, -1, 1) if data_format == "channels_first" else x


def squeeze_excite(
    x, w, *, squeeze="avg", gate="sigmoid", activation="relu", mode="channel", with_gates=False
):
    """SE / sSE / scSE on a channels_last batch.

    `w` holds `reduce_kernel`, `reduce_bias`, `expand_kernel`, `expand_bias` (channel) and
    `spatial_kernel`, `spatial_bias` (spatial); missing biases count as zero. `with_gates`:
    also return `{"channel": (N, C), "spatial": (N, *spatial)}` for the modes that have them.
    """
    x = x.astype(np.float64)
    spatial_axes = tuple(range(1, x.ndim - 1))
    gate_fn = GATES[gate]
    out = np.zeros_like(x)
    gates = {}
    if mode in ("channel", "concurrent"):
        pooled = {
            "avg": lambda: x.mean(axis=spatial_axes),
            "max": lambda: x.max(axis=spatial_axes),
            "avg_max": lambda: 0.5 * (x.mean(axis=spatial_axes) + x.max(axis=spatial_axes)),
        }[squeeze]()
        hidden = ACTIVATIONS[activation](pooled @ w["reduce_kernel"] + w.get("reduce_bias", 0.0))
        scale = gate_fn(hidden @ w["expand_kernel"] + w.get("expand_bias", 0.0))
        gates["channel"] = scale
        out += x * scale.reshape(scale.shape[0], *([1] * len(spatial_axes)), scale.shape[1])
    if mode in ("spatial", "concurrent"):
        logits = x @ w["spatial_kernel"] + w.get("spatial_bias", 0.0)
        gates["spatial"] = gate_fn(logits)
        out += x * gates["spatial"][..., None]
    return (out, gates) if with_gates else out


def conv(x, kernel, *, strides=1, dilation=1, groups=1):
    """Direct N-d convolution, channels_last, Keras kernel layout (*k, cin/groups, cout).

    Pads d * (k - 1) / 2 zeros on both sides of every spatial axis (PyTorch's symmetric
    padding), so the output size is ceil(size / strides).
    """
    spatial = x.ndim - 2
    sizes = kernel.shape[:spatial]
    pads = [dilation * (k - 1) // 2 for k in sizes]
    x = np.pad(x, [(0, 0), *[(p, p) for p in pads], (0, 0)])
    out_sizes = [
        (x.shape[1 + i] - dilation * (k - 1) - 1) // strides + 1 for i, k in enumerate(sizes)
    ]
    cin_g, cout = kernel.shape[-2], kernel.shape[-1]
    cout_g = cout // groups
    out = np.zeros((x.shape[0], *out_sizes, cout))
    for offsets in itertools.product(*[range(k) for k in sizes]):
        window = tuple(
            slice(o * dilation, o * dilation + strides * (n - 1) + 1, strides)
            for o, n in zip(offsets, out_sizes, strict=True)
        )
        patch = x[(slice(None), *window, slice(None))]
        for g in range(groups):
            out[..., g * cout_g : (g + 1) * cout_g] += (
                patch[..., g * cin_g : (g + 1) * cin_g]
                @ kernel[offsets][:, g * cout_g : (g + 1) * cout_g]
            )
    return out


def batch_norm(x, bn, *, training, epsilon):
    """BatchNorm over the last axis; batch statistics (biased variance) when training."""
    axes = tuple(range(x.ndim - 1))
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = bn["moving_mean"], bn["moving_variance"]
    return (x - mean) / np.sqrt(var + epsilon) * bn["gamma"] + bn["beta"]


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def selective_kernel(
    x,
    w,
    *,
    kernel_sizes,
    dilations,
    strides=1,
    groups=1,
    split_input=False,
    select="softmax",
    training=False,
    epsilon=1e-5,
    with_attention=False,
):
    """SK convolution (split, fuse, select) on a channels_last batch.

    `w["branches"]` lists one dict per branch with `kernel` and BN arrays (`gamma`, `beta`,
    `moving_mean`, `moving_variance`); `w["reduce"]`, `w["norm"]` and `w["select"]` hold the
    attention FC kernel, its BN and the path-major select kernel. `select`: `"softmax"` across
    the branches (the paper) or an independent `"sigmoid"` per branch. `with_attention`: also
    return the branch weights, `(N, M, C)`.
    """
    x = x.astype(np.float64)
    relu = ACTIVATIONS["relu"]
    m = len(kernel_sizes)
    inputs = np.split(x, m, axis=-1) if split_input else [x] * m
    paths = []
    for xi, branch, dilation in zip(inputs, w["branches"], dilations, strict=True):
        y = conv(xi, branch["kernel"], strides=strides, dilation=dilation, groups=groups)
        paths.append(relu(batch_norm(y, branch, training=training, epsilon=epsilon)))
    fused = sum(paths)
    pooled = fused.mean(axis=tuple(range(1, x.ndim - 1)))
    hidden = relu(batch_norm(pooled @ w["reduce"], w["norm"], training=training, epsilon=epsilon))
    logits = (hidden @ w["select"]).reshape(x.shape[0], m, -1)
    if select == "softmax":
        attention = softmax(logits, axis=1)  # across the branches, for every channel
    else:
        attention = sigmoid(logits)
    spatial_ones = [1] * (x.ndim - 2)
    out = sum(
        path * attention[:, i].reshape(x.shape[0], *spatial_ones, -1)
        for i, path in enumerate(paths)
    )
    return (out, attention) if with_attention else out
