"""Tracking by detection: the association (Kalman prediction, Hungarian matching, ByteTrack's second round, the lost
buffer, births and deaths, duplicate classes fused), ``track_objects`` on a synthetic video with an oracle detector
(files, resumption, evaluation), and the ``omniseg track`` / ``omniseg eval --task video`` commands on a real run."""

import json

import numpy as np
import pytest

from omniseg.data.synthetic_video import tracking_video, write_tracking_videos
from omniseg.inference.tracking.association import Tracker, TrackerConfig, suppress_duplicates
from omniseg.inference.tracking.kalman import BoxKalman


def _box_mask(box, size=64):
    mask = np.zeros((size, size), bool)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return mask


def _detections(boxes, scores=None, labels=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    masks = np.stack([_box_mask(b) for b in boxes]) if len(boxes) else np.zeros((0, 64, 64), bool)
    return masks, boxes, np.asarray(scores if scores is not None else [0.9] * len(boxes), float), np.asarray(labels or [1] * len(boxes))


def test_kalman_predicts_constant_velocity():
    kalman = BoxKalman(np.array([0, 0, 10, 10.0]))
    for t in range(1, 8):
        kalman.predict()
        kalman.update(np.array([3 * t, 0, 3 * t + 10, 10.0]))
    predicted = kalman.predict()
    assert predicted[0] == pytest.approx(24, abs=0.5) and predicted[2] == pytest.approx(34, abs=0.5)


def test_an_occluded_object_is_found_again_where_its_motion_took_it():
    """A square moving 4 px a frame is hidden for 3 frames and comes out 16 px further: the Kalman prediction carries
    the lost track there and the id holds; a tracker without motion looks where it was hidden and starts a new track.
    A second square passing it keeps its own id throughout."""
    def run(motion):
        tracker = Tracker(TrackerConfig(motion=motion, min_hits=1))
        ids = []
        for t in range(14):
            a, b = 2 + 4 * t, 56 - 4 * t
            boxes = ([[a, 20, a + 8, 28]] if not 6 <= t < 9 else []) + [[b, 30, b + 8, 38]]
            ids.append(sorted(o["id"] for o in tracker.update(*_detections(boxes))))
        return ids

    assert all(frame == ([1, 2] if not 6 <= t < 9 else [2]) for t, frame in enumerate(run(True)))
    assert run(False)[9] == [2, 3]


def test_lost_buffer_second_round_birth_and_death():
    config = TrackerConfig(min_hits=2, lost_frames=3)
    tracker = Tracker(config)
    assert [o["id"] for o in tracker.update(*_detections([[10, 10, 20, 20]]))] == [1]  # the first frame reports at once
    assert tracker.update(*_detections([[11, 10, 21, 20]]))[0]["id"] == 1
    assert tracker.update(*_detections([])) == []  # missed: lost, not ended
    assert tracker.update(*_detections([[13, 10, 23, 20]]))[0]["id"] == 1  # found again within the buffer: its id back
    # a weak detection (0.3, under high_score) keeps the track in the second round, but could not start one
    assert tracker.update(*_detections([[14, 10, 24, 20]], [0.3]))[0]["id"] == 1
    assert tracker.update(*_detections([[40, 40, 50, 50]], [0.3])) == []
    # a new confident object is reported from its second frame (min_hits) with a new id
    assert [o["id"] for o in tracker.update(*_detections([[40, 40, 50, 50]], [0.9]))] == []
    assert [o["id"] for o in tracker.update(*_detections([[41, 40, 51, 50]], [0.9]))] == [2]
    for _ in range(4):  # track 1 is missed for longer than lost_frames: it ends, and its place takes a new id
        tracker.update(*_detections([[41, 40, 51, 50]]))
    out = tracker.update(*_detections([[41, 40, 51, 50], [16, 10, 26, 20]]))
    assert [o["id"] for o in out] == [2]
    assert [o["id"] for o in tracker.update(*_detections([[41, 40, 51, 50], [16, 10, 26, 20]]))] == [2, 3]


def test_duplicate_classes_are_fused():
    """One object detected as two classes (0.5 and 0.3) is one detection scored 0.8; two same-class twins are not added."""
    masks, boxes, scores, labels = _detections([[10, 10, 20, 20], [10, 10, 20, 21], [10, 10, 21, 20], [40, 40, 50, 50]],
                                               [0.5, 0.3, 0.2, 0.6], [1, 2, 1, 3])
    kept_masks, _, kept_scores, kept_labels = suppress_duplicates(masks, boxes, scores, labels, 0.5)
    assert kept_labels.tolist() == [3, 1] and kept_scores.tolist() == pytest.approx([0.6, 0.8])


class OracleDetector:
    """A stand-in for an instance run's Predictor: each frame's truth objects as detections (found by the frame's
    pixels), optionally missing some at random."""

    task, volumetric = "instance", False

    def __init__(self, video, drop: float = 0.0, seed: int = 0):
        from omniseg.data.synthetic import synthetic_info

        self.info = synthetic_info()
        self.card = type("Card", (), {"architecture": "oracle"})()
        self.frames = {frame.tobytes(): k for k, frame in enumerate(video.frames)}
        self.video, self.drop, self.rng = video, drop, np.random.default_rng(seed)

    def predict_instances(self, frame, score_threshold=0.5):
        truth = self.video.tracks[self.frames[np.ascontiguousarray(frame).tobytes()]]
        ids = [k for k in sorted(truth) if self.rng.random() >= self.drop]
        masks = np.stack([truth[k] for k in ids]) if ids else np.zeros((0, *self.video.frames.shape[1:3]), bool)
        boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (np.nonzero(m) for m in masks)], float).reshape(-1, 4)
        return {"masks": masks, "boxes": boxes, "scores": np.full(len(ids), 0.9), "labels": np.array([self.video.labels[k] for k in ids])}


class Killed(Exception):
    """What stops a run in the middle, as a kill would."""


def killed_after(frames: int):
    """A progress callback that stops the run once ``frames`` frames are written."""
    def progress(done, total):
        if done == frames:
            raise Killed
    return progress


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return write_tracking_videos(tmp_path_factory.mktemp("videos"), splits={"train": 1, "valid": 2}, frames=20, size=64, seed=0)


def test_track_objects_writes_resumes_and_scores(videos, tmp_path):
    from omniseg.inference.evaluate.video import evaluate_video
    from omniseg.inference.tracking.track_detections import track_objects
    source_videos = [tracking_video(1, v, frames=20, size=64) for v in range(2)]
    frames_of = lambda v: sorted((videos / "valid" / "JPEGImages" / f"valid{v:03d}").iterdir())  # noqa: E731
    config = TrackerConfig(min_hits=1)
    whole = track_objects(OracleDetector(source_videos[0]), frames_of(0), tmp_path / "whole", tracker=config, checkpoint_every=7)

    with pytest.raises(Killed):
        track_objects(OracleDetector(source_videos[0]), frames_of(0), tmp_path / "resumed", tracker=config, checkpoint_every=7,
                      progress=killed_after(17))
    assert (tmp_path / "resumed" / "state" / "tracker.json").is_file() and not (tmp_path / "resumed" / "tracks.json").exists()
    resumed = track_objects(OracleDetector(source_videos[0]), frames_of(0), tmp_path / "resumed", tracker=config, checkpoint_every=7)
    assert resumed["objects"] == whole["objects"] and not (tmp_path / "resumed" / "state").exists()
    for k in range(20):
        assert (tmp_path / "resumed" / "masks" / f"{k:05d}.png").read_bytes() == (tmp_path / "whole" / "masks" / f"{k:05d}.png").read_bytes()
    assert {(tmp_path / "whole" / name).is_file() for name in ("overlay.mp4", "contact_sheet.png", "tracks.json")} == {True}
    assert set(whole["objects"]["1"]) == {"label", "class", "frames"}
    # the oracle's tracks score (nearly) perfectly; with a tenth of the detections missing, the lost buffer keeps ids
    predictions = tmp_path / "predictions"
    for v in range(2):
        track_objects(OracleDetector(source_videos[v]), frames_of(v), predictions / f"valid{v:03d}", tracker=config)
    report = evaluate_video(predictions, videos, split="val")
    assert report["HOTA"] > 0.97 and report["IDF1"] > 0.97 and report["J&F"] > 0.95 and report["IDSW"] == 0
    noisy = tmp_path / "noisy"
    for v in range(2):
        track_objects(OracleDetector(source_videos[v], drop=0.1), frames_of(v), noisy / f"valid{v:03d}", tracker=config)
    dropped = evaluate_video(noisy, videos, split="val")
    assert 0.8 < dropped["DetA"] < report["DetA"] and dropped["IDF1"] > 0.85 and json.loads((noisy / "video_metrics.json").read_text())["HOTA"] == dropped["HOTA"]


def test_track_and_eval_commands_on_a_run(run_cli, videos, tmp_path):
    """An (untrained) light Mask R-CNN run tracks a frame folder and is evaluated by the commands: the files and the
    table are there, whatever it finds."""
    import torch

    from omniseg.data.synthetic import synthetic_info
    from omniseg.engine.demo import LIGHT_DETECTOR
    from omniseg.models import create_model
    from omniseg.models.hub import ModelCard, save_model

    torch.manual_seed(0)
    kwargs = {**LIGHT_DETECTOR, "encoder": "resnet18", "encoder_weights": None, "num_classes": 5, "min_size": 64, "max_size": 64}
    model = create_model("maskrcnn", **kwargs)
    save_model(model, tmp_path / "run", ModelCard("maskrcnn", kwargs, synthetic_info(), task="instance"))
    frames = videos / "valid" / "JPEGImages" / "valid000"
    code, out, err = run_cli("track", tmp_path / "run", frames, "--out", tmp_path / "tracked", "--max-frames", "5", "--low-score", "0.0",
                             "--high-score", "0.0", "--birth-score", "0.0")
    assert code == 0, err
    summary = json.loads((tmp_path / "tracked" / "tracks.json").read_text())
    assert summary["frames"] == 5 and summary["task"] == "instance" and len(list((tmp_path / "tracked" / "masks").iterdir())) == 5
    code, out, err = run_cli("eval", "--task", "video", tmp_path / "run", "--data", videos, "--json", tmp_path / "video.json")
    assert code == 0, err
    report = json.loads((tmp_path / "video.json").read_text())
    assert set(report["videos"]) == {"valid000", "valid001"} and 0 <= report["HOTA"] <= 1
    code, _, err = run_cli("track", frames, "--out", tmp_path / "x")
    assert code == 2 and "trained run" in err


def test_sam2_carries_objects_between_detections(videos, tmp_path):
    """``--propagate sam2``: births are the detector's masks prompted to SAM 2 (a small SAM 2, random weights), ids
    follow SAM 2's memory, a frame's objects are SAM 2's masks, and a killed run resumes to the same tracks."""
    import torch

    from omniseg.inference.tracking.track_detections import track_objects
    from omniseg.models.promptable.sam2 import sam2_model
    from tests.test_sam2 import SMALL

    torch.manual_seed(0)
    model = sam2_model(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL).eval()
    video = tracking_video(1, 0, frames=20, size=64)
    frames = sorted((videos / "valid" / "JPEGImages" / "valid000").iterdir())[:8]
    config = TrackerConfig(min_hits=1)
    whole = track_objects(OracleDetector(video), frames, tmp_path / "whole", tracker=config, propagate=model, contact_frames=2)
    first = {int(k): v["frames"]["0"] for k, v in whole["objects"].items() if "0" in v["frames"]}
    assert sorted(first) == list(range(1, len(video.tracks[0]) + 1))  # every object of frame 0 born, ids from 1
    from pycocotools import mask as mask_utils

    born = sorted(mask_utils.area({"size": e["rle"]["size"], "counts": e["rle"]["counts"].encode()}) for e in first.values())
    assert born == sorted(int(m.sum()) for m in video.tracks[0].values())  # a birth is its detection's mask

    with pytest.raises(Killed):
        track_objects(OracleDetector(video), frames, tmp_path / "resumed", tracker=config, propagate=model, checkpoint_every=4,
                      progress=killed_after(6))
    resumed = track_objects(OracleDetector(video), frames, tmp_path / "resumed", tracker=config, propagate=model, checkpoint_every=4,
                            contact_frames=2)
    assert resumed["objects"] == whole["objects"]


def test_page_edits_join_tracks_and_follow_a_click_with_sam2(videos, tmp_path):
    """The page's corrections on a tracked folder: the track under a pixel, two tracks joined (refused while both are on
    one frame), and a click followed through the video by SAM 2 (a small one, random weights): a click on a track
    redraws that track, a click elsewhere adds one."""
    import torch

    from omniseg.data.imageio import read_label_png
    from omniseg.data.video import VideoFrames
    from omniseg.errors import ConfigError
    from omniseg.inference.tracking.edits import follow_click, merge_tracks, track_at
    from omniseg.inference.tracking.track_detections import track_objects
    from omniseg.models.promptable.sam2 import sam2_model
    from tests.test_sam2 import SMALL

    video = tracking_video(1, 0, frames=20, size=64)
    frames = sorted((videos / "valid" / "JPEGImages" / "valid000").iterdir())[:6]
    summary = track_objects(OracleDetector(video), frames, tmp_path, tracker=TrackerConfig(min_hits=1), contact_frames=2)
    ys, xs = np.nonzero(video.tracks[0][1])
    assert track_at(tmp_path, 0, xs[len(xs) // 2], ys[len(ys) // 2]) == 1
    ys, xs = np.nonzero(video.tracks[2][1])
    clicked = track_at(tmp_path, 2, xs[len(xs) // 2], ys[len(ys) // 2])
    with pytest.raises(ConfigError, match="both on frame 0"):
        merge_tracks(tmp_path, 2, 1)
    torch.manual_seed(0)
    model = sam2_model(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL).eval()
    with VideoFrames(frames) as opened:
        redrawn, _ = follow_click(tmp_path, opened, model, 2, xs[len(xs) // 2], ys[len(ys) // 2])
        empty = np.argwhere(read_label_png(tmp_path / "masks" / "00002.png")[0] == 0)[0]
        added, after = follow_click(tmp_path, opened, model, 2, float(empty[1]), float(empty[0]))
    assert redrawn == clicked > 0 and added == len(summary["objects"]) + 1 and str(added) in after["objects"]
    for t, entry in after["objects"][str(added)]["frames"].items():  # its frames' PNGs hold its pixels
        assert (read_label_png(tmp_path / "masks" / f"{int(t):05d}.png")[0] == added).sum() == entry["area"]


def test_a_semantic_run_on_video_writes_smoothed_classes(trained_rectangles_run, tmp_path):
    """A semantic run writes each frame's classes; with ``smooth`` a frame's classes are the argmax of the running
    average of the class probabilities (computed here by hand from the predictor's own probabilities)."""
    from PIL import Image

    from omniseg.data.imageio import read_label_png
    from omniseg.inference.tracking.track_detections import track_objects
    from tests.conftest import coloured_rectangles

    _, predictor, _, _ = trained_rectangles_run
    rng = np.random.default_rng(3)
    image, truth = coloured_rectangles(rng, 64, 80, 3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(3):
        noisy = np.clip(image.astype(int) + rng.normal(0, 25, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{k}.png")
    summary = track_objects(predictor, folder, tmp_path / "out", smooth=0.5, contact_frames=2)
    frames = sorted(folder.iterdir(), key=lambda p: int(p.stem))
    average = None
    for k, frame in enumerate(frames):
        probabilities = predictor.predict_proba(np.asarray(Image.open(frame))).numpy()
        average = probabilities if average is None else 0.5 * probabilities + 0.5 * average
        written = read_label_png(tmp_path / "out" / "masks" / f"{k:05d}.png")[0]
        assert np.array_equal(written, average.argmax(0))
        assert summary["areas"][str(k)] == {predictor.info.class_names[c]: int((written == c).sum()) for c in np.unique(written)}
    assert (written == truth).mean() > 0.9 and summary["task"] == "semantic"
