"""Procedural videos of moving shapes with exact object tracks (seeded: the same seed writes the same videos).

:func:`tracking_video` is the embedded default of video tracking: the still scenes' shapes (circle, square, triangle,
star; their classes) over a textured ground, entering from the edges, leaving, crossing, hiding one another (a shape
nearer the camera covers a farther one) and changing speed and direction; every frame's truth is each object's
visible mask under its track id. :func:`write_tracking_videos` writes them in the YouTube-VIS layout.
:func:`moving_shapes` is the simpler set of SAM 2's clip training: discs, squares and diamonds bouncing at constant
velocity, written in the DAVIS layout by :func:`write_moving_shapes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from omniseg.data.formats.voc import voc_palette
from omniseg.core.atomic import write_text
from omniseg.core.rle import coco_bbox, encode_rle
from omniseg.data.imageio import write_index_png
from omniseg.data.synthetic import CLASS_NAMES, _colour, _remove_if_empty, _shape_polygon, _smooth_noise, _texture
from omniseg.errors import ConfigError

SHAPES = ("disc", "square", "diamond")


def _shape_mask(shape: str, cy: float, cx: float, radius: float, size: int) -> np.ndarray:
    ys, xs = np.mgrid[:size, :size].astype(np.float32)
    dy, dx = np.abs(ys - cy), np.abs(xs - cx)
    if shape == "disc":
        return dy ** 2 + dx ** 2 <= radius ** 2
    if shape == "square":
        return (dy <= radius * 0.85) & (dx <= radius * 0.85)
    return dy + dx <= radius * 1.2


def moving_shapes(frames: int = 8, size: int = 64, *, max_objects: int = 2, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One video: ``(frames [H, W, 3] uint8, annotations [H, W] uint8 with object ids 1.. and 0 background)``."""
    if frames < 1 or size < 16 or max_objects < 1:
        raise ConfigError(f"moving shapes need frames >= 1, size >= 16 and max_objects >= 1, got {frames}, {size}, {max_objects}")
    rng = np.random.default_rng(seed)
    ground = (rng.integers(25, 75, (size, size, 3)) + np.linspace(0, 40, size)[None, :, None]).astype(np.uint8)
    count = int(rng.integers(1, max_objects + 1))
    objects = []
    for k in range(count):
        radius = float(rng.uniform(0.1, 0.18) * size)
        position = rng.uniform(radius, size - radius, 2)
        velocity = rng.uniform(-0.06, 0.06, 2) * size
        colour = np.array([(200, 60, 50), (60, 190, 80), (70, 110, 230), (230, 200, 40), (200, 80, 210)][k % 5]) + rng.integers(-20, 20, 3)
        objects.append([str(rng.choice(SHAPES)), position, velocity, radius, colour.clip(0, 255).astype(np.uint8)])
    images, annotations = [], []
    for _ in range(frames):
        image, labels = ground.copy(), np.zeros((size, size), np.uint8)
        for obj_id, (shape, position, velocity, radius, colour) in enumerate(objects, start=1):
            mask = _shape_mask(shape, position[0], position[1], radius, size)
            shade = rng.integers(-12, 12, (int(mask.sum()), 3))
            image[mask] = (colour.astype(np.int32) + shade).clip(0, 255).astype(np.uint8)
            labels[mask] = obj_id
            position += velocity
            for axis in range(2):  # bounce off the edges
                if not radius <= position[axis] <= size - radius:
                    velocity[axis] = -velocity[axis]
                    position[axis] = np.clip(position[axis], radius, size - radius)
        images.append(image)
        annotations.append(labels)
    return images, annotations


def write_moving_shapes(root: str | Path, *, videos: int = 8, frames: int = 8, size: int = 64, max_objects: int = 2,
                        seed: int = 0) -> Path:
    """``videos`` videos of :func:`moving_shapes` under ``root`` in the DAVIS layout (``JPEGImages/<video>/*.png``,
    lossless, and ``Annotations/<video>/*.png`` indexed in the DAVIS palette). Returns ``root``."""
    root = Path(root)
    palette = voc_palette()
    for v in range(videos):
        name = f"shapes{v:03d}"
        images, annotations = moving_shapes(frames, size, max_objects=max_objects, seed=seed * 100003 + v)
        (root / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / name).mkdir(parents=True, exist_ok=True)
        for t, (image, labels) in enumerate(zip(images, annotations)):
            Image.fromarray(image).save(root / "JPEGImages" / name / f"{t:05d}.png")
            write_index_png(root / "Annotations" / name / f"{t:05d}.png", labels, palette)
    return root


MIN_VISIBLE = 12  # pixels: an object showing less (a sliver at the edge, almost hidden) is not annotated on that frame


@dataclass
class TrackingVideo:
    """One video: ``frames`` uint8 [T, H, W, 3]; ``tracks[t]`` maps each object visible on frame ``t`` to its mask
    (bool [H, W], the visible part); ``labels`` maps each object (track id, from 1) to its class (1..4, as
    :data:`~omniseg.data.synthetic.CLASS_NAMES`)."""

    frames: np.ndarray
    tracks: list[dict[int, np.ndarray]]
    labels: dict[int, int]


def tracking_video(seed: int, index: int, *, frames: int = 40, size: int = 64, max_objects: int = 3) -> TrackingVideo:
    """The video numbered ``index`` of the set ``seed``: two to ``max_objects`` shapes at the start, and perhaps
    one more entering from an edge later; each moves with its own speed (1 to 3 % of the frame a frame), which changes
    now and then, bounces off the edges unless it is one that leaves, turns slowly, and lies at its own depth.

    Example:
        >>> video = tracking_video(0, 0, frames=5)
        >>> video.frames.shape, sorted(video.labels) == sorted({k for frame in video.tracks for k in frame})
        ((5, 64, 64, 3), True)
    """
    if frames < 1 or size < 32 or max_objects < 1:
        raise ConfigError(f"tracking videos need frames >= 1, size >= 32 and max_objects >= 1, got {frames}, {size}, {max_objects}")
    rng = np.random.default_rng([seed, index, 7])
    ground_colour = _colour(rng)
    ground = ground_colour * _texture(rng, size, 0.06)[..., None] + _smooth_noise(rng, size, 2)[..., None] * rng.uniform(10, 40)
    objects = []
    starting = int(rng.integers(min(2, max_objects), max_objects + 1))
    for k in range(starting + int(rng.integers(0, 2))):
        radius = float(rng.uniform(0.12, 0.19) * size)
        speed = float(rng.uniform(0.01, 0.03) * size)
        heading = rng.uniform(0, 2 * np.pi)
        if k < starting:
            start, position = 0, rng.uniform(radius, size - radius, 2)
        else:  # enters later from an edge, heading into the frame
            start = int(rng.integers(1, max(2, int(frames * 0.7))))
            side = int(rng.integers(4))
            along = rng.uniform(0.2, 0.8) * size
            position = np.array([[-radius, along], [size + radius, along], [along, -radius], [along, size + radius]][side], float)
            heading = [0.0, np.pi, np.pi / 2, -np.pi / 2][side] + rng.uniform(-0.5, 0.5)
        colour = _colour(rng)
        while np.abs(colour - ground_colour).sum() < 150:  # every shape stands out from the ground
            colour = _colour(rng)
        objects.append({"kind": int(rng.integers(1, len(CLASS_NAMES))), "radius": radius, "start": start, "position": position,
                        "velocity": speed * np.array([np.cos(heading), np.sin(heading)]), "colour": colour,
                        "angle": rng.uniform(0, 2 * np.pi), "spin": rng.uniform(-0.05, 0.05), "depth": rng.random(),
                        "leaves": k >= starting or rng.random() < 0.3, "shade": _texture(rng, size, 0.12),
                        "aspect": rng.uniform(0.85, 1.0)})
    images, tracks = np.zeros((frames, size, size, 3), np.uint8), []
    order = sorted(range(len(objects)), key=lambda k: objects[k]["depth"])  # far to near
    for t in range(frames):
        image = ground.astype(np.float32).copy()
        owner = np.zeros((size, size), np.int32)
        for k in order:
            obj = objects[k]
            if t < obj["start"]:
                continue
            shape_rng = np.random.default_rng([seed, index, k])  # the same outline every frame (the circle's aspect)
            polygon = _shape_polygon(obj["kind"], obj["position"][::-1], obj["radius"], obj["angle"], shape_rng)
            canvas = np.zeros((size, size), np.uint8)
            cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
            inside = canvas.astype(bool)
            image[inside] = (obj["colour"] * obj["shade"][..., None])[inside]
            owner[inside] = k + 1
        image += rng.normal(0, 4, image.shape)
        images[t] = np.clip(image, 0, 255).astype(np.uint8)
        visible = {}
        for k in range(len(objects)):
            mask = owner == k + 1
            if mask.sum() >= MIN_VISIBLE:
                visible[k + 1] = mask
        tracks.append(visible)
        for obj in objects:  # move on to the next frame
            if t < obj["start"]:
                continue
            if rng.random() < 0.06:  # a change of speed
                obj["velocity"] = obj["velocity"] * rng.uniform(0.5, 1.8)
                obj["velocity"] = obj["velocity"] * min(1.0, 0.045 * size / max(np.linalg.norm(obj["velocity"]), 1e-6))
            if rng.random() < 0.04:  # and of direction
                turn = rng.uniform(-1.0, 1.0)
                c, s = np.cos(turn), np.sin(turn)
                obj["velocity"] = np.array([[c, -s], [s, c]]) @ obj["velocity"]
            obj["position"] = obj["position"] + obj["velocity"]
            obj["angle"] += obj["spin"]
            inside_now = np.all((obj["position"] >= obj["radius"]) & (obj["position"] <= size - obj["radius"]))
            obj["entered"] = obj.get("entered", False) or inside_now
            if obj["entered"] and not obj["leaves"]:
                for axis in range(2):  # bounce off the edges
                    if not obj["radius"] <= obj["position"][axis] <= size - obj["radius"]:
                        obj["velocity"][axis] = -obj["velocity"][axis]
                        obj["position"][axis] = np.clip(obj["position"][axis], obj["radius"], size - obj["radius"])
    present = sorted({k for frame in tracks for k in frame})
    renumber = {k: i + 1 for i, k in enumerate(present)}  # track ids 1.. over the objects ever seen
    tracks = [{renumber[k]: mask for k, mask in frame.items()} for frame in tracks]
    return TrackingVideo(images, tracks, {renumber[k]: objects[k - 1]["kind"] for k in present})


VIDEO_MARKER = ".omniseg-synthetic-video.json"


def _remove_videos(root: Path, splits: dict[str, int], lengths: dict[str, int]) -> None:
    """Delete the files an earlier :func:`write_tracking_videos` wrote into ``root`` (``splits``: its video counts,
    ``lengths``: its frames a video), and the folders that leaves empty; anything else stays."""
    for split, count in splits.items():
        images = root / split / "JPEGImages"
        for v in range(count):
            for t in range(lengths[split]):
                (images / f"{split}{v:03d}" / f"{t:05d}.png").unlink(missing_ok=True)
            _remove_if_empty(images / f"{split}{v:03d}")
        (root / split / "instances.json").unlink(missing_ok=True)
        _remove_if_empty(images)
        _remove_if_empty(root / split)


def write_tracking_videos(root: str | Path, *, splits: dict[str, int] | None = None, frames: int | dict[str, int] = 40, size: int = 64,
                          max_objects: int = 3, seed: int = 0) -> Path:
    """Videos of :func:`tracking_video` in the YouTube-VIS layout: ``<split>/JPEGImages/<video>/00000.png`` (lossless)
    and ``<split>/instances.json`` (videos, per-frame RLE of each track, categories). Each split has its own seed
    stream; ``frames`` is the length of every video, or a length per split. A folder this function wrote with the same
    recipe is kept as it is, one it wrote with another is
    written again (only the files it wrote are removed); a folder with anything else in it is refused (nothing is
    deleted)."""
    root = Path(root)
    splits = splits or {"train": 24, "valid": 6}
    recipe = {"splits": dict(splits), "frames": frames, "size": size, "max_objects": max_objects, "seed": seed}
    marker = root / VIDEO_MARKER
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text())
            written = {str(split): int(count) for split, count in previous["splits"].items()}
            lengths = {split: int(previous["frames"][split] if isinstance(previous["frames"], dict) else previous["frames"]) for split in written}
        except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError):
            raise ConfigError(f"{marker} is unreadable, so what omniseg wrote in {root} is unknown; choose a new or empty folder "
                              "for the videos (nothing was deleted)") from None
        if previous == {**recipe, "complete": True}:
            return root
        _remove_videos(root, written, lengths)
    elif root.is_dir() and any(root.iterdir()):
        raise ConfigError(f"{root} is not empty and omniseg did not write it; choose a new or empty folder for the videos "
                          "(nothing was deleted)")
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**recipe, "complete": False}))
    categories = [{"id": k, "name": name} for k, name in enumerate(CLASS_NAMES) if k]
    for split_number, (split, count) in enumerate(splits.items()):
        videos, annotations = [], []
        length = frames[split] if isinstance(frames, dict) else frames
        for v in range(count):
            video = tracking_video(seed * 1000 + split_number, v, frames=length, size=size, max_objects=max_objects)
            name = f"{split}{v:03d}"
            folder = root / split / "JPEGImages" / name
            folder.mkdir(parents=True, exist_ok=True)
            for t, image in enumerate(video.frames):
                Image.fromarray(image).save(folder / f"{t:05d}.png")
            videos.append({"id": v + 1, "width": size, "height": size, "length": length,
                           "file_names": [f"{name}/{t:05d}.png" for t in range(length)]})
            for track_id, label in video.labels.items():
                masks = [frame.get(track_id) for frame in video.tracks]
                annotations.append({"id": len(annotations) + 1, "video_id": v + 1, "category_id": label, "iscrowd": 0,
                                    "height": size, "width": size,
                                    "segmentations": [encode_rle(m) if m is not None else None for m in masks],
                                    "bboxes": [coco_bbox(m) if m is not None else None for m in masks],
                                    "areas": [int(m.sum()) if m is not None else None for m in masks]})
        write_text(root / split / "instances.json", json.dumps({"videos": videos, "annotations": annotations, "categories": categories}))
    marker.write_text(json.dumps({**recipe, "complete": True}))
    return root
