"""The DuckDB batch run's SQL text, rendered from the playbook query once, bound per run.

Importing sqlglot, building the playbook's query tree, folding it for the one-pass path
and printing it cost about a quarter of a second at the start of every run (issue #17),
more than DuckDB needs to decide 1,000 leads. None of that depends on the export's rows
or on the decision instant: only on the compiled playbook, the run's :func:`shape` and
this engine's code. So :func:`render` prints the statements with two placeholders where
the instant goes, :mod:`engine.sql.statement_cache` keeps them between runs, and
:func:`Statements.bind` writes the instant in: the very bytes the query built with the
literal instant prints (``tests/test_sql_statements.py`` checks every playbook of the
repository). This module imports no sqlglot until :func:`render` runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.events import epoch_us
from engine.io import file_format

if TYPE_CHECKING:
    from engine.batch import BatchRequest
    from engine.compile import CompiledPlaybook

#: The placeholders :data:`engine.sql.query.AS_OF_SLOTS` leaves, as DuckDB's dialect prints them.
_SLOT = re.compile(r"\$(as_of_us|as_of)\b")


@dataclass(frozen=True)
class Decisions:
    """One decisions query for :func:`engine.sql.decisions.make_table`: a parenthesised
    SELECT, its output columns of one value (:mod:`engine.sql.constants`), and whether it
    selects each lead's ``__row``."""

    source: str
    constants: dict[str, Any]
    has_row: bool


@dataclass(frozen=True)
class Statements:
    """What a DuckDB run executes that the playbook decides.

    ``general`` reads views ``leads`` and ``events``. ``fold`` (None when the run cannot
    take the one-pass path, :func:`engine.sql.streamed.foldable`) makes
    ``per_lead_stream``, and ``folded`` decides over it. ``bound``: the instant is written
    in (a playbook whose text holds a placeholder's spelling is rendered that way, and
    never kept).
    """

    event_columns: tuple[str, ...]
    general: Decisions
    fold: str | None
    folded: Decisions | None
    bound: bool = False

    def bind(self, as_of: datetime) -> Statements:
        """These statements at ``as_of`` (zone-aware)."""
        if self.bound:
            return self
        micros = epoch_us(as_of)
        values = {"as_of": f"'{as_of.isoformat()}'",
                  "as_of_us": str(micros) if micros >= 0 else f"({micros})"}

        def text(sql: str) -> str:
            return _SLOT.sub(lambda m: values[m.group(1)], sql)

        def decided(d: Decisions) -> Decisions:
            return replace(d, source=text(d.source))

        return replace(self, general=decided(self.general),
                       fold=None if self.fold is None else text(self.fold),
                       folded=None if self.folded is None else decided(self.folded), bound=True)


def shape(request: BatchRequest) -> tuple[Any, ...]:
    """What of a run, besides the playbook, the statements depend on: the events file's
    presence and format, event ids, activity rules and a promised order."""
    mapping = request.mapping
    events = request.events
    return (events is not None and file_format(events),
            mapping.events is not None and mapping.events.id is not None,
            bool(mapping.leads.activity), request.events_sorted)


def render(cp: CompiledPlaybook, request: BatchRequest) -> Statements:
    """The statements with the instant as placeholders (or, when the playbook's own text
    spells one, written in). Raises :class:`engine.sql.NoSqlForm` for a construct SQL
    cannot express."""
    from engine.sql.query import AS_OF_SLOTS

    try:
        return _render(cp, request, AS_OF_SLOTS)
    except _Spelt:
        return _render(cp, request, request.as_of)


class _Spelt(Exception):
    """The printed SQL spells a placeholder more often than its tree holds one."""


def _render(cp: CompiledPlaybook, request: BatchRequest, as_of: Any) -> Statements:
    from engine.sql import streamed
    from engine.sql.query import build_query

    bound = isinstance(as_of, datetime)
    query = build_query(cp, as_of)
    tree = query_tree(query, request)
    general = _decisions(tree.copy(), leads_have_row(cp), bound)
    fold = folded = None
    if streamed.foldable(tree, request):
        from engine.batch import event_types
        from engine.sql.records import type_codes

        statement, over = streamed.plan(tree, type_codes(event_types(cp)))
        fold = _printed(statement, bound)
        folded = _decisions(over, leads_have_row(cp), bound)
    return Statements(tuple(query.event_columns), general, fold, folded, bound)


def _decisions(tree: Any, has_row: bool, bound: bool) -> Decisions:
    """``tree`` (the caller's copy, changed) as make_table takes it."""
    from engine.sql import decisions
    from engine.sql.constants import constant_columns

    carried = decisions.with_row(tree) if has_row else None
    final = carried if carried is not None else tree
    return Decisions(f"({_printed(final, bound)})", constant_columns(final), carried is not None)


def _printed(tree: Any, bound: bool) -> str:
    """``tree`` in DuckDB's SQL; unless ``bound``, checked to spell each placeholder only
    where the tree has one."""
    from sqlglot import exp

    sql: str = tree.sql(dialect="duckdb")
    if not bound and len(_SLOT.findall(sql)) != sum(1 for _ in tree.find_all(exp.Placeholder)):
        raise _Spelt
    return sql


def leads_have_row(cp: CompiledPlaybook) -> bool:
    """Whether view ``leads`` has each lead's ``__row`` (decisions.with_row): unless the
    playbook names a lead field so."""
    return "__row" not in cp.playbook.lead.fields


def query_tree(query: Any, request: BatchRequest) -> Any:
    """The query for DuckDB: event CTEs inlined when no event can have an id (file or
    activity), and without the final sort by lead id (every reader of ``decisions`` orders
    by ``__row``, the file's order, or says its own order: a sort of every lead saved)."""
    from engine.sql.query import inline_events

    mapping = request.mapping
    ids = mapping.leads.activity or (request.events is not None and mapping.events is not None
                                     and mapping.events.id is not None)
    tree = query.tree.copy() if ids else inline_events(query.tree)
    tree.set("order", None)
    return tree
