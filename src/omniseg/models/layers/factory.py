"""Pluggable layers by name: ``norm_layer`` and ``act_layer`` take ``str | type | callable``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from omniseg.registry import Registry

NORM_LAYERS: Registry[Callable[[int], nn.Module]] = Registry("norm layer")
NORM_LAYERS.add("batch", nn.BatchNorm2d)
NORM_LAYERS.add("instance", partial(nn.InstanceNorm2d, affine=True))
NORM_LAYERS.add("group", lambda channels: nn.GroupNorm(min(32, channels), channels))
NORM_LAYERS.add("none", lambda channels: nn.Identity())

ACT_LAYERS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACT_LAYERS.add("relu", partial(nn.ReLU, inplace=True))
ACT_LAYERS.add("leaky_relu", partial(nn.LeakyReLU, 0.01, inplace=True))
ACT_LAYERS.add("gelu", nn.GELU)
ACT_LAYERS.add("silu", partial(nn.SiLU, inplace=True))
ACT_LAYERS.add("prelu", nn.PReLU)

NormLayer = str | type | Callable[[int], nn.Module]
ActLayer = str | type | Callable[[], nn.Module]


def get_norm_layer(norm: NormLayer) -> Callable[[int], nn.Module]:
    """A callable ``channels -> nn.Module`` from a name ("batch", "group", ...), a class or a callable."""
    return NORM_LAYERS.get(norm) if isinstance(norm, str) else norm


def get_act_layer(act: ActLayer) -> Callable[[], nn.Module]:
    """A callable ``() -> nn.Module`` from a name ("relu", "gelu", ...), a class or a callable."""
    return ACT_LAYERS.get(act) if isinstance(act, str) else act
