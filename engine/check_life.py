"""Checks of a handoff's life: sales' answer events, whose work an event is, nurture tracks.

Listed in :data:`engine.check.CHECKS`: what docs/handoffs.md
promises about these declarations is checked here, each finding at its ``file:line:col``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from engine.diagnostics import Diagnostic, Severity, did_you_mean

if TYPE_CHECKING:
    from engine.check import CheckContext

def _reference(ctx: CheckContext, path: Sequence[str | int], name: str, options: Sequence[str],
               what: str, key: bool = False) -> Iterator[Diagnostic]:
    """``engine.check._reference`` (this module sits below it)."""
    if name not in options:
        hint = did_you_mean(name, options) or (
            f"declare it under `{what}s`" if not options else f"known: {', '.join(options)}")
        yield ctx.doc.diagnostic(path, "E-REF", f"unknown {what} `{name}`", hint=hint, key=key)


#: The field each kind of handoff event must declare.
NEEDED_FIELD = {"accepted": "team", "rejected": "reason"}


def check_handoff_events(ctx: CheckContext) -> Iterator[Diagnostic]:
    """`by:` names a team; one event type per answer kind, with the field it is read by."""
    pb = ctx.playbook
    teams = list(pb.teams)
    first: dict[str, str] = {}
    for name, etype in pb.events.items():
        if etype.by is not None:
            yield from _reference(ctx, ["events", name, "by"], etype.by, teams, "team")
        kind = etype.handoff
        if kind is None:
            continue
        path: list[str | int] = ["events", name, "handoff"]
        if kind in first:
            yield ctx.doc.diagnostic(
                path, "E-HANDOFF-EVENT",
                f"`{name}` and `{first[kind]}` are both `handoff: {kind}` events",
                hint="declare one event type per answer; map other spellings to it in the mapping",
            )
            continue
        first[kind] = name
        needed = NEEDED_FIELD[kind]
        if needed not in etype.fields:
            yield ctx.doc.diagnostic(
                path, "E-HANDOFF-EVENT",
                f"`handoff: {kind}` events are read by their `{needed}` field, but `{name}` declares none",
                hint=f"declare `{name}: {{fields: [{needed}], handoff: {kind}}}`",
            )
    if "rejected" in first and not pb.recycle:
        yield ctx.doc.diagnostic(
            ["events", first["rejected"], "handoff"], "E-HANDOFF-EVENT",
            "a rejected handoff recycles the lead with its `reason`, but the playbook has no "
            "`recycle` reasons", hint="declare the reasons sales may give under `recycle`",
        )


def check_nurture(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A recycle reason names a declared track; a track's stages and content exist."""
    pb = ctx.playbook
    tracks = list(pb.nurture)
    named: set[str] = set()
    for reason, rule in pb.recycle.items():
        if rule.nurture is not None:
            named.add(rule.nurture)
            yield from _reference(ctx, ["recycle", reason, "nurture"], rule.nurture, tracks,
                                  "nurture track")
    stages = pb.stage_ids()
    patterns = list(pb.content)
    for track, by_stage in pb.nurture.items():
        if track not in named:
            yield ctx.doc.diagnostic(
                ["nurture", track], "W-NURTURE-UNUSED",
                f"nurture track `{track}` is named by no recycle reason, so no lead is sent it",
                severity=Severity.WARNING, key=True,
                hint="add `nurture: " + track + "` to a recycle reason, or remove the track",
            )
        for stage, items in by_stage.items():
            if stage not in stages:
                yield from _reference(ctx, ["nurture", track, stage], stage, stages, "stage", key=True)
            for index, item in enumerate(items):
                if not any(item == p or fnmatch.fnmatchcase(item, p) for p in patterns):
                    yield ctx.doc.diagnostic(
                        ["nurture", track, stage, index], "E-NURTURE-CONTENT",
                        f"nurture track `{track}` sends `{item}`, which the `content` catalogue "
                        "does not know", hint="add it (or a glob matching it) under `content`",
                    )
