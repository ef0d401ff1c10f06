"""Stage 4 of the SQL batch path: the decisions table → summary, queues and output, in DuckDB.

The decision rows never pass through Python one by one: the summary is a few
``GROUP BY``\\ s over the table, a team's queue is its handoffs ``ORDER BY`` the queue's
key (cut at capacity in SQL when no overflow file is asked for), and a CSV output is
written by ``COPY … TO``. The CSV bytes are :mod:`engine.io.writers`' own: each cell is
spelled as ``format_cell`` spells it (DuckDB prints a DOUBLE as ``repr`` does, checked by
tests/test_sql_decisions.py), text cells get the formula guard, and each row is quoted as
Python's ``csv`` module quotes it (minimal; every cell when a cell holds a ``\\r``), then
written as one pre-built line. JSONL and Parquet go through the Python writers, fed in
Arrow batches, so their bytes stay the Python path's too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.batch import DECISION_COLUMNS, NOT_TEXT, Summary, write_decisions
from engine.decision import ROW, Decision, Handoff, Nurture, Recycle
from engine.diagnostics import EngineError
from engine.io import file_format
from engine.io.scratch import stall_point
from engine.sql.inputs import literal, quote

#: The decisions table: output columns, ``__row`` (file order) and ``__due`` (the queue key).
TABLE = "decisions"
#: ``engine.io.writers._NUMBER`` in RE2 (``\\d`` is any Unicode digit in Python's ``re``).
_NUMBER = r"[+-]?(?:\p{Nd}+\.?\p{Nd}*|\.\p{Nd}+)(?:[eE][+-]?\p{Nd}+)?"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_TYPES = {"VARCHAR", "DOUBLE", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}


def make_table(con: Any, source: str, as_of: str, zone: str) -> None:
    """``decisions``: the query's rows, timestamps spelled as ``Decision.to_row``, with file order."""
    from engine.sql.duckdb_backend import iso_sql

    columns = []
    for column in ROW:
        name = column.name
        if name == "as_of":  # the run's instant, spelled once
            columns.append(f"{literal(as_of)} AS as_of")
        elif column.instant:
            columns.append(f"{iso_sql('q.' + quote(name), zone)} AS {name}")
        else:
            columns.append(f"q.{quote(name)}")
    sql = (f"CREATE OR REPLACE TEMP TABLE {TABLE} AS SELECT {', '.join(columns)}, d.__row, q.due AS __due "
           f"FROM {source} q JOIN decided_leads d USING (lead_id)")
    try:
        con.execute(sql)
    except Exception as error:
        raise EngineError(f"DuckDB could not evaluate the playbook query: {error}") from None


def summarize(con: Any, summary: Summary) -> None:
    """The counts ``record_decision`` makes, as aggregates (new keys in first-seen order)."""
    summary.decided = int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])
    if summary.decided:
        stall_point("deciding")  # a test hook (outputs about to be written); see engine.io.scratch
    for counts, column, where in ((summary.stages, "stage", "TRUE"), (summary.routes, "route", "TRUE"),
                                  (summary.excluded, "excluded", "excluded <> ''"),
                                  (summary.recycled, "recycle_reason", "recycle_reason <> ''")):
        rows = con.execute(f"SELECT {column}, count(*) FROM {TABLE} WHERE {where} AND {column} IS NOT NULL "
                           f"GROUP BY {column} ORDER BY min(__row)").fetchall()
        for key, count in rows:
            counts[key] = counts.get(key, 0) + int(count)


def fill_queues(con: Any, summary: Summary) -> None:
    """Each team's handoffs, counted; kept (best first) only when queue files are written."""
    counted = con.execute(f"SELECT route, count(*), count(*) FILTER (WHERE overdue), "
                          f"count(*) FILTER (WHERE handoff_accepted) FROM {TABLE} WHERE handoff_rule <> '' "
                          "GROUP BY route").fetchall()
    handoffs = {team: (total, overdue, accepted) for team, total, overdue, accepted in counted}
    names = ", ".join(DECISION_COLUMNS)
    for team, queue in summary.teams.items():
        total, overdue, accepted = (int(n) for n in handoffs.get(team, (0, 0, 0)))
        if queue.keep and total:
            # The queue's order (engine.queues.sort_key); a capped team with no overflow
            # file needs only its best `capacity`, which the heap then keeps as they come.
            cut = queue.capacity is not None and queue.disk is None
            limit = f" LIMIT {int(queue.capacity)}" if cut and queue.capacity is not None else ""
            cursor = con.execute(
                f"SELECT {names}, __row FROM {TABLE} WHERE handoff_rule <> '' AND route = ? "
                f"ORDER BY priority DESC NULLS LAST, __due ASC NULLS LAST, lead_id, __row{limit}", [team])
            columns = [d[0] for d in cursor.description]
            while batch := cursor.fetchmany(10_000):
                for values in batch:
                    row = dict(zip(columns, values, strict=True))
                    queue.offer(_decision(row), int(row.pop("__row")))
        queue.handoffs, queue.overdue, queue.accepted = total, overdue, accepted
    nurture = summary.nurture
    if nurture is not None:  # every nurtured lead, in file order as the per-lead path offers them
        cursor = con.execute(f"SELECT {names}, __row FROM {TABLE} WHERE handoff_rule = '' "
                             "AND nurture_track <> '' ORDER BY __row")
        columns = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(10_000):
            for values in batch:
                row = dict(zip(columns, values, strict=True))
                nurture.offer(_decision(row), int(row.pop("__row")))


def write(con: Any, staging: Path, csv_guard: bool) -> None:
    """The decisions file in the leads file's order: CSV by DuckDB, the other formats via Arrow."""
    if file_format(staging) == "csv":
        line = _csv_line(con, "\t" if staging.suffix.lower() == ".tsv" else ",", csv_guard)
        if line is not None:
            header = _join(list(DECISION_COLUMNS), "\t" if staging.suffix.lower() == ".tsv" else ",")
            # one VARCHAR column of finished lines, written as they are (no quoting of its own)
            con.execute(f"COPY (SELECT line FROM (SELECT -1 AS k, {literal(header)} AS line UNION ALL "
                        f"SELECT __row, {line} FROM {TABLE}) ORDER BY k) TO {literal(str(staging))} "
                        "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')")
            return
    write_decisions(staging, _rows(con), csv_guard=csv_guard)


def _rows(con: Any) -> Iterator[dict[str, Any]]:
    sql = f"SELECT {', '.join(DECISION_COLUMNS)} FROM {TABLE} ORDER BY __row"
    reader = con.sql(sql).to_arrow_reader(8192)
    for batch in reader:
        yield from batch.to_pylist()


def _join(cells: list[str], delimiter: str) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return out.getvalue()


def _csv_line(con: Any, delimiter: str, csv_guard: bool) -> str | None:
    """One row as ``engine.io.writers._CsvOut`` writes it, in SQL; None if a type has no exact spelling."""
    types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                             f"WHERE table_name = '{TABLE}'").fetchall())
    cells: list[str] = []
    texts: list[str] = []
    for name in DECISION_COLUMNS:
        kind = str(types.get(name, ""))
        if kind not in _PLAIN_TYPES:
            return None
        column = quote(name)
        if kind == "VARCHAR":
            cell = f"COALESCE({column}, '')"
            if csv_guard and name not in NOT_TEXT:
                starts = " OR ".join(f"starts_with({cell}, {literal(c)})" for c in _FORMULA_START)
                cell = (f"(CASE WHEN ({starts}) AND NOT regexp_full_match({cell}, {literal(_NUMBER)}) "
                        f"THEN '''' || {cell} ELSE {cell} END)")
            texts.append(cell)
        else:  # numbers and booleans: DuckDB spells them as format_cell (repr, true/false)
            cell = f"COALESCE(CAST({column} AS VARCHAR), '')"
        cells.append(cell)
    d = literal(delimiter)
    minimal = [f"(CASE WHEN contains({c}, {d}) OR contains({c}, '\"') OR contains({c}, chr(10)) "
               f"THEN '\"' || replace({c}, '\"', '\"\"') || '\"' ELSE {c} END)" if c in texts else c
               for c in cells]
    everything = [f"('\"' || replace({c}, '\"', '\"\"') || '\"')" for c in cells]
    has_return = " OR ".join(f"contains({c}, chr(13))" for c in texts) or "FALSE"
    return (f"CASE WHEN {has_return} THEN concat_ws({d}, {', '.join(everything)}) "
            f"ELSE concat_ws({d}, {', '.join(minimal)}) END")


def _decision(row: dict[str, Any]) -> Decision:
    """Enough of a :class:`Decision` for a queue, from its output row."""
    recycle = Recycle(row["recycle_reason"], "", row["recycle_until"], True, False) \
        if row["recycle_reason"] else None
    handoff = Handoff(row["handoff_rule"], row["route"], row["due"] or None, row["priority"],
                      row["handoff_accepted"], row["overdue_since"] or None) if row["handoff_rule"] else None
    nurture = Nurture(row["nurture_track"], row["next_content"] or None) if row["nurture_track"] else None
    return Decision(
        lead_id=row["lead_id"], as_of=row["as_of"], excluded=row["excluded"] or None,
        personas=tuple(p for p in row["personas"].split(";") if p), target_account=row["target_account"],
        target_lead=row["target_lead"], fit=row["fit"], fit_breakdown={}, engagement=row["engagement"],
        engagement_breakdown={}, recent=0, prior=0, surge=row["surge"], stage=row["stage"],
        owner=row["owner"], recycle=recycle, handoff=handoff, nurture=nurture,
    )
