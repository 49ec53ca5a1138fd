"""What tracking writes besides ``tracks.json``: one label PNG a frame (pixel value = object id, DAVIS's palette; a
16-bit PNG on a frame with an id above 255), the MP4 overlay (each object in its id's colour, with its id and the
trail of its last positions) and the contact sheet. The overlay is drawn after tracking by reading the video and the
PNGs again frame by frame, so memory does not grow with the video's length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.core.atomic import write_text, write_with
from omniseg.data.formats.voc import voc_palette
from omniseg.data.imageio import read_label_png, write_index_png
from omniseg.data.video import Mp4Writer, VideoFrames
from omniseg.errors import ConfigError, DataError
from omniseg.viz.overlay import overlay

TRAIL = 15  # frames of an object's path drawn behind it
LEGIBLE = 240  # pixels: a smaller video is drawn enlarged (by a whole factor), so that ids can be read


class RunState:
    """A resumable tracking run's ``out/state/`` folder: ``tracker.json`` (what the run was asked, where it got to) beside
    the files ``names`` the run keeps there. :meth:`begin` says whether to go on, start afresh or stop (finished)."""

    def __init__(self, out: Path, names: tuple[str, ...]) -> None:
        self.out, self.folder, self.names = out, out / "state", names

    def begin(self, asked: dict, overwrite: bool) -> tuple[dict | None, dict | None]:
        """``(saved state to go on from, or None; the finished run's tracks.json, or None)`` for a run asked ``asked``
        (refused when an unfinished run was asked something else); a fresh start clears the folder of our files."""
        path = self.folder / "tracker.json"
        saved = json.loads(path.read_text()) if path.is_file() and not overwrite else None
        if saved is not None and saved["asked"] != asked:
            raise ConfigError(f"{self.out} holds an unfinished tracking run with other prompts or options; give another --out, "
                              "or --overwrite to start again")
        if saved is None and not overwrite and (self.out / "tracks.json").is_file():
            return None, json.loads((self.out / "tracks.json").read_text())  # finished earlier
        (self.out / "masks").mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(exist_ok=True)
        if saved is None:  # a fresh run: whatever an earlier one left in the state folder is not ours to go on from
            self.clear()
        return saved, None

    def save(self, asked: dict, **values) -> None:
        write_text(self.folder / "tracker.json", json.dumps({"asked": asked, **values}))

    def clear(self, *, remove: bool = False) -> None:
        """Remove our files (and, with ``remove``, the folder when nothing else is in it)."""
        for name in ("tracker.json", *self.names):
            (self.folder / name).unlink(missing_ok=True)
        if remove:
            try:
                self.folder.rmdir()
            except OSError:
                pass


def id_palette(count: int = 256) -> list[tuple[int, int, int]]:
    """DAVIS's palette for ids 0..255 and stable, distinct colours beyond (an id keeps its colour in every frame)."""
    palette = voc_palette()
    rng = np.random.default_rng(0)
    extra = rng.integers(40, 256, (max(count - len(palette), 0), 3))
    return palette + [tuple(int(v) for v in c) for c in extra]


def write_label_frame(path: Path, labels: np.ndarray) -> None:
    """A frame's object ids as a palette PNG (16-bit greyscale when an id passes 255)."""
    if labels.max(initial=0) > 255:
        write_with(path, lambda target: Image.fromarray(labels.astype(np.uint16)).save(target, format="PNG"))
    else:
        write_with(path, lambda target: write_index_png(target, labels, voc_palette()))


def _centre(box: list[float], zoom: int) -> tuple[int, int]:
    x, y, w, h = box
    return int(round((x + w / 2) * zoom)), int(round((y + h / 2) * zoom))


def write_overlays(video: str | Path, out: Path, *, fps: float, contact_frames: int = 8, tracks: dict | None = None,
                   names: dict[str, str] | None = None, palette: list | None = None, background: int | None = 0,
                   count: int | None = None) -> None:
    """``overlay.mp4`` (every frame with its objects painted) and ``contact_sheet.png`` (``contact_frames`` evenly
    spaced overlays), read back from the video and ``masks/`` frame by frame. With ``tracks`` (tracks.json's
    ``objects``: id -> {"frames": {frame: {"box": [x, y, w, h], ...}}}) each object's id (and its ``names`` entry,
    e.g. its class) is written at its box and its path over the last frames drawn; ``palette`` colours the values
    (default: by id); ``count``: only the first frames (a run stopped early)."""
    import cv2

    with VideoFrames(video) as frames:
        count = min(len(frames), count or len(frames))
        chosen = set(np.linspace(0, count - 1, min(contact_frames, count)).round().astype(int).tolist())
        sheet, largest = [], max((int(k) for k in (tracks or {})), default=0)
        colours = palette or id_palette(max(256, largest + 1))
        zoom = -(-LEGIBLE // max(min(frames.height, frames.width), 1))
        scale = max(min(frames.height, frames.width) * zoom / 500, 0.8)
        with Mp4Writer(out / "overlay.mp4", fps, (frames.width * zoom, frames.height * zoom)) as writer:
            for index in range(count):
                frame = frames[index]
                path = out / "masks" / f"{index:05d}.png"
                if not path.is_file():
                    raise DataError(f"{path} is missing: the tracking did not reach frame {index}; run omniseg track again")
                labels, _, _ = read_label_png(path)
                painted = overlay(frame, labels, colours, alpha=0.5, background=background, ignore_index=-1)
                painted = np.ascontiguousarray(painted.repeat(zoom, 0).repeat(zoom, 1) if zoom > 1 else painted)
                for obj_id, entry in (tracks or {}).items():
                    here = entry["frames"].get(str(index))
                    if here is None or not here.get("visible", True):
                        continue
                    colour = tuple(int(c) for c in colours[int(obj_id) % len(colours)])
                    trail = [_centre(entry["frames"][str(t)]["box"], zoom) for t in range(max(0, index - TRAIL), index + 1)
                             if str(t) in entry["frames"] and entry["frames"][str(t)].get("visible", True)]
                    if len(trail) > 1:
                        cv2.polylines(painted, [np.array(trail, np.int32)], False, colour, max(1, int(2 * scale)), cv2.LINE_AA)
                    x, y = (v * zoom for v in here["box"][:2])
                    text = str(obj_id) + (f" {names[obj_id]}" if names and obj_id in names else "")
                    where = (int(x), max(int(y) - 3, int(12 * scale)))
                    for ink, width in (((0, 0, 0), max(1, int(scale)) + 2), ((255, 255, 255), max(1, int(scale)))):  # outlined
                        cv2.putText(painted, text, where, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, ink, width, cv2.LINE_AA)
                writer.write(painted)
                if index in chosen:
                    thumb = Image.fromarray(painted)
                    thumb.thumbnail((320, 320))
                    sheet.append(np.asarray(thumb))
    columns = min(4, len(sheet))
    rows = -(-len(sheet) // columns)
    height, width = sheet[0].shape[:2]
    canvas = np.full((rows * height, columns * width, 3), 255, np.uint8)
    for k, thumb in enumerate(sheet):
        r, c = divmod(k, columns)
        canvas[r * height: r * height + thumb.shape[0], c * width: c * width + thumb.shape[1]] = thumb
    write_with(out / "contact_sheet.png", lambda path: Image.fromarray(canvas).save(path))
