"""Independent PyTorch forward passes of the ResNet family (written from timm's code), of
SE-BN-Inception (written from the Caffe model and its PyTorch port), of SE-VGG-16 (written
from the VGG and SENet papers) and of SE-ShuffleNet (written from the ShuffleNet and SENet
papers).

They take the architecture from their arguments or their own code (as timm's
`ResNet(block, layers, ...)` and the legacy `SENet` do), PyTorch's own symmetric padding,
ceil-mode pooling and padded averages, and only the weight values (hence the widths) from a
Keras model, looked up by the layer names keras-se promises. Agreement with the
Keras model therefore checks the structure (strides, paddings, pools, shortcuts, where the
attention sits) and the layer naming, independently of how the Keras graph was built.
"""

import numpy as np
import torch
import torch.nn.functional as F

EXPANSION = {"basic": 1, "bottleneck": 4, "preact_bottleneck": 4}


def _tensor(array):
    return torch.from_numpy(np.ascontiguousarray(array, dtype="float32"))


def _conv(x, kernel, stride=1, groups=1, dilation=1):
    """A PyTorch convolution with a Keras (H, W, in/groups, out) kernel and timm's padding."""
    padding = dilation * (kernel.shape[0] - 1) // 2
    weight = _tensor(kernel.transpose(3, 2, 0, 1))
    return F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _batch_norm(x, layer, eps=1e-5):
    gamma, beta, mean, variance = (_tensor(w) for w in layer.get_weights())
    return F.batch_norm(x, mean, variance, gamma, beta, training=False, eps=eps)


def _named_conv_bn(x, model, conv_name, bn_name, stride=1, groups=1, relu=True):
    (kernel,) = model.get_layer(conv_name).get_weights()
    x = _batch_norm(_conv(x, kernel, stride, groups), model.get_layer(bn_name))
    return F.relu(x) if relu else x


def _conv_bn(x, model, prefix, suffix, stride=1, groups=1, relu=True):
    return _named_conv_bn(
        x, model, f"{prefix}conv{suffix}", f"{prefix}bn{suffix}", stride, groups, relu
    )


def _squeeze_excite(x, layer):
    """timm's SEModule: mean -> fc1 (bias) -> ReLU -> fc2 (bias) -> sigmoid -> scale."""
    reduce_kernel, reduce_bias = layer.reduce.get_weights()
    expand_kernel, expand_bias = layer.expand.get_weights()
    squeezed = x.mean(dim=(2, 3))
    hidden = F.relu(squeezed @ _tensor(reduce_kernel) + _tensor(reduce_bias))
    gate = torch.sigmoid(hidden @ _tensor(expand_kernel) + _tensor(expand_bias))
    return x * gate[:, :, None, None]


def _selective_kernel(x, layer, stride, groups, split_input):
    """timm's SelectiveKernel: 3x3 and 3x3 dilated 2 paths, attention softmax over paths."""
    inputs = torch.chunk(x, 2, dim=1) if split_input else (x, x)
    paths = []
    branches = zip(inputs, layer.convs, layer.norms, (1, 2), strict=True)
    for path_input, conv, norm, dilation in branches:
        y = _conv(path_input, conv.get_weights()[0], stride, groups, dilation)
        paths.append(F.relu(_batch_norm(y, norm)))
    stacked = torch.stack(paths, dim=1)  # (N, M, C, H, W)
    pooled = stacked.sum(dim=1).mean(dim=(2, 3))
    hidden = pooled @ _tensor(layer.attention_reduce.get_weights()[0])
    hidden = F.relu(_batch_norm(hidden, layer.attention_norm))
    logits = hidden @ _tensor(layer.attention_select.get_weights()[0])
    weights = torch.softmax(logits.reshape(len(x), 2, -1), dim=1)
    return (stacked * weights[:, :, :, None, None]).sum(dim=1)


def _zero_pad_shortcut(x, out_channels, stride, zeros_first=False):
    """He et al.'s option A as fb.resnet.torch writes it: subsample, then concatenate zeros
    (`zeros_first`: before the channels, a negative control)."""
    x = x[:, :, ::stride, ::stride]
    if out_channels == x.shape[1]:
        return x
    parts = [torch.zeros_like(x), x] if zeros_first else [x, torch.zeros_like(x)]
    return torch.cat(parts, dim=1)


def _preact_block(x, model, prefix, planes, stride, arch):
    """kuangliu's pytorch-cifar `PreActBottleneck` (He et al.'s pre-activation bottleneck),
    with SE on the residual branch before the addition (`se_after_add` and `stride_in_1x1`
    are the negative controls' changes)."""

    def bn_relu(x, index):
        return F.relu(_batch_norm(x, model.get_layer(f"{prefix}bn{index}")))

    def conv(x, name, stride=1):
        return _conv(x, model.get_layer(f"{prefix}{name}").get_weights()[0], stride)

    out = bn_relu(x, 1)
    shortcut = x
    if stride != 1 or x.shape[1] != planes * 4:
        shortcut = conv(out, "shortcut_conv", stride)
    stride_1x1, stride_3x3 = (stride, 1) if arch.get("stride_in_1x1") else (1, stride)
    out = conv(out, "conv1", stride_1x1)
    out = conv(bn_relu(out, 2), "conv2", stride_3x3)
    out = conv(bn_relu(out, 3), "conv3")
    se = model.get_layer(f"{prefix}se") if arch.get("attention") == "se" else None
    if se is not None and not arch.get("se_after_add"):
        out = _squeeze_excite(out, se)
    out = out + shortcut
    return _squeeze_excite(out, se) if se is not None and arch.get("se_after_add") else out


def _block(x, model, prefix, planes, stride, arch):
    block, attention = arch["block"], arch.get("attention")
    if block == "preact_bottleneck":
        return _preact_block(x, model, prefix, planes, stride, arch)
    out_channels = planes * EXPANSION[block]
    shortcut = x
    if arch.get("shortcut") == "zero_pad":
        if stride != 1 or x.shape[1] != out_channels:
            shortcut = _zero_pad_shortcut(
                x, out_channels, stride, zeros_first=arch.get("zero_pad_first", False)
            )
    elif stride != 1 or x.shape[1] != out_channels:
        (kernel,) = model.get_layer(f"{prefix}shortcut_conv").get_weights()
        shortcut = _batch_norm(_conv(x, kernel, stride), model.get_layer(f"{prefix}shortcut_bn"))
    groups = arch.get("groups", 1)
    split_input = arch.get("split_input", False)
    if block == "basic":
        if attention == "sk":
            x = _selective_kernel(x, model.get_layer(f"{prefix}sk"), stride, 1, split_input)
        else:
            x = _conv_bn(x, model, prefix, 1, stride)
        x = _conv_bn(x, model, prefix, 2, relu=arch.get("relu_before_se", False))
    else:
        stride_1x1, stride_3x3 = (stride, 1) if arch.get("stride_in_1x1") else (1, stride)
        x = _conv_bn(x, model, prefix, 1, stride_1x1)
        if attention == "sk":
            x = _selective_kernel(x, model.get_layer(f"{prefix}sk"), stride_3x3, groups, False)
        else:
            x = _conv_bn(x, model, prefix, 2, stride_3x3, groups)
        x = _conv_bn(x, model, prefix, 3, relu=False)
    if attention == "se":
        x = _squeeze_excite(x, model.get_layer(f"{prefix}se"))
    return F.relu(x + shortcut)


def resnet_forward(model, images, arch):
    """Logits (or pooled features) of `model`'s weights run through PyTorch.

    Args:
        model: a keras-se ResNet-family model, used only as a source of weights by layer name.
        images: NHWC float32 numpy images.
        arch: the architecture as timm describes it: `depths`, `block` ("basic", "bottleneck"
            or "preact_bottleneck"), `attention`, `groups`, `widths` (planes per stage),
            `shortcut` ("zero_pad": He et al.'s option A), `stride_in_1x1`, `stem` ("7x7",
            "deep" or "cifar"), `stem_pool` ("pad" or "ceil"),
            `split_input` (SK basic blocks), `relu_before_se` (timm's legacy basic blocks),
            `include_top`.
    """
    with torch.no_grad():
        x = _tensor(images.transpose(0, 3, 1, 2))
        preact = arch["block"] == "preact_bottleneck"
        if arch.get("stem") == "cifar" and preact:  # the conv alone: each block normalizes
            x = _conv(x, model.get_layer("stem_conv1").get_weights()[0])
        elif arch.get("stem") == "cifar":  # kuangliu's pytorch-cifar: conv 3x3/1 + BN + ReLU
            x = _conv_bn(x, model, "stem_", 1)
        else:
            stem_convs = 3 if arch.get("stem") == "deep" else 1
            for index in range(1, stem_convs + 1):
                x = _conv_bn(x, model, "stem_", index, stride=2 if index == 1 else 1)
            if arch["stem_pool"] == "ceil":
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
            else:
                x = F.max_pool2d(x, 3, 2, padding=1)
        widths = arch.get("widths", (64, 128, 256, 512))
        for stage, depth in enumerate(arch["depths"], 1):
            for index in range(depth):
                stride = 2 if stage > 1 and index == 0 else 1
                prefix = f"stage{stage}_block{index + 1}_"
                x = _block(x, model, prefix, widths[stage - 1], stride, arch)
        if preact:  # He et al.'s pre-activation networks end with BN and ReLU
            x = F.relu(_batch_norm(x, model.get_layer("final_bn")))
        x = x.mean(dim=(2, 3))
        if arch.get("include_top", True):
            kernel, bias = model.get_layer("predictions").get_weights()
            x = x @ _tensor(kernel) + _tensor(bias)
        return x.numpy()


BN_INCEPTION_MODULES = ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


def bn_inception_forward(model, images):
    """Logits of an SE-BN-Inception: Caffe's ceil-mode max pools, average pools that count
    their zero padding, the stride-2 modules 3c and 4e, a max-pool branch in 5b, and SE on
    every module's concatenated output."""

    def unit(x, name, stride=1):
        return _named_conv_bn(x, model, name, f"{name}_bn", stride)

    with torch.no_grad():
        x = _tensor(images.transpose(0, 3, 1, 2))
        x = F.max_pool2d(unit(x, "conv1_7x7_s2", 2), 3, 2, ceil_mode=True)
        x = unit(unit(x, "conv2_3x3_reduce"), "conv2_3x3")
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        for module in BN_INCEPTION_MODULES:
            prefix = f"inception_{module}_"
            stride = 2 if module in ("3c", "4e") else 1
            branches = [] if stride == 2 else [unit(x, f"{prefix}1x1")]
            branches.append(unit(unit(x, f"{prefix}3x3_reduce"), f"{prefix}3x3", stride))
            y = unit(unit(x, f"{prefix}double_3x3_reduce"), f"{prefix}double_3x3_1")
            branches.append(unit(y, f"{prefix}double_3x3_2", stride))
            if stride == 2:
                branches.append(F.max_pool2d(x, 3, 2, ceil_mode=True))
            else:
                pool = F.max_pool2d if module == "5b" else F.avg_pool2d
                branches.append(unit(pool(x, 3, 1, padding=1), f"{prefix}pool_proj"))
            x = _squeeze_excite(torch.cat(branches, dim=1), model.get_layer(f"{prefix}se"))
        kernel, bias = model.get_layer("predictions").get_weights()
        return (x.mean(dim=(2, 3)) @ _tensor(kernel) + _tensor(bias)).numpy()


VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16_forward(model, images, *, se=True, se_before_relu=False, pool="max"):
    """Logits of `model`'s weights run through VGG-16 with BatchNorm, written from the VGG and
    SENet papers: every 3x3 convolution (padding 1) -> BN -> ReLU -> SE, a max pool after each
    block, then flatten (in Keras' channels_last order, whose fc1 kernel this uses) -> fc1 ->
    ReLU -> fc2 -> ReLU -> predictions.

    `se_before_relu` and `pool="avg"` are the negative controls' changes.
    """
    with torch.no_grad():
        x = _tensor(images.transpose(0, 3, 1, 2))
        for block, (_, convolutions) in enumerate(VGG16_BLOCKS, 1):
            for index in range(1, convolutions + 1):
                x = _conv_bn(x, model, f"block{block}_", index, relu=False)
                if se and se_before_relu:
                    x = _squeeze_excite(x, model.get_layer(f"block{block}_se{index}"))
                x = F.relu(x)
                if se and not se_before_relu:
                    x = _squeeze_excite(x, model.get_layer(f"block{block}_se{index}"))
            x = (F.max_pool2d if pool == "max" else F.avg_pool2d)(x, 2, 2)
        x = x.permute(0, 2, 3, 1).flatten(1)
        for layer, activation in (("fc1", F.relu), ("fc2", F.relu), ("predictions", None)):
            kernel, bias = model.get_layer(layer).get_weights()
            x = x @ _tensor(kernel) + _tensor(bias)
            x = activation(x) if activation else x
        return x.numpy()


# ShuffleNet paper, Table 1: output channels of stages 2-4 for each number of groups.
SHUFFLENET_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


def _channel_shuffle(x, groups, inverse=False):
    """The paper's shuffle: channels as (groups, n), transposed; `inverse` is (n, groups)."""
    n, channels, height, width = x.shape
    split = (channels // groups, groups) if inverse else (groups, channels // groups)
    return x.reshape(n, *split, height, width).transpose(1, 2).reshape(x.shape)


def shufflenet_forward(
    model,
    images,
    *,
    groups=3,
    se=True,
    shuffle="paper",
    se_after_add=False,
    stride_on_conv1=False,
    features=None,
):
    """Logits of `model`'s weights run through ShuffleNet v1 1x, written from the ShuffleNet
    paper (Table 1, Figure 2) and the SENet paper: a 3x3/2 stem conv of 24 and a 3x3/2 max
    pool; 4/8/4 units per stage (the first with stride 2: a 3x3/2 average pool of the input,
    padded and counted as PyTorch's `AvgPool2d(3, 2, 1)`, concatenated before the branch);
    each branch a grouped 1x1 conv (not grouped in the very first unit) -> BN -> ReLU ->
    shuffle -> 3x3 depthwise conv (the stride) -> BN -> grouped 1x1 conv -> BN -> SE; ReLU
    after the join; global average pool and the classifier.

    `shuffle="none"|"inverse"`, `se_after_add` (SE on the sum of the stride-1 units) and
    `stride_on_conv1` (the stride on the first 1x1 conv) are the negative controls' changes.
    With `features="stage{s}_unit{u}"`, that unit's output (channels last) instead of the
    logits.
    """
    with torch.no_grad():
        x = _tensor(images.transpose(0, 3, 1, 2))
        x = _named_conv_bn(x, model, "stem_conv", "stem_bn", stride=2)
        x = F.max_pool2d(x, 3, 2, padding=1)
        for stage, width in enumerate(SHUFFLENET_WIDTHS[groups], 2):
            for unit in range(1, (4, 8, 4)[stage - 2] + 1):
                prefix = f"stage{stage}_unit{unit}_"
                stride = 2 if unit == 1 else 1
                first_groups = 1 if (stage, unit) == (2, 1) else groups
                y = _named_conv_bn(
                    x,
                    model,
                    f"{prefix}conv1",
                    f"{prefix}bn1",
                    stride=stride if stride_on_conv1 else 1,
                    groups=first_groups,
                )
                if first_groups > 1 and shuffle != "none":
                    y = _channel_shuffle(y, groups, inverse=shuffle == "inverse")
                (kernel,) = model.get_layer(f"{prefix}dwconv").get_weights()
                y = _conv(
                    y,
                    kernel.transpose(0, 1, 3, 2),  # (3, 3, 1, channels): one group per channel
                    stride=1 if stride_on_conv1 else stride,
                    groups=y.shape[1],
                )
                y = _batch_norm(y, model.get_layer(f"{prefix}bn2"))
                y = _named_conv_bn(
                    y, model, f"{prefix}conv3", f"{prefix}bn3", groups=groups, relu=False
                )
                attention = model.get_layer(f"{prefix}se") if se else None
                if attention and not (se_after_add and stride == 1):
                    y = _squeeze_excite(y, attention)
                if stride == 2:
                    y = torch.cat([F.avg_pool2d(x, 3, 2, padding=1), y], dim=1)
                else:
                    y = x + y
                    if attention and se_after_add:
                        y = _squeeze_excite(y, attention)
                x = F.relu(y)
                assert x.shape[1] == width, (prefix, x.shape)  # the paper's widths
                if features == f"stage{stage}_unit{unit}":
                    return x.permute(0, 2, 3, 1).numpy()
        kernel, bias = model.get_layer("predictions").get_weights()
        return (x.mean(dim=(2, 3)) @ _tensor(kernel) + _tensor(bias)).numpy()
