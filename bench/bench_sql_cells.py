"""The SQL cell expressions' fast paths against their general forms, in DuckDB.

Issue #17's per-value work, measured where it happens: each expression over a table of
generated values, alternating rounds, process CPU time, median of rounds, and the ratio
against the general form measured in the same run. Each pair is also checked to give
the same answer on every value.

- ``strip``: ``engine.sql.cells.strip`` against the regexp it falls back to, on ASCII,
  Japanese and empty cells (an optional column's usual cell);
- ``times``: ``engine.sql.zones.iso_sql`` against ``icu_spelling`` (DuckDB's
  zone functions) for UTC, Asia/Tokyo and Europe/London (daylight saving: no fast path).

    python bench/bench_sql_cells.py [--values 3000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CELLS = {
    "ascii": "'user' || CAST(i AS VARCHAR) || '@corp.example.com'",
    "japanese": "['株式会社テスト', '部長', 'マーケティング部 課長', '代表取締役'][1 + (i % 4)::INT] "
                "|| CAST(i % 100 AS VARCHAR) || '様'",
    "empty": "''",
}
ZONES = ("UTC", "Asia/Tokyo", "Europe/London")


def _cpu(con: Any, sql: str) -> float:
    start = time.process_time()
    con.execute(f"CREATE OR REPLACE TEMP TABLE out AS {sql}")
    return time.process_time() - start


def _pair(con: Any, label: str, fast: str, general: str, table: str, rounds: int) -> None:
    same = con.execute(f"SELECT count(*) FILTER (WHERE ({fast}) IS DISTINCT FROM ({general})) "
                       f"FROM {table}").fetchall()[0][0]
    times: dict[str, list[float]] = {"fast": [], "general": []}
    for _ in range(rounds):
        times["general"].append(_cpu(con, f"SELECT {general} AS v FROM {table}"))
        times["fast"].append(_cpu(con, f"SELECT {fast} AS v FROM {table}"))
    f, g = statistics.median(times["fast"]), statistics.median(times["general"])
    print(f"  {label:22} engine {f:6.2f} s   general form {g:6.2f} s   {f / g:5.2f}×   "
          f"differing values: {same}", flush=True)


def main(argv: list[str] | None = None) -> None:
    import duckdb

    from engine.sql.cells import _whitespace_class, strip
    from engine.sql.inputs import literal
    from engine.sql.zones import icu_spelling, iso_sql

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    n = args.values
    print(f"{n:,} values per expression, {args.rounds} rounds, CPU time (median)")
    print("strip")
    ws = _whitespace_class()
    general = (f"CASE WHEN regexp_matches(c, {literal(f'^{ws}|{ws}$')}) "
               f"THEN regexp_replace(c, {literal(f'^{ws}+|{ws}+$')}, '', 'g') ELSE c END")
    for kind, text in CELLS.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE cells AS SELECT {text} AS c FROM range({n}) r(i)")
        _pair(con, kind, strip("c"), general, "cells", args.rounds)
    print("times (decision columns)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE times AS SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' "
                f"+ INTERVAL (i * 37) SECOND + INTERVAL (i % 7) MICROSECOND AS c FROM range({n}) r(i)")
    for zone in ZONES:
        icu = f"CASE WHEN c IS NULL THEN '' ELSE {icu_spelling('c', zone)} END"
        _pair(con, zone, iso_sql("c", zone), icu, "times", args.rounds)


if __name__ == "__main__":
    main()
