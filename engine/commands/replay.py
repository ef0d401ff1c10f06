"""`engine replay` and `engine explain`: a fixture's timeline, and one decision's trace."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

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
    timeline = run(cp, fx.lead, fx.events, fx.as_of, lead_id=fx.lead_id, check_at=fx.check_at)
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
@click.argument("fixture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--at", "at", default=None, help="Decide at this ISO time (default: the fixture's as_of).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def explain(playbook: Path, fixture: Path, at: str | None, fmt: str) -> None:
    """Explain one decision: every rule evaluated, the values it saw, its result.

    \b
    Example:
      engine explain playbooks/smb-saas.yaml fixtures/smb-saas/hot-enquiry.yaml
    """
    from engine.diagnostics import EngineError
    from engine.evaluate import decide
    from engine.render import render_decision, render_trace

    cp, fx = _load(playbook, fixture)
    when = fx.as_of
    if at is not None:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise EngineError(f"--at {at!r} is not an ISO 8601 time") from None
    decision = decide(cp, fx.lead, fx.events, when, lead_id=fx.lead_id, trace=True)
    if fmt == "json":
        click.echo(json.dumps(decision.to_dict(with_trace=True), ensure_ascii=False, indent=2,
                              sort_keys=True, default=str))
    else:
        click.echo(render_trace(decision.trace) + "\n" + render_decision(decision), nl=False)
