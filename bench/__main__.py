"""Run every benchmark in bench/ and write bench/results.json.

A benchmark is a module of this package whose name does not start with an underscore; it has a
`run()` that prints what it measures and returns a list of `Result`. `python -m bench NAME …` runs only those.
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


def print_table(results: list[Result]) -> None:
    """Every figure with its target and whether it is met, readable in a terminal and in CI's log."""
    print()
    print(f"{'figure':<34} {'backend':<11} {'value':>12} {'target':>12}  unit / verdict")
    for result in results:
        target = "" if result.target is None else f"{'≥' if result.higher_is_better else '≤'} {result.target:,.6g}"
        verdict = {True: "PASS", False: "FAIL", None: ""}[result.passed]
        print(
            f"{result.name:<34} {result.backend:<11} {result.value:>12,.6g} {target:>12}  {result.unit} {verdict}"
            + (f" — {result.note}" if result.note else "")
        )
    met = [result.passed for result in results if result.passed is not None]
    print(f"\n{met.count(True)} of {len(met)} targets met")


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
    entries: list[dict[str, object]] = []
    chosen = sys.argv[1:]  # `python -m bench live ingest` runs those alone and keeps the others' last figures
    for name in benchmark_modules():
        short = name.removeprefix("bench.")
        if chosen and short not in chosen:
            continue
        print(f"== {name}", flush=True)
        measured = importlib.import_module(name).run()
        results += measured
        entries += [{"benchmark": short, **result.as_dict(machine)} for result in measured]
    print_table(results)
    if chosen and RESULTS_PATH.exists():
        kept = [entry for entry in orjson.loads(RESULTS_PATH.read_bytes()) if entry.get("benchmark") not in chosen]
        entries = kept + entries
    RESULTS_PATH.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"{len(results)} results written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
