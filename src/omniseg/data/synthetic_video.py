"""Procedural videos of moving shapes with exact object masks, written in the DAVIS layout (seeded: the same seed
writes the same videos). Each video has a textured ground and one to ``max_objects`` shapes (discs, squares,
diamonds) of distinct colours, each moving at its own constant velocity and bouncing off the frame's edges; a later
object passes over an earlier one, hiding part of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.data.formats.voc import voc_palette
from omniseg.data.imageio import write_index_png
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
