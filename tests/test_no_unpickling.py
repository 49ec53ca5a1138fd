"""Loading never executes code: an audit of the source (no pickle, every ``torch.load`` with
``weights_only=True``, no ``allow_pickle``, no unsafe YAML, no ``eval``/``exec``), and a weights file holding a
malicious pickle refused by every entry point that reads weights, without running it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SOURCE = Path(__file__).resolve().parents[1] / "src" / "omniseg"
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "not a constant"
    return None


def unsafe_calls(tree: ast.AST) -> list[str]:
    """What in ``tree`` could unpickle or run code: the line and the reason."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            found += [f"{node.lineno}: imports {name}" for name in names if name.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name == "torch.load" and _keyword(node, "weights_only") is not True:
            found.append(f"{node.lineno}: torch.load without weights_only=True")
        if name.endswith("load") and name.split(".")[0] in ("np", "numpy") and _keyword(node, "allow_pickle") not in (None, False):
            found.append(f"{node.lineno}: numpy load with allow_pickle")
        if name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all"):
            found.append(f"{node.lineno}: {name} (use yaml.safe_load)")
        if name in ("eval", "exec", "compile", "__import__", "torch.jit.load", "torch.package.PackageImporter"):
            found.append(f"{node.lineno}: {name}")
    return found


def test_the_audit_finds_each_unsafe_call():
    snippet = """
import pickle
from dill import loads
import numpy as np, torch, yaml
torch.load(path)
torch.load(path, weights_only=False)
torch.load(path, weights_only=True)
np.load(path, allow_pickle=True)
np.load(path)
yaml.load(text)
yaml.safe_load(text)
eval("1")
model.eval()
"""
    assert [line.split(":")[0] for line in unsafe_calls(ast.parse(snippet))] == ["2", "3", "5", "6", "8", "10", "12"]


def test_no_source_file_can_unpickle_or_run_code():
    problems = [f"{path.relative_to(SOURCE)}:{problem}" for path in sorted(SOURCE.rglob("*.py"))
                for problem in unsafe_calls(ast.parse(path.read_text(), str(path)))]
    assert problems == []


class Payload:
    """Unpickling this creates a folder: the proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


@pytest.fixture
def malicious(tmp_path) -> tuple[Path, Path]:
    """A weights file (torch's zip format, as ``torch.save`` writes) whose pickle calls ``os.makedirs``."""
    marker = tmp_path / "code-was-run"
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "payload": Payload(marker)}, path)
    return path, marker


def test_every_weights_entry_point_refuses_a_malicious_pickle(malicious, tmp_path, run_cli, shapes_dir):
    from omniseg import load_model
    from omniseg.errors import OmnisegError
    from omniseg.inference.promptable.prompt_predictor import load_prompt_model
    from omniseg.models import ModelCard, create_model, save_model
    from omniseg.core.info import DatasetInfo

    path, marker = malicious
    # model.safetensors of a run
    kwargs = {"num_classes": 2, "depth": 2, "base_channels": 4}
    save_model(create_model("unet", **kwargs), tmp_path / "run", ModelCard("unet", kwargs, DatasetInfo(["a", "b"], ignore_index=255)))
    (tmp_path / "run" / "model.safetensors").write_bytes(path.read_bytes())
    with pytest.raises(OmnisegError, match="truncated or damaged"):
        load_model(tmp_path / "run")
    # --encoder-weights
    code, _, err = run_cli("train", "--data", shapes_dir, "--no-plan", "--model", "unet", "--encoder", "resnet18",
                           "--encoder-weights", path, "--epochs", "1", "--no-progress", "--out", tmp_path / "encoder")
    assert code == 2 and "cannot be read as a plain state dict" in err
    # --resume
    code, _, err = run_cli("train", "--data", shapes_dir, "--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2",
                           "--set", "model.kwargs.base_channels=4", "--img-size", "32", "--set", "train.max_steps=1", "--no-progress",
                           "--out", tmp_path / "resumed")
    assert code == 0, err
    (tmp_path / "resumed" / "last.ckpt").write_bytes(path.read_bytes())
    (tmp_path / "resumed" / "previous.ckpt").unlink(missing_ok=True)
    code, _, err = run_cli("train", "--data", shapes_dir, "--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2",
                           "--set", "model.kwargs.base_channels=4", "--img-size", "32", "--set", "train.max_steps=2", "--no-progress",
                           "--out", tmp_path / "resumed", "--resume")
    assert code == 2 and "cannot resume" in err and "truncated or damaged" in err
    # Segment Anything checkpoints (the Python API, omniseg prompt and omniseg serve share this loader)
    with pytest.raises(OmnisegError, match="cannot be read as a plain state dict"):
        load_prompt_model(path, arch="mobile_sam")
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    code, _, err = run_cli("prompt", path, image, "--arch", "mobile_sam", "--point", "5,5", "--out", tmp_path / "prompted")
    assert code == 2 and "cannot be read as a plain state dict" in err
    assert not marker.exists()
    # the file really is malicious: an unsafe load runs it
    torch.load(path, weights_only=False)
    assert marker.is_dir()
