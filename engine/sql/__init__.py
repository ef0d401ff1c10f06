"""The playbook compiled to one SQL query, so decisions can run where the data lives.

``build_query`` (a sqlglot tree over ``leads`` and ``events``), ``render`` (SQL text
for a dialect) and, in :mod:`engine.sql.duckdb_backend`, ``evaluate_duckdb``
(embedded DuckDB over CSV / Parquet / JSONL or relations). Answers equal
``engine.evaluate.decide``'s, rounding included; a construct without a faithful
SQL form raises :class:`NoSqlForm` (an ``EngineError``) naming it.

Importing this package is cheap (sqlglot loads on first use), so the CLI can list
``TARGETS`` without paying for the compiler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.sql.dialects import render
    from engine.sql.expressions import NoSqlForm
    from engine.sql.query import SqlQuery, build_query

#: ``engine compile --target`` choices, as sqlglot names the dialects.
TARGETS: tuple[str, ...] = ("duckdb", "spark", "snowflake", "bigquery", "postgres")

_LAZY = {
    "render": "engine.sql.dialects",
    "NoSqlForm": "engine.sql.expressions",
    "SqlQuery": "engine.sql.query",
    "build_query": "engine.sql.query",
}

__all__ = ["TARGETS", "NoSqlForm", "SqlQuery", "build_query", "render"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine.sql' has no attribute {name!r}")
