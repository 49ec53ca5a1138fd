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
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omniseg.core.info import DatasetInfo
from omniseg.models import ModelCard, save_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

from .conftest import TINY_SAM, write_classes, write_pair
from .test_instance_training import TINY as TINY_MASK_RCNN

YELLOW, CYAN = (220, 200, 40), (60, 200, 220)
PALETTE = [[0, 0, 0], [230, 200, 0], [0, 190, 230]]


def open_browser(p):
    """Headless Chromium with a 1280 x 800 page that accepts downloads, and the list its script errors go to."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return browser, page, errors


def write_coloured_rectangles(root: Path, rng: np.random.Generator) -> None:
    """A folder dataset of 64 x 64 dark noisy images with yellow (class 1) and cyan (class 2) rectangles."""
    for split, count in (("train", 48), ("val", 8)):
        for k in range(count):
            image = np.full((64, 64, 3), rng.integers(10, 60), np.uint8)
            mask = np.zeros((64, 64), np.uint8)
            for _ in range(rng.integers(1, 4)):
                label = int(rng.integers(1, 3))
                h, w = rng.integers(8, 32, 2)
                y, x = rng.integers(0, 64 - h), rng.integers(0, 64 - w)
                image[y:y + h, x:x + w] = np.clip(np.array((YELLOW, CYAN)[label - 1]) + rng.integers(-20, 20, 3), 0, 255)
                mask[y:y + h, x:x + w] = label
            write_pair(root, split, f"{split}_{k}", np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8), mask)
    write_classes(root, ["background", "yellow", "cyan"], PALETTE)


@pytest.fixture
def server(tmp_path, trained_tiny_sam, run_cli):
    from omniseg.server import ServerSettings, create_app

    write_coloured_rectangles(tmp_path / "rectangles", np.random.default_rng(0))
    code, out, err = run_cli("train", "--data", tmp_path / "rectangles", "--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2",
                             "--set", "model.kwargs.base_channels=8", "--batch-size", "8", "--img-size", "64", "--epochs", "12",
                             "--lr", "0.01", "--no-progress", "--out", tmp_path / "scenes")  # 72 steps, about 6 s
    assert code == 0, err
    save_model(trained_tiny_sam, tmp_path / "sam",
               ModelCard("sam", dict(TINY_SAM), DatasetInfo(["background", "object"], ignore_index=255), task="promptable"))
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


def test_the_page_predicts_prompts_downloads_and_saves_labels(server, tmp_path, run_cli):
    url, root = server
    image = np.full((96, 128, 3), 40, np.uint8)
    truth = np.zeros((96, 128), np.uint8)
    image[20:70, 30:90], truth[20:70, 30:90] = YELLOW, 1
    image[75:92, 95:125], truth[75:92, 95:125] = CYAN, 2
    Image.fromarray(image).save(tmp_path / "scene.png")
    second = np.full((96, 128, 3), 30, np.uint8)
    second[50:90, 80:120] = (60, 200, 220)
    Image.fromarray(second).save(tmp_path / "second.png")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as p:
        browser, page, errors = open_browser(p)
        page.goto(url)
        page.wait_for_selector("#model option", state="attached")
        page.screenshot(path=shots / "1_open.png")
        page.set_input_files("#file", tmp_path / "scene.png")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('scenes:')")
        assert page.locator("#legend li").all_inner_texts() == ["background", "yellow", "cyan"]
        page.screenshot(path=shots / "2_predicted.png")
        # the trained run finds both rectangles: the overlay paints them in their classes' colours
        painted = np.array(page.evaluate("Array.from(document.getElementById('overlay').getContext('2d')"
                                         ".getImageData(0, 0, 128, 96).data)"), np.uint8).reshape(96, 128, 4)
        for label in (1, 2):
            assert (np.abs(painted[truth == label, :3].astype(int) - PALETTE[label]).max(1) <= 3).mean() > 0.95
        assert (painted[truth == 0, 3] == 0).mean() > 0.95  # the background stays clear
        with page.expect_download() as download:
            page.click("#download-mask")
        classes = np.asarray(Image.open(download.value.path()))
        assert classes.shape == (96, 128) and (classes == truth).mean() > 0.97
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
        page.click("#clear")
        page.mouse.click(*at(110, 83))
        page.wait_for_function("document.getElementById('status').textContent.startsWith('mask in')")
        page.fill("#class-name", "corner")
        page.click("#keep")
        assert page.locator("#objects li").count() == 2
        areas = page.evaluate("window.omnisegState.objects.map((o) => o.area)")
        with page.expect_download() as download:
            page.click("#download-coco")
        objects = json.loads(Path(download.value.path()).read_text())
        page.click("#save-labels")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('saved 2 object')")
        page.screenshot(path=shots / "5_saved.png")
        # a second image, one click, saved too: the folder now trains (a validation image is split off)
        page.set_input_files("#file", tmp_path / "second.png")
        page.wait_for_function("document.getElementById('status').textContent.includes('click the object')")
        page.mouse.click(*at(100, 70))
        page.wait_for_function("document.getElementById('status').textContent.startsWith('mask in')")
        page.fill("#class-name", "box")
        page.click("#keep")
        page.click("#save-labels")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('saved 1 object')")
        # without any weights: GrabCut and the random walker, each from a box dragged around the yellow rectangle
        page.set_input_files("#file", tmp_path / "scene.png")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('sam: click the object')")
        for engine in ("grabcut", "random-walker"):
            assert page.locator(f"#model option[value='{engine}']").inner_text() == f"{engine} (prompt engine, no weights)"
            page.select_option("#model", engine)
            page.wait_for_function(f"document.getElementById('status').textContent.startsWith('{engine}: click the object')")
            page.mouse.move(*at(24, 14))
            page.mouse.down()
            page.mouse.move(*at(96, 76), steps=5)
            page.mouse.up()
            page.wait_for_function("document.getElementById('status').textContent.startsWith('mask in')")
            page.screenshot(path=shots / f"7_{engine}.png")
            found = np.array(page.evaluate("Array.from(window.omnisegState.mask.data)"), np.uint8).reshape(96, 128, 4)[..., 0] > 0
            assert (found & (truth == 1)).sum() / (found | (truth == 1)).sum() > 0.9, engine
        page.set_viewport_size({"width": 420, "height": 800})
        page.screenshot(path=shots / "6_narrow.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 420  # nothing spills sideways
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
    first = next(i["id"] for i in coco["images"] if i["file_name"] == "scene.png")
    assert sorted(a["area"] for a in coco["annotations"] if a["image_id"] == first) == sorted(areas) and min(areas) > 0
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 3
    assert all(a["area"] > 100 for a in coco["annotations"])
    # the downloaded COCO JSON holds the same masks as the saved folder (uncompressed RLE decodes to them)
    from pycocotools import mask as mask_utils

    saved = [mask_utils.decode(a["segmentation"] | {"counts": a["segmentation"]["counts"].encode()}) for a in coco["annotations"] if a["image_id"] == first]
    downloaded_masks = [mask_utils.decode(mask_utils.frPyObjects(a["segmentation"], 96, 128)) for a in objects["annotations"]]
    assert [m.sum() for m in downloaded_masks] == areas and all((a == b).all() for a, b in zip(sorted(saved, key=np.sum), sorted(downloaded_masks, key=np.sum)))  # the trained model's masks are real shapes
    code, out, err = run_cli("data", "check", root / "labels")
    assert code == 0 and "no errors" in out, err
    code, out, err = run_cli("train", "--task", "instance", "--data", root / "labels", *TINY_MASK_RCNN, "--img-size", "48",
                             "--out", tmp_path / "run")
    assert code == 0, err


def moving_rectangles(path: Path) -> list[dict[int, tuple[int, int, int, int]]]:
    """A 14-frame MP4 (128 x 96): a yellow rectangle crossing the frame, and a cyan one that leaves on the right after
    frame 4 and comes back from the left on frame 8 (a tracker must give it a new id: it is a new track to join).
    Returns each frame's boxes (x0, y0, x1, y1) by object (1 yellow, 2 cyan)."""
    from omniseg.data.video import Mp4Writer

    boxes = []
    with Mp4Writer(path, 7, (128, 96)) as writer:
        for t in range(14):
            image = np.full((96, 128, 3), 35, np.uint8)
            frame = {1: (10 + 4 * t, 20, 40 + 4 * t, 40)}
            if t < 5 or t >= 8:
                x = 70 + 12 * t if t < 5 else 4 * (t - 8)
                frame[2] = (x, 60, min(x + 24, 128), 76)
            for k, (x0, y0, x1, y1) in frame.items():
                image[y0:y1, x0:x1] = (YELLOW, CYAN)[k - 1]
            writer.write(image)
            boxes.append(frame)
    return boxes


def test_the_video_page_plays_scrubs_selects_joins_and_downloads(server, tmp_path):
    """Open a video with the semantic run served (its regions tracked as objects), scrub to a frame and see the masks
    in their tracks' colours, click the returning cyan rectangle (a new track), join it into the first cyan track,
    and download tracks.json."""
    url, _ = server
    boxes = moving_rectangles(tmp_path / "rectangles.mp4")
    shots = tmp_path / "video_screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as p:
        browser, page, errors = open_browser(p)
        page.goto(f"{url}/video")
        page.wait_for_selector("#model option", state="attached")
        page.select_option("#model", "scenes")
        page.set_input_files("#file", tmp_path / "rectangles.mp4")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('tracked')", timeout=60000)
        page.screenshot(path=shots / "1_tracked.png")
        tracks = page.locator("#tracks li").all_inner_texts()
        assert len(tracks) == 3, tracks  # yellow, cyan, and cyan again after it left
        page.locator("#scrub").fill("10")
        page.wait_for_function("document.getElementById('frame-number').textContent === '11 / 14'")
        page.wait_for_function("document.getElementById('status').textContent === 'frame 11 of 14'")
        page.screenshot(path=shots / "2_scrubbed.png")
        info = page.evaluate("window.omnisegVideo.info")
        painted = np.array(page.evaluate("Array.from(window.omnisegVideo.painted.data)"), np.uint8).reshape(96, 128, 4)

        def track_of(frame: int, box) -> str:
            x0, y0, x1, y1 = box
            return next(k for k, t in info["objects"].items() if str(frame) in t["boxes"]
                        and abs(t["boxes"][str(frame)][0] - x0) <= 2 and abs(t["boxes"][str(frame)][1] - y0) <= 2)

        yellow, returning = track_of(10, boxes[10][1]), track_of(10, boxes[10][2])
        first_cyan = track_of(2, boxes[2][2])
        assert len({yellow, returning, first_cyan}) == 3
        x0, y0, x1, y1 = boxes[10][1]  # the yellow rectangle is painted in its track's colour (the DAVIS palette)
        colours = painted[y0 + 3:y1 - 3, x0 + 3:x1 - 3, :3].reshape(-1, 3)
        expected = page.evaluate(f"(() => {{ let r = 0, g = 0, b = 0, c = {yellow}; for (let j = 0; j < 8; j++) {{ r |= ((c >> 0) & 1) << (7 - j);"
                                 " g |= ((c >> 1) & 1) << (7 - j); b |= ((c >> 2) & 1) << (7 - j); c >>= 3; } return [r, g, b]; })()")
        assert (np.abs(colours.astype(int) - expected).max(1) == 0).mean() > 0.95

        def at(x: float, y: float) -> tuple[float, float]:
            frame = page.locator("#overlay").bounding_box()
            return frame["x"] + (x + 0.5) * frame["width"] / 128, frame["y"] + (y + 0.5) * frame["height"] / 96

        cx, cy = (boxes[10][2][0] + boxes[10][2][2]) / 2, (boxes[10][2][1] + boxes[10][2][3]) / 2
        page.mouse.click(*at(cx, cy))
        page.wait_for_function(f"document.getElementById('status').textContent === 'selected track {returning}'")
        page.screenshot(path=shots / "3_selected.png")
        page.fill("#merge-target", first_cyan)
        page.click("#merge")
        page.wait_for_function(f"document.getElementById('status').textContent === 'joined track {returning} into {first_cyan}'")
        assert page.locator("#tracks li").count() == 2
        page.screenshot(path=shots / "4_joined.png")
        page.locator("#play").click()
        page.wait_for_function("window.omnisegVideo.frame !== 10")  # playing moves on
        page.locator("#play").click()
        with page.expect_download() as download:
            page.click("#download-tracks")
        summary = json.loads(Path(download.value.path()).read_text())
        browser.close()
    assert not errors
    cyan = summary["objects"][first_cyan]["frames"]
    assert returning not in summary["objects"] and {"2", "10", "13"} <= set(cyan) and "6" not in cyan
