"""Sliding-window inference: tile placement, the Gaussian importance map, exact blending, bands read and handed on
in bounded memory, and a trained model's tiled prediction against its whole-image prediction; test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omniseg.inference.tiling.sliding_window import finished_bands, gaussian_importance, sliding_window, tile_starts
from omniseg.inference.tiling.tta import Augmentation, parse_tta, with_tta


def test_tiles_start_evenly_and_the_last_ends_at_the_edge():
    assert tile_starts(1000, 512, 0.5) == [0, 244, 488]
    assert tile_starts(1024, 512, 0.5) == [0, 256, 512]
    assert tile_starts(512, 512, 0.5) == [0] and tile_starts(100, 512, 0.5) == [0]
    assert tile_starts(10, 4, 0.0) == [0, 3, 6]  # no overlap asked: as few tiles as cover the axis
    with pytest.raises(ValueError):
        tile_starts(10, 4, 1.0)


def test_the_importance_map_is_nnunets_gaussian():
    weights = gaussian_importance((64, 48))
    assert weights.max() == 1 and weights.min() > 0
    assert torch.equal(weights, weights.flip(0)) and torch.equal(weights, weights.flip(1))  # centred
    sigma = 64 / 8
    assert weights[16, 23] / weights[31, 23] == pytest.approx(np.exp(-0.5 * (15.5 / sigma) ** 2) / np.exp(-0.5 * (0.5 / sigma) ** 2), rel=1e-5)
    assert weights.min() > 1e-3 and weights[0, 0] == weights.min()  # the far corners are floored, never 0


def pointwise(tiles: torch.Tensor) -> torch.Tensor:
    """Class probabilities that depend on each pixel alone: tiling cannot change them."""
    x = tiles.float()
    logits = torch.stack([x[:, 0] / 40, x[:, 1] / 60 - 1, (x[:, 0] - x[:, 1]) / 50], 1)
    return logits.softmax(1)


@pytest.mark.parametrize("shape, tile", [((37, 53), 16), ((5, 7), 16), ((1, 40), 8), ((40, 1), 8), ((64, 64), 64), ((9, 10, 11), 4)])
def test_blending_pointwise_tiles_gives_the_whole_input_exactly(shape, tile):
    image = torch.randint(0, 255, (2, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = pointwise(image[None])[0]
    tiled = sliding_window(pointwise, image, 3, tile=tile, overlap=0.5, batch_size=3)
    assert tiled.shape == whole.shape and torch.allclose(tiled, whole, atol=1e-6)


def test_the_input_is_read_and_the_output_handed_on_band_by_band():
    image = torch.randint(0, 255, (2, 300, 70), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    reads, bands, tiles = [], [], []

    def read(start, stop):
        reads.append((start, stop))
        return image[:, start:stop]

    for start, probabilities in finished_bands(pointwise, read, (300, 70), 3, tile=32, overlap=0.5, on_tiles=tiles.append):
        bands.append((start, probabilities.shape[1]))
        assert torch.allclose(probabilities, pointwise(image[None, :, start:start + probabilities.shape[1]])[0], atol=1e-6)
    assert max(stop - start for start, stop in reads) == 32  # one row of tiles at a time, never the whole input
    assert [start for start, _ in bands] == [start for start, _ in reads] and sum(rows for _, rows in bands) == 300
    assert all(rows <= 32 for _, rows in bands) and sum(tiles) == len(reads) * len(tile_starts(70, 32, 0.5))


def test_a_trained_models_tiles_agree_with_its_whole_image_prediction(trained_rectangles_run):

    _, predictor, image, truth = trained_rectangles_run
    whole = predictor.predict(image)
    tiled = predictor.predict(image, tile=64, overlap=0.5)
    assert (whole == truth).mean() > 0.97  # the model is trained: agreement is about its answers, not noise
    assert (tiled == whole).mean() >= 0.999


def test_test_time_augmentations_invert_exactly():
    x = torch.randint(0, 255, (2, 3, 12, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    for augmentation in parse_tta("flips,rot90", spatial_dims=2):
        assert torch.allclose(augmentation.invert(pointwise(augmentation.apply(x)), (12, 20)), pointwise(x), atol=1e-6)
    assert len(parse_tta("flip")) == 2 and len(parse_tta("flips", spatial_dims=3)) == 8 and len(parse_tta("flip,rot90,scale=0.75,1,1.25")) == 24
    assert torch.allclose(with_tta(pointwise, parse_tta("flips,rot90"))(x), pointwise(x), atol=1e-6)
    scaled = Augmentation(scale=0.5)
    assert scaled.invert(pointwise(scaled.apply(x)), (12, 20)).shape == (2, 3, 12, 20)


@pytest.mark.parametrize("layout", ["striped", "tiled-zlib", "grey16-zlib"])
def test_tiff_bands_read_only_what_a_band_covers(tmp_path, layout):
    import tifffile

    from omniseg.inference.tiling.large_images import ImageBands

    rng = np.random.default_rng(0)
    if layout == "grey16-zlib":
        pixels = rng.integers(0, 65535, (300, 200), dtype=np.uint16)
        tifffile.imwrite(tmp_path / "big.tif", pixels, rowsperstrip=16, compression="zlib")
        expected = torch.from_numpy(pixels.astype(np.float32) / 65535).expand(3, 300, 200)
    else:
        pixels = rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)
        options = {"rowsperstrip": 16} if layout == "striped" else {"tile": (64, 64), "compression": "zlib"}
        tifffile.imwrite(tmp_path / "big.tif", pixels, photometric="rgb", **options)
        expected = torch.from_numpy(pixels).permute(2, 0, 1)
    with ImageBands(tmp_path / "big.tif") as bands:
        assert (bands.height, bands.width) == (300, 200) and (bands._memmap is not None) == (layout == "striped")
        for start, stop in [(0, 64), (32, 96), (250, 300), (299, 300), (0, 300)]:
            assert torch.equal(bands(start, stop), expected[:, start:stop])


def test_png_rows_written_as_they_come_read_back_whole(tmp_path):
    from PIL import Image

    from omniseg.inference.tiling.large_images import PngRowWriter

    labels = np.random.default_rng(0).integers(0, 3, (50, 37), dtype=np.uint8)
    with PngRowWriter(tmp_path / "mask.png", 37, 50, palette=[(0, 0, 0), (200, 0, 0), (0, 0, 200)]) as png:
        for start in range(0, 50, 7):
            png.write(labels[start:start + 7])
    written = Image.open(tmp_path / "mask.png")
    assert written.mode == "P" and np.array_equal(np.asarray(written), labels) and written.getpalette()[3:6] == [200, 0, 0]
    rgb = np.random.default_rng(1).integers(0, 255, (9, 5, 3), dtype=np.uint8)
    with PngRowWriter(tmp_path / "rgb.png", 5, 9, mode="RGB") as png:
        png.write(rgb)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "rgb.png")), rgb)
    with pytest.raises(RuntimeError), PngRowWriter(tmp_path / "broken.png", 5, 9, mode="L") as png:
        png.write(rgb[:4, :, 0])
        raise RuntimeError("interrupted")
    assert not list(tmp_path.glob("*broken*")) and not list(tmp_path.glob(".*"))  # neither the file nor its temporary


def test_tiled_tiff_rows_written_as_they_come_read_back_whole(tmp_path):
    import tifffile

    from omniseg.inference.tiling.large_images import TiffTileWriter

    labels = np.random.default_rng(0).integers(0, 3, (300, 270), dtype=np.uint8)
    with TiffTileWriter(tmp_path / "mask.tif", 270, 300, palette=[(0, 0, 0), (200, 0, 0), (0, 0, 200)], tile=128) as tiff:
        for start in range(0, 300, 37):  # bands that do not line up with the tiles
            tiff.write(labels[start:start + 37])
    with tifffile.TiffFile(tmp_path / "mask.tif") as written:
        page = written.pages[0]
        assert page.is_tiled and page.tilelength == 128 and page.photometric == tifffile.PHOTOMETRIC.PALETTE
        assert np.array_equal(page.asarray(), labels) and page.colormap[0, 1] == 200 * 257
    with pytest.raises(RuntimeError), TiffTileWriter(tmp_path / "broken.tif", 270, 300) as tiff:
        tiff.write(labels[:200])
        raise RuntimeError("interrupted")
    assert not list(tmp_path.glob("*broken*")) and not list(tmp_path.glob(".*"))


def test_predict_tiles_a_large_tiff_resumes_and_never_leaves_half_a_file(trained_rectangles_run, tmp_path, run_cli, monkeypatch):
    import tifffile
    from PIL import Image

    from omniseg.inference.prediction import predict_files

    run, predictor, image, truth = trained_rectangles_run
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", image, photometric="rgb", tile=(64, 64), compression="zlib")
    for name in ("b", "c"):
        Image.fromarray(image[::-1].copy() if name == "b" else image).save(inputs / f"{name}.png")
    calls = []
    real = predict_files.predict_large_image

    def interrupted(predictor, path, out, **options):
        calls.append(path.name)
        if path.name == "b.png" and len(calls) == 2:  # the second file stops halfway through its writes
            raise KeyboardInterrupt
        return real(predictor, path, out, **options)

    monkeypatch.setattr(predict_files, "predict_large_image", interrupted)
    code, _, _ = run_cli("predict", run, inputs, "--out", tmp_path / "preds", "--tile", "64", "--probabilities", "--precision", "32")
    assert code == 130  # Ctrl-C
    assert sorted(p.name for p in (tmp_path / "preds").glob("*.png")) == ["a.png", "a_overlay.png"]
    code, out, err = run_cli("predict", run, inputs, "--out", tmp_path / "preds", "--tile", "64", "--probabilities", "--precision", "32")
    assert code == 0, err
    assert calls == ["a.tif", "b.png", "b.png", "c.png"]  # a.tif was finished: not predicted again
    mask = np.asarray(Image.open(tmp_path / "preds" / "a.png"))
    assert np.array_equal(mask, predictor.predict(image, tile=64, overlap=0.5))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "preds" / "c.png")), mask)
    probability = np.asarray(Image.open(tmp_path / "preds" / "a_probabilities" / "1_yellow.png"))
    assert ((probability > 127) == (mask == 1)).mean() > 0.99
    assert not list((tmp_path / "preds").rglob(".*"))
    code, _, err = run_cli("predict", run, inputs / "a.tif", "--out", tmp_path / "tiff", "--tile", "64", "--mask-format", "tiff", "--precision", "32")
    assert code == 0, err
    assert np.array_equal(tifffile.imread(tmp_path / "tiff" / "a.tif"), mask)


def test_flip_tta_raises_the_miou_of_a_trained_run_at_twice_the_forwards(trained_rectangles_run, monkeypatch):
    from omniseg.metrics import ConfusionMatrix

    from .conftest import coloured_rectangles

    _, predictor, _, _ = trained_rectangles_run
    rng = np.random.default_rng(7)
    scenes = [coloured_rectangles(rng, 96, 96, 4) for _ in range(12)]
    forwards, real = [], predictor.probabilities_of
    monkeypatch.setattr(predictor, "probabilities_of", lambda tiles: forwards.append(len(tiles)) or real(tiles))
    scores = {}
    for tta in (None, "flip"):
        confusion = ConfusionMatrix(3, ignore_index=255)
        for image, truth in scenes:
            confusion.update(torch.from_numpy(predictor.predict(image, tta=tta, tile=64)), torch.from_numpy(truth.astype(np.int64)))
        scores[tta] = float(confusion.compute()["miou"])
    plain_forwards = len(forwards) // 3  # the flip run made twice the plain run's forwards
    assert len(forwards) == 3 * plain_forwards
    assert scores["flip"] > scores[None] > 0.98  # measured: 0.9963 -> 0.9979 without tiles


def test_the_onnxruntime_backend_gives_the_torch_backends_masks(trained_rectangles_run, tmp_path, run_cli):
    import shutil

    from PIL import Image

    from omniseg.inference import Predictor

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    source, predictor, image, _ = trained_rectangles_run
    run = tmp_path / "run"
    shutil.copytree(source, run)  # the backend exports model_64.onnx into the run
    onnx = Predictor(run, device="cpu", backend="onnxruntime")
    assert (run / "model_64.onnx").is_file()
    assert np.array_equal(onnx.predict(image, tile=64), predictor.predict(image, tile=64))
    small = image[:40, :50]  # smaller than a tile: padded to the exported size, then cropped
    assert (onnx.predict(small, tile=64) == predictor.predict(small, tile=64)).mean() > 0.99
    Image.fromarray(image).save(tmp_path / "scene.png")
    code, _, err = run_cli("predict", run, tmp_path / "scene.png", "--out", tmp_path / "preds", "--tile", "64", "--backend", "onnxruntime")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "preds" / "scene.png")), predictor.predict(image, tile=64))


def test_two_processes_share_the_files_and_write_what_one_would(trained_rectangles_run, tmp_path, run_cli):
    from PIL import Image

    run, predictor, image, _ = trained_rectangles_run
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k in range(4):
        Image.fromarray(np.ascontiguousarray(np.rot90(image, k % 2)[:, ::1 - 2 * (k // 2)])).save(inputs / f"{k}.png")
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / ".0.999999.tmp.png").write_bytes(b"half")  # a dead process's temporary: removed
    code, _, err = run_cli("predict", run, inputs, "--out", tmp_path / "preds", "--tile", "64", "--devices", "2", "--precision", "32")
    assert code == 0, err
    for k in range(4):
        written = np.asarray(Image.open(tmp_path / "preds" / f"{k}.png"))
        assert np.array_equal(written, predictor.predict(np.asarray(Image.open(inputs / f"{k}.png")), tile=64))
    assert not list((tmp_path / "preds").glob(".*"))
