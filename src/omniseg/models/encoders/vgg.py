"""VGG16 stages (Simonyan & Zisserman, 2015), the trunk of FCN and SegNet."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from omniseg.errors import ConfigError
from omniseg.models.encoders.weights import adapt_first_conv, read_state_dict

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16_stages(width: float = 1.0) -> tuple[tuple[int, ...], ...]:
    """VGG16's stage widths scaled by ``width`` (1.0: the paper's; 0.25: a slim trunk for small data or tests).

    Example:
        >>> vgg16_stages(0.25)[0]
        (16, 16)
    """
    if not 0 < width <= 1:
        raise ConfigError(f"width must be in (0, 1], got {width}")
    return tuple(tuple(max(1, round(c * width)) for c in stage) for stage in VGG16_STAGES)


def vgg_stage(in_channels: int, widths: tuple[int, ...], batch_norm: bool) -> nn.Sequential:
    """3x3 convolutions (+ BatchNorm for VGG16-BN) and ReLUs of one VGG stage, without its pooling."""
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


def imagenet_vgg16_state(batch_norm: bool) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG16 (or VGG16-BN) weights; downloads them when online."""
    from torchvision.models import VGG16_BN_Weights, VGG16_Weights

    weights = VGG16_BN_Weights.IMAGENET1K_V1 if batch_norm else VGG16_Weights.IMAGENET1K_V1
    return weights.get_state_dict(progress=True)


def load_vgg16_weights(
    stages: nn.ModuleList, source: str | Path, *, batch_norm: bool, fc6: nn.Conv2d | None = None,
    fc7: nn.Conv2d | None = None,
) -> None:
    """Load torchvision VGG16 / VGG16-BN weights into our stages (and fc6/fc7 as convolutions).

    ``source``: ``"imagenet"`` (torchvision's weights, downloaded when online) or a file holding the
    state dict of ``torchvision.models.vgg16()`` or ``vgg16_bn()`` (``.safetensors`` or ``.pth``).
    Convolutions and BatchNorms are matched in order. Where our convolution has no bias (a BatchNorm
    follows) the file's bias moves into the BatchNorm's running mean, which gives the same output.
    fc6 (``classifier.0``, 25088 -> 4096) becomes a 7x7 convolution and fc7 a 1x1 convolution, as in FCN.
    """
    if source == "imagenet":
        state = imagenet_vgg16_state(batch_norm)
    else:
        state = read_state_dict(source, "VGG16 weights")
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")})
    file_convs = [i for i in indices if state[f"features.{i}.weight"].ndim == 4]
    file_norms = [i for i in indices if f"features.{i}.running_mean" in state]
    convs = [m for m in stages.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in stages.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(file_convs) != len(convs) or (norms and file_norms and len(file_norms) != len(norms)):
        raise ConfigError(
            f"{source} is not a torchvision VGG16 state dict: {len(file_convs)} convolutions and "
            f"{len(file_norms)} BatchNorms where VGG16 has {len(convs)} and {len(norms)}"
        )
    with torch.no_grad():
        for position, (conv, index) in enumerate(zip(convs, file_convs)):
            weight = state[f"features.{index}.weight"]
            if position == 0:
                weight = adapt_first_conv(weight, conv.in_channels)
            if weight.shape != conv.weight.shape:
                raise ConfigError(f"{source}: features.{index}.weight is {tuple(weight.shape)} but convolution {position} of "
                                  f"VGG16 is {tuple(conv.weight.shape)}; pass the state dict of torchvision's vgg16()/vgg16_bn()")
            conv.weight.copy_(weight)
            bias = state.get(f"features.{index}.bias")
            if conv.bias is not None and bias is not None:
                conv.bias.copy_(bias)
            norm = norms[position] if norms else None
            if norm is not None and file_norms:
                prefix = f"features.{file_norms[position]}."
                norm.weight.copy_(state[prefix + "weight"])
                norm.bias.copy_(state[prefix + "bias"])
                norm.running_var.copy_(state[prefix + "running_var"])
                norm.running_mean.copy_(state[prefix + "running_mean"])
                if conv.bias is None and bias is not None:  # BN(conv + b) with mean m == BN(conv) with mean m - b
                    norm.running_mean.sub_(bias)
        for layer, key in ((fc6, "classifier.0"), (fc7, "classifier.3")):
            if layer is not None:
                if f"{key}.weight" not in state:
                    raise ConfigError(f"{source} has no {key} (fc6/fc7) weights; pass the full VGG16 state dict")
                if state[f"{key}.weight"].numel() != layer.weight.numel():
                    raise ConfigError(f"{source}: {key}.weight has {state[f'{key}.weight'].numel():,} values, fc6/fc7 of VGG16 "
                                      f"{layer.weight.numel():,}; pass the state dict of torchvision's vgg16()")
                layer.weight.copy_(state[f"{key}.weight"].reshape(layer.weight.shape))
                layer.bias.copy_(state[f"{key}.bias"])
