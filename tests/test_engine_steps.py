"""The engine counts optimiser steps: an endless seeded sampler, a clock that keeps the time budget, a final validation."""

import csv
import json

import pytest

from omniseg.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from omniseg.engine import callbacks as callbacks_module
from omniseg.engine.callbacks import TrainingClock
from omniseg.engine.datamodule import EndlessSampler
from omniseg.engine.module import schedule_factor
from omniseg.engine.trainer import step_counts, train
from omniseg.errors import ConfigError


def take(sampler: EndlessSampler, count: int, *, seeds: bool = False) -> list:
    iterator = iter(sampler)
    draws = [next(iterator) for _ in range(count)]
    return draws if seeds else [index for index, _ in draws]


def test_endless_sampler_permutes_each_epoch_shards_and_resumes():
    stream = take(EndlessSampler(5, seed=3), 15)
    assert all(sorted(stream[i : i + 5]) == list(range(5)) for i in (0, 5, 10))  # one permutation an epoch
    assert stream[:5] != stream[5:10] or stream[5:10] != stream[10:]
    assert take(EndlessSampler(5, seed=3), 15) == stream  # seeded
    assert take(EndlessSampler(5, seed=3, consumed=lambda: 7), 8) == stream[7:]  # a resumed run continues the stream
    seeds = take(EndlessSampler(5, seed=3), 15, seeds=True)
    assert take(EndlessSampler(5, seed=3, consumed=lambda: 7), 8, seeds=True) == seeds[7:]  # and augments each draw the same
    assert len({seed for _, seed in seeds}) == 15
    ranks = [take(EndlessSampler(5, seed=3, rank=r, world_size=2), 3) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1])[:5] == [0, 1, 2, 3, 4] and len(ranks[0] + ranks[1]) == 6  # padded to 2 x 3


class FakeTrainer:
    def __init__(self):
        self.global_step, self.should_stop = 0, False


def test_clock_starts_no_step_that_cannot_end_in_the_budget(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(callbacks_module.time, "monotonic", lambda: now[0])
    clock, trainer = TrainingClock(max_steps=None, time_budget=10.0), FakeTrainer()
    clock.on_train_start(trainer, type("Module", (), {})())
    while not trainer.should_stop:
        clock.on_train_batch_start(trainer, None, None, 0)
        now[0] += 1.0  # each step takes a second
        trainer.global_step += 1
        clock.on_train_batch_end(trainer, None, None, None, 0)
    # after 9 s, a 10th step (1 s) and the final validation (estimated as a step until one is timed) would end at 11 s
    assert trainer.global_step == 9
    assert clock.summary()["train_seconds"] == 9.0 and clock.progress() == pytest.approx(0.9)
    stepped = TrainingClock(max_steps=3, time_budget=None)
    trainer = FakeTrainer()
    trainer.global_step = 3
    stepped.on_train_batch_start(trainer, None, None, 0)
    stepped.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.should_stop


def test_step_counts_and_the_schedule_without_a_step_count():
    assert step_counts(TrainConfig(epochs=2, val_every=1), train_size=10, batch_size=4) == (6, 3, 0.4)
    assert step_counts(TrainConfig(epochs=None, max_steps=50, val_every_steps=20), train_size=10, batch_size=4)[:2] == (50, 20)
    assert step_counts(TrainConfig(epochs=None, time_budget=60, val_every_steps=20), train_size=10, batch_size=4)[:2] == (None, 20)
    with pytest.raises(ConfigError, match="nothing ends this run"):
        step_counts(TrainConfig(epochs=None), train_size=10, batch_size=4)
    config = OptimConfig(warmup_steps=0, schedule="poly", poly_power=1.0)
    assert schedule_factor(5, None, config, progress_floor=0.25) == pytest.approx(0.75)  # a budget alone: time decides


def test_a_run_ends_with_a_validation_of_its_last_step(shapes_dir, tmp_path):
    config = RunConfig(
        data=DataConfig(path=str(shapes_dir), img_size=32, batch_size=4, eval_batch_size=8, cache=True),
        model=ModelConfig(name="unet", kwargs={"depth": 2, "base_channels": 4}),
        train=TrainConfig(epochs=None, max_steps=5, val_every_steps=3, out=str(tmp_path / "run"), num_samples=0),
    )
    result = train(config, progress=False)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 5]  # every 3 steps, and the last
    assert [float(r["epoch"]) for r in rows] == [0.5, pytest.approx(0.83)]  # 24 images at 4 a step: reported, not run
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == 5 and 0 <= metrics["loader_wait_share"] < 1 and 0 < metrics["validation_share"] < 1
    best = max(rows, key=lambda r: float(r["val_miou"]))
    assert metrics["miou"] == pytest.approx(float(best["val_miou"])) and result.best_step == int(best["step"])
