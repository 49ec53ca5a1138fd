"""Panoptic FPN, the panoptic truth and merge of model outputs, panoptic training, evaluation and prediction."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg import create_model, list_models
from omniseg.data.synthetic import synthetic_info, write_synthetic
from omniseg.data.transforms import InstanceTransform
from omniseg.metrics import PanopticQuality
from omniseg.metrics.panoptic import panoptic_ground_truth
from omniseg.models.panoptic import SemanticFPNHead, merge_prediction

from .conftest import SHARED_DATA

LIGHT = {"encoder": "resnet18", "min_size": 64, "max_size": 64, "fpn_channels": 32, "box_head_size": 64, "mask_head_channels": 32,
         "mask_head_layers": 1, "semantic_channels": 16, "anchor_sizes": "small"}
TINY = ["--model", "panoptic_fpn", "--encoder", "resnet18", "--set", "model.kwargs.anchor_sizes=small", "--set", "model.kwargs.fpn_channels=32",
        "--set", "model.kwargs.semantic_channels=16", "--batch-size", "2", "--no-progress"]


def _targets():
    masks = torch.zeros(1, 64, 80, dtype=torch.uint8)
    masks[0, 10:30, 20:44] = 1
    semantic = torch.full((64, 80), 2)
    semantic[10:30, 20:44] = 1
    semantic[:4] = 255  # ignored rows
    return [{"boxes": torch.tensor([[20.0, 10.0, 44.0, 30.0]]), "labels": torch.tensor([1]), "masks": masks, "semantic": semantic},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 60, 64, dtype=torch.uint8),
             "semantic": torch.zeros(60, 64, dtype=torch.int64)}]


def test_panoptic_fpn_trains_with_a_semantic_loss_and_predicts_probabilities():
    torch.manual_seed(0)
    model = create_model("panoptic_fpn", num_classes=3, ignore_index=255, **LIGHT)  # the targets' void is 255
    assert "panoptic_fpn" in list_models("panoptic")
    images = [torch.rand(3, 64, 80), torch.rand(3, 60, 64)]
    losses = model.train()(images, _targets())
    assert {"loss_objectness", "loss_classifier", "loss_mask", "loss_semantic"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    # the semantic loss is cross entropy on the non-ignored pixels, scaled by semantic_weight (0.5): near 0.5 * ln 3 at start
    assert 0.2 < losses["loss_semantic"].item() < 1.5
    sum(losses.values()).backward()
    assert model.semantic_head.classifier.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="semantic"):
        model(images, [{k: v for k, v in t.items() if k != "semantic"} for t in _targets()])
    outputs = model.eval()(images)
    for output, image in zip(outputs, images):
        assert output["semantic"].shape == (3, *image.shape[-2:])
        assert torch.allclose(output["semantic"].sum(0), torch.ones(image.shape[-2:]), atol=1e-5)
        assert {"boxes", "labels", "scores", "masks"} <= set(output)


def test_semantic_fpn_head_brings_every_level_to_a_quarter_scale():
    head = SemanticFPNHead(8, num_classes=5, channels=16)
    features = [torch.rand(2, 8, 32 // 2**k, 48 // 2**k) for k in range(4)]  # strides 4, 8, 16, 32 of a 128x192 image
    assert head(features).shape == (2, 5, 32, 48)
    # upsampling blocks per level: 0, 1, 2, 3 (the paper's design), each with one 3x3 convolution
    assert [sum(isinstance(m, torch.nn.Conv2d) for m in scale) for scale in head.scales] == [1, 1, 2, 3]


def test_panoptic_fpn_takes_the_detector_options_and_rejects_unknown_ones():
    from omniseg.errors import ConfigError

    model = create_model("panoptic_fpn", num_classes=4, stuff_min_area=7, **LIGHT)
    assert model.merge_options == {"score_threshold": 0.5, "overlap_threshold": 0.5, "stuff_min_area": 7}
    assert model.detector.rpn.anchor_generator.sizes[0] == (8,)
    with pytest.raises(ConfigError, match="no argument 'anchors'"):
        create_model("panoptic_fpn", num_classes=4, anchors=3)


def test_instance_transform_carries_the_class_map_with_ignored_padding():
    info = synthetic_info()
    from omniseg.data.synthetic import SyntheticShapes

    sample = SyntheticShapes(1, size=48)[0]
    image, target = InstanceTransform(semantic=True, ignore_index=255)(sample)  # evaluation: unchanged geometry
    assert torch.equal(target["semantic"], sample["mask"])
    torch.manual_seed(3)
    transform = InstanceTransform(64, scale_range=(0.5, 0.6), semantic=True, ignore_index=info.ignore_index)  # shrinks: padding
    image, target = transform(sample)
    semantic = target["semantic"]
    assert semantic.shape == (64, 64) and (semantic == 255).any()
    assert set(semantic.unique().tolist()) <= {0, 1, 2, 3, 4, 255}
    for mask, label in zip(target["masks"].bool(), target["labels"]):  # every instance pixel carries its class
        assert (semantic[mask] == label).all()
    assert (image[:, semantic == 255] == 0).all()  # padding is where the image is padded


def test_merged_truth_as_prediction_scores_pq_one_and_a_dropped_instance_costs_its_class():
    semantic = np.zeros((20, 20), np.int64)
    semantic[:, 15:] = 2  # a stuff class
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:8, 2:8] = masks[1, 10:14, 3:9] = True
    semantic[masks[0]] = semantic[masks[1]] = 1
    truth_ids, truth_segments = panoptic_ground_truth(semantic, masks, [1, 1], things=[1], ignore_index=255)
    assert sorted(v.category for v in truth_segments.values()) == [0, 1, 1, 2]
    probabilities = torch.nn.functional.one_hot(torch.from_numpy(semantic), 3).permute(2, 0, 1).float()
    output = {"semantic": probabilities, "masks": torch.from_numpy(masks)[:, None].float(), "labels": torch.tensor([1, 1]),
              "scores": torch.tensor([0.9, 0.8])}
    quality = PanopticQuality(3, things=[1])
    ids, segments = merge_prediction(output, [1], stuff_min_area=1)
    quality.update(ids, {s["id"]: s["category_id"] for s in segments}, truth_ids, truth_segments)
    assert quality.compute()["all"]["pq"] == 1.0
    quality.reset()
    output["scores"] = torch.tensor([0.9, 0.3])  # the second instance falls under the score threshold
    ids, segments = merge_prediction(output, [1], stuff_min_area=1)
    quality.update(ids, {s["id"]: s["category_id"] for s in segments}, truth_ids, truth_segments)
    result = quality.compute()
    # class 1: one TP (IoU 1), one FN -> PQ = 1 / (1 + 0.5) = 2/3; background and stuff stay at 1
    assert result["per_class"][1]["pq"] == pytest.approx(2 / 3)
    assert result["all"]["pq"] == pytest.approx((1 + 2 / 3 + 1) / 3)


@pytest.fixture(scope="module")
def panoptic_run(tmp_path_factory):
    from omniseg.cli.main import main

    root = tmp_path_factory.mktemp("panoptic")
    data = write_synthetic(root / "data", splits={"train": 6, "val": 3}, size=48, seed=0)
    code = main(["train", "--task", "panoptic", "--data", str(data), *TINY, "--img-size", "48", "--epochs", "1",
                 "--out", str(root / "run")])
    assert code == 0
    return data, root / "run"


def test_panoptic_training_writes_the_pq_report(panoptic_run):
    _, run = panoptic_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "panoptic" and metrics["images"] == 3 and metrics["global_step"] == 3
    names = [row["name"] for row in metrics["panoptic"]["per_class"]]
    assert names == synthetic_info().class_names
    assert [row["isthing"] for row in metrics["panoptic"]["per_class"]] == [False, True, True, True, True]
    assert 0.0 <= metrics["panoptic"]["all"]["pq"] <= 1.0 and "AP" in metrics["segm"]
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,step,train_loss,val_pq,val_pq_things,val_pq_stuff")
    assert (run / "curves.png").is_file() and len(list((run / "samples").glob("*.png"))) == 3


def test_eval_and_predict_of_a_panoptic_run(panoptic_run, run_cli, tmp_path):
    data, run = panoptic_run
    code, out, err = run_cli("eval", run, "--data", data, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["task"] == "panoptic" and report["panoptic"]["all"]["pq"] == json.loads((run / "metrics.json").read_text())["panoptic"]["all"]["pq"]
    code, out, err = run_cli("predict", "--precision", "32", run, data / "images" / "val", "--out", tmp_path / "pred", "--score-threshold", "0.0",
                             "--stuff-min-area", "1")
    assert code == 0, err
    values = json.loads((tmp_path / "pred" / "panoptic.json").read_text())
    assert len(values["annotations"]) == 3 and [c["name"] for c in values["categories"]] == synthetic_info().class_names
    for annotation in values["annotations"]:
        rgb = np.asarray(Image.open(tmp_path / "pred" / annotation["file_name"])).astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        areas = {s["id"]: s["area"] for s in annotation["segments_info"]}
        assert {i: int((ids == i).sum()) for i in areas} == areas  # the PNG holds exactly the listed segments
        assert set(np.unique(ids).tolist()) - {0} == set(areas)
        assert (tmp_path / "pred" / annotation["file_name"].replace("_panoptic", "_overlay")).is_file()


def test_panoptic_task_needs_class_masks_and_a_panoptic_model(run_cli, tmp_path):
    data = write_synthetic(tmp_path / "data", splits={"train": 2, "val": 1}, size=32)
    code, _, err = run_cli("train", "--task", "panoptic", "--data", data, "--model", "maskrcnn", "--out", tmp_path / "r")
    assert code == 2 and "needs a panoptic model" in err
    for mask in (data / "masks" / "val").glob("*.png"):
        mask.unlink()
    code, _, err = run_cli("train", "--task", "panoptic", "--data", data, *TINY, "--out", tmp_path / "r2")
    assert code == 2 and "without class masks" in err


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "coco_panoptic").is_dir(), reason="../shared/data is absent")
def test_panoptic_training_on_the_shared_coco_panoptic_sample(run_cli, tmp_path):
    code, out, err = run_cli("train", "--task", "panoptic", "--data", SHARED_DATA / "coco_panoptic", *TINY, "--img-size", "128",
                             "--set", "train.max_steps=1", "--set", "data.val_fraction=0.5", "--out", tmp_path / "run")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["images"] == 1 and len(metrics["panoptic"]["per_class"]) == 134  # 133 categories + background
    assert "PQ" in out and "things" in out


def test_predict_merges_an_instance_run_with_a_semantic_run(panoptic_run, run_cli, tmp_path):
    data, _ = panoptic_run
    common = ["--data", data, "--img-size", "48", "--batch-size", "2", "--no-progress", "--set", "train.max_steps=1"]
    code, _, err = run_cli("train", "--task", "instance", "--model", "maskrcnn", "--encoder", "resnet18", "--set", "model.kwargs.fpn_channels=32",
                           *common, "--out", tmp_path / "instance")
    assert code == 0, err
    code, _, err = run_cli("train", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8", *common,
                           "--out", tmp_path / "semantic")
    assert code == 0, err
    code, _, err = run_cli("predict", "--precision", "32", tmp_path / "instance", data / "images" / "val", "--semantic", tmp_path / "semantic",
                           "--out", tmp_path / "pred", "--score-threshold", "0.0", "--stuff-min-area", "1")
    assert code == 0, err
    from omniseg.inference import Predictor
    from omniseg.models.panoptic import panoptic_merge

    values = json.loads((tmp_path / "pred" / "panoptic.json").read_text())
    assert len(values["annotations"]) == 3
    semantic, instance = Predictor(tmp_path / "semantic"), Predictor(tmp_path / "instance")
    names = {image["id"]: image["file_name"] for image in values["images"]}
    for annotation in values["annotations"]:  # the CLI's output is the merge of the two runs' predictions
        image = data / "images" / "val" / names[annotation["image_id"]]
        found = instance.predict_instances(image, score_threshold=0.0)
        expected, segments = panoptic_merge(semantic.predict(image), found["masks"], found["labels"].tolist(), found["scores"].tolist(),
                                            things=[1, 2, 3, 4], score_threshold=0.0, stuff_min_area=1)
        rgb = np.asarray(Image.open(tmp_path / "pred" / annotation["file_name"])).astype(np.int64)
        assert np.array_equal(rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2], expected)
        assert [s["category_id"] for s in annotation["segments_info"]] == [s["category_id"] for s in segments]
    code, _, err = run_cli("predict", "--precision", "32", tmp_path / "semantic", data / "images" / "val", "--semantic", tmp_path / "semantic",
                           "--out", tmp_path / "bad")
    assert code == 2 and "cannot honour --semantic (it serves: instance with a semantic partner)" in err

    # a semantic run answers instance questions: its thing classes' connected regions, scored by mean probability
    code, _, err = run_cli("predict", "--precision", "32", tmp_path / "semantic", data / "images" / "val", "--instances", "--score-threshold", "0",
                           "--out", tmp_path / "regions")
    assert code == 0, err
    from scipy import ndimage

    results = json.loads((tmp_path / "regions" / "coco_results.json").read_text())
    for entry in json.loads((tmp_path / "regions" / "images.json").read_text()):
        image = data / "images" / "val" / entry["file_name"]
        probabilities = semantic.predict_proba(image).numpy()
        classes = probabilities.argmax(0)
        expected = sum(ndimage.label(classes == c)[1] for c in (1, 2, 3, 4))
        found = [r for r in results if r["image_id"] == entry["id"]]
        ids = np.asarray(Image.open(tmp_path / "regions" / entry["file_name"].replace(".png", "_instances.png")))
        assert len(found) == expected and int(ids.max()) == expected
        assert np.array_equal(ids > 0, np.isin(classes, [1, 2, 3, 4]))
        if not expected:
            continue
        best = ids == 1  # the best-scored region: its score is its class's mean probability over it
        label = int(np.bincount(classes[best]).argmax())
        assert max(r["score"] for r in found) == pytest.approx(float(probabilities[label][best].mean()), abs=1e-6)
    code, _, err = run_cli("predict", "--precision", "32", tmp_path / "instance", data / "images" / "val", "--instances", "--out", tmp_path / "bad2")
    assert code == 2 and "cannot honour --instances (it serves: semantic with instances)" in err
