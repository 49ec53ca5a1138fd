"""The object-annotated readers (COCO, COCO panoptic, LabelMe, VIA, CVAT, DSB, ADE20K, BSDS) and the
loose volume pairs: generated fixtures with hand-known answers, and the shared samples."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools.coco import COCO

from omniseg.data.formats import load_dataset
from omniseg.data.formats.ade20k import ADE150_CLASSES, decode_full_seg
from omniseg.data.formats.objects import object_mask
from omniseg.errors import DataError

from .conftest import SHARED_DATA


def _image(path, height=20, width=24, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)).save(path)


def _coco_fixture(root):
    """Two images: polygons (one object in two parts), an uncompressed RLE crowd region, a compressed RLE."""
    from pycocotools import mask as mask_utils

    for name in ("a.png", "b.png"):
        _image(root / "train2017" / name)
    blob = np.zeros((20, 24), np.uint8)
    blob[2:9, 14:22] = 1
    compressed = mask_utils.encode(np.asfortranarray(blob))
    compressed["counts"] = compressed["counts"].decode()
    crowd = np.zeros((20, 24), np.uint8)
    crowd[12:18, 1:20] = 1
    flat = crowd.reshape(-1, order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])))  # run starts, starting with zeros
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    counts = [c for c in counts if c] if flat[0] == 0 else [0, *counts]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 3, "iscrowd": 0, "segmentation": [[1, 1, 9, 1, 9, 7, 1, 7], [11, 1, 13, 1, 12, 6]]},
        {"id": 2, "image_id": 10, "category_id": 7, "iscrowd": 1, "segmentation": {"size": [20, 24], "counts": counts}},
        {"id": 3, "image_id": 11, "category_id": 7, "iscrowd": 0, "segmentation": compressed},
        {"id": 4, "image_id": 11, "category_id": 3, "iscrowd": 0, "segmentation": [[5.5, 5.5, 15.2, 6.1, 9.7, 17.9]]},
    ]
    values = {"images": [{"id": 10, "file_name": "a.png", "height": 20, "width": 24}, {"id": 11, "file_name": "b.png", "height": 20, "width": 24}],
              "annotations": annotations, "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(values))
    return root


def test_coco_polygons_and_rle_equal_pycocotools_ann_to_mask(tmp_path):
    root = _coco_fixture(tmp_path)
    source = load_dataset(root)
    assert source.name == "coco" and source.info.class_names == ["background", "cat", "dog"]
    coco = COCO(str(root / "annotations" / "instances_train2017.json"))
    samples = {s["meta"]["id"]: s for s in (source.dataset("train")[i] for i in range(2))}
    a, b = samples["a"], samples["b"]
    # a: the polygon object is an instance, the crowd region is painted in the semantic mask only
    assert a["instances"]["labels"].tolist() == [1]
    assert np.array_equal(a["instances"]["masks"][0].numpy(), coco.annToMask(coco.anns[1]).astype(bool))
    crowd = coco.annToMask(coco.anns[2]).astype(bool)
    assert crowd.sum() == 6 * 19 and (a["mask"].numpy()[crowd] == 2).all()
    assert b["instances"]["labels"].tolist() == [2, 1]
    for mask, ann in zip(b["instances"]["masks"].numpy(), (3, 4)):
        assert np.array_equal(mask, coco.annToMask(coco.anns[ann]).astype(bool))
    expected = np.zeros((20, 24), np.int64)
    expected[coco.annToMask(coco.anns[3]) > 0] = 2
    expected[coco.annToMask(coco.anns[4]) > 0] = 1  # later annotations paint over earlier ones
    assert np.array_equal(b["mask"].numpy(), expected)
    assert b["instances"]["boxes"][0].tolist() == [14, 2, 21, 8]


def test_object_mask_is_ann_to_mask_for_random_polygons():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for _ in range(20):
        polygon = (rng.random((rng.integers(3, 9), 2)) * [37, 29] * (rng.random() * 1.2)).reshape(-1).tolist()
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], 29, 37)))
        assert np.array_equal(object_mask([polygon], 29, 37), expected.astype(bool))
    assert not object_mask([[1, 1, 5, 5]], 8, 8).any()  # a degenerate two-point polygon covers nothing


@pytest.mark.parametrize(("edit", "message"), [
    (lambda v: v["annotations"][0].update(category_id=99), "category_id 99"),
    (lambda v: v["annotations"][0].update(image_id=5), "image_id 5"),
    (lambda v: v["annotations"][0].update(segmentation=[["x", 1, 2]]), "not a list of numbers"),
    (lambda v: v["annotations"][0].update(segmentation="oops"), "polygons or an RLE"),
    (lambda v: v["images"][0].update(height=99), "is 24x99 but the file is 24x20"),
    (lambda v: v.update(categories="cats"), "no list 'categories'"),
])
def test_coco_errors_name_the_file(tmp_path, edit, message):
    root = _coco_fixture(tmp_path)
    path = root / "annotations" / "instances_train2017.json"
    values = json.loads(path.read_text())
    edit(values)
    path.write_text(json.dumps(values))
    with pytest.raises(DataError, match=r"instances_train2017\.json") as error:
        source = load_dataset(root, format="coco")
        [source.dataset("train")[i] for i in range(2)]
    assert message in str(error.value)


def _panoptic_fixture(root):
    ids = np.zeros((20, 24), np.int64)
    ids[:10] = 5  # stuff "sky"
    ids[12:18, 2:8] = 256 * 3 + 1  # person 1 (id 769: G = 3, R = 1)
    ids[12:18, 10:16] = 65536 * 2 + 7  # person 2 (B = 2)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    (root / "annotations" / "panoptic_val2017").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "annotations" / "panoptic_val2017" / "a.png")
    _image(root / "val2017" / "a.jpg")
    segments = [{"id": 5, "category_id": 100, "iscrowd": 0, "area": 240}, {"id": 769, "category_id": 1, "iscrowd": 0, "area": 36},
                {"id": 131079, "category_id": 1, "iscrowd": 1, "area": 36}]
    values = {"images": [{"id": 1, "file_name": "a.jpg", "height": 20, "width": 24}],
              "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": segments}],
              "categories": [{"id": 1, "name": "person", "isthing": 1}, {"id": 100, "name": "sky", "isthing": 0}]}
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(values))
    return root, ids


def test_coco_panoptic_ids_are_r_256g_65536b_matched_to_segments_info(tmp_path):
    root, ids = _panoptic_fixture(tmp_path)
    source = load_dataset(root)
    assert source.name == "coco_panoptic" and source.info.class_names == ["person", "sky"] and source.info.things == [0]
    sample = source.dataset("val")[0]
    expected = np.full((20, 24), 255)
    expected[ids == 5], expected[ids == 769], expected[ids == 131079] = 1, 0, 0
    assert np.array_equal(sample["mask"].numpy(), expected)  # void -> ignore; the crowd region keeps its class
    assert sample["instances"]["labels"].tolist() == [0]  # the crowd segment is no instance
    assert np.array_equal(sample["instances"]["masks"][0].numpy(), ids == 769)
    values = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())
    values["annotations"][0]["segments_info"].pop(1)
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(values))
    with pytest.raises(DataError, match=r"a\.png holds segment id 769, which its segments_info in panoptic_val2017\.json does not list"):
        load_dataset(root).dataset("val")[0]


@pytest.mark.skipif(not (SHARED_DATA / "coco_panoptic").is_dir(), reason="../shared/data is absent")
def test_shared_coco_panoptic_sample_segments_match_their_areas():
    from omniseg.data.formats.coco import decode_panoptic_png

    root = SHARED_DATA / "coco_panoptic"
    source = load_dataset(root, format="coco_panoptic")
    assert source.info.num_classes == 133 and len(source.info.things) == 80
    values = json.loads((root / "panoptic_examples.json").read_text())
    checked = 0
    for annotation in values["annotations"]:
        ids = decode_panoptic_png(root / "panoptic_examples" / annotation["file_name"])
        assert set(np.unique(ids).tolist()) - {0} == {s["id"] for s in annotation["segments_info"]}
        for segment in annotation["segments_info"]:
            assert int((ids == segment["id"]).sum()) == segment["area"]
            checked += 1
    assert checked == 50
    samples = [source.dataset(s)[i] for s in source.splits() for i in range(len(source.dataset(s)))]
    things = sum(len(s["instances"]["labels"]) for s in samples)
    assert things == sum(1 for a in values["annotations"] for s in a["segments_info"]
                         if source.category_to_class[s["category_id"]] in source.info.things and not s["iscrowd"])


@pytest.mark.skipif(not (SHARED_DATA / "labelme").is_dir(), reason="../shared/data is absent")
def test_shared_labelme_coco_export_equals_pycocotools():
    root = SHARED_DATA / "labelme" / "instance_segmentation" / "data_dataset_coco"
    source = load_dataset(root)
    coco = COCO(str(root / "annotations.json"))
    for split in source.splits():
        for i in range(len(source.dataset(split))):
            sample = source.dataset(split)[i]
            image_id = next(im["id"] for im in coco.dataset["images"] if im["file_name"].endswith(sample["meta"]["id"] + ".jpg"))
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            assert len(anns) == len(sample["instances"]["labels"])
            for mask, ann in zip(sample["instances"]["masks"].numpy(), anns):
                assert np.array_equal(mask, coco.annToMask(ann).astype(bool))


def _labelme(path, shapes, height=20, width=24, image="a.png"):
    _image(path.parent / image, height, width)
    path.write_text(json.dumps({"version": "5.0.1", "imagePath": image, "imageData": None, "imageHeight": height,
                                "imageWidth": width, "shapes": shapes, "flags": {}}))


def test_labelme_shapes_groups_and_ignore(tmp_path):
    shapes = [
        {"label": "cat", "points": [[1, 1], [9, 1], [9, 7], [1, 7]], "shape_type": "polygon", "group_id": 1},
        {"label": "cat", "points": [[11, 1], [14, 1], [14, 4]], "shape_type": "polygon", "group_id": 1},
        {"label": "dog", "points": [[2, 10], [8, 16]], "shape_type": "rectangle", "group_id": None},
        {"label": "dog", "points": [[17, 14], [17, 18]], "shape_type": "circle", "group_id": None},
        {"label": "cat", "points": [[0, 0], [20, 19]], "shape_type": "line", "group_id": None},
        {"label": "__ignore__", "points": [[20, 0], [23, 0], [23, 3], [20, 3]], "shape_type": "polygon", "group_id": None},
    ]
    _labelme(tmp_path / "a.json", shapes)
    _labelme(tmp_path / "b.json", shapes[:1], image="b.png")
    source = load_dataset(tmp_path, val_fraction=0.5)
    assert source.name == "labelme" and source.info.class_names == ["background", "cat", "dog"]
    sample = next(s for s in (source.dataset(x)[0] for x in ("train", "val")) if s["meta"]["id"] == "a")
    assert sample["instances"]["labels"].tolist() == [1, 2, 2]  # the two grouped cat parts are one object
    cat = sample["instances"]["masks"][0].numpy()
    assert cat[1:7, 1:9].all() and cat[2, 13] and cat.sum() == 48 + object_mask([[11, 1, 14, 1, 14, 4]], 20, 24).sum()
    assert sample["instances"]["masks"][1].numpy().sum() == 36  # 6x6 rectangle
    circle = sample["instances"]["masks"][2].numpy()
    assert abs(int(circle.sum()) - np.pi * 16) < 6 and circle[16, 17]
    mask = sample["mask"].numpy()
    assert (mask[0:3, 20:23] == 255).all() and mask[0, 0] == 0  # the line is not a region


def test_labelme_unknown_label_and_broken_file(tmp_path):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    _labelme(tmp_path / "a.json", [{"label": "horse", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"}])
    with pytest.raises(DataError, match=r"a\.json: label 'horse' is not in the class list"):
        load_dataset(tmp_path).dataset("train")[0]
    (tmp_path / "a.json").write_text('{"shapes": [{"label": "cat", "points": "nope"}], "imagePath": "a.png"}')
    with pytest.raises(DataError, match=r"a\.json: shape 0 needs a text 'label' and a list 'points'"):
        load_dataset(tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "labelme").is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("kind", ["semantic_segmentation", "instance_segmentation"])
def test_shared_labelme_agrees_with_labelme2voc(kind):
    """labelme2voc rasterises with PIL; ours with pycocotools: they differ only along polygon edges."""
    root = SHARED_DATA / "labelme" / kind
    source = load_dataset(root)
    assert source.name == "labelme" and source.info.num_classes == 21
    for split in source.splits():
        for i in range(len(source.dataset(split))):
            sample = source.dataset(split)[i]
            voc = np.asarray(Image.open(root / "data_dataset_voc" / "SegmentationClass" / f"{sample['meta']['id']}.png")).astype(int)
            assert (sample["mask"].numpy() == voc).mean() > 0.98


def test_via_export_and_project_with_all_region_shapes(tmp_path):
    _image(tmp_path / "a.jpg")
    regions = [
        {"shape_attributes": {"name": "polygon", "all_points_x": [1, 9, 9, 1], "all_points_y": [1, 1, 7, 7]}, "region_attributes": {"class": "cat"}},
        {"shape_attributes": {"name": "rect", "x": 2, "y": 10, "width": 6, "height": 6}, "region_attributes": {"class": {"dog": True}}},
        {"shape_attributes": {"name": "ellipse", "cx": 18, "cy": 10, "rx": 4, "ry": 2, "theta": 0}, "region_attributes": {"class": "cat"}},
        {"shape_attributes": {"name": "point", "cx": 3, "cy": 3}, "region_attributes": {"class": "cat"}},
    ]
    export = {"a.jpg1234": {"filename": "a.jpg", "size": 1234, "regions": regions, "file_attributes": {}}}
    _image(tmp_path / "b.jpg", seed=1)
    export["b.jpg99"] = {"filename": "b.jpg", "size": 99, "regions": [], "file_attributes": {}}
    (tmp_path / "via_region_data.json").write_text(json.dumps(export))
    source = load_dataset(tmp_path, val_fraction=0.5)
    assert source.name == "via" and source.info.class_names == ["background", "cat", "dog"]
    sample = next(s for s in (source.dataset(x)[0] for x in ("train", "val")) if s["meta"]["id"] == "a")
    assert sample["instances"]["labels"].tolist() == [1, 2, 1]
    assert [int(m.sum()) for m in sample["instances"]["masks"][:2]] == [48, 36]
    assert abs(int(sample["instances"]["masks"][2].sum()) - np.pi * 8) < 5
    (tmp_path / "via_region_data.json").write_text(json.dumps({"_via_settings": {}, "_via_img_metadata": export}))
    assert load_dataset(tmp_path, val_fraction=0.5).info.class_names == ["background", "cat", "dog"]
    regions[0]["shape_attributes"]["all_points_y"] = [1, 1]
    (tmp_path / "via_region_data.json").write_text(json.dumps(export))
    with pytest.raises(DataError, match=r"via_region_data\.json: a\.jpg region 0 \(polygon\) is malformed"):
        load_dataset(tmp_path)


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels><label><name>cat</name></label><label><name>dog</name></label><label><name>bird</name></label></labels></task></meta>
  <image id="0" name="a.png" width="24" height="20" subset="Train">
    <box label="dog" xtl="0" ytl="0" xbr="12" ybr="10" z_order="0" occluded="0"/>
    <polygon label="cat" points="2,2;8,2;8,8;2,8" z_order="1" group_id="4"/>
    <polygon label="cat" points="14,2;18,2;18,6" z_order="1" group_id="4"/>
    <mask label="dog" rle="1, 2, 2, 3, 4" left="20" top="15" width="3" height="4" z_order="0"/>
    <polyline label="cat" points="0,19;23,19" z_order="2"/>
  </image>
  <image id="1" name="b.png" width="24" height="20" subset="Validation"/>
</annotations>
"""


def test_cvat_shapes_z_order_groups_masks_and_subsets(tmp_path):
    _image(tmp_path / "images" / "a.png")
    _image(tmp_path / "images" / "b.png", seed=1)
    (tmp_path / "annotations.xml").write_text(CVAT_XML)
    source = load_dataset(tmp_path)
    assert source.name == "cvat" and source.info.class_names == ["background", "cat", "dog", "bird"]
    assert {s: len(source.dataset(s)) for s in source.splits()} == {"train": 1, "val": 1}
    sample = source.dataset("train")[0]
    assert sample["instances"]["labels"].tolist() == [2, 2, 1]  # z_order 0 first, the grouped cat last
    mask = sample["mask"].numpy()
    assert (mask[0:10, 0:12][~np.isin(np.arange(120).reshape(10, 12), [])] > 0).all()
    assert (mask[2:8, 2:8] == 1).all() and mask[0, 0] == 2 and mask[19, 5] == 0
    bitmap = np.zeros((4, 3), bool).reshape(-1)
    bitmap[1:3] = bitmap[5:8] = True  # runs: 1 off, 2 on, 2 off, 3 on, 4 off
    assert np.array_equal(sample["instances"]["masks"][1].numpy()[15:19, 20:23], bitmap.reshape(4, 3))
    assert source.dataset("val")[0]["instances"]["labels"].tolist() == []
    (tmp_path / "annotations.xml").write_text(CVAT_XML.replace('rle="1, 2, 2, 3, 4"', 'rle="1, 2"'))
    with pytest.raises(DataError, match=r"annotations\.xml: <mask> of image 'a\.png' is malformed \(its RLE covers 3 pixels"):
        load_dataset(tmp_path)


def test_dsb_folders_one_instance_per_png(tmp_path):
    for case in ("c1", "c2"):
        _image(tmp_path / case / "images" / f"{case}.png")
        (tmp_path / case / "masks").mkdir()
        for k in range(3):
            mask = np.zeros((20, 24), np.uint8)
            mask[2 + 5 * k : 5 + 5 * k, 3:9] = 255
            Image.fromarray(mask).save(tmp_path / case / "masks" / f"m{k}.png")
    source = load_dataset(tmp_path, val_fraction=0.5)
    assert source.name == "dsb" and source.info.class_names == ["background", "object"]
    sample = source.dataset("train")[0]
    assert sample["instances"]["labels"].tolist() == [1, 1, 1] and sample["instances"]["masks"].sum().item() == 54
    assert int(sample["mask"].sum()) == 54


@pytest.mark.skipif(not (SHARED_DATA / "dsb2018").is_dir(), reason="../shared/data is absent")
def test_shared_dsb_sample_counts_every_mask_file():
    source = load_dataset(SHARED_DATA / "dsb2018")
    for split in source.splits():
        dataset = source.dataset(split)
        for i in range(min(3, len(dataset))):
            sample, item = dataset[i], dataset.items[i]
            assert len(sample["instances"]["labels"]) == len(item.extra["masks"])
            assert sample["image"].shape[0] == 3  # RGBA read as RGB


def test_ade20k_scene_parsing_shifts_ids_and_ignores_zero(tmp_path):
    labels = np.arange(20 * 24).reshape(20, 24) % 151
    for folder in ("training", "validation"):
        _image(tmp_path / "images" / folder / "ADE_x_1.jpg")
        (tmp_path / "annotations" / folder).mkdir(parents=True)
        Image.fromarray(labels.astype(np.uint8)).save(tmp_path / "annotations" / folder / "ADE_x_1.png")
    source = load_dataset(tmp_path)
    assert source.name == "ade20k" and source.info.class_names == ADE150_CLASSES and len(ADE150_CLASSES) == 150
    mask = source.dataset("val")[0]["mask"].numpy()
    assert np.array_equal(mask, np.where(labels == 0, 255, labels - 1))


def test_ade20k_full_decodes_r_g_classes_and_b_instances(tmp_path):
    scene = tmp_path / "images" / "ADE" / "training" / "urban" / "street"
    _image(scene / "ADE_train_1.jpg")
    classes = np.zeros((20, 24), np.int64)
    classes[:10], classes[10:, :12], classes[10:, 12:] = 2977, 312, 312  # 2977 = 11 * 256 + 161
    instances = np.zeros((20, 24), np.int64)
    instances[:10], instances[10:, :12], instances[10:, 12:] = 5, 10, 15
    seg = np.stack([classes // 256 * 10, classes % 256, instances], axis=-1).astype(np.uint8)
    Image.fromarray(seg).save(scene / "ADE_train_1_seg.png")
    objects = [{"name": "sky", "name_ndx": 2977, "parts": {"part_level": 0}}, {"name": "car, auto", "name_ndx": 312, "parts": {"part_level": 0}},
               {"name": "wheel", "name_ndx": 3000, "parts": {"part_level": 1}}]
    (scene / "ADE_train_1.json").write_text(json.dumps({"annotation": {"object": objects}}))
    for i in (2, 3):  # more training images so that a validation part can be held out
        _image(scene / f"ADE_train_{i}.jpg")
        Image.fromarray(seg).save(scene / f"ADE_train_{i}_seg.png")
        (scene / f"ADE_train_{i}.json").write_text(json.dumps({"annotation": {"object": objects}}))
    assert decode_full_seg(seg)[0][0, 0] == 2977
    source = load_dataset(tmp_path)
    assert source.name == "ade20k_full" and source.info.class_names == ["car", "sky"]
    sample = source.dataset("train")[0]
    assert np.array_equal(sample["mask"].numpy(), np.where(classes == 312, 0, 1))
    assert sorted(sample["instances"]["labels"].tolist()) == [0, 0, 1]


@pytest.mark.skipif(not (SHARED_DATA / "ade20k").is_dir(), reason="../shared/data is absent")
def test_shared_ade20k_classes_match_the_instance_masks_of_the_json():
    source = load_dataset(SHARED_DATA / "ade20k")
    item = source.items["train"][0] if source.items["train"] else source.items["val"][0]
    annotation = json.loads(item.annotation.read_text())["annotation"]
    raw = np.asarray(Image.open(item.extra["seg"]))
    classes, _ = decode_full_seg(raw)
    checked = 0
    for obj in annotation["object"]:
        if obj["parts"]["part_level"] != 0:
            continue
        inside = np.asarray(Image.open(item.image.parent / obj["instance_mask"])) == 255
        if inside.any():
            values, counts = np.unique(classes[inside], return_counts=True)
            assert values[counts.argmax()] == obj["name_ndx"]
            checked += 1
    assert checked >= 10
    dataset = source.dataset("train") if source.items["train"] else source.dataset("val")
    sample = dataset[dataset.items.index(item)]
    names = np.array(source.info.class_names + ["?"] * 300)
    assert set(names[np.unique(sample["mask"].numpy()[sample["mask"].numpy() != 255])]) <= {
        o["name"].split(",")[0].strip() for o in annotation["object"]}


def test_bsds_returns_every_annotator(tmp_path):
    _image(tmp_path / "images" / "val" / "1.jpg")
    truth = np.empty((1, 3), dtype=object)
    for k in range(3):
        segmentation = np.ones((20, 24), np.uint16)
        segmentation[:, 12 + k :] = 2
        truth[0, k] = {"Segmentation": segmentation, "Boundaries": np.zeros((20, 24), np.uint8)}
    (tmp_path / "groundTruth" / "val").mkdir(parents=True)
    scipy.io.savemat(tmp_path / "groundTruth" / "val" / "1.mat", {"groundTruth": truth})
    source = load_dataset(tmp_path)
    assert source.name == "bsds" and not source.labelled("val")
    sample = source.dataset("val")[0]
    assert sample["segmentations"].shape == (3, 20, 24)
    assert [int((s == 2).sum()) for s in sample["segmentations"]] == [240, 220, 200]


@pytest.mark.skipif(not (SHARED_DATA / "bsds500").is_dir(), reason="../shared/data is absent")
def test_shared_bsds_sample_has_all_annotators():
    source = load_dataset(SHARED_DATA / "bsds500")
    dataset = source.dataset("train")
    assert len(dataset) == 8
    for i in range(len(dataset)):
        sample = dataset[i]
        image_id = sample["meta"]["id"]
        annotators = len(scipy.io.loadmat(SHARED_DATA / "bsds500" / "groundTruth" / "train" / f"{image_id}.mat")["groundTruth"][0])
        assert 4 <= sample["segmentations"].shape[0] == annotators <= 9
        assert sample["segmentations"].shape[1:] == sample["image"].shape[1:] and sample["segmentations"].min() >= 1


@pytest.mark.skipif(not (SHARED_DATA / "volumes").is_dir(), reason="../shared/data is absent")
def test_shared_volume_pairs_nifti_and_nrrd():
    source = load_dataset(SHARED_DATA / "volumes")
    assert source.name == "volumes" and source.volumetric
    assert source.values == [0, 1, 7, 8, 9] and source.info.class_names[2:] == ["label_7", "label_8", "label_9"]
    cases = {c.id: c for s in source.splits() for c in source._cases[s]}
    assert set(cases) == {"anatomical", "brain1", "prostate_phantom_subvolume", "reoriented_anat_moved"}
    prostate = cases["prostate_phantom_subvolume"]
    assert prostate.shape == (13, 67, 82)
    labels = source.read_label(prostate)
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3, 4}
    assert source.read_case(cases["brain1"])[0].shape == (1, 25, 256, 256)


SEMANTIC_SAMPLES = ["camvid", "labelme/semantic_segmentation", "labelme/instance_segmentation",
                    "labelme/instance_segmentation/data_dataset_coco", "labelme/instance_segmentation/data_dataset_voc",
                    "coco_panoptic", "dsb2018", "ade20k", "coco8_seg", "volumes"]


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("sample", SEMANTIC_SAMPLES)
def test_train_starts_on_every_semantic_sample_without_naming_the_format(run_cli, tmp_path, sample):
    model = ["--model", "unet3d", "--set", "model.kwargs.base_channels=4", "--set", "data.patch_size=[16,16,16]"] \
        if sample == "volumes" else ["--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=4", "--img-size", "32"]
    code, out, err = run_cli("train", "--data", SHARED_DATA / sample, "--no-plan", *model, "--batch-size", "2", "--epochs", "1",
                             "--out", tmp_path / "run", "--no-progress", "--json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0 and len(metrics["per_class"]) == load_dataset(SHARED_DATA / sample).info.num_classes


def test_coco_stuff_is_painted_under_the_things(tmp_path):
    from pycocotools import mask as mask_utils

    root = _coco_fixture(tmp_path)
    sky = np.zeros((20, 24), np.uint8)
    sky[:10] = 1
    rle = mask_utils.encode(np.asfortranarray(sky))
    rle["counts"] = rle["counts"].decode()
    stuff = {"images": [{"id": 10, "file_name": "a.png", "height": 20, "width": 24}],
             "annotations": [{"id": 1, "image_id": 10, "category_id": 150, "iscrowd": 0, "segmentation": rle}],
             "categories": [{"id": 150, "name": "sky"}]}
    (root / "annotations" / "stuff_train2017.json").write_text(json.dumps(stuff))
    source = load_dataset(root)
    assert source.info.class_names == ["background", "cat", "dog", "sky"] and source.info.things == [1, 2]
    sample = next(s for s in (source.dataset("train")[i] for i in range(2)) if s["meta"]["id"] == "a")
    mask = sample["mask"].numpy()
    assert mask[0, 20] == 3 and mask[2, 2] == 1 and (mask[10:] != 3).all()  # the cat covers the sky
    assert sample["instances"]["labels"].tolist() == [1]  # stuff is no instance


def test_volume_pairs_nifti_and_nrrd_generated(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    nrrd = pytest.importorskip("nrrd")
    rng = np.random.default_rng(0)
    for case in ("a", "b"):
        image = rng.random((6, 7, 8)).astype(np.float32)  # x, y, z
        labels = np.zeros((6, 7, 8), np.uint8)
        labels[1:3, 2:5, 3:6] = 4
        nibabel.save(nibabel.Nifti1Image(image, np.eye(4)), tmp_path / f"{case}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(labels, np.eye(4)), tmp_path / f"{case}_label.nii.gz")
    nrrd.write(str(tmp_path / "c_image.nrrd"), rng.random((6, 7, 8)).astype(np.float32))
    wrong = np.zeros((6, 7, 9), np.uint8)
    nrrd.write(str(tmp_path / "c_label.nrrd"), wrong)
    with pytest.raises(DataError, match=r"c_label\.nrrd is \(9, 7, 6\)"):
        load_dataset(tmp_path)
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[0, 0, 0] = 2
    nrrd.write(str(tmp_path / "c_label.nrrd"), labels)
    source = load_dataset(tmp_path, val_fraction=0.34)
    assert source.name == "volumes" and source.values == [0, 2, 4] and source.info.class_names == ["background", "label_2", "label_4"]
    cases = {c.id: c for s in source.splits() for c in source._cases[s]}
    assert cases["a"].shape == (8, 7, 6)
    labels_a = source.read_label(cases["a"])
    assert labels_a.shape == (8, 7, 6) and int((labels_a == 2).sum()) == 2 * 3 * 3  # value 4 -> class 2, z y x order
    assert source.read_label(cases["c"])[0, 0, 0] == 1
