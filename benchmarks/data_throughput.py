"""Samples/s of omniseg's training loader against albumentations pipelines, same images, same run.

The images are procedural scenes written once as JPEG images with PNG masks (the folder layout). Each
pipeline decodes an image and its mask, augments to a 512x512 crop, normalises, and batches (8 a batch,
2 worker processes, as `omniseg train --workers 2` loads):

  * omniseg: the folder reader (PIL decoding, EXIF orientation) and `train_transforms`
    (torchvision v2: scale jitter 0.5-2, padded crop, flip, colour jitter), as `omniseg train` runs it;
  * albumentations, same steps: cv2 decoding and the same augmentation expressed in albumentations;
  * albumentations, SMP example: the pipeline of segmentation_models_pytorch's CamVid example
    (flip, shift-scale, pad, crop, noise, perspective, CLAHE/brightness/gamma, sharpen/blur, hue),
    the kind of pipeline SMP users copy.

One warm-up epoch starts each loader's workers; then the loaders take turns, round after round, and
each one's median over the rounds is reported. Prints a table with ratios (omniseg over
each peer) and saves JSON. Nothing is asserted.

    python benchmarks/data_throughput.py [--images 48] [--epochs 2] [--repeats 5] [--out benchmarks/results/data_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from omniseg.data import load_dataset
from omniseg.data.synthetic import generate_scene
from omniseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PadCollate, TransformedDataset, train_transforms

CROP = 512
OURS = "omniseg (folder reader + train_transforms)"


def write_images(root: Path, count: int, size: tuple[int, int] = (720, 960)) -> Path:
    """``count`` procedural scenes as JPEG + PNG mask pairs in the folder layout."""
    for split in ("train",):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            scene = generate_scene(11, index, size=max(size))
            Image.fromarray(scene.image[: size[0], : size[1]]).save(root / "images" / split / f"{index:04d}.jpg", quality=92)
            Image.fromarray(scene.semantic[: size[0], : size[1]].astype(np.uint8)).save(root / "masks" / split / f"{index:04d}.png")
    return root


class AlbumentationsDataset(Dataset):
    """What SMP's examples do: cv2 decoding, an albumentations Compose, then tensors."""

    def __init__(self, root: Path, transform: A.Compose) -> None:
        self.images = sorted((root / "images" / "train").glob("*.jpg"))
        self.masks = [root / "masks" / "train" / f"{p.stem}.png" for p in self.images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = cv2.cvtColor(cv2.imread(str(self.images[index])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(self.masks[index]), cv2.IMREAD_UNCHANGED)
        out = self.transform(image=image, mask=mask)
        return torch.from_numpy(out["image"].transpose(2, 0, 1).copy()), torch.from_numpy(out["mask"].astype(np.int64))


def same_steps() -> A.Compose:
    return A.Compose([
        A.LongestMaxSize(max_size=CROP),
        A.RandomScale(scale_limit=(-0.5, 1.0), p=1.0),  # factor 0.5..2, as ScaleJitter
        A.PadIfNeeded(CROP, CROP, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=255),
        A.RandomCrop(CROP, CROP),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(0.3, 0.3, 0.3, 0.075, p=1.0),
        A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


def smp_example() -> A.Compose:
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.5, 1.5), translate_percent=(-0.1, 0.1), rotate=0, border_mode=cv2.BORDER_CONSTANT, p=1.0),
        A.PadIfNeeded(CROP, CROP, border_mode=cv2.BORDER_CONSTANT),
        A.RandomCrop(CROP, CROP),
        A.GaussNoise(p=0.2),
        A.Perspective(p=0.5),
        A.OneOf([A.CLAHE(p=1), A.RandomBrightnessContrast(p=1), A.RandomGamma(p=1)], p=0.9),
        A.OneOf([A.Sharpen(p=1), A.Blur(blur_limit=3, p=1), A.MotionBlur(blur_limit=3, p=1)], p=0.9),
        A.OneOf([A.RandomBrightnessContrast(p=1), A.HueSaturationValue(p=1)], p=0.9),
        A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


def samples_per_second(loader: DataLoader, epochs: int) -> float:
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch["image"] if isinstance(batch, dict) else batch[0])
    return count / (time.perf_counter() - start)


def measure(loaders: dict[str, DataLoader], epochs: int, repeats: int) -> dict[str, float]:
    """Median samples/s of each loader over ``repeats`` rounds, the loaders taking turns in each round
    (so that a slow spell of the machine hits all of them alike); one warm-up epoch each first."""
    for loader in loaders.values():
        for _ in loader:  # start the workers, fill the page cache
            pass
    rounds = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            rounds[name].append(samples_per_second(loader, epochs))
    return {name: statistics.median(values) for name, values in rounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/data_throughput.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_images(Path(tmp), args.images)
        loader_args = {"batch_size": args.batch_size, "num_workers": args.workers, "persistent_workers": args.workers > 0,
                       "shuffle": True, "drop_last": True}
        source = load_dataset(root)
        ours = TransformedDataset(source.dataset("train"), train_transforms(img_size=CROP, ignore_index=source.info.ignore_index))
        loaders = {OURS: DataLoader(ours, collate_fn=PadCollate(ignore_index=255), **loader_args),
                   "albumentations, same steps": DataLoader(AlbumentationsDataset(root, same_steps()), **loader_args),
                   "albumentations, SMP example": DataLoader(AlbumentationsDataset(root, smp_example()), **loader_args)}
        rows = measure(loaders, args.epochs, args.repeats)
        del loaders
    omniseg = rows[OURS]
    table = Table(title=f"Training loader throughput: {args.images} JPEG 960x720 -> {CROP}x{CROP} crops, batch "
                        f"{args.batch_size}, {args.workers} workers; median of {args.repeats} rounds of {args.epochs} epochs")
    table.add_column("pipeline")
    table.add_column("samples/s", justify="right")
    table.add_column("omniseg / this", justify="right")
    for name, value in rows.items():
        table.add_row(name, f"{value:.1f}", f"{omniseg / value:.2f}x")
    console.print(table)
    result = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "albumentations": A.__version__,
              "images": args.images, "epochs": args.epochs, "repeats": args.repeats, "workers": args.workers, "batch_size": args.batch_size, "crop": CROP,
              "samples_per_second": rows, "ratios": {name: omniseg / value for name, value in rows.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    console.print(f"saved {args.out}")


if __name__ == "__main__":
    main()
