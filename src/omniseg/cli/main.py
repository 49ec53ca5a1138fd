"""The ``omniseg`` command: parse, dispatch to a subcommand, print errors as one line."""

from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console

from omniseg._version import __version__
from omniseg.cli import data, demo, evaluate, export, models, plan, predict, prompt, runs, segment, serve, track, train
from omniseg.cli.output import print_error, quiet_libraries
from omniseg.errors import OmnisegError

SUBCOMMANDS = {"demo": demo, "plan": plan, "train": train, "eval": evaluate, "predict": predict, "export": export, "models": models, "data": data,
               "segment": segment, "prompt": prompt, "autolabel": prompt, "serve": serve, "runs": runs, "track": track}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omniseg", description="Image segmentation: train, evaluate, predict, segment.")
    parser.add_argument("--version", action="version", version=f"omniseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        return SUBCOMMANDS[args.command].run(args, console) or 0
    except OmnisegError as exc:
        if args.debug:
            raise
        print_error(Console(stderr=True), exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
