"""Fuzz every annotation reader and the image and mask decoders: N generated malformed files each (hypothesis,
``tests/fuzzing.py``), each read as training reads a dataset. A failure is any exception other than omniseg's own
errors, or an omniseg error that does not name the file. Prints examples per second and failures found per
reader, the first failures in full, and saves JSON. Nothing is asserted.

    python benchmarks/fuzz_readers.py [--examples 10000] [--targets coco,via] [--out benchmarks/results/fuzz_readers.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fuzzing import TARGETS, check, reproducer  # noqa: E402


def limit_memory(gigabytes: float) -> None:
    """Cap this process's address space at what it uses now plus ``gigabytes``: an input that makes a reader
    allocate without bound then raises MemoryError (counted as a failure) instead of exhausting the machine."""
    import resource

    used = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmSize:"))
    limit = used + int(gigabytes * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def fuzz(name: str, examples: int, random_seed: int, on_example) -> dict:
    target = TARGETS[name]
    failures: dict[str, str] = {}  # one input per distinct failure message head
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fuzzed = target.build(root)
        valid = fuzzed.read_bytes()

        @seed(random_seed)
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate])  # no shrinking: every failure is counted, the first inputs are kept
        @given(st.data())
        def run(data):
            generated = data.draw(target.mutations(valid))
            problem = check(root, target, fuzzed, generated)
            if problem is not None:  # one input kept per kind of failure (its first 80 characters)
                failures.setdefault(problem[:80], f"{problem}\n    input: {reproducer(generated)}")
            on_example()

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
        seconds = time.perf_counter() - start
    return {"reader": name, "examples": examples, "seconds": round(seconds, 2), "per_second": round(examples / seconds, 1),
            "failure_kinds": len(failures), "examples_of_failures": list(failures.values())[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="generated files per reader")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated readers (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address space a reader may add (a MemoryError is a failure)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fuzz_readers.json"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # readers warn about odd but readable data; the failures are what counts
    limit_memory(args.memory_gb)
    names = args.targets.split(",")
    console = Console()
    rows = []
    with Progress(console=console) as progress:
        task = progress.add_task("fuzzing", total=args.examples * len(names))
        for name in names:
            rows.append(fuzz(name, args.examples, args.seed, lambda: progress.advance(task)))
    table = Table("reader", "examples", "examples/s", "kinds of failure", title=f"{args.examples} malformed files per reader")
    for row in rows:
        table.add_row(row["reader"], str(row["examples"]), f"{row['per_second']:.0f}", str(row["failure_kinds"]))
    console.print(table)
    for row in rows:
        for failure in row["examples_of_failures"]:
            console.print(f"[bold]{row['reader']}[/]: {failure}", markup=True, highlight=False)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"examples_per_reader": args.examples, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
