import numpy as np
import pytest
from PIL import Image

from omniseg.data import load_dataset
from omniseg.errors import DataError
from tests.conftest import write_classes, write_pair

RNG = np.random.default_rng(0)
LABELS = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [255, 2, 2, 0]], np.uint8)  # 3 x 4, 255 = ignore
PALETTE = [[0, 0, 0], [200, 0, 0], [0, 200, 0]]


def _image(h=3, w=4):
    return RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _mask(source, split="train", index=0):
    return source.dataset(split)[index]["mask"].numpy()


def test_index_masks_infer_classes(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    write_pair(tmp_path, "val", "b", _image(), LABELS)
    source = load_dataset(tmp_path)
    assert source.info.class_names == ["class_0", "class_1", "class_2"]
    assert source.splits() == ["train", "val"]
    sample = source.dataset("train")[0]
    assert sample["image"].shape == (3, 3, 4) and sample["image"].dtype.is_floating_point is False
    np.testing.assert_array_equal(sample["mask"].numpy(), LABELS)
    assert sample["meta"]["id"] == "a" and sample["meta"]["orig_size"] == (3, 4)


def test_palette_masks_keep_indices_and_palette(tmp_path):
    mask = Image.fromarray(LABELS)
    mask.putpalette([c for colour in PALETTE for c in colour] + [255] * (768 - 9))  # full palette, as VOC
    write_pair(tmp_path, "train", "a", _image(), mask)
    source = load_dataset(tmp_path)
    np.testing.assert_array_equal(_mask(source), LABELS)
    assert source.info.palette[:3] == [tuple(c) for c in PALETTE]
    assert "palette" in source.description


def test_rgb_masks_map_through_palette(tmp_path):
    rgb = np.array(PALETTE, np.uint8)[np.where(LABELS == 255, 0, LABELS)]
    write_pair(tmp_path, "train", "a", _image(), rgb)
    write_classes(tmp_path, ["bg", "red", "green"], PALETTE)
    source = load_dataset(tmp_path)
    np.testing.assert_array_equal(_mask(source), np.where(LABELS == 255, 0, LABELS))
    assert source.info.class_names == ["bg", "red", "green"]


def test_rgb_colour_outside_palette_names_the_file(tmp_path):
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    write_pair(tmp_path, "train", "a", _image(), rgb)
    write_classes(tmp_path, ["bg", "red"], PALETTE[:2])
    with pytest.raises(DataError, match=r"a\.png has colour \(1, 2, 3\)"):
        load_dataset(tmp_path)


def test_rgb_masks_without_palette_ask_for_one(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), np.zeros((3, 4, 3), np.uint8) + 7)
    with pytest.raises(DataError, match="RGB colour mask.*palette"):
        load_dataset(tmp_path)


def test_binary_0_255_masks_are_read_as_0_1_with_a_warning(tmp_path):
    binary = np.where(LABELS > 0, 255, 0).astype(np.uint8)
    write_pair(tmp_path, "train", "a", _image(), binary)
    with pytest.warns(UserWarning, match="0/255 binary"):
        source = load_dataset(tmp_path)
    assert source.info.class_names == ["background", "foreground"]
    np.testing.assert_array_equal(_mask(source), binary // 255)
    pixels, _ = source.class_pixel_stats("train")
    assert pixels.tolist() == [4, 8]


def test_flat_layout_gets_a_seeded_split(tmp_path):
    for i in range(10):
        write_pair(tmp_path, None, f"img{i}", _image(), LABELS)
    first = load_dataset(tmp_path, val_fraction=0.3, split_seed=1)
    again = load_dataset(tmp_path, val_fraction=0.3, split_seed=1)
    other = load_dataset(tmp_path, val_fraction=0.3, split_seed=2)
    ids = lambda s: [s.dataset("val")[i]["meta"]["id"] for i in range(len(s.dataset("val")))]  # noqa: E731
    assert len(first.dataset("train")) == 7 and len(first.dataset("val")) == 3
    assert ids(first) == ids(again) and ids(first) != ids(other)
    assert first.seeded_split


def test_class_pixel_stats(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    write_pair(tmp_path, "train", "b", _image(), np.zeros((3, 4), np.uint8))
    pixels, image_pixels = load_dataset(tmp_path).class_pixel_stats("train")
    assert pixels.tolist() == [4 + 12, 3, 4]
    assert image_pixels.tolist() == [24, 12, 12]


# -- bad input: each error names the file and the fix -------------------------------------------


def test_mask_size_mismatch(tmp_path):
    write_pair(tmp_path, "train", "a", _image(5, 4), LABELS)
    with pytest.raises(DataError, match=r"mask .*a\.png is 4x3 but its image .*a\.png is 4x5; resize"):
        load_dataset(tmp_path)


def test_label_outside_the_classes(tmp_path):
    bad = LABELS.copy()
    bad[0, 0] = 7
    write_pair(tmp_path, "train", "a", _image(), bad)
    write_classes(tmp_path, ["bg", "x", "y"])
    with pytest.raises(DataError, match=r"a\.png has label 7 but the dataset has 3 classes"):
        load_dataset(tmp_path)


def test_corrupt_png(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    path = tmp_path / "images" / "train" / "a.png"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"image .*a\.png is corrupt.*re-export it or remove it"):
        load_dataset(tmp_path)


def test_empty_split_and_missing_path(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    (tmp_path / "images" / "val").mkdir()
    source = load_dataset(tmp_path)
    with pytest.raises(DataError, match="split 'val' of .* is empty"):
        source.dataset("val")
    with pytest.raises(DataError, match="has no split 'test'"):
        source.dataset("test")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="matches no known dataset layout"):
        load_dataset(tmp_path / "images" / "train")


def test_missing_mask_for_an_image(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    write_pair(tmp_path, "train", "b", _image(), LABELS)
    (tmp_path / "masks" / "train" / "b.png").unlink()
    with pytest.raises(DataError, match=r"b\.png has no mask"):
        load_dataset(tmp_path)


def test_bad_classes_json(tmp_path):
    write_pair(tmp_path, "train", "a", _image(), LABELS)
    (tmp_path / "classes.json").write_text("{not json")
    with pytest.raises(DataError, match="classes.json is not valid JSON"):
        load_dataset(tmp_path)
    write_classes(tmp_path, ["a", "b"], ignore_index=-1)
    with pytest.raises(DataError, match="ignore_index must be a mask value"):
        load_dataset(tmp_path)
