"""``engine funnel``: an export decided week by week → volumes, transitions, capacity, KPIs.

One read of the export (:mod:`engine.measure.weeks` decides each lead at each week
end), then arithmetic: leads per stage and stage-to-stage transitions per week, each
team's queue played forward (:mod:`engine.measure.capacity`), the median days between
stages, and the funnel's conversion rates (reached each stage) by source, persona and
segment, with target-account coverage.

Outcomes (``--outcomes`` or the leads file's, through the mapping's ``outcomes`` section,
:mod:`engine.measure.outcomes`) add won/lost per week by their dates and a won column to
the rates; without them "won" is whatever stage the playbook reaches from the export's
closed-deal events (Olist: ``deal_won``), and a note says so.
"""

from __future__ import annotations

import gc
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from engine.accounts import refuse_accounts
from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.events import Event
from engine.io import EventsFile, LeadEvent, LeadRecord, LeadsFile, Mapping, Reject, iter_leads_with_events
from engine.measure.capacity import COUNTS, Simulation, simulate
from engine.measure.outcomes import Outcomes
from engine.measure.weeks import Episode, LeadWeeks, Unplaced, Weeks, weekly

SHOWN_REJECTS = 5
MISSING = "(missing)"
NO_PERSONA = "(none)"


@dataclass(frozen=True)
class FunnelRequest:
    """What to read and how to slice it."""

    leads: Path
    mapping: Mapping
    start: datetime
    end: datetime
    events: Path | None = None
    encoding: str | None = None
    segment: str | None = None
    account_field: str | None = None
    accounts: frozenset[str] | None = None
    opportunity_stage: str | None = None
    #: --outcomes: the mapping's outcomes from this file; None: from the leads file when
    #: the mapping's outcomes section reads them there, else no outcomes.
    outcomes: Path | None = None


@dataclass
class _Rejects:
    """Counts rejects, keeps the first few for the summary, forwards all to a writer if any."""

    leads_file: str
    writer: Any = None
    leads: int = 0
    events: int = 0
    first: list[Reject] = field(default_factory=list)

    def __call__(self, reject: Reject) -> None:
        if self.writer is not None:
            self.writer(reject)
        if reject.file == self.leads_file:
            self.leads += 1
        else:
            self.events += 1
        if len(self.first) < SHOWN_REJECTS:
            self.first.append(reject)


@dataclass
class _Totals:
    """What the pass over the leads adds up.

    The per-week columns (stages, events, exclusions) of each lead are appended to flat
    buffers (C-level ``extend``, not a Python step per (lead, week): 2.4 M of them on the
    100k bench) and counted in numpy every ~1 M weeks and at :meth:`finish`, which must
    run before ``stages``, ``events`` or ``excluded`` are read.
    """

    weeks: int
    stage_ids: list[str]
    new: list[int] = field(init=False)
    events: list[int] = field(init=False)
    stages: list[list[int]] = field(init=False)
    excluded: list[int] = field(init=False)
    transitions: list[Counter[str]] = field(init=False)
    days: list[dict[str, list[float]]] = field(init=False)
    episodes: list[Episode] = field(default_factory=list)
    placed: int = 0
    _at: list[int] = field(default_factory=list)  # (each buffered week's index)
    _stage: list[int] = field(default_factory=list)
    _events: list[int] = field(default_factory=list)
    _excluded: list[bool] = field(default_factory=list)
    _counted: Any = None  # (weeks x (stages + events + excluded), int64)

    def __post_init__(self) -> None:
        n = self.weeks
        self.new, self.events, self.excluded = [0] * n, [0] * n, [0] * n
        self.stages = [[0] * len(self.stage_ids) for _ in range(n)]
        self.transitions = [Counter() for _ in range(n)]
        self.days = [{} for _ in range(n)]

    def add(self, lead: LeadWeeks) -> None:
        self.placed += 1
        ids = self.stage_ids
        first = lead.first
        self.new[first] += 1
        self._at.extend(range(first, first + len(lead.stages)))
        self._stage.extend(lead.stages)
        self._events.extend(lead.events_in_weeks)
        self._excluded.extend(lead.excluded)
        if len(self._at) >= 1 << 20:
            self._fold()
        # a week's stage differs from the week before's exactly in the weeks with an entry,
        # the last of which is the stage at that week's end (weeks._lead_weeks)
        previous = "new"
        entries = lead.entries
        for position, (week, stage, _) in enumerate(entries):
            if position + 1 < len(entries) and entries[position + 1][0] == week:
                continue  # (not the week's last)
            if ids[stage] != previous:
                self.transitions[week][f"{previous}→{ids[stage]}"] += 1
                previous = ids[stage]
        for (_, a, at_a), (week, b, at_b) in pairwise(entries):
            pair = f"{ids[a]}→{ids[b]}"
            self.days[week].setdefault(pair, []).append((at_b - at_a).total_seconds() / 86_400)
        self.episodes.extend(lead.episodes)

    def _fold(self) -> None:
        """The buffered weeks counted into :attr:`_counted` (numpy), the buffers emptied."""
        import numpy as np

        width = len(self.stage_ids)
        if self._counted is None:
            self._counted = np.zeros((self.weeks, width + 2), np.int64)
        at = np.asarray(self._at, np.int64)
        stage = np.asarray(self._stage, np.int64)
        self._counted[:, :width] += np.bincount(at * width + stage, minlength=self.weeks * width
                                                ).reshape(self.weeks, width)
        for column, values in ((width, self._events), (width + 1, self._excluded)):
            np.add.at(self._counted[:, column], at, np.asarray(values, np.int64))
        self._at, self._stage, self._events, self._excluded = [], [], [], []

    def finish(self) -> None:
        """``stages``, ``events`` and ``excluded`` from everything added."""
        self._fold()
        width = len(self.stage_ids)
        counted = self._counted.tolist()
        self.stages = [row[:width] for row in counted]
        self.events = [row[width] for row in counted]
        self.excluded = [row[width + 1] for row in counted]


@dataclass
class _Groups:
    """Leads and the stages they reached, per value of a dimension (source, persona, segment);
    the last column counts leads whose outcome is won (when outcomes are given)."""

    stages: int
    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, key: str, reached: int, won: bool = False) -> None:
        row = self.counts.setdefault(key, [0] * (self.stages + 2))
        row[0] += 1
        for index in range(1, reached + 1):
            row[index] += 1
        row[-1] += won


def reached_steps(cp: CompiledPlaybook, lead: LeadWeeks) -> int:
    """The highest stage (index) a lead reached at any week end: the funnel's outcome seam."""
    return lead.max_stage


def run_funnel(cp: CompiledPlaybook, request: FunnelRequest, *, playbook_name: str = "",
               rejects_writer: Any = None) -> dict[str, Any]:
    """Read the export once, decide it week by week, and return the funnel report (JSON-ready)."""
    refuse_accounts(cp, "engine funnel")
    weeks = Weeks.between(request.start, request.end)
    pb = cp.playbook
    stage_ids = pb.stage_ids()
    _check_fields(cp, request)
    sink = _Rejects(str(request.leads), rejects_writer)
    totals = _Totals(len(weeks), stage_ids)
    by: dict[str, _Groups] = {"source": _Groups(len(stage_ids) - 1), "persona": _Groups(len(stage_ids) - 1)}
    if request.segment is not None:
        by["segment"] = _Groups(len(stage_ids) - 1)
    accounts: dict[str, list[bool]] = {}
    opportunity = _opportunity_index(cp, request.opportunity_stage)
    unplaced = Unplaced()
    matched = [0]
    outcomes = _outcomes(request)
    won_weeks, lost_weeks = [0] * len(weeks), [0] * len(weeks)
    measured = {"leads": 0, "won": 0, "won_undated": 0, "won_outside": 0}

    def failed(lead: LeadRecord, error: Exception) -> None:
        sink(Reject(str(request.leads), lead.row, None, lead.lead_id,
                    f"evaluation failed: {type(error).__name__}: {error}"))

    with _no_cycle_collection():  # (see there: a third of the time on 100k leads)
        for lead in weekly(cp, _read(cp, request, sink, matched), weeks, unplaced, failed):
            totals.add(lead)
            reached = reached_steps(cp, lead)
            won = False
            if outcomes is not None:
                outcome = outcomes.get(lead.lead_id)
                if outcome is not None:
                    measured["leads"] += 1
                    won = outcome.converted
                    measured["won"] += won
                    if won and outcome.won_at is None:
                        measured["won_undated"] += 1
                    dates = ((outcome.won_at if won else None, won_weeks), (outcome.lost_at, lost_weeks))
                    for at, counts in dates:
                        if at is not None:
                            week = weeks.index_of(at)
                            if week is None:
                                measured["won_outside"] += counts is won_weeks
                            else:
                                counts[week] += 1
            source = lead.fields.get(pb.lead.source) if pb.lead.source else None
            by["source"].add(_key(source), reached, won)
            for persona in lead.personas or (NO_PERSONA,):
                by["persona"].add(persona, reached, won)
            if request.segment is not None:
                by["segment"].add(_key(lead.fields.get(request.segment)), reached, won)
            if request.account_field is not None:
                account = lead.fields.get(request.account_field)
                if account is not None and account != "":
                    flags = accounts.setdefault(str(account), [False, False, False])
                    flags[0] |= lead.target_account
                    flags[1] |= lead.target_lead
                    flags[2] |= opportunity is not None and reached >= opportunity
        totals.finish()
        simulation = simulate(pb, totals.episodes, weeks)
    return {
        "playbook": playbook_name,
        "from": weeks.starts[0].isoformat(),
        "to": weeks.ends[-1].isoformat(),
        "leads": {"read": totals.placed + unplaced.no_events + unplaced.after_period + sink.leads,
                  "placed": totals.placed, "no_events": unplaced.no_events,
                  "after_period": unplaced.after_period, "rejected": sink.leads},
        "events": {"read": matched[0] + sink.events, "matched": matched[0], "rejected": sink.events},
        "rejects": [f"{r.file}:{r.row}: {r.reason}" for r in sink.first],
        "stages": stage_ids,
        "weeks": _weeks(weeks, totals, simulation, (won_weeks, lost_weeks) if outcomes is not None else None),
        "days_between_stages": _medians(_pool(totals.days)),
        "queue": [vars(line) for line in simulation.last_queue],
        "kpis": {name: _rates(groups, stage_ids, outcomes is not None, opportunity)
                 for name, groups in by.items()},
        "outcomes": None if outcomes is None else {
            "file": outcomes.source, "rows_read": outcomes.rows_read, "rejected": outcomes.rejected,
            "rejects": [f"{r.file}:{r.row}: {r.reason}" for r in outcomes.rejects[:SHOWN_REJECTS]],
            "leads_measured": measured["leads"], "won": measured["won"],
            "won_undated": measured["won_undated"], "won_outside_weeks": measured["won_outside"]},
        "coverage": _coverage(request, accounts, stage_ids, opportunity),
        "notes": _notes(unplaced) + ([] if outcomes is not None else [
            "no outcomes (no --outcomes, and the leads file has none the mapping reads): won is the "
            "playbook's stage, e.g. from deal_won events"]),
    }


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused for the pass over the export.

    The pass keeps every lead's handoff episodes until the queues are played, and each
    full collection walks all of them: profiled on 100k bench leads, 28 s of CPU with
    it and 20 s without (it grows faster than the export). The pass makes no cycles
    worth collecting mid-way (reference counting frees the rest); the collector is
    back on, as it was, when the pass ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _outcomes(request: FunnelRequest) -> Outcomes | None:
    """The outcomes to count: --outcomes, else the leads file's when the mapping reads them
    there; None (the playbook's won stage, e.g. from deal_won events, is the outcome)."""
    spec = request.mapping.outcomes
    if request.outcomes is None and (spec is None or spec.source == "file"):
        return None
    from engine.io import InputError
    from engine.measure.outcomes import read_outcomes

    try:
        return read_outcomes(request.mapping, request.leads, request.outcomes, encoding=request.encoding)
    except InputError:
        if request.outcomes is not None:
            raise
        return None  # the leads file lacks the section's columns: stages only (the notes say so)


def _check_fields(cp: CompiledPlaybook, request: FunnelRequest) -> None:
    declared = list(cp.playbook.lead.fields)
    for option, name in (("--segment", request.segment), ("--account-field", request.account_field)):
        if name is not None and name not in declared:
            raise EngineError(f"{option} {name!r} is not a lead field of the playbook"
                              f"; declared fields: {', '.join(declared) or 'none'}")


def _opportunity_index(cp: CompiledPlaybook, stage: str | None) -> int | None:
    ids = cp.playbook.stage_ids()
    if stage is not None:
        if stage not in ids:
            raise EngineError(f"--opportunity-stage {stage!r} is not a stage of the playbook"
                              f"; stages: {', '.join(ids)}")
        return ids.index(stage)
    return next((i for i, s in enumerate(cp.playbook.stages) if s.owner == "field_sales"), None)


def _read(cp: CompiledPlaybook, request: FunnelRequest, sink: _Rejects,
          matched: list[int]) -> Iterator[tuple[LeadRecord, Sequence[Event]]]:
    """Each lead with its events, read once (the readers ``engine evaluate`` uses)."""
    allowed = frozenset(cp.playbook.events)
    leads = LeadsFile(request.leads, request.mapping, on_reject=sink, as_of=request.end,
                      allowed_types=allowed, encoding=request.encoding)
    events: EventsFile | tuple[LeadEvent, ...] = ()
    if request.events is not None:
        events = EventsFile(request.events, request.mapping, on_reject=sink, allowed_types=allowed,
                            encoding=request.encoding)
    pairs = iter_leads_with_events(leads, events, on_reject=sink)
    try:
        for lead, found in pairs:
            matched[0] += len(found) - len(lead.activity)
            yield lead, found
    finally:
        close = getattr(pairs, "close", None)
        if close is not None:
            close()


def _key(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def _weeks(weeks: Weeks, totals: _Totals, simulation: Simulation,
           outcomes: tuple[list[int], list[int]] | None) -> list[dict[str, Any]]:
    out = []
    for index, label in enumerate(weeks.labels()):
        extra = {} if outcomes is None else {
            "outcomes": {"won": outcomes[0][index], "lost": outcomes[1][index]}}
        out.append({**extra,
            "week": label,
            "end": weeks.ends[index].isoformat(),
            "new_leads": totals.new[index],
            "events": totals.events[index],
            "stages": dict(zip(totals.stage_ids, totals.stages[index], strict=True)),
            "excluded": totals.excluded[index],
            "transitions": dict(sorted(totals.transitions[index].items())),
            "handoffs": {team: row.to_dict() for team, row in simulation.weeks[index].items()},
            "days_between_stages": _medians(totals.days[index]),
        })
    return out


def _pool(weeks: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = {}
    for week in weeks:
        for pair, values in week.items():
            pooled.setdefault(pair, []).extend(values)
    return pooled


def _medians(days: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    """Median (and count) of days between stages, per pair of stages."""
    return {pair: {"median": round(statistics.median(values), 2), "leads": len(values)}
            for pair, values in sorted(days.items())}


def _rates(groups: _Groups, stage_ids: list[str], with_outcomes: bool = False,
           opportunity: int | None = None) -> dict[str, Any]:
    """Per value: leads, leads that reached each stage, and each step's rate from the one before;
    with outcomes, ``won`` (the outcome, not a stage) and its rates from the opportunity
    stage (when there is one) and from all leads."""
    out: dict[str, Any] = {}
    for key, row in sorted(groups.counts.items(), key=lambda kv: (-kv[1][0], kv[0])):
        won, row = row[-1], row[:-1]
        reached = dict(zip(stage_ids[1:], row[1:], strict=True))
        rates: dict[str, float | None] = {}
        before = row[0]
        for stage, count in reached.items():
            rates[f"→{stage}"] = round(count / before, 4) if before else None
            before = count
        rates["overall"] = round(row[-1] / row[0], 4) if row[0] else None
        out[key] = {"leads": row[0], "reached": reached, "rates": rates}
        if with_outcomes:
            base = row[opportunity] if opportunity is not None else None
            out[key]["won"] = won
            rates["won_of_opportunities"] = round(won / base, 4) if base else None
            rates["won_of_leads"] = round(won / row[0], 4) if row[0] else None
    return out


def _coverage(request: FunnelRequest, accounts: dict[str, list[bool]], stage_ids: list[str],
              opportunity: int | None) -> dict[str, Any] | None:
    if request.account_field is None:
        return None
    if request.accounts is not None:
        targets = set(request.accounts)
        basis = "the --accounts list"
    else:
        targets = {name for name, flags in accounts.items() if flags[0]}
        basis = "accounts whose leads the playbook marks target_account (no --accounts list given)"
    seen = [accounts[name] for name in targets if name in accounts]
    return {
        "field": request.account_field,
        "target_accounts": len(targets),
        "basis": basis,
        "with_lead": len(seen),
        "with_target_lead": sum(1 for flags in seen if flags[1]),
        "with_opportunity": sum(1 for flags in seen if flags[2]) if opportunity is not None else None,
        "opportunity_stage": stage_ids[opportunity] if opportunity is not None else None,
    }


def _notes(unplaced: Unplaced) -> list[str]:
    notes = []
    if unplaced.no_events:
        notes.append(f"{unplaced.no_events} lead(s) have no event, so no week to place them in: "
                     "not counted in any week")
    if unplaced.after_period:
        notes.append(f"{unplaced.after_period} lead(s) start after the last week: not counted")
    notes.append("days between stages count from the event that lifted a lead into a stage; a "
                 "stage reached by time alone (a window, decay) counts from that week's end")
    return notes


__all__ = ["COUNTS", "FunnelRequest", "run_funnel"]
