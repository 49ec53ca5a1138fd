import numpy as np
import pytest
import torch

from omniseg import DatasetInfo, Predictor, create_model, load_model
from omniseg.errors import OmnisegError
from omniseg.inference.deploy.optimize import fold_batchnorm
from omniseg.models.hub import ModelCard, save_model


def _trained_like(model):
    """Give BatchNorm layers non-trivial statistics, as training would."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 32, 32) * 2 + 0.5)
    return model.eval()


@pytest.mark.parametrize("encoder", [None, "resnet18"])
def test_fold_batchnorm_keeps_outputs(encoder):
    kwargs = {"depth": 2, "base_channels": 8} if encoder is None else {"encoder": encoder}
    model = _trained_like(create_model("unet", num_classes=3, **kwargs))
    x = torch.randn(2, 3, 45, 51)
    folded = fold_batchnorm(model, x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the input is untouched
    with torch.no_grad():
        expected = folded(x)
    assert fold_batchnorm(model, x, in_place=True) is model  # folded itself: one copy of the weights
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)


def test_save_load_round_trip_without_pickle(tmp_path):
    model = _trained_like(create_model("unet", num_classes=3, depth=2, base_channels=8))
    info = DatasetInfo(["bg", "a", "b"], ignore_index=255)
    card = ModelCard("unet", {"num_classes": 3, "depth": 2, "base_channels": 8}, info, {"mean": [0.5] * 3, "std": [0.25] * 3})
    save_model(model, tmp_path, card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_model(tmp_path)
    x = torch.randn(1, 3, 20, 30)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.card.info.class_names == ["bg", "a", "b"]

    predictor = Predictor(tmp_path, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (37, 43, 3), dtype=np.uint8)
    mask = predictor.predict(image)
    expected = model(((torch.from_numpy(image).permute(2, 0, 1)[None] / 255.0 - 0.5) / 0.25)).argmax(1)[0].numpy()
    assert mask.shape == (37, 43) and (mask == expected).mean() > 0.999


def test_load_model_errors(tmp_path):
    with pytest.raises(OmnisegError, match="model.json not found"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{broken")
    with pytest.raises(OmnisegError, match="not a valid model card"):
        load_model(tmp_path)


def test_predictor_rejects_bad_images(tmp_path):
    model = create_model("unet", num_classes=2, depth=1, base_channels=4)
    model.card = ModelCard("unet", {"num_classes": 2, "depth": 1, "base_channels": 4}, DatasetInfo(["a", "b"], ignore_index=255),
                           preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3})
    predictor = Predictor(model, device="cpu")
    with pytest.raises(OmnisegError, match=r"\[H, W, 3\]"):
        predictor.predict(np.zeros((4, 4, 5), np.uint8))
    assert predictor.predict(np.zeros((9, 7), np.uint8)).shape == (9, 7)  # grey images are expanded
