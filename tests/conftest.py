"""Shared fixtures: tiny generated datasets and a CLI runner. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.cli.main import main
from omniseg.data.synthetic import write_synthetic

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _restore_determinism():
    """Lightning's ``deterministic`` switches torch's global flag on; keep it from leaking between tests."""
    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """A small synthetic folder dataset: 24 train + 8 val scenes of 48x48."""
    return write_synthetic(tmp_path_factory.mktemp("shapes"), splits={"train": 24, "val": 8}, size=48, seed=3)


def write_pair(root: Path, split: str | None, stem: str, image: np.ndarray, mask: Image.Image | np.ndarray) -> None:
    """Write one image/mask pair into a folder dataset (``split=None``: the flat layout)."""
    image_dir = root / "images" / split if split else root / "images"
    mask_dir = root / "masks" / split if split else root / "masks"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_dir / f"{stem}.png")
    (mask if isinstance(mask, Image.Image) else Image.fromarray(mask)).save(mask_dir / f"{stem}.png")


def write_classes(root: Path, names: list[str], palette: list[list[int]] | None = None, ignore_index: int = 255) -> None:
    values = {"class_names": names, "ignore_index": ignore_index}
    if palette is not None:
        values["palette"] = palette
    (root / "classes.json").write_text(json.dumps(values))


@pytest.fixture
def run_cli(capsys):
    """Run ``omniseg ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def two_flat_regions() -> tuple[np.ndarray, np.ndarray]:
    """A 12x16 colour image of two flat regions (columns 0-8 and 9-15) and its labels."""
    image = np.full((12, 16, 3), 40, np.uint8)
    image[:, 9:] = (200, 180, 60)
    truth = np.zeros((12, 16), np.int64)
    truth[:, 9:] = 1
    return image, truth


def noisy_step(noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 30x40 grey step edge (60 | 180 at column 17) with Gaussian noise, and its labels."""
    clean = np.where(np.arange(40)[None, :] < 17, 60.0, 180.0) * np.ones((30, 1))
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, noise, clean.shape), 0, 255)
    return noisy, (clean > 100).astype(np.int64)
