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


def official_memory(d_model: int = 32, mem_dim: int = 16, heads: int = 2, layers: int = 2):
    """The official memory encoder and memory attention, configured as the release is but small."""
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention

    encoder = MemoryEncoder(mem_dim, MaskDownSampler(embed_dim=d_model, kernel_size=3, stride=2, padding=1),
                            Fuser(CXBlock(d_model, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True), 2),
                            PositionEmbeddingSine(mem_dim, normalize=True, warmup_cache=False), in_dim=d_model)
    layer = MemoryAttentionLayer(
        "relu", RoPEAttention(d_model, heads, dropout=0.1, kv_in_dim=mem_dim, rope_k_repeat=True, feat_sizes=(4, 4)), d_model,
        64, 0.1, pos_enc_at_attn=False, pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
        self_attention=RoPEAttention(d_model, heads, dropout=0.1, feat_sizes=(4, 4)))
    return encoder, MemoryAttention(d_model, pos_enc_at_input=True, layer=layer, num_layers=layers)


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.2)
    return module.eval()


def test_the_memory_encoder_and_attention_give_the_official_outputs():
    from omniseg.models.promptable.memory import MemoryAttention, MemoryEncoder

    torch.manual_seed(0)
    official_encoder_, official_attention = (randomised(m) for m in official_memory())
    encoder, attention = MemoryEncoder(16, 32).eval(), MemoryAttention(32, 2, dim_feedforward=64, num_heads=2, kv_in_dim=16).eval()
    encoder.load_state_dict(official_encoder_.state_dict(), strict=True)
    attention.load_state_dict(official_attention.state_dict(), strict=True)
    features, masks = torch.randn(2, 32, 8, 8), torch.randn(2, 1, 128, 128) * 4
    with torch.no_grad():
        expected, found = official_encoder_(features, masks), encoder(features, masks)
    torch.testing.assert_close(found["vision_features"], expected["vision_features"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(found["vision_pos_enc"][0], expected["vision_pos_enc"][0])
    # a frame of 8 x 8 tokens attends to the memories of three frames and four object pointers (not rotated)
    curr, curr_pos = torch.randn(64, 2, 32), torch.randn(64, 2, 32)
    memory, memory_pos = torch.randn(3 * 64 + 4, 2, 16), torch.randn(3 * 64 + 4, 2, 16)
    with torch.no_grad():
        expected = official_attention(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens=4)
        found = attention(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens=4)
    assert found.shape == (64, 2, 32)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
