"""Bad input found in review: each ends in one line that names the file or key, exit code 2, and no traceback."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from omniseg.data.imageio import MAX_IMAGE_PIXELS
from omniseg.models import create_model
from omniseg.models.hub import ModelCard, save_model

from .conftest import write_classes, write_pair

TINY = ["--model", "unet", "--set", "model.kwargs.depth=1", "--set", "model.kwargs.base_channels=4", "--batch-size", "2",
        "--img-size", "16", "--epochs", "1", "--no-progress"]


def one_line_error(code: int, err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert all(name in lines[0] for name in names), lines[0]
    return lines[0]


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels and whose data holds one row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * 16))) + chunk(b"IEND", b"")


def jpeg_declaring(path, width: int, height: int) -> None:
    """A small JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height``."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


@pytest.fixture
def folder(tmp_path):
    """A folder dataset of two 16x16 pairs per split and three classes."""
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            write_pair(data, split, f"{split}{i}", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                       rng.integers(0, 3, (16, 16), dtype=np.uint8))
    write_classes(data, ["a", "b", "c"])
    return data


@pytest.mark.parametrize("defect", ["size", "label", "corrupt", "empty", "missing"])
def test_a_broken_folder_dataset_is_named(run_cli, folder, tmp_path, defect):
    expected = {"size": "train1.png", "label": "train0.png", "corrupt": "val0.png", "empty": "val", "missing": "nowhere"}
    data = folder
    if defect == "size":
        Image.fromarray(np.zeros((10, 16), np.uint8)).save(data / "masks" / "train" / "train1.png")
    elif defect == "label":
        Image.fromarray(np.full((16, 16), 9, np.uint8)).save(data / "masks" / "train" / "train0.png")
    elif defect == "corrupt":
        (data / "images" / "val" / "val0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif defect == "empty":
        for p in (data / "images" / "val").iterdir():
            p.unlink()
    elif defect == "missing":
        data = tmp_path / "nowhere"
    code, _, err = run_cli("train", "--data", data, *TINY, "--out", tmp_path / "run")
    one_line_error(code, err, expected[defect])


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_decompression_bomb_is_refused_before_it_is_decoded(run_cli, folder, tmp_path, kind):
    side = 60_000  # 3.6 gigapixels declared in a file of a few hundred bytes
    assert side * side > MAX_IMAGE_PIXELS
    if kind == "png":
        (folder / "images" / "train" / "train0.png").write_bytes(png_declaring(side, side))
        bomb = "train0.png"
    else:  # read by OpenCV, which would decode first: the header is checked before
        (folder / "images" / "train" / "train0.png").unlink()
        jpeg_declaring(folder / "images" / "train" / "train0.jpg", side, side)
        bomb = "train0.jpg"
    code, _, err = run_cli("train", "--data", folder, *TINY, "--out", tmp_path / "run")
    assert "pixels" in one_line_error(code, err, bomb)


@pytest.mark.parametrize("fmt", ["coco", "labelme", "cvat"])
def test_an_annotation_declaring_a_huge_image_is_refused_before_allocating(run_cli, tmp_path, fmt):
    data = tmp_path / fmt
    data.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(data / "a.png")
    if fmt == "coco":
        (data / "annotations.json").write_text(json.dumps({
            "images": [{"id": 1, "file_name": "a.png", "height": 100_000, "width": 100_000}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]}],
            "categories": [{"id": 1, "name": "cat"}]}))
        named = "annotations.json"
    elif fmt == "labelme":
        (data / "a.json").write_text(json.dumps({"imagePath": "a.png", "imageHeight": 100_000, "imageWidth": 100_000,
                                                 "shapes": [{"label": "cat", "points": [[1, 1], [9, 1], [9, 9]], "shape_type": "polygon"}]}))
        named = "a.json"
    else:
        (data / "annotations.xml").write_text(
            "<annotations><meta><task><labels><label><name>cat</name></label></labels></task></meta>"
            "<image id='0' name='a.png' width='100000' height='100000'>"
            "<mask label='cat' rle='1, 2' left='0' top='0' width='3' height='1'/></image></annotations>")
        named = "annotations.xml"
    code, _, err = run_cli("data", "stats", data)
    assert "over the limit" in one_line_error(code, err, named)


def test_a_model_option_of_the_wrong_type_names_the_key(run_cli, folder, tmp_path):
    code, _, err = run_cli("train", "--data", folder, *TINY, "--set", "model.kwargs.depth=three", "--out", tmp_path / "run")
    one_line_error(code, err, "depth='three'", "integer")


def _saved_run(tmp_path, **card):
    model = create_model("unet", num_classes=3, depth=1, base_channels=4)
    values = {"architecture": "unet", "kwargs": {"num_classes": 3, "depth": 1, "base_channels": 4},
              "preprocessing": {"mean": [0.5] * 3, "std": [0.25] * 3}} | card
    from omniseg.core import DatasetInfo

    save_model(model, tmp_path / "run", ModelCard(info=DatasetInfo(["a", "b", "c"], ignore_index=255), **values))
    return tmp_path / "run"


def test_a_run_without_preprocessing_statistics_names_its_card(run_cli, folder, tmp_path):
    run = _saved_run(tmp_path, preprocessing={})
    code, _, err = run_cli("eval", run, "--data", folder)
    one_line_error(code, err, str(run / "model.json"), "preprocessing")
    code, _, err = run_cli("predict", run, folder / "images" / "val", "--out", tmp_path / "pred")
    one_line_error(code, err, str(run / "model.json"))


def test_weights_of_another_shape_name_the_file_and_the_keys(run_cli, folder, tmp_path):
    run = _saved_run(tmp_path)
    card = json.loads((run / "model.json").read_text())
    card["kwargs"]["base_channels"] = 8  # the card now describes a wider model than the weights hold
    (run / "model.json").write_text(json.dumps(card))
    code, _, err = run_cli("predict", run, folder / "images" / "val", "--out", tmp_path / "pred")
    one_line_error(code, err, "model.safetensors", "wrong shape")


def test_a_truncated_coco_file_is_named_by_check_and_train(run_cli, tmp_path):
    data = tmp_path / "coco"
    (data / "images").mkdir(parents=True)  # an images/ folder: the plain folder layout must not take over
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(data / "images" / "a.png")
    (data / "annotations.json").write_text('{"images": [{"id": 1, "file_name": "a.png", "height": 16, "wi')
    code, out, _ = run_cli("data", "check", data, "--json")
    assert code == 1 and any("annotations.json is not valid JSON" in f["message"] for f in json.loads(out)["findings"])
    code, _, err = run_cli("train", "--data", data, *TINY, "--out", tmp_path / "run")
    one_line_error(code, err, "annotations.json", "not valid JSON")


def test_classes_json_with_a_repeated_name_is_refused(run_cli, folder, tmp_path):
    write_classes(folder, ["a", "b", "a"])
    code, _, err = run_cli("train", "--data", folder, *TINY, "--out", tmp_path / "run")
    one_line_error(code, err, "classes.json", "'a'")
