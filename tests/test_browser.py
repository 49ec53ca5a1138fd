"""The page in real headless Chromium (Debian's package, driven by Playwright): open, predict, click, drag a
box, download the mask, keep two objects and save them to the labelling folder. Screenshots of each step
are saved in the test's temporary folder."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from omniseg.core.info import DatasetInfo
from omniseg.models import ModelCard, create_model, save_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

SAM = dict(img_size=64, embed_dim=32, depth=1, num_heads=2, global_attn_indexes=(0,), window_size=4, prompt_embed_dim=32,
           decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32)


@pytest.fixture
def server(tmp_path, shapes_dir):
    from omniseg.server import ServerSettings, create_app

    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "depth": 2, "base_channels": 8}
    save_model(create_model("unet", **kwargs), tmp_path / "scenes",
               ModelCard("unet", kwargs, DatasetInfo(["background", "disc", "square"], ignore_index=255),
                         preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3}))
    save_model(create_model("sam", **SAM), tmp_path / "sam",
               ModelCard("sam", dict(SAM), DatasetInfo(["background", "object"], ignore_index=255), task="promptable"))
    app = create_app([tmp_path / "scenes", tmp_path / "sam"], ServerSettings(label_dir=tmp_path / "labels"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", tmp_path
    instance.should_exit = True
    thread.join(10)


def test_the_page_predicts_prompts_downloads_and_saves_labels(server, tmp_path):
    url, root = server
    image = np.full((96, 128, 3), 40, np.uint8)
    image[20:70, 30:90] = (220, 200, 40)
    Image.fromarray(image).save(tmp_path / "scene.png")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#model option", state="attached")
        page.screenshot(path=shots / "1_open.png")
        page.set_input_files("#file", tmp_path / "scene.png")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('scenes:')")
        assert page.locator("#legend li").count() == 3
        page.screenshot(path=shots / "2_predicted.png")
        page.select_option("#model", "sam")
        page.wait_for_function("document.getElementById('status').textContent.includes('click the object')")

        def at(x: float, y: float) -> tuple[float, float]:  # image pixels -> page coordinates (the layout may move)
            frame = page.locator("#overlay").bounding_box()
            return frame["x"] + (x + 0.5) * frame["width"] / 128, frame["y"] + (y + 0.5) * frame["height"] / 96

        page.mouse.click(*at(60, 45))
        page.wait_for_function("document.getElementById('status').textContent.startsWith('mask in')")
        page.screenshot(path=shots / "3_clicked.png")
        # the downloaded mask is the API's answer for the same click, pixel for pixel
        with page.expect_download() as download:
            page.click("#download-mask")
        downloaded = np.asarray(Image.open(download.value.path()).convert("L")) > 0
        page.fill("#class-name", "box")
        page.click("#keep")
        page.mouse.move(*at(10, 10))
        page.mouse.down()
        page.mouse.move(*at(50, 40), steps=5)
        page.mouse.up()
        page.wait_for_function("document.getElementById('status').textContent.startsWith('mask in')")
        page.screenshot(path=shots / "4_box.png")
        page.fill("#class-name", "corner")
        page.click("#keep")
        assert page.locator("#objects li").count() == 2
        areas = page.evaluate("window.omnisegState.objects.map((o) => o.area)")
        page.click("#save-labels")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('saved 2 object')")
        page.screenshot(path=shots / "5_saved.png")
        browser.close()
    assert not errors
    import httpx  # the API's answer for the same click, outside the browser

    with open(tmp_path / "scene.png", "rb") as handle:
        embedded = httpx.post(f"{url}/api/embed", files={"file": ("scene.png", handle.read())}).json()
    answer = httpx.post(f"{url}/api/prompt", json={"embedding_id": embedded["embedding_id"], "points": [[60, 45]]}).json()
    expected = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["masks"][answer["best"]])))) > 0
    assert downloaded.shape == expected.shape == (96, 128)
    assert (downloaded == expected).mean() > 0.995  # the click lands within a pixel of (60, 45)
    coco = json.loads((root / "labels" / "annotations" / "instances.json").read_text())
    assert sorted(c["name"] for c in coco["categories"]) == ["box", "corner"]
    assert sorted(a["area"] for a in coco["annotations"]) == sorted(a for a in areas if a > 0)  # empty masks are not saved
