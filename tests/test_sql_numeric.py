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


def test_engagement_is_an_exact_micro_point_sum_in_any_order_and_in_sql() -> None:
    """Same-instant events of several types: (a + b) + c != (a + c) + b in floating point,
    so engagement is summed in whole 2**-32 units. The SQL total (a plain SUM) must equal
    the Python total to the bit, and the Python total must not depend on input order."""
    from datetime import timedelta

    from engine.events import Event
    from engine.history import History
    from engine.sql.query import build_query

    from .test_sql_differential import AS_OF, PLAYBOOKS, _tables

    cp = PLAYBOOKS["constructs"]
    rng = random.Random(7)
    types = ["page_view", "download", "call", "inquiry"]
    contents = [None, "guide-a", "price1", "demo"]
    leads = []
    sensitive = 0
    for n in range(300):
        instants = [AS_OF - timedelta(seconds=rng.randint(1, 10**6) + rng.random()) for _ in range(3)]
        events = [
            Event(
                rng.choice(types),
                rng.choice(instants),
                {"content": c} if (c := rng.choice(contents)) else {},
                None,
                seq,
            )
            for seq in range(rng.randint(3, 9))
        ]
        leads.append((f"L{n:03d}", {}, events))
        history = History(events, AS_OF)
        sensitive += _float_total(cp, history) != _float_total(cp, history, by_input=True)
        shuffled = [Event(e.type, e.at, e.fields, e.id, i) for i, e in enumerate(reversed(events))]
        assert _exact_total(cp, History(shuffled, AS_OF)) == _exact_total(cp, history)
    assert sensitive > 10  # the data can tell floating-point addition orders apart

    con = duckdb.connect()
    lead_table, event_table = _tables(cp, leads)
    con.register("leads", lead_table)
    con.register("events", event_table)
    probe = build_query(cp, AS_OF).tree.copy()
    probe.set("expressions", [exp.column("lead_id"), exp.column("engagement_total")])
    probe.set("from_", exp.From(this=exp.to_table("lead_facts")))
    got = dict(con.execute(probe.sql("duckdb")).fetchall())
    for lead_id, _, events in leads:
        assert got[lead_id] == _exact_total(cp, History(events, AS_OF)), lead_id


def _decayed(cp: object, history: object, events: object) -> list[float]:
    out = []
    for event in events:  # type: ignore[attr-defined]
        points = cp.weight(event)  # type: ignore[attr-defined]
        if points:
            age = (history.as_of - event.at).total_seconds()  # type: ignore[attr-defined]
            out.append(points * 0.5 ** (age / cp.half_life_seconds))  # type: ignore[attr-defined]
    return out


def _exact_total(cp: object, history: object) -> float:
    """engine.evaluate._engagement's total before the cap: whole 2**-32 units, summed exactly."""
    units = sum(math.floor(p * 2**32 + 0.5) for p in _decayed(cp, history, history.events))  # type: ignore[attr-defined]
    return units / 2**32


def _float_total(cp: object, history: object, by_input: bool = False) -> float:
    """A plain floating-point sum in History order (or input order): what it replaced."""
    events = sorted(history.events, key=lambda e: e.seq) if by_input else history.events  # type: ignore[attr-defined]
    total = 0.0
    for points in _decayed(cp, history, events):
        total += points
    return total


def test_fmod_exact_is_c_fmod_bit_for_bit() -> None:
    """The ``%`` of Postgres and BigQuery (no modulo of doubles there), checked on DuckDB's doubles.

    Fractional operands whose decimal forms would give another answer (1.0 % 0.1 is
    0.0999... in binary, 0 in decimal), subnormals, and quotients up to 2**52; beyond the
    limit the result is NULL.
    """
    from engine.sql.numeric import FMOD_QUOTIENT_LIMIT, fmod_exact

    rng = random.Random(17)
    pairs = [(7.0, 3.0), (-7.0, 3.0), (7.0, -3.0), (1.0, 0.1), (2.0**51 + 0.5, 0.3), (5e-324, 3e-324),
             (0.3, 0.1), (1e300, 1e-5), (0.0, 2.5), (12.5, 12.5)]
    for _ in range(20_000):
        a = rng.choice([rng.uniform(-1e6, 1e6), float(rng.randint(-(10**9), 10**9)),
                        rng.uniform(-1, 1) * 10.0 ** rng.randint(-20, 20)])
        b = rng.choice([rng.uniform(-100, 100), float(rng.randint(1, 50)),
                        rng.uniform(-1, 1) * 10.0 ** rng.randint(-10, 10)])
        pairs.append((a, b or 1.5))
    con = duckdb.connect()
    con.register("t", pa.table({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs],
                                "i": range(len(pairs))}))
    sql = exp.select(exp.alias_(fmod_exact(exp.column("a"), exp.column("b")), "m")).from_("t").order_by("i")
    got = [r[0] for r in con.execute(sql.sql("duckdb")).fetchall()]
    wrong = [
        (a, b, m) for (a, b), m in zip(pairs, got, strict=True)
        if (m is None) != (abs(a / b) >= FMOD_QUOTIENT_LIMIT) or (m is not None and m != math.fmod(a, b))
    ]
    assert wrong == []
    assert got[3] == math.fmod(1.0, 0.1) != 0.0 and got[7] is None
