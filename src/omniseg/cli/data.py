"""``omniseg data``: check, describe, show, convert and download datasets."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import emit_json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="check, describe, show, convert or download a dataset",
                       description="Work with datasets in any format omniseg reads.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def dataset_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="the dataset folder (its format is detected)")
        parser.add_argument("--format", default="auto", help="force a format (see `omniseg data formats`)")

    check = actions.add_parser("check", help="find every problem of a dataset (exit 1 if there are errors)")
    dataset_args(check)
    check.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the report as JSON (or write FILE)")

    stats = actions.add_parser("stats", help="class frequencies, median-frequency weights, image sizes")
    dataset_args(stats)
    stats.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print as JSON (or write FILE)")

    show = actions.add_parser("show", help="a grid of samples with coloured masks and a legend")
    dataset_args(show)
    show.add_argument("--out", default="grid.png", help="image to write (default grid.png)")
    show.add_argument("--split", help="split to show (default: the first)")
    show.add_argument("--count", type=int, default=8, help="samples to show (default 8)")
    show.add_argument("--seed", type=int, default=0, help="seed of the random choice of samples")

    convert = actions.add_parser("convert", help="write a dataset in another format")
    dataset_args(convert)
    convert.add_argument("--to", required=True, choices=["folder", "coco", "voc", "yolo"], help="format to write")
    convert.add_argument("--out", required=True, help="new folder to write (must not exist or be empty)")
    convert.add_argument("--split", type=float, metavar="FRACTION", help="data without splits: hold out this fraction "
                         "for validation (a seeded train/val split); by default its structure is kept")

    download = actions.add_parser("download", help="download a public dataset (checksums, resume)")
    download.add_argument("name", help="voc2012, camvid, ade20k, coco-val2017 or cityscapes")
    download.add_argument("--out", default="data", help="folder to download into (default data/)")
    download.add_argument("--mirror", help="fetch the archives from this base URL instead (a local copy)")

    actions.add_parser("formats", help="list the formats omniseg reads")


def run(args: argparse.Namespace, console: Console) -> int:
    return {"check": _check, "stats": _stats, "show": _show, "convert": _convert, "download": _download,
            "formats": _formats}[args.action](args, console)


def _check(args, console: Console) -> int:
    from omniseg.data.doctor import check_dataset

    report = check_dataset(args.path, format=args.format)
    if args.json:
        emit_json(console, report.to_dict(), args.json)
        if args.json == "-":
            return 1 if report.errors else 0
    console.print(f"[bold]{report.path}[/]: {report.format or 'unknown format'}  {report.description}", highlight=False)
    if report.counts:
        console.print("images per split: " + ", ".join(f"{s} {n}" for s, n in report.counts.items()))
    for title, findings, colour in (("errors", report.errors, "red"), ("warnings", report.warnings, "yellow")):
        if findings and not console.is_terminal:  # logs and pipes: one plain line a finding, every path whole
            for finding in findings:
                console.print(f"{title[:-1]} {finding.kind} {finding.path}: {finding.message}", markup=False, highlight=False,
                              soft_wrap=True)
        elif findings:
            table = Table(title=f"{len(findings)} {title if len(findings) > 1 else title[:-1]}", title_style=f"bold {colour}")
            table.add_column("kind")
            table.add_column("file", overflow="fold")
            table.add_column("problem", overflow="fold")
            for finding in findings:
                table.add_row(finding.kind, finding.path, finding.message)
            console.print(table)
    if report.class_pixels and report.class_names:
        total = [sum(v[c] for v in report.class_pixels.values()) for c in range(len(report.class_names))]
        pixels = max(sum(total), 1)
        console.print("class pixels: " + ", ".join(f"{n} {t / pixels:.1%}" for n, t in zip(report.class_names[:30], total))
                      + (" ..." if len(report.class_names) > 30 else ""), highlight=False)
    console.print("[bold red]check failed[/]" if report.errors else "[bold green]no errors[/]"
                  + (f" ({len(report.warnings)} warnings)" if report.warnings else ""))
    return 1 if report.errors else 0


def _stats(args, console: Console) -> int:
    from omniseg.data import load_dataset
    from omniseg.data.stats import dataset_stats

    stats = dataset_stats(load_dataset(args.path, format=args.format))
    if args.json:
        emit_json(console, stats, args.json)
        if args.json == "-":
            return 0
    console.print(f"[bold]{args.path}[/]: {stats['description']}", highlight=False)
    table = Table(title="classes (labelled splits)")
    for column in ("id", "class", "pixels", "frequency", "median-freq. weight"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in stats["classes"]:
        table.add_row(str(row["id"]), row["name"], f"{row['pixels']:,}", f"{row['frequency']:.4f}", f"{row['median_frequency_weight']:.3f}")
    console.print(table)
    sizes = Table(title="image sizes")
    for column in ("split", "images", "size (H x W)", "count"):
        sizes.add_column(column)
    for split, values in stats["splits"].items():
        for k, entry in enumerate(values["sizes"][:10]):
            sizes.add_row(split if k == 0 else "", str(values["images"]) if k == 0 else "", " x ".join(map(str, entry["size"])), str(entry["count"]))
    console.print(sizes)
    return 0


def _show(args, console: Console) -> int:
    from omniseg.data import load_dataset
    from omniseg.viz.dataset_grid import show_dataset

    source = load_dataset(args.path, format=args.format)
    split = args.split or source.splits()[0]
    out = show_dataset(source, args.out, split=split, count=args.count, seed=args.seed,
                       title=f"{args.path} ({split}, {min(args.count, len(source.dataset(split)))} of {len(source.dataset(split))})")
    console.print(f"wrote {out}")
    return 0


def _convert(args, console: Console) -> int:
    from omniseg.data.convert import convert

    out = convert(args.path, args.to, args.out, format=args.format, split=args.split)
    console.print(f"wrote {out} ({args.to}); open it with --data {out}")
    return 0


def _download(args, console: Console) -> int:
    from omniseg.data.download import DATASETS, download_dataset

    entry = DATASETS.get(args.name)
    if entry is not None and entry.note:
        console.print(entry.note)
    folder = download_dataset(args.name, args.out, mirror=args.mirror)
    console.print(f"done: train with --data {folder}")
    return 0


def _formats(args, console: Console) -> int:
    from omniseg.data.formats import FORMATS

    table = Table(title="dataset formats (detected in this order; --format NAME forces one)")
    table.add_column("name")
    table.add_column("layout")
    for name in sorted(FORMATS, key=lambda n: bool(FORMATS.meta(n).get("fallback"))):
        table.add_row(name, FORMATS.meta(name).get("description", ""))
    console.print(table)
    return 0
