"""Semantic training's augmentation split into a per-sample half and a batch half: the same augmentation as the
one-sample pipeline, sample for sample, and the prefetching thread that feeds it."""

import pytest
import torch
from torchvision import tv_tensors

from omniseg.config import DataConfig
from omniseg.data.batch_augment import DRAWS, split_train_transforms
from omniseg.data.transforms import PadCollate, TransformedDataset, train_transforms_of
from omniseg.engine.prefetch import PrefetchLoader


class _Images(torch.utils.data.Dataset):
    """Random images of different sizes (uint8 RGB, or float grey as 16-bit files are read) with random masks."""

    def __init__(self, grey: bool = False, count: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(count):
            shape = (1 if grey else 3, 30 + 3 * i, 50 - 2 * i)
            image = torch.rand(shape, generator=g) if grey else torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
            self.items.append((image, torch.randint(0, 4, shape[1:], generator=g)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        image, mask = self.items[i]
        return {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask), "meta": {"id": str(i)}}


@pytest.mark.parametrize("config, grey", [
    (DataConfig(img_size=32, vflip=True, rot90=True, color_jitter=0.3, scale_range=(0.5, 2.0)), False),
    (DataConfig(img_size=24, hflip=False, color_jitter=0.0, mean=(0.2, 0.3, 0.4), std=(0.5, 0.6, 0.7)), False),
    (DataConfig(img_size=32, vflip=True, rot90=True, color_jitter=0.3, channels=1, mean=(0.5,), std=(0.2,)), True),
])
def test_the_two_halves_augment_each_sample_as_the_one_sample_pipeline(config, grey):
    dataset = _Images(grey)
    one_sample = TransformedDataset(dataset, train_transforms_of(config, ignore_index=255))
    per_sample, batch_half = split_train_transforms(config, ignore_index=255)
    split = TransformedDataset(dataset, per_sample)
    collate = PadCollate(ignore_index=255)
    keys = [(i, 7_000 + 13 * i) for i in range(len(dataset))]  # (index, augmentation seed), as the training sampler draws
    expected = collate([one_sample[key] for key in keys])
    got = batch_half(collate([split[key] for key in keys]))
    assert "augment" not in got and got["image"].dtype == torch.float32
    assert torch.allclose(got["image"], expected["image"], atol=1e-5)
    assert torch.equal(got["mask"], expected["mask"])


def test_the_draws_cover_every_symmetry_and_the_jitter_range_evenly():
    config = DataConfig(img_size=16, vflip=True, rot90=True, color_jitter=0.4)
    per_sample, _ = split_train_transforms(config, ignore_index=255)
    pipeline = TransformedDataset(_Images(count=1), per_sample)
    draws = torch.stack([pipeline[(0, seed)]["augment"] for seed in range(4000)])
    symmetries = torch.unique(draws[:, :3], dim=0, return_counts=True)[1]
    assert len(symmetries) == 16  # two flips x four turns (each symmetry of the square twice)
    assert (symmetries / len(draws) - 1 / 16).abs().max() < 0.015  # 4 standard deviations of a share of 1/16
    brightness, hue = draws[:, DRAWS.index("brightness")], draws[:, DRAWS.index("hue")]
    assert 0.6 <= brightness.min() < 0.62 and 1.38 < brightness.max() <= 1.4 and abs(brightness.mean() - 1) < 0.01
    assert -0.1 <= hue.min() < -0.098 and 0.098 < hue.max() <= 0.1


def test_prefetching_yields_the_loaders_batches_in_order_and_raises_its_errors():
    loader = torch.utils.data.DataLoader(list(range(10)), batch_size=3)
    prefetched = PrefetchLoader(loader, depth=2)
    assert [b.tolist() for b in prefetched] == [b.tolist() for b in loader]
    assert [b.tolist() for b in prefetched][0] == [0, 1, 2]  # iterated again: a new pass

    def broken():
        yield 1
        raise ValueError("unreadable file x.png")

    class Broken:
        def __iter__(self):
            return broken()

    iterator = iter(PrefetchLoader(Broken()))
    assert next(iterator) == 1
    with pytest.raises(ValueError, match="x.png"):
        next(iterator)


def test_the_prefetching_thread_leaves_the_global_random_state_alone():
    per_sample, _ = split_train_transforms(DataConfig(img_size=16, vflip=True, rot90=True), ignore_index=255)
    pipeline = TransformedDataset(_Images(count=4), per_sample)
    expected = [pipeline[(i % 4, i)]["augment"] for i in range(200)]

    class Lazy:  # the samples are augmented in the thread, while this one draws from the global state
        def __iter__(self):
            return (pipeline[(i % 4, i)]["augment"] for i in range(200))

    torch.manual_seed(5)
    reference = [torch.rand(3) for _ in range(200)]
    torch.manual_seed(5)
    batches = iter(PrefetchLoader(Lazy()))
    assert all(torch.equal(torch.rand(3), r) for r in reference)
    assert all(torch.equal(a, b) for a, b in zip(batches, expected))
