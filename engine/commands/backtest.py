"""`engine backtest`: decisions at capacity measured against outcomes (precision, recall, lift, AUC)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

FORMATS = ["text", "json", "markdown", "html"]


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--leads", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The lead export (as for engine evaluate).")
@click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The activity export (as for engine evaluate).")
@click.option("--outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The outcomes file, when the mapping's outcomes section says `source: file` "
                   "(Olist closed deals, opportunities, deals).")
@click.option("--mapping", required=True,
              help="A preset or mapping YAML with an `outcomes` section (see docs/backtest.md).")
@click.option("--as-of", "as_of", multiple=True,
              help="Instant to decide at; give it several times for a time split (each decision "
                   "sees only the history before it).")
@click.option("--split-every", help="With --from/--to: an as-of every DURATION (e.g. 30d).")
@click.option("--from", "start", help="First as-of of --split-every.")
@click.option("--to", "end", help="Last as-of of --split-every (included when it falls on a step).")
@click.option("--horizon", help="Count an outcome when its date is in (as_of, as_of + DURATION], "
                                "e.g. 90d [default: any time after as_of]. Needs dated outcomes.")
@click.option("--capacity", help="Handoffs each team makes: a number (120) or a share of the measured "
                                 "leads (20%) [default: each team's weekly capacity].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, json (stable keys, docs/backtest.md), markdown for a PR or README, "
                   "html: a self-contained page with each team's lift curve and the capacity cut "
                   "(pip install 'revenue-playbook-engine[report]').")
@click.option("--backend", type=click.Choice(["duckdb", "python", "spark"]), default="duckdb",
              show_default=True, help="The engine evaluate backend that decides (same rows either way).")
@click.option("--encoding", help="Encoding of CSV inputs; detected if omitted.")
@click.option("--per-rule", is_flag=True,
              help="Also measure each fit rule (and first_of branch) and engagement type: the leads "
                   "it scored, their conversion and lift, and the lift lost when the playbook is "
                   "re-decided without it. Decides the export once more per such rule.")
def backtest(playbook: Path, leads: Path, events: Path | None, outcomes: Path | None, mapping: str,
             as_of: tuple[str, ...], split_every: str | None, start: str | None, end: str | None,
             horizon: str | None, capacity: str | None, fmt: str, backend: str, encoding: str | None,
             per_rule: bool) -> None:
    """Measure a playbook's decisions against what happened: per team at capacity, per rule.

    Runs engine evaluate at each --as-of into a private folder (it never re-decides),
    joins the decision rows to the outcomes the mapping describes, and reports for each
    team its handoffs (the top --capacity leads routed to it by score), precision,
    recall and lift with 95% intervals, and the AUC of its ranking; then per rule the
    leads it matched, their conversion and lift. Rules reading columns written after
    sales contact are warned about: such figures are optimistic. Fit rules and
    engagement types need --per-rule (docs/backtest.md).

    \b
    Examples:
      engine backtest playbooks/x-education.yaml --mapping leads-x-education \\
        --leads Leads.csv --as-of 2020-01-01 --capacity 20%
      engine backtest playbooks/olist.yaml --mapping olist --leads mql.csv \\
        --events deals.csv --outcomes deals.csv --split-every 30d \\
        --from 2018-01-01 --to 2018-05-01 --horizon 90d --format json
      engine backtest playbooks/x-education.yaml --mapping leads-x-education \
        --leads Leads.csv --as-of 2020-01-01 --per-rule --format markdown
    """
    from engine.batch import parse_as_of
    from engine.diagnostics import EngineError
    from engine.durations import parse_seconds
    from engine.io import InputError, load_mapping
    from engine.measure.backtest import BacktestRequest, parse_capacity, run_backtest
    from engine.measure.backtest_report import RENDERERS
    from engine.validate import load_playbook

    loaded = load_playbook(playbook)
    compiled = loaded.compiled
    assert compiled is not None and loaded.document is not None
    if bool(split_every) != bool(start and end) or (split_every and as_of):
        raise click.UsageError("give --as-of (once or more), or --split-every with --from and --to")
    if not as_of and not split_every:
        raise click.UsageError("missing --as-of (or --split-every with --from and --to)")

    def seconds(option: str, text: str) -> int:
        try:
            value = parse_seconds(text)
        except ValueError as error:
            raise click.UsageError(f"{option}: {error}") from None
        if value <= 0:
            raise click.UsageError(f"{option}: must be longer than zero")
        return value

    instants = [parse_as_of(text, compiled) for text in as_of]
    if split_every:
        from datetime import timedelta

        assert start is not None and end is not None
        step, first, last = seconds("--split-every", split_every), parse_as_of(start, compiled), \
            parse_as_of(end, compiled)
        if last < first:
            raise click.UsageError("--to is before --from")
        while first <= last and len(instants) <= 1000:
            instants.append(first)
            first += timedelta(seconds=step)
        if len(instants) > 1000:
            raise click.UsageError("--split-every makes more than 1000 as-of instants; use a longer step")
    if len(set(instants)) != len(instants):
        raise click.UsageError("the same --as-of is given twice")
    parse_capacity(capacity)
    if fmt == "html":
        from engine.measure.html_report import require_plotly

        require_plotly()  # before the work, not after it
    try:
        request = BacktestRequest(
            leads=leads, events=events, outcomes=outcomes, mapping=load_mapping(mapping),
            as_of=tuple(sorted(instants)), capacity=capacity,
            horizon_seconds=seconds("--horizon", horizon) if horizon else None,
            backend=backend, encoding=encoding, per_rule=per_rule,
        )
        report = run_backtest(compiled, loaded.document, request, playbook_name=str(playbook))
    except InputError as error:
        raise EngineError(str(error)) from None
    sys.stdout.write(RENDERERS[fmt](report))
