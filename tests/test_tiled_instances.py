"""Instances across tiles: seams merged, cut objects kept whole, large objects stitched; instance TTA."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import torch
from scipy import ndimage

from omniseg import create_model
from omniseg.core.info import DatasetInfo
from omniseg.core.instance_masks import InstanceMasks, mask_crops
from omniseg.inference import Predictor
from omniseg.inference.tiling.tiled_instances import tiled_instances
from omniseg.inference.tiling.tta import invert_boxes, parse_tta, with_instance_tta
from omniseg.metrics.coco_ap import coco_evaluate, coco_ground_truth, coco_results
from omniseg.models.hub import ModelCard, save_model
from omniseg.viz.overlay import instance_overlay

# (top, left, height, width): objects on the seams of 128-pixel tiles at 0.5 overlap (tiles start every 64 or so
# pixels), one in a corner, one inside a single tile, and a long bar no tile holds whole
OBJECTS = [(50, 40, 30, 40), (100, 110, 40, 36), (180, 180, 20, 60), (0, 0, 25, 25), (200, 30, 44, 30), (260, 250, 50, 50),
           (140, 20, 24, 300)]


def seam_scene(height: int = 320, width: int = 400) -> tuple[torch.Tensor, list[np.ndarray]]:
    image = np.zeros((height, width, 3), np.uint8)
    truth = []
    for index, (top, left, h, w) in enumerate(OBJECTS):
        image[top:top + h, left:left + w] = (40 + 30 * index, 250 - 25 * index, 100 + index)
        mask = np.zeros((height, width), bool)
        mask[top:top + h, left:left + w] = True
        truth.append(mask)
    return torch.from_numpy(image).permute(2, 0, 1).contiguous(), truth


def colour_detector(image: torch.Tensor) -> dict:
    """A perfect detector: each connected region of one colour other than black is an object (class 1)."""
    pixels = image.permute(1, 2, 0).numpy().astype(np.int64)
    code = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    masks = []
    for colour in np.unique(code[code > 0]):
        regions, count = ndimage.label(code == colour)
        masks += [regions == k for k in range(1, count + 1)]
    masks_array = np.stack(masks) if masks else np.zeros((0, *code.shape), bool)
    boxes = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (np.nonzero(m) for m in masks_array)]
    return {"masks": torch.from_numpy(masks_array[:, None]).float(), "labels": torch.ones(len(masks), dtype=torch.int64),
            "scores": torch.linspace(0.9, 0.8, len(masks)), "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)}


def _best_iou(mask: np.ndarray, masks: np.ndarray) -> float:
    return max(((mask & m).sum() / (mask | m).sum() for m in masks), default=0.0)


@pytest.mark.parametrize("overlap", [0.5, 0.25])
def test_tiled_detection_finds_each_object_once_and_whole(overlap):
    image, truth = seam_scene()
    found = tiled_instances(colour_detector, image, tile=128, overlap=overlap)
    assert len(found["masks"]) == len(truth)
    for mask in truth:  # each object whole (the long bar stitched from its pieces), none twice
        assert _best_iou(mask, found["masks"]) == 1.0
    bar = next(i for i, m in enumerate(found["masks"]) if m[150, 100])
    np.testing.assert_allclose(found["boxes"][bar], [20, 140, 320, 164])


def test_instance_masks_held_as_crops_read_and_draw_as_the_dense_masks():
    image, truth = seam_scene(120, 160)
    dense = np.stack([m for m in truth if m.any()])
    crops = list(mask_crops(dense))
    masks = InstanceMasks([c for c, _ in crops], [o for _, o in crops], dense.shape[1:])
    assert masks.shape == dense.shape and np.array_equal(np.asarray(masks), dense) and np.array_equal(masks[-1], dense[-1])
    assert np.array_equal(np.asarray(masks[np.array([2, 0])]), dense[[2, 0]])
    assert crops[0][1] == (50, 40) and crops[0][0].shape == (30, 40)  # the first rectangle's box
    pixels = image.permute(1, 2, 0).numpy()
    labels = [1] * len(dense)
    assert np.array_equal(instance_overlay(pixels, masks, labels, ["bg", "box"]), instance_overlay(pixels, dense, labels, ["bg", "box"]))
    assert coco_results(1, {"masks": masks, "labels": labels, "scores": [0.9] * len(dense), "boxes": np.zeros((len(dense), 4))}) == \
        coco_results(1, {"masks": dense, "labels": labels, "scores": [0.9] * len(dense), "boxes": np.zeros((len(dense), 4))})


def test_one_tile_is_the_whole_image_detection():
    image, truth = seam_scene(120, 100)
    found, whole = tiled_instances(colour_detector, image, tile=512), colour_detector(image)
    assert len(found["masks"]) == len(whole["masks"]) == sum(m.any() for m in truth) == 2
    for mask in whole["masks"][:, 0].numpy() > 0.5:
        assert _best_iou(mask, found["masks"]) == 1.0


@pytest.mark.parametrize("spec", ["flip", "rot90", "flips,scale=0.5,1", "rot90,scale=0.75"])
def test_boxes_found_on_augmented_views_map_back(spec):
    height, width = 40, 60
    boxes = torch.tensor([[5.0, 8, 25, 30], [30, 2, 58, 12]])
    canvas = torch.zeros(2, 1, height, width)
    for k, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        canvas[k, 0, y0:y1, x0:x1] = 1
    for augmentation in parse_tta(spec, spatial_dims=2):
        view = augmentation.apply(canvas)[:, 0] > 0.5
        seen = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (torch.nonzero(m, as_tuple=True) for m in view)],
                            dtype=torch.float32)
        torch.testing.assert_close(invert_boxes(seen, augmentation, (height, width)), boxes, atol=1.5, rtol=0, msg=augmentation.name)


def test_instance_tta_merges_the_views_into_one_detection_each():
    image, truth = seam_scene(120, 160)
    detect = with_instance_tta(colour_detector, parse_tta("flip,rot90", spatial_dims=2))
    merged = detect(image)
    visible = [m[:120, :160] for m in truth if m[:120, :160].any()]
    assert len(merged["masks"]) == len(visible)
    for mask in visible:
        assert _best_iou(mask, merged["masks"][:, 0].numpy() >= 0.5) == 1.0
    # every view found every object: the merged score is the mean of the eight views' scores
    assert torch.all(merged["scores"] <= 0.9 + 1e-6) and torch.all(merged["scores"] >= 0.8 - 1e-6)


def separate_rectangles(size: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """A dark image with up to ``count`` bright rectangles (1/8 to 1/3 of 64 pixels a side) that do not touch."""
    image = np.full((size, size, 3), rng.integers(0, 60, 3), np.uint8)
    taken, masks = np.zeros((size, size), bool), []
    for _ in range(200):
        h, w = rng.integers(8, 21, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        if len(masks) == count or taken[max(0, y - 3):y + h + 3, max(0, x - 3):x + w + 3].any():
            continue
        taken[y:y + h, x:x + w] = True
        image[y:y + h, x:x + w] = rng.integers(100, 255, 3)
        masks.append(taken & ~np.any(masks, axis=0) if masks else taken.copy())
    return image, masks


LIGHT_MASK_RCNN = {"num_classes": 2, "encoder": "resnet18", "fpn_channels": 32, "box_head_size": 64, "mask_head_channels": 16,
                   "mask_head_layers": 1, "anchor_sizes": "small", "min_size": 64, "max_size": 64, "fpn_levels": 3,
                   "roi_sampling_ratio": 0, "rpn_post_nms_top_n_train": 100, "box_batch_size_per_image": 32}


@pytest.fixture(scope="module")
def rectangle_detector_run(tmp_path_factory) -> Path:
    """A light Mask R-CNN trained for 500 steps (about 25 s) on 64-pixel scenes of separate rectangles."""
    torch.manual_seed(0)
    model = create_model("maskrcnn", **LIGHT_MASK_RCNN).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=500, pct_start=0.1)
    rng = np.random.default_rng(0)
    for _ in range(500):
        images, targets = [], []
        for _ in range(4):  # 64-pixel crops of larger scenes, as training crops are: objects cut at the borders
            image, masks = separate_rectangles(96, int(rng.integers(2, 7)), rng)
            top, left = rng.integers(0, 33, 2)
            image, masks = image[top:top + 64, left:left + 64], [m[top:top + 64, left:left + 64] for m in masks]
            masks = np.array([m for m in masks if m.any()], bool).reshape(-1, 64, 64)
            images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255)
            boxes = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (np.nonzero(m) for m in masks)]
            targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.ones(len(masks), dtype=torch.int64),
                            "masks": torch.from_numpy(masks).to(torch.uint8)})
        loss = sum(model(images, targets).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    run = tmp_path_factory.mktemp("rectangles_maskrcnn")
    save_model(model.eval(), run, ModelCard("maskrcnn", LIGHT_MASK_RCNN, DatasetInfo(["background", "rectangle"], ignore_index=255, things=[1]),
                                            preprocessing={"img_size": 64}, task="instance"))
    return run


@pytest.fixture(scope="module")
def rectangle_detector(rectangle_detector_run) -> Predictor:
    return Predictor(rectangle_detector_run, device="cpu")


def test_tiled_mask_rcnn_finds_each_object_once_with_the_whole_image_mask_ap(rectangle_detector):
    """Scenes of 128 pixels hold ten rectangles, many on the seams of the 64-pixel tiles (at 0, 32 and 64)."""
    rng = np.random.default_rng(5)
    truth, tiled, whole = [], [], []
    for index in range(8):
        image, masks = separate_rectangles(128, 10, rng)
        found = rectangle_detector.predict_instances(image, tile=0, score_threshold=0.8)
        assert len(found["masks"]) == len(masks)
        for mask in masks:  # each rectangle found once
            assert sum((mask & m).sum() / (mask | m).sum() > 0.5 for m in found["masks"]) == 1
        truth.append({"id": index, "height": 128, "width": 128, "masks": np.stack(masks), "labels": np.ones(len(masks))})
        tiled += coco_results(index, found)
        # the whole image in one pass, at the same (native) resolution
        whole += coco_results(index, rectangle_detector.predict_instances(image, tile=128, score_threshold=0.8))
    ground_truth = coco_ground_truth(truth, ["background", "rectangle"])
    tiled_ap, whole_ap = coco_evaluate(ground_truth, tiled)["AP"], coco_evaluate(ground_truth, whole)["AP"]
    assert whole_ap > 0.75 and abs(tiled_ap - whole_ap) <= 0.01


def test_predict_tiles_an_instance_run_and_takes_up_where_it_stopped(rectangle_detector_run, rectangle_detector, tmp_path, run_cli):
    rng = np.random.default_rng(9)
    (tmp_path / "in").mkdir()
    counts = {}
    for name in ("a", "b"):
        image, _ = separate_rectangles(160, 12, rng)
        Image.fromarray(image).save(tmp_path / "in" / f"{name}.png")
        counts[name] = len(rectangle_detector.predict_instances(image, tile=0, score_threshold=0.8)["masks"])
    args = ("predict", rectangle_detector_run, tmp_path / "in", "--out", tmp_path / "out", "--tile", "0", "--score-threshold", "0.8",
            "--precision", "32")
    assert run_cli(*args)[0] == 0
    results = json.loads((tmp_path / "out" / "coco_results.json").read_text())
    assert [sum(r["image_id"] == k for r in results) for k in (1, 2)] == [counts["a"], counts["b"]]
    ids = np.asarray(Image.open(tmp_path / "out" / "a_instances.png"))
    assert ids.shape == (160, 160) and ids.max() == counts["a"]
    # a run stopped after "a": "b" is predicted again, "a" is taken as it is
    (tmp_path / "out" / "b_results.json").unlink()
    before = (tmp_path / "out" / "a_instances.png").stat().st_mtime_ns
    assert run_cli(*args)[0] == 0
    assert (tmp_path / "out" / "a_instances.png").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "out" / "coco_results.json").read_text()) == results
