"""Benchmark runner: ``python -m benchmarks [GROUP ...] [--quick] [--json FILE]``.

A group is a module ``benchmarks/bench_<group>.py`` defining ``BENCHMARKS``, a
dict of name -> callable(quick) returning a list of result rows (dicts). Rows
that compare against a peer carry ``ours_s``, ``peer``, ``peer_s`` and
``ratio`` (peer time / our time: above 1 means we are faster).
"""

import argparse
import importlib
import json
import pkgutil
import platform
import time
from pathlib import Path

import pandas as pd

from ._timing import machine_description


def available_groups():
    here = Path(__file__).parent
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(here)])
        if info.name.startswith("bench_")
    )


def run_group(group, quick=False, only=None):
    module = importlib.import_module(f"benchmarks.bench_{group}")
    rows = []
    for name, func in module.BENCHMARKS.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        for row in func(quick):
            rows.append({"group": group, "benchmark": name, **row})
        print(f"  {group}/{name}: {time.perf_counter() - start:.1f}s", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all of {available_groups()})")
    parser.add_argument("--only", nargs="*", help="run only these benchmark names")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    groups = args.groups or available_groups()
    unknown = set(groups) - set(available_groups())
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; available: {available_groups()}")
    print(f"# {machine_description()}; Python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    for group in groups:
        print(f"[{group}]", flush=True)
        rows += run_group(group, quick=args.quick, only=args.only)
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.max_colwidth", 60):
        for group, table in frame.groupby("group", sort=False):
            print(f"\n## {group}\n")
            print(table.drop(columns="group").dropna(axis=1, how="all").to_markdown(index=False)
                  if _has_tabulate() else table.to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


def _has_tabulate():
    return importlib.util.find_spec("tabulate") is not None
