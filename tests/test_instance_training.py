"""Instance training end to end from the CLI: a generated COCO dataset, and the shared DSB nuclei sample."""

import json

import numpy as np
import pytest
from PIL import Image

from .conftest import SHARED_DATA, write_classes, write_pair

# a light detector (the demo's kind, narrower): a CPU step in a fraction of a second
TINY = ["--no-plan", "--model", "maskrcnn", "--set", "model.kwargs.encoder=resnet18", "--set", "model.kwargs.anchor_sizes=small",
        "--set", "model.kwargs.fpn_channels=32", "--set", "model.kwargs.box_head_size=64", "--set", "model.kwargs.mask_head_channels=16",
        "--set", "model.kwargs.mask_head_layers=1", "--set", "model.kwargs.rpn_post_nms_top_n_train=50",
        "--set", "model.kwargs.box_batch_size_per_image=16", "--set", "data.color_jitter=0", "--batch-size", "2", "--epochs", "1",
        "--no-progress"]


def _squares_coco(root, count=6, size=48):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    values = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]}
    for index in range(count):
        image = np.full((size, size, 3), 40, np.uint8)
        x, y = rng.integers(2, size - 20, 2)
        image[y : y + 14, x : x + 14] = (220, 60, 60)
        image[2:6, 5:40] = (60, 220, 60)
        Image.fromarray(image).save(root / "images" / f"{index}.png")
        values["images"].append({"id": index, "file_name": f"{index}.png", "height": size, "width": size})
        for category, (x0, y0, x1, y1) in ((1, (x, y, x + 14, y + 14)), (2, (5, 2, 40, 6))):
            values["annotations"].append({"id": len(values["annotations"]) + 1, "image_id": index, "category_id": category, "iscrowd": 0,
                                          "segmentation": [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]})
    values["images"].append({"id": 99, "file_name": "empty.png", "height": size, "width": size})  # an image without objects
    Image.fromarray(np.full((size, size, 3), 40, np.uint8)).save(root / "images" / "empty.png")
    (root / "annotations.json").write_text(json.dumps(values))
    return root


def test_instance_training_learns_the_squares_and_writes_the_ap_table(run_cli, tmp_path):
    data = _squares_coco(tmp_path / "data", count=12)
    code, out, err = run_cli("train", "--task", "instance", "--data", data, *TINY, "--img-size", "48", "--out", tmp_path / "run",
                             "--set", "data.val_fraction=0.3", "--batch-size", "4", "--lr", "3e-3", "--epochs", "1000",
                             "--set", "train.max_steps=100", "--set", "train.val_every_steps=50")
    assert code == 0, err
    assert "mask AP" in out and "box AP" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "instance" and set(metrics["segm"]["per_class"]) == {"square", "bar"}
    # 100 steps find the squares and bars of the validation images (an untrained detector scores about 0; seeds
    # 0-3 reach mask AP50 0.72-0.90 and box AP50 0.72-0.81; at 60 steps the spread was 0.35-0.88)
    assert metrics["segm"]["AP50"] >= 0.6 and metrics["bbox"]["AP50"] >= 0.6, metrics["segm"]
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,step,train_loss,val_map") and [row.split(",")[1] for row in history[1:]] == ["50", "100"]
    assert (tmp_path / "run" / "model.safetensors").is_file() and list((tmp_path / "run" / "samples").glob("*.png"))


def test_instance_task_refuses_semantic_only_data_and_models(run_cli, tmp_path):
    code, _, err = run_cli("train", "--task", "instance", "--data", _squares_coco(tmp_path / "d"), "--model", "unet", "--out", tmp_path / "r")
    assert code == 2 and "needs an instance model" in err
    semantic = tmp_path / "semantic"
    for split in ("train", "val"):
        mask = np.zeros((16, 16), np.uint8)
        mask[4:9, 4:9] = 1
        write_pair(semantic, split, "a", np.zeros((16, 16, 3), np.uint8), mask)
    write_classes(semantic, ["background", "cat"])
    (semantic / "classes.json").write_text(json.dumps({"class_names": ["background", "cat"], "things": [1]}))
    code, _, err = run_cli("train", "--task", "instance", "--data", semantic, "--model", "maskrcnn", "--epochs", "1",
                           "--out", tmp_path / "r2")  # class masks only, though "cat" is a thing: no instances to learn
    assert code == 2 and "has no instance classes" in err


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "dsb2018").is_dir(), reason="../shared/data is absent")
def test_instance_training_on_the_shared_dsb_sample(run_cli, tmp_path):
    code, out, err = run_cli("train", "--task", "instance", "--data", SHARED_DATA / "dsb2018", *TINY, "--img-size", "96",
                             "--set", "train.max_steps=3", "--out", tmp_path / "run")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["images"] == 6 and list(metrics["segm"]["per_class"]) == ["object"] and metrics["global_step"] == 3


def test_eval_picks_the_instance_task_from_the_run(run_cli, tmp_path):
    data = _squares_coco(tmp_path / "data")
    code, _, err = run_cli("train", "--task", "instance", "--data", data, *TINY, "--img-size", "48", "--out", tmp_path / "run",
                           "--set", "data.val_fraction=0.3", "--set", "train.max_steps=1")
    assert code == 0, err
    code, out, err = run_cli("eval", tmp_path / "run", "--data", data, "--json")
    report = json.loads(out)
    assert code == 0 and report["task"] == "instance" and report["images"] == 2
    assert report["segm"]["AP"] == json.loads((tmp_path / "run" / "metrics.json").read_text())["segm"]["AP"]


def test_degenerate_annotations_train_and_evaluate(run_cli, tmp_path):
    """Zero-area polygons, polygons reaching outside the image, an image without objects, and images with a
    thousand objects, in both splits (the seeded split puts images 1, 3 in train and 0, 2 in val)."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    values = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "dot"}]}

    def add(polygon, image_id):
        values["annotations"].append({"id": len(values["annotations"]) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                      "segmentation": [polygon]})

    for index in range(4):
        Image.fromarray(np.full((64, 64, 3), 30 + 40 * index, np.uint8)).save(root / "images" / f"{index}.png")
        values["images"].append({"id": index, "file_name": f"{index}.png", "height": 64, "width": 64})
    add([10.0, 10.0, 10.0, 10.0, 10.0, 10.0], 0)  # zero area
    add([-20.0, -20.0, 30.0, -20.0, 30.0, 30.0, -20.0, 30.0], 0)  # reaches outside the image
    add([50.0, 50.0, 90.0, 50.0, 90.0, 90.0], 1)
    for image_id in (1, 2):
        for k in range(1000):  # a thousand 1x1 objects
            x, y = (k % 32) * 2.0, (k // 32) * 2.0
            add([x, y, x + 1, y, x + 1, y + 1, x, y + 1], image_id)
    add([5.0, 5.0, 5.0, 5.0, 5.0, 5.0], 3)  # image 3: nothing but a zero-area polygon
    (root / "annotations.json").write_text(json.dumps(values))
    code, out, err = run_cli("train", "--task", "instance", "--data", root, *TINY, "--img-size", "64", "--set", "train.max_steps=2",
                             "--set", "data.val_fraction=0.5", "--out", tmp_path / "run")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the validation images' objects (the outside-reaching polygon, a thousand dots) reach pycocotools: AP is
    # evaluated (pycocotools gives -1 to a class without ground truth), and near 0 after two steps
    assert metrics["images"] == 2 and 0.0 <= metrics["segm"]["AP"] < 0.05 and list(metrics["segm"]["per_class"]) == ["dot"]


def test_predict_writes_instance_pngs_overlays_and_coco_results(run_cli, tmp_path):
    from pycocotools import mask as mask_utils

    data = _squares_coco(tmp_path / "data")
    code, _, err = run_cli("train", "--task", "instance", "--data", data, *TINY, "--img-size", "48", "--out", tmp_path / "run",
                           "--set", "data.val_fraction=0.3", "--set", "train.max_steps=1",
                           "--set", "model.kwargs.box_score_threshold=0.0")  # an untrained detector: keep every detection
    assert code == 0, err
    code, out, err = run_cli("predict", "--precision", "32", tmp_path / "run", data / "images", "--out", tmp_path / "pred", "--score-threshold", "0.0",
                             "--mask-threshold", "0.4")
    assert code == 0, err
    images = json.loads((tmp_path / "pred" / "images.json").read_text())
    results = json.loads((tmp_path / "pred" / "coco_results.json").read_text())
    assert [image["file_name"] for image in images] == sorted(p.name for p in (data / "images").iterdir())
    assert results and {r["image_id"] for r in results} <= {image["id"] for image in images}
    for image in images:
        found = sorted((r for r in results if r["image_id"] == image["id"]), key=lambda r: -r["score"])
        ids = np.asarray(Image.open(tmp_path / "pred" / image["file_name"].replace(".png", "_instances.png")))
        assert ids.shape == (image["height"], image["width"]) and int(ids.max()) <= len(found)
        for k, result in enumerate(found, 1):  # id k is the k-th best instance; its visible pixels lie in its RLE mask
            assert result["segmentation"]["size"] == [image["height"], image["width"]]
            mask = mask_utils.decode(result["segmentation"]).astype(bool)
            assert not (ids == k)[~mask].any()
            assert ((ids == k) | (ids < k) & (ids > 0))[mask].all()  # only better instances hide it
        assert (tmp_path / "pred" / image["file_name"].replace(".png", "_overlay.png")).is_file()


def test_instance_overlay_colours_each_instance_and_labels_it():
    from omniseg.viz.overlay import instance_overlay

    image = np.full((60, 80, 3), 100, np.uint8)
    masks = np.zeros((2, 60, 80), bool)
    masks[0, 30:50, 5:25] = masks[1, 30:50, 50:75] = True
    out = instance_overlay(image, masks, [1, 2], ["background", "square", "bar"], [0.9, 0.8])
    assert out.shape == image.shape
    assert (out[18:30, 5:25] != 100).any(axis=-1).mean() > 0.5  # the label box sits above the first mask's top left
    inner0, inner1 = out[40, 15], out[40, 62]  # deep inside each mask: the blended colour, different per instance
    assert not np.array_equal(inner0, inner1) and not np.array_equal(inner0, image[0, 0])
    assert (out[0:15, 30:45] == 100).all()  # far from both instances and their labels: untouched
