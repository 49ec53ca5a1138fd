"""`omniseg data`: the doctor (planted defects, malformed files), stats, show, conversion round trips,
and downloads against a local HTTP server."""

import hashlib
import http.server
import io
import json
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from omniseg.data.convert import convert
from omniseg.data.doctor import check_dataset
from omniseg.data.formats import load_dataset
from omniseg.data.formats.objects import object_mask
from omniseg.errors import DataError

from .conftest import SHARED_DATA, write_classes, write_pair
from .test_object_formats import CVAT_XML, _coco_fixture, _image, _labelme


def _good_pair(root, split, stem, value=1, size=(16, 16)):
    mask = np.zeros(size, np.uint8)
    mask[4:10, 4:10] = value
    write_pair(root, split, stem, np.full((*size, 3), 90, np.uint8), mask)


def _bad_folder(root):
    """One defect of each kind the doctor knows, each in its own file."""
    root.mkdir(parents=True, exist_ok=True)
    write_classes(root, ["background", "cat", "dog"])
    for stem in ("ok1", "ok2", "both"):
        _good_pair(root, "train", stem, value=1)
    _good_pair(root, "val", "both", value=2)  # duplicate id across splits
    _good_pair(root, "train", "dup")
    (root / "images" / "train" / "dup.jpg").write_bytes((root / "images" / "train" / "dup.png").read_bytes())  # same id twice
    (root / "images" / "train" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    write_pair(root, "train", "small_mask", np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8), np.uint8))
    out_of_range = np.zeros((16, 16), np.uint8)
    out_of_range[0, 0] = 7
    write_pair(root, "train", "label7", np.zeros((16, 16, 3), np.uint8), out_of_range)
    write_pair(root, "train", "empty", np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "images" / "train" / "nomask.png")
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:4] = (1, 2, 3)
    write_pair(root, "train", "rgbmask", np.zeros((16, 16, 3), np.uint8), rgb)
    rotated = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(root / "images" / "train" / "rotated.jpg", exif=exif)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "masks" / "train" / "rotated.png")
    (root / "masks" / "train" / "orphan.png").write_bytes((root / "masks" / "train" / "ok1.png").read_bytes())
    return root


def test_doctor_finds_every_planted_defect_and_names_the_file(tmp_path):
    report = check_dataset(_bad_folder(tmp_path))
    found = {(f.level, f.kind, f.path.rsplit("/", 1)[-1]) for f in report.findings}
    expected = {
        ("error", "corrupt_image", "corrupt.png"), ("error", "size_mismatch", "small_mask.png"),
        ("error", "label_out_of_range", "label7.png"), ("error", "missing_mask", "nomask.png"),
        ("error", "duplicate_id", "dup"), ("warning", "duplicate_id", "both"), ("warning", "empty_mask", "empty.png"),
        ("warning", "exif_rotated", "rotated.jpg"), ("warning", "orphan_mask", "orphan.png"),
        ("warning", "mixed_mask_kinds", "masks"), ("error", "unknown_colour", "rgbmask.png"),
    }
    assert expected <= found, expected - found
    label7 = next(f for f in report.findings if f.kind == "label_out_of_range")
    assert "holds label 7 outside the classes 0..2" in label7.message


def test_doctor_binary_masks_and_ignore_collision(tmp_path):
    binary = tmp_path / "binary"
    _good_pair(binary, "train", "a", value=255)
    assert [f.kind for f in check_dataset(binary).warnings if f.kind == "binary_0_255"]
    clash = tmp_path / "clash"
    _good_pair(clash, "train", "a")
    write_classes(clash, ["background", "cat"], ignore_index=1)  # legal (a void class), but worth a look
    report = check_dataset(clash)
    assert not report.errors and [f.kind for f in report.warnings if f.kind == "void_class"] == ["void_class"]


def test_data_formats_lists_every_reader_with_the_fallback_last(run_cli):
    from omniseg.data.formats import FORMATS

    code, out, _ = run_cli("data", "formats")
    listed = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip()]
    assert code == 0 and set(listed) == set(FORMATS) and listed[-1] == "folder" and len(listed) == 21


def test_data_check_cli_exit_codes_and_json(run_cli, tmp_path, shapes_dir):
    code, out, _ = run_cli("data", "check", shapes_dir)
    assert code == 0 and "no errors" in out
    code, out, _ = run_cli("data", "check", _bad_folder(tmp_path / "bad"), "--json")
    values = json.loads(out)
    assert code == 1 and not values["ok"] and any(f["kind"] == "corrupt_image" for f in values["findings"])


MALFORMED = {
    "coco_truncated": ("annotations/instances_train.json", '{"images": [{"id": 1, "file_name": "a.png"'),
    "coco_types": ("annotations/instances_train.json", '{"images": {"id": 1}, "annotations": [], "categories": []}'),
    "coco_annotation_types": ("annotations/instances_train.json",
                              '{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [7], "categories": [{"id": 1, "name": "x"}]}'),
    "coco_category_types": ("annotations/instances_train.json", '{"images": [], "annotations": [], "categories": ["cat"]}'),
    "coco_rle": ("annotations/instances_train.json", '{"images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 24}], '
                 '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [20, 24], "counts": "zz!!"}}], '
                 '"categories": [{"id": 1, "name": "x"}]}'),
    "coco_rle_size": ("annotations/instances_train.json", '{"images": [{"id": 1, "file_name": "a.png"}], '
                      '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 2], "counts": [1, 3]}}], '
                      '"categories": [{"id": 1, "name": "x"}]}'),
    "labelme_truncated": ("a.json", '{"shapes": [{"label": "cat", "points": [[1, 2], [3'),
    "labelme_types": ("a.json", '{"shapes": [{"label": 5, "points": [[1, 2]]}], "imagePath": "a.png"}'),
    "labelme_points": ("a.json", '{"shapes": [{"label": "cat", "points": [[1, "x"], 4]}], "imagePath": "a.png"}'),
    "via_truncated": ("via.json", '{"a.png1": {"filename": "a.png", "regions": [{"shape_'),
    "via_types": ("via.json", '{"a.png1": {"filename": "a.png", "size": 1, "regions": [{"shape_attributes": {"name": "rect", "x": "left"}}]}}'),
    "via_regions": ("via.json", '{"a.png1": {"filename": "a.png", "size": 1, "regions": "none"}}'),
    "cvat_truncated": ("annotations.xml", "<annotations><image name='a.png' width='16' height='16'><polygon label='x' points='1,1;"),
    "cvat_types": ("annotations.xml", "<annotations><image name='a.png' width='wide' height='16'/></annotations>"),
    "cvat_points": ("annotations.xml", "<annotations><image name='a.png' width='16' height='16'><polygon label='x' points='1,a;2,2;3,3'/></image></annotations>"),
    "yolo_yaml": ("data.yaml", "names: [cat\ntrain: [images/train"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_annotation_files_give_a_clear_error_never_a_crash(tmp_path, run_cli, case):
    name, text = MALFORMED[case]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _image(tmp_path / "a.png")
    (tmp_path / "labels").mkdir()
    report = check_dataset(tmp_path)
    assert report.errors and all(f.kind != "reader_failure" for f in report.errors), report.findings
    assert any(path.name in f.message or path.name in f.path or "matches no known dataset layout" in f.message for f in report.errors)
    code, _, err = run_cli("data", "check", tmp_path)
    assert code == 1 and "Traceback" not in err


def test_data_stats_and_show(run_cli, tmp_path, shapes_dir):
    code, out, _ = run_cli("data", "stats", shapes_dir, "--json")
    stats = json.loads(out)
    assert code == 0 and stats["splits"]["train"]["images"] == 24 and stats["splits"]["train"]["sizes"] == [{"size": [48, 48], "count": 24}]
    source = load_dataset(shapes_dir)
    pixels = sum(source.class_pixel_stats(s)[0] for s in ("train", "val"))
    assert [c["pixels"] for c in stats["classes"]] == pixels.tolist()
    weights = [c["median_frequency_weight"] for c in stats["classes"]]
    assert sorted(weights)[len(weights) // 2] == pytest.approx(1.0)  # the median class has weight 1
    code, _, _ = run_cli("data", "show", shapes_dir, "--out", tmp_path / "grid.png", "--count", "6")
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert code == 0 and grid.shape[0] > 200 and grid.shape[1] > 600


def _ious(a, b):
    return [float((x & y).sum() / max((x | y).sum(), 1)) for x, y in zip(a, b)]


def _instances_by_id(source):
    out = {}
    for split in source.splits():
        dataset = source.dataset(split)
        for i in range(len(dataset)):
            sample = dataset[i]
            out[sample["meta"]["id"]] = (sample["instances"]["masks"].numpy(), sample["instances"]["labels"].tolist(), sample["mask"].numpy())
    return out


def test_coco_to_folder_to_coco_keeps_every_instance(tmp_path):
    source_path = _coco_fixture(tmp_path / "coco")
    convert(source_path, "folder", tmp_path / "folder")
    convert(tmp_path / "folder", "coco", tmp_path / "back")
    first, folder, back = (_instances_by_id(load_dataset(p)) for p in (source_path, tmp_path / "folder", tmp_path / "back"))
    assert load_dataset(tmp_path / "back").info.class_names == ["background", "cat", "dog"]
    for stem, (masks, labels, semantic) in first.items():
        for other in (folder[stem], back[stem]):
            assert other[1] == labels and min(_ious(masks, other[0])) >= 0.99
            assert np.array_equal(other[2], semantic)  # the crowd region survives as a crowd annotation
    values = json.loads((tmp_path / "back" / "annotations" / "instances_train.json").read_text())
    assert sum(a["iscrowd"] for a in values["annotations"]) == 1


def test_labelme_to_coco_keeps_every_instance(tmp_path):
    shapes = [
        {"label": "cat", "points": [[1, 1], [9, 1], [9, 7], [1, 7]], "shape_type": "polygon", "group_id": 1},
        {"label": "cat", "points": [[11, 1], [14, 1], [14, 4]], "shape_type": "polygon", "group_id": 1},
        {"label": "dog", "points": [[2, 10], [8, 16]], "shape_type": "rectangle", "group_id": None},
        {"label": "dog", "points": [[6, 12], [10, 14]], "shape_type": "circle", "group_id": None},  # overlaps the rectangle
    ]
    _labelme(tmp_path / "lm" / "a.json", shapes)
    _labelme(tmp_path / "lm" / "b.json", shapes[2:], image="b.png")
    run = convert(tmp_path / "lm", "coco", tmp_path / "coco")
    first, back = _instances_by_id(load_dataset(tmp_path / "lm")), _instances_by_id(load_dataset(run))
    for stem, (masks, labels, _) in first.items():
        assert back[stem][1] == labels and min(_ious(masks, back[stem][0])) >= 0.99


def test_conversion_keeps_data_without_splits_whole_unless_a_split_is_asked_for(tmp_path, run_cli):
    shapes = [{"label": "cat", "points": [[1, 1], [9, 1], [9, 7], [1, 7]], "shape_type": "polygon", "group_id": None}]
    for stem in ("a", "b", "c"):
        _labelme(tmp_path / "lm" / f"{stem}.json", shapes, image=f"{stem}.png")
    convert(tmp_path / "lm", "coco", tmp_path / "whole")
    assert sorted(p.name for p in (tmp_path / "whole" / "annotations").iterdir()) == ["instances.json"]
    assert len(json.loads((tmp_path / "whole" / "annotations" / "instances.json").read_text())["images"]) == 3
    convert(tmp_path / "whole", "folder", tmp_path / "flat")  # the folder layout without split folders
    assert sorted(p.name for p in (tmp_path / "flat" / "images").iterdir()) == ["a.png", "b.png", "c.png"]
    code, _, err = run_cli("data", "convert", tmp_path / "lm", "--to", "coco", "--out", tmp_path / "split", "--split", "0.34")
    assert code == 0, err
    counts = {p.stem: len(json.loads(p.read_text())["images"]) for p in (tmp_path / "split" / "annotations").iterdir()}
    assert counts == {"instances_train": 2, "instances_val": 1}


@pytest.mark.skipif(not (SHARED_DATA / "labelme").is_dir(), reason="../shared/data is absent")
def test_shared_labelme_to_coco_and_coco_to_folder_round_trip(tmp_path):
    root = SHARED_DATA / "labelme" / "instance_segmentation"
    convert(root, "coco", tmp_path / "coco")
    convert(tmp_path / "coco", "folder", tmp_path / "folder")
    convert(tmp_path / "folder", "coco", tmp_path / "back")
    first = _instances_by_id(load_dataset(root))
    for path in (tmp_path / "coco", tmp_path / "folder", tmp_path / "back"):
        other = _instances_by_id(load_dataset(path))
        for stem, (masks, labels, _) in first.items():
            assert other[stem][1] == labels and min(_ious(masks, other[stem][0])) >= 0.99


@pytest.mark.skipif(not (SHARED_DATA / "coco8_seg").is_dir(), reason="../shared/data is absent")
def test_shared_yolo_to_coco_keeps_classes_and_polygons(tmp_path):
    from omniseg.data.formats.yolo import read_yolo_objects

    convert(SHARED_DATA / "coco8_seg", "coco", tmp_path / "coco")
    source = load_dataset(tmp_path / "coco")
    assert source.info.class_names == load_dataset(SHARED_DATA / "coco8_seg").info.class_names
    for split in ("train", "val"):
        values = json.loads((tmp_path / "coco" / "annotations" / f"instances_{split}.json").read_text())
        names = {c["id"]: c["name"] for c in values["categories"]}
        for image in values["images"]:
            stem = image["file_name"].rsplit(".", 1)[0]
            objects = read_yolo_objects(SHARED_DATA / "coco8_seg" / "labels" / split / f"{stem}.txt", 80)
            annotations = [a for a in values["annotations"] if a["image_id"] == image["id"]]
            assert [names[a["category_id"]] for a in annotations] == [source.info.class_names[c + 1] for c, _ in objects]
            for (_, vertices), annotation in zip(objects, annotations):
                expected = (vertices * [image["width"], image["height"]]).reshape(-1)
                assert np.allclose(annotation["segmentation"][0], expected)


def test_yolo_writer_keeps_polygons_and_traces_bitmaps(tmp_path):
    convert(_coco_fixture(tmp_path / "coco"), "yolo", tmp_path / "yolo")
    first, back = _instances_by_id(load_dataset(tmp_path / "coco")), _instances_by_id(load_dataset(tmp_path / "yolo"))
    # a: the two-part cat becomes two lines (YOLO has one polygon a line); the crowd region is left out
    assert back["a"][1] == [1, 1] and np.array_equal(back["a"][0][0] | back["a"][0][1], first["a"][0][0])
    # b: the RLE dog is traced around its pixels and comes back whole, the cat polygon is exact
    assert back["b"][1] == [2, 1]
    assert _ious(first["b"][0], back["b"][0]) == [1.0, 1.0]


def test_voc_writer_round_trips_classes_and_instances(tmp_path):
    convert(_coco_fixture(tmp_path / "coco"), "voc", tmp_path / "voc")
    source = load_dataset(tmp_path / "voc")
    assert source.name == "voc" and source.info.class_names == ["background", "cat", "dog"]
    first, back = _instances_by_id(load_dataset(tmp_path / "coco")), _instances_by_id(source)
    for stem, (masks, labels, semantic) in first.items():
        assert np.array_equal(back[stem][2], semantic) and back[stem][1] == labels


def test_convert_refuses_to_overwrite_and_unknown_targets(tmp_path, run_cli):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, _, err = run_cli("data", "convert", _coco_fixture(tmp_path / "coco"), "--to", "folder", "--out", tmp_path / "out")
    assert code == 2 and "already exists and is not empty" in err and (tmp_path / "out" / "keep.txt").read_text() == "mine"
    with pytest.raises(DataError, match="cannot write format 'tiff'"):
        convert(tmp_path / "coco", "tiff", tmp_path / "new")


def test_cvat_converts_to_coco_with_masks_as_rle(tmp_path):
    _image(tmp_path / "cvat" / "images" / "a.png")
    _image(tmp_path / "cvat" / "images" / "b.png", seed=1)
    (tmp_path / "cvat" / "annotations.xml").write_text(CVAT_XML)
    convert(tmp_path / "cvat", "coco", tmp_path / "coco")
    values = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    kinds = [type(a["segmentation"]).__name__ for a in values["annotations"]]
    assert kinds == ["list", "dict", "list"]  # box polygon, the mask as RLE, the grouped polygons
    assert object_mask(values["annotations"][1]["segmentation"], 20, 24).sum() == 5


# -- downloads -------------------------------------------------------------------------------------
class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with Range support; the first request for a file can be cut short."""

    cut_once: set = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.cut_once:
            self.cut_once.discard(self.path)
            self.wfile.write(body[: len(body) // 3])  # then drop the connection
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _voc_tar(path):
    with tarfile.open(path, "w") as tar:
        for stem in ("2007_000001", "2007_000002", "2007_000003"):
            for folder, array in (("JPEGImages", np.full((8, 8, 3), 50, np.uint8)), ("SegmentationClass", np.eye(8, dtype=np.uint8))):
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format="PNG")
                info = tarfile.TarInfo(f"VOCdevkit/VOC2012/{folder}/{stem}.png")
                info.size = len(buffer.getvalue())
                tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_resumes_checks_and_extracts(http_server, tmp_path, run_cli, monkeypatch):
    from omniseg.data import download

    served, url = http_server
    digest = _voc_tar(served / "VOCtrainval_11-May-2012.tar")
    real = download.DATASETS["voc2012"]
    archive = download.Archive(real.archives[0].url, "md5", digest)
    monkeypatch.setitem(download.DATASETS, "voc2012", download.DatasetDownload("voc2012", (archive,), real.folder, real.note))
    _RangeHandler.cut_once = {"/VOCtrainval_11-May-2012.tar"}
    code, _, err = run_cli("data", "download", "voc2012", "--out", tmp_path / "data", "--mirror", url)
    part = tmp_path / "data" / "downloads" / "VOCtrainval_11-May-2012.tar.part"
    assert code == 2 and "run the command again to resume" in err and 0 < part.stat().st_size
    code, out, err = run_cli("data", "download", "voc2012", "--out", tmp_path / "data", "--mirror", url)
    assert code == 0, err
    assert not part.exists() and load_dataset(tmp_path / "data" / "VOCdevkit" / "VOC2012").name == "voc"


def test_download_rejects_a_wrong_checksum_and_names_cityscapes_login(http_server, tmp_path, run_cli):
    from omniseg.data.download import download_file

    served, url = http_server
    (served / "file.bin").write_bytes(b"x" * 1000)
    with pytest.raises(DataError, match=r"file\.bin from .* has sha256 .*, expected 00+; the file was deleted"):
        download_file(f"{url}/file.bin", tmp_path / "file.bin", algorithm="sha256", digest="0" * 64, show_progress=False)
    assert not (tmp_path / "file.bin").exists() and not (tmp_path / "file.bin.part").exists()
    good = hashlib.sha256(b"x" * 1000).hexdigest()
    assert download_file(f"{url}/file.bin", tmp_path / "file.bin", algorithm="sha256", digest=good, show_progress=False).read_bytes() == b"x" * 1000
    code, _, err = run_cli("data", "download", "cityscapes", "--out", tmp_path)
    assert code == 2 and "cityscapes-dataset.com" in err and "account" in err


def test_extract_refuses_paths_outside_the_target(tmp_path):
    from omniseg.data.download import extract

    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(DataError, match="outside"):
        extract(tmp_path / "evil.tar", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
