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


TINY_SAM = dict(img_size=128, embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), window_size=4, prompt_embed_dim=32,
                decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32)


def rectangle_scenes(count: int, size: int, rng: np.random.Generator) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Dark images holding three bright rectangles each, with their visible masks."""
    out = []
    for _ in range(count):
        image = np.full((size, size, 3), rng.integers(0, 60, 3), np.uint8)
        masks: list[np.ndarray] = []
        for _ in range(3):
            h, w = rng.integers(size // 6, size // 2, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            image[y:y + h, x:x + w] = rng.integers(100, 255, 3)
            mask = np.zeros((size, size), bool)
            mask[y:y + h, x:x + w] = True
            masks = [m & ~mask for m in masks] + [mask]
        out.append((image, [m for m in masks if m.any()]))
    return out


@pytest.fixture(scope="session")
def trained_tiny_sam() -> torch.nn.Module:
    """A tiny Segment Anything (TINY_SAM) trained for 400 steps (about 10 s) to segment rectangles from a click,
    so its masks are real shapes, not the all-or-nothing masks of random weights."""
    from omniseg.models import create_model

    torch.manual_seed(0)
    model = create_model("sam", **TINY_SAM).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    size = TINY_SAM["img_size"]
    for _ in range(400):
        batch = rectangle_scenes(8, size, rng)
        points, targets = [], []
        for _, masks in batch:
            mask = masks[rng.integers(len(masks))]
            ys, xs = np.nonzero(mask)
            k = rng.integers(len(ys))
            points.append([xs[k], ys[k]])
            targets.append(mask)
        x = torch.tensor(np.stack([image for image, _ in batch])).permute(0, 3, 1, 2).float()
        embedding = model.image_encoder(model.preprocess(x))
        sparse, dense = model.prompt_encoder((torch.tensor(points, dtype=torch.float32)[:, None], torch.ones(8, 1)), None, None)
        low, iou = model.mask_decoder.predict_masks(embedding, model.prompt_encoder.get_dense_pe(), sparse, dense)
        target = torch.nn.functional.interpolate(torch.tensor(np.stack(targets))[:, None].float(), size=low.shape[-2:], mode="area")
        overlap = ((low > 0) & (target > 0.5)).sum((2, 3)) / ((low > 0) | (target > 0.5)).sum((2, 3)).clamp(min=1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(low, target.expand_as(low)) + torch.nn.functional.mse_loss(iou, overlap)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


YELLOW, CYAN = (220, 200, 40), (60, 200, 220)


def coloured_rectangles(rng: np.random.Generator, height: int, width: int, count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A dark noisy image with ``count`` yellow (class 1) and cyan (class 2) rectangles, and its class mask."""
    image = np.full((height, width, 3), rng.integers(10, 60), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(count):
        label = int(rng.integers(1, 3))
        h, w = rng.integers(max(2, height // 8), max(3, height // 2)), rng.integers(max(2, width // 8), max(3, width // 2))
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        image[y:y + h, x:x + w] = np.clip(np.array((YELLOW, CYAN)[label - 1]) + rng.integers(-20, 20, 3), 0, 255)
        mask[y:y + h, x:x + w] = label
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="session")
def trained_rectangles_run(tmp_path_factory):
    """A small U-Net trained for 150 steps (a few seconds) to find yellow and cyan rectangles: ``(run directory,
    Predictor, a larger test image (200 x 280), its truth)``."""
    from omniseg.core.info import DatasetInfo
    from omniseg.inference import Predictor
    from omniseg.models import ModelCard, create_model, save_model

    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "depth": 2, "base_channels": 8}
    model = create_model("unet", **kwargs).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(150):
        pairs = [coloured_rectangles(rng, 64, 64, int(rng.integers(1, 4))) for _ in range(8)]
        x = (torch.tensor(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor(np.stack([p[1] for p in pairs])).long())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    run = tmp_path_factory.mktemp("rectangles") / "run"
    save_model(model, run, ModelCard("unet", kwargs, DatasetInfo(["background", "yellow", "cyan"], ignore_index=255),
                                     preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3, "img_size": 64}))
    image, truth = coloured_rectangles(np.random.default_rng(5), 200, 280, 6)
    return run, Predictor(run, device="cpu"), image, truth


@pytest.fixture(scope="session")
def rectangles_data(tmp_path_factory):
    """A folder dataset of :func:`coloured_rectangles` (12 train and 4 val images of 96 x 112), the classes named."""
    root = tmp_path_factory.mktemp("rectangles_data")
    rng = np.random.default_rng(11)
    for split, count in (("train", 12), ("val", 4)):
        for k in range(count):
            image, mask = coloured_rectangles(rng, 96, 112, 4)
            write_pair(root, split, f"{split}_{k}", image, mask)
    write_classes(root, ["background", "yellow", "cyan"])
    return root
