"""Semantic checks beyond the schema: references, duplicates, dead rules, reachability.

Each check is a small function from a :class:`CheckContext` to diagnostics, listed in
``CHECKS`` in the order they run (like sqlglot's optimizer rules). The schema has
already accepted the shape; these need the whole playbook at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.check_life import check_handoff_events, check_nurture
from engine.diagnostics import Diagnostic, Severity, did_you_mean
from engine.load import Document
from engine.model import EventPoints, Playbook


@dataclass
class CheckContext:
    """What every check reads: the document (for positions), the model and its folder."""

    doc: Document
    playbook: Playbook
    base_dir: Path
    extra: dict[str, object] = field(default_factory=dict)


Check = Callable[[CheckContext], Iterable[Diagnostic]]


def _reference(
    ctx: CheckContext,
    path: Sequence[str | int],
    name: str,
    options: Sequence[str],
    what: str,
    key: bool = False,
) -> Iterator[Diagnostic]:
    if name not in options:
        hint = did_you_mean(name, options) or (
            f"declare it under `{what}s`" if not options else f"known: {', '.join(options)}"
        )
        yield ctx.doc.diagnostic(path, "E-REF", f"unknown {what} `{name}`", hint=hint, key=key)


def check_duplicate_ids(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Ids are how diffs, traces and coverage name rules: they must be unique per list."""
    pb = ctx.playbook
    groups: list[tuple[str, Sequence[str]]] = [
        ("exclusions", [e.id for e in pb.exclusions]),
        ("stages", [s.id for s in pb.stages]),
        ("handoffs", [h.id for h in pb.handoffs]),
    ]
    if pb.scoring.fit is not None:
        groups.append(("scoring.fit.rules", [r.id for r in pb.scoring.fit.rules]))
    for section, ids in groups:
        seen: dict[str, int] = {}
        for index, rule_id in enumerate(ids):
            if rule_id in seen:
                parts: list[str | int] = [*section.split("."), index, "id"]
                yield ctx.doc.diagnostic(
                    parts, "E-DUPLICATE-ID",
                    f"duplicate id `{rule_id}` in {section} (first at [{seen[rule_id]}])",
                    hint="give each rule its own id",
                )
            else:
                seen[rule_id] = index


def check_team_references(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Stage owners and handoff targets must be declared teams."""
    teams = list(ctx.playbook.teams)
    for index, stage in enumerate(ctx.playbook.stages):
        yield from _reference(ctx, ["stages", index, "owner"], stage.owner, teams, "team")
    for index, handoff in enumerate(ctx.playbook.handoffs):
        yield from _reference(ctx, ["handoffs", index, "to"], handoff.to, teams, "team")
    yield from _overflow_references(ctx, teams)


def _overflow_references(ctx: CheckContext, teams: list[str]) -> Iterator[Diagnostic]:
    """An overflow routes to a declared team, never back to itself through a chain."""
    routes = {name: team.overflow.to for name, team in ctx.playbook.teams.items()
              if team.overflow is not None and team.overflow.to is not None}
    for name, target in routes.items():
        path: list[str | int] = ["teams", name, "overflow", "to"]
        if target not in teams:
            yield from _reference(ctx, path, target, teams, "team")
            continue
        seen, step = [name], target
        while step in routes and step not in seen:
            seen.append(step)
            step = routes[step]
        if step == name:
            chain = " → ".join([*seen, name])
            yield ctx.doc.diagnostic(path, "E-OVERFLOW-CYCLE", f"overflow goes round in a circle: {chain}",
                                     hint="end the chain at a team that carries its overflow over")


def check_plan(ctx: CheckContext) -> Iterator[Diagnostic]:
    """The plan's steps name stages, climbing in the playbook's stage order."""
    plan = ctx.playbook.plan
    if plan is None:
        return
    stages = ctx.playbook.stage_ids()
    previous = 0
    for index, step in enumerate(plan.steps):
        path: list[str | int] = ["plan", "steps", index, "stage"]
        if step.stage not in stages:
            yield from _reference(ctx, path, step.stage, stages, "stage")
            continue
        position = stages.index(step.stage)
        if position <= previous:
            yield ctx.doc.diagnostic(
                path, "E-PLAN-ORDER",
                f"plan step `{step.stage}` is not above the step before it in the stage order",
                hint=f"list steps in the order of `stages` ({', '.join(stages[1:])}), lowest first",
            )
        previous = max(previous, position)


def check_event_references(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Scoring and recycling may only name event types the exports carry."""
    pb = ctx.playbook
    events = list(pb.events)
    if pb.scoring.engagement is not None:
        for name in pb.scoring.engagement.points:
            yield from _reference(ctx, ["scoring", "engagement", "points", name], name, events,
                                  "event type", key=True)
    if pb.scoring.surge is not None and pb.scoring.surge.events:
        for index, name in enumerate(pb.scoring.surge.events):
            yield from _reference(ctx, ["scoring", "surge", "events", index], name, events,
                                  "event type")
    for reason, rule in pb.recycle.items():
        path: list[str | int] = ["recycle", reason, "on"]
        if rule.on not in events:
            yield from _reference(ctx, path, rule.on, events, "event type")
        elif rule.on == "disposition" and "reason" not in pb.events[rule.on].fields:
            yield ctx.doc.diagnostic(
                ["events", "disposition"], "E-REF",
                f"recycle reason `{reason}` reads the `reason` field of `disposition` events, "
                "but `disposition` declares no such field",
                hint="declare `disposition: {fields: [reason]}`",
            )


def check_stage_references(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Content mapped to a stage must name a declared stage (seed 003: content → stage)."""
    stages = ctx.playbook.stage_ids()
    for pattern, item in ctx.playbook.content.items():
        if item.stage is not None:
            yield from _reference(ctx, ["content", pattern, "stage"], item.stage, stages, "stage")


def check_content_overrides(ctx: CheckContext) -> Iterator[Diagnostic]:
    """`content: catalogue` needs catalogue points; otherwise it silently scores nothing."""
    engagement = ctx.playbook.scoring.engagement
    if engagement is None:
        return
    has_points = any(item.points is not None for item in ctx.playbook.content.values())
    for name, value in engagement.points.items():
        if not isinstance(value, EventPoints):
            continue
        if value.content == "catalogue" and not has_points:
            yield ctx.doc.diagnostic(
                ["scoring", "engagement", "points", name, "content"], "W-CONTENT-POINTS",
                "`content: catalogue` but no content item declares `points`",
                severity=Severity.WARNING, hint="add `points` to the content catalogue entries",
            )
        if (value.content is not None and name in ctx.playbook.events
                and "content" not in ctx.playbook.events[name].fields):
            yield ctx.doc.diagnostic(
                ["scoring", "engagement", "points", name, "content"], "E-REF",
                f"per-content points for `{name}`, but `{name}` events have no `content` field",
                hint=f"declare `{name}: {{fields: [content]}}` under `events`",
            )


def check_lead_source(ctx: CheckContext) -> Iterator[Diagnostic]:
    """`lead.source` names the lead field that `sources` is keyed by."""
    lead = ctx.playbook.lead
    if lead.source is not None:
        yield from _reference(ctx, ["lead", "source"], lead.source, list(lead.fields), "lead field")
    elif ctx.playbook.sources:
        yield ctx.doc.diagnostic(
            ["sources"], "W-SOURCES-UNUSED",
            "`sources` sets follow-up timing, but `lead.source` does not say which field holds "
            "the lead source", severity=Severity.WARNING, key=True,
            hint="add `lead: {source: lead_source}`",
        )


def check_lead_account(ctx: CheckContext) -> Iterator[Diagnostic]:
    """`lead.account` names a declared string field (docs/accounts.md); account values in a
    stage entry cannot be combined with sticky stages (an earlier instant's account would
    need every contact's history there)."""
    pb = ctx.playbook
    spec = pb.lead.account
    if spec is not None:
        path: list[str | int] = ["lead", "account"]
        name = spec if isinstance(spec, str) else spec.domain_of
        if not isinstance(spec, str):
            path = ["lead", "account", "domain_of"]
        if not isinstance(spec, str) and spec.unless_in is not None:
            yield from _reference(ctx, ["lead", "account", "unless_in"], spec.unless_in, list(pb.lists),
                                  "list")
        if name not in pb.lead.fields:
            yield from _reference(ctx, path, name, list(pb.lead.fields), "lead field")
        elif pb.lead.fields[name] != "string":
            yield ctx.doc.diagnostic(
                path, "E-ACCOUNT-FIELD", f"the account comes from `lead.{name}`, a {pb.lead.fields[name]}",
                hint=f"declare `{name}: string` (account ids and emails are text)")
    if any(s.sticky for s in pb.stages):
        for index, stage in enumerate(pb.stages):
            if stage.entry and ("account." in stage.entry or "account_persona(" in stage.entry):
                yield ctx.doc.diagnostic(
                    ["stages", index, "entry"], "E-ACCOUNT-STICKY",
                    f"stage `{stage.id}` reads account values, but the playbook has sticky stages",
                    hint="read account values in handoffs, or drop `sticky` (docs/accounts.md)")


def check_stage_order(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Stages climb: a later stage that always holds, or repeats an earlier entry, hides others."""
    stages = ctx.playbook.stages
    if stages[0].entry is not None:
        yield ctx.doc.diagnostic(
            ["stages", 0, "entry"], "W-STAGE-FIRST-ENTRY",
            f"the first stage `{stages[0].id}` has an entry criterion, but a lead that meets no "
            "entry is placed in the first stage anyway", severity=Severity.WARNING,
            hint="drop the entry of the first stage",
        )
    for index, stage in enumerate(stages[1:], start=1):
        if stage.entry is None:
            hidden = ", ".join(f"`{s.id}`" for s in stages[:index])
            yield ctx.doc.diagnostic(
                ["stages", index], "E-STAGE-UNREACHABLE",
                f"stage `{stage.id}` has no entry criterion, so it always holds and {hidden} "
                "can never be reached", hint="give it an `entry`",
            )
    by_entry: dict[str, int] = {}
    for index, stage in enumerate(stages):
        if stage.entry is None:
            continue
        key = " ".join(stage.entry.split())
        if key in by_entry:
            earlier = stages[by_entry[key]]
            yield ctx.doc.diagnostic(
                ["stages", by_entry[key], "entry"], "E-STAGE-UNREACHABLE",
                f"stage `{earlier.id}` has the same entry as the later stage `{stage.id}`, so "
                "the later one always wins and it can never be reached",
                hint="make the later stage's entry stricter",
            )
        by_entry[key] = index


CHECKS: tuple[Check, ...] = (
    check_duplicate_ids,
    check_team_references,
    check_event_references,
    check_stage_references,
    check_content_overrides,
    check_lead_source,
    check_lead_account,
    check_stage_order,
    check_plan,
    check_handoff_events,
    check_nurture,
)


def run_checks(ctx: CheckContext, checks: Sequence[Check] = CHECKS) -> list[Diagnostic]:
    """Run every check and return all findings (no check stops the others)."""
    found: list[Diagnostic] = []
    for check in checks:
        found.extend(check(ctx))
    return found
