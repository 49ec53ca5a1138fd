"""The SAM 2 video predictor against the official one (same small random model, the official's memory attention
patched to read its bfloat16 memories in float32, holes left unfilled on both sides): two objects, the second
prompted on frame 4, a correction click on frame 7 re-propagated from there; equal masks on every frame. And its own
behaviour: streaming memory, objects joining after propagation, bad prompts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.errors import ConfigError
from tests.test_sam2 import SMALL, small_official_sam2

sam2 = pytest.importorskip("sam2")


def moving_scene(count: int = 10, size: int = 128) -> list[np.ndarray]:
    """A yellow square moving right and a cyan disc moving down on a textured ground."""
    rng = np.random.default_rng(0)
    ground = rng.integers(20, 70, (size, size, 3), dtype=np.uint8)
    ys, xs = np.mgrid[:size, :size]
    frames = []
    for k in range(count):
        frame = ground.copy()
        frame[30:60, 10 + 5 * k: 40 + 5 * k] = (230, 200, 40)
        frame[(ys - (20 + 6 * k)) ** 2 + (xs - 95) ** 2 <= 14 ** 2] = (40, 200, 230)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def models():
    from omniseg.models.promptable.sam2 import sam2_model

    torch.manual_seed(0)
    official = small_official_sam2()
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.mul_(0.5).add_(torch.randn_like(parameter) * 0.05)
        official.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(3.0)
    ours = sam2_model(image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours.eval()


def official_predictor(official):
    """The official video predictor around the same weights (as build_sam2_video_predictor configures it, holes unfilled,
    a correction click making its frame a conditioning frame)."""
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    predictor = SAM2VideoPredictor.__new__(SAM2VideoPredictor)
    predictor.__dict__.update(official.__dict__)
    predictor.fill_hole_area, predictor.non_overlap_masks = 0, False
    predictor.clear_non_cond_mem_around_input, predictor.add_all_frames_to_correct_as_cond = False, True
    predictor.binarize_mask_from_pts_for_mem_enc = True
    return predictor.eval()


def test_two_objects_and_a_correction_give_the_official_masks(models, tmp_path, monkeypatch):
    from sam2.modeling.memory_attention import MemoryAttention

    from omniseg.inference.promptable.video_predictor import VideoPredictor

    forward = MemoryAttention.forward  # on a CPU the official predictor fails on its own bfloat16 memories: read them in float32
    monkeypatch.setattr(MemoryAttention, "forward", lambda self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0:
                        forward(self, curr, memory.float(), curr_pos, memory_pos, num_obj_ptr_tokens))
    official, ours = models
    frames = moving_scene()
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{k}.jpg", quality=95)
    decoded = [np.asarray(Image.open(tmp_path / f"{k}.jpg").convert("RGB")) for k in range(len(frames))]  # as the official reads them
    reference = official_predictor(official)
    state = reference.init_state(str(tmp_path))
    predictor = VideoPredictor(ours, device="cpu", fill_hole_area=0, keep_frames=None, precision="32").start(decoded)
    prompts = [(0, 1, {"points": [[25, 45]], "labels": [1]}), (4, 2, {"points": [[95, 44]], "labels": [1]})]
    with torch.inference_mode():
        for frame, obj_id, prompt in prompts:
            _, ids, expected = reference.add_new_points_or_box(state, frame, obj_id, **prompt)
            _, found_ids, found = predictor.add_prompt(frame, obj_id, **prompt)
            assert found_ids == list(ids) and (found == (expected[:, 0] > 0).numpy()).all()
        expected = {t: (ids, m[:, 0] > 0) for t, ids, m in reference.propagate_in_video(state)}
    found = {t: (ids, m) for t, ids, m in predictor.propagate()}
    assert sorted(found) == sorted(expected) == list(range(10))
    for t in range(10):
        assert found[t][0] == list(expected[t][0]) and (found[t][1] == expected[t][1].numpy()).all(), f"frame {t}"
    assert found[9][1][0].sum() > 50 and found[9][1][1].sum() > 50  # both objects still masked at the end
    correction = {"points": [[60, 45], [5, 5]], "labels": [1, 0], "clear": False}
    with torch.inference_mode():
        _, _, expected_7 = reference.add_new_points_or_box(state, 7, 1, points=correction["points"], labels=correction["labels"],
                                                          clear_old_points=False)
        expected = {t: m[:, 0] > 0 for t, _, m in reference.propagate_in_video(state, start_frame_idx=7)}
    _, _, found_7 = predictor.add_prompt(7, 1, **correction)
    assert (found_7 == (expected_7[:, 0] > 0).numpy()).all()
    found = {t: m for t, _, m in predictor.propagate(start=7)}
    assert sorted(found) == [7, 8, 9] and all((found[t] == expected[t].numpy()).all() for t in found)


def test_memory_stays_bounded_and_objects_join_after_propagation(models):
    from omniseg.inference.promptable.video_predictor import VideoPredictor

    _, ours = models
    class Reader:  # frames read by index, each read recorded (an open video file reads this way)
        def __init__(self, frames: list) -> None:
            self.frames, self.reads = frames, []

        def __len__(self) -> int:
            return len(self.frames)

        def __getitem__(self, index: int):
            self.reads.append(index)
            return self.frames[index]

    frames = Reader(moving_scene(30))
    predictor = VideoPredictor(ours, device="cpu", keep_frames=16).start(frames)
    predictor.add_prompt(0, 1, box=[8, 28, 42, 62])
    assert frames.reads == [0, 0]  # the size, then the prompted frame: nothing read ahead
    tracked = [t for t, ids, masks in predictor.propagate()]
    assert tracked == list(range(30)) and len(predictor.objects[1].tracked) <= 17  # old frames' outputs dropped
    assert frames.reads[2:] == list(range(1, 30))  # each frame decoded once, when it is needed
    assert predictor.objects[1].tracked[29]["maskmem_features"].dtype == torch.bfloat16  # half the memory
    _, ids, masks = predictor.add_prompt(20, 7, points=[[100, 100]], labels=[1])  # a new object, no reset
    assert ids == [1, 7] and masks.shape == (2, 128, 128)
    assert [ids for _, ids, _ in predictor.propagate(start=20, max_frames=3)] == [[1, 7]] * 3
    predictor.remove_object(7)
    assert list(predictor.objects) == [1]


def test_bad_prompts_are_one_line_errors(models):
    from omniseg.inference.promptable.video_predictor import VideoPredictor

    predictor = VideoPredictor(models[1], device="cpu").start(moving_scene(5))
    for call, message in ((lambda: predictor.add_prompt(5, 1, points=[[1, 1]]), "frame 5 is outside the video"),
                          (lambda: predictor.add_prompt(0, 1, points=[[200, 1]]), "is outside the 128 x 128 frame"),
                          (lambda: predictor.add_prompt(0, 1), "needs clicks"),
                          (lambda: predictor.add_prompt(0, 1, points=[[1, 1], [2, 2]], labels=[1]), "2 points but 1 labels"),
                          (lambda: predictor.add_prompt(0, 1, mask=np.ones((4, 4), bool)), "the mask is (4, 4)"),
                          (lambda: next(predictor.propagate()), "add a prompt first"),
                          (lambda: predictor.remove_object(3), "no object 3")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            call()


def test_omniseg_track_writes_masks_tracks_an_overlay_and_a_contact_sheet(models, tmp_path, run_cli):
    import json

    from omniseg.core.info import DatasetInfo
    from omniseg.data.video import Mp4Writer, VideoFrames
    from omniseg.models import ModelCard, save_model

    kwargs = dict(size=None, image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    save_model(models[1], tmp_path / "sam2_run", ModelCard("sam2", kwargs, DatasetInfo(["background", "object"], ignore_index=255),
                                                           task="promptable"))
    with Mp4Writer(tmp_path / "scene.mp4", 10, (128, 128)) as writer:
        for frame in moving_scene(12):
            writer.write(frame)
    code, out, err = run_cli("track", tmp_path / "scene.mp4", "--model", tmp_path / "sam2_run", "--point", "3:40,45", "--box",
                             "3:80,30,112,70:2", "--out", tmp_path / "tracked", "--device", "cpu")
    assert code == 0, err
    masks = sorted((tmp_path / "tracked" / "masks").glob("*.png"))
    assert [p.stem for p in masks] == [f"{k:05d}" for k in range(12)]  # frames before the prompt tracked backwards
    tracks = json.loads((tmp_path / "tracked" / "tracks.json").read_text())
    assert tracks["frames"] == 12 and sorted(tracks["objects"]) == ["1", "2"]
    from pycocotools import mask as mask_utils

    from omniseg.data.imageio import read_label_png

    labels = read_label_png(masks[3])[0]
    for obj_id, per_frame in tracks["objects"].items():
        entry = per_frame["frames"]["3"]
        decoded = mask_utils.decode({**entry["rle"], "counts": entry["rle"]["counts"].encode()}).astype(bool)
        assert entry["area"] == decoded.sum() and ((labels == int(obj_id)) <= decoded).all()  # the PNG holds the RLE's pixels
    assert len(VideoFrames(tmp_path / "tracked" / "overlay.mp4")) == 12
    assert (tmp_path / "tracked" / "contact_sheet.png").stat().st_size > 1000
    code, _, err = run_cli("track", tmp_path / "scene.mp4", "--model", tmp_path / "sam2_run", "--point", "30:4,4", "--out", tmp_path / "x")
    assert code == 2 and "a prompt on frame 30, but" in err and "has frames 0..11" in err
    Image.fromarray(np.full((128, 128), 255, np.uint8)).save(tmp_path / "m.png")
    code, _, err = run_cli("track", tmp_path / "scene.mp4", "--model", tmp_path / "sam2_run", "--point", "3:4,4", "--mask",
                           f"3:{tmp_path / 'm.png'}", "--out", tmp_path / "x")
    assert code == 2 and "object 1 has mask and point prompts on frame 3, which contradict each other" in err


def test_a_killed_track_resumes_where_it_stopped_and_writes_what_an_uninterrupted_run_writes(models, tmp_path):
    from omniseg.core.info import DatasetInfo
    from omniseg.data.imageio import read_label_png
    from omniseg.inference.tracking.track_prompts import VideoPrompt, track_video
    from omniseg.models import ModelCard, save_model

    kwargs = dict(size=None, image_size=128, d_model=32, mem_dim=16, memory_layers=2, memory_feedforward=64, **SMALL)
    run = tmp_path / "sam2_run"
    save_model(models[1], run, ModelCard("sam2", kwargs, DatasetInfo(["background", "object"], ignore_index=255), task="promptable"))
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, frame in enumerate(moving_scene(14)):
        Image.fromarray(frame).save(frames / f"{k}.png")
    prompts = [VideoPrompt(5, 1, "point", (40.0, 45.0, 1)), VideoPrompt(5, 2, "box", (80.0, 40.0, 112.0, 80.0))]
    whole = track_video(run, frames, tmp_path / "whole", prompts, device="cpu", checkpoint_every=3)

    class Killed(Exception):
        pass

    def kill_at(count):
        def progress(done, total):
            if done == count:
                raise Killed
        return progress

    for count in (7, 11):  # killed in the forward pass (frames 5..13), then in the backward one (frames 4..0)
        with pytest.raises(Killed):
            track_video(run, frames, tmp_path / "resumed", prompts, device="cpu", checkpoint_every=3, progress=kill_at(count))
        assert (tmp_path / "resumed" / "state" / "tracker.json").is_file()
    resumed = track_video(run, frames, tmp_path / "resumed", prompts, device="cpu", checkpoint_every=3)
    assert resumed == whole and not (tmp_path / "resumed" / "state").exists()
    for k in range(14):
        assert (read_label_png(tmp_path / "resumed" / "masks" / f"{k:05d}.png")[0]
                == read_label_png(tmp_path / "whole" / "masks" / f"{k:05d}.png")[0]).all(), k
    with pytest.raises(Killed):
        track_video(run, frames, tmp_path / "again", prompts, device="cpu", checkpoint_every=3, progress=kill_at(7))
    with pytest.raises(ConfigError, match="holds an unfinished tracking run with other prompts"):
        track_video(run, frames, tmp_path / "again", prompts[:1], device="cpu")
