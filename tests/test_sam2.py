"""Segment Anything 2, native: the Hiera image encoder's layouts equal the official release's (keys and shapes, on
the meta device, for the four released sizes), and a small configuration with random weights exchanged strictly in
both directions gives the official package's features."""

from __future__ import annotations

import pytest
import torch

from omniseg.errors import ConfigError
from omniseg.models.promptable.hiera import HIERA_SIZES, hiera_image_encoder

sam2 = pytest.importorskip("sam2")
from omegaconf import OmegaConf  # noqa: E402  (hydra's configuration library, a dependency of sam2)

OFFICIAL_NAMES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
SMALL = dict(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,), window_pos_embed_bkg_spatial_size=(4, 4),
             window_spec=(4, 2, 2, 2))


def official_encoder(trunk: dict, *, d_model: int = 32):
    """The official ImageEncoder (Hiera trunk, FPN neck, sine positions) of the same configuration as ours."""
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine

    hiera = Hiera(**trunk)
    neck = FpnNeck(PositionEmbeddingSine(d_model, normalize=True, warmup_cache=False), d_model, hiera.channel_list,
                   fpn_top_down_levels=[2, 3], fpn_interp_model="nearest")
    return ImageEncoder(hiera, neck, scalp=1)


@pytest.mark.parametrize("size", list(HIERA_SIZES))
def test_the_released_hiera_layouts_equal_the_official_ones(size, monkeypatch):
    from hydra.utils import instantiate

    linspace = torch.linspace  # the official trunk reads its drop-path rates with .item(): those stay on the CPU
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    config = OmegaConf.load(f"{sam2.__path__[0]}/configs/sam2.1/sam2.1_hiera_{OFFICIAL_NAMES[size]}.yaml")
    with torch.device("meta"):
        ours, official = hiera_image_encoder(size), instantiate(config.model.image_encoder, _recursive_=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in official.state_dict().items()}


def test_a_small_encoder_gives_the_official_features_with_weights_exchanged_both_ways():
    torch.manual_seed(0)
    ours, official = hiera_image_encoder(d_model=32, **SMALL).eval(), official_encoder(SMALL).eval()
    with torch.no_grad():  # random weights everywhere (the release initialises the embeddings to zero)
        for parameter in official.parameters():
            parameter.normal_(0, 0.2)
    ours.load_state_dict(official.state_dict(), strict=True)
    image = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        expected, found = official(image), ours(image)
    assert found["vision_features"].shape == (2, 32, 8, 6)
    for key in ("backbone_fpn", "vision_pos_enc"):
        assert len(found[key]) == len(expected[key]) == 3
        for a, b in zip(found[key], expected[key]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(found["vision_features"], expected["vision_features"], atol=1e-5, rtol=1e-5)
    torch.manual_seed(1)
    other = hiera_image_encoder(d_model=32, **SMALL)
    official.load_state_dict(other.state_dict(), strict=True)  # and ours load into the official module
    with torch.no_grad():
        torch.testing.assert_close(official(image)["vision_features"], other.eval()(image)["vision_features"], atol=1e-5, rtol=1e-5)


def test_bad_encoder_configurations_are_one_line_errors():
    with pytest.raises(ConfigError, match="Hiera size 'huge' is unknown; choose one of tiny, small, base_plus, large"):
        hiera_image_encoder("huge")
    with pytest.raises(ConfigError, match="a window size per stage"):
        hiera_image_encoder(embed_dim=16, stages=(1, 1), window_spec=(4, 2, 2))
