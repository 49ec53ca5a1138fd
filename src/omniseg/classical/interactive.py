"""Interactive segmentation from a user's marks: GrabCut (Rother et al., 2004; OpenCV) from a box and/or
scribbles, and the random walker (Grady, 2006; scikit-image) from seeds.

Marks share one convention: a ``[H, W]`` int array with 0 = unmarked and value v > 0 = "this pixel belongs
to label v - 1"; for GrabCut 1 is background and 2 foreground. Results are labels ``[H, W]`` int64.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.segmentation import random_walker

from omniseg.classical.images import image_and_channel_axis, unit_values


def _checked_marks(marks: np.ndarray | None, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if marks is None:
        return None
    marks = np.asarray(marks)
    if marks.shape != shape:
        raise ValueError(f"the {what} are {marks.shape} but the image is {shape}; draw them on the image's grid")
    if marks.dtype.kind not in "iub":
        raise ValueError(f"the {what} must be integers (0 = unmarked, v = label v - 1), got {marks.dtype}")
    if (marks < 0).any():
        raise ValueError(f"the {what} hold negative values ({int(marks.min())}); use 0 for unmarked pixels")
    return marks


def grabcut_segmentation(image: np.ndarray, *, box: tuple[int, int, int, int] | None = None, scribbles: np.ndarray | None = None,
                         iterations: int = 5, seed: int = 0) -> np.ndarray:
    """Foreground (1) / background (0) by GrabCut: colour Gaussian mixtures of the two sides alternate with
    a graph cut, ``iterations`` times.

    Args:
        box: ``(left, top, right, bottom)`` pixel bounds (right/bottom exclusive): outside is background,
            inside probably foreground.
        scribbles: marks (1 = surely background, 2 = surely foreground, 0 = unmarked); they override the box.
            Without a box, unmarked pixels start as probably background.
        seed: OpenCV's random generator (its k-means start of the mixtures).
    """
    values, channel_axis = image_and_channel_axis(image)
    values = values if channel_axis is not None else np.repeat(values[..., None], 3, 2)
    if values.dtype != np.uint8:
        top = 255.0 if values.max() > 1.0 else 1.0
        values = np.clip(np.round(values.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    height, width = values.shape[:2]
    scribbles = _checked_marks(scribbles, (height, width), "scribbles")
    if box is None and scribbles is None:
        raise ValueError("GrabCut needs a box (left, top, right, bottom) or scribbles (1 background, 2 foreground)")
    mask = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    if box is not None:
        left, top, right, bottom = (int(v) for v in box)
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(f"box {tuple(box)} is not inside the {width}x{height} image as (left, top, right, bottom) with left < right")
        mask[:] = cv2.GC_BGD
        mask[top:bottom, left:right] = cv2.GC_PR_FGD
    if scribbles is not None:
        if (scribbles > 2).any():
            raise ValueError(f"GrabCut scribbles are 1 (background) or 2 (foreground), got {int(scribbles.max())}")
        mask[scribbles == 1] = cv2.GC_BGD
        mask[scribbles == 2] = cv2.GC_FGD
    foreground = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if foreground.all() or not foreground.any():
        raise ValueError("GrabCut needs both background and foreground pixels to start: mark both, or use a box smaller than the image")
    cv2.setRNGSeed(seed)
    background_model, foreground_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(np.ascontiguousarray(values), mask, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.int64)


def random_walker_segmentation(image: np.ndarray, seeds: np.ndarray, *, beta: float = 130.0, solver: str = "auto",
                               tolerance: float = 1e-3) -> np.ndarray:
    """Labels ``[H, W]`` int64: each pixel takes the seed label (value - 1) that a random walker leaving it most
    probably reaches first, walking to neighbours with probability falling as ``exp(-beta * colour step^2)``
    (colour in 0..1 units, scikit-image). Every seed label 1..K must mark at least one pixel.

    ``solver``: "direct" (one sparse LU factorisation shared by all labels: fast, memory grows with the
    image), "cg" (conjugate gradient with a Jacobi preconditioner per label, to ``tolerance``: lean, about
    10x slower on a 481x321 photograph) or "auto" (direct up to 2 megapixels)."""
    if solver not in ("auto", "direct", "cg"):
        raise ValueError(f"solver must be 'auto', 'direct' or 'cg', got {solver!r}")
    values, channel_axis = image_and_channel_axis(image)
    values = unit_values(values)
    seeds = _checked_marks(seeds, values.shape[:2], "seeds")
    present = np.unique(seeds[seeds > 0])
    if len(present) < 2:
        raise ValueError(f"the random walker needs seeds of at least two labels, got {present.tolist()}")
    if len(present) != present[-1]:
        missing = sorted(set(range(1, int(present[-1]) + 1)) - set(present.tolist()))
        raise ValueError(f"seed labels must be 1..K with every one used; {missing} mark no pixel")
    direct = solver == "direct" or (solver == "auto" and seeds.size <= 2_000_000)
    labels = random_walker(values, seeds.astype(np.int32), beta=beta, mode="bf" if direct else "cg_j", tol=tolerance,
                           channel_axis=channel_axis)
    return labels.astype(np.int64) - 1
