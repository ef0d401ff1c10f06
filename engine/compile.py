"""Playbook → :class:`CompiledPlaybook`: every expression parsed, checked and compiled once.

This is the stage between ``check`` and ``evaluate``: it resolves lists from their
files (confined to the repository: :mod:`engine.listfiles`), builds the content
matcher and the engagement weights, and compiles each expression in the context
where it sits (personas see no scores; stages see fit and engagement; handoffs see
the stage). Expression issues are mapped to the exact character inside the YAML
string.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.decision import POINTS_LIMIT, cap_units
from engine.diagnostics import Diagnostic, Severity, format_path
from engine.durations import parse_seconds
from engine.events import Event
from engine.expr import CompiledExpression, ExprIssue, Vocabulary, compile_expression
from engine.listfiles import ListFileError, read_list_file, repository_root
from engine.load import Document
from engine.model import ContentItem, EventPoints, Playbook
from engine.pipeline import EXCLUSIONS, FIT, HANDOFFS, PERSONAS, RECYCLE, STAGES, SURGE, TARGETS, Section

NodePath = tuple[str | int, ...]
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rule:
    """A compiled rule: its id, where it is written (for traces and coverage), its test."""

    id: str
    path: NodePath
    line: int
    expr: CompiledExpression | None  # None: always holds (a first stage without entry)


#: A branch's points: a number, or an expression of type number computed per lead.
FitPoints = float | CompiledExpression


@dataclass(frozen=True)
class FitRule:
    """A fit rule: the first branch that holds scores (a plain rule is one branch).

    ``cap``: the most the rule contributes; computed points are clamped and rounded
    by :func:`engine.decision.computed_points` before it applies."""

    id: str
    path: NodePath
    line: int
    branches: tuple[tuple[CompiledExpression, FitPoints], ...]
    cap: float | None = None

    @property
    def computed(self) -> bool:
        """Whether some branch's points are an expression (``engine learn`` leaves those)."""
        return any(isinstance(points, CompiledExpression) for _, points in self.branches)

    @property
    def ceiling(self) -> float:
        """The most this rule can add (0 if never more): best branch, then the rule's cap."""
        best = max([0.0, *(POINTS_LIMIT if isinstance(p, CompiledExpression) else p
                           for _, p in self.branches)])
        return best if self.cap is None else min(best, self.cap)


@dataclass(frozen=True)
class StageRule:
    """A stage with its owning team."""

    rule: Rule
    owner: str
    sticky: bool


@dataclass(frozen=True)
class HandoffRule:
    """A handoff: when, to whom, how fast, how urgent."""

    rule: Rule
    to: str
    sla_seconds: int | None
    priority: CompiledExpression | None
    per_account: bool = False  # `per: account`: one handoff per account (engine.accounts)
    due_from: str = "condition"  # where the SLA starts (engine.due)


@dataclass(frozen=True)
class RecycleRule:
    """A recycle reason: what starts it, how long it holds, what ends it early."""

    rule: Rule
    on: str
    cooldown_seconds: int
    reenter: CompiledExpression | None
    nurture: str | None = None  # the nurture track marketing sends (docs/handoffs.md)


@dataclass(frozen=True)
class Life:
    """What a handoff's life reads (docs/handoffs.md): sales' answer events, whose work
    each event type is, and the nurture tracks. Empty for a playbook that declares none."""

    accepted: str | None = None  # the `handoff: accepted` event type
    rejected: str | None = None  # the `handoff: rejected` event type
    work: dict[str, frozenset[str]] = field(default_factory=dict)  # team → its event types (`by:`)
    tracks: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def declared(self) -> bool:
        """Whether the playbook declares any of it (else only the plain overdue applies)."""
        return bool(self.accepted or self.rejected or self.work or self.tracks)

    def worked_by(self, team: str) -> frozenset[str]:
        """The event types that are ``team``'s work (declared ``by:`` it)."""
        return self.work.get(team, frozenset())


@dataclass
class CompiledPlaybook:
    """Everything ``evaluate`` needs, resolved once per run."""

    playbook: Playbook
    source: str
    tz: ZoneInfo
    vocabulary: Vocabulary
    lists: dict[str, frozenset[str]]
    personas: tuple[Rule, ...]
    target_accounts: Rule | None
    target_leads: Rule | None
    fit_rules: tuple[FitRule, ...]
    fit_cap: float | None
    exclusions: tuple[Rule, ...]
    stages: tuple[StageRule, ...]
    handoffs: tuple[HandoffRule, ...]
    recycle: tuple[RecycleRule, ...]
    surge: Rule | None
    surge_window_seconds: int
    surge_events: frozenset[str] | None
    half_life_seconds: int | None
    engagement_window_seconds: int | None
    engagement_cap: float | None
    sources: dict[str, int]
    weight: Callable[[Event], float] = field(repr=False)
    content_stage_of: Callable[[str], str | None] = field(repr=False)
    # Event type → points for the types whose points never depend on content: the hot
    # loop's one dict lookup; the other types go through ``weight``.
    plain_weights: dict[str, float] = field(default_factory=dict, repr=False)
    # (event type, content) → points for the other types, filled as ``weight`` answers.
    content_weights: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    life: Life = field(default_factory=Life)
    # Event type → its cap in whole 2**-32 units (engagement.points.TYPE.cap), in the
    # playbook's order: that type's decayed points are capped before the total.
    type_caps: dict[str, int] = field(default_factory=dict)
    # Event type → content glob → cap in units (`content: {GLOB: {points, cap}}`): the
    # events whose content matches that glob add at most the cap, inside the type's total.
    content_caps: dict[str, dict[str, int]] = field(default_factory=dict)
    # (type, content) → cap bucket, filled as ``cap_bucket`` answers.
    _buckets: dict[tuple[str, object], int] = field(default_factory=dict, repr=False)

    @cached_property
    def capped_types(self) -> tuple[str, ...]:
        """Types whose units are summed apart (a type cap or a content cap), in playbook order."""
        engagement = self.playbook.scoring.engagement
        names = engagement.points if engagement is not None else {}
        return tuple(t for t in names if t in self.type_caps or t in self.content_caps)

    def cap_bucket(self, event_type: str, content: object) -> int:
        """Which of the type's capped content globs an event's content matches (1-based, in the
        order of ``content_caps[event_type]``); 0: none (the type's other events).

        The glob is the one ``weight`` scores the event by (exact ids first, then the first
        glob declared), so an event is capped by the glob that gave it its points."""
        key = (event_type, content)
        found = self._buckets.get(key)
        if found is None:
            caps = self.content_caps.get(event_type, {})
            matched = self._content_match[event_type](str(content)) if caps and content else None
            found = list(caps).index(matched) + 1 if matched in caps else 0
            if len(self._buckets) < 100_000:
                self._buckets[key] = found
        return found

    @cached_property
    def _content_match(self) -> dict[str, Callable[[str], str | None]]:
        engagement = self.playbook.scoring.engagement
        out: dict[str, Callable[[str], str | None]] = {}
        for event_type in self.content_caps:
            assert engagement is not None
            value = engagement.points[event_type]
            assert isinstance(value, EventPoints) and isinstance(value.content, dict)
            out[event_type] = _matcher(list(value.content))
        return out

    def weight_of_type(self, event_type: str) -> float:
        """The points one event of this type scores (without content), before decay."""
        return self.weight(Event(event_type, _EPOCH))

    @cached_property
    def last_sticky(self) -> int:
        """Index of the last sticky stage, -1 if none: decide's per-lead test for stickiness."""
        return max((i for i, s in enumerate(self.stages) if s.sticky), default=-1)

    def stage_index(self, stage_id: str) -> int:
        """Position of a stage in the playbook's order."""
        return [s.rule.id for s in self.stages].index(stage_id)


def _matcher(patterns: Sequence[str]) -> Callable[[str], str | None]:
    """Exact ids win over globs; among globs the first declared wins. Memoised."""
    exact = set(patterns)
    globs = [p for p in patterns if any(ch in p for ch in "*?[")]
    cache: dict[str, str | None] = {}

    def match(content: str) -> str | None:
        if content in cache:
            return cache[content]
        found = content if content in exact else next(
            (g for g in globs if fnmatch.fnmatchcase(content, g)), None
        )
        if len(cache) < 100_000:
            cache[content] = found
        return found

    return match


def _weights(playbook: Playbook, catalogue: Callable[[str], str | None]
             ) -> tuple[Callable[[Event], float], dict[str, float]]:
    """The weight of an event, and the table of the types whose weight ignores content."""
    engagement = playbook.scoring.engagement
    if engagement is None:
        return lambda event: 0.0, {}
    plain: dict[str, float] = {}
    special: dict[str, tuple[float, Callable[[str], str | None] | None, dict[str, float]]] = {}
    for event_type, value in engagement.points.items():
        if isinstance(value, EventPoints):
            if value.content == "catalogue":
                points = {k: v.points for k, v in playbook.content.items() if v.points is not None}
                special[event_type] = (value.points, catalogue, points)
            elif value.content:
                special[event_type] = (value.points, _matcher(list(value.content)),
                                       value.content_points())
            else:
                plain[event_type] = value.points
        else:
            plain[event_type] = float(value)

    def weight(event: Event) -> float:
        points = plain.get(event.type)
        if points is not None:
            return points
        spec = special.get(event.type)
        if spec is None:
            return 0.0
        base, match, table = spec
        content = event.fields.get("content")
        if content and match is not None:
            key = match(str(content))
            if key is not None and key in table:
                return table[key]
        return base

    return weight, dict(plain)


def vocabulary_of(playbook: Playbook) -> Vocabulary:
    """The plain-data view of a playbook that the expression checker reads."""
    return Vocabulary(
        event_fields={name: tuple(e.fields) for name, e in playbook.events.items()},
        stages=tuple(playbook.stage_ids()),
        personas=tuple(playbook.personas),
        lists=tuple(playbook.lists),
        lead_fields=dict(playbook.lead.fields) if playbook.lead.fields else None,
        content_stages=tuple(sorted({c.stage for c in playbook.content.values() if c.stage})),
    )


def expression_position(doc: Document, path: NodePath, issue: ExprIssue) -> tuple[int, int]:
    """1-based (line, col) in the YAML file of a character inside an expression string."""
    pos = doc.positions.get(path)
    if pos is None:
        return doc.position(path)
    if pos.style in ("|", ">"):
        lines = doc.text.splitlines()
        index, remaining = pos.line, issue.offset  # content starts on the next line
        while index < len(lines):
            raw = lines[index]
            content = raw.strip()
            indent = len(raw) - len(raw.lstrip())
            if remaining <= len(content):
                return index + 1, indent + remaining + 1
            remaining -= len(content) + 1
            index += 1
        return pos.line, pos.col
    quote = 1 if pos.style in ("'", '"') else 0
    if issue.line == 1:
        return pos.line, pos.col + quote + issue.col - 1
    return pos.line + issue.line - 1, issue.col


class _Compiler:
    """Compiles each expression in its context and collects positioned diagnostics."""

    def __init__(self, doc: Document | None, playbook: Playbook, vocabulary: Vocabulary) -> None:
        self.doc = doc
        self.playbook = playbook
        self.vocabulary = vocabulary
        self.diagnostics: list[Diagnostic] = []

    def line(self, path: NodePath) -> int:
        return self.doc.position(path)[0] if self.doc is not None else 0

    def expr(self, source: str, path: NodePath, context: str,
             expected: str = "bool") -> CompiledExpression | None:
        compiled, issues = compile_expression(source, self.vocabulary, context, expected)
        for issue in issues:
            self.diagnostics.append(self._diagnostic(path, issue))
        return compiled

    def _diagnostic(self, path: NodePath, issue: ExprIssue) -> Diagnostic:
        file = self.doc.file if self.doc is not None else "<playbook>"
        line, col = expression_position(self.doc, path, issue) if self.doc else (1, 1)
        return Diagnostic(
            file=file, line=line, col=col, code=issue.code, message=issue.message,
            severity=Severity.WARNING if issue.severity == "warning" else Severity.ERROR,
            path=format_path(path), hint=issue.hint,
            end_col=col + issue.length if issue.length else None,
        )

    def points(self, value: float | str, path: NodePath) -> FitPoints | None:
        """A fit branch's points: a number as is, an expression compiled as a number."""
        if isinstance(value, str):
            return self.expr(value, path, FIT.context, "number")
        return value

    def rule(self, rule_id: str, source: str | None, section: Section, *where: str | int) -> Rule:
        """A rule of ``section`` written at ``section.path + where``, its condition compiled
        in the section's context."""
        path: NodePath = (*section.path, *where)
        compiled = self.expr(source, path, section.context) if source is not None else None
        return Rule(rule_id, path, self.line(path), compiled)


def compile_playbook(
    playbook: Playbook, base_dir: Path, doc: Document | None = None
) -> tuple[CompiledPlaybook | None, list[Diagnostic]]:
    """Compile every expression; return None with diagnostics when any has an error."""
    vocabulary = vocabulary_of(playbook)
    c = _Compiler(doc, playbook, vocabulary)
    pb = playbook
    personas = tuple(c.rule(pid, p.when, PERSONAS, pid, "when") for pid, p in pb.personas.items())
    target_accounts = (c.rule("accounts", pb.targets.accounts, TARGETS, "accounts")
                       if pb.targets.accounts else None)
    target_leads = (c.rule("leads", pb.targets.leads, TARGETS, "leads")
                    if pb.targets.leads else None)
    fit_rules: list[FitRule] = []
    fit = pb.scoring.fit
    for i, r in enumerate(fit.rules if fit else ()):
        base: NodePath = (*FIT.path, "rules", i)
        branches: list[tuple[CompiledExpression, FitPoints]] = []
        if r.first_of is not None:
            for j, branch in enumerate(r.first_of):
                e = c.expr(branch.when, (*base, "first_of", j, "when"), FIT.context)
                p = c.points(branch.points, (*base, "first_of", j, "points"))
                if e is not None and p is not None:
                    branches.append((e, p))
        elif r.when is not None and r.points is not None:
            e = c.expr(r.when, (*base, "when"), FIT.context)
            p = c.points(r.points, (*base, "points"))
            if e is not None and p is not None:
                branches.append((e, p))
        fit_rules.append(FitRule(r.id, base, c.line(base), tuple(branches), r.cap))
    surge = pb.scoring.surge
    surge_rule = c.rule("surge", surge.when, SURGE, "when") if surge else None
    exclusions = tuple(c.rule(e.id, e.when, EXCLUSIONS, i, "when") for i, e in enumerate(pb.exclusions))
    stages = tuple(
        StageRule(c.rule(s.id, s.entry, STAGES, i, "entry"), s.owner, s.sticky)
        for i, s in enumerate(pb.stages)
    )
    handoffs = tuple(
        HandoffRule(
            c.rule(h.id, h.when, HANDOFFS, i, "when"),
            h.to,
            parse_seconds(h.sla) if h.sla else None,
            c.expr(h.priority, (*HANDOFFS.path, i, "priority"), HANDOFFS.context, "number")
            if h.priority else None,
            h.per == "account",
            h.due_from,
        )
        for i, h in enumerate(pb.handoffs)
    )
    recycle = tuple(
        RecycleRule(
            c.rule(reason, None, RECYCLE, reason),
            r.on,
            parse_seconds(r.cooldown),
            c.expr(r.reenter_when, (*RECYCLE.path, reason, "reenter_when"), RECYCLE.context)
            if r.reenter_when else None,
            r.nurture,
        )
        for reason, r in pb.recycle.items()
    )
    if any(d.severity is Severity.ERROR for d in c.diagnostics):
        return None, c.diagnostics
    lists: dict[str, frozenset[str]] = {}
    root = repository_root(base_dir) if any(isinstance(v, str) for v in pb.lists.values()) else None
    for name, value in pb.lists.items():
        if isinstance(value, list):
            lists[name] = frozenset(value)
            continue
        try:
            lists[name] = read_list_file(base_dir, value, root)
        except ListFileError as exc:
            c.diagnostics.append(Diagnostic(
                file=doc.file if doc else "<playbook>", line=c.line(("lists", name)),
                col=doc.position(("lists", name))[1] if doc else 1, code=exc.code,
                message=exc.message, path=f"lists.{name}", hint=exc.hint,
            ))
    if any(d.severity is Severity.ERROR for d in c.diagnostics):
        return None, c.diagnostics
    catalogue = _matcher(list(pb.content))
    content: dict[str, ContentItem] = dict(pb.content)

    def content_stage_of(content_id: str) -> str | None:
        key = catalogue(content_id)
        return content[key].stage if key is not None else None

    engagement = pb.scoring.engagement
    weight, plain_weights = _weights(pb, catalogue)
    compiled = CompiledPlaybook(
        playbook=pb,
        source=doc.file if doc else "<playbook>",
        tz=ZoneInfo(pb.timezone),
        vocabulary=vocabulary,
        lists=lists,
        personas=personas,
        target_accounts=target_accounts,
        target_leads=target_leads,
        fit_rules=tuple(fit_rules),
        fit_cap=fit.cap if fit else None,
        exclusions=exclusions,
        stages=stages,
        handoffs=handoffs,
        recycle=recycle,
        surge=surge_rule,
        surge_window_seconds=parse_seconds(surge.window) if surge else 0,
        surge_events=frozenset(surge.events) if surge and surge.events else None,
        half_life_seconds=parse_seconds(engagement.half_life)
        if engagement and engagement.half_life else None,
        engagement_window_seconds=parse_seconds(engagement.window)
        if engagement and engagement.window else None,
        engagement_cap=engagement.cap if engagement else None,
        sources={k: parse_seconds(v.follow_up_within) for k, v in pb.sources.items()},
        weight=weight,
        content_stage_of=content_stage_of,
        plain_weights=plain_weights,
        life=_life(pb),
        type_caps={
            event_type: cap_units(value.cap)
            for event_type, value in (engagement.points.items() if engagement else ())
            if isinstance(value, EventPoints) and value.cap is not None
        },
        content_caps={
            event_type: {glob: cap_units(cap) for glob, cap in value.content_caps().items()}
            for event_type, value in (engagement.points.items() if engagement else ())
            if isinstance(value, EventPoints) and value.content_caps()
        },
    )
    return compiled, c.diagnostics


def _life(pb: Playbook) -> Life:
    kinds = {e.handoff: name for name, e in reversed(pb.events.items()) if e.handoff}  # first wins
    work: dict[str, set[str]] = {}
    for name, etype in pb.events.items():
        if etype.by is not None:
            work.setdefault(etype.by, set()).add(name)
    return Life(
        accepted=kinds.get("accepted"), rejected=kinds.get("rejected"),
        work={team: frozenset(types) for team, types in work.items()},
        tracks={t: {stage: tuple(items) for stage, items in by_stage.items()}
                for t, by_stage in pb.nurture.items()},
    )
