"""The real `omniseg` command on tiny generated data in temp dirs."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg import Predictor, create_model, load_model
from omniseg.data.synthetic import write_synthetic
from tests.conftest import write_pair

TINY = ["--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8",
        "--batch-size", "4", "--img-size", "32", "--no-progress", "--set", "data.eval_batch_size=8"]
RUN_FILES = ["config.yaml", "model.json", "model.safetensors", "last.ckpt", "metrics.json", "history.csv",
             "curves.png", "confusion.png"]


def _history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_train_eval_predict_round_trip(run_cli, shapes_dir, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "2", "--out", run)
    assert code == 0, err
    assert "Per-class" in out or "Validation" in out
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert len(list((run / "samples").glob("*.png"))) == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert [c["name"] for c in metrics["per_class"]] == ["background", "circle", "square", "triangle", "star"]
    assert 0 <= metrics["miou"] <= 1 and metrics["global_step"] == 12  # 24 images / batch 4 x 2 epochs
    assert len(_history(run)) == 2

    # eval of the run on the same split reproduces the saved metrics exactly
    code, out, _ = run_cli("eval", run, "--data", shapes_dir, "--json")
    assert code == 0
    evaluated = json.loads(out)
    assert evaluated["miou"] == pytest.approx(metrics["miou"], abs=1e-12)
    assert evaluated["per_class"] == metrics["per_class"]

    # predict writes palette PNGs that agree with the model
    preds = tmp_path / "pred"
    code, out, _ = run_cli("predict", run, shapes_dir / "images" / "val", "--out", preds, "--precision", "32")
    assert code == 0
    written = sorted(preds.glob("val_*[0-9].png"))
    assert len(written) == 8 and len(list(preds.glob("*_overlay.png"))) == 8
    first = Image.open(written[0])
    assert first.mode == "P" and first.size == (48, 48)
    model = load_model(run)
    direct = Predictor(model, optimize=False).predict(shapes_dir / "images" / "val" / written[0].name)
    assert (np.asarray(first) == direct).mean() > 0.999

    # folder evaluation of those PNGs against the ground truth gives the same mIoU
    code, out, _ = run_cli("eval", "--pred", preds, "--gt", shapes_dir / "masks" / "val", "--num-classes", "5", "--json")
    assert code == 0
    assert json.loads(out)["miou"] == pytest.approx(metrics["miou"], abs=2e-3)

    # export as a torch.export program: same logits as the loaded model, classes beside it
    code, out, err = run_cli("export", run, "--format", "torch", "--size", "48x64", "--out", tmp_path / "m.pt2")
    assert code == 0, err
    program = torch.export.load(tmp_path / "m.pt2").module()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(program(x), load_model(run).eval()(x))
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["class_names"][1] == "circle" and sidecar["input_shape"] == [1, 3, 48, 64]
    code, _, err = run_cli("export", run, "--size", "48", "--out", tmp_path / "bad.onnx")
    assert code == 2 and "is not HxW" in err


def test_resume_continues_the_step_count(run_cli, shapes_dir, tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "1", "--out", run)[0] == 0
    first = _history(run)
    assert [int(r["step"]) for r in first] == [6]
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "3", "--out", run, "--resume")
    assert code == 0, err
    rows = _history(run)
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0, 3.0]  # reported: training runs in steps
    assert [int(r["step"]) for r in rows] == [6, 12, 18]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 18
    # training again into the same run without --resume or --overwrite is refused
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "1", "--out", run)
    assert code == 2 and "--resume, --overwrite" in err


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_exact_bookkeeping(shapes_dir, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "omniseg.cli.main", "train", "--data", str(shapes_dir), *TINY,
           "--epochs", "1", "--devices", "2", "--out", str(run)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _history(run)
    assert len(rows) == 1 and int(rows[0]["step"]) == 3  # 24 images / (batch 4 x 2 processes)
    # the val mIoU summed over both processes equals a single-process evaluation of the same weights
    metrics = json.loads((run / "metrics.json").read_text())
    assert float(rows[0]["val_miou"]) == pytest.approx(metrics["miou"], abs=1e-9)


def test_unknown_option_value_is_one_line(run_cli, shapes_dir, tmp_path):
    code, _, err = run_cli("train", "--data", shapes_dir, "--model", "unte", "--out", tmp_path / "r")
    assert code == 2 and "did you mean 'unet'" in err


def test_debug_shows_the_traceback(tmp_path):
    from omniseg.cli.main import main
    from omniseg.errors import DataError

    with pytest.raises(DataError):
        main(["--debug", "train", "--data", str(tmp_path / "nowhere"), "--no-progress"])


def test_models_and_version(run_cli, capsys):
    code, out, _ = run_cli("models", "--num-classes", "2", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    with torch.device("meta"):
        unet = create_model("unet", num_classes=2)
    assert rows["unet"]["task"] == "semantic" and rows["unet"]["parameters"] == sum(p.numel() for p in unet.parameters())
    with pytest.raises(SystemExit) as exc:
        run_cli("--version")
    assert exc.value.code == 0 and "omniseg 0.1.0" in capsys.readouterr().out


def test_eval_folders_reports_a_mismatch(run_cli, tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "p" / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "g" / "a.png")
    code, _, err = run_cli("eval", "--pred", tmp_path / "p", "--gt", tmp_path / "g")
    assert code == 2 and "predict at the ground truth's size" in err


def test_train_on_a_flat_folder_with_binary_masks(run_cli, tmp_path):
    data = tmp_path / "flat"
    rng = np.random.default_rng(1)
    for i in range(6):
        write_pair(data, None, f"im{i}", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8),
                   (rng.random((20, 20)) > 0.5).astype(np.uint8) * 255)
    with pytest.warns(UserWarning, match="0/255 binary"):
        code, _, err = run_cli("train", "--data", data, *TINY, "--epochs", "1", "--out", tmp_path / "run", "--json", tmp_path / "m.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [c["name"] for c in metrics["per_class"]] == ["background", "foreground"]
    assert (tmp_path / "run" / "config.yaml").read_text().count("val_fraction: 0.2") == 1


def test_synthetic_writer_is_deterministic(tmp_path):
    a = write_synthetic(tmp_path / "a", splits={"train": 2}, size=32, seed=5)
    b = write_synthetic(tmp_path / "b", splits={"train": 2}, size=32, seed=5)
    for name in ("images/train/train_00000.png", "masks/train/train_00001.png"):
        assert np.array_equal(np.asarray(Image.open(a / name)), np.asarray(Image.open(b / name)))


def test_same_seed_same_run(run_cli, shapes_dir, tmp_path):
    for name in ("a", "b"):
        assert run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "1", "--out", tmp_path / name)[0] == 0
    a, b = _history(tmp_path / "a"), _history(tmp_path / "b")
    assert a[0]["train_loss"] == b[0]["train_loss"] and a[0]["val_miou"] == b[0]["val_miou"]


def test_time_budget_and_early_stopping_end_training(run_cli, shapes_dir, tmp_path):
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--time-budget", "1", "--out", tmp_path / "budget")
    assert code == 0, err
    metrics = json.loads((tmp_path / "budget" / "metrics.json").read_text())
    assert 0 < metrics["global_step"] < 400 and (tmp_path / "budget" / "model.safetensors").is_file()
    assert int(_history(tmp_path / "budget")[-1]["step"]) == metrics["global_step"]  # the budget's last steps are validated
    # without norm layers a learning rate of zero changes nothing: patience 1 stops after two validations
    code, _, err = run_cli("train", "--data", shapes_dir, *TINY, "--epochs", "10", "--lr", "0",
                           "--set", "train.early_stopping_patience=1", "--set", "model.kwargs.norm_layer=none",
                           "--out", tmp_path / "early")
    assert code == 0, err
    assert len(_history(tmp_path / "early")) == 2


def test_timm_encoder_with_local_weights_config_file_and_loss_options(run_cli, shapes_dir, tmp_path):
    import safetensors.torch
    import timm
    import torch

    reference = timm.create_model("resnet18")
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "resnet18.safetensors")
    (tmp_path / "exp.yaml").write_text(
        "model:\n  name: unet\n  encoder: resnet18\n"
        "loss:\n  name: focal+0.5*dice\n  class_weights: median_frequency\n  label_smoothing: 0.0\n"
        "data:\n  batch_size: 4\n  img_size: 32\n  eval_batch_size: 8\n"
    )
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", tmp_path / "exp.yaml", "--data", shapes_dir, "--epochs", "1", "--lr", "0",
                           "--encoder-weights", tmp_path / "resnet18.safetensors", "--out", run, "--no-progress")
    assert code == 0, err
    saved = (run / "config.yaml").read_text()
    assert "encoder: resnet18" in saved and "focal+0.5*dice" in saved and "median_frequency" in saved
    card = json.loads((run / "model.json").read_text())
    assert card["kwargs"] == {"num_classes": 5, "encoder": "resnet18"}  # the weights file is not needed later
    assert card["dataset_info"]["class_names"][1] == "circle"
    model = load_model(run)
    # with a zero learning rate the saved encoder convolutions are exactly the file's
    assert torch.equal(model.encoder.model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.encoder.model.layer3[0].conv2.weight, reference.layer3[0].conv2.weight)


def test_training_without_masks_is_refused_early(run_cli, tmp_path):
    data = tmp_path / "data"
    (data / "images" / "train").mkdir(parents=True)
    (data / "images" / "val").mkdir(parents=True)
    for split in ("train", "val"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / "images" / split / "a.png")
    (data / "classes.json").write_text(json.dumps({"class_names": ["a", "b"]}))
    code, _, err = run_cli("train", "--data", data, *TINY, "--epochs", "1", "--out", tmp_path / "run")
    assert code == 2 and "split 'train'" in err and "without masks" in err


def test_train_a_model_with_an_auxiliary_head(run_cli, shapes_dir, tmp_path):
    run = tmp_path / "psp"
    code, _, err = run_cli("train", "--data", shapes_dir, "--model", "pspnet", "--encoder", "resnet18", "--epochs", "1",
                           "--batch-size", "4", "--img-size", "32", "--no-progress", "--out", run)
    assert code == 0, err
    model = load_model(run)
    assert model.aux is not None and json.loads((run / "metrics.json").read_text())["global_step"] == 6
