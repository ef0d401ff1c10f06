"""Run the compiled playbook query in embedded DuckDB over files or in-memory relations.

``evaluate_duckdb`` is the function batch evaluation calls when asked for the SQL
backend: it binds ``leads`` and ``events`` views (CSV, Parquet, JSONL, or any
relation DuckDB can scan: a pyarrow table, a DuckDB relation), casts declared
lead fields to their types, renders timestamps as ``Decision.to_row`` does (ISO
8601 in the playbook's zone) and returns an Arrow table sorted by lead_id.
DuckDB is imported inside functions so other commands start fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from engine.compile import CompiledPlaybook
from engine.decision import ROW
from engine.diagnostics import EngineError
from engine.sql.query import build_query
from engine.sql.zones import iso_sql

Source = str | Path | Any  # a file path, or an object DuckDB can scan (pyarrow table, relation)

_READERS = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".jsonl": "read_json",
    ".ndjson": "read_json",
    ".json": "read_json",
}


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _scan(con: Any, source: Source, name: str) -> tuple[str, list[str]]:
    """A FROM clause for ``source`` (all CSV columns as text) and its column names."""
    if isinstance(source, str | Path):
        path = Path(source)
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            raise EngineError(f"{path}: unknown file type; use .csv, .parquet or .jsonl")
        if not path.exists():
            raise EngineError(f"{path}: no such file")
        literal = exp.Literal.string(str(path)).sql("duckdb")
        if reader == "read_csv":
            clause = f"read_csv({literal}, all_varchar = true, header = true)"
        elif reader == "read_json":
            clause = f"read_json({literal}, format = 'newline_delimited')"
        else:
            clause = f"{reader}({literal})"
    else:
        con.register(f"{name}_input", source)
        clause = f"{name}_input"
    columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {clause}").fetchall()]
    return clause, columns


def _cast(column: str, sql_type: str, present: bool) -> str:
    if not present:
        return f"CAST(NULL AS {sql_type})"
    text = f"NULLIF(TRIM(CAST({_quote(column)} AS VARCHAR)), '')"
    if sql_type == "VARCHAR":
        return text
    if sql_type == "BOOLEAN":
        return f"TRY_CAST({text} AS BOOLEAN)"
    return f"TRY_CAST({text} AS {sql_type})"


def bind_inputs(
    con: Any,
    cp: CompiledPlaybook,
    leads: Source,
    events: Source,
    event_columns: list[str],
    rename: Mapping[str, str] | None = None,
) -> None:
    """Create the ``leads`` and ``events`` views the query reads, with declared types.

    ``rename`` maps query column names to input column names (e.g. ``content`` →
    ``content_id``; lead fields as ``lead.<field>``). Absent event fields and
    ``event_id`` read as NULL; absent ``seq`` is the input position. Text is trimmed
    and empty cells are NULL (engine.io's default null marker); numbers, booleans
    and datetimes that do not parse are NULL. For other conversions (thousands
    separators, custom null markers) pass relations already converted by engine.io.
    """
    rename = dict(rename or {})
    clause, have = _scan(con, leads, "leads")
    if "lead_id" not in have:
        raise EngineError("leads: no `lead_id` column")
    fields = [f"CAST({_quote('lead_id')} AS VARCHAR) AS lead_id"]
    for name, kind in cp.playbook.lead.fields.items():
        source = rename.get(f"lead.{name}", name)
        fields.append(f"{_cast(source, _lead_type(kind), source in have)} AS {_quote(name)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW leads AS SELECT {', '.join(fields)} FROM {clause}")
    clause, have = _scan(con, events, "events")
    for needed in ("lead_id", "occurred_at", "type"):
        if rename.get(needed, needed) not in have:
            raise EngineError(f"events: no `{rename.get(needed, needed)}` column")
    cols = [
        f"CAST({_quote(rename.get('lead_id', 'lead_id'))} AS VARCHAR) AS lead_id",
        _optional(rename.get("event_id", "event_id"), have, "VARCHAR") + " AS event_id",
        f"CAST({_quote(rename.get('occurred_at', 'occurred_at'))} AS TIMESTAMPTZ) AS occurred_at",
        f"CAST({_quote(rename.get('type', 'type'))} AS VARCHAR) AS type",
        (
            f"CAST({_quote(rename.get('seq', 'seq'))} AS BIGINT)"
            if rename.get("seq", "seq") in have
            else "ROW_NUMBER() OVER ()"
        )
        + " AS seq",
    ]
    for name in event_columns:
        cols.append(_optional(rename.get(name, name), have, "VARCHAR") + f" AS {_quote(name)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS SELECT {', '.join(cols)} FROM {clause}")


def _optional(column: str, have: list[str], sql_type: str) -> str:
    if column not in have:
        return f"CAST(NULL AS {sql_type})"
    return f"NULLIF(TRIM(CAST({_quote(column)} AS {sql_type})), '')"


def _lead_type(kind: str) -> str:
    return {"string": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN", "datetime": "TIMESTAMPTZ"}[kind]


def _iso(column: str, zone: str) -> str:
    """``datetime.astimezone(zone).isoformat()`` in DuckDB SQL, whatever the session zone."""
    return iso_sql(_quote(column), zone)


def evaluate_duckdb(
    cp: CompiledPlaybook,
    leads: Source,
    events: Source,
    as_of: datetime,
    *,
    rename: Mapping[str, str] | None = None,
    connection: Any = None,
    threads: int | None = None,
) -> Any:
    """Decisions for every lead at ``as_of`` as a pyarrow Table of ``Decision.to_row()`` columns.

    ``leads``/``events`` are paths (.csv/.parquet/.jsonl) or relations DuckDB can
    scan. Raises :class:`engine.sql.NoSqlForm` if the playbook uses a construct
    the SQL backend cannot express, and EngineError for unusable inputs.
    """
    import duckdb

    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=cp.tz)
    query = build_query(cp, as_of)
    con = connection if connection is not None else duckdb.connect()
    # Naive timestamps in the inputs are in the playbook's zone, as in engine.io.
    con.execute(f"SET TimeZone = {exp.Literal.string(cp.playbook.timezone).sql('duckdb')}")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    bind_inputs(con, cp, leads, events, query.event_columns, rename)
    try:
        return con.sql(decisions_sql(cp, as_of, query)).to_arrow_table()
    except duckdb.Error as exc:
        raise EngineError(f"DuckDB could not evaluate the playbook query: {exc}") from None


def decisions_sql(cp: CompiledPlaybook, as_of: datetime, query: Any) -> str:
    """The compiled query with its timestamps rendered as ``Decision.to_row`` renders them."""
    zone = cp.playbook.timezone
    as_of_text = exp.Literal.string(as_of.astimezone(cp.tz).isoformat()).sql("duckdb")
    instants = "".join(f", {_iso(c.name, zone)} AS {c.name}" for c in ROW if c.instant and c.name != "as_of")
    return f"SELECT * REPLACE ({as_of_text} AS as_of{instants}) FROM ({query.tree.sql(dialect='duckdb')})"


def iter_rows(table: Any) -> Iterator[dict[str, Any]]:
    """The rows of an :func:`evaluate_duckdb` result as ``Decision.to_row()`` dicts."""
    for batch in table.to_batches():
        yield from batch.to_pylist()
