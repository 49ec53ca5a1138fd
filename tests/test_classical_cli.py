"""``omniseg segment`` (every method, its outputs and errors) and ``omniseg eval --unsupervised`` on a BSDS folder."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from omniseg.classical.methods import METHODS

from .conftest import SHARED_DATA, two_flat_regions

# per method, the options under which it splits the two flat regions exactly
ARGUMENTS = {
    "otsu": [], "multi-otsu": ["--param", "classes=2"], "kmeans": ["--param", "k=2"], "mean-shift": [],
    "gmm": ["--param", "k=2"], "watershed": [], "split-merge": [], "mrf-icm": ["--param", "k=2"],
    "mrf-gibbs": ["--param", "k=2", "--param", "iterations=5"], "slic": ["--param", "segments=2"],
    "slic0": ["--param", "segments=2", "--param", "smoothing=0"], "felzenszwalb": [], "rag-merge": [],
    "ncut": [], "grabcut": ["--box", "9,0,16,12"], "random-walker": ["--seeds", "SEEDS"],
}


@pytest.fixture
def flat_image(tmp_path):
    image, truth = two_flat_regions()
    Image.fromarray(image).save(tmp_path / "flat.png")
    seeds = np.zeros((12, 16), np.uint8)
    seeds[6, 2], seeds[6, 14] = 1, 2
    Image.fromarray(seeds).save(tmp_path / "seeds.png")
    return tmp_path, truth


def _write_bsds(root, stem: str, segmentations: list[np.ndarray]) -> None:
    from omniseg.metrics import label_boundaries

    (root / "groundTruth" / "test").mkdir(parents=True)
    (root / "images" / "test").mkdir(parents=True)
    cells = np.empty((1, len(segmentations)), dtype=object)
    for i, segmentation in enumerate(segmentations):
        cells[0, i] = {"Segmentation": (segmentation + 1).astype(np.uint16), "Boundaries": label_boundaries(segmentation).astype(np.uint8)}
    scipy.io.savemat(root / "groundTruth" / "test" / f"{stem}.mat", {"groundTruth": cells})


def test_every_method_runs_from_the_cli_and_splits_two_flat_regions(run_cli, flat_image):
    folder, truth = flat_image
    assert set(ARGUMENTS) == set(METHODS)
    for name, arguments in ARGUMENTS.items():
        arguments = [str(folder / "seeds.png") if a == "SEEDS" else a for a in arguments]
        out = folder / name
        code, _, err = run_cli("segment", folder / "flat.png", "--method", name, *arguments, "--out", out)
        assert code == 0, (name, err)
        labels = np.asarray(Image.open(out / "flat.png"))
        assert np.array_equal(labels, truth), name
        overlay = np.asarray(Image.open(out / "overlays" / "flat.png"))
        assert overlay.shape == (12, 16, 3) and (overlay[:, 8] == (255, 255, 0)).all()  # column 8 is the boundary
        record = json.loads((out / "segment.json").read_text())
        assert record["method"] == name and record["images"][0]["regions"] == 2 and record["images"][0]["seconds"] >= 0
        assert set(record["parameters"]) == set(METHODS[name].parameters())


def test_segment_parameters_are_typed_and_checked(run_cli, flat_image):
    folder, _ = flat_image
    code, _, _ = run_cli("segment", folder / "flat.png", "--method", "kmeans", "--param", "k=2", "--param", "connect=true",
                         "--param", "spatial-weight=0.5", "--out", folder / "k")
    record = json.loads((folder / "k" / "segment.json").read_text())
    assert code == 0 and record["parameters"] == {"k": 2, "spatial_weight": 0.5, "connect": True, "seed": 0, "iterations": 30}
    failures = {
        ("--method", "snakes"): "unknown method 'snakes'",
        ("--method", "kmeans", "--param", "colours=3"): "has no parameter colours; its parameters are k, spatial_weight",
        ("--method", "kmeans", "--param", "k=two"): "expected a int like the default 4",
        ("--method", "kmeans", "--param", "k"): "is not KEY=VALUE",
        ("--method", "kmeans", "--param", "k=9"): "flat.png: the image has 2 distinct pixel values",
        ("--method", "grabcut", "--box", "1,2,3"): "is not LEFT,TOP,RIGHT,BOTTOM",
        ("--method", "grabcut", "--box", "0,0,40,40"): "is not inside the 16x12 image",
        ("--method", "random-walker"): "needs seeds",
        ("--method", "otsu", "--seeds", str(folder / "seeds.png")): "takes no seeds or box",
        ("--method", "random-walker", "--seeds", str(folder / "empty")): "no seeds",
        ("--method", "random-walker", "--seeds", str(folder / "flat.png")): "are a colour image",
    }
    (folder / "empty").mkdir()
    for arguments, message in failures.items():
        code, _, err = run_cli("segment", folder / "flat.png", *arguments, "--out", folder / "bad")
        assert code == 2 and message in " ".join(err.split()), (arguments, err)
    code, out, _ = run_cli("segment", "--list")
    assert code == 0 and all(name in out for name in METHODS)


def test_eval_unsupervised_scores_segmentations_against_a_bsds_folder(run_cli, tmp_path):
    truth = np.zeros((20, 30), np.int64)
    truth[:, 15:] = 1
    other = truth.copy()
    other[10:, :15] = 2  # a second annotator also splits the left half
    _write_bsds(tmp_path / "bsds", "img", [truth, other])
    (tmp_path / "pred").mkdir()
    Image.fromarray(truth.astype(np.uint16) + 7).save(tmp_path / "pred" / "img.png")  # any region ids
    code, out, err = run_cli("eval", "--unsupervised", "--pred", tmp_path / "pred", "--gt", tmp_path / "bsds", "--json")
    assert code == 0, err
    report = json.loads(out)
    # against the first annotator everything is perfect; the second splits the left half in two (150 + 150 pixels)
    n = 600
    split_pairs = 150 * 150  # pixel pairs the second annotator separates and the prediction joins
    assert report["mean"]["pri"] == pytest.approx((1 + 1 - split_pairs / (n * (n - 1) / 2)) / 2)
    voi_second = 300 / n * np.log(2)  # H(truth | prediction): the left half's two equal parts
    assert report["mean"]["voi"] == pytest.approx(voi_second / 2)
    assert report["mean"]["covering"] == pytest.approx((1 + (300 + 150 * 0.5 * 2) / n) / 2)
    boundary = report["boundary"]  # the second annotator's horizontal edge (14 px off the vertical one) is missed
    assert boundary["precision"] == 1.0 and boundary["truth"] == 20 + (20 + 14) and boundary["matched_truth"] == 40
    code, _, err = run_cli("eval", "--unsupervised", "--pred", tmp_path / "pred", "--gt", tmp_path / "pred")
    assert code == 2 and "holds no BSDS ground truth" in err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "pred" / "img.png")
    code, _, err = run_cli("eval", "--unsupervised", "--pred", tmp_path / "pred", "--gt", tmp_path / "bsds")
    assert code == 2 and "segment the image at its own size" in " ".join(err.split())


@pytest.mark.skipif(not (SHARED_DATA / "bsds500").is_dir(), reason="needs ../shared/data/bsds500")
def test_segment_and_evaluate_the_shared_bsds_sample(run_cli, tmp_path):
    from omniseg.classical import felzenszwalb_segmentation
    from omniseg.data.formats.bsds import read_bsds_truth
    from omniseg.data.imageio import read_image
    from omniseg.metrics.unsupervised import unsupervised_scores

    images = sorted((SHARED_DATA / "bsds500" / "images" / "train").glob("*.jpg"))[:2]
    code, _, err = run_cli("segment", *images, "--method", "felzenszwalb", "--param", "scale=300", "--out", tmp_path / "fh")
    assert code == 0, err
    code, out, err = run_cli("eval", "--unsupervised", "--pred", tmp_path / "fh", "--gt", SHARED_DATA / "bsds500", "--json")
    assert code == 0, err
    report = json.loads(out)
    for path in images:  # the command's numbers are the library's
        segmentation = felzenszwalb_segmentation(read_image(path).permute(1, 2, 0).numpy(), 300)
        direct = unsupervised_scores(segmentation, *read_bsds_truth(SHARED_DATA / "bsds500" / "groundTruth" / "train" / f"{path.stem}.mat"))
        row = report["images"][path.stem]
        assert row["pri"] == pytest.approx(direct["pri"]) and row["voi"] == pytest.approx(direct["voi"])
        assert row["covering"] == pytest.approx(direct["covering"]) and row["boundary_f"] == pytest.approx(direct["boundary"].f)
        assert 0.3 < row["boundary_f"] < 0.9 and 0.5 < row["pri"] < 1.0


@pytest.mark.skipif(not (SHARED_DATA / "bsds500").is_dir(), reason="needs ../shared/data/bsds500")
def test_every_method_runs_from_the_cli_on_a_bsds_photograph(run_cli, tmp_path):
    from omniseg.data.formats.bsds import read_bsds_truth

    image = SHARED_DATA / "bsds500" / "images" / "train" / "100075.jpg"
    segmentations, _ = read_bsds_truth(SHARED_DATA / "bsds500" / "groundTruth" / "train" / "100075.mat")
    seeds = np.zeros(segmentations.shape[1:], np.uint8)  # one seed in each of the first annotator's regions
    for number, region in enumerate(np.unique(segmentations[0])):
        rows, columns = np.nonzero(segmentations[0] == region)
        seeds[rows[len(rows) // 2], columns[len(rows) // 2]] = number + 1
    Image.fromarray(seeds).save(tmp_path / "seeds.png")
    extra = {"random-walker": ["--seeds", tmp_path / "seeds.png"], "grabcut": ["--box", "100,50,380,300"]}
    for name in METHODS:
        code, _, err = run_cli("segment", image, "--method", name, *extra.get(name, []), "--out", tmp_path / name)
        assert code == 0, (name, err)
        labels = np.asarray(Image.open(tmp_path / name / "100075.png"))
        record = json.loads((tmp_path / name / "segment.json").read_text())
        assert labels.shape == (321, 481) and record["images"][0]["regions"] == int(labels.max()) + 1 >= 2, name
