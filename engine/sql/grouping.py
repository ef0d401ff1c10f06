"""Stage 3 of the SQL batch path: which rows are decided, which rejected, in the Python order.

The twin of :mod:`engine.io.grouping`. A lead is decided once (a repeated lead id is
a reject), an event whose lead is not decided is an orphan, and — so both backends
write *byte-identical* rejects files — rejects come out in the order the Python path
emits them. That order depends on which strategy engine.io picks:

* spill (inputs not both sorted by lead id): every events-file reject (row order),
  then the leads file's rejects and repeated ids (row order), then orphans (events order);
* merge (leads strictly ascending, events never descending — or ``--events-sorted``):
  one interleaved pass. Before lead *i* is decided, the leads file is read up to it
  (its rejects), then events are consumed up to its id: each consumed event is an
  orphan or matched, and reading the next one emits the events-file rejects in
  between. Each reject's sort key below is its place in that pass.

Tables made: ``decided_leads`` (usable, first occurrences, with ``__row``),
``matched_events`` (file events of decided leads; ``seq`` is the row number, which
ascends with engine.io's position among usable rows, so ties order the same) and
``rejects`` (file, row, column, value, reason, k1..k5: the order).
"""

from __future__ import annotations

from typing import Any

from engine.io import InputError, Reject
from engine.sql.inputs import ROW, forget, literal, quote

#: engine.io.grouping's reasons, word for word (tests compare the two backends' files).
ORPHAN = "event for a lead id that is not in the leads file"
DUPLICATE = "lead id appears earlier in the leads file"

_KEYS = "k1, k2, k3, k4, k5"


def _structural(con: Any, table: str, rejects: list[Reject]) -> None:
    """Rows a fallback reader refused as rows (wrong width, bad JSON) as a table."""
    if not rejects:  # the usual case: no pyarrow import (0.1 s of every run's start-up)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({quote(ROW)} BIGINT, __column VARCHAR, "
                    "__value VARCHAR, __reason VARCHAR)")
        return
    import pyarrow as pa

    data = pa.table({
        ROW: pa.array([r.row for r in rejects], pa.int64()),
        "__column": pa.array([r.column for r in rejects], pa.string()),
        "__value": pa.array([r.value for r in rejects], pa.string()),
        "__reason": pa.array([r.reason for r in rejects], pa.string()),
    })
    con.register(f"{table}_arrow", data)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_arrow")
    con.unregister(f"{table}_arrow")


def group(con: Any, leads_file: str, events_file: str | None, lead_structural: list[Reject],
          event_structural: list[Reject], events_sorted: bool | None) -> tuple[int, int]:
    """Decide the strategy as engine.io would, then make the three tables; return the
    summary's events matched and leads with events."""
    _structural(con, "lead_structural", lead_structural)
    _structural(con, "event_structural", event_structural)
    if events_file is None:
        con.execute("CREATE OR REPLACE TEMP TABLE event_rows AS SELECT CAST(NULL AS BIGINT) AS __row, "
                    "CAST(NULL AS VARCHAR) AS lead_id, CAST(NULL AS VARCHAR) AS __column, "
                    "CAST(NULL AS VARCHAR) AS __value, CAST(NULL AS VARCHAR) AS __reason WHERE FALSE")
    if events_sorted:
        _check_sorted(con, events_file)
    _usable_leads(con)
    # An event's position among usable rows only orders ties (Event.seq) and rejects, so
    # its row number, which ascends with it, serves for both without a window over every event.
    con.execute(f"""CREATE OR REPLACE TEMP VIEW usable_events AS
        SELECT e.*, e.{ROW} AS __j, e.lead_id IN (SELECT lead_id FROM decided_leads) AS __matched
        FROM event_rows e WHERE e.__reason IS NULL""")
    # the summary's counts and whether any event is an orphan, from the events counted per
    # lead id first (one aggregate, then a join of ids: not a look-up per event plus a
    # DISTINCT over every event, 20% less CPU at 1M leads); decided_leads' ids are unique
    matched, with_events, orphaned = con.execute(
        "SELECT coalesce(sum(n) FILTER (WHERE d.lead_id IS NOT NULL), 0), count(d.lead_id), "
        "coalesce(bool_or(d.lead_id IS NULL), FALSE) FROM (SELECT lead_id, count(*) AS n "
        "FROM event_rows WHERE __reason IS NULL GROUP BY lead_id) e "
        "LEFT JOIN decided_leads d ON e.lead_id = d.lead_id").fetchall()[0]
    if orphaned:
        con.execute("CREATE OR REPLACE TEMP VIEW matched_events AS "
                    "SELECT * EXCLUDE (__matched), __j AS seq FROM usable_events WHERE __matched")
    else:  # every usable event's lead is decided: the query need not look each one up again
        con.execute(f"CREATE OR REPLACE TEMP VIEW matched_events AS "
                    f"SELECT e.*, e.{ROW} AS __j, e.{ROW} AS seq FROM event_rows e WHERE e.__reason IS NULL")
    leads = literal(leads_file)
    events = literal(events_file or "")
    lead_rejects = (f"SELECT {leads} AS file, {ROW}, __column, __value, __reason FROM lead_rows "
                    f"WHERE __reason IS NOT NULL UNION ALL SELECT {leads}, {ROW}, __column, __value, "
                    f"__reason FROM lead_structural UNION ALL SELECT {leads}, {ROW}, 'lead_id', lead_id, "
                    f"{literal(DUPLICATE)} FROM usable_leads WHERE __nth > 1")
    event_rejects = (f"SELECT {events} AS file, {ROW}, __column, __value, __reason FROM event_rows "
                     f"WHERE __reason IS NOT NULL UNION ALL SELECT {events}, {ROW}, __column, __value, "
                     "__reason FROM event_structural")
    orphans = (f"SELECT {events} AS file, {ROW}, 'lead_id' AS __column, lead_id AS __value, "
               f"{literal(ORPHAN)} AS __reason, __j, lead_id FROM usable_events WHERE NOT __matched")
    any_reject = f"SELECT 1 FROM ({lead_rejects}) UNION ALL SELECT 1 FROM ({event_rejects})"
    if not orphaned and not con.execute(f"SELECT EXISTS ({any_reject})").fetchall()[0][0]:
        # nothing to order (the usual case): no ASOF joins over every lead and event
        sql = (f"SELECT {events} AS file, CAST(NULL AS BIGINT) AS {ROW}, CAST(NULL AS VARCHAR) AS __column, "
               "CAST(NULL AS VARCHAR) AS __value, CAST(NULL AS VARCHAR) AS __reason, 0 AS k1, 0 AS k2, "
               "0 AS k3, 0 AS k4, 0 AS k5 WHERE FALSE")
    elif events_sorted if events_sorted is not None else _both_ascending(con):
        # the strategy only orders rejects: the sort check runs only when there are some
        sql = _merged_order(lead_rejects, event_rejects, orphans)
    else:
        sql = (f"SELECT *, 0 AS k1, {ROW} AS k2, 0 AS k3, 0 AS k4, 0 AS k5 FROM ({event_rejects}) "
               f"UNION ALL SELECT *, 1, {ROW}, 0, 0, 0 FROM ({lead_rejects}) "
               f"UNION ALL SELECT file, {ROW}, __column, __value, __reason, 2, __j, 0, 0, 0 FROM ({orphans})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE rejects AS {sql}")
    return int(matched), int(with_events)


def _usable_leads(con: Any) -> None:
    """``usable_leads`` (``__nth``: which occurrence of its id) and ``decided_leads`` (the first).

    Repeated ids are rare: they are looked for with one count before paying for a window
    over every lead (2 s of CPU at 1M leads, issue #17).
    """
    forget(con, "usable_leads", "decided_leads")
    repeated = con.execute("SELECT count(*) <> count(DISTINCT lead_id) FROM lead_rows "
                           "WHERE __reason IS NULL").fetchall()[0][0]
    if repeated:
        con.execute(f"""CREATE TEMP TABLE usable_leads AS SELECT *,
            row_number() OVER (PARTITION BY lead_id ORDER BY {ROW}) AS __nth
            FROM lead_rows WHERE __reason IS NULL""")
        con.execute("CREATE TEMP TABLE decided_leads AS "
                    "SELECT * EXCLUDE (__nth) FROM usable_leads WHERE __nth = 1")
    else:  # views: no copy of every lead in memory (at 1M leads the events already spill)
        con.execute("CREATE TEMP VIEW usable_leads AS "
                    "SELECT *, 1 AS __nth FROM lead_rows WHERE __reason IS NULL")
        con.execute("CREATE TEMP VIEW decided_leads AS SELECT * FROM lead_rows WHERE __reason IS NULL")


def _merged_order(lead_rejects: str, event_rejects: str, orphans: str) -> str:
    """Keys (phase, step, event, after, row): the merge join's order (see the module docstring)."""
    return f"""
        WITH ok AS (SELECT {ROW}, lead_id, row_number() OVER (ORDER BY {ROW}) - 1 AS __k FROM usable_leads),
        lr AS (SELECT r.*, COALESCE(ok.__k + 1, 0) AS phase
               FROM ({lead_rejects}) r ASOF LEFT JOIN ok ON r.{ROW} > ok.{ROW}),
        orph AS (SELECT o.*, COALESCE(ok.__k + 1, 0) AS phase
                 FROM ({orphans}) o ASOF LEFT JOIN ok ON o.lead_id > ok.lead_id),
        ev AS (SELECT {ROW}, __j, lead_id FROM usable_events),
        er AS (SELECT r.*, ev.__j AS previous, ev.lead_id AS previous_lead
               FROM ({event_rejects}) r ASOF LEFT JOIN ev ON r.{ROW} > ev.{ROW}),
        er2 AS (SELECT er.*, CASE WHEN er.previous IS NULL THEN -1 ELSE COALESCE(ok.__k + 1, 0) END AS phase
                FROM er ASOF LEFT JOIN ok ON er.previous_lead > ok.lead_id)
        SELECT file, {ROW}, __column, __value, __reason, phase AS k1, 0 AS k2, 0 AS k3, 0 AS k4,
               {ROW} AS k5 FROM lr
        UNION ALL SELECT file, {ROW}, __column, __value, __reason, phase, 1, __j, 0, 0 FROM orph
        UNION ALL SELECT file, {ROW}, __column, __value, __reason, phase, 1, COALESCE(previous, -1), 1,
               {ROW} FROM er2"""


def _both_ascending(con: Any) -> bool:
    """engine.io's pre-scan: lead ids strictly ascending, event lead ids never descending."""
    query = """SELECT coalesce(bool_and(lead_id {op} previous), TRUE) FROM (
        SELECT lead_id, lag(lead_id) OVER (ORDER BY __row) AS previous FROM {table}
        WHERE COALESCE(lead_id, '') <> '') WHERE previous IS NOT NULL"""
    leads = con.execute(query.format(op=">", table="lead_rows")).fetchall()[0][0]
    events = con.execute(query.format(op=">=", table="event_rows")).fetchall()[0][0]
    return bool(leads and events)


def _check_sorted(con: Any, events_file: str | None) -> None:
    """``--events-sorted`` promised the order: a violation is engine.io's error, not a wrong answer."""
    query = """SELECT min(__row) FROM (
        SELECT __row, lead_id, lag(lead_id) OVER (ORDER BY __row) AS previous FROM {table}
        WHERE __reason IS NULL) WHERE previous IS NOT NULL AND lead_id {op} previous"""
    row = con.execute(query.format(op="<=", table="lead_rows")).fetchall()[0][0]
    if row is not None:
        raise InputError("lead ids are not in ascending order, which sorted events require",
                         file=None, line=int(row), hint="drop --events-sorted")
    row = con.execute(query.format(op="<", table="event_rows")).fetchall()[0][0]
    if row is not None:
        raise InputError("events are not sorted by lead id, as was promised", file=events_file, line=int(row),
                         hint="drop --events-sorted; unsorted events are indexed on disk instead")


def iter_rejects(con: Any) -> Any:
    """The rejects in the Python path's order, as :class:`Reject` records (streamed)."""
    cursor = con.execute(f"SELECT file, {ROW}, __column, __value, __reason FROM rejects ORDER BY {_KEYS}")
    while batch := cursor.fetchmany(10_000):
        for file, row, column, value, reason in batch:
            yield Reject(file, int(row), column, value, reason)
