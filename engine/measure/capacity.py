"""Each team's weekly queue over time: capacity, carry-over, overflow routes, overdue handoffs.

The decisions say which lead each team should take at each week's end; this module
plays the weeks forward. A team works at most its capacity a week, best first (the
queue order of ``engine evaluate --queues``: priority, then due, then lead id); what it
does not work follows the team's ``overflow:`` — ``carry_over`` (the default): it waits
and ages into next week's queue; ``route``: it goes to another team this week. A waiting
handoff leaves the queue when the lead no longer holds it (lapsed: it went cold, was
excluded or moved on). A waiting handoff is overdue when the lead's decision at the week's
end says so (``engine.handoff_life``: its due time passed, sales did not accept it, and the
team logged no work on it since it was made) — one definition for evaluate and funnel. Due
is counted from when the handoff's condition first held (engine.due), or from the latest
activity for a handoff due from it.

A handoff is worked once: the same lead holding the same handoff next week is not new
work. A team without a capacity works everything the week it arrives.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from engine.measure.weeks import Episode, Weeks
from engine.model import Playbook
from engine.queues import route_of, team_order

#: Per team and week, in this order in every output.
COUNTS = ("capacity", "new", "carried_in", "overflow_in", "worked", "carried_over", "overflow_out",
          "lapsed", "overdue")


@dataclass
class _Waiting:
    """A handoff in a queue: the episode it belongs to, and the team whose queue it is in."""

    episode: Episode
    team: str
    due_ts: float
    status: str = "queued"


@dataclass
class TeamWeek:
    """One team in one week (see ``COUNTS``)."""

    capacity: int | None
    new: int = 0
    carried_in: int = 0
    overflow_in: int = 0
    worked: int = 0
    carried_over: int = 0
    overflow_out: int = 0
    lapsed: int = 0
    overdue: int = 0

    def to_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in COUNTS}


@dataclass
class QueueLine:
    """One handoff's place in a team's queue in the last week (for ``--queues``)."""

    team: str
    lead_id: str
    status: str
    priority: float | None
    due: str | None
    rule: str
    waited_weeks: int
    from_team: str


@dataclass
class Simulation:
    """Per week, per team: the counts; and the last week's queue lines."""

    weeks: list[dict[str, TeamWeek]] = field(default_factory=list)
    last_queue: list[QueueLine] = field(default_factory=list)


def simulate(playbook: Playbook, episodes: Iterable[Episode], weeks: Weeks) -> Simulation:
    """Play the weeks forward for every team that receives a handoff."""
    starts: dict[str, list[list[Episode]]] = {}
    for episode in episodes:
        by_week = starts.get(episode.team)
        if by_week is None:  # (not setdefault: that built 52 empty lists for every episode)
            by_week = starts[episode.team] = [[] for _ in weeks.ends]
        by_week[episode.start].append(episode)
    names = [t for t in playbook.teams if t in starts] + sorted(t for t in starts if t not in playbook.teams)
    for name in list(names):
        target = route_of(playbook, name)
        if target is not None and target not in names:
            names.append(target)
    order = team_order(playbook, names)
    capacity = {t: playbook.teams[t].capacity if t in playbook.teams else None for t in order}
    waiting: dict[str, list[_Waiting]] = {t: [] for t in order}
    result = Simulation()
    for week in range(len(weeks.ends)):
        rows = {t: TeamWeek(capacity[t]) for t in names}
        incoming: dict[str, list[_Waiting]] = {t: [] for t in order}
        last = week == len(weeks.ends) - 1
        for team in order:
            counts = rows.setdefault(team, TeamWeek(capacity[team]))
            queue: list[_Waiting] = []
            for item in waiting[team]:
                if item.episode.end >= week:
                    counts.carried_in += 1
                    item.status = "carried_over"
                    queue.append(item)
                else:
                    counts.lapsed += 1
            for episode in starts.get(team, [[]] * len(weeks.ends))[week]:
                counts.new += 1
                queue.append(_Waiting(episode, team, _due_ts(episode.due)))
            counts.overflow_in += len(incoming[team])
            queue.extend(incoming[team])
            cap = capacity[team]
            worked, rest = _best(queue, cap, week, ordered=last)
            counts.worked = len(worked)
            target = route_of(playbook, team)
            if last:
                result.last_queue.extend(_lines(team, worked, week, "queued"))
            if target is not None and rest:
                counts.overflow_out = len(rest)
                for item in rest:
                    item.status = "overflow"
                incoming[target].extend(rest)
                if last:
                    result.last_queue.extend(_lines(team, rest, week, "overflow"))
                rest = []
            counts.carried_over = len(rest)
            # the decision's own rule (engine.handoff_life): due passed, not accepted, no work since
            counts.overdue = sum(1 for item in rest if item.episode.overdue[week - item.episode.start])
            if last:
                result.last_queue.extend(_lines(team, rest, week, "carried_over"))
            waiting[team] = rest
        result.weeks.append(rows)
    return result


def _best(queue: list[_Waiting], cap: int | None, week: int, *, ordered: bool
          ) -> tuple[list[_Waiting], list[_Waiting]]:
    """The ``cap`` best of the queue (worked) and the rest, best first when ``ordered``.

    Only the last week's order is shown (``--queues``); before it only who is worked
    counts, and the rest is ranked again next week. So a week that is not the last
    picks the best with a partial selection (``heapq.nsmallest``, the same items a full
    sort puts first: ranks never tie, they end with the lead id and row) instead of
    sorting a carried-over queue that grows with every week over capacity.
    """
    if cap is not None and len(queue) > cap and not ordered:
        ranked = [(_rank(item, week), index) for index, item in enumerate(queue)]
        chosen = {index for _, index in heapq.nsmallest(cap, ranked)}
        return ([item for index, item in enumerate(queue) if index in chosen],
                [item for index, item in enumerate(queue) if index not in chosen])
    if ordered or (cap is not None and len(queue) > cap):
        queue.sort(key=lambda w: _rank(w, week))
    if cap is None:
        return queue, []
    return queue[:cap], queue[cap:]


def _rank(item: _Waiting, week: int) -> tuple[float, float, str, int]:
    """``engine.queues.sort_key`` with this week's priority (decay moves it week to week)."""
    episode = item.episode
    index = min(week, episode.end) - episode.start
    priority = episode.priorities[index]
    return (-(priority if priority is not None else float("-inf")), item.due_ts, episode.lead_id,
            episode.row)


def _due_ts(due: str | None) -> float:
    return datetime.fromisoformat(due).timestamp() if due else float("inf")


def _lines(team: str, items: list[_Waiting], week: int, status: str) -> list[QueueLine]:
    lines = []
    for item in items:
        episode = item.episode
        index = min(week, episode.end) - episode.start
        lines.append(QueueLine(team, episode.lead_id, status,
                               episode.priorities[index], episode.due, episode.rule,
                               week - episode.start, episode.team))
    return lines
