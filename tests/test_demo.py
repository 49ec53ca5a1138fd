"""``omniseg demo``: the demos' own configurations on a few scenes, and a data folder that is never someone else's.

The full demos' quality is measured by running them (``benchmarks/demo_figures.py``; the README has the figures)."""

import json

import pytest

from omniseg.engine.demo import DEMOS, demo_config


@pytest.mark.parametrize("task", ["semantic", "instance", "panoptic", "promptable", "video"])
def test_each_demo_runs_its_configuration_for_its_steps(run_cli, tmp_path, task):
    code, out, err = run_cli("demo", "--task", task, "--train-size", "8", "--val-size", "1" if task == "video" else "2", "--size", "48", "--steps", "2",
                             "--out", tmp_path / "run", "--no-progress", "--json", tmp_path / "metrics.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == 2
    assert {"semantic": "mIoU", "instance": "mask AP", "panoptic": "PQ", "promptable": "NoC@90", "video": "HOTA"}[task] in out
    # the steps decide, not the clock: no time budget unless asked for, validation at the last step
    config = demo_config(task, tmp_path, "out", size=64, steps=DEMOS[task].steps, validations=DEMOS[task].validations)
    assert config.train.time_budget is None and config.train.max_steps == DEMOS[task].steps
    assert DEMOS[task].steps % config.train.val_every_steps == 0
    assert config.model.name == {"semantic": "unet", "instance": "maskrcnn", "panoptic": "panoptic_fpn", "promptable": "sam_timm",
                                 "video": "maskrcnn"}[task]
    if task == "video":  # the tracked validation videos are measured and their files written
        assert 0 <= metrics["video"]["HOTA"] <= 1 and (tmp_path / "run" / "tracks_val" / "valid000" / "overlay.mp4").is_file()


def test_the_scene_folder_is_never_someone_elses(run_cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_cli("demo", "--data-dir", mine, "--train-size", "4", "--val-size", "2", "--size", "32", "--steps", "1",
                           "--out", tmp_path / "run", "--no-progress")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and str(mine) in lines[0] and "nothing was deleted" in lines[0]
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # a folder the demo wrote is kept when the same scenes are asked for, rewritten when others are
    scenes = tmp_path / "scenes"
    args = ["demo", "--data-dir", scenes, "--train-size", "4", "--val-size", "2", "--size", "32", "--steps", "1",
            "--out", tmp_path / "run", "--no-progress"]
    assert run_cli(*args)[0] == 0
    first = (scenes / "images" / "train" / "train_00000.png").stat().st_mtime_ns
    assert run_cli(*args)[0] == 0 and (scenes / "images" / "train" / "train_00000.png").stat().st_mtime_ns == first
    assert run_cli(*[a if a != "4" else "5" for a in args])[0] == 0
    assert len(list((scenes / "images" / "train").iterdir())) == 5
