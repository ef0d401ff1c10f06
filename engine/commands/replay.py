"""`engine replay` and `engine explain`: a fixture's timeline, and one decision's trace."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click


def _load(playbook: Path, fixture: Path):  # type: ignore[no-untyped-def]
    from engine.fixtures import load_fixture
    from engine.validate import load_playbook

    result = load_playbook(playbook)
    loaded = load_fixture(fixture, lambda _path: result)
    assert result.compiled is not None
    return result.compiled, loaded


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("fixture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def replay(playbook: Path, fixture: Path, fmt: str) -> None:
    """Print a fixture's timeline under PLAYBOOK: what changed after each event.

    PLAYBOOK may differ from the one the fixture names — replaying a fixture under
    an edited playbook shows what the edit changes for that lead.

    \b
    Example:
      engine replay playbooks/smb-saas.yaml fixtures/smb-saas/no-budget-recycled.yaml
    """
    from engine.render import render_timeline
    from engine.replay import replay as run

    cp, fx = _load(playbook, fixture)
    timeline = run(cp, fx.lead, fx.events, fx.as_of, lead_id=fx.lead_id, check_at=fx.check_at,
                   contacts=fx.contacts)
    if fmt == "json":
        steps = [{"at": s.decision.as_of, "reason": s.reason,
                  "events": [{"type": e.type, "id": e.id, **e.fields} for e in s.events],
                  "changes": list(s.changes), "decision": s.decision.to_dict()}
                 for s in timeline.steps]
        click.echo(json.dumps({"lead_id": fx.lead_id, "steps": steps}, ensure_ascii=False,
                              indent=2, sort_keys=True, default=str))
    else:
        click.echo(render_timeline(timeline, f"{fx.name}: {fx.description}"), nl=False)


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("fixture", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--at", "at", default=None, help="Decide at this ISO time (default: the fixture's as_of).")
@click.option("--leads", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Explain a lead of this export instead of a fixture (with --lead and --as-of).")
@click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The export's activity file (with --leads).")
@click.option("--mapping", default="canonical", show_default=True,
              help="Column mapping of the export: a preset name or a mapping file.")
@click.option("--lead", "lead_id", help="The id of the lead to explain (with --leads).")
@click.option("--as-of", "as_of", help="When to decide the lead (ISO 8601; with --leads).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def explain(playbook: Path, fixture: Path | None, at: str | None, leads: Path | None,
            events: Path | None, mapping: str, lead_id: str | None, as_of: str | None,
            fmt: str) -> None:
    """Explain one decision: every rule evaluated, the values it saw, its result.

    The lead is a fixture's, or one lead of an export read as `engine evaluate`
    reads it (same mappings, encodings and rejects): --leads, --events, --mapping,
    --lead and --as-of. Where the lead stands in its team's week (queued, carried over,
    overflow) depends on every other lead, so explain does not show it: the `queue` and
    `queue_team` columns of `engine evaluate` do.

    \b
    Examples:
      engine explain playbooks/smb-saas.yaml fixtures/smb-saas/hot-enquiry.yaml
      engine explain playbooks/x-education.yaml --leads Leads.csv --mapping leads-x-education \\
          --lead 7927b2df-8bba-4d29-b9a2-b6e0beafe620 --as-of 2020-01-01
    """
    from engine.diagnostics import EngineError
    from engine.evaluate import decide
    from engine.render import render_decision, render_trace

    if (fixture is None) == (leads is None):
        raise click.UsageError("give a FIXTURE, or an export with --leads (not both)")
    if leads is None and (events or lead_id or as_of):
        raise click.UsageError("--events, --lead and --as-of go with --leads")
    if leads is not None:
        if lead_id is None or as_of is None or at is not None:
            raise click.UsageError("--leads needs --lead ID and --as-of TIME (not --at)")
        from engine.diff_export import ExportSource
        from engine.validate import load_playbook

        cp = load_playbook(playbook).compiled
        assert cp is not None
        source = ExportSource(leads, events, mapping, as_of)
        case = source.find(cp, lead_id)
        lead, history, when, name = dict(case.lead), list(case.events), case.as_of, case.lead_id
        contacts = _account_of(cp, source, case.lead_id, lead)
    else:
        assert fixture is not None
        cp, fx = _load(playbook, fixture)
        lead, history, when, name = fx.lead, list(fx.events), fx.as_of, fx.lead_id
        contacts = list(fx.contacts)
        if at is not None:
            try:
                when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise EngineError(f"--at {at!r} is not an ISO 8601 time") from None
    from engine.account_decide import decide_accounts
    from engine.accounts import Member, uses_accounts

    if uses_accounts(cp):  # the whole account decides together (docs/accounts.md)
        decision = decide_accounts(cp, [Member(name, lead, history), *contacts], when, trace=True)[0]
    else:
        decision = decide(cp, lead, history, when, lead_id=name, trace=True)
    if fmt == "json":
        click.echo(json.dumps(decision.to_dict(with_trace=True), ensure_ascii=False, indent=2,
                              sort_keys=True, default=str))
    else:
        click.echo(render_trace(decision.trace) + "\n" + render_decision(decision), nl=False)


def _account_of(cp: Any, source: Any, lead_id: str, lead: dict[str, Any]) -> list[Any]:
    """The other leads of ``lead``'s account in the export: an account-reading decision
    needs their histories too, so explain reads them all (one more pass over the export)."""
    from engine.accounts import Member, account_key, uses_accounts

    if not uses_accounts(cp):
        return []
    key = account_key(cp, lead)
    if not key:
        return []
    return [Member(case.lead_id, dict(case.lead), list(case.events)) for case in source.cases(cp)
            if case.lead_id != lead_id and account_key(cp, case.lead) == key]
