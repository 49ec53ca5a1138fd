"""Kill-anywhere training: a real ``omniseg train`` process killed with SIGKILL, then run again with ``--resume``,
ends exactly where the uninterrupted run of the same seed ends; damaged checkpoints and weights are told apart
in one line; a NaN loss and a full disk stop training in one line and keep what was good."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from omniseg.data.synthetic import write_synthetic

from .test_instance_training import TINY as TINY_MASK_RCNN
from .test_instance_training import _squares_coco

SEMANTIC = ["--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8",
            "--batch-size", "4", "--img-size", "48", "--set", "train.max_steps=60", "--set", "train.val_every_steps=12",
            "--set", "data.eval_batch_size=32", "--set", "train.num_samples=0", "--no-progress"]


def train_command(data: Path, out: Path, options: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "omniseg.cli.main", "train", "--data", str(data), *options, "--out", str(out), *extra]


def history(run: Path) -> list[dict]:
    with open(run / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def checkpoint_time(run: Path) -> int:
    try:
        return (run / "last.ckpt").stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def kill_after_next_checkpoint(command: list[str], run: Path, delay: float) -> None:
    """Start ``command``, wait until it writes a checkpoint, wait ``delay`` seconds more, then SIGKILL it."""
    before = checkpoint_time(run)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while checkpoint_time(run) == before:
        if process.poll() is not None:
            raise AssertionError(f"training ended before its checkpoint: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no checkpoint within 120 s")
        time.sleep(0.005)
    time.sleep(delay)
    process.kill()  # SIGKILL: no handler, no clean-up
    process.wait()


def finish(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_semantic_run_killed_three_times_ends_as_the_uninterrupted_run(tmp_path):
    data = write_synthetic(tmp_path / "data", splits={"train": 16, "val": 192}, size=64, seed=3)  # validation-heavy
    finish(train_command(data, tmp_path / "whole", SEMANTIC))
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    interval = np.diff([0.0] + [float(r["seconds"]) for r in csv.DictReader(open(tmp_path / "whole" / "history.csv"))]).mean()
    training = interval * (1 - whole["validation_share"])  # the training part of a validation interval
    rng = np.random.default_rng(0)
    run = tmp_path / "killed"
    moments = {"early": rng.uniform(0.0, 0.05) * interval,  # the first steps after a checkpoint
               "mid-epoch": rng.uniform(0.3, 0.6) * training,  # an epoch is 4 steps; 12 between validations
               "validation": training + rng.uniform(0.2, 0.6) * (interval - training)}
    for moment, delay in moments.items():
        kill_after_next_checkpoint(train_command(data, run, SEMANTIC, *(["--resume"] if moment != "early" else [])), run, delay)
        assert not list(run.glob("metrics.json")), f"killed ({moment}) after the run had finished: no kill was tested"
    finish(train_command(data, run, SEMANTIC, "--resume"))
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["global_step"] == whole["global_step"] == 60
    assert resumed["miou"] == pytest.approx(whole["miou"], abs=1e-6)
    assert [c["iou"] for c in resumed["per_class"]] == pytest.approx([c["iou"] for c in whole["per_class"]], abs=1e-6)
    assert history(run) == history(tmp_path / "whole")  # every validation once, with the same figures
    assert not list(run.glob(".*tmp*")) and (run / "previous.ckpt").is_file()


def test_an_instance_run_killed_once_ends_as_the_uninterrupted_run(tmp_path):
    data = _squares_coco(tmp_path / "data", count=8)
    options = [*TINY_MASK_RCNN, "--task", "instance", "--img-size", "48", "--set", "data.val_fraction=0.3", "--set", "train.max_steps=9",
               "--set", "train.val_every_steps=3", "--set", "train.num_samples=0"]
    finish(train_command(data, tmp_path / "whole", options))
    kill_after_next_checkpoint(train_command(data, tmp_path / "killed", options), tmp_path / "killed", 0.2)
    finish(train_command(data, tmp_path / "killed", options, "--resume"))
    whole, resumed = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("whole", "killed"))
    assert resumed["global_step"] == whole["global_step"] == 9
    assert resumed["segm"]["AP"] == pytest.approx(whole["segm"]["AP"], abs=1e-6)
    assert resumed["bbox"]["AP"] == pytest.approx(whole["bbox"]["AP"], abs=1e-6)
    assert history(tmp_path / "killed") == history(tmp_path / "whole")


TINY = ["--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8", "--batch-size", "4",
        "--img-size", "32", "--no-progress", "--set", "train.val_every_steps=3", "--set", "train.num_samples=0"]


def test_damaged_checkpoints_and_weights_are_told_in_one_line(run_cli, shapes_dir, tmp_path, caplog):
    run = tmp_path / "run"
    assert run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=6", "--out", run)[0] == 0
    last = (run / "last.ckpt").read_bytes()
    (run / "last.ckpt").write_bytes(last[: len(last) // 2])  # a copy cut short
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=9", "--out", run, "--resume")
    assert code == 0, err
    assert "last.ckpt is truncated or damaged" in caplog.text and "resuming from" in caplog.text and "(step 3)" in caplog.text
    assert [int(r["step"]) for r in history(run)] == [3, 6, 9]  # from step 3 on: step 6 validated again, once
    for name in ("last.ckpt", "previous.ckpt"):  # both damaged: nothing to resume from
        (run / name).write_bytes(b"PK\x03\x04 not a checkpoint")
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=12", "--out", run, "--resume")
    assert code == 2 and "cannot resume" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    weights = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(weights[:-100])
    code, _, err = run_cli("eval", run, "--data", shapes_dir)
    assert code == 2 and "model.safetensors is truncated or damaged" in err and len(err.strip().splitlines()) == 1
    flipped = bytearray(weights)
    flipped[-5] ^= 0x40  # still parses: the checksum tells
    (run / "model.safetensors").write_bytes(bytes(flipped))
    code, _, err = run_cli("eval", run, "--data", shapes_dir)
    assert code == 2 and "does not match the checksum" in err


def test_resume_refuses_another_config_and_a_run_without_checkpoint(run_cli, shapes_dir, tmp_path):
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=2", "--out", tmp_path / "none", "--resume")
    assert code == 2 and "has no checkpoint" in err and "without --resume" in err
    run = tmp_path / "run"
    assert run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=3", "--out", run)[0] == 0
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=6", "--lr", "0.5", "--out", run, "--resume")
    assert code == 2 and "optim.lr: 0.001 -> 0.5" in err and "--config" in err


def test_a_nan_loss_stops_in_one_line_and_keeps_the_last_good_checkpoint(run_cli, shapes_dir, tmp_path, monkeypatch):
    from omniseg.engine.module import OptimisedTask

    original = OptimisedTask.check_loss

    def poisoned(self, loss, batch_size, parts=None):
        return original(self, loss * float("nan") if self.global_step >= 4 else loss, batch_size, parts)

    monkeypatch.setattr(OptimisedTask, "check_loss", poisoned)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=9", "--out", run)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the loss became nan at step 4" in err and "last.ckpt (step 3)" in err
    monkeypatch.undo()
    assert run_cli("train", "--data", shapes_dir, *TINY, "--set", "train.max_steps=6", "--out", run, "--resume")[0] == 0


def test_a_full_disk_stops_in_one_line_and_leaves_nothing_half_written(run_cli, shapes_dir, tmp_path, monkeypatch):
    import safetensors.torch

    from omniseg import load_model

    real, calls = safetensors.torch.save_file, []

    def fills_the_disk(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) > 1:
            Path(filename).write_bytes(b"\0" * 1000)  # part of the file got out before the disk filled
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", fills_the_disk)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--set", "model.kwargs.norm_layer=none", "--lr", "0.01",
                           "--set", "train.max_steps=12", "--out", run)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "model.safetensors: the disk is full" in err and "run again" in err
    assert len(calls) == 2 and not list(run.glob(".*tmp*"))
    load_model(run)  # the first weights, whole
