"""The void (ignore) value is the dataset's, passed down explicitly: a void label of 0 (a class id) and of 11 (past
the classes, CamVid's) train and evaluate with exactly the numbers of a hand computation."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg import load_model
from omniseg.data.transforms import train_transforms
from torchvision import tv_tensors

from .conftest import write_classes, write_pair

COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [120, 120, 120]], np.uint8)


def void_dataset(root, void: int, names: list[str]):
    """16x16 images of coloured quarters; masks hold the quarter's class, or ``void`` on a diagonal band."""
    rng = np.random.default_rng(void)
    real = [c for c in range(len(names)) if c != void]
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            classes = rng.choice(real, 4)
            mask = np.kron(classes.reshape(2, 2), np.ones((8, 8), int)).astype(np.uint8)
            image = COLOURS[np.kron(np.arange(4).reshape(2, 2), np.ones((8, 8), int))]
            image = (image * rng.uniform(0.6, 1.0)).astype(np.uint8)
            mask[np.abs(np.subtract.outer(np.arange(16), np.arange(16))) < 2] = void  # unlabelled: the diagonal
            write_pair(root, split, f"{split}{i}", image, mask)
    write_classes(root, names, ignore_index=void)
    return root


CASES = {"void 0": (0, ["unlabelled", "a", "b", "c"]), "void 11": (11, [f"class_{i}" for i in range(11)])}
FROZEN = ["--model", "unet", "--set", "model.kwargs.depth=1", "--set", "model.kwargs.base_channels=4",
          "--set", "model.kwargs.norm_layer=none", "--loss", "ce", "--lr", "0", "--epochs", "1", "--batch-size", "3",
          "--img-size", "16", "--set", "data.scale_range=[1,1]", "--set", "data.hflip=false", "--set", "data.color_jitter=0",
          "--set", "data.eval_batch_size=2", "--no-progress"]


def _logits(model, path) -> np.ndarray:
    """The model's logits ``[K, H, W]`` for one image file, normalised as the run says (float64)."""
    mean, std = model.card.normalisation()
    image = np.asarray(Image.open(path).convert("RGB"), np.float64) / 255
    x = torch.from_numpy(((image - mean) / std).transpose(2, 0, 1)).float()[None]
    with torch.no_grad():
        return model(x)[0].double().numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_void_labels_train_and_evaluate_as_a_hand_computation(run_cli, tmp_path, case):
    void, names = CASES[case]
    data = void_dataset(tmp_path / "data", void, names)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", data, *FROZEN, "--out", run)  # lr 0: the weights stay as initialised
    assert code == 0, err
    model = load_model(run)
    assert model.card.info.ignore_index == void

    # training loss: cross entropy over the labelled pixels of the one batch (all three images), by hand
    terms = []
    for path in sorted((data / "images" / "train").glob("*.png")):
        logits, truth = _logits(model, path), np.asarray(Image.open(data / "masks" / "train" / path.name), np.int64)
        log_p = logits - np.log(np.exp(logits - logits.max(0)).sum(0)) - logits.max(0)
        labelled = truth != void
        rows, cols = np.nonzero(labelled)
        terms.append(-log_p[truth[labelled], rows, cols])
    with open(run / "history.csv") as f:
        train_loss = float(next(csv.DictReader(f))["train_loss"])
    assert train_loss == pytest.approx(np.concatenate(terms).mean(), rel=1e-5)

    # validation: IoU per class over labelled pixels; the void class (when it is a class id) is in no mean
    pred, truth = [], []
    for path in sorted((data / "images" / "val").glob("*.png")):
        pred.append(_logits(model, path).argmax(0).ravel())
        truth.append(np.asarray(Image.open(data / "masks" / "val" / path.name), np.int64).ravel())
    pred, truth = np.concatenate(pred), np.concatenate(truth)
    pred, truth = pred[truth != void], truth[truth != void]
    ious = {}
    for c in range(len(names)):
        union = np.sum((pred == c) | (truth == c))
        if c != void and union:
            ious[names[c]] = np.sum((pred == c) & (truth == c)) / union
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["miou"] == pytest.approx(np.mean(list(ious.values())), abs=1e-12)
    assert metrics["pixel_accuracy"] == pytest.approx(np.mean(pred == truth), abs=1e-12)
    reported = {row["name"]: row["iou"] for row in metrics["per_class"] if row["iou"] is not None}
    assert reported == pytest.approx(ious, abs=1e-12)
    code, out, err = run_cli("eval", run, "--data", data, "--json")
    assert code == 0, err
    assert json.loads(out)["miou"] == metrics["miou"]


def test_evaluating_on_data_with_another_void_value_says_so(run_cli, tmp_path):
    data = void_dataset(tmp_path / "data", 0, CASES["void 0"][1])
    run = tmp_path / "run"
    assert run_cli("train", "--data", data, *FROZEN, "--out", run)[0] == 0
    write_classes(data, CASES["void 0"][1], ignore_index=255)  # the same masks, now said to be void at 255
    code, _, err = run_cli("eval", run, "--data", data)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "255" in lines[0] and "ignore_index 0" in lines[0] and "--ignore-index" in lines[0]
    code, out, err = run_cli("eval", run, "--data", data, "--ignore-index", "0", "--json")
    assert code == 0 and json.loads(out)["miou"] == json.loads((run / "metrics.json").read_text())["miou"]


def test_training_crops_pad_the_mask_with_the_void_value():
    transform = train_transforms(img_size=16, scale_range=(1.0, 1.0), hflip=False, color_jitter=0.0, ignore_index=11)
    sample = {"image": tv_tensors.Image(torch.zeros(3, 12, 16, dtype=torch.uint8)),
              "mask": tv_tensors.Mask(torch.zeros(12, 16, dtype=torch.int64))}
    mask = transform(sample)["mask"]
    assert mask.shape == (16, 16) and (mask == 11).sum() == 4 * 16 and set(mask.unique().tolist()) == {0, 11}


def test_the_ignore_index_option_replaces_the_datasets_own_before_labels_are_checked(tmp_path):
    from omniseg.data import load_dataset
    from omniseg.errors import DataError

    data = void_dataset(tmp_path / "data", 0, CASES["void 0"][1])
    assert load_dataset(data).info.void_class == 0
    assert load_dataset(data, ignore_index=255).info.void_class is None  # class 0 is a class again
    data = void_dataset(tmp_path / "data11", 11, CASES["void 11"][1])
    with pytest.raises(DataError, match="has label 11 but the dataset has 11 classes"):
        load_dataset(data, ignore_index=0)  # class 0 void: 11 is then a label out of range
