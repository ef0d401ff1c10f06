"""The batch kernel: one generated Python function per playbook, for ``engine evaluate``.

``decide`` is written for every caller (traces, breakdowns, replay), so per lead it
builds a :class:`~engine.history.History`, a scope, and calls closures through it. An
export of a million leads needs none of that: :func:`kernel_for` generates, once per
playbook, a function with the playbook's rules as plain Python statements and one loop
over the lead's events (see :mod:`engine.kernel.source`). It reads
:class:`~engine.events.EventColumns` as the fast reader yields them, or Events.

Same answers as ``decide(..., detail=False)``, to the bit (tests/test_kernel.py checks
it on generated leads and recycle edge cases). What the kernel does not cover returns
None, and the caller uses ``decide``: a playbook with an expression that has no
generated form (no kernel at all), and per lead exactly three known cases — events that
repeat an event id, an event type the playbook does not declare (the loop's type lookup
raises KeyError), a lead field holding a value not of its declared type (an inlined
operator raises TypeError). Any other exception is a bug in the kernel and propagates
(``engine evaluate`` exits 3 with a crash log), never a silent change of path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import repeat
from math import floor
from typing import Any

from engine.compile import CompiledPlaybook
from engine.decision import (
    _MEMO_LIMIT,
    Decision,
    Handoff,
    Nurture,
    Recycle,
    _iso,
    computed_points,
    handoff_of,
    priority_of,
    recycle_state,
    score,
)
from engine.due import anchor_us, plans
from engine.events import _EPOCH, Event, EventColumns, epoch_us
from engine.functions import from_units, units
from engine.handoff_life import handoff_sla, overdue_since, with_life
from engine.kernel.decay import block_points
from engine.kernel.emit import NoKernel
from engine.kernel.source import Total, generate
from engine.kernel.sums import block_sums

__all__ = ["Kernel", "NoKernel", "Weekly", "kernel_for"]

_CACHE: dict[tuple[int, int, int], tuple[CompiledPlaybook, Kernel | None]] = {}
#: :meth:`Kernel.decide_instants`: per instant (stage index, exclusion, handoff), and the
#: last instant's (personas, target_account, target_lead) (None without instants).
Weekly = tuple[list[tuple[int, str | None, Handoff | None]], tuple[tuple[str, ...], bool, bool] | None]
_NONES = repeat(None)
_UNSET = object()
#: Python types a lead field's value may have, by its declared kind.
_DECLARED: dict[str, type | tuple[type, ...]] = {
    "string": str, "number": (int, float), "bool": bool, "datetime": datetime,
}  # a column the input lacks (stateless: every call may share it)


def to_datetime(us: int) -> datetime:
    """UTC epoch microseconds → aware datetime (exact)."""
    return _EPOCH + timedelta(microseconds=us)


class Kernel:
    """A playbook's generated decision function and what it needs per call."""

    def __init__(self, cp: CompiledPlaybook, *, decision: Callable[..., Any] | None = None,
                 builders: Mapping[str, Callable[..., Any]] | None = None) -> None:
        """``decision``: what the generated code's final ``Decision(...)`` call builds (same
        arguments as :meth:`Decision.from_values`); the funnel passes a lean answer that
        keeps only what it reads (engine.measure.week_answer). ``builders``: helpers the
        generated code calls, replaced by ones giving the same values (the funnel's
        memoised ``new_handoff`` and ``priority_of``)."""
        from engine.accounts import uses_accounts

        if uses_accounts(cp):  # a lead's decision needs its account's leads: engine.accounts
            raise NoKernel("accounts have no kernel form")
        self.cp = cp
        self._memo: list[dict[Any, float]] = []  # type code → content → points
        self._memo_size = 0
        self._stage_index = {s.rule.id: i for i, s in enumerate(cp.stages)}
        helpers: dict[str, Callable[..., Any]] = {
            "score": score, "floor": floor, "Decision": decision or Decision.from_values,
            "to_datetime": to_datetime,
            "make_handoff": self._handoff, "new_handoff": Handoff.from_values, "priority_of": priority_of,
            "make_recycle": self._recycle, "weigh": self._weigh,
            "sticky_floor": self._sticky_floor, "life": self._life,
            "stage_of": cp.content_stage_of, "units": units, "from_units": from_units,
            "computed_points": computed_points, "cap_bucket": cp.cap_bucket,
        }
        helpers.update(builders or {})
        generated = generate(cp, helpers)
        self.source = generated.source
        self.fields = generated.fields
        self._memo = generated.content_memo
        namespace: dict[str, Any] = dict(generated.constants)
        namespace["__builtins__"] = {"zip": zip, "tuple": tuple, "bool": bool, "min": min,
                                     "isinstance": isinstance, "str": str, "round": round}
        exec(compile(self.source, f"<kernel {cp.playbook.metadata.name}>", "exec"), namespace)
        self._namespace = namespace
        self._vector: Any = _UNSET
        self._run: Callable[..., Decision] = namespace["run"]
        self._run_points: Callable[..., Decision] | None = namespace.get("run_points")
        self._run_sums: Callable[..., Decision] | None = namespace.get("run_sums")
        self._run_weeks: Callable[..., Weekly] | None = namespace.get("run_weeks")
        self._totals = generated.totals
        self._known_types = frozenset(generated.codes)
        self._as_of: tuple[datetime, int, str, tuple[object, int]] | None = None
        self._token = object()  # names this kernel in the points it computed

    def aware_as_of(self, as_of: datetime) -> tuple[datetime, int, str, tuple[object, int]]:
        """``as_of``, its epoch µs, its text, and the key of points computed for it (cached)."""
        if self._as_of is None or self._as_of[0] is not as_of:
            aware = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=self.cp.tz)
            us = epoch_us(aware)
            self._as_of = (as_of, us, _iso(self.cp, aware), (self._token, us))
        return self._as_of

    def preparer(self, as_of: datetime, *, totals: bool = True) -> Callable[[Any], None] | None:
        """What a merge calls on each block of events: sets each lead's totals at ``as_of``
        when the playbook decides from totals (:mod:`engine.kernel.sums`; not with
        ``totals=False``), else the events' decayed points (:mod:`engine.kernel.decay`),
        so ``decide`` adds them instead of computing them event by event. None when there
        is nothing to precompute (no totals, no engagement)."""
        wanted = self._totals if totals else None
        if self._run_points is None and wanted is None:
            return None
        _, as_of_us, _, key = self.aware_as_of(as_of)
        half_life = self.cp.half_life_seconds
        weigh, known, points = self._weigh_type, self._known_types, self._run_points is not None

        def prepare(block: Any) -> None:
            arrow = getattr(block, "arrow", None) or {}  # the reader's Arrow forms, when it kept them
            at, types = arrow.get("at", block.at_us), arrow.get("type", block.types)
            fields = {**block.fields, **arrow.get("fields", {})}
            block.sums = block.points = block.points_key = None
            if wanted is not None:
                sums = block_sums(wanted, block.starts, at, types, fields, as_of_us, half_life, weigh, known)
                if sums is not None:
                    block.sums = dict(zip(block.starts, sums, strict=False))  # run start → totals
                    block.points_key = key
                    return
            if points:
                found = block_points(at, types, fields.get("content"), as_of_us, half_life, weigh)
                if found is not None:
                    block.points, block.points_key = found.to_pylist(), key

        return prepare

    def decide(self, lead: Mapping[str, Any], events: Sequence[Event], as_of: datetime,
               lead_id: str = "") -> Decision | None:
        """``decide(cp, lead, events, as_of, lead_id=..., detail=False)``, or None: use decide."""
        _, as_of_us, as_of_text, key = self._as_of if self._as_of is not None and self._as_of[0] is as_of \
            else self.aware_as_of(as_of)
        if isinstance(events, EventColumns):
            ids = events.ids
            if ids is not None and _repeats(ids):
                return None
            prepared = events.points_key == key
            if prepared and events.sums is not None and self._run_sums is not None:
                try:
                    return self._run_sums(lead, events.sums, as_of_us, lead_id, as_of_text)
                except TypeError:
                    if self._known(lead, ()):
                        return None
                    raise
            got = events.fields
            columns: list[Any] = [got.get(name) or _NONES for name in self.fields]
            at_us, types = events.at_us, events.types
            id_column: Any = ids if ids is not None else _NONES
            seqs: Any = events.seqs
            if prepared and events.points is not None and self._run_points is not None:
                try:
                    return self._run_points(lead, at_us, types, *columns, events.points, id_column, seqs,
                                            as_of_us, lead_id, as_of_text)
                except (KeyError, TypeError):
                    if self._known(lead, types):
                        return None
                    raise
        else:
            if _repeats([e.id for e in events]):
                return None
            columns = [[e.fields.get(name) for e in events] for name in self.fields]
            at_us, types = [epoch_us(e.at) for e in events], [e.type for e in events]
            id_column, seqs = [e.id for e in events], [e.seq for e in events]
        try:
            return self._run(lead, at_us, types, *columns, id_column, seqs, as_of_us, lead_id, as_of_text)
        except (KeyError, TypeError):
            if self._known(lead, types):
                return None
            raise

    def decide_totals(self, lead: Mapping[str, Any], sums: tuple[int, ...], key: object, as_of: datetime,
                      lead_id: str = "") -> Decision | None:
        """``decide`` for a lead whose totals :meth:`preparer` computed at ``as_of`` (``key``:
        the block's ``points_key``), with no event columns to build; None: use decide."""
        _, as_of_us, as_of_text, wanted = self._as_of if self._as_of is not None and self._as_of[0] is as_of \
            else self.aware_as_of(as_of)
        if self._run_sums is None or key != wanted:
            return None
        try:
            return self._run_sums(lead, sums, as_of_us, lead_id, as_of_text)
        except TypeError:
            if self._known(lead, ()):
                return None
            raise

    @property
    def totals(self) -> list[Total] | None:
        """What ``run_sums`` and :meth:`decide_instants` are handed per instant, in order;
        None when the playbook needs the events themselves (:mod:`engine.kernel.source`)."""
        return self._totals if self._run_weeks is not None else None

    def decide_instants(self, lead: Mapping[str, Any], instants: Sequence[int],
                        sums: Sequence[tuple[int, ...]]) -> Weekly | None:
        """The lead decided at each of ``instants`` (epoch µs) from its :attr:`totals` there
        (``sums``, one tuple per instant), in one call: what depends on the lead alone is
        computed once. Per instant only ``(stage index, exclusion, handoff)`` — what
        ``engine funnel`` reads every week — and the last instant's ``(personas,
        target_account, target_lead)``. None: the known cases ``decide`` handles (a
        mistyped lead field)."""
        if self._run_weeks is None:
            return None
        try:
            found: Weekly = self._run_weeks(lead, instants, sums)
        except TypeError:
            if self._known(lead, ()):
                return None
            raise
        return found

    def vector_weeks(self) -> Any:
        """:attr:`totals`' rule body over numpy columns (:class:`engine.kernel.vector.VectorWeeks`,
        built once), or None when ``run_weeks`` has a shape it does not read."""
        if self._vector is _UNSET:
            from engine.kernel.vector import VectorWeeks

            weeks = self._run_weeks is not None
            self._vector = VectorWeeks.of(self.source, self._namespace) if weeks else None
        return self._vector

    @property
    def weighing(self) -> tuple[float | None, Callable[[str, Any], float], frozenset[str]]:
        """What :func:`engine.kernel.decay.block_points` needs of this playbook: the
        half-life (seconds), ``weigh(type, content)``, and the event types it declares."""
        return self.cp.half_life_seconds, self._weigh_type, self._known_types

    def block_totals(self, starts: Sequence[int], at: Any, types: Any, fields: dict[str, Any],
                     as_of_us: Any) -> list[tuple[int, ...]] | None:
        """Each run's :attr:`totals` (:func:`engine.kernel.sums.block_sums` with this
        playbook's weights and event types); ``as_of_us`` an instant or one per event."""
        if self._totals is None:
            return None
        return block_sums(self._totals, starts, at, types, fields, as_of_us, self.cp.half_life_seconds,
                          self._weigh_type, self._known_types)

    def _known(self, lead: Mapping[str, Any], types: Sequence[str]) -> bool:
        """Whether a KeyError or TypeError of the generated code is a known case (``decide``'s job):
        an event type the playbook does not declare, or a lead field whose value is not of its
        declared type (module docstring). Anything else is a bug and must surface."""
        return any(t not in self._known_types for t in types) or self._mistyped(lead)

    def _mistyped(self, lead: Mapping[str, Any]) -> bool:
        """Whether a lead field holds a value (not None) of another type than the playbook declares."""
        for name, kind in self.cp.playbook.lead.fields.items():
            value = lead.get(name)
            if value is not None and (not isinstance(value, _DECLARED[kind])
                                      or (kind == "number" and type(value) is bool)):
                return True
        return False

    def _weigh_type(self, event_type: str, content: Any) -> float:
        """``cp.weight`` of an event of this type and content (a block's distinct pairs)."""
        return self.cp.weight(Event(event_type, _EPOCH, {"content": content}))

    def _weigh(self, code: int, event_type: str, content: Any) -> float:
        """``cp.weight`` for a type whose points depend on content; remembered (bounded)."""
        points = self.cp.weight(Event(event_type, _EPOCH, {"content": content}))
        if self._memo_size < _MEMO_LIMIT and (content is None or type(content) is str):
            self._memo[code][content] = points
            self._memo_size += 1
        return points

    def _sticky_floor(self, lead: Mapping[str, Any], at_us: Sequence[int], types: Sequence[str],
                      *rest: Any) -> int:
        """decide's ``_sticky_floor``: the highest sticky stage decided at an earlier event.

        ``rest`` is the field columns, ids, seqs, as_of and the stage found now. Each
        earlier decision is this kernel at that instant (itself sticky, as decide recurses).
        """
        *columns, ids, seqs, as_of_us, current = rest
        cp = self.cp
        sticky = [s.sticky for s in cp.stages]
        best = cp.last_sticky
        floor_: int = current
        for instant in sorted({at for at in at_us if at < as_of_us}, reverse=True):
            if floor_ >= best:
                break
            earlier = self._run(lead, at_us, types, *columns, ids, seqs, instant, "", "")
            index = self._stage_index[earlier.stage]
            if sticky[index] and index > floor_:
                floor_ = index
        return floor_

    def _life(self, *args: Any) -> tuple[Handoff | None, Nurture | None]:
        """The generated code's ``life(...)``: see :func:`_life_of`."""
        return _life_of(self, *args)

    def _recycle(self, index: int, recycled_at: int, reentered: bool,
                 as_of_us: int) -> tuple[Recycle, bool, datetime | None]:
        """decide's recycle state for the trigger the generated code chose."""
        cp = self.cp
        return recycle_state(cp, cp.recycle[index], to_datetime(recycled_at), to_datetime(as_of_us),
                             reentered)

    def _handoff(self, index: int, lead: Mapping[str, Any], priority_value: Any, at_us: Sequence[int],
                 types: Sequence[str], *rest: Any) -> Handoff:
        """decide's Handoff for the rule the generated code found holding.

        ``rest`` is the field columns (in ``self.fields`` order), as_of and the release."""
        *columns, as_of_us, released = rest
        plan = plans(self.cp)[index]
        position = {name: i for i, name in enumerate(self.fields)}

        rule = self.cp.handoffs[index]

        def field(i: int, name: str) -> Any:
            column: Any = columns[position[name]] if name in position else _NONES
            return None if column is _NONES else column[i]

        def anchor() -> datetime:  # engine.due: when the condition first held
            return to_datetime(anchor_us(plan, at_us, types, field, as_of_us))

        made = handoff_of(self.cp, rule, lead, priority_value, anchor, released)
        # no answers or team work declared (else no kernel): overdue is "due passed"
        return with_life(self.cp, rule, made, lead, to_datetime(as_of_us), (), None)


def _life_of(kernel: Kernel, lead: Mapping[str, Any], handoff: Handoff | None, recycle: Recycle | None,
             recycled_at: int | None, excluded: str | None, stage: int, at_us: Sequence[int],
             types: Sequence[str], teams: Any, contents: Any,
             as_of_us: int) -> tuple[Handoff | None, Nurture | None]:
    """``engine.handoff_life`` over the event columns: the answer, overdue and nurture.

    ``teams``, ``contents``: the events' ``team`` and ``content`` columns (None, or the
    stand-in for a column the input lacks)."""
    cp = kernel.cp
    life = cp.life
    teams = None if teams is _NONES else teams  # a column the input lacks
    contents = None if contents is _NONES else contents
    live = [i for i, at in enumerate(at_us) if at <= as_of_us]
    if handoff is not None:
        accepted = False
        if life.accepted is not None and teams is not None:
            accepted = any(types[i] == life.accepted and teams[i] == handoff.to
                           and (recycled_at is None or at_us[i] > recycled_at) for i in live)
        since = None
        if not accepted:
            work = life.worked_by(handoff.to)
            rule = next(h for h in cp.handoffs if h.rule.id == handoff.rule)

            def worked(start: datetime) -> bool:
                start_us = epoch_us(start)
                return any(types[i] in work and at_us[i] >= start_us for i in live)

            since = overdue_since(handoff.due, handoff_sla(cp, rule, lead), to_datetime(as_of_us), worked)
        return Handoff.from_values(handoff.rule, handoff.to, handoff.due, handoff.priority, accepted,
                                   since), None
    if recycle is None or excluded is not None:
        return None, None
    reason = next(r for r in cp.recycle if r.rule.id == recycle.reason)
    if reason.nurture is None:
        return None, None
    items = life.tracks.get(reason.nurture, {}).get(cp.stages[stage].rule.id, ())
    consumed = {contents[i] for i in live} if contents is not None else set()
    return None, Nurture(reason.nurture, next((c for c in items if c not in consumed), None))


def _repeats(ids: Sequence[str | None]) -> bool:
    """Whether an event id occurs twice (History keeps only the earliest: decide's job)."""
    present = [i for i in ids if i is not None]
    return len(set(present)) != len(present)


def kernel_for(cp: CompiledPlaybook, decision: Callable[..., Any] | None = None,
               builders: Mapping[str, Callable[..., Any]] | None = None) -> Kernel | None:
    """The playbook's kernel (built once per ``decision`` builder and ``builders``, see
    :class:`Kernel`), or None when it has no generated form."""
    key = (id(cp), id(decision), id(builders))
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is cp:
        return cached[1]
    try:
        kernel: Kernel | None = Kernel(cp, decision=decision, builders=builders)
    except NoKernel:
        kernel = None
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (cp, kernel)
    return kernel
