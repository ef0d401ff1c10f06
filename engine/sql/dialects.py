"""Render the playbook query for one SQL dialect: sqlglot generates, we only choose.

Dialects are data (sqlglot's), not branches here; the one difference we make is
the engagement sum, folded in history order where the dialect can (DuckDB).
"""

from __future__ import annotations

from datetime import datetime

from engine.compile import CompiledPlaybook
from engine.sql import TARGETS
from engine.sql.query import build_query


def render(
    cp: CompiledPlaybook, target: str = "duckdb", as_of: datetime | None = None, pretty: bool = True
) -> str:
    """Formatted SQL for ``target``, headed by a comment saying what it reads and returns."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    query = build_query(cp, as_of, exact_order=target == "duckdb")
    body = query.tree.sql(dialect=target, pretty=pretty)
    pb = cp.playbook
    lead_cols = ", ".join(["lead_id", *(f"{k} {v}" for k, v in query.lead_columns.items())])
    event_cols = ", ".join(
        ["lead_id", "event_id", "occurred_at TIMESTAMPTZ", "type", "seq", *query.event_columns]
    )
    header = [
        f"-- playbook {pb.metadata.name} {pb.metadata.version} ({cp.source}), target {target}",
        f"-- reads leads({lead_cols})",
        f"--       events({event_cols})",
        "-- returns one row per lead: the columns of Decision.to_row() (timestamps as TIMESTAMPTZ)",
        *(f"-- note: {n}" for n in query.notes),
    ]
    if as_of is None:
        header.append("-- parameter :as_of: the decision instant (TIMESTAMPTZ)")
    return "\n".join(header) + "\n" + body + ";\n"
