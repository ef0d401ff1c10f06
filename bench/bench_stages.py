"""Where ``engine evaluate --backend duckdb`` spends its time, stage by stage, beside the hand-written query.

bench_evaluate.py gives the end-to-end ratios; this gives the split that decides what to
work on next (issue #17): the scan (DuckDB's read; the line count, only when a row is rejected), the cell
conversion (``_materialize``), the one pass of a clean export (``fold``, which reads and
converts the events itself), grouping (the sort check), the decision table and the
writing, plus every DuckDB statement over ``--slow`` seconds. Each round runs the
engine then the hand-written DuckDB query (bench/spec_duckdb.py) on the same data and
reports wall *and* process CPU time: on a shared machine wall time swings by 2× between
rounds, CPU time by a few percent, so compare changes by CPU time over several rounds.

    python bench/bench_stages.py [--leads 100000] [--repeat 3] [--slow 0.2]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: (module, attribute) timed as one stage each (nested stages are included in their parents).
STAGES = (
    ("engine.sql.inputs", "Inputs.scan"),
    ("engine.sql.inputs", "Inputs.numbered"),
    ("engine.sql.records", "lead_rows"),
    ("engine.sql.records", "event_rows"),
    ("engine.sql.records", "event_stream"),
    ("engine.sql.streamed", "fold"),
    ("engine.sql.records", "_materialize"),
    ("engine.sql.grouping", "group"),
    ("engine.sql.grouping", "_both_ascending"),
    ("engine.sql.decisions", "make_table"),
    ("engine.sql.decisions", "write"),
)


def instrument(times: dict[str, float]) -> None:
    """Wrap each stage so its wall time accumulates in ``times``."""
    import importlib

    for module_name, dotted in STAGES:
        owner: Any = importlib.import_module(module_name)
        *path, name = dotted.split(".")
        for part in path:
            owner = getattr(owner, part)
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, __f: Callable[..., Any] = original, __n: str = dotted, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return __f(*args, **kwargs)
            finally:
                times[__n] = times.get(__n, 0.0) + time.perf_counter() - start

        setattr(owner, name, functools.wraps(original)(timed))


def log_statements(slow: float, log: list[tuple[float, str]]) -> None:
    """Record every DuckDB statement slower than ``slow`` seconds (its first 110 characters)."""
    import duckdb

    connect = duckdb.connect

    class Logged:
        def __init__(self, con: Any) -> None:
            self._con = con

        def execute(self, query: str, *args: Any) -> Logged:
            start = time.perf_counter()
            self._con.execute(query, *args)
            elapsed = time.perf_counter() - start
            if elapsed >= slow:
                log.append((elapsed, " ".join(query.split())[:110]))
            return self

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    duckdb.connect = lambda *a, **k: Logged(connect(*a, **k))  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow", type=float, default=0.2,
                        help="log DuckDB statements at least this slow (s)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    import bench_evaluate

    data = bench_evaluate.ensure_data(args.leads, bench_evaluate.GEN)
    times: dict[str, float] = {}
    log: list[tuple[float, str]] = []
    instrument(times)
    log_statements(args.slow, log)
    for round_ in range(1, args.repeat + 1):
        times.clear()
        log.clear()
        with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
            cpu, wall = time.process_time(), time.perf_counter()
            bench_evaluate.engine_duckdb_in_process(data, Path(tmp) / "engine.csv")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            hand_cpu, hand = time.process_time(), time.perf_counter()
            bench_evaluate.duckdb_in_process(data, Path(tmp) / "hand.csv")
            hand_cpu, hand = time.process_time() - hand_cpu, time.perf_counter() - hand
        print(f"round {round_}: engine {wall:.2f} s wall, {cpu:.2f} s CPU; "
              f"hand-written DuckDB {hand:.2f} s wall, {hand_cpu:.2f} s CPU; "
              f"ratio {wall / hand:.2f}x wall, {cpu / hand_cpu:.2f}x CPU", flush=True)
        for name, seconds in times.items():
            print(f"    {name:<24} {seconds:6.2f} s wall")
        for seconds, query in log:
            print(f"    {seconds:6.2f} s  {query}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
