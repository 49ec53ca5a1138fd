"""The REST API through FastAPI's test client: every endpoint, every refusal, and the embedding cache."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.core.info import DatasetInfo
from omniseg.models import ModelCard, create_model, save_model

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from omniseg.server import ServerSettings, create_app  # noqa: E402

SAM = dict(img_size=64, embed_dim=32, depth=1, num_heads=2, global_attn_indexes=(0,), window_size=4, prompt_embed_dim=32,
           decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "depth": 2, "base_channels": 8}
    save_model(create_model("unet", **kwargs), root / "scenes",
               ModelCard("unet", kwargs, DatasetInfo(["background", "disc", "square"], ignore_index=255),
                         preprocessing={"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}))
    save_model(create_model("sam", **SAM), root / "sam", ModelCard("sam", dict(SAM), DatasetInfo(["background", "object"], ignore_index=255),
                                                                 task="promptable"))
    return root


@pytest.fixture(scope="module")
def client(runs):
    app = create_app([runs / "scenes", runs / "sam"], ServerSettings(max_upload_bytes=200_000, max_pixels=300 * 300))
    with TestClient(app) as client:
        yield client


IMAGE = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)


def test_health_models_and_the_openapi_page(client):
    assert client.get("/api/health").json()["status"] == "ok"
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert models["scenes"]["task"] == "semantic" and models["scenes"]["classes"] == ["background", "disc", "square"]
    assert models["sam"]["task"] == "promptable"
    assert "/api/prompt" in client.get("/openapi.json").json()["paths"] and client.get("/docs").status_code == 200


def test_semantic_prediction_is_a_class_png_of_the_image_size(client, runs):
    answer = client.post("/api/predict", files={"file": ("a.png", png(IMAGE))}, data={"model": "scenes"}).json()
    mask = decoded(answer["mask_png"])
    assert mask.shape == (40, 56) and set(np.unique(mask).tolist()) == set(answer["present"]) <= {0, 1, 2}
    from omniseg.inference import Predictor

    assert (mask == Predictor(runs / "scenes").predict(IMAGE)).all()


def test_a_click_costs_one_decoder_call_on_the_cached_embedding(client):
    model = client.app.state.omniseg.models["sam"].predictor.model
    encodes = []
    handle = model.image_encoder.register_forward_hook(lambda *a: encodes.append(1))
    embedded = client.post("/api/embed", files={"file": ("a.png", png(IMAGE))}).json()
    assert (embedded["width"], embedded["height"]) == (56, 40)
    first = client.post("/api/prompt", json={"embedding_id": embedded["embedding_id"], "points": [[20, 10]]}).json()
    assert len(first["masks"]) == 3 and len(first["scores"]) == 3 and decoded(first["masks"][0]).shape == (40, 56)
    second = client.post("/api/prompt", json={"embedding_id": embedded["embedding_id"], "points": [[20, 10], [50, 30]],
                                              "labels": [1, 0], "logits_id": first["logits_id"], "multimask": False}).json()
    assert len(second["masks"]) == 1
    boxes = client.post("/api/prompt", json={"embedding_id": embedded["embedding_id"], "boxes": [[0, 0, 20, 20], [10, 5, 50, 35]]}).json()
    assert len(boxes["masks"]) == 2
    handle.remove()
    assert len(encodes) == 1
    # the answer is the library's: the same prompt through the predictor gives the same mask
    from omniseg.inference import PromptPredictor

    predictor = PromptPredictor(model, device="cpu")
    predictor.set_image(IMAGE)
    expected = predictor.predict(points=[[20, 10]]).masks
    assert all(((decoded(m) > 0) == e).all() for m, e in zip(first["masks"], expected))


def test_the_prompt_engines_label_by_box_without_weights(client):
    # a bright square on a dark noisy ground: GrabCut and the random walker find it from a box around it
    rng = np.random.default_rng(1)
    image = rng.integers(0, 40, (48, 48, 3), dtype=np.uint8)
    image[14:34, 12:30] = rng.integers(200, 255, (20, 18, 3), dtype=np.uint8)
    truth = np.zeros((48, 48), bool)
    truth[14:34, 12:30] = True
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert models["grabcut"]["engine"] == "grabcut" and models["random-walker"]["task"] == "promptable"
    assert models["sam"]["engine"] is None
    for engine in ("grabcut", "random-walker"):
        embedded = client.post("/api/embed", files={"file": ("s.png", png(image))}, data={"model": engine}).json()
        answer = client.post("/api/prompt", json={"embedding_id": embedded["embedding_id"], "boxes": [[9, 11, 33, 37]]}).json()
        mask = decoded(answer["masks"][0]) > 0
        assert (mask & truth).sum() / (mask | truth).sum() > 0.9, engine
        assert answer["scores"] == [None] and answer["logits_id"] is None  # no quality estimate, no mask prompt


def test_classical_segmentation(client):
    answer = client.post("/api/segment", files={"file": ("a.png", png(IMAGE))},
                         data={"method": "slic", "parameters": '{"segments": 20}'}).json()
    labels = decoded(answer["labels_png"])
    assert labels.shape == (40, 56) and answer["regions"] == int(labels.max()) + 1 > 1


def test_refusals_have_their_status_and_a_message(client):
    big = np.zeros((400, 400, 3), np.uint8)
    noise = np.random.default_rng(1).integers(0, 255, (300, 290, 3), dtype=np.uint8)
    cases = [
        (client.post("/api/predict", files={"file": ("n.png", png(noise))}, data={"model": "scenes"}), 413, "bytes; the limit"),
        (client.post("/api/predict", files={"file": ("b.png", png(big))}, data={"model": "scenes"}), 413, "pixels; the limit"),
        (client.post("/api/predict", files={"file": ("t.txt", b"hello")}, data={"model": "scenes"}), 415, "not an image"),
        (client.post("/api/predict", files={"file": ("c.png", png(IMAGE)[:300])}, data={"model": "scenes"}), 422, "truncated"),
        (client.post("/api/predict", files={"file": ("a.png", png(IMAGE))}, data={"model": "nope"}), 404, "no model 'nope'"),
        (client.post("/api/predict", files={"file": ("a.png", png(IMAGE))}, data={"model": "sam"}), 422, "is promptable"),
        (client.post("/api/prompt", json={"embedding_id": "missing", "points": [[1, 1]]}), 404, "unknown or was evicted"),
        (client.post("/api/segment", files={"file": ("a.png", png(IMAGE))}, data={"method": "nope"}), 404, "no classical method"),
        (client.post("/api/segment", files={"file": ("a.png", png(IMAGE))}, data={"method": "slic", "parameters": '{"k": 1}'}),
         422, "has no parameter"),
    ]
    embedded = client.post("/api/embed", files={"file": ("a.png", png(IMAGE))}).json()["embedding_id"]
    cases.append((client.post("/api/prompt", json={"embedding_id": embedded, "points": [[80, 10]]}), 422, "outside the 56 x 40 image"))
    cases.append((client.post("/api/prompt", json={"embedding_id": embedded, "boxes": [[10, 10, 5, 20]]}), 422, "is empty"))
    for response, status, message in cases:
        assert response.status_code == status and message in response.json()["detail"], (status, response.json())
    assert client.get("/api/health").status_code == 200  # and it keeps serving


def test_the_embedding_cache_drops_the_least_recently_used_by_bytes():
    from omniseg.server.cache import Embedding, EmbeddingCache

    cache = EmbeddingCache(max_bytes=3 * 4096)
    keys = [cache.add(Embedding("m", torch.zeros(1024), (1, 1), (1, 1))) for _ in range(3)]
    assert cache.get(keys[0]) is not None  # used: now the most recent
    cache.add(Embedding("m", torch.zeros(1024), (1, 1), (1, 1)))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None and len(cache) == 3


def test_kept_objects_are_saved_as_coco_that_omniseg_reads(runs, tmp_path):
    from omniseg.data.formats import load_dataset

    app = create_app([runs / "sam"], ServerSettings(label_dir=tmp_path / "labels"))
    square = np.zeros((40, 56), np.uint8)
    square[5:20, 10:30] = 255
    disc = np.zeros((40, 56), np.uint8)
    disc[25:35, 35:50] = 255
    objects = [{"class": "square", "mask_png": base64.b64encode(png(square)).decode()},
               {"class": "disc", "mask_png": base64.b64encode(png(disc)).decode()}]
    import json

    with TestClient(app) as client:
        for name in ("one.png", "two.png", "one.png"):  # saving an image again replaces its objects
            answer = client.post("/api/labels", files={"file": (name, png(IMAGE))}, data={"objects": json.dumps(objects)}).json()
        assert (answer["images"], answer["annotations"], answer["categories"]) == (2, 4, 2)
        bad = client.post("/api/labels", files={"file": ("x.png", png(IMAGE))},
                          data={"objects": json.dumps([{"class": "", "mask_png": objects[0]["mask_png"]}])})
        assert bad.status_code == 422 and "class name" in bad.json()["detail"]
    source = load_dataset(tmp_path / "labels")
    samples = [d[i] for d in map(source.dataset, source.splits()) for i in range(len(d))]
    assert sorted(source.info.class_names) == ["background", "disc", "square"]
    assert len(samples) == 2 and all(len(s["instances"]["labels"]) == 2 for s in samples)
    assert int(samples[0]["instances"]["masks"].sum()) == 15 * 20 + 10 * 15


def test_the_page_and_its_modules_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/api/prompt" in script.text
    assert client.get("/static/style.css").status_code == 200


def test_instance_runs_answer_with_boxes_scores_and_rle(tmp_path):
    torch.manual_seed(0)
    kwargs = {"num_classes": 2, "encoder": "resnet18", "anchor_sizes": "small", "fpn_channels": 32, "box_head_size": 64,
              "mask_head_channels": 16, "mask_head_layers": 1}
    save_model(create_model("maskrcnn", **kwargs), tmp_path / "cells",
               ModelCard("maskrcnn", kwargs, DatasetInfo(["background", "cell"], ignore_index=255, things=[1]), task="instance"))
    with TestClient(create_app([tmp_path / "cells"])) as client:  # random weights: every detection kept
        answer = client.post("/api/predict", files={"file": ("a.png", png(IMAGE))}, data={"score_threshold": "0"}).json()
        assert client.post("/api/predict", files={"file": ("a.png", png(IMAGE))}, data={"score_threshold": "2"}).status_code == 422
    from pycocotools import mask as mask_utils

    from omniseg.inference import Predictor

    expected = Predictor(tmp_path / "cells").predict_instances(IMAGE, score_threshold=0)
    assert answer["task"] == "instance" and len(answer["instances"]) == len(expected["boxes"]) > 0
    ids = decoded(answer["instances_png"])
    assert ids.shape == (40, 56) and ids.max() <= len(answer["instances"])
    for k, (got, mask, box, label) in enumerate(zip(answer["instances"], expected["masks"], expected["boxes"], expected["labels"])):
        assert got["class"] == ["background", "cell"][int(label)] and np.allclose(got["box"], box, atol=1e-3)
        rle = got["rle"] | {"counts": got["rle"]["counts"].encode()}
        assert got["rle"]["size"] == [40, 56] and (mask_utils.decode(rle) == mask).all()
        assert mask[ids == k + 1].all()  # the id PNG paints each instance inside its own mask


def test_checkpoint_files_are_served_with_their_architecture(tmp_path):
    from omniseg.errors import ConfigError

    (tmp_path / "weights.pth").write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="pass --arch"):
        create_app([tmp_path / "weights.pth"])
    (tmp_path / "mobile_sam.pt").write_bytes(b"not weights")  # an official name gives the architecture, then its sha256 is checked
    with pytest.raises(ConfigError, match="not the official file's"):
        create_app([tmp_path / "mobile_sam.pt"])
