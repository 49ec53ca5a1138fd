"""The plan: a fingerprint measured right, and choices that follow from it (on every shared sample, and by hand)."""

import json

import numpy as np
import pytest
from PIL import Image

from omniseg.config import RunConfig
from omniseg.data.synthetic import write_synthetic
from omniseg.errors import ConfigError
from omniseg.plan import Plan, fingerprint, make_plan
from omniseg.plan.planner import anisotropic_patch

from .conftest import SHARED_DATA, write_pair

SHARED_2D = {  # sample -> task it is planned for
    "isbi2012": "semantic", "camvid": "semantic", "ade20k": "semantic", "labelme/semantic_segmentation/data_dataset_voc": "semantic",
    "labelme/instance_segmentation/data_dataset_coco": "instance",
    "coco8_seg": "instance", "dsb2018": "instance", "coco_panoptic": "panoptic",
}


@pytest.fixture(scope="module")
def grey_upright(tmp_path_factory):
    """Grey 16-bit images whose class 1 fills the top rows: the classes have a place in the frame."""
    root = tmp_path_factory.mktemp("grey")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for i in range(count):
            image = (rng.integers(0, 4096, (40, 52)) + 1000).astype(np.uint16)  # 12-bit values in a 16-bit file
            mask = np.zeros((40, 52), np.uint8)
            mask[:12] = 1
            write_pair(root, split, f"{i}", image, mask)
    (root / "classes.json").write_text(json.dumps({"names": ["ground", "sky"]}))
    return root


def test_fingerprint_by_hand(grey_upright):
    from omniseg.data.formats import load_dataset

    fp = fingerprint(load_dataset(grey_upright))
    assert (fp.num_train, fp.num_val, fp.channels, fp.grey, fp.bit_depth) == (6, 2, 1, True, 16)
    assert fp.size_median == [40, 52] and fp.class_frequency == pytest.approx([28 / 40, 12 / 40])
    assert fp.orientation == pytest.approx(0.6)  # the top half holds 12/20 sky, the bottom none: TV distance 0.6
    assert fp.mirror == 0.0
    # intensities of 16-bit files are kept: uniform 1000..5095 over 65535
    assert fp.intensity_mean[0] == pytest.approx((1000 + 2047.5) / 65535, rel=0.02)


def test_grey_upright_data_plan(grey_upright):
    plan = make_plan(grey_upright, time_budget=60, measure=False)
    values = plan.values
    assert values["data.channels"] == 1 and values["data.color_jitter"] == 0.0
    assert values["data.vflip"] is False and values["data.rot90"] is False and values["data.hflip"] is True
    assert len(values["data.mean"]) == 1 and values["data.mean"][0] < 0.1  # the data's own statistics, not ImageNet's
    assert values["train.time_budget"] == 60 and values["train.max_steps"] is None and values["train.epochs"] is None
    assert values["train.val_every_steps"] >= 1
    config = plan.config()
    assert config.data.channels == 1 and config.model.kwargs == values["model.kwargs"]
    assert set(plan.reasons) == set(values) and all(plan.reasons.values())


def test_plan_without_a_budget_counts_steps_and_round_trips(grey_upright, tmp_path):
    plan = make_plan(grey_upright, measure=False)
    assert plan.values["train.time_budget"] is None and plan.values["train.max_steps"] >= 1
    plan.save(tmp_path)
    again = Plan.load(tmp_path)
    assert again.values == plan.values and again.fingerprint == plan.fingerprint
    assert "## Choices" in (tmp_path / "plan.md").read_text()
    with pytest.raises(ConfigError, match="cannot read the plan"):
        Plan.load(tmp_path / "nowhere")


def test_anisotropic_patch_follows_the_spacing():
    assert anisotropic_patch([5.0, 1.0, 1.0], [20, 256, 256], 48**3) == [16, 80, 80]
    assert anisotropic_patch([1.0, 1.0, 1.0], [200, 200, 200], 48**3) == [48, 48, 48]
    # a thin volume: the depth is capped at its size, the other axes take the spare voxels
    patch = anisotropic_patch([1.0, 1.0, 1.0], [8, 300, 300], 48**3)
    assert patch[0] == 8 and patch[1] == patch[2] > 48


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("name", sorted(SHARED_2D))
def test_plan_on_the_shared_images(run_cli, name):
    code, out, err = run_cli("plan", str(SHARED_DATA / name), "--task", SHARED_2D[name], "--time-budget", "300", "--no-measure", "--json")
    assert code == 0, err
    plan = json.loads(out)
    fp, values = plan["fingerprint"], plan["values"]
    assert values["train.val_every_steps"] >= 1 and values["train.epochs"] is None  # validation cadence by steps
    if name == "isbi2012":  # grey EM membranes, no up: one channel, no colour jitter, every symmetry, own statistics
        assert fp["grey"] and values["data.channels"] == 1 and values["data.color_jitter"] == 0.0
        assert values["data.rot90"] and values["data.vflip"] and len(values["data.mean"]) == 1
        assert values["data.img_size"] == 256 and values["data.fit_to_crop"] is False
    if name == "camvid":  # street scenes: colour photographs with sky above road
        assert not fp["grey"] and values["data.channels"] == 3 and values["data.color_jitter"] > 0
        assert fp["orientation"] > 0.1 and not values["data.vflip"] and not values["data.rot90"]
    if SHARED_2D[name] != "semantic":  # anchors from the object sizes
        smallest = values["model.kwargs"]["anchor_sizes"][0]
        assert smallest <= max(8, fp["object_size"][0])


@pytest.mark.skipif(not (SHARED_DATA / "volumes").is_dir(), reason="../shared/data is absent")
def test_plan_on_the_shared_volumes(run_cli):
    pytest.importorskip("nibabel")
    code, out, err = run_cli("plan", str(SHARED_DATA / "volumes"), "--no-measure", "--json")
    assert code == 0, err
    plan = json.loads(out)
    spacing, patch = plan["fingerprint"]["spacing_median"], plan["values"]["data.patch_size"]
    assert plan["values"]["model.name"] == "unet3d" and plan["values"]["train.max_steps"] >= 1
    # anisotropic spacing -> an anisotropic patch: the axis with the coarsest spacing gets the fewest voxels
    coarse = int(np.argmax(spacing))
    assert patch[coarse] == min(patch) and patch == anisotropic_patch(spacing, plan["fingerprint"]["size_median"], 48**3)


def test_train_uses_the_plan_and_flags_win(run_cli, tmp_path):
    data = write_synthetic(tmp_path / "scenes", splits={"train": 12, "val": 4}, size=48, seed=1)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", str(data), "--epochs", "1", "--batch-size", "4", "--set", "optim.lr=0.002",
                           "--out", str(out), "--no-progress")
    assert code == 0, err
    plan = json.loads((out / "plan.json").read_text())
    config = RunConfig()
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"]["batch_size"] == 4 and saved["optim"]["lr"] == 0.002  # the flags win
    assert saved["train"]["epochs"] == 1 and saved["train"]["max_steps"] is None  # --epochs replaces the planned steps
    assert saved["model"]["kwargs"] == plan["values"]["model.kwargs"]  # the rest is the plan's
    assert saved["data"]["mean"] == plan["values"]["data.mean"] != list(config.data.mean)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 3  # 12 images, batch 4: one epoch is 3 steps


def test_16_bit_grey_images_train_and_predict_with_one_channel(grey_upright, run_cli, tmp_path):
    from omniseg import Predictor, load_model
    from omniseg.data.imageio import read_image

    path = next((grey_upright / "images" / "train").iterdir())
    raw = np.asarray(Image.open(path))
    image = read_image(path)  # 16 bits kept: v / 65535 as float, not squeezed to 8 bits
    assert raw.dtype == np.uint16 and image.dtype.is_floating_point and image.shape[0] == 3
    assert image[0].numpy() == pytest.approx(raw / 65535)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", str(grey_upright), "--set", "train.max_steps=2", "--time-budget", "600",
                           "--out", str(out), "--no-progress")
    assert code == 0, err
    model = load_model(out)
    assert model.card.kwargs["in_channels"] == 1 and model.card.preprocessing["channels"] == 1
    mask = Predictor(out).predict(path)
    assert mask.shape == raw.shape
