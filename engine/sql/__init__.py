"""The playbook compiled to one SQL query, so decisions can run where the data lives.

``build_query`` (a sqlglot tree over ``leads`` and ``events``), ``render`` (SQL text
for a dialect) and, in :mod:`engine.sql.duckdb_backend`, ``evaluate_duckdb``
(embedded DuckDB over CSV / Parquet / JSONL or relations). Answers equal
``engine.evaluate.decide``'s, rounding included; a construct without a faithful
SQL form raises :class:`NoSqlForm` (an ``EngineError``) naming it.
"""

from __future__ import annotations

from engine.sql.dialects import TARGETS, render
from engine.sql.expressions import NoSqlForm
from engine.sql.query import SqlQuery, build_query

__all__ = ["TARGETS", "NoSqlForm", "SqlQuery", "build_query", "render"]
