"""The CamVid (SegNet and original layouts), Pascal VOC and Cityscapes readers: generated fixtures and
the shared samples."""

import re

import numpy as np
import pytest
from PIL import Image

from omniseg.data.formats import load_dataset
from omniseg.data.formats.camvid import CAMVID11_CLASSES
from omniseg.data.formats.voc import VOC_CLASSES, voc_palette
from omniseg.errors import DataError

from .conftest import SHARED_DATA


def _image(path, height=12, width=16, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)).save(path)


def _label(path, array, palette=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array, np.uint8), mode="L" if palette is None else "P")
    if palette is not None:
        image.putpalette([c for colour in palette for c in colour])
    image.save(path)


def _camvid_segnet(root, labels):
    for split, names in (("train", ["a", "b"]), ("val", ["c"])):
        for i, name in enumerate(names):
            _image(root / split / f"{name}.png", seed=i)
            _label(root / f"{split}annot" / f"{name}.png", labels)
    return root


def test_camvid_segnet_layout_keeps_ids_and_ignores_11(tmp_path):
    labels = np.tile(np.arange(12), (12, 2))[:, :16]  # every id 0..11
    source = load_dataset(_camvid_segnet(tmp_path, labels))
    assert source.name == "camvid" and source.info.class_names == CAMVID11_CLASSES
    assert source.info.ignore_index == 11 and source.splits() == ["train", "val"]
    sample = source.dataset("train")[0]
    assert np.array_equal(sample["mask"].numpy(), labels)
    pixels, _ = source.class_pixel_stats("val")
    assert pixels.tolist() == [(labels == k).sum() for k in range(11)]  # 11 counts nowhere


def test_camvid_label_outside_the_classes_names_the_file(tmp_path):
    labels = np.zeros((12, 16), np.uint8)
    labels[3, 3] = 12
    source = load_dataset(_camvid_segnet(tmp_path, labels))
    with pytest.raises(DataError, match=r"trainannot.a\.png holds label 12 outside the classes 0\.\.10"):
        source.dataset("train")[0]


def test_camvid_original_32_class_colours(tmp_path):
    (tmp_path / "label_colors.txt").write_text("64 128 64\tAnimal\n192 0 128\tArchway\n0 0 0\tVoid\n")
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[:6] = (64, 128, 64)
    rgb[6:, :8] = (192, 0, 128)
    (tmp_path / "LabeledApproved_full").mkdir()
    for i in range(5):
        _image(tmp_path / "701_StillsRaw_full" / f"f{i}.png", seed=i)
        Image.fromarray(rgb).save(tmp_path / "LabeledApproved_full" / f"f{i}_L.png")
    source = load_dataset(tmp_path, val_fraction=0.2)
    assert source.info.class_names == ["Animal", "Archway"] and source.info.palette[1] == (192, 0, 128)
    assert [len(source.dataset(s)) for s in source.splits()] == [4, 1]
    mask = source.dataset("train")[0]["mask"].numpy()
    assert (mask[:6] == 0).all() and (mask[6:, :8] == 1).all() and (mask[6:, 8:] == 255).all()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "LabeledApproved_full" / "f0_L.png")
    with pytest.raises(DataError, match=r"f0_L\.png holds colour \(1, 2, 3\)"):
        [source.dataset(s)[i] for s in source.splits() for i in range(len(source.dataset(s)))]


def _voc(root, with_sets=True, ids=("2007_000001", "2007_000002", "2007_000003")):
    palette = voc_palette(256)
    for i, stem in enumerate(ids):
        _image(root / "JPEGImages" / f"{stem}.jpg", seed=i)
        mask = np.zeros((12, 16), np.uint8)
        mask[2:8, 3:9] = 15
        mask[2, 3:9] = 255  # the void boundary
        _label(root / "SegmentationClass" / f"{stem}.png", mask, palette)
    _image(root / "JPEGImages" / "2007_000099.jpg")  # detection-only image: not part of segmentation
    if with_sets:
        (root / "ImageSets" / "Segmentation").mkdir(parents=True)
        (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
        (root / "ImageSets" / "Segmentation" / "val.txt").write_text(ids[2] + "\n")
    return root


def test_voc_palette_decoding_with_255_ignored_and_imagesets(tmp_path):
    source = load_dataset(_voc(tmp_path / "VOCdevkit" / "VOC2012").parent.parent)
    assert source.name == "voc" and source.info.class_names == VOC_CLASSES and source.info.ignore_index == 255
    assert source.info.palette[15] == (192, 128, 128)  # person, the official colour
    assert [len(source.dataset(s)) for s in ("train", "val")] == [2, 1]
    mask = source.dataset("val")[0]["mask"].numpy()
    assert (mask[2, 3:9] == 255).all() and (mask[3:8, 3:9] == 15).all() and mask[0, 0] == 0
    pixels, _ = source.class_pixel_stats("train")
    assert pixels[15] == 2 * 5 * 6 and pixels.sum() == 2 * (12 * 16 - 6)


def test_voc_errors_name_the_file(tmp_path):
    root = _voc(tmp_path)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000404\n")
    with pytest.raises(DataError, match=r"val\.txt lists image '2007_000404'"):
        load_dataset(root)


def test_train_starts_on_camvid_and_voc_without_naming_the_format(run_cli, tmp_path):
    for name, root in (("camvid", _camvid_segnet(tmp_path / "camvid", np.random.default_rng(0).integers(0, 12, (12, 16)))),
                       ("voc", _voc(tmp_path / "voc")),
                       ("cityscapes", _cityscapes(tmp_path / "cityscapes", np.arange(12 * 16).reshape(12, 16) % 34))):
        code, _, err = run_cli("train", "--data", root, "--model", "unet", "--set", "model.kwargs.depth=2",
                               "--set", "model.kwargs.base_channels=4", "--img-size", "16", "--batch-size", "2",
                               "--epochs", "1", "--out", tmp_path / f"run_{name}", "--no-progress")
        assert code == 0, f"{name}: {err}"


@pytest.mark.skipif(not (SHARED_DATA / "camvid").is_dir(), reason="../shared/data is absent")
def test_shared_camvid_sample():
    source = load_dataset(SHARED_DATA / "camvid")
    assert [len(source.dataset(s)) for s in ("train", "val")] == [12, 4]
    for split in ("train", "val"):
        for i in range(len(source.dataset(split))):
            mask = source.dataset(split)[i]["mask"].numpy()
            assert mask.shape == (360, 480) and set(np.unique(mask)) <= set(range(12))
    pixels, _ = source.class_pixel_stats("train")
    assert (pixels > 0).sum() >= 10  # the sample shows at least ten of the eleven classes


@pytest.mark.skipif(not (SHARED_DATA / "labelme").is_dir(), reason="../shared/data is absent")
def test_shared_labelme_voc_export():
    root = SHARED_DATA / "labelme" / "semantic_segmentation" / "data_dataset_voc"
    source = load_dataset(root, val_fraction=0.34)
    assert source.info.class_names[0] == "background" and source.info.num_classes == 21
    seen = set()
    for split in source.splits():
        for i in range(len(source.dataset(split))):
            sample = source.dataset(split)[i]
            raw = np.asarray(Image.open(root / "SegmentationClass" / f"{sample['meta']['id']}.png"))
            assert np.array_equal(sample["mask"].numpy(), raw)  # palette indices are the class ids
            seen |= set(np.unique(raw).tolist())
    assert 255 in seen and 15 in seen  # void boundaries and persons


def _cityscapes(root, label_ids):
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        stem = f"{city}_000000_000019"
        _image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
        _label(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_ids)
    _image(root / "leftImg8bit" / "test" / "berlin" / "berlin_000000_000019_leftImg8bit.png")
    return root


def test_cityscapes_label_ids_become_the_19_train_ids(tmp_path):
    from omniseg.data.formats.cityscapes import label_id_to_train_id

    label_ids = np.arange(12 * 16).reshape(12, 16) % 34  # every annotation id 0..33
    source = load_dataset(_cityscapes(tmp_path, label_ids))
    assert source.name == "cityscapes" and source.info.num_classes == 19 and source.splits() == ["test", "train", "val"]
    mask = source.dataset("train")[0]["mask"].numpy()
    official = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    expected = np.vectorize(lambda i: official.get(i, 255))(label_ids)
    assert np.array_equal(mask, expected) and label_id_to_train_id()[34] == -1
    assert source.info.class_names[13] == "car" and source.info.things == list(range(11, 19))
    assert "mask" not in source.dataset("test")[0]  # no public test labels
    bad = label_ids.copy()
    bad[0, 0] = 40
    _label(tmp_path / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000019_gtFine_labelIds.png", bad)
    with pytest.raises(DataError, match=r"frankfurt_000000_000019_gtFine_labelIds\.png holds annotation id 40"):
        source.dataset("val")[0]


def _yolo(root, lines, names="{0: cat, 1: dog}"):
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(f"path: /somewhere/else\ntrain: images/train\nval: images/val\nnames: {names}\n")
    for split in ("train", "val"):
        _image(root / "images" / split / "a.jpg", height=16, width=16)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split / "a.txt").write_text("\n".join(lines) + "\n")
    _image(root / "images" / "train" / "empty.jpg", height=16, width=16)  # no label file: no objects
    return root


def test_yolo_polygons_and_boxes_rasterise_in_file_order(tmp_path):
    square = "0 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75"  # pixel corners 4 and 12
    box = "1 0.5 0.5 0.25 0.25"  # cx cy w h: corners 6 and 10, drawn over the square
    source = load_dataset(_yolo(tmp_path, [square, box]))
    assert source.name == "yolo" and source.info.class_names == ["background", "cat", "dog"]
    by_id = {s["meta"]["id"]: s for s in (source.dataset("train")[i] for i in range(2))}
    mask = by_id["a"]["mask"].numpy()
    expected = np.zeros((16, 16), np.int64)
    expected[4:12, 4:12] = 1  # COCO's rasterisation: a pixel is in when its centre is (area 8 x 8)
    expected[6:10, 6:10] = 2
    assert np.array_equal(mask, expected)
    assert not by_id["empty"]["mask"].numpy().any()
    assert source.class_pixel_stats("val")[0].tolist() == [256 - 64, 64 - 16, 16]


@pytest.mark.parametrize(("line", "message"), [("2 0.1 0.1 0.5 0.1 0.5 0.5", "class 2 is outside the 2 names"),
                                               ("0 0.1 0.1 0.5", "even number"), ("cat 0.1 0.2", "is not 'class x1 y1")])
def test_yolo_bad_lines_name_the_file_and_line(tmp_path, line, message):
    source = load_dataset(_yolo(tmp_path, ["0 0.1 0.1 0.5 0.1 0.5 0.5", line]))
    with pytest.raises(DataError, match=rf"labels.val.a\.txt line 2.*{re.escape(message)}"):
        source.dataset("val")[0]


@pytest.mark.skipif(not (SHARED_DATA / "coco8_seg").is_dir(), reason="../shared/data is absent")
def test_shared_coco8_seg_yolo_sample():
    from omniseg.data.formats.yolo import read_yolo_objects

    source = load_dataset(SHARED_DATA / "coco8_seg")
    assert source.info.num_classes == 81 and [len(source.dataset(s)) for s in ("train", "val")] == [4, 4]
    for split in ("train", "val"):
        for i in range(4):
            sample = source.dataset(split)[i]
            label = SHARED_DATA / "coco8_seg" / "labels" / split / f"{sample['meta']['id']}.txt"
            listed = {c + 1 for c, _ in read_yolo_objects(label, 80)}
            present = set(np.unique(sample["mask"].numpy()).tolist()) - {0}
            assert present <= listed and len(present) >= 1  # covered objects may vanish, nothing else appears



def test_cityscapes_instance_ids_become_instances(tmp_path):
    label_ids = np.full((12, 16), 7)  # road
    label_ids[2:6, 2:6] = label_ids[2:6, 8:12] = 26  # two cars
    label_ids[8:11, 1:15] = 26  # a group of cars without instance ids
    root = _cityscapes(tmp_path, label_ids)
    instance_ids = np.where(label_ids == 26, 26, 7).astype(np.uint16)
    instance_ids[2:6, 2:6], instance_ids[2:6, 8:12] = 26000, 26001
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        Image.fromarray(instance_ids).save(root / "gtFine" / split / city / f"{city}_000000_000019_gtFine_instanceIds.png")
    sample = load_dataset(root).dataset("val")[0]
    assert sample["instances"]["labels"].tolist() == [13, 13]  # car, in train ids
    assert [int(m.sum()) for m in sample["instances"]["masks"]] == [16, 16] and sample["instances"]["masks"][1, 3, 9]


def test_voc_segmentation_object_gives_instances(tmp_path):
    classes = np.zeros((12, 16), np.uint8)
    classes[1:5, 1:5], classes[6:10, 6:12] = 15, 12  # person, dog
    classes[5, :] = 255
    objects = np.zeros((12, 16), np.uint8)
    objects[1:5, 1:5], objects[6:10, 6:12], objects[5, :] = 1, 2, 255
    for name in ("a", "b"):
        _image(tmp_path / "JPEGImages" / f"{name}.jpg")
        _label(tmp_path / "SegmentationClass" / f"{name}.png", classes, voc_palette())
        _label(tmp_path / "SegmentationObject" / f"{name}.png", objects, voc_palette())
    source = load_dataset(tmp_path, val_fraction=0.5)
    sample = source.dataset("train")[0]
    assert sample["instances"]["labels"].tolist() == [15, 12]
    assert np.array_equal(sample["instances"]["masks"][1].numpy(), classes == 12)


def test_folder_instances_with_overlap_layers(tmp_path):
    from omniseg.data.formats.folder import instance_layers

    semantic = np.zeros((10, 10), np.uint8)
    semantic[1:6, 1:6] = 1
    semantic[4:9, 4:9] = 2  # painted last: covers the corner of the first object
    first, second = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    first[1:6, 1:6], second[4:9, 4:9] = True, True
    layers = instance_layers(np.stack([first, second]))
    assert len(layers) == 2 and layers[1][4, 4] == 2 and layers[0][4, 4] == 1
    root = tmp_path / "data"
    for split in ("train", "val"):
        for folder, array in (("images", np.zeros((10, 10, 3), np.uint8)), ("masks", semantic)):
            (root / folder / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / folder / split / "a.png")
        (root / "instances" / split).mkdir(parents=True)
        Image.fromarray(layers[0]).save(root / "instances" / split / "a.png")
        Image.fromarray(layers[1]).save(root / "instances" / split / "a.1.png")
    sample = load_dataset(root).dataset("train")[0]
    assert sample["instances"]["labels"].tolist() == [1, 2]  # the class of each object's visible part
    assert np.array_equal(sample["instances"]["masks"][0].numpy(), first) and np.array_equal(sample["instances"]["masks"][1].numpy(), second)
