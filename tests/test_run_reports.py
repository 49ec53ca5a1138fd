"""What a run leaves to look at and compare: report.html (opened in headless Chromium), ``omniseg runs`` over a folder
of runs, and the experiment trackers (TensorBoard event files and an MLflow store, read back), safe across --resume."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from omniseg.data.synthetic import write_synthetic
from omniseg.inference.runs import list_runs

TINY = ["--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8",
        "--batch-size", "4", "--img-size", "32", "--no-progress", "--set", "train.val_every_steps=3"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs (6 and 3 steps) and one unfinished (weights, no metrics yet) under one folder."""
    from omniseg.cli.main import main

    root = tmp_path_factory.mktemp("runs")
    data = write_synthetic(root / "data", splits={"train": 12, "val": 4}, size=32, seed=3)
    for name, steps in (("long", 6), ("short", 3)):
        assert main(["train", "--data", str(data), *TINY, "--set", f"train.max_steps={steps}", "--out", str(root / "all" / name)]) == 0
    unfinished = root / "all" / "nested" / "unfinished"
    unfinished.mkdir(parents=True)
    shutil.copy(root / "all" / "short" / "model.json", unfinished / "model.json")
    return root / "all", data


def test_the_report_is_one_self_contained_page(runs):
    run = runs[0] / "long"
    page = (run / "report.html").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"mIoU <b>{metrics['miou']:.4f}</b>" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 + len(list((run / "samples").glob("*.png")))  # curves, confusion, samples
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing outside the file
    assert "<h2>Config</h2>" in page and "max_steps: 6" in page
    for row in metrics["per_class"]:
        assert f"<td>{row['name']}</td><td>{row['iou']:.4f}</td>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_opens_in_a_browser_with_every_image_drawn(runs, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    run = runs[0] / "long"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((run / "report.html").as_uri())
        widths = page.evaluate("Array.from(document.images).map((i) => i.complete ? i.naturalWidth : 0)")
        headings = page.locator("h2").all_inner_texts()
        page.screenshot(path=tmp_path / "report.png", full_page=True)
        browser.close()
    assert not errors and len(widths) >= 3 and min(widths) > 100
    assert headings[:4] == ["Metrics", "Per class", "Training curves", "Confusion matrix"]


def test_runs_lists_every_run_with_its_headline_sorted(runs, run_cli):
    root, data = runs
    rows = list_runs(root)
    assert [r["name"] for r in rows][-1] == "unfinished" and rows[-1]["value"] is None and not rows[-1]["finished"]
    finished = {r["name"]: r for r in rows if r["finished"]}
    for name in ("long", "short"):
        metrics = json.loads((root / name / "metrics.json").read_text())
        assert finished[name]["value"] == metrics["miou"] and finished[name]["metric"] == "mIoU"
        assert finished[name]["steps"] == metrics["global_step"] and finished[name]["data"] == str(data)
        assert finished[name]["task"] == "semantic" and finished[name]["model"] == "unet"
    values = [r["value"] for r in rows if r["finished"]]
    assert values == sorted(values, reverse=True)
    assert [r["name"] for r in list_runs(root, sort="steps")][:2] == ["long", "short"]
    code, out, _ = run_cli("runs", root, "--sort", "name", "--json", "-")
    assert code == 0 and [r["name"] for r in json.loads(out)["runs"]] == ["long", "unfinished", "short"]
    code, out, _ = run_cli("runs", root)
    assert code == 0 and "3 runs under" in out and "(unfinished)" in out
    code, _, err = run_cli("runs", root / "nowhere")
    assert code == 2 and "is not a folder" in err


def test_trackers_log_each_validation_once_across_a_resume(runs, run_cli, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, data = runs
    run = tmp_path / "tracked"
    train = ["train", "--data", data, *TINY, "--logger", "csv,tensorboard,mlflow", "--out", run]
    assert run_cli(*train, "--set", "train.max_steps=6")[0] == 0
    first = json.loads((run / "trackers.json").read_text())
    assert first["logged_step"] == 6
    # killed after the step-6 validation was logged but before its checkpoint: resume from the step-3 one
    shutil.copy(run / "previous.ckpt", run / "last.ckpt")
    code, _, err = run_cli(*train, "--set", "train.max_steps=9", "--resume")
    assert code == 0, err
    state = json.loads((run / "trackers.json").read_text())
    assert state["mlflow_run_id"] == first["mlflow_run_id"] and state["logged_step"] == 9
    history = [int(line.split(",")[1]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert history == [3, 6, 9]
    events = EventAccumulator(str(run / "tensorboard" / "version_0"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_miou")] == [3, 6, 9]
    client = MlflowClient(tracking_uri=state["mlflow_uri"])
    assert [m.step for m in client.get_metric_history(state["mlflow_run_id"], "val_miou")] == [3, 6, 9]
    assert len(client.search_runs([client.get_experiment_by_name("omniseg").experiment_id])) == 1
    assert client.get_run(state["mlflow_run_id"]).data.params["train.max_steps"] == "6"  # hyperparameters, once


def test_an_unknown_tracker_is_refused(runs, run_cli, tmp_path):
    code, _, err = run_cli("train", "--data", runs[1], *TINY, "--logger", "csv,neptune", "--out", tmp_path / "r")
    assert code == 2 and "--logger neptune: unknown; choose from csv, tensorboard, mlflow, wandb" in err
