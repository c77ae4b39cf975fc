"""SE-ResNet, SE-ResNeXt and SENet-154 (Hu et al.), and their plain twins ResNet-50 and
ResNeXt-50: presets of the one ResNet builder (`keras_se.applications.resnet.ResNet`).

Each constructor takes the `keras.applications` arguments (documented in
`ResNet`) and, keyword-only, the options that select a timm twin's layout (also documented
in `ResNet`). `weights="imagenet"` loads the checkpoint of the timm twin the options match,
converted and cached on first use (`keras_se.applications.pretrained`).
"""

from keras_se.applications.registry import register_model
from keras_se.applications.resnet import RESNEXT_32X4D, preset


@register_model(family="resnet", attention="se")
def SEResNet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet18",
    *,
    reduction_ratio=16,
    stem_pool="ceil",
    relu_before_se=True,
):
    """SE-ResNet-18 (Hu et al.): basic blocks 2/2/2/2, SE before each addition.

    With the defaults it is timm's `legacy_seresnet18` (ImageNet: `legacy_seresnet18.in1k`),
    whose blocks apply a ReLU before the SE (`relu_before_se`) and whose stem pools in ceil
    mode.

    Example:
    >>> SEResNet18(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(SEResNet18, locals(), depths=(2, 2, 2, 2), block="basic", attention="se")


@register_model(family="resnet", attention="se")
def SEResNet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet34",
    *,
    reduction_ratio=16,
    stem_pool="ceil",
    relu_before_se=True,
):
    """SE-ResNet-34 (Hu et al.): basic blocks 3/4/6/3, SE before each addition.

    With the defaults it is timm's `legacy_seresnet34` (ImageNet: `legacy_seresnet34.in1k`).

    Example:
    >>> SEResNet34(include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 512)
    """
    return preset(SEResNet34, locals(), depths=(3, 4, 6, 3), block="basic", attention="se")


@register_model(
    family="resnet",
    attention="se",
    default_size=32,
    min_size=8,
    plain_twin="PlainResNet18CIFAR",
)
def SEResNet18CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="se_resnet18_cifar",
    *,
    reduction_ratio=16,
):
    """SE-ResNet-18 for 32x32 images: the "SENet-18" of the CIFAR-10 notebooks.

    ResNet-18 as the CIFAR notebooks build it (kuangliu's pytorch-cifar `SENet18`): one 3x3/1
    stem conv of 64 channels with BN and ReLU and no max pool, so the first stage works at the
    input's full resolution; basic blocks 2/2/2/2 of 64/128/256/512 channels with 1x1
    projection shortcuts (and BN) where the shape changes; SE (biased, C/16 wide) on the
    second BN's output, before the addition; global average pooling (the notebook's 4x4
    average pool at 32x32) and a 10-way classifier. 11,263,042 trainable parameters, as the
    notebook's model has. Its default input is 32x32 and it takes any input from 8x8 up; no
    ImageNet checkpoint exists (`weights="imagenet"` is refused).

    Example:
    >>> SEResNet18CIFAR().output_shape
    (None, 10)
    """
    return preset(
        SEResNet18CIFAR, locals(), depths=(2, 2, 2, 2), block="basic", attention="se", stem="cifar"
    )


@register_model(family="resnet", attention=None, default_size=32, min_size=8)
def PlainResNet18CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="resnet18_cifar",
):
    """ResNet-18 for 32x32 images without attention: the plain twin of `SEResNet18CIFAR`
    (the notebooks' `ResNet18`, 11,173,962 trainable parameters). No ImageNet checkpoint
    exists (`weights="imagenet"` is refused).

    Example:
    >>> PlainResNet18CIFAR(input_shape=(64, 64, 3), include_top=False).output_shape
    (None, 8, 8, 512)
    """
    return preset(
        PlainResNet18CIFAR,
        locals(),
        depths=(2, 2, 2, 2),
        block="basic",
        attention=None,
        stem="cifar",
    )


# He et al.'s CIFAR ResNets: a 3x3 stem of 16 channels, three stages of 16/32/64 planes.
_HE_CIFAR = dict(depths=(18, 18, 18), stem="cifar", stem_width=16, widths=(16, 32, 64))
_RESNET110 = dict(block="basic", shortcut="zero_pad", **_HE_CIFAR)
_RESNET164 = dict(block="preact_bottleneck", **_HE_CIFAR)


@register_model(
    family="resnet",
    attention="se",
    default_size=32,
    min_size=4,
    plain_twin="PlainResNet110CIFAR",
)
def SEResNet110CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="se_resnet110_cifar",
    *,
    reduction_ratio=16,
):
    """SE-ResNet-110: He et al.'s CIFAR ResNet-110 with SE, from the SENet paper's CIFAR
    experiments (CIFAR-10 error 5.21%, 6.37% without SE).

    ResNet-110 as He et al. build it for 32x32 images ("Deep Residual Learning", section
    4.2): a 3x3/1 stem conv of 16 channels with BN and ReLU, three stages of 18 basic blocks
    of 16/32/64 channels (6n+2 layers, n=18), the second and third starting with a stride
    2, and their parameter-free shortcuts (option A: every second position, then zero
    channels appended); SE (biased, C/16 wide, at least 1) on the second BN's output, before
    the addition; global average pooling and a 10-way classifier. 1,742,200 trainable
    parameters. Its default input is 32x32 and it takes any input from 4x4 up; no ImageNet
    checkpoint exists (`weights="imagenet"` is refused).

    Example:
    >>> model = SEResNet110CIFAR()
    >>> model.output_shape, model.get_layer("stage3_block18_se").reduced_channels_
    ((None, 10), 4)
    """
    return preset(SEResNet110CIFAR, locals(), attention="se", **_RESNET110)


@register_model(family="resnet", attention=None, default_size=32, min_size=4)
def PlainResNet110CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="resnet110_cifar",
):
    """He et al.'s CIFAR ResNet-110, the plain twin of `SEResNet110CIFAR` (1,727,962
    trainable parameters). No ImageNet checkpoint exists (`weights="imagenet"` is refused).

    Example:
    >>> PlainResNet110CIFAR(include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 8, 8, 64)
    """
    return preset(PlainResNet110CIFAR, locals(), attention=None, **_RESNET110)


@register_model(
    family="resnet",
    attention="se",
    default_size=32,
    min_size=4,
    plain_twin="PlainResNet164CIFAR",
)
def SEResNet164CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="se_resnet164_cifar",
    *,
    reduction_ratio=16,
):
    """SE-ResNet-164: He et al.'s pre-activation CIFAR ResNet-164 with SE, from the SENet
    paper's CIFAR experiments (CIFAR-10 error 4.39%, 5.46% without SE).

    ResNet-164 as He et al. build it ("Identity Mappings in Deep Residual Networks"): a
    3x3/1 stem conv of 16 channels alone, three stages of 18 pre-activation bottlenecks
    (BN -> ReLU -> conv, three times: 1x1, 3x3, 1x1 of 4x planes) of 16/32/64 planes and
    64/128/256 channels (9n+2 layers, n=18), the second and third starting with a stride 2
    on the 3x3, 1x1 projection shortcuts from the pre-activated input where the shape
    changes; SE (biased, C/16 wide) on the last 1x1's output, before the addition; a final
    BN and ReLU, global average pooling and a 10-way classifier. 1,905,362 trainable
    parameters. Its default input is 32x32 and it takes any input from 4x4 up; no ImageNet
    checkpoint exists (`weights="imagenet"` is refused).

    Example:
    >>> SEResNet164CIFAR(include_top=False, pooling="avg").output_shape
    (None, 256)
    """
    return preset(SEResNet164CIFAR, locals(), attention="se", **_RESNET164)


@register_model(family="resnet", attention=None, default_size=32, min_size=4)
def PlainResNet164CIFAR(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="resnet164_cifar",
):
    """He et al.'s pre-activation CIFAR ResNet-164, the plain twin of `SEResNet164CIFAR`
    (1,703,258 trainable parameters). No ImageNet checkpoint exists (`weights="imagenet"` is
    refused).

    Example:
    >>> PlainResNet164CIFAR(include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 8, 8, 256)
    """
    return preset(PlainResNet164CIFAR, locals(), attention=None, **_RESNET164)


@register_model(family="resnet", attention="se", plain_twin="PlainResNet50")
def SEResNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet50",
    *,
    reduction_ratio=16,
    stride_in_1x1=True,
    stem_pool="ceil",
):
    """SE-ResNet-50 (Hu et al.): bottlenecks 3/4/6/3 in the original Caffe layout.

    With the defaults (stride on the first 1x1, ceil-mode stem pool) it is timm's
    `legacy_seresnet50` (ImageNet: `legacy_seresnet50.in1k`); with `stride_in_1x1=False,
    stem_pool="pad"` it is timm's `seresnet50` (ImageNet: `seresnet50.a1_in1k`; by their tag,
    as `weights="seresnet50.a3_in1k"`: `seresnet50.a2_in1k`, `seresnet50.a3_in1k`,
    `seresnet50.ra2_in1k`).

    Example:
    >>> SEResNet50(input_shape=(64, 64, 3), classes=10, stem_pool="pad").output_shape
    (None, 10)
    """
    return preset(SEResNet50, locals(), depths=(3, 4, 6, 3), attention="se")


@register_model(family="resnet", attention="se")
def SEResNet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet101",
    *,
    reduction_ratio=16,
    stride_in_1x1=True,
    stem_pool="ceil",
):
    """SE-ResNet-101 (Hu et al.): bottlenecks 3/4/23/3 in the original Caffe layout.

    With the defaults it is timm's `legacy_seresnet101` (ImageNet: `legacy_seresnet101.in1k`).

    Example:
    >>> SEResNet101(include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 2, 2, 2048)
    """
    return preset(SEResNet101, locals(), depths=(3, 4, 23, 3), attention="se")


@register_model(family="resnet", attention="se")
def SEResNet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnet152",
    *,
    reduction_ratio=16,
    stride_in_1x1=True,
    stem_pool="ceil",
):
    """SE-ResNet-152 (Hu et al.): bottlenecks 3/8/36/3 in the original Caffe layout.

    With the defaults it is timm's `legacy_seresnet152` (ImageNet: `legacy_seresnet152.in1k`).

    Example:
    >>> SEResNet152(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(SEResNet152, locals(), depths=(3, 8, 36, 3), attention="se")


@register_model(family="resnet", attention=None)
def PlainResNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet50",
    *,
    stride_in_1x1=True,
    stem_pool="ceil",
):
    """ResNet-50 without attention: the plain twin of `SEResNet50`, in its layout.

    The same builder and options as `SEResNet50` without the SE layers, the baseline of the
    SE overhead benchmarks; with `stride_in_1x1=False, stem_pool="pad"` it has the structure
    of timm's `resnet50`. keras-se converts no checkpoint for it (`weights="imagenet"` is
    refused). Not `keras.applications.ResNet50`, which has biases in its convolutions.

    Example:
    >>> PlainResNet50(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(PlainResNet50, locals(), depths=(3, 4, 6, 3), attention=None)


@register_model(family="resnet", attention=None)
def PlainResNeXt50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnext50_32x4d",
    *,
    stem_pool="pad",
):
    """ResNeXt-50 (32x4d) without attention: the plain twin of `SEResNeXt50` and `SKNet50`.

    Grouped bottlenecks 3/4/6/3, the structure of timm's `resnext50_32x4d`; the baseline of
    the SE and SK overhead benchmarks. keras-se converts no checkpoint for it
    (`weights="imagenet"` is refused).

    Example:
    >>> PlainResNeXt50(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(PlainResNeXt50, locals(), depths=(3, 4, 6, 3), attention=None, **RESNEXT_32X4D)


@register_model(family="resnet", attention="se", plain_twin="PlainResNeXt50")
def SEResNeXt50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnext50_32x4d",
    *,
    reduction_ratio=16,
    stem_pool="pad",
):
    """SE-ResNeXt-50 (32x4d): grouped bottlenecks 3/4/6/3, stride on the 3x3.

    With the defaults it is timm's `seresnext50_32x4d` (ImageNet:
    `seresnext50_32x4d.racm_in1k`; by its tag, `seresnext50_32x4d.gluon_in1k`); with
    `stem_pool="ceil"` it is timm's
    `legacy_seresnext50_32x4d` (ImageNet: `legacy_seresnext50_32x4d.in1k`).

    Example:
    >>> SEResNeXt50(input_shape=(64, 64, 3), classes=10).output_shape
    (None, 10)
    """
    return preset(SEResNeXt50, locals(), depths=(3, 4, 6, 3), attention="se", **RESNEXT_32X4D)


@register_model(family="resnet", attention="se")
def SEResNeXt101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="se_resnext101_32x4d",
    *,
    reduction_ratio=16,
    stem_pool="pad",
):
    """SE-ResNeXt-101 (32x4d): grouped bottlenecks 3/4/23/3, stride on the 3x3.

    With the defaults it is timm's `seresnext101_32x4d` (ImageNet:
    `seresnext101_32x4d.gluon_in1k`); with `stem_pool="ceil"` it is timm's
    `legacy_seresnext101_32x4d` (ImageNet: `legacy_seresnext101_32x4d.in1k`).

    Example:
    >>> SEResNeXt101(include_top=False, input_shape=(64, 64, 3), pooling="max").output_shape
    (None, 2048)
    """
    return preset(SEResNeXt101, locals(), depths=(3, 4, 23, 3), attention="se", **RESNEXT_32X4D)


@register_model(family="resnet", attention="se")
def SENet154(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="senet154",
    *,
    reduction_ratio=16,
    stem_pool="ceil",
    dropout_rate=0.2,
):
    """SENet-154, the ILSVRC 2017 winner: 64x4d grouped bottlenecks 3/8/36/3 whose first 1x1
    is halved, a deep stem (3x3 convs of 64, 64, 128) and 3x3 stride-2 projection shortcuts.

    With the defaults it is timm's `legacy_senet154` (ImageNet: `legacy_senet154.in1k`); with
    `stem_pool="pad"` it is timm's `senet154` (ImageNet: `senet154.gluon_in1k`).

    Example:
    >>> SENet154(include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2048)
    """
    return preset(
        SENet154,
        locals(),
        depths=(3, 8, 36, 3),
        attention="se",
        groups=64,
        width_per_group=4,
        first_width_divisor=2,
        stem="deep",
        shortcut_kernel_size=3,
    )
