"""`engine evaluate`: a playbook over a lead export → one decision per lead, and queues."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--leads", "leads", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The lead export: .csv/.tsv (any encoding), .jsonl, .parquet.")
@click.option("--events", "events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The activity export, in any order (unsorted events are indexed on disk).")
@click.option("--mapping", default="canonical", show_default=True,
              help="A preset (canonical, salesforce, hubspot, marketo, olist, leads-x-education) "
                   "or the path of a mapping YAML file.")
@click.option("--as-of", "as_of", required=True,
              help="ISO 8601 instant to decide at, e.g. 2026-11-01 or 2026-11-01T09:00+09:00; "
                   "without an offset it is in the playbook's timezone.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Decisions, one row per lead: .csv, .jsonl or .parquet. No output may be an "
                   "input (also through a link) or another output, nor --queues a folder holding an input.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Rejected rows (CSV) [default: beside --out, its extension replaced: "
                   "d.v1.csv → d.v1.rejects.csv; always written].")
@click.option("--queues", type=click.Path(file_okay=False, path_type=Path),
              help="Write one work queue per team (TEAM.csv): what the team works this week, best "
                   "first, up to its weekly capacity — its own handoffs and overflow routed to it "
                   "(overflow_from names the team it came from); with nurture tracks, also "
                   "marketing's TEAM.nurture.csv (each recycled lead's next content, docs/handoffs.md).")
@click.option("--overflow", is_flag=True,
              help="With --queues: also write TEAM.overflow.csv, each capped team's handoffs beyond "
                   "capacity (carried over or routed on, per its overflow:), in queue order.")
@click.option("--no-csv-guard", "no_csv_guard", is_flag=True,
              help="Write text cells of CSV outputs exactly as they are. By default a text cell "
                   "(a lead id, a rejected value) starting with = + - @, tab or CR, which a spreadsheet "
                   "would run as a formula, is written with a leading ' (numbers such as -3.5 and "
                   "the engine's numeric columns are never changed; JSONL and Parquet are never guarded).")
@click.option("--max-errors", type=click.IntRange(min=0),
              help="Stop with exit 1 and no output once more rows than this are rejected.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How the summary is printed.")
@click.option("--encoding",
              help="Encoding of CSV inputs (utf-8, utf-8-sig, cp932, cp1252, latin-1, ...). Without "
                   "it UTF-8 (with or without BOM) and Japanese CP932 are detected; anything else "
                   "stops with exit 1 and asks for it, since guessing could decode letters wrong. "
                   "The summary says which encoding each file was read in.")
@click.option("--timezone", "timezone",
              help="IANA zone of naive timestamps in the exports (e.g. Asia/Tokyo). Default: the "
                   "mapping file's `timezone`, else the playbook's (presets set none). "
                   "The summary says which zone was used.")
@click.option("--events-sorted", is_flag=True, default=None,
              help="Both files are sorted by lead id, promised: a violation stops the run with "
                   "an error, never a wrong answer. Without it the python backend assumes the "
                   "order and starts again on an on-disk index if it is broken; duckdb checks first.")
@click.option("--no-progress", is_flag=True,
              help="Never show a progress bar. One is shown on stderr only when it is a terminal (never in "
                   "files or pipes): --backend python counts leads; duckdb shows DuckDB's estimate of its "
                   "running query within each stage (reading, deciding, writing).")
@click.option("--backend", type=click.Choice(["duckdb", "python", "spark"]), default="duckdb",
              show_default=True,
              help="duckdb: the compiled SQL query in embedded DuckDB (fast); python: the per-lead "
                   "path (replay-identical, any construct); spark: the query on a Spark session "
                   "(pip install 'revenue-playbook-engine[spark]', Java 17+).")
@click.option("--master", help="With --backend spark: the Spark master URL [default: local[*]].")
def evaluate(playbook: Path, leads: Path, events: Path | None, mapping: str, as_of: str, out: Path,
             rejects: Path | None, queues: Path | None, overflow: bool, no_csv_guard: bool,
             max_errors: int | None, fmt: str,
             encoding: str | None, timezone: str | None, events_sorted: bool | None, no_progress: bool,
             backend: str, master: str | None) -> None:
    """Decide every lead of an export at --as-of: stage, route, handoff, exclusions.

    Writes one row per lead to --out (in the leads file's order), rejected rows to the
    rejects file, and with --queues one call list per team. Each handed-off lead says
    whether sales accepted it and whether it is overdue (due passed, no work by the team)
    since when; the summary counts both per team. A rejected handoff whose reason is not
    a recycle reason is a reject row (docs/handoffs.md). Prints a summary; exit 0 on
    success, 1 on a bad playbook or input, an output that is an input, an output another
    run is writing, or more rejects than --max-errors; 3 on a bug (a crash log is named).

    Each team works at most its weekly capacity, best first (priority, then due, then
    lead id). Every handed-off lead's row says where it stands this week: `queue` is
    queued (its team works it), carried_over (beyond capacity, it waits for next week in
    `queue_team`'s queue) or overflow (beyond capacity, routed per the team's
    `overflow: {then: route, to: TEAM}` to `queue_team`, which works it); `route` keeps
    the team it was handed to. The summary counts queued, carried over and routed per
    team — the same as the first week of `engine funnel` ending at --as-of.

    Every output is written in full to the run's scratch folder in the temp directory
    (engine-run-<pid>-<token>) and renamed into place at the end: a run that is stopped,
    even by kill -9, leaves no partial file beside its outputs, and the next run removes a
    dead run's scratch. CSV text cells that a spreadsheet would run as formulas get a
    leading ' (see --no-csv-guard).

    Nothing about the inputs is guessed silently: the summary names each file's
    encoding and the zone naive timestamps were read in; a mapped column the file lacks
    is an error unless the mapping marks the field optional (then the summary lists it
    and the leads it left empty); a row with fewer or more values than the header, or a
    `matches()` pattern read from the data that is not a valid regular expression, is a
    reject with its row number.

    A playbook with accounts (`lead.account`, docs/accounts.md) decides each lead with
    its account's other leads: the columns account, account_primary and account_contacts
    say which account a lead is in, and which contact an account-level (`per: account`)
    handoff went to; the summary counts accounts and the leads without one. The Python
    backend then holds the whole export in memory.

    The duckdb backend keeps the SQL it prints from the playbook (one small JSON file per
    playbook, list contents, engine version and kind of run) in $ENGINE_CACHE, else
    $XDG_CACHE_HOME/revenue-playbook-engine or ~/.cache/revenue-playbook-engine, so a
    run of an unchanged playbook starts faster; ENGINE_CACHE=off keeps nothing. The
    decisions are the same either way.

    \b
    Example:
      engine evaluate playbooks/olist.yaml --mapping olist --as-of 2018-06-01 \\
        --leads examples/data/olist-mql-sample.csv \\
        --events examples/data/olist-deals-sample.csv \\
        --out out/olist-decisions.csv --queues out/queues
    """
    from engine.sql import opening

    with opening.head_start(backend == "duckdb"):  # DuckDB opens on a thread during the imports
        from engine.batch import BatchRequest, evaluate_export, parse_as_of, render_summary
        from engine.diagnostics import EngineError
        from engine.io import InputError, load_mapping
        from engine.validate import load_playbook

        compiled = load_playbook(playbook).compiled
        assert compiled is not None
        try:
            request = BatchRequest(
                leads=leads, events=events, mapping=load_mapping(mapping), as_of=parse_as_of(as_of, compiled),
                out=out, rejects=rejects, queues=queues, max_errors=max_errors, encoding=encoding,
                events_sorted=events_sorted or None, overflow=overflow, timezone=timezone,
                reads=_other_inputs(playbook, mapping), csv_guard=not no_csv_guard,
            )
            if overflow and queues is None:
                raise click.UsageError("--overflow needs --queues")
            if master is not None and backend != "spark":
                raise click.UsageError("--master needs --backend spark")
            if backend == "duckdb" and not no_progress and sys.stderr.isatty():
                summary = _duckdb_with_progress(compiled, request, str(playbook))
            elif backend != "python":
                from engine.sql.batch import evaluate_export_sql

                summary = evaluate_export_sql(compiled, request, backend=backend, master=master,
                                              playbook_name=str(playbook))
            elif not no_progress and sys.stderr.isatty():
                summary = _with_progress(compiled, request, str(playbook))
            else:
                summary = evaluate_export(compiled, request, playbook_name=str(playbook))
        except InputError as error:
            raise EngineError(str(error)) from None
        if fmt == "json":
            click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        else:
            click.echo(render_summary(summary), nl=False)


def _other_inputs(playbook: Path, mapping: str) -> tuple[tuple[str, Path], ...]:
    """Files the run reads besides the exports, which no output may overwrite."""
    reads = [("the playbook", playbook)]
    if Path(mapping).is_file():  # a mapping file rather than a preset's name
        reads.append(("--mapping", Path(mapping)))
    return tuple(reads)


def _duckdb_with_progress(compiled: Any, request: Any, name: str) -> Any:
    """The duckdb backend with a bar on stderr: DuckDB's own estimate of its running query,
    within the share of the run its stage takes (engine.sql.progress), labelled by stage."""
    from engine.sql.batch import evaluate_export_sql

    with click.progressbar(length=1000, label="evaluating: reading", file=sys.stderr,
                           show_percent=True, show_pos=False) as bar:
        shown = 0

        def report(stage: str, fraction: float) -> None:  # called from the polling thread only
            nonlocal shown
            bar.label = f"evaluating: {stage}"
            step = int(fraction * 1000) - shown
            if step > 0:
                shown += step
                bar.update(step)

        summary = evaluate_export_sql(compiled, request, backend="duckdb", playbook_name=name,
                                      progress=report)
    return summary


def _with_progress(compiled: Any, request: Any, name: str) -> Any:
    """Run with a bar on stderr sized by the leads file's rows (counted cheaply first)."""
    from engine.batch import count_rows, evaluate_export

    total = count_rows(request.leads)
    with click.progressbar(length=total, label="evaluating", file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        done = 0

        def advance(row: int) -> None:
            nonlocal done
            bar.update(max(0, row - done))
            done = max(done, row)

        summary = evaluate_export(compiled, request, playbook_name=name, progress=advance)
        bar.update(max(0, total - done))
    return summary
