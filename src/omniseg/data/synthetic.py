"""Procedural shape scenes with semantic and instance truth: omniseg's embedded default data.

Each scene is a textured, shaded background with overlapping shapes (circle, square, triangle,
star) of random colour, size, rotation and texture, then blur and noise. Colours are drawn
independently of the class, so a model must learn shape, not colour. Scenes are a pure function
of ``(seed, index)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from omniseg.data.imageio import write_index_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo, Sample, make_sample
from omniseg.errors import DataError

CLASS_NAMES = ["background", "circle", "square", "triangle", "star"]
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25)]


def synthetic_info() -> DatasetInfo:
    """DatasetInfo of the synthetic scenes (all shapes are things, the background is stuff)."""
    return DatasetInfo(class_names=CLASS_NAMES, palette=PALETTE, ignore_index=DEFAULT_IGNORE_INDEX, things=[1, 2, 3, 4])


@dataclass
class Scene:
    """One synthetic scene: ``image`` uint8 [H, W, 3], ``semantic`` int64 [H, W],
    ``instance_masks`` bool [N, H, W] (visible parts, disjoint), ``instance_labels`` int64 [N]."""

    image: np.ndarray
    semantic: np.ndarray
    instance_masks: np.ndarray
    instance_labels: np.ndarray


def _shape_polygon(kind: int, center: np.ndarray, radius: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    if kind == 1:  # circle, slightly elliptical
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        aspect = rng.uniform(0.85, 1.0)
        pts = np.stack([np.cos(t), aspect * np.sin(t)], 1)
    elif kind == 2:  # square
        t = np.pi / 4 + np.arange(4) * np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == 3:  # triangle
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1) * 1.15
    else:  # five-pointed star
        t = np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.2, 0.5)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return center + radius * pts @ rot.T


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], [size, size]."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _texture(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    """A multiplicative texture in ``1 +- strength``: flat, stripes, checks or blotches."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(4)
    if kind == 0:
        return np.ones((size, size), np.float32)
    if kind == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        return 1 + strength * np.sign(np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period))
    if kind == 2:
        period = rng.uniform(4, 10)
        return 1 + strength * np.sign(np.sin(xx * np.pi / period) * np.sin(yy * np.pi / period))
    return 1 + strength * 1.2 * _smooth_noise(rng, size, int(rng.integers(6, 16)))


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(20, 235, 3).astype(np.float32)


def _place_shape(rng: np.random.Generator, kind: int, size: int, instance_ids: np.ndarray,
                 max_cover: float = 0.35, tries: int = 8) -> np.ndarray | None:
    """Pixels of a new shape that hides at most ``max_cover`` of any shape already drawn, so that
    shapes overlap without becoming unrecognisable; None if no such place was found."""
    for _ in range(tries):
        radius = rng.uniform(0.13, 0.27) * size
        center = rng.uniform(0.1 * size, 0.9 * size, 2)
        polygon = _shape_polygon(kind, center, radius, rng.uniform(0, 2 * np.pi), rng)
        canvas = np.zeros((size, size), np.uint8)
        cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        inside = canvas.astype(bool)
        if inside.sum() < 12:
            continue
        covered = np.bincount(instance_ids[inside], minlength=instance_ids.max() + 1)[1:]
        visible = np.bincount(instance_ids.ravel(), minlength=instance_ids.max() + 1)[1:]
        if not np.any(covered > max_cover * np.maximum(visible, 1)):
            return inside
    return None


def generate_scene(seed: int, index: int, *, size: int = 128, max_shapes: int = 4) -> Scene:
    """The scene numbered ``index`` of the set with ``seed``, ``size`` x ``size`` pixels.

    Example:
        >>> scene = generate_scene(0, 0, size=64)
        >>> scene.image.shape, scene.semantic.shape
        ((64, 64, 3), (64, 64))
    """
    rng = np.random.default_rng([seed, index])
    bg = _colour(rng)
    gradient = _smooth_noise(rng, size, 2)[..., None] * rng.uniform(10, 50)
    image = (bg * _texture(rng, size, 0.12)[..., None] + gradient).astype(np.float32)
    semantic = np.zeros((size, size), np.int64)
    instance_ids = np.zeros((size, size), np.int32)
    labels = []
    for _ in range(int(rng.integers(2, max_shapes + 1))):
        kind = int(rng.integers(1, len(CLASS_NAMES)))
        inside = _place_shape(rng, kind, size, instance_ids)
        if inside is None:
            continue
        colour = _colour(rng)
        while np.abs(colour - image[inside].mean(0)).sum() < 120:  # keep every shape visible
            colour = _colour(rng)
        shade = _texture(rng, size, 0.25)[..., None]
        image[inside] = (colour * shade)[inside]
        semantic[inside] = kind
        labels.append(kind)
        instance_ids[inside] = len(labels)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, rng.uniform(2, 12), image.shape).astype(np.float32)
    masks = np.stack([instance_ids == i + 1 for i in range(len(labels))]) if labels else np.zeros((0, size, size), bool)
    keep = masks.reshape(len(labels), -1).any(1) if labels else np.zeros(0, bool)
    return Scene(
        image=np.clip(image, 0, 255).astype(np.uint8),
        semantic=semantic,
        instance_masks=masks[keep],
        instance_labels=np.asarray(labels, np.int64)[keep],
    )


class SyntheticShapes(torch.utils.data.Dataset):
    """In-memory dataset of synthetic Samples (image, mask and instances).

    Args:
        num_samples: number of scenes.
        size: side of each square image in pixels.
        seed: scenes are a pure function of ``(seed, index)``; use different seeds for train and val.
    """

    def __init__(self, num_samples: int = 100, *, size: int = 128, seed: int = 0) -> None:
        self.num_samples, self.size, self.seed = num_samples, size, seed
        self.info = synthetic_info()

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        scene = generate_scene(self.seed, index, size=self.size)
        return make_sample(
            scene.image,
            mask=scene.semantic,
            instance_masks=scene.instance_masks,
            instance_labels=scene.instance_labels,
            sample_id=f"scene_{index:05d}",
        )


MARKER_FILE = ".omniseg-synthetic.json"  # says omniseg wrote the folder, with what recipe, and whether it finished


def _remove_scenes(root: Path, splits: dict[str, int]) -> None:
    """Delete the files an earlier :func:`write_synthetic` wrote into ``root`` (``splits``: its scene counts),
    and the folders that leaves empty; anything else stays."""
    for sub in ("images", "masks", "instances"):
        for split, count in splits.items():
            for index in range(count):
                (root / sub / split / f"{split}_{index:05d}.png").unlink(missing_ok=True)
            _remove_if_empty(root / sub / split)
        _remove_if_empty(root / sub)
    (root / "classes.json").unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def write_synthetic(
    root: str | Path, *, splits: dict[str, int] | None = None, size: int = 128, seed: int = 0
) -> Path:
    """Write scenes in the folder format: ``images/<split>/``, ``masks/<split>/`` (palette PNGs),
    ``instances/<split>/`` (16-bit instance-id PNGs, 0 = none) and ``classes.json``.

    Each split uses its own seed stream, so train and val never share a scene. ``root`` must be new or empty,
    or a folder this function wrote before (it holds :data:`MARKER_FILE`): one with the same scenes is kept
    as it is, another has the files it wrote replaced (only those). A folder with other content is refused;
    nothing of it is deleted.
    """
    root = Path(root)
    splits = splits or {"train": 400, "val": 100}
    recipe = {"splits": dict(splits), "size": size, "seed": seed}
    marker = root / MARKER_FILE
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file; pass a new or empty folder for the synthetic scenes")
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text())
            written = {str(split): int(count) for split, count in previous["splits"].items()}
        except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError):
            raise DataError(f"{marker} is unreadable, so what omniseg wrote in {root} is unknown; choose a new or empty "
                            "folder for the scenes (nothing was deleted)") from None
        if previous == {**recipe, "complete": True}:
            return root
        _remove_scenes(root, written)
    elif root.is_dir() and any(root.iterdir()):
        raise DataError(f"{root} is not empty and omniseg did not write it; choose a new or empty folder for the scenes "
                        "(nothing was deleted)")
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**recipe, "complete": False}))
    info = synthetic_info()
    for split_number, (split, count) in enumerate(splits.items()):
        for sub in ("images", "masks", "instances"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            scene = generate_scene(seed * 1000 + split_number, index, size=size)
            stem = f"{split}_{index:05d}"
            Image.fromarray(scene.image).save(root / "images" / split / f"{stem}.png")
            write_index_png(root / "masks" / split / f"{stem}.png", scene.semantic, info.palette)
            ids = np.zeros((size, size), np.uint16)
            for i, inst in enumerate(scene.instance_masks):
                ids[inst] = i + 1
            Image.fromarray(ids).save(root / "instances" / split / f"{stem}.png")
    (root / "classes.json").write_text(json.dumps(info.to_dict(), indent=2))
    marker.write_text(json.dumps({**recipe, "complete": True}))
    return root
