"""``report.html``: one self-contained page per run (metrics, per-class table, curves, confusion matrix, sample
overlays, the plan and the config; images embedded), readable offline, mailed or attached to a ticket as it is."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from omniseg.core.atomic import write_text

REPORT_FILE = "report.html"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}.facts td{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}
.samples img{max-width:48%}
"""


def headline(metrics: dict) -> tuple[str, float | None]:
    """The one figure a run is known by: mIoU (semantic), mask AP (instance), PQ (panoptic), mIoU after one click
    (promptable)."""
    if "panoptic" in metrics:
        return "PQ", metrics["panoptic"]["all"]["pq"]
    if "segm" in metrics:
        return "mask AP", metrics["segm"]["AP"]
    if "mIoU@1" in metrics:
        return "mIoU@1", metrics["mIoU@1"]
    return "mIoU", metrics.get("miou")


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from what the run directory holds; returns its path."""
    run_dir = Path(run_dir)
    metrics = _json(run_dir / "metrics.json")
    card = _json(run_dir / "model.json")
    name, value = headline(metrics)
    task = card.get("task", "semantic")
    parts = [f"<h1>{_e(run_dir.name)}</h1>",
             f"<p>{_e(task)} segmentation with <b>{_e(card.get('architecture', '?'))}</b>: {_e(name)} <b>{_fmt(value)}</b></p>",
             _facts(metrics), "<h2>Metrics</h2>", _summary(metrics), _per_class(metrics)]
    for title, file in (("Training curves", "curves.png"), ("Clicks", "clicks.png"), ("Confusion matrix", "confusion.png")):
        if (run_dir / file).is_file():
            parts += [f"<h2>{title}</h2>", _img(run_dir / file, title)]
    samples = sorted((run_dir / "samples").glob("*.png")) if (run_dir / "samples").is_dir() else []
    if samples:
        parts += ["<h2>Validation samples</h2>", '<div class="samples">', *(_img(p, p.stem) for p in samples), "</div>"]
    for title, file in (("Plan", "plan.md"), ("Config", "config.yaml")):
        if (run_dir / file).is_file():
            parts += [f"<h2>{title}</h2>", f"<pre>{_e((run_dir / file).read_text())}</pre>"]
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(run_dir.name)}: omniseg run</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    path = run_dir / REPORT_FILE
    write_text(path, page)
    return path


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _e(text) -> str:
    return html.escape(str(text))


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else _e(value)


def _rows(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v) if not isinstance(v, str) else _e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _facts(metrics: dict) -> str:
    keys = [("global_step", "steps"), ("epochs", "epochs"), ("best_step", "best step"), ("seconds", "seconds of training"),
            ("split", "evaluated on")]
    rows = [f"<tr><td>{label}</td><td>{_fmt(metrics[key])}</td></tr>" for key, label in keys if key in metrics]
    return f'<table class="facts">{"".join(rows)}</table>' if rows else ""


def _summary(metrics: dict) -> str:
    if "panoptic" in metrics:
        groups = metrics["panoptic"]
        return _rows(["", "PQ", "SQ", "RQ", "classes"], [[g, groups[g]["pq"], groups[g]["sq"], groups[g]["rq"], groups[g]["n"]]
                                                         for g in ("all", "things", "stuff")])
    if "segm" in metrics:
        keys = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
        return _rows(["", *keys], [[kind, *(metrics[part].get(k) for k in keys)] for kind, part in (("mask", "segm"), ("box", "bbox"))])
    clicks = [k for k in metrics if k.startswith(("mIoU@", "NoC@", "NoF@"))]
    if clicks:
        return _rows(clicks, [[metrics[k] for k in clicks]])
    keys = [("pixel_accuracy", "pixel accuracy"), ("mean_accuracy", "mean accuracy"), ("miou", "mIoU"), ("fwiou", "FWIoU"),
            ("mean_dice", "mean Dice")]
    present = [(k, label) for k, label in keys if k in metrics]
    return _rows([label for _, label in present], [[metrics[k] for k, _ in present]]) if present else ""


def _per_class(metrics: dict) -> str:
    if "panoptic" in metrics:
        rows = [[r["name"], "thing" if r["isthing"] else "stuff", r["pq"], r["sq"], r["rq"], r["tp"], r["fp"], r["fn"]]
                for r in metrics["panoptic"]["per_class"]]
        return "<h2>Per class</h2>" + _rows(["class", "kind", "PQ", "SQ", "RQ", "TP", "FP", "FN"], rows)
    if "segm" in metrics:
        rows = [[name, value, metrics["bbox"]["per_class"].get(name)] for name, value in metrics["segm"]["per_class"].items()]
        return "<h2>Per class</h2>" + _rows(["class", "mask AP", "box AP"], rows)
    if "per_class" in metrics:
        rows = [[r["name"], r["iou"], r["dice"], r["accuracy"], r["support"]] for r in metrics["per_class"]]
        return "<h2>Per class</h2>" + _rows(["class", "IoU", "Dice", "accuracy", "support (px)"], rows)
    return ""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
