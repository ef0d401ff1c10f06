"""Stages 2-4 of the SQL batch path in one pass over the events, for clean exports (issue #17).

The general path (:mod:`engine.sql.records` → :mod:`engine.sql.grouping` → the query)
stores every converted event before the query reads them: at 1M leads / 30M events,
writing that table (and spilling it past DuckDB's memory cap) cost about as much CPU as
the query itself. Most exports have no rejected event and no orphan, and most playbooks
read events only through per-lead aggregates. For those, the query's ``per_lead``
aggregate — and, as a list per lead, the few events its due times need — is computed
straight from DuckDB's reader of the events file (:meth:`engine.sql.cells.Cells.stream`)
into ``per_lead_stream``: one row per lead id, which also counts the id's events. Bad
rows (a reject, or a cell only Python converts) are folded under a NULL lead id, so the
same pass counts them. The decisions query then reads that table instead of the events.

When the pass finds a rejected row, an event whose lead is not decided (an orphan) or a
cell only Python converts (an odd cell), the general path's stages 2-3 run for the
rejects: their order and line numbers are its own. The pass's decisions stand when those
stages reject every row it left out (:func:`stands`); when an odd cell made a usable row,
the general path's query decides instead. So the answers never differ; a file with
rejects pays one pass more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.io import file_format
from engine.sql.cells import strip
from engine.sql.inputs import forget, literal, quote

if TYPE_CHECKING:  # sqlglot loads only where a tree is planned (engine.sql.statements)
    from sqlglot import exp

    from engine.batch import BatchRequest
    from engine.sql.records import Stream

#: The per-lead table the pass makes, and its extra columns.
TABLE = "per_lead_stream"
#: Each event's type as a one-byte code (:func:`engine.sql.records.type_codes`).
TYPE_CODE = "__type"
_EVENTS, _DUE = "__events", "__due"
#: The CTEs that may read ``history`` when the query is folded: the aggregate, and the
#: due-time events (read back from the per-lead lists).
_AGGREGATE, _DUE_EVENTS = "per_lead", "due_events"


@dataclass
class Folded:
    """A folded run: the summary's counts (its decisions query reads ``per_lead_stream``).

    Not ``clean``: some event is rejected, an orphan or has an odd cell (``bad_rows``
    of them are in no lead's aggregates). The rejects, their order and line numbers need
    the general path's stages 2-3; the decisions stand if those reject every bad row
    (:func:`stands`).
    """

    events_matched: int
    leads_with_events: int
    clean: bool
    bad_rows: int


def foldable(tree: exp.Select, request: BatchRequest) -> bool:
    """Whether the run can take the one-pass path: a CSV events file, no event ids or
    activity rules (no deduplicating window), no promised order to check, and a query
    whose events are read only by ``per_lead`` and ``due_events`` — never by position
    (``seq``), which a streamed row does not have."""
    from sqlglot import exp

    from engine.sql.query import EVENT_CTES

    mapping = request.mapping
    if (request.events is None or mapping.events is None or mapping.events.id is not None
            or mapping.leads.activity or request.events_sorted
            or file_format(request.events) != "csv"):
        return False
    ctes = {cte.alias: cte.this for cte in tree.ctes}
    if not all(name in ctes for name in (*EVENT_CTES, _AGGREGATE)):
        return False
    for name, body in ctes.items():
        if name in EVENT_CTES:
            continue
        tables = {t.name for t in body.find_all(exp.Table)}
        if EVENT_CTES[0] in tables or (EVENT_CTES[1] in tables and name not in (_AGGREGATE, _DUE_EVENTS)):
            return False
        if any(c.name == "seq" for c in body.find_all(exp.Column)):
            return False
    return True


def events_select(stream: Stream, fields: dict[str, str], checked: bool = False) -> str:
    """The query's input ``events`` over ``stream`` (:func:`engine.sql.records.event_stream`),
    ``fields`` its event columns (name → SQL), and each event's type code as ``__type``
    (:func:`plan` compares it rather than the type's name): a bad row's lead id is NULL,
    so the per-lead aggregate puts every bad row in one group, counted and never decided.
    ``checked``: over the stream that tests each lead id's last character itself."""
    columns = "".join(f", {sql} AS {quote(name)}" for name, sql in fields.items())
    code = f", {stream.type_code} AS {TYPE_CODE}" if stream.type_code is not None else ""
    return ("SELECT CASE WHEN __bad THEN NULL ELSE lead_id END AS lead_id, "
            f"CAST(NULL AS VARCHAR) AS event_id, occurred_at, type{code}, CAST(0 AS BIGINT) AS seq"
            f"{columns} FROM ({stream.checked if checked else stream.select}) AS event_stream")


def plan(tree: exp.Select, codes: dict[str, int] | None = None) -> tuple[exp.Select, exp.Select]:
    """The statement that makes ``per_lead_stream`` in one pass over ``events`` (its
    ``CREATE`` left to :func:`fold`), and the decisions query over that table.

    ``codes`` (:func:`engine.sql.records.type_codes`, the stream's own): the statement
    compares each event's one-byte type code where the query compares its type's name
    with a name the playbook has (:func:`_by_code`)."""
    import sqlglot
    from sqlglot import exp

    from engine.sql.query import EVENT_CTES

    ctes = {cte.alias: cte.this for cte in tree.ctes}
    aggregate = ctes[_AGGREGATE].copy()
    aggregate.select(exp.alias_(exp.Count(this=exp.Star()), _EVENTS), copy=False)
    due = ctes.get(_DUE_EVENTS)
    due_columns: list[str] = []
    if due is not None:
        # the due-time events, as a list per lead: only those its WHERE keeps (live events of
        # the terms' types), with the history columns it reads
        due_columns = sorted({c.name for c in due.find_all(exp.Column)} - {"lead_id"})
        where = due.args["where"].this.copy()
        items = ", ".join(f"{literal(n)}: {quote(n)}" for n in due_columns)
        listed = exp.Filter(this=sqlglot.parse_one(f"list({{{items}}})", dialect="duckdb"),
                            expression=exp.Where(this=where))
        aggregate.select(exp.alias_(listed, _DUE), copy=False)
    fold_query = exp.select("*").from_(_AGGREGATE)
    for name in (*EVENT_CTES, _AGGREGATE):
        body = aggregate if name == _AGGREGATE else ctes[name].copy()
        fold_query = fold_query.with_(name, as_=body, materialized=False if name in EVENT_CTES else None,
                                      copy=False)
    if codes:
        fold_query = _by_code(fold_query, codes)
    return fold_query, _over_table(tree, due_columns if due is not None else None)


def _by_code(query: exp.Select, codes: dict[str, int]) -> exp.Select:
    """``query`` comparing ``__type`` (a one-byte code, :data:`TYPE_CODE`) wherever it
    compared ``type`` with names of ``codes`` (``=``, ``IN``, ``CASE type WHEN``), each
    SELECT of ``type`` also selecting the code. The stream names each code back as the
    type (``CASE __type WHEN 0 THEN 'content_download' …``), so the two agree row for row;
    comparing codes spares DuckDB that name and the string comparisons, 7% of the pass's
    CPU at 100k leads (issue #17). Other uses of ``type`` (a list of due events, a window's
    order) read the name as before."""
    from sqlglot import exp

    def is_type(node: exp.Expression) -> bool:
        return isinstance(node, exp.Column) and node.name == "type" and not node.table

    def known(node: exp.Expression) -> bool:
        return isinstance(node, exp.Literal) and node.is_string and node.this in codes

    def code(node: exp.Expression) -> exp.Expression:
        return exp.Literal.number(codes[node.this])

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Select) and any(is_type(e) for e in node.expressions):
            listed: list[exp.Expression] = []
            for e in node.expressions:
                listed += [e, exp.column(TYPE_CODE)] if is_type(e) else [e]
            node.set("expressions", listed)
        elif isinstance(node, exp.EQ) and {is_type(node.this), is_type(node.expression)} == {True, False}:
            name = node.expression if is_type(node.this) else node.this
            if known(name):
                return exp.EQ(this=exp.column(TYPE_CODE), expression=code(name))
        elif (isinstance(node, exp.In) and is_type(node.this) and node.expressions
              and all(known(e) for e in node.expressions)):
            return exp.In(this=exp.column(TYPE_CODE), expressions=[code(e) for e in node.expressions])
        elif (isinstance(node, exp.Case) and is_type(node.this)
              and all(known(branch.this) for branch in node.args["ifs"])):
            for branch in node.args["ifs"]:
                branch.set("this", code(branch.this))
            node.set("this", exp.column(TYPE_CODE))
        return node

    coded = query.transform(swap, copy=True)
    assert isinstance(coded, exp.Select)
    return coded


def fold(con: Any, statement: str, events: str, checked: str | None = None) -> Folded | None:
    """Make ``per_lead_stream`` with ``statement`` (:func:`plan`'s, printed) reading
    ``events`` (:func:`events_select`'s); the summary's counts, or None (nothing left
    behind) when DuckDB's reader refuses the file.

    ``events`` is the statement's first CTE rather than a view: creating views of it and
    of the stream bound their 20 KB of SQL twice more, about 0.01 s a run (issue #17).

    ``checked``: the events that test each lead id's last character themselves, when
    ``events`` leave that to this fold (:class:`engine.sql.records.Stream`). A lead id
    with whitespace at its end is then a group of its own, never a decided lead's (those
    are stripped): when one of the groups no decided lead has is such an id, the fold is
    made again from ``checked``, which strips it as Python does."""
    counts = _make(con, statement, events)
    if counts is not None and counts.padded and checked is not None:
        counts = _make(con, statement, checked)
    if counts is None:
        return None
    return Folded(counts.matched, counts.with_events, clean=not counts.bad and not counts.orphans,
                  bad_rows=counts.bad)


class _Counts(NamedTuple):
    """Of a ``per_lead_stream`` just made: the rows in no lead's group, the groups no
    decided lead has and those of them whose id has whitespace at an end, the events
    matched and the leads with events."""

    bad: int
    orphans: int
    padded: int
    matched: int
    with_events: int


def _make(con: Any, statement: str, events: str) -> _Counts | None:
    """:func:`fold`'s table and its counts; None when the reader refuses the file."""
    from engine.sql.opening import driver

    head = f"WITH events AS NOT MATERIALIZED ({events})"
    # plan()'s statement has CTEs of its own (the event CTEs): ``events`` joins them
    ctes = statement.removeprefix("WITH ")
    inlined = f"{head}, {ctes}" if ctes != statement else f"{head} {statement}"
    forget(con, TABLE)
    try:
        con.execute(f"CREATE TEMP TABLE {TABLE} AS {inlined}")
    except driver().Error:  # the reader refused the file: the general path reads it carefully
        forget(con, TABLE)
        return None
    orphan = "p.lead_id IS NOT NULL AND d.lead_id IS NULL"
    padded = f"p.lead_id <> {strip('p.lead_id')}"
    row = con.execute(
        f"SELECT coalesce(sum(p.{_EVENTS}) FILTER (WHERE p.lead_id IS NULL), 0), "
        f"count(*) FILTER (WHERE {orphan}), count(*) FILTER (WHERE {orphan} AND {padded}), "
        f"coalesce(sum(p.{_EVENTS}) FILTER (WHERE d.lead_id IS NOT NULL), 0), count(d.lead_id) "
        f"FROM {TABLE} p LEFT JOIN decided_leads d ON p.lead_id = d.lead_id").fetchall()[0]
    return _Counts(*(int(n) for n in row))


def stands(con: Any, folded: Folded) -> bool:
    """After the general path's stages 2-3: whether the fold's decisions are its answers.
    A row the pass left out for a problem is rejected there too; one left out for an odd
    cell may be usable after Python's look-up. So the decisions stand exactly when the
    events file's rejects are as many as the rows left out."""
    rejected = con.execute("SELECT count(*) FROM event_rows WHERE __reason IS NOT NULL").fetchall()[0][0]
    return int(rejected) == folded.bad_rows


def _over_table(tree: exp.Select, due_columns: list[str] | None) -> exp.Select:
    """``tree`` reading ``per_lead_stream``: ``per_lead`` is its rows, ``due_events`` reads
    the listed events back, and the event CTEs (read by nothing now) are gone."""
    import sqlglot

    from engine.sql.query import EVENT_CTES

    folded = tree.copy()
    extra = ", ".join([_EVENTS] + ([_DUE] if due_columns is not None else []))
    for cte in list(folded.ctes):
        if cte.alias in EVENT_CTES:
            cte.pop()
        elif cte.alias == _AGGREGATE:
            cte.set("this", sqlglot.parse_one(
                f"SELECT * EXCLUDE ({extra}) FROM {TABLE} WHERE lead_id IS NOT NULL", dialect="duckdb"))
        elif cte.alias == _DUE_EVENTS and due_columns is not None:
            # sqlglot: column names in the playbook's events are quoted as identifiers
            names = ", ".join(f"__e.{quote(n)} AS {quote(n)}" for n in due_columns)
            rows = sqlglot.parse_one(
                f"SELECT * FROM (SELECT lead_id, {names} FROM (SELECT lead_id, unnest({_DUE}) AS __e "
                f"FROM {TABLE} WHERE lead_id IS NOT NULL) AS listed) AS {EVENT_CTES[1]}", dialect="duckdb")
            cte.this.set("from_", rows.args["from_"])
    return folded
