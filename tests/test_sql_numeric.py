"""SQL rounding is Python's ``round(x, 2)`` to the bit, where DuckDB's ``ROUND`` is not."""

from __future__ import annotations

import math
import random

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.sql.numeric import round2_steps


def _values() -> list[float]:
    rng = random.Random(20261101)
    values = [
        0.125,
        0.375,
        2.675,
        1.005,
        0.005,
        0.015,
        99.995,
        12.345,
        45.125,
        0.1 + 0.2,
        0.0,
        -0.0,
        -0.125,
        -2.675,
        1e-300,
        5e-324,
        100.0,
        2.0**40 + 0.125,
    ]
    for _ in range(20_000):
        k = rng.randint(-(10**8), 10**8)
        near = k / 200  # midpoints between hundredths, and their binary neighbours
        values += [near, math.nextafter(near, math.inf), math.nextafter(near, -math.inf)]
        values.append(rng.uniform(-1000, 1000))
    return values


def _round_in_duckdb(values: list[float]) -> list[float]:
    con = duckdb.connect()
    con.register("t", pa.table({"x": pa.array(values, pa.float64()), "i": pa.array(range(len(values)))}))
    query = exp.select("*").from_("t")
    for step, columns in enumerate(round2_steps([("r", "x")])):
        query = exp.select("*", *[exp.alias_(e, a) for a, e in columns]).from_(query.subquery(f"s{step}"))
    rows = con.execute(exp.select("r").from_(query.subquery("done")).order_by("i").sql("duckdb")).fetchall()
    return [r[0] for r in rows]


def test_matches_python_round_bit_for_bit() -> None:
    values = _values()
    got = _round_in_duckdb(values)
    wrong = [(x, r) for x, r in zip(values, got, strict=True) if repr(r) != repr(round(x, 2) + 0.0)]
    assert wrong == []


def test_duckdb_round_alone_would_not() -> None:
    con = duckdb.connect()
    ties = con.execute("SELECT round(0.125::DOUBLE, 2), round(2.675::DOUBLE, 2)").fetchall()[0]
    assert ties != (round(0.125, 2), round(2.675, 2))
