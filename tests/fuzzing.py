"""Malformed inputs for every annotation reader and for the image and mask decoders, generated with hypothesis.

Each :class:`Target` writes a small valid dataset, names the one file the fuzzer replaces, and reads the
dataset the way training does (open it, then every sample of every split). A generated file is the valid
one changed: JSON with nodes replaced by values of another type, deleted or repeated; text (XML, YAML,
YOLO lines) with tokens replaced; any file truncated, with bytes flipped or garbage spliced in. Reading it
must either work or raise omniseg's own error naming that file. ``tests/test_fuzz_readers.py`` runs a few
examples of each in ``make test``; ``benchmarks/fuzz_readers.py`` runs thousands.
"""

from __future__ import annotations

import copy
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from omniseg.data.formats import load_dataset
from omniseg.errors import OmnisegError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
TOKENS = st.sampled_from(["", "-1", "0", "1e309", "nan", "-inf", "99999999999", "2.5", "x", "<", ">", "/>", '"', "'", ",", ";",
                          ":", "[", "]", "{", "}", "\n", " ", "\x00", "é", "null", "true"]) | st.text(max_size=6)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """The key path of every node of a JSON value, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_json(draw, valid: bytes) -> bytes:
    """The JSON document ``valid`` with 1-3 nodes replaced by any JSON value, deleted, or repeated."""
    document = json.loads(valid)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            document = draw(JSON_VALUES)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "repeat"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[f"{path[-1]}_"] = copy.deepcopy(parent[path[-1]])
    return json.dumps(document).encode()  # NaN and Infinity included: Python's json reads them back


@st.composite
def mutated_tokens(draw, valid: bytes) -> bytes:
    """The text ``valid`` with 1-4 of its tokens (numbers, words, punctuation) replaced."""
    tokens = re.findall(rb"-?\d+(?:\.\d+)?|\w+|\s+|.", valid)
    for _ in range(draw(st.integers(1, 4))):
        tokens[draw(st.integers(0, len(tokens) - 1))] = draw(TOKENS).encode()
    return b"".join(tokens)


@st.composite
def mutated_bytes(draw, valid: bytes) -> bytes:
    """``valid`` truncated, with bytes flipped, or with random bytes spliced in."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice"]))
    data = bytearray(valid)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    at = draw(st.integers(0, len(data)))
    return bytes(data[:at]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[at + draw(st.integers(0, 16)):])


def _image(path: Path, height: int = 20, width: int = 24, seed: int = 0, suffix: str | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    return path.read_bytes()


def _json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def build_coco(root: Path) -> Path:
    for name in ("a.png", "b.png"):
        _image(root / "train2017" / name)
    _json(root / "annotations" / "instances_train2017.json", {
        "images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 24}, {"id": 2, "file_name": "b.png", "height": 20, "width": 24}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": [[1, 1, 9, 1, 9, 7, 1, 7]], "bbox": [1, 1, 8, 6]},
            {"id": 2, "image_id": 2, "category_id": 7, "iscrowd": 1, "segmentation": {"size": [20, 24], "counts": [30, 10, 440]}},
            {"id": 3, "image_id": 2, "category_id": 3, "iscrowd": 0, "segmentation": {"size": [20, 24], "counts": "a05:1O2N"}}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]})
    return root / "annotations" / "instances_train2017.json"


def build_coco_panoptic(root: Path) -> Path:
    for name in ("a", "b"):
        _image(root / "train2017" / f"{name}.jpg")
        ids = np.zeros((20, 24, 3), np.uint8)
        ids[2:8, 2:9, 0] = 5  # segment 5 (a thing)
        ids[10:, :, 0] = 9  # segment 9 (stuff)
        (root / "annotations" / "panoptic_train2017").mkdir(parents=True, exist_ok=True)
        Image.fromarray(ids).save(root / "annotations" / "panoptic_train2017" / f"{name}.png")
    _json(root / "annotations" / "panoptic_train2017.json", {
        "images": [{"id": k, "file_name": f"{n}.jpg", "height": 20, "width": 24} for k, n in enumerate("ab")],
        "annotations": [{"image_id": k, "file_name": f"{n}.png", "segments_info": [
            {"id": 5, "category_id": 1, "iscrowd": 0, "area": 42, "bbox": [2, 2, 7, 6]},
            {"id": 9, "category_id": 2, "iscrowd": 0, "area": 240, "bbox": [0, 10, 24, 10]}]} for k, n in enumerate("ab")],
        "categories": [{"id": 1, "name": "cat", "isthing": 1}, {"id": 2, "name": "grass", "isthing": 0}]})
    return root / "annotations" / "panoptic_train2017.json"


def build_labelme(root: Path) -> Path:
    for name in ("a", "b"):
        _image(root / f"{name}.png")
        _json(root / f"{name}.json", {"version": "5.0.1", "imagePath": f"{name}.png", "imageData": None, "imageHeight": 20, "imageWidth": 24,
                                      "flags": {}, "shapes": [
            {"label": "cat", "points": [[1, 1], [9, 1], [9, 7], [1, 7]], "shape_type": "polygon", "group_id": 1, "flags": {}},
            {"label": "dog", "points": [[2, 10], [8, 16]], "shape_type": "rectangle", "group_id": None, "flags": {}},
            {"label": "dog", "points": [[17, 14], [17, 18]], "shape_type": "circle", "group_id": None, "flags": {}}]})
    return root / "a.json"


def build_via(root: Path) -> Path:
    regions = [
        {"shape_attributes": {"name": "polygon", "all_points_x": [1, 9, 9, 1], "all_points_y": [1, 1, 7, 7]}, "region_attributes": {"class": "cat"}},
        {"shape_attributes": {"name": "rect", "x": 2, "y": 10, "width": 6, "height": 6}, "region_attributes": {"class": {"dog": True}}},
        {"shape_attributes": {"name": "ellipse", "cx": 18, "cy": 10, "rx": 4, "ry": 2, "theta": 0}, "region_attributes": {"class": "cat"}},
        {"shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 3}, "region_attributes": {"class": "dog"}}]
    _image(root / "a.jpg")
    _image(root / "b.jpg", seed=1)
    _json(root / "via_region_data.json", {"a.jpg1": {"filename": "a.jpg", "size": 1, "regions": regions, "file_attributes": {}},
                                          "b.jpg2": {"filename": "b.jpg", "size": 2, "regions": regions[:1], "file_attributes": {}}})
    return root / "via_region_data.json"


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels><label><name>cat</name></label><label><name>dog</name></label></labels></task></meta>
  <image id="0" name="a.png" width="24" height="20" subset="Train">
    <box label="dog" xtl="0" ytl="0" xbr="12" ybr="10" z_order="0" occluded="0"/>
    <polygon label="cat" points="2,2;8,2;8,8;2,8" z_order="1" group_id="4"/>
    <mask label="dog" rle="1, 2, 2, 3, 4" left="20" top="15" width="3" height="4" z_order="0"/>
    <ellipse label="cat" cx="18" cy="10" rx="4" ry="2" z_order="0"/>
  </image>
  <image id="1" name="b.png" width="24" height="20" subset="Validation"/>
</annotations>
"""


def build_cvat(root: Path) -> Path:
    _image(root / "images" / "a.png")
    _image(root / "images" / "b.png", seed=1)
    (root / "annotations.xml").write_text(CVAT_XML)
    return root / "annotations.xml"


def _yolo(root: Path) -> None:
    for split in ("train", "val"):
        _image(root / "images" / split / "a.jpg")
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split / "a.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.4 0.1 0.4\n1 0.6 0.6 0.2 0.3\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n")


def build_yolo_labels(root: Path) -> Path:
    _yolo(root)
    return root / "labels" / "train" / "a.txt"


def build_yolo_yaml(root: Path) -> Path:
    _yolo(root)
    return root / "data.yaml"


def _folder(root: Path) -> None:
    for split in ("train", "val"):
        _image(root / "images" / split / "a.png")
        mask = np.zeros((20, 24), np.uint8)
        mask[2:9, 3:12], mask[12:, 5:] = 1, 2
        mask[0, 0] = 255
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "masks" / split / "a.png")
    _json(root / "classes.json", {"class_names": ["background", "cat", "dog"], "palette": [[0, 0, 0], [200, 0, 0], [0, 200, 0]],
                                  "ignore_index": 255})


def build_classes_json(root: Path) -> Path:
    _folder(root)
    return root / "classes.json"


def build_mask_png(root: Path) -> Path:
    _folder(root)
    return root / "masks" / "train" / "a.png"


def build_image_png(root: Path) -> Path:
    _folder(root)
    return root / "images" / "train" / "a.png"


def build_image_jpeg(root: Path) -> Path:
    _folder(root)
    (root / "images" / "train" / "a.png").unlink()
    _image(root / "images" / "train" / "a.jpg")
    return root / "images" / "train" / "a.jpg"


def build_image_tiff(root: Path) -> Path:
    _folder(root)
    (root / "images" / "train" / "a.png").unlink()
    _image(root / "images" / "train" / "a.tif")
    return root / "images" / "train" / "a.tif"


def build_nifti_dataset_json(root: Path) -> Path:
    import nibabel as nib

    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for case in ("case_000", "case_001", "case_002"):
        nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 4)).astype(np.float32), np.eye(4)), root / "imagesTr" / f"{case}_0000.nii.gz")
        labels = np.zeros((8, 8, 4), np.uint8)
        labels[2:5, 2:6, 1:3] = 1
        nib.save(nib.Nifti1Image(labels, np.eye(4)), root / "labelsTr" / f"{case}.nii.gz")
    _json(root / "dataset.json", {"name": "tiny", "channel_names": {"0": "MR"}, "labels": {"background": 0, "organ": 1},
                                  "numTraining": 3, "file_ending": ".nii.gz"})
    return root / "dataset.json"


@dataclass(frozen=True)
class Target:
    """A reader under test: ``build(root)`` writes a valid dataset and returns the file to replace;
    ``format`` is the reader's name; ``mutations(valid)`` is the strategy of malformed versions of the file."""

    build: Callable[[Path], Path]
    format: str
    mutations: Callable[[bytes], st.SearchStrategy[bytes]]


def _json_file(valid: bytes) -> st.SearchStrategy[bytes]:
    return mutated_json(valid) | mutated_bytes(valid)


def _text_file(valid: bytes) -> st.SearchStrategy[bytes]:
    return mutated_tokens(valid) | mutated_bytes(valid)


TARGETS: dict[str, Target] = {
    "coco": Target(build_coco, "coco", _json_file),
    "coco_panoptic": Target(build_coco_panoptic, "coco_panoptic", _json_file),
    "labelme": Target(build_labelme, "labelme", _json_file),
    "via": Target(build_via, "via", _json_file),
    "cvat": Target(build_cvat, "cvat", _text_file),
    "yolo_labels": Target(build_yolo_labels, "yolo", _text_file),
    "yolo_yaml": Target(build_yolo_yaml, "yolo", _text_file),
    "classes_json": Target(build_classes_json, "folder", _json_file),
    "nifti_dataset_json": Target(build_nifti_dataset_json, "nifti", _json_file),
    "mask_png": Target(build_mask_png, "folder", mutated_bytes),
    "image_png": Target(build_image_png, "folder", mutated_bytes),
    "image_jpeg": Target(build_image_jpeg, "folder", mutated_bytes),
    "image_tiff": Target(build_image_tiff, "folder", mutated_bytes),
}


def read_everything(root: Path, format: str) -> int:
    """Open the dataset and read every sample of every split, as training would; returns the samples read."""
    source = load_dataset(root, format=format, val_fraction=0.5)
    count = 0
    for split in source.splits():
        dataset = source.dataset(split)
        for index in range(len(dataset)):
            dataset[index]
            count += 1
    return count


def check(root: Path, target: Target, fuzzed: Path, data: bytes) -> str | None:
    """Write ``data`` over ``fuzzed`` and read the dataset: None when it reads or fails as it should, else the
    description of the failure (another exception type, or an error that does not name the file)."""
    fuzzed.write_bytes(data)
    try:
        read_everything(root, target.format)
    except OmnisegError as error:
        if fuzzed.name not in str(error):
            return f"{type(error).__name__} without the file's name: {error}"
    except Exception as error:  # noqa: BLE001 - this is what the fuzzer looks for
        frames = [f for f in traceback.extract_tb(error.__traceback__) if "omniseg" in f.filename]
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return f"{type(error).__name__}{where}: {error}"
    return None


def reproducer(data: bytes) -> str:
    """A short printable form of a failing input."""
    text = repr(data[:300])
    return text + ("..." if len(data) > 300 else "")
