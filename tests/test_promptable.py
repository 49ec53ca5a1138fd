"""Segment Anything: parity with the official package (tiny random configurations), the official checkpoint
layouts, checkpoint safety, the prompt predictor and its errors, the automatic generator, the weight-free
engines, ONNX export and the CLI."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.core.info import DatasetInfo
from omniseg.errors import ConfigError, OmnisegError
from omniseg.inference.promptable.automatic_masks import AutomaticMaskGenerator, crop_boxes, masks_to_boxes
from omniseg.inference.promptable.prompt_predictor import ClassicalPromptEngine, PromptPredictor, load_prompt_model
from omniseg.models import ModelCard, create_model, save_model

from .conftest import TINY_SAM as TINY, rectangle_scenes as scenes

official = pytest.importorskip("segment_anything")
from segment_anything import SamAutomaticMaskGenerator, SamPredictor  # noqa: E402
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer  # noqa: E402

DATA = Path(__file__).parent / "data"


def official_tiny() -> Sam:
    """The official classes in the TINY configuration (random weights)."""
    size, dim = TINY["img_size"], TINY["prompt_embed_dim"]
    return Sam(
        image_encoder=ImageEncoderViT(depth=2, embed_dim=32, img_size=size, mlp_ratio=4, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                      num_heads=2, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,),
                                      window_size=4, out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(size // 16, size // 16), input_image_size=(size, size),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=2),
                                 transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=32)).eval()


@pytest.fixture(scope="module")
def trained_pair(trained_tiny_sam) -> tuple[Sam, torch.nn.Module]:
    """The trained tiny SAM as the official model and as omniseg's, with one state dict."""
    theirs = official_tiny()
    theirs.load_state_dict(trained_tiny_sam.state_dict())  # strict: every key and shape of the official layout
    return theirs, trained_tiny_sam


@pytest.fixture(scope="module")
def test_image() -> np.ndarray:
    image, _ = scenes(1, 150, np.random.default_rng(5))[0]
    return np.ascontiguousarray(image[:, :120])  # not square: exercises the resize and the padding


def test_the_official_vit_layouts_hold_the_same_keys_and_shapes_on_the_meta_device():
    with torch.device("meta"):
        for size in ("b", "l", "h"):
            theirs = {k: tuple(v.shape) for k, v in official.sam_model_registry[f"vit_{size}"]().state_dict().items()}
            ours = {k: tuple(v.shape) for k, v in create_model(f"sam_vit_{size}").state_dict().items()}
            assert ours == theirs, size
        mobile = {k: list(v.shape) for k, v in create_model("mobile_sam").state_dict().items()}
        decoder = {k: list(v.shape) for k, v in official.sam_model_registry["vit_b"]().state_dict().items() if not k.startswith("image_encoder.")}
    # the image encoder keys of MobileSAM's mobile_sam.pt (TinyViT-5M: 302 tensors, classifier head included)
    expected = {f"image_encoder.{k}": v for k, v in json.loads((DATA / "mobile_sam_image_encoder.json").read_text()).items()}
    assert mobile == {**expected, **decoder}


def test_image_encoder_matches_the_official_one():
    torch.manual_seed(1)
    theirs = official_tiny()
    for p in theirs.parameters():
        p.data.normal_(0, 0.2)  # relative positions and the position embedding too (zero at init)
    ours = create_model("sam", **TINY)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(ours.image_encoder(x), theirs.image_encoder(x), atol=1e-5, rtol=0)


PROMPTS = {
    "a point": dict(point_coords=[[40, 60]], point_labels=[1]),
    "points with negatives": dict(point_coords=[[40, 60], [90, 20], [10, 140]], point_labels=[1, 0, 0]),
    "a box": dict(box=[20, 30, 100, 120]),
    "a box and a point": dict(box=[20, 30, 100, 120], point_coords=[[60, 70]], point_labels=[1]),
}


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_prompt_predictions_match_the_official_predictor(trained_pair, test_image, prompt, multimask):
    theirs, ours = trained_pair
    official_predictor, predictor = SamPredictor(theirs), PromptPredictor(ours, device="cpu")
    official_predictor.set_image(test_image)
    predictor.set_image(test_image)
    given = PROMPTS[prompt]
    kwargs = {"points": given.get("point_coords"), "labels": given.get("point_labels"), "boxes": given.get("box")}
    masks, scores, low_res = official_predictor.predict(**{k: None if v is None else np.array(v) for k, v in given.items()},
                                                        multimask_output=multimask)
    result = predictor.predict(**kwargs, multimask=multimask)
    assert result.masks.shape == masks.shape == ((3 if multimask else 1), 150, 120)
    assert np.abs(result.low_res_logits - low_res).max() < 1e-5
    assert np.abs(result.scores - scores).max() < 1e-5
    assert (result.masks == masks).all()
    # the previous low-resolution logits as a mask prompt, with the box
    best = low_res[np.argmax(scores)][None]
    masks, scores, low_res = official_predictor.predict(box=np.array([20, 30, 100, 120]), mask_input=best, multimask_output=multimask)
    result = predictor.predict(boxes=[20, 30, 100, 120], mask_input=best, multimask=multimask)
    assert np.abs(result.low_res_logits - low_res).max() < 1e-5 and (result.masks == masks).all()


def test_a_batch_of_boxes_is_one_call_and_matches_the_official_batched_call(trained_pair, test_image):
    theirs, ours = trained_pair
    official_predictor, predictor = SamPredictor(theirs), PromptPredictor(ours, device="cpu")
    official_predictor.set_image(test_image)
    predictor.set_image(test_image)
    boxes = np.array([[5, 5, 60, 70], [30, 40, 110, 140], [0, 0, 120, 150]], float)
    transformed = torch.as_tensor(official_predictor.transform.apply_boxes(boxes, test_image.shape[:2]), dtype=torch.float32)
    masks, scores, low_res = official_predictor.predict_torch(None, None, boxes=transformed, multimask_output=False)
    calls = []
    handle = ours.mask_decoder.register_forward_hook(lambda *a: calls.append(1))
    result = predictor.predict(boxes=boxes, multimask=False)
    handle.remove()
    assert len(calls) == 1 and result.masks.shape == (3, 1, 150, 120)
    assert np.abs(result.low_res_logits - low_res.numpy()).max() < 1e-5
    assert (result.masks == masks.numpy()).all()


@pytest.mark.parametrize("options", [
    dict(points_per_side=16, pred_iou_thresh=0.28, stability_score_thresh=0.2, stability_score_offset=0.1),
    dict(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0, crop_n_layers=1, min_mask_region_area=40),
], ids=["filters", "crops-and-cleaning"])
def test_the_automatic_generator_returns_the_official_masks(trained_pair, test_image, options):
    theirs, ours = trained_pair
    expected = SamAutomaticMaskGenerator(theirs, output_mode="coco_rle", **options).generate(test_image)
    found = AutomaticMaskGenerator(PromptPredictor(ours, device="cpu"), **options).generate(test_image)
    key = (lambda r: (r["segmentation"]["counts"], tuple(r["bbox"]), r["area"], tuple(r["crop_box"])))
    assert len(found) >= 3 and len({r["area"] for r in found}) >= 3  # real, differing masks
    assert [key(r) for r in found] == [key(r) for r in expected]
    for name in ("predicted_iou", "stability_score", "point_coords"):
        assert np.allclose([r[name] for r in found], [r[name] for r in expected], atol=1e-5, equal_nan=True), name


def test_the_automatic_generator_on_one_tile_is_the_generator(trained_pair, test_image):
    generator = AutomaticMaskGenerator(PromptPredictor(trained_pair[1], device="cpu"), points_per_side=6, pred_iou_thresh=0,
                                       stability_score_thresh=0)
    whole = [r for r in generator.generate(test_image) if r["area"] > 0]
    tiled = generator.generate_tiled(test_image, tile=max(test_image.shape))  # one tile: nothing to merge
    assert len(whole) > 3
    assert sorted((r["segmentation"]["counts"], round(r["predicted_iou"], 5)) for r in tiled) == \
        sorted((r["segmentation"]["counts"], round(r["predicted_iou"], 5)) for r in whole)


def test_crop_boxes_and_mask_boxes_on_hand_computed_cases():
    boxes, layers = crop_boxes((100, 200), 1, 0.5)
    # layer 1: 2 x 2 crops overlapping by int(0.5 * 100 * 2 / 2) = 50 px; width ceil((50 + 200) / 2) = 125, height 75
    assert boxes == [[0, 0, 200, 100], [0, 0, 125, 75], [0, 25, 125, 100], [75, 0, 200, 75], [75, 25, 200, 100]]
    assert layers == [0, 1, 1, 1, 1]
    masks = torch.zeros(2, 5, 6, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    assert masks_to_boxes(masks).tolist() == [[2, 1, 4, 2], [0, 0, 0, 0]]


def test_checkpoints_load_strictly_and_safely(tmp_path):
    model = create_model("sam", **TINY)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    loaded = create_model("sam", **TINY, checkpoint=str(path))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    # another architecture's checkpoint: the first mismatching keys are named
    with pytest.raises(OmnisegError, match=r"wrong shape \['image_encoder"):
        create_model("sam", **{**TINY, "embed_dim": 64}, checkpoint=str(path))
    # an official file name with other bytes: the published sha256 catches it
    fake = tmp_path / "sam_vit_b_01ec64.pth"
    fake.write_bytes(path.read_bytes())
    with pytest.raises(ConfigError, match="not the official file's"):
        create_model("sam_vit_b", checkpoint=str(fake))
    # a pickle that would run code is refused, never executed

    class Payload:
        def __reduce__(self):
            return (Path(tmp_path / "pwned").touch, ())

    evil = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(ConfigError, match="cannot be read as a plain state dict"):
        create_model("sam", **TINY, checkpoint=str(evil))
    assert not (tmp_path / "pwned").exists()


def test_the_predictor_caches_embeddings_and_refuses_bad_prompts(test_image):
    model = create_model("sam", **TINY)
    encodes = []
    model.image_encoder.register_forward_hook(lambda *a: encodes.append(1))
    predictor = PromptPredictor(model, device="cpu")
    with pytest.raises(OmnisegError, match="call set_image"):
        predictor.predict(points=[[1, 1]])
    predictor.set_image(test_image)
    predictor.set_image(test_image[::-1].copy())
    predictor.set_image(test_image)
    assert len(encodes) == 2
    for kwargs, message in [
        (dict(points=[[120, 10]]), r"point \(120, 10\) is outside the 120 x 150 image"),
        (dict(boxes=[50, 50, 50, 80]), "is empty"),
        (dict(boxes=[-5, 0, 50, 80]), "leaves the 120 x 150 image"),
        (dict(points=[[5, 5]], labels=[2]), "labels are 1 .object. or 0"),
        (dict(), "give a prompt"),
        (dict(boxes=[0, 0, 50, 80], mask_input=np.zeros((1, 64, 64))), r"mask_input is \(64, 64\) but this model takes \(32, 32\)"),
        (dict(points=np.zeros((2, 1, 2)), boxes=np.ones((3, 4)) * [0, 0, 5, 5]), "disagree in batch size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            predictor.predict(**kwargs)


def square_image() -> np.ndarray:
    image = np.full((60, 80, 3), 30, np.uint8)
    image[15:45, 20:55] = (220, 200, 40)
    image += np.random.default_rng(0).integers(0, 12, image.shape, dtype=np.uint8)
    return image


@pytest.mark.parametrize("engine", ["grabcut", "random-walker"])
def test_weight_free_engines_answer_the_same_calls(engine):
    truth = np.zeros((60, 80), bool)
    truth[15:45, 20:55] = True
    predictor = load_prompt_model(engine=engine)
    predictor.set_image(square_image())
    iou = (lambda m: (m & truth).sum() / (m | truth).sum())
    boxed = predictor.predict(boxes=[12, 10, 60, 50])
    assert boxed.masks.shape == (1, 60, 80) and np.isnan(boxed.scores).all() and iou(boxed.masks[0]) > 0.95
    clicked = predictor.predict(points=[[35, 30], [5, 5]], labels=[1, 0])
    assert iou(clicked.masks[0]) > 0.95
    batch = predictor.predict(boxes=[[12, 10, 60, 50], [15, 12, 62, 52]])
    assert batch.masks.shape == (2, 1, 60, 80)
    with pytest.raises(ConfigError, match="takes no mask input"):
        predictor.predict(boxes=[12, 10, 60, 50], mask_input=np.zeros((1, 8, 8)))
    assert isinstance(predictor, ClassicalPromptEngine)


def test_onnx_decoder_and_encoder_match_pytorch_for_any_points_and_image_size(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from omniseg.inference.promptable.export_sam import SamPromptDecoder, decoder_example, export_sam_onnx

    torch.manual_seed(2)
    model = create_model("sam", **TINY)
    report = export_sam_onnx(model, tmp_path)
    assert report["decoder_max_abs_difference"] <= 1e-4 and report["encoder_max_abs_difference"] <= 1e-4
    session = ort.InferenceSession(report["decoder"], providers=["CPUExecutionProvider"])
    inputs = decoder_example(model, points=5)
    inputs["orig_im_size"] = torch.tensor([90.0, 200.0])
    inputs["has_mask_input"] = torch.tensor([0.0])
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        expected = SamPromptDecoder(model)(*inputs.values())
    assert got[0].shape == (1, 4, 90, 200)
    assert max(np.abs(g - e.numpy()).max() for g, e in zip(got, expected)) <= 1e-4


@pytest.fixture
def tiny_run(tmp_path, trained_pair) -> Path:
    """The trained tiny SAM saved as an omniseg run directory."""
    run = tmp_path / "sam_run"
    save_model(trained_pair[1], run, ModelCard("sam", dict(TINY), DatasetInfo(["background", "object"], ignore_index=255), task="promptable"))
    return run


def test_prompt_cli_writes_masks_overlay_and_json(run_cli, tmp_path, tiny_run):
    image = tmp_path / "square.png"
    Image.fromarray(square_image()).save(image)
    code, out, err = run_cli("prompt", tiny_run, image, "--point", "35,30", "--point", "5,5,0", "--out", tmp_path / "p")
    assert code == 0, err
    record = json.loads((tmp_path / "p" / "prompt.json").read_text())
    assert record["labels"] == [1, 0] and len(record["objects"][0]["iou_predictions"]) == 3
    assert np.asarray(Image.open(tmp_path / "p" / "mask.png")).shape == (60, 80)
    assert len(list((tmp_path / "p" / "masks").glob("*.png"))) == 3 and (tmp_path / "p" / "overlay.png").is_file()
    code, out, err = run_cli("export", tiny_run, "--out", tmp_path / "onnx")
    assert code == 0 and "largest difference to PyTorch: decoder" in out and (tmp_path / "onnx" / "encoder.onnx").is_file()
    code, out, err = run_cli("prompt", image, "--engine", "grabcut", "--box", "12,10,60,50", "--out", tmp_path / "g")
    assert code == 0, err
    mask = np.asarray(Image.open(tmp_path / "g" / "mask.png")) > 0
    assert mask[15:45, 20:55].mean() > 0.95 and mask.sum() < 1.1 * 30 * 35
    for args, message in [(("--point", "500,30"), "outside the 80 x 60 image"), (("--box", "10,10,10,40"), "is empty"),
                          (("--point", "1,2,7"), "is not X,Y or X,Y,L")]:
        code, out, err = run_cli("prompt", tiny_run, image, *args, "--out", tmp_path / "bad")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    checkpoint = tmp_path / "tiny.pth"
    torch.save(create_model("sam", **TINY).state_dict(), checkpoint)
    code, out, err = run_cli("prompt", checkpoint, image, "--arch", "mobile_sam", "--point", "35,30", "--out", tmp_path / "bad")
    assert code == 2 and "does not fit the model: missing ['image_encoder" in " ".join(err.split())


def test_autolabel_writes_coco_that_omniseg_reads(run_cli, tmp_path, tiny_run):
    from omniseg.data.formats import load_dataset

    images = tmp_path / "images"
    images.mkdir()
    for k in range(2):
        Image.fromarray(square_image()[:, ::1 - 2 * k].copy()).save(images / f"s{k}.png")
    code, out, err = run_cli("autolabel", tiny_run, images, "--out", tmp_path / "labels", "--points-per-side", "4",
                             "--pred-iou-thresh", "0", "--stability-thresh", "0")
    assert code == 0, err
    coco = json.loads((tmp_path / "labels" / "annotations" / "instances.json").read_text())
    assert len(coco["images"]) == 2 and coco["categories"] == [{"id": 1, "name": "object"}] and coco["annotations"]
    assert all(a["area"] > 0 for a in coco["annotations"])
    source = load_dataset(tmp_path / "labels")
    samples = [dataset[i] for dataset in map(source.dataset, source.splits()) for i in range(len(dataset))]
    assert len(samples) == 2
    assert sum(len(s["instances"]["labels"]) for s in samples) == len(coco["annotations"])
    code, _, err = run_cli("autolabel", tiny_run, images, "--out", tmp_path / "tiled", "--points-per-side", "4",
                           "--pred-iou-thresh", "0", "--stability-thresh", "0", "--tile", "40")  # 2 x 3 tiles an image
    assert code == 0, err
    tiled = json.loads((tmp_path / "tiled" / "annotations" / "instances.json").read_text())
    assert tiled["annotations"] and all(a["area"] > 0 and a["bbox"][0] + a["bbox"][2] <= 80 for a in tiled["annotations"])


def test_detect_then_segment_prompts_sam_with_the_detector_boxes(tiny_run):
    from omniseg.inference.promptable.prompt_files import segment_detections

    class Detector:
        def predict_instances(self, image, score_threshold):
            return {"boxes": np.array([[12.0, 10, 60, 50], [-3, 0, 30, 20], [5, 5, 5, 9]]), "labels": np.array([1, 2, 1]),
                    "scores": np.array([0.9, 0.8, 0.7])}

    records = segment_detections(load_prompt_model(tiny_run, device="cpu"), Detector(), square_image(), 0.5)
    # the box leaving the image is clipped; the empty one is dropped; classes and scores are the detector's
    assert [(r["category_id"], r["score"]) for r in records] == [(1, 0.9), (2, 0.8)]
    assert all(r["segmentation"]["size"] == [60, 80] for r in records)


def test_eval_of_a_promptable_run_prints_the_click_table(run_cli, tmp_path, tiny_run):
    from omniseg.data.formats import load_dataset
    from omniseg.inference.evaluate import evaluate_clicks
    from omniseg.models import load_model

    from .test_instance_training import _squares_coco

    data = _squares_coco(tmp_path / "squares", count=6)  # two objects an image: a square and a bar
    code, out, err = run_cli("eval", tiny_run, "--data", data, "--json", str(tmp_path / "clicks.json"))
    assert code == 0, err
    assert "NoC@85" in out and "mIoU@1" in out and "objects clicked" in out
    report = json.loads((tmp_path / "clicks.json").read_text())
    validation = load_dataset(data).dataset("val")
    objects = sum(int(np.asarray(validation[i]["instances"]["masks"]).any((1, 2)).sum()) for i in range(len(validation)))
    assert report["task"] == "promptable" and report["objects"] == objects > 0
    assert 1 <= report["NoC@85"] <= report["NoC@90"] <= 20 and 0 <= report["mIoU@1"] <= 1
    again = evaluate_clicks(PromptPredictor(load_model(tiny_run), device="cpu"), validation)  # the API gives the same table
    curve = report.pop("miou_by_clicks")
    assert curve == pytest.approx(again.pop("miou_by_clicks")) and len(curve) == 20 and curve[0] == pytest.approx(report["mIoU@1"])
    assert report == pytest.approx(again | {"split": "val"})
    # a checkpoint file (its architecture named) and a weight-free engine are measured the same way
    torch.manual_seed(0)
    torch.save(create_model("sam", **TINY).state_dict(), tmp_path / "tiny.pth")
    for args in (["--arch", "sam"], ["--engine", "grabcut"]):
        source = [] if "--engine" in args else [tmp_path / "tiny.pth"]
        code, out, err = run_cli("eval", *source, *args, "--data", data, "--max-clicks", "3", "--json", str(tmp_path / "other.json"))
        if args[0] == "--arch":  # the architecture's defaults are ViT-B's: the tiny file does not fit them
            assert code == 2 and "does not fit the model" in err
            continue
        assert code == 0, err
        other = json.loads((tmp_path / "other.json").read_text())
        assert other["objects"] == objects and len(other["miou_by_clicks"]) == 3 and other["NoC@90"] <= 3
