"""The weights of the keras-se layers as the dicts `numpy_reference` takes."""

from harness import to_numpy


def se_weights(layer):
    """A `SqueezeExcite` layer's kernels and biases, by the reference's names."""
    weights = {}
    if layer.mode in ("channel", "concurrent"):
        weights["reduce_kernel"] = to_numpy(layer.reduce.kernel)
        weights["expand_kernel"] = to_numpy(layer.expand.kernel)
        if layer.use_bias:
            weights["reduce_bias"] = to_numpy(layer.reduce.bias)
            weights["expand_bias"] = to_numpy(layer.expand.bias)
    if layer.mode in ("spatial", "concurrent"):
        weights["spatial_kernel"] = to_numpy(layer.spatial_kernel)
        if layer.use_bias:
            weights["spatial_bias"] = to_numpy(layer.spatial_bias)
    return weights


def bn_weights(norm):
    """A BatchNormalization layer's four arrays."""
    return {
        name: to_numpy(getattr(norm, name))
        for name in ("gamma", "beta", "moving_mean", "moving_variance")
    }


def sk_weights(layer):
    """A `SelectiveKernel` layer's branches and attention, as `selective_kernel` takes them."""
    return {
        "branches": [
            {"kernel": to_numpy(conv.kernel), **bn_weights(norm)}
            for conv, norm in zip(layer.convs, layer.norms, strict=True)
        ],
        "reduce": to_numpy(layer.attention_reduce.kernel),
        "norm": bn_weights(layer.attention_norm),
        "select": to_numpy(layer.attention_select.kernel),
    }
