"""`engine funnel`: an export decided at each week's end → volumes, capacity, carry-over, rates."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from pathlib import Path

import click


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--leads", "leads", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The lead export: .csv/.tsv (any encoding), .jsonl, .parquet.")
@click.option("--events", "events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The activity export, in any order.")
@click.option("--outcomes", "outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Outcomes (won/lost, dates) as the mapping's outcomes section reads them; without it "
                   "the leads file's when the mapping reads them there, else the playbook's stages "
                   "(e.g. a won stage from deal_won events). Adds won/lost per week by outcome date "
                   "and won rates per source, persona and segment.")
@click.option("--mapping", default="canonical", show_default=True,
              help="A preset (canonical, salesforce, hubspot, marketo, olist, leads-x-education) "
                   "or the path of a mapping YAML file.")
@click.option("--from", "start", required=True,
              help="The first week's start (ISO 8601; without an offset, in the playbook's timezone).")
@click.option("--to", "end", required=True,
              help="Weeks run until one ends at or after this instant.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="text: a table; json: the `weeks` list and rates; html: a "
              "self-contained report with charts (pip install 'revenue-playbook-engine[report]').")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of standard output (atomically).")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every rejected row here (CSV); the report always counts them.")
@click.option("--queues", type=click.Path(file_okay=False, path_type=Path),
              help="Write each team's queue of the last week (TEAM.csv) with each handoff's status: "
                   "queued, carried_over or overflow.")
@click.option("--segment", help="A lead field to break the rates down by (besides source and persona).")
@click.option("--account-field", help="The lead field naming the account, for target-account coverage.")
@click.option("--accounts", "accounts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The target accounts, one per line: the coverage's denominator.")
@click.option("--opportunity-stage", help="The stage that counts as an opportunity for coverage "
              "[default: the first stage owned by field_sales].")
@click.option("--encoding", help="Encoding of CSV inputs (utf-8, utf-8-sig, cp932); detected if omitted.")
def funnel(playbook: Path, leads: Path, events: Path | None, outcomes: Path | None, mapping: str, start: str,
           end: str, fmt: str,
           out: Path | None, rejects: Path | None, queues: Path | None, segment: str | None,
           account_field: str | None, accounts_file: Path | None, opportunity_stage: str | None,
           encoding: str | None) -> None:
    """Decide every lead at each week's end with only its history until then, and measure.

    One read of the export; each lead is decided at every week end from its first event
    on. Per week: new leads, leads per stage, stage-to-stage transitions, and each team's
    handoffs against its weekly capacity — worked best first, the rest carried over (or
    routed, per the team's `overflow:`), lapsed when the lead no longer holds them, and
    overdue when their due time has passed. Over the period:
    median days between stages, conversion rates to each stage by source, persona and
    --segment, and target-account coverage with --account-field.

    \b
    Example:
      engine funnel playbooks/olist.yaml --mapping olist \\
        --leads ../shared/data/olist-marketing-funnel/olist_marketing_qualified_leads_dataset.csv \\
        --events ../shared/data/olist-marketing-funnel/olist_closed_deals_dataset.csv \\
        --from 2017-06-05 --to 2018-09-03 --format json --out out/funnel.json
    """
    from engine.diagnostics import EngineError
    from engine.io import InputError, RejectsWriter, load_mapping
    from engine.io.mapping import in_zone_unless_set
    from engine.measure.funnel import FunnelRequest, run_funnel
    from engine.validate import load_playbook

    compiled = load_playbook(playbook).compiled
    assert compiled is not None
    if accounts_file is not None and account_field is None:
        raise click.UsageError("--accounts needs --account-field")
    try:
        request = FunnelRequest(
            leads=leads, events=events,
            mapping=in_zone_unless_set(load_mapping(mapping), compiled.playbook.timezone),
            start=_instant("--from", start, compiled.tz), end=_instant("--to", end, compiled.tz),
            encoding=encoding,
            segment=segment, account_field=account_field,
            accounts=_accounts(accounts_file) if accounts_file is not None else None,
            opportunity_stage=opportunity_stage, outcomes=outcomes,
        )
        if fmt == "html":
            from engine.measure.html_report import require_plotly

            require_plotly()  # before the work, not after it
        if rejects is not None:
            with RejectsWriter(rejects) as writer:
                report = run_funnel(compiled, request, playbook_name=str(playbook), rejects_writer=writer)
        else:
            report = run_funnel(compiled, request, playbook_name=str(playbook))
        if queues is not None:
            _write_queues(queues, report)
    except InputError as error:
        raise EngineError(str(error)) from None
    _emit(report, fmt, out)


def _instant(option: str, text: str, tz: tzinfo) -> datetime:
    """ISO 8601; naive (a date too) is in the playbook's zone, as --as-of is."""
    from engine.diagnostics import EngineError
    from engine.io import parse_timestamp

    try:
        return parse_timestamp(text, default_tz=tz)
    except ValueError as error:
        raise EngineError(f"{option}: {error}") from None


def _accounts(path: Path) -> frozenset[str]:
    from engine.diagnostics import EngineError

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise EngineError(f"--accounts {path}: cannot read it ({error}); one account id per line, "
                          "UTF-8") from None
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def _write_queues(folder: Path, report: dict[str, object]) -> None:
    from engine.io import write_rows

    folder.mkdir(parents=True, exist_ok=True)
    columns = ("rank", "lead_id", "status", "priority", "due", "handoff_rule", "waited_weeks", "from_team")
    lines = report["queue"]
    assert isinstance(lines, list)
    teams = list(dict.fromkeys(line["team"] for line in lines))
    weeks = report["weeks"]
    assert isinstance(weeks, list)
    if weeks:
        teams += [t for t in weeks[-1]["handoffs"] if t not in teams]
    for team in teams:
        rows = [dict(line, rank=rank, handoff_rule=line["rule"])
                for rank, line in enumerate((x for x in lines if x["team"] == team), start=1)]
        write_rows(folder / f"{team}.csv", columns, rows)


def _emit(report: dict[str, object], fmt: str, out: Path | None) -> None:
    if fmt == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from engine.measure.html_report import funnel_html

        text = funnel_html(report)
    else:
        from engine.measure.funnel_text import render_funnel

        text = render_funnel(report)
    write_text(text, out)


def write_text(text: str, out: Path | None) -> None:
    """To --out atomically, else to standard output."""
    if out is None:
        click.echo(text, nl=False)
        return
    from engine.io import atomic_path

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temp:
        temp.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)
