"""Rich tables and JSON output shared by the subcommands."""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def add_precision_argument(parser) -> None:
    """``--precision auto|32|bf16``: the torch backend's arithmetic."""
    parser.add_argument("--precision", choices=["auto", "32", "bf16"], default="auto", help="torch's arithmetic: 'auto' "
                        "(default) times a forward pass in float32 and bfloat16 and keeps bfloat16 where it is 1.3x faster "
                        "(never on a processor without bfloat16 instructions); outputs and softmaxes are float32")


def add_device_argument(parser, what: str = "the compute device") -> None:
    """``--device``, one meaning and one default in every command: the device models run on."""
    parser.add_argument("--device", help=f"{what}: cpu, cuda, cuda:N (default: cuda when available, else cpu)")


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def metrics_table(report: dict, title: str = "Per-class metrics") -> Table:
    """The per-class table (IoU, Dice, accuracy, support) with the summary as its footer."""
    table = Table(title=title, show_footer=True)
    table.add_column("class", footer="mean")
    table.add_column("IoU", justify="right", footer=_fmt(report["miou"]))
    table.add_column("Dice", justify="right", footer=_fmt(report["mean_dice"]))
    table.add_column("accuracy", justify="right", footer=_fmt(report["mean_accuracy"]))
    table.add_column("support (px)", justify="right")
    for row in report["per_class"]:
        table.add_row(row["name"], _fmt(row["iou"]), _fmt(row["dice"]), _fmt(row["accuracy"]), f"{row['support']:,}")
    return table


def print_report(console: Console, report: dict, *, title: str) -> None:
    console.print(metrics_table(report, title))
    console.print(
        f"pixel accuracy {_fmt(report['pixel_accuracy'])}   mean accuracy {_fmt(report['mean_accuracy'])}   "
        f"mIoU {_fmt(report['miou'])}   FWIoU {_fmt(report['fwiou'])}   mean Dice {_fmt(report['mean_dice'])}"
    )


def print_instance_report(console: Console, report: dict, *, title: str) -> None:
    """COCO mask and box AP per class, then the summary (AP, AP50, AP75, APs/APm/APl)."""
    segm, bbox = report["segm"], report["bbox"]
    table = Table(title=title)
    table.add_column("class")
    table.add_column("mask AP", justify="right")
    table.add_column("box AP", justify="right")
    for name, value in segm["per_class"].items():
        table.add_row(name, _fmt(value), _fmt(bbox["per_class"].get(name)))
    console.print(table)
    for kind, values in (("mask", segm), ("box", bbox)):
        console.print(f"{kind}: " + "   ".join(f"{k} {_fmt(values[k])}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")))


def print_panoptic_report(console: Console, report: dict, *, title: str) -> None:
    """PQ, SQ, RQ per class (with TP, FP, FN), the summaries for all, things and stuff, then the
    instance branch's AP."""
    panoptic = report["panoptic"]
    table = Table(title=title)
    for column in ("class", "kind", "PQ", "SQ", "RQ", "TP", "FP", "FN"):
        table.add_column(column, justify="left" if column in ("class", "kind") else "right")
    for row in panoptic["per_class"]:
        table.add_row(row["name"], "thing" if row["isthing"] else "stuff", _fmt(row["pq"]), _fmt(row["sq"]), _fmt(row["rq"]),
                      str(row["tp"]), str(row["fp"]), str(row["fn"]))
    console.print(table)
    for group in ("all", "things", "stuff"):
        values = panoptic[group]
        console.print(f"{group}: PQ {_fmt(values['pq'])}   SQ {_fmt(values['sq'])}   RQ {_fmt(values['rq'])}   ({values['n']} classes)")
    segm = report["segm"]
    console.print("instances, mask: " + "   ".join(f"{k} {_fmt(segm[k])}" for k in ("AP", "AP50", "AP75")))


def print_unsupervised_report(console: Console, report: dict, *, title: str) -> None:
    """Per-image PRI, VoI, covering and boundary F, then the means and the pooled boundary scores."""
    table = Table(title=title)
    for column in ("image", "PRI", "VoI", "covering", "boundary P", "boundary R", "boundary F"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for stem, values in report["images"].items():
        table.add_row(stem, *(_fmt(values[key]) for key in ("pri", "voi", "covering", "boundary_precision", "boundary_recall", "boundary_f")))
    console.print(table)
    mean, boundary = report["mean"], report["boundary"]
    console.print(f"mean: PRI {_fmt(mean['pri'])}   VoI {_fmt(mean['voi'])}   covering {_fmt(mean['covering'])}   "
                  f"boundary (pooled): P {_fmt(boundary['precision'])}   R {_fmt(boundary['recall'])}   F {_fmt(boundary['f'])}")


def print_click_report(console: Console, report: dict, *, title: str) -> None:
    """A promptable model's click table: mIoU after k clicks, NoC and objects never reached (NoF)."""
    columns = [key for key in report if key.startswith(("mIoU@", "NoC@", "NoF@"))]
    table = Table(title=f"{title}: {int(report['objects'])} objects clicked")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(f"{report[c]:.0f}" if c.startswith("NoF") else f"{report[c]:.{2 if c.startswith('NoC') else 4}f}" for c in columns))
    console.print(table)


def print_video_report(console: Console, report: dict, *, title: str) -> None:
    """Tracking per video (HOTA, MOTSA, IDF1, ID switches, J&F), then the summary over all videos."""
    columns = ["video", "HOTA", "DetA", "AssA", "MOTSA", "IDF1", "IDSW", "J&F"]
    rows = [[name, *(_fmt(v[k]) if k != "IDSW" else str(v[k]) for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "J&F"))]
            for name, v in report.get("videos", {}).items()]
    if rows:
        print_rows(console, title, columns, rows, right=tuple(columns[1:]))
    console.print("   ".join(f"{k} {_fmt(report[k])}" for k in ("HOTA", "DetA", "AssA", "LocA", "MOTSA", "sMOTSA", "IDF1")))
    console.print(f"ID switches {report['IDSW']}   fragmentations {report['Frag']}   mostly tracked {report['MT']}   mostly lost "
                  f"{report['ML']}   J&F {_fmt(report['J&F'])} (J {_fmt(report['J-Mean'])}, F {_fmt(report['F-Mean'])})")


def print_any_report(console: Console, report: dict, *, title: str) -> None:
    """The report table of the task the report comes from (semantic, instance, panoptic, promptable or video)."""
    printer = {"instance": print_instance_report, "panoptic": print_panoptic_report, "promptable": print_click_report,
               "unsupervised": print_unsupervised_report, "video": print_video_report}.get(report.get("task"), print_report)
    printer(console, report, title=title)


def print_rows(console: Console, title: str, columns: list[str], rows: list[list[str]], *, right: tuple[str, ...] = ()) -> None:
    """A table: rich's in a terminal; elsewhere (logs, pipes) the title, then tab-separated lines with a header, each
    value whole (``cut``, ``sort`` and spreadsheets read them)."""
    if console.is_terminal:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    for line in (title, "\t".join(columns), *("\t".join(row) for row in rows)):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_error(console: Console, error: Exception) -> None:
    """``error: MESSAGE`` on one line, never wrapped (paths stay whole in logs and pipes), the message printed as it is
    (brackets in it are not markup)."""
    console.print("error:", style="bold red", end=" ", highlight=False)
    console.print(str(error), markup=False, highlight=False, soft_wrap=True)


def emit_json(console: Console, values: dict, target: str | None) -> None:
    """``target`` "-" prints JSON to stdout; a path writes it there."""
    text = json.dumps(values, indent=2)
    if target == "-":
        print(text)
    elif target:
        Path(target).write_text(text)
        console.print(f"wrote {target}")


def quiet_libraries() -> None:
    """Keep Lightning's banners out of the output (call again after importing Lightning: it resets them)."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


@contextmanager
def progress_bar(console: Console, description: str, *, disable: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A transient rich progress bar, driven by the library's ``progress(done, total)`` callbacks."""
    with progress_bars(console, description, disable=disable) as (bar,):
        yield bar


@contextmanager
def progress_bars(console: Console, *descriptions: str, disable: bool = False) -> Iterator[list[Callable[[int, int], None]]]:
    """Transient rich progress bars in one display (e.g. files, and the tiles of the current file), one
    ``progress(done, total)`` callback each."""
    with Progress(console=console, transient=True, disable=disable) as progress:
        tasks = [progress.add_task(description, total=None) for description in descriptions]
        yield [lambda done, total, task=task: progress.update(task, completed=done, total=total) for task in tasks]
