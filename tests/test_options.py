"""One meaning per option, nothing dropped in silence: the compute device, options a command cannot honour, a run
evaluated on its own data, user errors against bugs in model constructors, the step progress bar, malformed
annotations and folders named like images, plain output in logs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.cli.main import build_parser
from omniseg.core.device import default_device, resolve_device
from omniseg.core.info import DatasetInfo
from omniseg.errors import ConfigError, DataError
from omniseg.models import ModelCard, create_model, save_model
from omniseg.models.builder import MODELS
from tests.conftest import write_classes, write_pair

TINY = ["--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8",
        "--batch-size", "4", "--img-size", "32", "--no-progress"]
LIGHT_MASK_RCNN = {"num_classes": 2, "encoder": "resnet18", "fpn_channels": 32, "box_head_size": 64, "mask_head_channels": 16,
                   "min_size": 64, "max_size": 64}


@pytest.mark.parametrize("command", [["train"], ["eval", "RUN"], ["predict", "RUN", "x.png", "--out", "o"],
                                     ["prompt", "RUN", "x.png", "--out", "o"], ["serve"], ["plan", "DATA"]])
def test_every_compute_command_takes_device_with_one_meaning(command):
    args = build_parser().parse_args([*command, "--device", "cpu"])
    assert args.device == "cpu"
    assert build_parser().parse_args(command).device is None  # None: the one default, resolve_device's


def test_the_device_default_and_its_refusals():
    assert resolve_device(None) == torch.device(default_device()) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="'tpu9' is not a device torch knows"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device; use --device cpu"):
            resolve_device("cuda")


@pytest.fixture(scope="module")
def instance_run(tmp_path_factory):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("instance") / "run"
    save_model(create_model("maskrcnn", **LIGHT_MASK_RCNN), run,
               ModelCard("maskrcnn", dict(LIGHT_MASK_RCNN), DatasetInfo(["background", "box"], ignore_index=255), task="instance"))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(run.parent / "a.png")
    return run


@pytest.mark.parametrize(("option", "named"), [(["--devices", "2"], "--devices"), (["--mask-format", "tiff"], "--mask-format"),
                                               (["--probabilities"], "--probabilities")])
def test_predict_refuses_what_an_instance_run_cannot_honour(run_cli, instance_run, tmp_path, option, named):
    code, _, err = run_cli("predict", instance_run, instance_run.parent / "a.png", "--out", tmp_path / "out", *option)
    assert code == 2 and f"makes an instance prediction, which cannot honour {named} (it serves: semantic" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_eval_without_data_reads_the_runs_own_data_as_in_training(run_cli, tmp_path):
    # labels 0/1 with 7 marking void: only the run's own data options (ignore_index 7) read these masks
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        for k in range(count):
            mask = (rng.random((32, 32)) > 0.5).astype(np.uint8)
            mask[:4] = 7
            write_pair(data, split, f"{k}", (mask[..., None] * 200 + 20).repeat(3, axis=2).astype(np.uint8), mask)
    write_classes(data, ["background", "object"])
    run = tmp_path / "run"
    assert run_cli("train", "--data", data, *TINY, "--set", "data.ignore_index=7", "--set", "train.max_steps=2",
                   "--out", run)[0] == 0
    code, out, err = run_cli("eval", run, "--json", "-")
    assert code == 0, err
    own = json.loads(out)
    code, out, err = run_cli("eval", run, "--data", data, "--json", "-")
    assert code == 0, err
    assert json.loads(out) == own
    assert own["miou"] == pytest.approx(json.loads((run / "metrics.json").read_text())["miou"])  # as training measured it
    assert sum(row["support"] for row in own["per_class"]) == 2 * 28 * 32  # the void rows counted nowhere
    code, _, err = run_cli("eval", run, "--data", data, "--ignore-index", "255")  # an explicit choice still wins
    assert code == 2 and "label 7" in err


def test_a_users_value_is_a_one_line_error_and_a_bug_in_a_constructor_keeps_its_traceback():
    with pytest.raises(ConfigError, match="model 'unet': padding must be 'same' or 'valid', got 'wide'"):
        create_model("unet", num_classes=2, padding="wide")

    def broken(num_classes: int = 2):
        return int("not a number")  # a bug inside omniseg: a ValueError that is not the user's

    MODELS.add("broken_for_test", broken)
    try:
        with pytest.raises(ValueError, match="invalid literal") as caught:
            create_model("broken_for_test", num_classes=0)
        assert not isinstance(caught.value, ConfigError)
    finally:
        MODELS._entries.pop("broken_for_test")
        MODELS._meta.pop("broken_for_test", None)


def test_the_progress_bar_counts_steps_not_an_endless_epoch():
    from omniseg.engine.callbacks import StepProgressBar

    bar = StepProgressBar(1700, 8 / 800)
    assert bar.total_train_batches == 1700 and bar._get_train_description(0) == "training: 1,700 steps (17.0 epochs)"
    assert StepProgressBar(None)._get_train_description(0) == "training (time budget)"


def test_a_malformed_coco_polygon_is_named_with_its_annotation_and_image(run_cli, tmp_path):
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "a.png")
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 3, "file_name": "a.png", "height": 8, "width": 8}], "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 41, "image_id": 3, "category_id": 1, "segmentation": [[1, 1, 6, 1, 6]], "iscrowd": 0}]}))
    from omniseg.data import load_dataset

    with pytest.raises(DataError, match=r"annotation 41 \(image_id 3\) has a polygon of 5 numbers .* fix its coordinates"):
        load_dataset(root)
    code, out, _ = run_cli("data", "check", root)
    assert code == 1 and "annotation 41 (image_id 3) has a polygon of 5 numbers" in out


def test_a_folder_named_like_an_image_is_refused_by_name(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    for k in range(3):
        write_pair(tmp_path / "data", None, f"{k}", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), np.zeros((8, 8), np.uint8))
    (tmp_path / "data" / "images" / "x.png").mkdir()
    from omniseg.data import load_dataset

    with pytest.raises(DataError, match=r"images/x.png is a folder named like an image; rename it"):
        load_dataset(tmp_path / "data")
    from omniseg.inference.prediction.inputs import collect_images

    with pytest.raises(DataError, match="is a folder named like an image"):
        collect_images([tmp_path / "data" / "images"])


def test_check_results_and_errors_are_whole_lines_outside_a_terminal(run_cli, tmp_path):
    deep = tmp_path / ("a_rather_long_folder_name_" * 4) / "data"
    write_pair(deep, None, "0", np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 9, np.uint8))
    write_pair(deep, None, "1", np.zeros((8, 8, 3), np.uint8), np.zeros((6, 8), np.uint8))
    write_classes(deep, ["background", "object"])
    code, out, _ = run_cli("data", "check", deep)
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("error ")]
    assert len(lines) == 2 and all(str(deep / "masks") in line for line in lines)
    code, _, err = run_cli("eval", "--pred", deep / "nowhere", "--gt", deep / "masks")
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(deep / "nowhere") in err


@pytest.mark.parametrize(("args", "message"), [
    (["--pred", "p", "--gt", "g", "--data", "d"], "--data cannot be honoured when comparing --pred with --gt"),
    (["--pred", "p", "--gt", "g", "--split", "test", "--max-clicks", "5"], "--max-clicks, --split cannot be honoured when comparing"),
    (["RUN", "--num-classes", "3"], "--num-classes cannot be honoured when evaluating a model"),
    (["RUN", "--tolerance", "0.01"], "--tolerance cannot be honoured without --unsupervised"),
    (["--unsupervised", "--pred", "p", "--gt", "g", "--ignore-index", "0"], "--ignore-index cannot be honoured with --unsupervised"),
])
def test_eval_refuses_options_of_another_way_of_evaluating(run_cli, args, message):
    code, _, err = run_cli("eval", *args)
    assert code == 2 and message in err


def test_an_architecture_for_a_run_directory_is_refused(tmp_path):
    from omniseg.inference import evaluate_run

    with pytest.raises(ConfigError, match="is a run directory, whose model.json names its own: leave --arch out"):
        evaluate_run(tmp_path, arch="sam_vit_b")


@pytest.mark.parametrize(("options", "named"), [({"boxes_from": "RUN", "points_per_side": 16}, "points_per_side"),
                                                ({"overlap": 0.25}, "overlap"), ({"score_threshold": 0.3}, "score_threshold")])
def test_autolabel_refuses_options_of_the_other_mode(tmp_path, options, named):
    from omniseg.inference import autolabel_images

    with pytest.raises(ConfigError, match=f"^{named} cannot be honoured here"):
        autolabel_images(tmp_path / "sam", [tmp_path], tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()
