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


@pytest.mark.parametrize(("version", "folder"), [("2.1", "sam2.1"), ("2.0", "sam2")])
def test_the_released_sam2_layouts_equal_the_official_ones(version, folder, monkeypatch):
    from hydra.utils import instantiate

    from omniseg.models import create_model

    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    for size, short in OFFICIAL_NAMES.items():
        config = OmegaConf.load(f"{sam2.__path__[0]}/configs/{folder}/{folder}_hiera_{short}.yaml")
        with torch.device("meta"):
            ours = create_model(f"sam2{'.1' if version == '2.1' else ''}_hiera_{size}")
            official = instantiate(config.model, _recursive_=True)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in official.state_dict().items()}, size


def small_official_sam2():
    """The official SAM 2.1 (tiny config file) made small: a 16-wide trunk, 32-wide features, 128-pixel images."""
    from hydra.utils import instantiate

    config = OmegaConf.load(f"{sam2.__path__[0]}/configs/sam2.1/sam2.1_hiera_t.yaml").model
    config.image_size = 128
    config.image_encoder.trunk = {"_target_": "sam2.modeling.backbones.hieradet.Hiera", **SMALL,
                                  "stages": list(SMALL["stages"]), "global_att_blocks": list(SMALL["global_att_blocks"]),
                                  "window_pos_embed_bkg_spatial_size": list(SMALL["window_pos_embed_bkg_spatial_size"]),
                                  "window_spec": list(SMALL["window_spec"])}
    config.image_encoder.neck.d_model, config.image_encoder.neck.backbone_channel_list = 32, [128, 64, 32, 16]
    config.image_encoder.neck.position_encoding.num_pos_feats = 32
    attention = config.memory_attention
    attention.d_model, attention.num_layers = 32, 2
    attention.layer.d_model, attention.layer.dim_feedforward = 32, 64
    attention.layer.self_attention.embedding_dim = attention.layer.cross_attention.embedding_dim = 32
    attention.layer.self_attention.feat_sizes = attention.layer.cross_attention.feat_sizes = [8, 8]
    attention.layer.cross_attention.kv_in_dim = 16
    encoder = config.memory_encoder
    encoder.out_dim, encoder.in_dim, encoder.position_encoding.num_pos_feats = 16, 32, 16
    encoder.mask_downsampler.embed_dim, encoder.fuser.layer.dim = 32, 32
    config.sam_mask_decoder_extra_args = {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                                          "dynamic_multimask_stability_thresh": 0.98}
    return instantiate(config, _recursive_=True)


def test_a_small_sam2_answers_prompts_as_the_official_image_predictor():
    import numpy as np
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from omniseg.models.promptable.sam2 import sam2_model

    torch.manual_seed(0)
    official = randomised(small_official_sam2())
    ours = sam2_model(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    ours.load_state_dict(official.state_dict(), strict=True)
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    predictor = SAM2ImagePredictor(official, mask_threshold=0.0, max_hole_area=0, max_sprinkle_area=0)
    predictor._bb_feat_sizes = [(32, 32), (16, 16), (8, 8)]  # the official predictor assumes 1024-pixel inputs
    predictor.set_image(image)
    x = ours.preprocess(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        features = ours.image_features(x)
    for prompt, multimask in (({"point_coords": [[60.0, 40.0]], "point_labels": [1]}, True),
                              ({"point_coords": [[60.0, 40.0], [10.0, 80.0]], "point_labels": [1, 0], "box": [20, 10, 100, 70]}, False)):
        masks, iou, low_res = predictor.predict(**{k: np.asarray(v) for k, v in prompt.items()}, multimask_output=multimask)
        scale = torch.tensor([128 / 120, 128 / 90])
        points = torch.tensor(prompt["point_coords"])[None] * scale
        boxes = (torch.tensor(prompt["box"], dtype=torch.float32).view(2, 2) * scale).view(1, 4) if "box" in prompt else None
        with torch.no_grad():
            logits, found_iou, _ = ours.predict(features, points=points, labels=torch.tensor([prompt["point_labels"]]),
                                                boxes=boxes, multimask=multimask)
        torch.testing.assert_close(logits[0].clamp(-32, 32), torch.from_numpy(low_res), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(found_iou[0], torch.from_numpy(iou), atol=1e-5, rtol=1e-5)
        upscaled = torch.nn.functional.interpolate(logits, (90, 120), mode="bilinear", align_corners=False)[0] > 0
        assert (upscaled.numpy() == masks.astype(bool)).all()


def test_the_prompt_predictor_and_the_checkpoint_loader_take_sam2(tmp_path):
    import numpy as np
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from omniseg.inference import PromptPredictor
    from omniseg.models.promptable.sam2 import sam2_model

    torch.manual_seed(0)
    official = randomised(small_official_sam2())
    torch.save({"model": official.state_dict()}, tmp_path / "small_sam2.pt")  # the release's file layout
    small = dict(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    ours = sam2_model(checkpoint=tmp_path / "small_sam2.pt", **small)  # read with weights_only, every key checked
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    reference = SAM2ImagePredictor(official, max_hole_area=0, max_sprinkle_area=0)
    reference._bb_feat_sizes = [(32, 32), (16, 16), (8, 8)]
    reference.set_image(image)
    masks, iou, low_res = reference.predict(point_coords=np.array([[60.0, 40.0]]), point_labels=np.array([1]))
    predictor = PromptPredictor(ours, device="cpu")
    predictor.set_image(image)
    result = predictor.predict(points=[[60, 40]], labels=[1])
    np.testing.assert_allclose(np.clip(result.low_res_logits, -32, 32), low_res, atol=1e-4)
    np.testing.assert_allclose(result.scores, iou, atol=1e-5)
    assert (result.masks == masks.astype(bool)).all() and result.masks.shape == (3, 90, 120)
    again = predictor.predict(points=[[60, 40]], labels=[1], mask_input=result.low_res_logits[result.scores.argmax()][None],
                              multimask=False)
    assert again.masks.shape == (1, 90, 120)  # a follow-up click takes the last mask's logits


def test_a_sam1_checkpoint_given_to_sam2_names_its_keys(tmp_path):
    from omniseg.models import create_model

    torch.save({"image_encoder.blocks.0.attn.qkv.weight": torch.zeros(3), "mask_decoder.iou_token.weight": torch.zeros(1)},
               tmp_path / "sam_vit_b.pth")
    with torch.device("meta"), pytest.raises(ConfigError, match="is a Segment Anything 1 checkpoint .*sam2.1_hiera_tiny is SAM 2"):
        create_model("sam2.1_hiera_tiny", checkpoint=str(tmp_path / "sam_vit_b.pth"))
    # an official file name with other bytes: its published sha256 catches it before it is read
    (tmp_path / "sam2.1_hiera_small.pt").write_bytes((tmp_path / "sam_vit_b.pth").read_bytes())
    with torch.device("meta"), pytest.raises(ConfigError, match=r"sha256 .*not the official file's 6d1aa6f30de5"):
        create_model("sam2.1_hiera_small", checkpoint=str(tmp_path / "sam2.1_hiera_small.pt"))


def test_the_memory_step_follows_the_official_track_step_frame_by_frame():
    """Eight frames: a click on frame 0, a mask prompt on frame 3, a correcting click on frame 5 with the last
    mask's logits, the rest tracked from memory; masks, pointers, object scores and memories equal at every frame."""
    from omniseg.models.promptable.sam2 import sam2_model
    from omniseg.models.promptable.tracking import TrackingSettings, frame_features, track_step

    torch.manual_seed(0)
    official = small_official_sam2()
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.mul_(0.5).add_(torch.randn_like(parameter) * 0.05)  # random, yet a well-behaved network
        official.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(3.0)  # objects mostly visible: real masks compared
    official = official.eval()
    official.binarize_mask_from_pts_for_mem_enc = True  # the video predictor's setting
    ours = sam2_model(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    ours.load_state_dict(official.state_dict(), strict=True)
    settings, frames = TrackingSettings.of("2.1"), torch.randn(8, 3, 128, 128)
    mask = torch.zeros(1, 1, 128, 128, dtype=torch.bool)
    mask[..., 30:80, 40:100] = True
    prompts = {0: ({"point_coords": torch.tensor([[[40.0, 50.0]]]), "point_labels": torch.tensor([[1]], dtype=torch.int32)}, None),
               3: (None, mask),
               5: ({"point_coords": torch.tensor([[[60.0, 60.0], [10.0, 10.0]]]), "point_labels": torch.tensor([[1, 0]], dtype=torch.int32)}, None)}
    memories = {name: {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}} for name in ("official", "ours")}
    for index in range(8):
        points, mask_input = prompts.get(index, (None, None))
        previous = memories["ours"]["non_cond_frame_outputs"].get(index - 1) if index == 5 else None
        with torch.no_grad():
            backbone = official.forward_image(frames[index:index + 1])
            _, feats, positions, sizes = official._prepare_backbone_features(backbone)
            expected = official.track_step(index, index == 0, feats, positions, sizes, points, mask_input, memories["official"], 8,
                                           prev_sam_mask_logits=None if previous is None else previous["pred_masks"])
            features = frame_features(ours, frames[index:index + 1])
            found = track_step(ours, settings, index, index == 0, features, points, mask_input, memories["ours"], 8,
                               prev_sam_mask_logits=None if previous is None else previous["pred_masks"])
        for key in ("pred_masks", "obj_ptr", "object_score_logits", "maskmem_features"):
            torch.testing.assert_close(found[key], expected[key], atol=1e-4, rtol=1e-4, msg=lambda m: f"frame {index}, {key}: {m}")
        kind = "cond_frame_outputs" if index in prompts else "non_cond_frame_outputs"
        memories["official"][kind][index], memories["ours"][kind][index] = expected, found
    visible = [index for kind in memories["ours"].values() for index, out in kind.items() if out["object_score_logits"].item() > 0]
    assert len(visible) >= 6, f"the comparison covered few frames where the object is visible: {sorted(visible)}"
