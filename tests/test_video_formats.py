"""Video dataset readers on small samples built in each format's real layout (YouTube-VIS, YouTube-VOS, KITTI-MOTS,
MOTSChallenge, Cell Tracking Challenge), the DAVIS and YouTube-VIS converters' round trips, and bad files named."""

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from omniseg.core.rle import encode_rle
from omniseg.data.convert import convert
from omniseg.data.formats import detect_format, load_dataset
from omniseg.data.formats.voc import voc_palette
from omniseg.data.imageio import write_index_png
from omniseg.data.synthetic_video import tracking_video, write_tracking_videos
from omniseg.errors import ConfigError, DataError


def _disc(size, cy, cx, r):
    ys, xs = np.mgrid[:size[0], :size[1]]
    return (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r


def _frame(path, size=(24, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(len(str(path))).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def vis(tmp_path_factory):
    return write_tracking_videos(tmp_path_factory.mktemp("vis"), splits={"train": 3, "valid": 2}, frames=6, size=48, seed=0)


def test_synthetic_tracking_videos_are_exact_and_seeded(vis):
    """Objects enter, leave and hide one another: visible masks never overlap, every track id keeps one class, and
    the same seed gives the same video."""
    videos = [tracking_video(0, i, frames=40) for i in range(12)]
    for video in videos:
        for frame in video.tracks:
            masks = list(frame.values())
            assert sum(m.sum() for m in masks) == np.logical_or.reduce(masks).sum() if masks else not frame
    assert np.array_equal(tracking_video(0, 4, frames=40).frames, videos[4].frames)
    assert any(len({len(f) for f in video.tracks}) > 1 for video in videos)  # objects enter, leave or hide in some videos
    source = load_dataset(vis)
    assert source.name == "youtube_vis" and source.splits() == ["train", "val"]
    assert source.info.class_names == ["background", "circle", "square", "triangle", "star"]
    again = write_tracking_videos(vis, splits={"train": 3, "valid": 2}, frames=6, size=48, seed=0)  # the same recipe: kept
    assert again == vis


def test_youtube_vis_reads_frames_and_tracks(vis):
    source = load_dataset(vis)
    name = source.split_names("val")[0]
    video = source.videos[name]
    truth = tracking_video(1, 0, frames=6, size=48)  # the valid split's seed stream
    for t in range(6):
        masks = source.frame_masks(video, t)
        assert sorted(masks) == sorted(truth.tracks[t])  # track ids are the annotations' ids, 1.. in order
        for track_id, (label, mask) in masks.items():
            assert label == truth.labels[track_id] and np.array_equal(mask, truth.tracks[t][track_id])
    sample = source.dataset("val")[0]
    assert sample["image"].shape == (3, 48, 48) and len(sample["instances"]["labels"]) == len(truth.tracks[0])


def test_davis_and_youtube_vis_round_trip(vis, tmp_path):
    convert(vis, "davis", tmp_path / "davis")
    davis = load_dataset(tmp_path / "davis")
    convert(tmp_path / "davis", "youtube_vis", tmp_path / "vis")
    back = load_dataset(tmp_path / "vis")
    source = load_dataset(vis)
    assert davis.name == "davis" and back.name == "youtube_vis" and davis.split_videos == source.split_videos
    for name, video in source.videos.items():
        for t in video.annotated:
            original = {k: m for k, (_, m) in source.frame_masks(video, t).items()}
            for other in (davis, back):
                copied = [m for _, m in other.frame_masks(name, t).values()]
                assert len(copied) == len(original)
                assert all(any(np.array_equal(m, c) for c in copied) for m in original.values())
        assert davis.videos[name].frames[0].read_bytes() == video.frames[0].read_bytes()  # frames copied as they are
    convert(vis, "youtube_vis", tmp_path / "vis_again")
    again = load_dataset(tmp_path / "vis_again")
    for name, video in source.videos.items():  # classes survive a YouTube-VIS round trip
        assert {k: v[0] for k, v in again.frame_masks(name, 0).items()} == {k: v[0] for k, v in source.frame_masks(video, 0).items()}
    with pytest.raises(DataError, match="not a video dataset"):
        from omniseg.data.synthetic import write_synthetic

        convert(write_synthetic(tmp_path / "scenes", splits={"train": 2}, size=32), "davis", tmp_path / "nope")


def test_youtube_vos_layout(tmp_path):
    size = (24, 32)
    for split, video in (("train", "abc123"), ("valid", "def456")):
        for t in range(3):
            _frame(tmp_path / split / "JPEGImages" / video / f"{5 * t:05d}.jpg", size)
        labels = np.zeros(size, np.uint8)
        labels[_disc(size, 10, 10, 5)] = 1
        labels[_disc(size, 12, 24, 4)] = 2
        (tmp_path / split / "Annotations" / video).mkdir(parents=True)
        for t in (0, 2):  # every other frame annotated
            write_index_png(tmp_path / split / "Annotations" / video / f"{5 * t:05d}.png", labels, voc_palette())
        meta = {"videos": {video: {"objects": {"1": {"category": "zebra", "frames": ["00000"]}, "2": {"category": "ape", "frames": []}}}}}
        (tmp_path / split / "meta.json").write_text(json.dumps(meta))
    source = load_dataset(tmp_path)
    assert detect_format(tmp_path) == "youtube_vos" and source.info.class_names == ["background", "ape", "zebra"]
    assert source.split_videos == {"train": ["abc123"], "val": ["def456"]} and source.videos["abc123"].annotated == [0, 2]
    masks = source.frame_masks("abc123", 2)
    assert masks[1][0] == 2 and masks[2][0] == 1 and masks[1][1].sum() == _disc(size, 10, 10, 5).sum()
    meta["videos"][video]["objects"].pop("2")
    (tmp_path / "valid" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"object 2.*meta\.json"):
        load_dataset(tmp_path).frame_masks("def456", 0)


def _mots_lines(size, frames):
    lines = []
    for t in frames:
        car = _disc(size, 8, 6 + 2 * t, 4)
        person = _disc(size, 16, 26 - 2 * t, 3)
        ignore = np.zeros(size, bool)
        ignore[:3, :5] = True
        for obj_id, class_id, mask in ((1001, 1, car), (2005, 2, person), (10000, 10, ignore)):
            lines.append(f"{t} {obj_id} {class_id} {size[0]} {size[1]} {encode_rle(mask)['counts']}")
    return lines


@pytest.mark.parametrize("layout", ["kitti", "motschallenge"])
def test_mots_layouts(tmp_path, layout):
    size = (24, 32)
    first = 0 if layout == "kitti" else 1  # KITTI numbers frames from 0, MOTSChallenge from 1
    frames = range(first, first + 4)
    if layout == "kitti":
        txt, folder = tmp_path / "instances_txt" / "0002.txt", tmp_path / "training" / "image_02" / "0002"
    else:
        txt, folder = tmp_path / "train" / "MOTS20-02" / "gt" / "gt.txt", tmp_path / "train" / "MOTS20-02" / "img1"
    for t in frames:
        _frame(folder / f"{t:06d}.png", size)
    txt.parent.mkdir(parents=True, exist_ok=True)
    txt.write_text("\n".join(_mots_lines(size, frames)) + "\n")
    source = load_dataset(tmp_path, val_fraction=0.0)
    assert source.name == "mots" and source.info.class_names == ["background", "car", "pedestrian"]
    video = source.videos["0002" if layout == "kitti" else "MOTS20-02"]
    masks = source.frame_masks(video, 1)
    assert sorted(masks) == [1001, 2005] and masks[1001][0] == 1 and masks[2005][0] == 2
    assert np.array_equal(masks[1001][1], _disc(size, 8, 6 + 2 * (first + 1), 4))
    sample = source.dataset("all")[0]
    assert (sample["mask"][:3, :5] == source.info.ignore_index).all()  # the ignore region is void, not an object
    assert sorted(sample["instances"]["labels"].tolist()) == [1, 2]
    txt.write_text(txt.read_text() + f"{first} 3001 3 {size[0]} {size[1]} abc\n")
    with pytest.raises(DataError, match=r"gt\.txt|0002\.txt"):
        load_dataset(tmp_path, format="mots")


def test_cell_tracking_challenge_layout(tmp_path):
    size = (20, 28)
    (tmp_path / "01").mkdir()
    (tmp_path / "01_GT" / "TRA").mkdir(parents=True)
    for t in range(4):
        tifffile.imwrite(tmp_path / "01" / f"t{t:03d}.tif", (np.random.default_rng(t).random(size) * 4000).astype(np.uint16))
        labels = np.zeros(size, np.uint16)
        if t < 2:
            labels[_disc(size, 10, 8 + t, 4)] = 1  # the mother cell, frames 0-1
        else:
            labels[_disc(size, 6, 9, 3)] = 2  # its daughters, frames 2-3
            labels[_disc(size, 14, 9, 3)] = 3
        labels[_disc(size, 10, 22, 3)] = 4  # another cell throughout
        tifffile.imwrite(tmp_path / "01_GT" / "TRA" / f"man_track{t:03d}.tif", labels)
    (tmp_path / "01_GT" / "TRA" / "man_track.txt").write_text("1 0 1 0\n2 2 3 1\n3 2 3 1\n4 0 3 0\n")
    source = load_dataset(tmp_path, val_fraction=0.0)
    assert source.name == "cell_tracking" and source.lineage["01"][2] == (2, 3, 1)
    assert sorted(source.frame_masks("01", 0)) == [1, 4] and sorted(source.frame_masks("01", 3)) == [2, 3, 4]
    image = source.dataset("all")[0]["image"]
    assert image.shape == (3, *size) and image.dtype.is_floating_point  # 16-bit frames keep their precision
    (tmp_path / "01_GT" / "TRA" / "man_track.txt").write_text("1 0 1 0\n2 2 3 1\n3 3 3 1\n4 0 3 0\n")
    with pytest.raises(DataError, match=r"man_track002\.tif holds track 3 on frame 2.*frames 3\.\.3"):
        load_dataset(tmp_path, val_fraction=0.0).frame_masks("01", 2)


def test_video_frames_sampled_evenly_for_training(vis, tmp_path):
    """Long videos give at most ``frames_per_video`` evenly spaced training frames; validation keeps every frame."""
    from omniseg.data.formats.youtube_vis import YouTubeVISSource

    source = YouTubeVISSource(vis, frames_per_video=3)
    assert [item.extra["frame"] for item in source.items["train"][:3]] == [0, 2, 5]
    assert len(source.items["val"]) == 2 * 6
    with pytest.raises(ConfigError, match="not empty"):
        (tmp_path / "other.txt").write_text("mine")
        write_tracking_videos(tmp_path, splits={"train": 1}, frames=2, size=32)
