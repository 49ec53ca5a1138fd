"""The rooms of src/omniseg import one way (ARCHITECTURE.md): an AST walk of every module, lazy imports included."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "omniseg"
SHARED = {"errors", "registry", "_version", "_lazy"}  # small top-level modules every room may use
LOWER = {"core"}
PEERS = {"data", "models", "losses", "metrics", "classical"}
# room -> the rooms (besides itself and SHARED) it may import
ALLOWED = {
    **{module: set() for module in SHARED},
    "core": set(),
    **{room: set(LOWER) for room in PEERS},
    "viz": LOWER | {"data"},
    "config": set(),
    "plan": LOWER | PEERS | {"config"},
    "inference": LOWER | PEERS | {"viz", "config"},
    "engine": LOWER | PEERS | {"viz", "config", "plan", "inference"},
    "server": LOWER | PEERS | {"viz", "config", "inference"},
    "cli": LOWER | PEERS | {"viz", "config", "plan", "inference", "engine", "server"},
    "__init__": LOWER | PEERS | {"viz", "config", "plan", "inference", "engine"},  # the public API re-exports
}


def room_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return parts[0]


def imported_rooms(path: Path, root: Path, package: str = "omniseg") -> list[tuple[str, int]]:
    """``(room, line)`` of every omniseg import in the module at ``path`` (relative imports resolved)."""
    module_parts = list(path.relative_to(root).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..data import y
                base = module_parts[: len(module_parts) - node.level]
                names = [".".join([package, *base, *(node.module.split(".") if node.module else [])])]
            elif node.module:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def forbidden_imports(root: Path) -> list[str]:
    """Every import under ``root`` (an omniseg source tree) that goes against :data:`ALLOWED`."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        room = room_of(path, root)
        allowed = ALLOWED.get(room)
        if allowed is None:
            problems.append(f"{path.relative_to(root)}: room {room!r} is not in the plan (add it to ALLOWED and ARCHITECTURE.md)")
            continue
        for target, line in imported_rooms(path, root):
            if target != room and target not in SHARED and target not in allowed:
                problems.append(f"{path.relative_to(root)}:{line}: {room} imports {target}")
    return problems


def test_the_rooms_import_as_the_plan_says():
    assert forbidden_imports(PACKAGE) == []


# inference's sub-packages (ARCHITECTURE.md, docs/architecture.md): sub-package -> those it may import
INFERENCE_ALLOWED = {
    "runs": set(), "writers": set(), "tiling": set(), "deploy": set(),
    "prediction": {"deploy", "tiling", "writers"},
    "promptable": {"prediction", "deploy", "tiling", "writers"},
    "tracking": {"prediction", "promptable"},
    "evaluate": {"prediction", "promptable", "tracking", "deploy"},
}


def forbidden_inference_imports(root: Path) -> list[str]:
    """Imports between inference's sub-packages (``root``: the inference folder) that go against INFERENCE_ALLOWED."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        sub = parts[0]
        if sub == "__init__":
            continue
        if sub not in INFERENCE_ALLOWED:
            problems.append(f"inference/{path.relative_to(root)}: sub-package {sub!r} is not in the plan")
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("omniseg.inference."):
                target = node.module.split(".")[2]
                if target != sub and target not in INFERENCE_ALLOWED[sub]:
                    problems.append(f"inference/{path.relative_to(root)}:{node.lineno}: {sub} imports {target}")
    return problems


def test_inference_sub_packages_import_one_way():
    assert forbidden_inference_imports(PACKAGE / "inference") == []


def test_a_backward_arrow_between_inference_sub_packages_is_reported(tmp_path):
    (tmp_path / "tiling").mkdir()
    (tmp_path / "tiling" / "tta.py").write_text("from omniseg.inference.prediction.predictor import Predictor\n")
    (tmp_path / "runs.py").write_text("import json\n")
    assert forbidden_inference_imports(tmp_path) == ["inference/tiling/tta.py:1: tiling imports prediction"]


def test_only_the_engine_imports_lightning():
    # predicting, evaluating and the web server need no trainer
    users = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m.split(".")[0] in ("lightning", "pytorch_lightning") for m in modules):
                users.add(room_of(path, PACKAGE))
    assert users == {"engine"}


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("models/hub.py", "from omniseg.data.sample import DatasetInfo\n", "models/hub.py:1: models imports data"),
    ("metrics/coco_ap.py", "def f():\n    from omniseg.data.formats import load_dataset\n", "metrics/coco_ap.py:2: metrics imports data"),
    ("data/formats/bsds.py", "from ...metrics import boundary\n", "data/formats/bsds.py:1: data imports metrics"),
    ("inference/prediction/predictor.py", "import omniseg.engine.trainer\n", "inference/prediction/predictor.py:1: inference imports engine"),
    ("viz/plots.py", "from omniseg.cli.output import emit_json\n", "viz/plots.py:1: viz imports cli"),
])
def test_a_forbidden_import_is_reported(tmp_path, module, source, expected):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    (tmp_path / "core.py").write_text("from omniseg.errors import OmnisegError\n")  # allowed: nothing reported
    assert forbidden_imports(tmp_path) == [expected]
