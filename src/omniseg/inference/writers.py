"""Writing predictions: indexed palette PNG masks and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.data.imageio import write_index_png
from omniseg.data.sample import DatasetInfo
from omniseg.viz.overlay import overlay


def write_prediction(out_dir: str | Path, stem: str, image: np.ndarray, mask: np.ndarray, info: DatasetInfo) -> list[Path]:
    """Write ``<stem>.png`` (class ids, palette PNG) and ``<stem>_overlay.png``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path, overlay_path = out_dir / f"{stem}.png", out_dir / f"{stem}_overlay.png"
    write_index_png(mask_path, mask, info.palette)
    Image.fromarray(overlay(image, mask, info.palette, ignore_index=info.ignore_index)).save(overlay_path)
    return [mask_path, overlay_path]
