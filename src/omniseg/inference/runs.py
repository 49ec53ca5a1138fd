"""The runs under a folder, for comparing experiments: task, model, data, steps and the headline metric of each run
directory (what ``omniseg runs`` lists), read from the files every run writes; nothing is loaded or imported."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from omniseg.errors import ConfigError
from omniseg.viz.report import headline

SORT_KEYS = ("metric", "steps", "name", "time")


def list_runs(root: str | Path, *, sort: str = "metric") -> list[dict]:
    """One row per run directory under ``root`` (``root`` itself included; a run is a folder with ``model.json``):
    ``path``, ``name``, ``task``, ``model``, ``data``, ``steps``, ``metric`` (its name) and ``value``, ``finished``
    (metrics.json written), ``modified`` (seconds since the epoch). Sorted by ``sort``: "metric" (best first, runs
    without one last), "steps" (most first), "name" or "time" (newest first)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give the folder that holds your run directories")
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    rows = [_row(card.parent) for card in sorted(root.rglob("model.json")) if not card.parent.name.startswith(".")]
    order = {"metric": lambda r: (r["value"] is None, -(r["value"] or 0), r["name"]),
             "steps": lambda r: (-(r["steps"] or 0), r["name"]), "name": lambda r: str(r["path"]),
             "time": lambda r: -r["modified"]}[sort]
    return sorted(rows, key=order)


def _row(run: Path) -> dict:
    card = _read(run / "model.json", json.loads)
    config = _read(run / "config.yaml", yaml.safe_load)
    metrics = _read(run / "metrics.json", json.loads)
    name, value = headline(metrics) if metrics else (None, None)
    return {"path": str(run), "name": run.name, "task": card.get("task", "semantic"), "model": _model(card),
            "data": (config.get("data") or {}).get("path"), "steps": metrics.get("global_step"), "metric": name,
            "value": value, "finished": bool(metrics), "modified": (run / "model.json").stat().st_mtime}


def _model(card: dict) -> str:
    encoder = (card.get("kwargs") or {}).get("encoder")
    return f"{card.get('architecture', '?')}" + (f" ({encoder})" if isinstance(encoder, str) else "")


def _read(path: Path, parse) -> dict:
    try:
        return (parse(path.read_text()) or {}) if path.is_file() else {}
    except (ValueError, yaml.YAMLError):  # a run still being written, or a damaged file: listed with what is known
        return {}
