"""The NIfTI (Decathlon / nnU-Net) reader, synthetic volumes, volume transforms and 3D training."""

import json

import numpy as np
import pytest
import torch

from omniseg.data.formats import load_dataset
from omniseg.data.formats.nifti import NiftiSlabs, read_nifti
from omniseg.data.synthetic_volumes import SyntheticVolumes, write_synthetic_volumes
from omniseg.data.transforms import PadCollate, VolumeTransform
from omniseg.errors import DataError

from .conftest import SHARED_DATA

nib = pytest.importorskip("nibabel")


def _save(path, array, dtype=np.float32):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array, dtype), np.eye(4)), path)


def _manifest(root, labels, **extra):
    (root / "dataset.json").write_text(json.dumps({"labels": labels, **extra}))


def test_synthetic_volumes_round_trip_through_nifti(tmp_path):
    write_synthetic_volumes(tmp_path, count=5, size=16, seed=2)
    source = load_dataset(tmp_path)
    assert source.name == "nifti" and source.info.class_names == ["background", "ball", "box"]
    assert sorted(len(source.dataset(s)) for s in source.splits()) == [1, 4]
    direct = SyntheticVolumes(5, size=16, seed=2)
    by_id = {c.id: c for split in source.splits() for c in source.dataset(split).cases}
    read = source.dataset("train")[0]
    index = int(read["meta"]["id"].split("_")[1])
    assert read["image"].shape == (1, 16, 16, 16) and read["mask"].dtype == torch.int64
    torch.testing.assert_close(read["image"], direct[index]["image"].as_subclass(torch.Tensor))
    assert torch.equal(read["mask"], direct[index]["mask"].as_subclass(torch.Tensor))
    assert len(by_id) == 5


def test_axes_are_z_y_x_and_nnunet_v2_channel_files(tmp_path):
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # stored as (x, y, z)
    _save(tmp_path / "imagesTr" / "case_0000.nii.gz", image)
    _save(tmp_path / "imagesTr" / "case_0001.nii.gz", image * 10)
    labels = (image > 10).astype(np.uint8)
    _save(tmp_path / "labelsTr" / "case.nii.gz", labels, np.uint8)
    _manifest(tmp_path, {"background": 0, "organ": 1}, channel_names={"0": "T1", "1": "T2"})
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["case"], "val": ["case"]}))
    source = load_dataset(tmp_path)
    sample = source.dataset("train")[0]
    assert sample["image"].shape == (2, 4, 3, 2) and source.num_channels == 2
    assert sample["image"][1, 3, 2, 1] == 10 * image[1, 2, 3]
    assert torch.equal(sample["mask"], torch.from_numpy(labels.transpose(2, 1, 0).astype(np.int64)))
    assert source.class_pixel_stats("train")[0].tolist() == [11, 13]


@pytest.mark.parametrize(
    ("defect", "message"),
    [
        ("label_size", "lie on the image's grid"),
        ("label_range", "outside the classes 0..1"),
        ("missing_label", "has no label"),
        ("bad_json", "is not valid JSON"),
        ("no_labels", "has no 'labels' mapping"),
        ("nan", "NaN"),
        ("channels", "declares 2"),
    ],
)
def test_bad_volumes_name_the_file_and_the_fix(tmp_path, defect, message):
    image = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)
    labels = np.zeros((6, 5, 4), np.uint8)
    if defect == "label_size":
        labels = labels[:5]
    if defect == "label_range":
        labels[0, 0, 0] = 7
    if defect == "nan":
        image[1, 1, 1] = np.nan
    _save(tmp_path / "imagesTr" / "a.nii.gz", image)
    _save(tmp_path / "imagesTr" / "b.nii.gz", image)
    if defect != "missing_label":
        _save(tmp_path / "labelsTr" / "a.nii.gz", labels, np.uint8)
    _save(tmp_path / "labelsTr" / "b.nii.gz", np.zeros((6, 5, 4)), np.uint8)
    _manifest(tmp_path, {"0": "background", "1": "organ"}, modality={"0": "CT", "1": "PET"} if defect == "channels" else {"0": "CT"})
    if defect == "bad_json":
        (tmp_path / "dataset.json").write_text("{not json")
    if defect == "no_labels":
        (tmp_path / "dataset.json").write_text("{}")
    with pytest.raises(DataError, match=message) as error:
        source = load_dataset(tmp_path, split_seed=0)
        for split in source.splits():
            for i in range(len(source.dataset(split))):
                source.dataset(split)[i]
    assert str(tmp_path) in str(error.value)


def test_volume_transform_crops_pads_flips_and_normalises():
    image = torch.arange(1 * 4 * 6 * 8, dtype=torch.float32).reshape(1, 4, 6, 8)
    mask = (image[0] % 3).long()
    sample = {"image": image, "mask": mask, "meta": {}}
    out = VolumeTransform((8, 4, 4), flip=True, ignore_index=255, seed=0)(sample)
    assert out["image"].shape == (1, 8, 4, 4) and out["mask"].shape == (8, 4, 4)
    assert (out["mask"] == 255).sum() == 4 * 4 * 4  # depth 4 padded to 8
    # the image and the mask move together: every kept voxel still maps value -> value % 3
    normalised = (image - image.mean()) / image.std()
    kept = out["mask"] != 255
    original = torch.round(out["image"][0][kept] * image.std() + image.mean()).long()
    assert torch.equal(original % 3, out["mask"][kept])
    assert torch.isin(out["image"][0][kept], normalised).all()
    whole = VolumeTransform()(sample)["image"]
    assert abs(whole.mean().item()) < 1e-5 and whole.std().item() == pytest.approx(1, abs=1e-5)
    batch = PadCollate(ignore_index=255)([{"image": whole, "mask": mask}, {"image": whole[:, :3, :5], "mask": mask[:3, :5]}])
    assert batch["image"].shape == (2, 1, 4, 6, 8) and batch["size"].tolist() == [[4, 6, 8], [3, 5, 8]]
    assert (batch["mask"][1, 3] == 255).all()


def test_train_a_3d_model_from_the_cli_and_evaluate_it(run_cli, tmp_path):
    data = write_synthetic_volumes(tmp_path / "vols", count=8, size=16, seed=1)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--data", data, "--model", "unet3d", "--set", "model.kwargs.base_channels=4",
                           "--set", "data.patch_size=[16,16,16]", "--batch-size", "2", "--epochs", "2",
                           "--loss", "ce+vnet_dice", "--out", out, "--no-progress")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [c["name"] for c in metrics["per_class"]] == ["background", "ball", "box"]
    assert metrics["global_step"] == 2 * 3  # 6 training volumes (2 held out), batches of 2
    assert list((out / "samples").glob("*.png")) and (out / "confusion.png").is_file()
    code, stdout, err = run_cli("eval", out, "--data", data, "--json")
    assert code == 0, err
    assert json.loads(stdout)["miou"] == pytest.approx(metrics["miou"])
    code, _, err = run_cli("predict", "--precision", "32", out, data / "imagesTr", "--out", tmp_path / "pred")
    assert code == 0, err
    predicted = nib.load(tmp_path / "pred" / "volume_000.nii.gz")
    source = nib.load(data / "imagesTr" / "volume_000.nii.gz")
    assert predicted.shape == source.shape and np.array_equal(predicted.affine, source.affine)
    assert (tmp_path / "pred" / "volume_000_middle_slice_overlay.png").is_file()
    # the labels written are the predictor's, on the file's (x, y, z) axes
    from omniseg.inference import Predictor

    expected = Predictor(out).predict_volume(np.asarray(source.dataobj).transpose(2, 1, 0))
    assert np.array_equal(np.asarray(predicted.dataobj).transpose(2, 1, 0), expected)
    # tiled, the file is read slab by slab, normalised with the whole volume's statistics as in training
    slabs = NiftiSlabs(data / "imagesTr" / "volume_000.nii.gz", slab_depth=5)
    whole = VolumeTransform()({"image": torch.from_numpy(read_nifti(data / "imagesTr" / "volume_000.nii.gz")[0])})["image"]
    torch.testing.assert_close(slabs(3, 11), whole[:, 3:11], atol=1e-5, rtol=0)
    code, _, err = run_cli("predict", "--precision", "32", out, data / "imagesTr" / "volume_000.nii.gz", "--out", tmp_path / "tiled", "--tile", "8", "--tta", "flip")
    assert code == 0, err
    tiled = np.asarray(nib.load(tmp_path / "tiled" / "volume_000.nii.gz").dataobj).transpose(2, 1, 0)
    in_memory = Predictor(out).predict_volume(np.asarray(source.dataobj).transpose(2, 1, 0), tile=8, tta="flip")
    assert (tiled == in_memory).mean() >= 0.999
    code, _, err = run_cli("export", out, "--size", "16x24x16", "--out", tmp_path / "m.onnx", "--json")
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["max_abs_difference"] < 1e-4
    code, _, err = run_cli("train", "--data", data, "--model", "unet", "--out", tmp_path / "r2", "--epochs", "1")
    assert code == 2 and "takes images" in err and "volumetric (vnet, unet3d)" in err


@pytest.mark.skipif(not (SHARED_DATA / "volumes").is_dir(), reason="../shared/data is absent")
def test_shared_nifti_volumes_read_as_the_decathlon_layout(tmp_path):
    # the shared samples are loose image/label pairs; laid out as Decathlon they open and train-read
    pairs = {"anatomical": "anatomical.nii", "reoriented": "reoriented_anat_moved.nii"}
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for case, name in pairs.items():
        (tmp_path / "imagesTr" / f"{case}.nii").symlink_to(SHARED_DATA / "volumes" / name)
        label = SHARED_DATA / "volumes" / name.replace(".nii", "_label.nii.gz")
        (tmp_path / "labelsTr" / f"{case}.nii.gz").symlink_to(label)
    values = set()
    for name in pairs.values():
        values |= set(np.unique(np.asarray(nib.load(SHARED_DATA / "volumes" / name.replace(".nii", "_label.nii.gz")).dataobj)).astype(int).tolist())
    _manifest(tmp_path, {str(i): f"class{i}" for i in range(max(values) + 1)})
    source = load_dataset(tmp_path, val_fraction=0.5)
    for split in source.splits():
        sample = source.dataset(split)[0]
        image = nib.load(sample["meta"]["path"])
        assert sample["image"].shape[1:] == image.shape[:3][::-1] == sample["mask"].shape
