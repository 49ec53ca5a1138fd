"""Videos read frame by frame: a written MP4 read back in order and by index, frame folders in natural order, TIFF
stacks, the real clip in ../shared, and one-line errors for a missing, unreadable or truncated video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from omniseg.data.video import Mp4Writer, VideoFrames, natural_key
from omniseg.errors import DataError

COFFEE = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "coffee.mp4"


def moving_square(count: int = 12, size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    """Frames of a bright square moving 4 pixels a frame on a dark ground (MPEG-4 keeps such edges within a few levels)."""
    frames = []
    for k in range(count):
        frame = np.full((size[1], size[0], 3), 20, np.uint8)
        frame[16:40, 8 + 4 * k: 32 + 4 * k] = (230, 200, 40)
        frames.append(frame)
    return frames


def square_left(frame: np.ndarray) -> int:
    """The square's left edge: the first column whose middle row is bright."""
    return int(np.argmax(frame[28, :, 0] > 128))


def test_a_written_mp4_reads_back_in_order_and_by_index(tmp_path):
    frames = moving_square()
    with Mp4Writer(tmp_path / "clip.mp4", fps=10, size=(96, 64)) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames == 12 and not list(tmp_path.glob(".*tmp*"))
    with VideoFrames(tmp_path / "clip.mp4") as video:
        assert (len(video), video.width, video.height, video.fps) == (12, 96, 64, 10.0)
        decoded = list(video)
        assert [square_left(f) for f in decoded] == [8 + 4 * k for k in range(12)]
        assert np.abs(decoded[5].astype(int) - frames[5]).mean() < 3  # lossy, but the same picture
        for index in (9, 2, 2, 11, 0, -1):  # seeks back and forth give the frame decoded in order
            assert square_left(video[index]) == square_left(decoded[index])
        with pytest.raises(IndexError, match="frame 12 of .*clip.mp4, which has 12 frames"):
            video[12]


def test_frame_folders_read_in_natural_order_and_tiff_stacks_by_page(tmp_path):
    frames = moving_square(11)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{k}.png")
    assert [p.name for p in sorted(tmp_path.glob("*.png"), key=natural_key)][:3] == ["frame0.png", "frame1.png", "frame2.png"]
    video = VideoFrames(tmp_path)
    assert len(video) == 11 and video.kind == "frames" and all((video[k] == frames[k]).all() for k in (0, 2, 10))
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([f[..., 0] for f in frames]))  # a grey stack
    stack = VideoFrames(tmp_path / "stack.tif")
    assert len(stack) == 11 and stack[3].shape == (64, 96, 3) and (stack[3][..., 1] == frames[3][..., 0]).all()


def test_bad_videos_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        VideoFrames(tmp_path / "missing.mp4")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="noise.mp4 cannot be read .* re-encode it"):
        VideoFrames(tmp_path / "noise.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no frames"):
        VideoFrames(tmp_path / "empty")


@pytest.mark.skipif(not COFFEE.is_file(), reason="../shared/data/video/coffee.mp4 is absent")
def test_the_real_clip_streams_without_holding_it(tmp_path):
    with VideoFrames(COFFEE) as video:
        assert (len(video), video.width, video.height) == (287, 1280, 720) and abs(video.fps - 29.97) < 0.01
        last = video[286]
        assert last.shape == (720, 1280, 3) and last.dtype == np.uint8 and last.std() > 5
        middle = video[143]
        assert np.abs(video[143].astype(int) - middle).max() == 0  # a frame read twice is the same frame
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(COFFEE.read_bytes()[: COFFEE.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.mp4"):
        with VideoFrames(truncated) as video:
            for _ in video:
                pass
