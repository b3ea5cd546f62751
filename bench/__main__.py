"""Run every benchmark in bench/ and write bench/results.json.

A benchmark is a module of this package whose name does not start with an underscore; it has a
`run()` that prints what it measures and returns a list of `Result`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import signal
import sys
from pathlib import Path

import orjson

import bench
from bench._support import Result, machine_description

RESULTS_PATH = Path(__file__).parent / "results.json"


def benchmark_modules() -> list[str]:
    """The names of the benchmark modules, sorted."""
    return sorted(
        f"bench.{module.name}"
        for module in pkgutil.iter_modules(bench.__path__)
        if not module.name.startswith("_") and not module.ispkg
    )


def _stop(signum: int, _frame: object) -> None:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so that every benchmark cleans up behind it.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    machine = machine_description()
    print(f"machine: {machine}", flush=True)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores / 2:
        print(f"warning: load average {load:.1f} on {cores} cores: others are running, figures will be low, noisy")
    results: list[Result] = []
    for name in benchmark_modules():
        print(f"== {name}", flush=True)
        results += importlib.import_module(name).run()
    RESULTS_PATH.write_bytes(
        orjson.dumps([result.as_dict(machine) for result in results], option=orjson.OPT_INDENT_2) + b"\n"
    )
    print(f"{len(results)} results written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
