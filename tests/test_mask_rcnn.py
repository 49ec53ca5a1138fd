"""Mask R-CNN: construction on each backbone kind, training losses, inference outputs, anchors, weights."""

import pytest
import torch
from safetensors.torch import save_file

from omniseg import create_model, list_models
from omniseg.errors import ConfigError
from omniseg.models.instance.mask_rcnn import load_detection_weights


def _targets(n=2, size=64):
    targets = []
    for i in range(n):
        masks = torch.zeros(2, size, size, dtype=torch.uint8)
        masks[0, 5:25, 8:30] = 1
        masks[1, 30 + i : 55, 30:60] = 1
        boxes = torch.tensor([[8, 5, 30, 25], [30, 30 + i, 60, 55]], dtype=torch.float32)
        targets.append({"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks})
    return targets


@pytest.mark.parametrize("backbone", ["resnet50_fpn", "resnet50_fpn_v2", "resnet18"])
def test_mask_rcnn_trains_and_predicts(backbone):
    torch.manual_seed(0)
    model = create_model("maskrcnn", num_classes=3, encoder=backbone, min_size=64, max_size=64, anchor_sizes="small",
                         rpn_post_nms_top_n_train=200)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    model.train()
    losses = model(images, _targets())
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores", "masks"}
    assert out[0]["masks"].shape[1:] == (1, 64, 64) and out[0]["boxes"].shape[1] == 4


def test_mask_rcnn_is_an_instance_model_with_checked_options():
    assert "maskrcnn" in list_models("instance") and "maskrcnn" not in list_models("semantic")
    with pytest.raises(ConfigError, match="one size per FPN level"):
        create_model("maskrcnn", num_classes=3, anchor_sizes=(8, 16))
    with pytest.raises(ConfigError, match="COCO weights exist for the torchvision"):
        create_model("maskrcnn", num_classes=3, encoder="resnet18", weights="coco")
    model = create_model("maskrcnn", num_classes=3, anchor_sizes="small")
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    with pytest.raises(ConfigError, match="fixed head widths"):
        create_model("maskrcnn", num_classes=3, fpn_channels=64)


def test_light_mask_rcnn_heads_have_the_asked_widths():
    model = create_model("maskrcnn", num_classes=4, encoder="resnet18", fpn_channels=32, box_head_size=128, mask_head_channels=16,
                         mask_head_layers=2, roi_sampling_ratio=0)
    heads = model.roi_heads
    assert model.backbone.out_channels == 32 and heads.box_head.fc6.in_features == 32 * 7 * 7
    assert heads.box_head.fc7.out_features == 128 and heads.box_predictor.cls_score.out_features == 4
    assert [m.out_channels for m in heads.mask_head.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 16]
    assert heads.mask_predictor.mask_fcn_logits.out_channels == 4
    assert heads.box_roi_pool.sampling_ratio == heads.mask_roi_pool.sampling_ratio == 0
    # the defaults are the paper's widths, as torchvision builds them
    default = create_model("maskrcnn", num_classes=4, encoder="resnet18").roi_heads
    assert default.box_head.fc7.out_features == 1024 and len(default.mask_head) == 4 and default.box_roi_pool.sampling_ratio == 2


def test_three_fpn_levels_leave_out_the_deepest_stage():
    torch.manual_seed(0)
    model = create_model("maskrcnn", num_classes=3, encoder="resnet18", fpn_channels=32, box_head_size=64, mask_head_channels=16,
                         mask_head_layers=1, min_size=64, max_size=64, anchor_sizes="small", fpn_levels=3)
    assert not hasattr(model.backbone.body, "layer4")  # never built, never run
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,))
    assert model.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2"]
    features = model.backbone(torch.rand(1, 3, 64, 64))
    assert {k: tuple(v.shape[-2:]) for k, v in features.items()} == {"0": (16, 16), "1": (8, 8), "2": (4, 4), "pool": (2, 2)}
    model.train()
    losses = model([torch.rand(3, 64, 64) for _ in range(2)], _targets())
    assert torch.isfinite(sum(losses.values()))
    with pytest.raises(ConfigError, match="fpn_levels must be 2, 3 or 4"):
        create_model("maskrcnn", num_classes=3, encoder="resnet18", fpn_levels=5)


def test_mask_rcnn_weights_file_keeps_all_but_the_class_predictors(tmp_path):
    torch.manual_seed(0)
    source = create_model("maskrcnn", num_classes=5, encoder="resnet18")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors")
    target = create_model("maskrcnn", num_classes=3, encoder="resnet18", weights=str(tmp_path / "w.safetensors"))
    assert torch.equal(target.backbone.fpn.inner_blocks[0][0].weight, source.backbone.fpn.inner_blocks[0][0].weight)
    skipped = load_detection_weights(target, tmp_path / "w.safetensors")
    assert sorted(skipped) == sorted(k for k in source.state_dict() if "box_predictor" in k or "mask_fcn_logits" in k)
    other = create_model("maskrcnn", num_classes=3, encoder="resnet34")
    with pytest.raises(ValueError, match="does not fit this Mask R-CNN"):
        load_detection_weights(other, tmp_path / "w.safetensors")
