"""How a rule change moves decisions: every decision column, whole fixture timelines, queues.

Both versions decide the same leads. A lead counts as changed when *any* column of its
decision differs (fit, engagement, priority, due, handoff rule, recycle, owner, stage,
route, exclusion), and each column is summarised on its own — how many leads, and the
distribution of the change (``fit +10``: 1,204 leads). A fixture counts as changed
exactly when ``engine test`` would fail on it: its whole replayed timeline is compared,
not only the final decision. Over an export, each team's queue is cut at its weekly
capacity on both sides (:mod:`engine.queues`), so a change that only reorders a queue
(a new ``priority``) still shows as leads entering and leaving it.

Further measurements plug in as an :class:`Observer` fed the same pairs of decisions:
outcome impact (precision, recall and lift at capacity, :mod:`engine.diff_outcomes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.accounts import uses_accounts
from engine.compile import CompiledPlaybook
from engine.evaluate import Decision, decide
from engine.events import Event

#: Examples of lead ids kept per impact cell.
EXAMPLES = 3
#: Distinct changes kept per column (the most frequent; the rest are counted as "other").
TOP_MOVES = 12


@dataclass(frozen=True)
class Case:
    """One lead to replay: its attributes, its events, and the instant of the decision.

    ``fixture`` cases are replayed in full (the timeline ``engine test`` snapshots,
    with the fixture's extra ``check_at`` instants); export leads are decided once.
    """

    lead_id: str
    lead: Mapping[str, Any]
    events: Sequence[Event]
    as_of: datetime
    fixture: bool = False
    check_at: tuple[datetime, ...] = ()
    contacts: tuple[Any, ...] = ()  # a fixture's account contacts (engine.accounts.Member)


@dataclass(frozen=True)
class Transition:
    """One cell of a from→to matrix: how many leads, and a few of them."""

    before: str
    after: str
    count: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"from": self.before, "to": self.after, "count": self.count,
                "examples": list(self.examples)}


@dataclass(frozen=True)
class Move:
    """One kind of change in a column (``+10``, ``nurturing → promising``) and its leads."""

    change: str
    count: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"change": self.change, "count": self.count, "examples": list(self.examples)}


@dataclass(frozen=True)
class ColumnImpact:
    """One decision column: leads whose value changed, and the most frequent changes."""

    column: str
    changed: int
    moves: tuple[Move, ...]
    other: int = 0  # leads whose change is not among ``moves`` (beyond TOP_MOVES kinds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"column": self.column, "changed": self.changed,
                "moves": [m.to_dict() for m in self.moves], "other": self.other}


@dataclass(frozen=True)
class QueueImpact:
    """One team's week before → after: handoffs, the queue cut at capacity, who moved."""

    team: str
    capacity_before: int | None
    capacity_after: int | None
    handoffs_before: int
    handoffs_after: int
    queued_before: int
    queued_after: int
    entered: int
    left: int
    entered_examples: tuple[str, ...] = ()
    left_examples: tuple[str, ...] = ()

    @property
    def overflow_before(self) -> int:
        """Handoffs beyond capacity under the base version."""
        return self.handoffs_before - self.queued_before

    @property
    def overflow_after(self) -> int:
        """Handoffs beyond capacity under the head version."""
        return self.handoffs_after - self.queued_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"team": self.team, "capacity_before": self.capacity_before,
                "capacity_after": self.capacity_after, "handoffs_before": self.handoffs_before,
                "handoffs_after": self.handoffs_after, "queued_before": self.queued_before,
                "queued_after": self.queued_after, "overflow_before": self.overflow_before,
                "overflow_after": self.overflow_after, "entered": self.entered, "left": self.left,
                "entered_examples": list(self.entered_examples),
                "left_examples": list(self.left_examples)}


@dataclass(frozen=True)
class ImpactReport:
    """Both versions' decisions over the same leads.

    ``changed`` counts leads whose decision changed in any column — for fixtures, whose
    replayed timeline changed (what ``engine test`` compares). ``columns`` lists every
    column that moved, most leads first; ``queues`` the capacity cut per team (exports).
    """

    total: int
    changed: int
    stages: tuple[Transition, ...]
    routes: tuple[Transition, ...]
    changed_examples: tuple[str, ...] = ()
    columns: tuple[ColumnImpact, ...] = ()
    queues: tuple[QueueImpact, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # observers' reports, by name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"total": self.total, "changed": self.changed,
                "changed_examples": list(self.changed_examples),
                "columns": [c.to_dict() for c in self.columns],
                "stages": [t.to_dict() for t in self.stages],
                "routes": [t.to_dict() for t in self.routes],
                "queues": [q.to_dict() for q in self.queues],
                **dict(self.extra)}


class Observer(Protocol):
    """Something measured from each lead's two decisions (e.g. outcome impact)."""

    name: str

    def observe(self, row: int, old: Decision, new: Decision) -> None:
        """Take one lead's base and head decisions (``row`` is its position in the stream)."""

    def report(self) -> dict[str, Any]:
        """What goes into the impact's JSON under ``name``."""


# --- the columns ---------------------------------------------------------------------------


def _recycle_state(d: Decision) -> str:
    r = d.recycle
    if r is None:
        return "none"
    return f"{r.reason} ({'active' if r.active else 're-entered' if r.reentered else 'over'})"


#: Decision column → (how to read it, its kind). Order is the order of a decision row.
COLUMNS: dict[str, tuple[Callable[[Decision], Any], str]] = {
    "excluded": (lambda d: d.excluded or "no", "label"),
    "fit": (lambda d: d.fit, "number"),
    "engagement": (lambda d: d.engagement, "number"),
    "stage": (lambda d: d.stage, "label"),
    "owner": (lambda d: d.owner, "label"),
    "recycle": (_recycle_state, "label"),
    "recycle_until": (lambda d: d.recycle.until if d.recycle else None, "time"),
    "route": (lambda d: d.route, "label"),
    "handoff": (lambda d: d.handoff.rule if d.handoff else "none", "label"),
    "priority": (lambda d: d.handoff.priority if d.handoff else None, "number"),
    "due": (lambda d: d.handoff.due if d.handoff else None, "time"),
}


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def _duration(seconds: float) -> str:
    """``+1d 2h``, ``-30m``: a time shift in the largest units that keep it exact-ish."""
    sign = "+" if seconds >= 0 else "-"
    rest, parts = int(abs(seconds)), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
        if len(parts) == 2:
            break
    return sign + (" ".join(parts) or "0s")


def describe(kind: str, before: Any, after: Any) -> str:
    """One change of a column in words: a delta for numbers and times, else ``a → b``."""
    if kind == "number" and before is not None and after is not None:
        delta = round(after - before, 2)
        return f"{'+' if delta > 0 else ''}{_num(delta)}"
    if kind == "time" and before is not None and after is not None:
        shift = (datetime.fromisoformat(after) - datetime.fromisoformat(before)).total_seconds()
        return _duration(shift)
    if kind in ("number", "time"):
        old = "none" if before is None else _num(before) if kind == "number" else "set"
        new = "none" if after is None else _num(after) if kind == "number" else "set"
        return f"{old} → {new}"
    return f"{before} → {after}"


class _Counter:
    """Counts per key with a few example lead ids each."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}
        self.examples: dict[Any, list[str]] = {}

    def add(self, key: Any, lead_id: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        kept = self.examples.setdefault(key, [])
        if len(kept) < EXAMPLES:
            kept.append(lead_id)


def _matrix(counter: _Counter, order: Sequence[str]) -> tuple[Transition, ...]:
    rank = {name: i for i, name in enumerate(order)}

    def sort_key(key: tuple[str, str]) -> tuple[int, str, int, str]:
        return (rank.get(key[0], len(rank)), key[0], rank.get(key[1], len(rank)), key[1])

    return tuple(Transition(b, a, counter.counts[(b, a)], tuple(counter.examples[(b, a)]))
                 for b, a in sorted(counter.counts, key=sort_key))


def _column(name: str, counter: _Counter) -> ColumnImpact:
    ranked = sorted(counter.counts, key=lambda k: (-counter.counts[k], k))
    moves = tuple(Move(k, counter.counts[k], tuple(counter.examples[k])) for k in ranked[:TOP_MOVES])
    other = sum(counter.counts[k] for k in ranked[TOP_MOVES:])
    return ColumnImpact(name, sum(counter.counts.values()), moves, other)


# --- queues at capacity --------------------------------------------------------------------


class QueueCut:
    """Each team's queue on both sides, cut at capacity with :class:`engine.queues.TeamQueue`."""

    name = "queues"

    def __init__(self, base: CompiledPlaybook, head: CompiledPlaybook) -> None:
        from engine.queues import TeamQueue

        self._make = TeamQueue
        self.capacity = ({t: v.capacity for t, v in base.playbook.teams.items()},
                         {t: v.capacity for t, v in head.playbook.teams.items()})
        self.sides: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def observe(self, row: int, old: Decision, new: Decision) -> None:
        """Offer each side's handoff to that side's queue of its team."""
        for side, decision in enumerate((old, new)):
            if decision.handoff is None:
                continue
            team = decision.handoff.to
            queues = self.sides[side]
            if team not in queues:
                queues[team] = self._make(team, self.capacity[side].get(team), keep=True)
            queues[team].offer(decision, row)

    def teams(self) -> list[str]:
        """Every team handed a lead on either side, sorted."""
        return sorted(set(self.sides[0]) | set(self.sides[1]))

    def members(self) -> list[tuple[list[str], list[str]]]:
        """Per team (in :meth:`teams` order): the lead ids queued before, and after, best first."""
        out = []
        for team in self.teams():
            old, new = self.sides[0].get(team), self.sides[1].get(team)
            out.append(([r["lead_id"] for r in old.rows()] if old is not None else [],
                        [r["lead_id"] for r in new.rows()] if new is not None else []))
        return out

    def results(self) -> tuple[QueueImpact, ...]:
        """Per team (sorted): before → after, and the leads entering and leaving the cut."""
        out = []
        for team, (was, now) in zip(self.teams(), self.members(), strict=True):
            old, new = self.sides[0].get(team), self.sides[1].get(team)
            was_set, now_set = set(was), set(now)
            entered = [i for i in now if i not in was_set]
            left = [i for i in was if i not in now_set]
            out.append(QueueImpact(
                team, self.capacity[0].get(team), self.capacity[1].get(team),
                old.handoffs if old else 0, new.handoffs if new else 0,
                old.queued if old else 0, new.queued if new else 0,
                len(entered), len(left), tuple(entered[:EXAMPLES]), tuple(left[:EXAMPLES])))
        return tuple(out)

    def report(self) -> dict[str, Any]:
        """The queues as JSON (the report also keeps them typed, see :func:`impact`)."""
        return {"queues": [q.to_dict() for q in self.results()]}


# --- the replay ----------------------------------------------------------------------------


def _timeline_text(cp: CompiledPlaybook, case: Case) -> tuple[str, Decision]:
    """The timeline as ``engine test`` renders it (without the header naming the version)."""
    from engine.render import render_timeline
    from engine.replay import replay

    timeline = replay(cp, dict(case.lead), case.events, case.as_of, lead_id=case.lead_id,
                      check_at=case.check_at, contacts=case.contacts)
    return render_timeline(timeline), timeline.final


def _with_accounts(base_cp: CompiledPlaybook, head_cp: CompiledPlaybook,
                   cases: Sequence[Case]) -> dict[int, tuple[Decision, Decision]]:
    """Each export lead's decisions under both versions, decided with its account's other
    leads (engine.accounts): the whole export is held in memory, as ``evaluate`` does."""
    from engine.account_decide import decide_accounts
    from engine.accounts import Member

    found: dict[int, tuple[Decision, Decision]] = {}
    by_instant: dict[datetime, list[Case]] = {}
    for case in cases:
        by_instant.setdefault(case.as_of, []).append(case)
    for as_of, group in by_instant.items():
        members = [Member(c.lead_id, c.lead, c.events) for c in group]
        olds = decide_accounts(base_cp, members, as_of, detail=False)
        news = decide_accounts(head_cp, members, as_of, detail=False)
        for case, old, new in zip(group, olds, news, strict=True):
            found[id(case)] = (old, new)
    return found


def impact(base_cp: CompiledPlaybook, head_cp: CompiledPlaybook, cases: Iterable[Case], *,
           queues: bool | QueueCut = False, observers: Sequence[Observer] = (),
           progress: Callable[[int], None] | None = None) -> ImpactReport:
    """Decide (or replay) every case under both versions and tabulate what moves.

    ``queues`` cuts each team's handoffs at its weekly capacity on both sides (pass a
    :class:`QueueCut` to share it with an observer that measures the queues);
    ``observers`` get every pair of decisions, and report once all are seen;
    ``progress`` is called every 1,000 leads.
    """
    stages, routes = _Counter(), _Counter()
    columns = {name: _Counter() for name in COLUMNS}
    cut = queues if isinstance(queues, QueueCut) else QueueCut(base_cp, head_cp) if queues else None
    watchers = [*observers, *([cut] if cut is not None else [])]
    total = changed = 0
    changed_examples: list[str] = []
    decided: dict[int, tuple[Decision, Decision]] = {}
    if uses_accounts(base_cp) or uses_accounts(head_cp):  # export leads with their accounts
        cases = list(cases)
        decided = _with_accounts(base_cp, head_cp, [c for c in cases if not c.fixture])
    for case in cases:
        if case.fixture:
            old_text, old = _timeline_text(base_cp, case)
            new_text, new = _timeline_text(head_cp, case)
            moved = old_text != new_text
        elif id(case) in decided:
            old, new = decided[id(case)]
            moved = False
        else:
            old = decide(base_cp, case.lead, case.events, case.as_of, lead_id=case.lead_id)
            new = decide(head_cp, case.lead, case.events, case.as_of, lead_id=case.lead_id)
            moved = False
        stages.add((old.stage, new.stage), case.lead_id)
        routes.add((old.route, new.route), case.lead_id)
        for name, (read, kind) in COLUMNS.items():
            before, after = read(old), read(new)
            if before != after:
                moved = moved or not case.fixture  # a fixture's timeline already says
                columns[name].add(describe(kind, before, after), case.lead_id)
        for watcher in watchers:
            watcher.observe(total, old, new)
        total += 1
        if moved:
            changed += 1
            if len(changed_examples) < EXAMPLES:
                changed_examples.append(case.lead_id)
        if progress is not None and total % 1000 == 0:
            progress(total)
    stage_order = [s.rule.id for s in base_cp.stages] + [s.rule.id for s in head_cp.stages]
    route_order = ["none"] + [h.to for h in base_cp.handoffs] + [h.to for h in head_cp.handoffs]
    moved_columns = sorted((_column(n, c) for n, c in columns.items() if c.counts),
                           key=lambda c: (-c.changed, list(COLUMNS).index(c.column)))
    extra = {o.name: o.report() for o in observers}
    return ImpactReport(total, changed, _matrix(stages, stage_order), _matrix(routes, route_order),
                        tuple(changed_examples), tuple(moved_columns),
                        cut.results() if cut is not None else (), extra)
