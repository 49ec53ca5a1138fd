"""The server's limits, each a setting with a safe default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerSettings:
    """Limits and places.

    Attributes:
        max_upload_bytes: larger uploads are refused with 413.
        max_video_bytes: larger videos are refused with 413.
        max_pixels: larger images (width x height, read from the header before decoding) are refused with 413.
        cache_bytes: the embeddings of promptable models kept for later prompts, least recently used first out.
        workers: inference calls running at once; further requests wait their turn.
        label_dir: where labelled objects are saved as COCO (None: saving is off).
        kept_logits: the last masks' low-resolution logits kept for follow-up clicks (each ``[1, 256, 256]`` float32,
            256 KiB), least recently used first out.
        prompt_engines: offer the weight-free prompt engines (GrabCut, the random walker) as promptable models, so the
            page labels by clicks before any Segment Anything weights are at hand.
    """

    max_upload_bytes: int = 25 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024
    max_pixels: int = 40_000_000
    cache_bytes: int = 512 * 1024 * 1024
    workers: int = 2
    label_dir: Path | None = None
    kept_logits: int = 256
    prompt_engines: bool = True
