"""Start-up: ``import omniseg`` and the CLI's parser load none of the heavy libraries, the public names still resolve
(and show in ``dir``), and drawing leaves the user's matplotlib backend alone. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import omniseg
import omniseg.inference

HEAVY = ["torch", "cv2", "matplotlib", "timm", "skimage", "pycocotools", "lightning", "fastapi", "torchvision"]


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_import_omniseg_loads_no_heavy_library():
    assert loaded_after("import omniseg") == []


def test_the_command_line_parser_loads_no_heavy_library():
    # what `omniseg --help`, `--version` and `omniseg SUBCOMMAND --help` run before they print
    assert loaded_after("from omniseg.cli.main import build_parser\nbuild_parser()") == []


def test_the_public_names_resolve_on_first_use_and_show_in_dir():
    for module in (omniseg, omniseg.inference):
        for name in module.__all__:
            assert getattr(module, name) is not None, name
            assert name in dir(module), name
    assert omniseg.create_model("unet", num_classes=2, depth=2, base_channels=4).__class__.__name__ == "UNet"


def test_an_unknown_name_is_an_attribute_error():
    try:
        omniseg.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'no_such_thing'" in str(exc)
    else:
        raise AssertionError("omniseg.no_such_thing resolved")


def test_drawing_leaves_the_users_matplotlib_backend_alone(tmp_path):
    code = f"""
import matplotlib
matplotlib.use("svg")
from omniseg.viz.plots import plot_confusion
import numpy as np
plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], r"{tmp_path / 'c.png'}")
print(matplotlib.get_backend())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "svg" and (tmp_path / "c.png").stat().st_size > 1000


def test_training_leaves_the_callers_torch_settings_as_they_were(shapes_dir, tmp_path):
    import torch

    from omniseg.cli.main import main

    torch.use_deterministic_algorithms(False)
    threads = torch.get_num_threads()
    assert main(["train", "--data", str(shapes_dir), "--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2",
                 "--set", "model.kwargs.base_channels=4", "--img-size", "32", "--set", "train.max_steps=1", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads
