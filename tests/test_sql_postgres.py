"""The ``engine compile --target postgres`` query, run on a real PostgreSQL server, gives decide()'s rows.

The same cases as DuckDB's (tests/test_sql_differential.py) and Spark's: generated leads and the
hand-written edge cases, loaded into a database the test creates, then the rendered query —
exactly what ``engine compile --target postgres --as-of ...`` prints — run on them.

The server: ``ENGINE_TEST_POSTGRES`` (a conninfo; ``.ci/run`` starts one), else a throwaway cluster
started here (tests/pg_cluster.py). Skipped, with the reason, only outside CI; under ``CI=true`` a
missing server or psycopg fails. The database is created with a linguistic (ICU) default collation
and a session time zone other than UTC, so an answer that leaned on "C" ordering or on the server's
time zone would show here.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.compile import CompiledPlaybook
from engine.sql import render

from . import pg_cluster
from .test_sql_differential import (
    AS_OF,
    EDGE_CASES,
    PLAYBOOKS,
    Lead,
    _lead,
    _tables,
    assert_rows_equal,
    expected_rows,
    instants_as_text,
)

_CI = bool(os.environ.get("CI"))
_TYPES = {"string": "TEXT", "double": "DOUBLE PRECISION", "bool": "BOOLEAN", "int64": "BIGINT"}


def _unavailable(reason: str) -> None:
    if _CI:  # never skipped in CI: a missing server is a failure there
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A conninfo of a running server: CI's, or a throwaway one started for this session."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("needs psycopg (pip install -e '.[dev]')")
    given_info = os.environ.get(pg_cluster.ENV)
    if given_info:
        yield given_info
        return
    try:
        folder, info = pg_cluster.start()
    except pg_cluster.NoServer as exc:
        _unavailable(f"no PostgreSQL server could be started: {exc}")
        raise  # unreachable: skip or fail raised
    try:
        yield info
    finally:
        pg_cluster.stop(folder)


@pytest.fixture(scope="session")
def pg(pg_server: str) -> Iterator[Any]:
    """A connection to a database of this session's own, dropped at the end."""
    import psycopg

    name = f"engine_test_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        try:  # a linguistic default collation, where the server has ICU (Debian's has)
            admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                          "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
        except psycopg.Error:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
    conninfo = psycopg.conninfo.make_conninfo(pg_server, dbname=name)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'Asia/Tokyo'")  # answers must not depend on it
            yield conn
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _load(conn: Any, name: str, table: pa.Table) -> None:
    """``table`` as a temporary table ``name`` (the query reads leads and events unqualified)."""
    columns = [
        f'"{f.name}" {_TYPES.get(str(f.type), "TIMESTAMPTZ")}' for f in table.schema
    ]
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TEMP TABLE {name} ({', '.join(columns)})")
    names = ", ".join(f'"{f.name}"' for f in table.schema)
    with conn.cursor() as cur, cur.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
        for row in table.to_pylist():
            copy.write_row(tuple(row.values()))


def run_postgres(conn: Any, cp: CompiledPlaybook, leads: list[Lead]) -> list[dict[str, Any]]:
    """The rendered postgres query's rows over ``leads``, as ``Decision.to_row()`` spells them."""
    lead_table, event_table = _tables(cp, leads)
    _load(conn, "leads", lead_table)
    _load(conn, "events", event_table)
    sql = render(cp, "postgres", AS_OF)
    with conn.cursor() as cur:
        cur.execute(sql.encode())  # bytes: psycopg reads no %s placeholders in it
        names = [d.name for d in cur.description]
        return [instants_as_text(cp, dict(zip(names, values, strict=True))) for values in cur.fetchall()]


def _no_underflow(lead: Lead) -> Lead:
    """Numbers below 1e-100 become 0: Postgres raises "value out of range: underflow" where a
    product or power of them rounds to 0 (Python gives 0.0). A loud stop, not a wrong answer;
    the compiled query's header says so, and test_underflow_is_an_error_not_an_answer pins it."""
    lid, fields, events = lead
    tiny = {k: 0.0 for k, v in fields.items() if isinstance(v, float) and 0 < abs(v) < 1e-100}
    return lid, {**fields, **tiny}, events


def _no_overflow(lead: Lead) -> Lead:
    """playbooks/scoring.yaml's `overflow` rule (country JP) multiplies past the largest double:
    Python gets inf, Postgres stops with "value out of range: overflow" (pinned below)."""
    lid, fields, events = lead
    return (lid, {**fields, "country": "FR"}, events) if fields.get("country") == "JP" else lead


@pytest.mark.parametrize("name", sorted(PLAYBOOKS))
def test_postgres_decides_like_python(pg: Any, name: str) -> None:
    cp = PLAYBOOKS[name]

    @settings(
        max_examples=4,
        derandomize=True,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        leads = [_no_overflow(_no_underflow(data.draw(_lead(cp, i))))
                 for i in range(data.draw(st.integers(1, 60)))]
        assert_rows_equal(run_postgres(pg, cp, leads), expected_rows(cp, leads))

    check()


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_postgres_edge_cases(pg: Any, case: str) -> None:
    cp, leads = EDGE_CASES[case]()
    assert_rows_equal(run_postgres(pg, cp, leads), expected_rows(cp, leads))


def test_underflow_is_an_error_not_an_answer(pg: Any) -> None:
    """The documented limit: a power that underflows stops the query, it never answers wrong."""
    import psycopg

    cp = PLAYBOOKS["constructs"]  # fit: lead.employees ** 2 < 400
    lead: Lead = ("tiny", {"employees": 1e-250, "title": "x", "domain": "ok.example"}, [])
    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="underflow"):
        run_postgres(pg, cp, [lead])
    assert "underflow" in render(cp, "postgres", AS_OF).split("\nWITH", 1)[0]


def test_overflow_is_an_error_not_an_answer(pg: Any) -> None:
    """The same limit upwards: a product past the largest double stops the query (Python: inf)."""
    import psycopg

    cp = PLAYBOOKS["scoring"]  # fit rule `overflow`: lead.employees * 1e300 * 1e300 - … (country JP)
    lead: Lead = ("big", {"employees": 5.0, "country": "JP", "title": "x", "time_on_site": 60.0}, [])
    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="overflow"):
        run_postgres(pg, cp, [lead])
    assert "overflow" in render(cp, "postgres", AS_OF).split("\nWITH", 1)[0]


def test_events_thousands_of_half_lives_old_count_zero(pg: Any) -> None:
    """0.5 ** (age / half_life) underflows for old events; Python's term is 0, Postgres's too."""
    from datetime import timedelta

    from engine.events import Event

    cp = PLAYBOOKS["constructs"]  # half_life 3d: 10 years is ~1200 half-lives
    lead = {"employees": 50.0, "title": "x", "domain": "ok.example"}
    leads: list[Lead] = [
        ("old", lead, [Event("call", AS_OF - timedelta(days=3650), {"outcome": "no_answer"}),
                       Event("call", AS_OF - timedelta(days=1), {"outcome": "no_answer"})]),
    ]
    assert_rows_equal(run_postgres(pg, cp, leads), expected_rows(cp, leads))
