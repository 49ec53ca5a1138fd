"""A classical method over image files, what ``omniseg segment`` calls: region-id PNGs, boundary overlays and a
JSON record of the parameters, regions and seconds per image."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniseg.classical.methods import resolve_parameters, segment
from omniseg.core.atomic import write_text
from omniseg.data.imageio import read_label_png, rgb_uint8
from omniseg.errors import ConfigError, DataError
from omniseg.inference.prediction.inputs import collect_images
from omniseg.inference.writers import save_image
from omniseg.viz.overlay import boundary_overlay


def read_seeds(seeds: str | Path, image_path: Path) -> np.ndarray:
    """The marks of ``image_path``: ``seeds`` is an index PNG, or a folder holding one named as the image."""
    path = Path(seeds)
    if path.is_dir():
        path = path / f"{image_path.stem}.png"
        if not path.is_file():
            raise DataError(f"no seeds {path} for {image_path}; name each seed PNG after its image")
    values = read_label_png(path)[0]
    if values.ndim != 2:
        raise DataError(f"seeds {path} are a colour image; save them as an index (or palette) PNG with 0 = unmarked")
    return values.astype(np.int64)


def segment_images(
    inputs: Sequence[str | Path], method: str, out: str | Path, *, parameters: dict[str, Any] | None = None,
    seeds: str | Path | None = None, box: tuple[int, int, int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Segment every image of ``inputs`` (files and folders) with the classical ``method`` (see
    :data:`omniseg.classical.methods.METHODS`) and write ``out/<stem>.png`` (16-bit region ids),
    ``out/overlays/<stem>.png`` (boundaries on the image) and ``out/segment.json``, which is returned.

    ``seeds`` (an index PNG, or a folder of them named as the images) are the marks of watershed, the
    random walker and GrabCut; ``box`` is GrabCut's ``(left, top, right, bottom)``. ``progress(done, total)``
    is called after each image.

    Example:
        >>> segment_images(["photos/"], "felzenszwalb", "seg/", parameters={"scale": 300})  # doctest: +SKIP
    """
    try:
        chosen = resolve_parameters(method, dict(parameters or {}))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    images = collect_images(inputs)
    out = Path(out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    record = {"method": method, "parameters": chosen, "box": box, "seeds": None if seeds is None else str(seeds), "images": []}
    for done, path in enumerate(images, 1):
        image = rgb_uint8(path)  # high bit depth, read as 0..1: the classical methods take 8 bits
        marks = read_seeds(seeds, path) if seeds is not None else None
        start = time.perf_counter()
        try:
            labels = segment(image, method, chosen, seeds=marks, box=box)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None
        seconds = time.perf_counter() - start
        regions = int(labels.max()) + 1
        if regions > 65536:
            raise DataError(f"{path}: {regions} regions do not fit a 16-bit PNG; choose parameters giving fewer regions")
        save_image(out / f"{path.stem}.png", labels.astype(np.uint16))
        save_image(out / "overlays" / f"{path.stem}.png", boundary_overlay(image, labels))
        record["images"].append({"image": str(path), "labels": f"{path.stem}.png", "overlay": f"overlays/{path.stem}.png",
                                 "regions": regions, "seconds": round(seconds, 4)})
        if progress is not None:
            progress(done, len(images))
    record["seconds_per_image"] = round(float(np.mean([entry["seconds"] for entry in record["images"]])), 4)
    write_text(out / "segment.json", json.dumps(record, indent=2))
    return record
