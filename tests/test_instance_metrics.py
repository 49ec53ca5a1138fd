"""Panoptic quality on hand-computed cases and the shared COCO panoptic sample; COCO AP through pycocotools."""

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from omniseg.metrics import PanopticQuality, coco_evaluate, coco_ground_truth, coco_results

from .conftest import SHARED_DATA


def _pq(pred, pred_segments, gt, gt_segments, num_classes=3, things=(1, 2)):
    metric = PanopticQuality(num_classes, things=things)
    metric.update(np.array(pred), pred_segments, np.array(gt), gt_segments)
    return metric.compute()


def test_pq_perfect_match():
    ids = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3]])
    result = _pq(ids, {1: 1, 2: 2, 3: 0}, ids, {1: 1, 2: 2, 3: 0})
    assert result["all"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 3}
    assert result["things"]["n"] == 2 and result["stuff"]["n"] == 1


def test_pq_split_a_match_and_a_false_positive():
    gt = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])  # one object of 8 pixels
    pred = np.array([[5, 5, 5, 5], [5, 5, 6, 6]])  # a 6-pixel part (IoU 0.75) and a 2-pixel part
    result = _pq(pred, {5: 1, 6: 1}, gt, {1: 1})
    cls = result["per_class"][1]
    assert (cls["tp"], cls["fp"], cls["fn"]) == (1, 1, 0)
    assert cls["sq"] == pytest.approx(0.75) and cls["rq"] == pytest.approx(1 / 1.5) and cls["pq"] == pytest.approx(0.75 / 1.5)


def test_pq_counts_added_from_another_process_equal_one_pass_over_both_images():
    gt = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])
    first, second = (np.array([[5, 5, 5, 5], [5, 5, 6, 6]]), {5: 1, 6: 1}), (gt, {1: 1})
    together, part_a, part_b = (PanopticQuality(3, things=(1, 2)) for _ in range(3))
    for metric, images in ((together, (first, second)), (part_a, (first,)), (part_b, (second,))):
        for pred, segments in images:
            metric.update(pred, segments, gt, {1: 1})
    part_a.add(part_b)
    for name in ("iou", "tp", "fp", "fn"):
        assert np.array_equal(getattr(part_a, name), getattr(together, name))
    assert together.compute()["per_class"][1]["tp"] == 2 and together.compute()["per_class"][1]["fp"] == 1
    with pytest.raises(ValueError, match="4 classes"):
        part_a.add(PanopticQuality(4))


def test_pq_even_split_and_merge_match_nothing():
    gt = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])
    halves = np.array([[5, 5, 5, 5], [6, 6, 6, 6]])  # IoU 0.5 each: a match needs more than 0.5
    cls = _pq(halves, {5: 1, 6: 1}, gt, {1: 1})["per_class"][1]
    assert (cls["tp"], cls["fp"], cls["fn"], cls["pq"]) == (0, 2, 1, 0.0)
    two = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
    merged = np.full((2, 4), 7)
    cls = _pq(merged, {7: 1}, two, {1: 1, 2: 1})["per_class"][1]
    assert (cls["tp"], cls["fp"], cls["fn"], cls["pq"]) == (0, 1, 2, 0.0)
    unequal = np.array([[1, 1, 1, 1], [1, 1, 2, 2]])  # 6 + 2 pixels, merged: the big one still matches (0.75)
    cls = _pq(merged, {7: 1}, unequal, {1: 1, 2: 1})["per_class"][1]
    assert (cls["tp"], cls["fp"], cls["fn"]) == (1, 0, 1) and cls["pq"] == pytest.approx(0.75 / 1.5)


def test_pq_void_pixels_are_left_out():
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])  # right half void
    pred = np.full((2, 4), 5)  # covers the object and the void
    cls = _pq(pred, {5: 1}, gt, {1: 1})["per_class"][1]
    assert (cls["tp"], cls["fp"], cls["fn"]) == (1, 0, 0) and cls["sq"] == 1.0
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    pred = np.array([[0, 0, 8, 8], [0, 0, 8, 8]])  # an unmatched prediction on void only: not a false positive
    cls = _pq(pred, {8: 2}, gt, {1: 1})
    assert cls["per_class"][2]["fp"] == 0 and cls["per_class"][1]["fn"] == 1


def test_pq_crowd_regions_are_never_matched_and_absorb_their_category():
    gt = np.array([[3, 3, 3, 3], [1, 1, 2, 2]])  # 3: a crowd of category 1
    segments = {1: 1, 2: 2, 3: (1, True)}
    pred = np.array([[7, 7, 7, 7], [1, 1, 2, 2]])
    result = _pq(pred, {1: 1, 2: 2, 7: 1}, gt, segments)
    assert result["per_class"][1]["fp"] == 0 and result["all"]["pq"] == 1.0  # the crowd-covering prediction is ignored
    result = _pq(pred, {1: 1, 2: 2, 7: 2}, gt, segments)  # the same region called category 2: a false positive
    assert result["per_class"][2]["fp"] == 1 and result["per_class"][2]["pq"] == pytest.approx(1 / 1.5)


def test_pq_rejects_ids_without_segments():
    with pytest.raises(ValueError, match="segment id 4"):
        PanopticQuality(2).update(np.array([[4]]), {}, np.array([[1]]), {1: 0})


@pytest.mark.skipif(not (SHARED_DATA / "coco_panoptic").is_dir(), reason="../shared/data is absent")
def test_pq_on_the_shared_coco_panoptic_sample_is_one_for_the_truth():
    from omniseg.data.formats.coco import decode_panoptic_png

    root = SHARED_DATA / "coco_panoptic"
    values = json.loads((root / "panoptic_examples.json").read_text())
    categories = sorted(c["id"] for c in values["categories"])
    index = {c: i for i, c in enumerate(categories)}
    things = [index[c["id"]] for c in values["categories"] if c["isthing"]]
    metric = PanopticQuality(len(categories), things=things)
    for annotation in values["annotations"]:
        ids = decode_panoptic_png(root / "panoptic_examples" / annotation["file_name"])
        segments = {s["id"]: (index[s["category_id"]], bool(s["iscrowd"])) for s in annotation["segments_info"]}
        predicted = {s["id"]: index[s["category_id"]] for s in annotation["segments_info"]}
        metric.update(ids, predicted, ids, segments)
    result = metric.compute()
    assert result["all"]["pq"] == 1.0 and result["things"]["n"] > 0 and result["stuff"]["n"] > 0


def _squares():
    images = []
    for image_id in (1, 2):
        masks = np.zeros((3, 40, 50), bool)
        masks[0, 2:12, 3:15] = masks[1, 20:35, 5:25] = masks[2, 5:30, 30:48] = True
        images.append({"id": image_id, "height": 40, "width": 50, "masks": masks, "labels": np.array([1, 2, 1])})
    return images


def test_coco_ap_is_one_when_the_truth_is_the_prediction():
    images = _squares()
    truth = coco_ground_truth(images, ["background", "cat", "dog"])
    results = []
    for image in images:
        boxes = np.array([mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))) for m in image["masks"]])
        boxes[:, 2:] += boxes[:, :2]
        results += coco_results(image["id"], {"boxes": boxes, "labels": image["labels"], "scores": np.ones(3), "masks": image["masks"]})
    for iou_type in ("segm", "bbox"):
        stats = coco_evaluate(truth, results, iou_type=iou_type)
        assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0) and stats["per_class"] == {"cat": 1.0, "dog": 1.0}


def test_coco_ap_of_shifted_masks_equals_pycocotools_run_directly():
    images = _squares()
    predictions, raw_results = {}, []
    rng = np.random.default_rng(0)
    for image in images:
        shifted = np.stack([np.roll(m, int(rng.integers(1, 6)), axis=1) for m in image["masks"]])
        scores = rng.random(3)
        boxes = np.zeros((3, 4))
        predictions[image["id"]] = {"boxes": boxes, "labels": image["labels"], "scores": scores, "masks": shifted[:, None].astype(np.float32)}
        for mask, label, score in zip(shifted, image["labels"], scores):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            raw_results.append({"image_id": image["id"], "category_id": int(label), "segmentation": rle, "score": float(score)})
    ours = coco_evaluate(coco_ground_truth(images, ["background", "cat", "dog"]),
                         [r for i, p in predictions.items() for r in coco_results(i, p)])
    # the same by hand: pycocotools' own objects, no omniseg conversion
    dataset = {"images": [{"id": im["id"], "height": 40, "width": 50} for im in images], "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
               "annotations": []}
    for image in images:
        for mask, label in zip(image["masks"], image["labels"]):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            dataset["annotations"].append({"id": len(dataset["annotations"]) + 1, "image_id": image["id"], "category_id": int(label),
                                           "segmentation": rle, "area": float(mask.sum()), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(raw_results), iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert 0.0 < ours["AP"] < 1.0
    assert [ours[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")] == pytest.approx(list(evaluator.stats[:6]))


def test_panoptic_merge_rules():
    from omniseg.models.panoptic import ids_to_rgb, panoptic_merge

    semantic = np.zeros((6, 8), int)
    semantic[:, 4:] = 3  # stuff "sky" on the right, stuff 0 on the left
    semantic[5, 0] = 4  # a one-pixel stuff region: below stuff_min_area
    masks = np.zeros((4, 6, 8), bool)
    masks[0, 0:3, 0:3] = True  # score 0.9
    masks[1, 1:3, 1:3] = True  # score 0.8, entirely under the first: dropped by the overlap rule
    masks[2, 3:6, 2:6] = True  # score 0.7, overlaps nothing
    masks[3, 0:2, 6:8] = True  # score 0.3: below the score threshold
    ids, info = panoptic_merge(semantic, masks, [1, 1, 2, 1], [0.9, 0.8, 0.7, 0.3], things=[1, 2], stuff_min_area=2)
    assert [(s["category_id"], s["isthing"], s["area"]) for s in info] == [(1, True, 9), (2, True, 12), (0, False, 8), (3, False, 18)]
    assert ids[5, 0] == 0 and (ids > 0).sum() == 47  # the small stuff region is void
    rgb = ids_to_rgb(ids * 70000)
    rgb = rgb.astype(np.int64)
    assert np.array_equal(rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2], ids * 70000)
    metric = PanopticQuality(5, things=[1, 2])
    metric.update(ids, {s["id"]: s["category_id"] for s in info}, ids, {s["id"]: s["category_id"] for s in info})
    assert metric.compute()["all"]["pq"] == 1.0
