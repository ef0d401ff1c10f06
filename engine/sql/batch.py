"""``engine evaluate --backend duckdb|spark``: the export decided by the compiled SQL query.

The same run as :func:`engine.batch.evaluate_export` — same files, same rejects in the
same order, same queues and summary — with the per-lead Python loop replaced by one
query. It runs inside :func:`engine.batch.run_export`, so staging, atomic renames,
``--max-errors`` and the queue writers are literally the Python path's. The stages,
one module each:

1. :mod:`engine.sql.inputs` — each file as text cells with row numbers (a CSV file first
   as a view over DuckDB's reader, read by stage 2 itself when it can keep the file's order);
2. :mod:`engine.sql.records` (with :mod:`engine.sql.cells`) — the mapping applied in SQL,
   in one pass: converted fields, activity events, each row's first problem;
3. :mod:`engine.sql.grouping` — decided leads, matched events, rejects in order;
4. the playbook query (:mod:`engine.sql.query`) over views ``leads`` and ``events``, in
   DuckDB or on Spark (:mod:`engine.sql.spark_backend`), joined back to file order. For
   DuckDB its statements are printed once per playbook and kind of run and kept
   (:mod:`engine.sql.statements`, :mod:`engine.sql.statement_cache`).

On DuckDB, a CSV export first tries :mod:`engine.sql.streamed`: stages 2-4 in one pass,
the events folded per lead as DuckDB reads them, nothing stored per event. When an event
is rejected, an orphan or has a cell only Python converts, stages 2-3 run as above for
the rejects; the pass's decisions stand unless such a cell made a usable row.

A playbook construct without a SQL form stops the run before any file is read, naming
the construct and pointing to ``--backend python`` — never a silent fallback.
"""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from engine.batch import (
    BatchRequest,
    Rejects,
    Summary,
    event_types,
    run_export,
)
from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.io.scratch import temp_dir
from engine.sql.inputs import Inputs, Renumber, quote
from engine.sql.progress import QueryProgress, Report
from engine.sql.records import Plan, activity_events, event_field_sql, event_rows, event_stream, lead_rows
from engine.sql.statements import Decisions, Statements, leads_have_row

BACKENDS = ("duckdb", "python", "spark")
#: Which mapping field types can feed a playbook lead field of each kind.
_COMPATIBLE = {"string": {"string"}, "number": {"number", "integer"}, "bool": {"bool"},
               "datetime": {"datetime"}}
_LEAD_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN", "datetime": "TIMESTAMPTZ"}


def compile_for(cp: CompiledPlaybook, request: BatchRequest, backend: str) -> Any:
    """The playbook query, or an error naming the construct SQL cannot express."""
    from engine.sql import NoSqlForm, build_query

    try:
        return build_query(cp, request.as_of)
    except NoSqlForm as error:
        raise _refused(backend, error) from None


def _refused(backend: str, error: Exception) -> EngineError:
    return EngineError(f"the {backend} backend cannot run this playbook: {error} (hint: run it with "
                       "--backend python, the per-lead path, which evaluates every construct)")


def evaluate_export_sql(cp: CompiledPlaybook, request: BatchRequest, *, backend: str = "duckdb",
                        master: str | None = None, playbook_name: str = "",
                        progress: Report | None = None) -> Summary:
    """Evaluate the export with the compiled query; write and return what the Python path would.

    ``progress`` (duckdb only) is called with (stage, fraction of the run) from a polling thread.
    """
    if request.as_of.tzinfo is None:
        request = BatchRequest(**{**request.__dict__, "as_of": request.as_of.replace(tzinfo=cp.tz)})
    # Spark runs the query's tree; DuckDB its statements, rendered or kept from an
    # earlier run. Either way a construct without a SQL form stops here, before any read.
    query = compile_for(cp, request, backend) if backend != "duckdb" else None
    sql = _statements(cp, request) if backend == "duckdb" else None

    def produce(summary: Summary, sink: Rejects, staging: Path, req: BatchRequest) -> None:
        from engine.sql.statements import shape

        statements = sql if sql is None or shape(req) == shape(request) else _statements(cp, req)

        # An in-memory database whose tables spill to a scratch folder past a memory limit
        # (engine.sql.opening): the inputs and the stages' tables page to disk instead of
        # growing with the export. Opened on a thread while the command imported, when
        # it could be.
        from engine.sql import opening

        scratch = tempfile.TemporaryDirectory(prefix="engine-duckdb-", dir=temp_dir())
        con = opening.connect(scratch.name)
        stages = QueryProgress(con, progress) if progress is not None and backend == "duckdb" else None
        try:
            with stages or nullcontext():
                _produce(con, cp, req, query, statements, summary, sink, staging, master, stages)
        finally:
            con.close()
            scratch.cleanup()

    return run_export(cp, request, produce, playbook_name=playbook_name)


def _statements(cp: CompiledPlaybook, request: BatchRequest) -> Statements:
    """The run's statements at its instant: kept from an earlier run of the same playbook,
    shape and engine (:mod:`engine.sql.statement_cache`), else rendered and kept."""
    from engine.sql import statement_cache

    key = statement_cache.key(cp, request)
    kept = statement_cache.load(key)
    if kept is None:
        from engine.sql import NoSqlForm
        from engine.sql.statements import render

        try:
            kept = render(cp, request)
        except NoSqlForm as error:
            raise _refused("duckdb", error) from None
        statement_cache.store(key, kept)
    return kept.bind(request.as_of)


def _produce(con: Any, cp: CompiledPlaybook, req: BatchRequest, query: Any, sql: Statements | None,
             summary: Summary, sink: Rejects, staging: Path, master: str | None,
             stages: QueryProgress | None) -> None:
    """Stages 1-4 on an open connection, naming each to the progress report (when there is
    one): with ``sql`` on DuckDB, with ``query`` on Spark."""
    event_columns = list(sql.event_columns) if sql is not None else query.event_columns
    with Inputs(con) as inputs:
        folded = _fold(con, inputs, cp, req, sql) if sql is not None and sql.fold is not None else None
        counts = None
        if folded is not None and folded.clean:
            counts = (folded.events_matched, folded.leads_with_events)
        while counts is None:  # the general path; after a fold with rejects, for the rejects
            try:
                counts = _prepare(con, inputs, cp, req, event_columns)
            except Renumber:  # a rejected row's number was not its line: that file again, carefully
                continue
        summary.events_matched, summary.leads_with_events = counts
        if folded is not None and not folded.clean:
            from engine.sql.streamed import stands

            if not stands(con, folded):
                folded = None  # an odd cell made a usable row: the general query decides
    from engine.sql.grouping import iter_rejects

    for reject in iter_rejects(con):
        sink(reject)
    if stages is not None:
        stages.stage("deciding")
    from engine.sql import decisions

    if sql is None:
        from engine.sql.spark_backend import run_on_spark

        decided = Decisions(run_on_spark(con, cp, req.as_of, query, master), {}, False)
    else:
        decided = sql.folded if folded is not None and sql.folded is not None else sql.general
    decisions.split_scans(con)
    fixed = decisions.make_table(con, decided.source, req.as_of.astimezone(cp.tz).isoformat(),
                                 cp.playbook.timezone, has_row=decided.has_row, constants=decided.constants)
    if stages is not None:
        stages.stage("writing")
    decisions.summarize(con, summary)
    decisions.place_queues(con, summary, cp.playbook)
    decisions.write(con, staging, req.csv_guard, fixed)


def _fold(con: Any, inputs: Inputs, cp: CompiledPlaybook, request: BatchRequest, sql: Statements) -> Any:
    """Stages 2-4 in one pass over the events (:mod:`engine.sql.streamed`), or None when
    DuckDB's reader refuses the file (the general path then starts again; the leads'
    tables are made anew)."""
    from engine.sql import streamed
    from engine.sql.grouping import group

    assert request.events is not None and sql.fold is not None
    allowed = event_types(cp)
    encoding = request.encoding or request.mapping.encoding
    try:
        lead_scan, lead_plan = lead_rows(inputs, request.mapping, request.leads, encoding, request.as_of,
                                         allowed)
        stream = event_stream(inputs, request.mapping, request.events, encoding, allowed)
        if stream is None:
            return None
        group(con, str(request.leads), None, lead_scan.rejects, [], None)
        if con.execute("SELECT count(*) FROM rejects").fetchall()[0][0]:
            inputs.numbered(lead_scan, int(con.execute("SELECT count(*) FROM lead_rows").fetchall()[0][0]))
    except Renumber:
        return None
    _leads_view(con, cp, lead_plan)
    fields = {n: event_field_sql(stream.plan, n) for n in sql.event_columns}
    events = streamed.events_select(stream, fields)
    checked = streamed.events_select(stream, fields, checked=True)
    con.execute(f"SET TimeZone = '{cp.playbook.timezone}'")
    return streamed.fold(con, sql.fold, events, checked if checked != events else None)


def _prepare(con: Any, inputs: Inputs, cp: CompiledPlaybook, request: BatchRequest,
             event_columns: list[str]) -> tuple[int, int]:
    """Stages 1-3, then the ``leads`` and ``events`` views the query reads; the events
    matched and the leads with events, for the summary."""
    from engine.sql.grouping import group

    allowed = event_types(cp)
    encoding = request.encoding or request.mapping.encoding
    lead_scan, lead_plan = lead_rows(inputs, request.mapping, request.leads, encoding, request.as_of, allowed)
    event_scan = None
    event_plan = Plan({}, [], [])
    if request.events is not None:
        event_scan, event_plan = event_rows(inputs, request.mapping, request.events, encoding, allowed)
    counts = group(con, str(request.leads), str(request.events) if request.events is not None else None,
                   lead_scan.rejects, event_scan.rejects if event_scan is not None else [],
                   request.events_sorted)
    rejected = {file for (file,) in con.execute("SELECT DISTINCT file FROM rejects").fetchall()}
    for scanned, table in ((lead_scan, "lead_rows"), (event_scan, "event_rows")):
        if scanned is not None and scanned.unverified is not None and str(scanned.path) in rejected:
            inputs.numbered(scanned, int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]))
    activity_events(con, request.mapping, event_columns)
    _bind_views(con, cp, request, lead_plan, event_plan, event_columns)
    con.execute(f"SET TimeZone = '{cp.playbook.timezone}'")
    return counts


def _bind_views(con: Any, cp: CompiledPlaybook, request: BatchRequest, lead_plan: Plan, event_plan: Plan,
                event_columns: list[str]) -> None:
    _leads_view(con, cp, lead_plan)
    file_fields = "".join(f", {event_field_sql(event_plan, n)} AS {quote(n)}" for n in event_columns)
    activity_fields = "".join(f", a.{quote(n)}" for n in event_columns)
    file_events = (
        "SELECT lead_id, event_id, occurred_at, type, seq" + file_fields + " FROM matched_events"
        if request.events is not None else None
    )
    activity = ("SELECT a.lead_id, a.event_id, a.occurred_at, a.type, a.seq" + activity_fields
                + " FROM activity_events a JOIN decided_leads d ON a.__row = d.__row")
    union = activity if file_events is None else f"{file_events} UNION ALL {activity}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {union}")


def _leads_view(con: Any, cp: CompiledPlaybook, lead_plan: Plan) -> None:
    """View ``leads``: the decided leads' fields, as the playbook types them, and their
    ``__row`` when :func:`leads_have_row`."""
    fields = ["lead_id", "__row"] if leads_have_row(cp) else ["lead_id"]
    for name, kind in cp.playbook.lead.fields.items():
        spec = lead_plan.fields.get(name)
        if spec is None:
            fields.append(f"CAST(NULL AS {_LEAD_TYPES[kind]}) AS {quote(name)}")
            continue
        if spec.type not in _COMPATIBLE[kind]:
            raise EngineError(
                f"lead field {name!r} is {kind} in the playbook but the mapping reads column "
                f"{spec.column!r} as {spec.type}; the SQL backends need the two to agree (hint: "
                "give the mapping field the playbook's type, or run with --backend python)"
            )
        fields.append(f"CAST({quote('f__' + name)} AS {_LEAD_TYPES[kind]}) AS {quote(name)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW leads AS SELECT {', '.join(fields)} FROM decided_leads")
