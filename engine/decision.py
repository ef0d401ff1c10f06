"""What a playbook decides about one lead at one instant, and the pieces that make it.

Below both :func:`engine.evaluate.decide` (the reference) and the generated kernel
(:mod:`engine.kernel`): the two build the same :class:`Decision`, round scores with
the same :func:`score`, and share the recycle and handoff rules here, so neither
imports the other. See :mod:`engine.evaluate` for the rules these implement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from math import floor
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from engine.compile import CompiledPlaybook, HandoffRule, RecycleRule

ROUND_DIGITS = 2
#: Computed points (a fit rule's ``points:`` expression) are clamped to ±POINTS_LIMIT, as
#: written points are, and put on the 2**-32 grid engagement is summed on (docs/scoring.md).
POINTS_LIMIT = 1000.0
QUANTUM = 4294967296.0  # 2**32
_MEMO_LIMIT = 100_000  # content ids remembered per playbook (bounded memory)


def score(value: float) -> float:
    """The one rounding rule for scores (see the module docstring)."""
    rounded = round(value, ROUND_DIGITS)
    return rounded + 0.0  # normalise -0.0


def computed_points(value: Any) -> float:
    """A points expression's value as the points a rule adds, the same on every backend.

    Missing (None: a lead field that is empty or absent, a division by zero) gives 0.
    A number is clamped to ±:data:`POINTS_LIMIT` (an overflow to infinity too; NaN,
    which only ``inf - inf`` makes, counts as the upper bound, where SQL orders it),
    then rounded to a whole number of 2**-32 points (``floor(v * 2**32 + 0.5) / 2**32``):
    every step is exact in doubles, so Python, the kernel and SQL agree to the bit, and
    sums of such points do not depend on the order of addition.
    """
    if type(value) is not int and type(value) is not float:
        return 0.0
    if value != value or value > POINTS_LIMIT:
        return POINTS_LIMIT
    if value < -POINTS_LIMIT:
        return -POINTS_LIMIT
    return floor(float(value) * QUANTUM + 0.5) / QUANTUM + 0.0


def cap_units(cap: float) -> int:
    """A cap in the whole 2**-32 units engagement is summed in (rounded half up)."""
    return floor(cap * QUANTUM + 0.5)


@dataclass(frozen=True)
class TraceStep:
    """One rule evaluated: where it is written, what it saw, what it gave."""

    section: str
    rule: str
    line: int
    expression: str
    result: Any
    seen: dict[str, Any]


@dataclass(frozen=True)
class Recycle:
    """Why a lead is held back, since and until when, and whether it re-entered early."""

    reason: str
    since: str
    until: str
    active: bool
    reentered: bool


@dataclass(frozen=True)
class Handoff:
    """Which rule handed the lead to which team, due when, how urgent."""

    rule: str
    to: str
    due: str | None
    priority: float | None
    #: Sales accepted it (docs/handoffs.md): it no longer counts toward overdue.
    accepted: bool = False
    #: The due time, when it passed with no work by the team since the handoff was made.
    overdue_since: str | None = None

    @classmethod
    def from_values(cls, rule: str, to: str, due: str | None, priority: float | None,
                    accepted: bool = False, overdue_since: str | None = None) -> Handoff:
        """The same Handoff, without the frozen ``__init__`` (see ``Decision.from_values``)."""
        handoff = object.__new__(cls)
        object.__setattr__(handoff, "__dict__", {"rule": rule, "to": to, "due": due, "priority": priority,
                                                 "accepted": accepted, "overdue_since": overdue_since})
        return handoff


@dataclass(frozen=True)
class Nurture:
    """A recycled lead's nurture track and the next content marketing sends it (or none left)."""

    track: str
    next_content: str | None


#: Subtracted from an excluded lead's fit + engagement in its ``score``: below any lead
#: that can be routed, yet still ordered among excluded leads (docs/evaluate.md).
EXCLUDED_SCORE_OFFSET = 1_000_000.0


def rank_score(excluded: str | None, fit: float, engagement: float, priority: float | None) -> float:
    """The ``score`` column: one ranking value for every decided lead.

    The handoff's priority where there is one; otherwise fit + engagement, rounded to two
    decimals; an excluded lead's fit + engagement minus :data:`EXCLUDED_SCORE_OFFSET`.
    The SQL query computes the same (``engine.sql.output``), to the bit.
    """
    base = round(fit + engagement, 2) + 0.0
    if excluded:
        return base - EXCLUDED_SCORE_OFFSET
    return priority if priority is not None else base


@dataclass(frozen=True)
class Column:
    """One column of the decision row: its name, its type (``string``, ``bool``, ``float64``:
    the Parquet type; a CSV spells a bool ``true``/``false``, a float as ``repr`` does, None
    as an empty cell) and whether it is an instant (ISO 8601 in the playbook's zone)."""

    name: str
    type: Literal["string", "bool", "float64"] = "string"
    instant: bool = False
    #: Decided for the export's week as a whole (capacity), not for the lead alone.
    week: bool = False


#: The decision row, declared once: ``Decision.to_row``/``to_cells`` write it in this order,
#: ``engine.batch`` heads files and types Parquet by it, and the SQL query
#: (:mod:`engine.sql.output`) and its writer (:mod:`engine.sql.decisions`) select it.
ROW: tuple[Column, ...] = (
    Column("lead_id"), Column("as_of", instant=True), Column("excluded"), Column("personas"),
    Column("target_account", "bool"), Column("target_lead", "bool"),
    Column("fit", "float64"), Column("engagement", "float64"), Column("surge", "bool"),
    Column("stage"), Column("owner"), Column("recycle_reason"), Column("recycle_until", instant=True),
    Column("route"), Column("handoff_rule"), Column("due", instant=True),
    Column("priority", "float64"), Column("score", "float64"), Column("rules"),
    Column("account"), Column("account_primary"), Column("account_contacts"),  # docs/accounts.md
    Column("handoff_accepted", "bool"), Column("overdue", "bool"), Column("overdue_since", instant=True),
    Column("nurture_track"), Column("next_content"),
    # Where a handed-off lead stands in its team's week (engine.queues.place): not the
    # lead's alone but the whole export's (capacity is shared), so a single decision
    # leaves them empty and `engine evaluate` fills them (the SQL query selects '' too).
    Column("queue", week=True), Column("queue_team", week=True),
)
ROW_COLUMNS: tuple[str, ...] = tuple(c.name for c in ROW)


@dataclass(frozen=True)
class Decision:
    """Everything a playbook decides about one lead at one instant."""

    lead_id: str
    as_of: str
    excluded: str | None
    personas: tuple[str, ...]
    target_account: bool
    target_lead: bool
    fit: float
    fit_breakdown: dict[str, float]
    engagement: float
    engagement_breakdown: dict[str, float]
    recent: int
    prior: int
    surge: bool
    stage: str
    owner: str
    recycle: Recycle | None
    handoff: Handoff | None
    trace: tuple[TraceStep, ...] = field(default=(), compare=False)
    #: The lead's account key ("" when it has none: its own account); on a contact whose
    #: account-level handoff went to another contact, that contact's lead id; on that
    #: primary contact, the account's other contacts (docs/accounts.md).
    account: str = ""
    account_primary: str = ""
    account_contacts: tuple[str, ...] = ()
    nurture: Nurture | None = None

    @property
    def route(self) -> str:
        """The team the lead goes to now: the handoff's, or none."""
        return self.handoff.to if self.handoff else "none"

    def to_dict(self, with_trace: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (stable key order; the trace only when asked)."""
        data = asdict(self)
        data["personas"] = list(self.personas)
        data["account_contacts"] = list(self.account_contacts)
        data.pop("trace")
        if with_trace:
            data["trace"] = [asdict(step) for step in self.trace]
        return data

    def _rules(self, recycle: Recycle | None, handoff: Handoff | None) -> str:
        """``";".join(self.deciding_rules())``, built in one go (once per exported lead)."""
        rules = f"exclusion:{self.excluded};stage:{self.stage}" if self.excluded else f"stage:{self.stage}"
        if recycle is not None:
            rules += f";recycle:{recycle.reason}"
        if handoff is not None:
            rules += f";handoff:{handoff.rule}"
        return rules

    def to_row(self) -> dict[str, Any]:
        """One flat output row per lead, for CSV / JSONL / Parquet exports."""
        recycle = self.recycle if self.recycle is not None and self.recycle.active else None
        handoff = self.handoff
        rules = self._rules(recycle, handoff)
        return dict(zip(ROW_COLUMNS, (  # in ROW's order
            self.lead_id,
            self.as_of,
            self.excluded or "",
            ";".join(self.personas),
            self.target_account,
            self.target_lead,
            self.fit,
            self.engagement,
            self.surge,
            self.stage,
            self.owner,
            recycle.reason if recycle is not None else "",
            recycle.until if recycle is not None else "",
            handoff.to if handoff is not None else "none",
            handoff.rule if handoff is not None else "",
            (handoff.due or "") if handoff is not None else "",
            handoff.priority if handoff is not None else None,
            rank_score(self.excluded, self.fit, self.engagement,
                       handoff.priority if handoff is not None else None),
            rules,
            self.account,
            self.account_primary,
            ";".join(self.account_contacts),
            *self._life_values(handoff),
            "",
            "",
        ), strict=True))

    def _life_values(self, handoff: Handoff | None) -> tuple[bool, bool, str, str, str]:
        """The handoff's life columns: accepted, overdue, since when; the nurture track, next content."""
        nurture = self.nurture
        since = handoff.overdue_since if handoff is not None else None
        return (handoff is not None and handoff.accepted, since is not None, since or "",
                nurture.track if nurture is not None else "",
                (nurture.next_content or "") if nurture is not None else "")

    def to_cells(self) -> list[str]:
        """``to_row()``'s values as CSV text, spelled as ``engine.io.writers.format_cell``
        spells them (tests/test_batch.py keeps the two equal): a CSV export writes a
        million of these, and skipping the dict and the per-cell dispatch halves the cost."""
        recycle = self.recycle if self.recycle is not None and self.recycle.active else None
        handoff = self.handoff
        rules = self._rules(recycle, handoff)
        if handoff is not None:
            priority = handoff.priority
            routed = [handoff.to, handoff.rule, handoff.due or "", "" if priority is None else repr(priority)]
        else:
            priority = None
            routed = ["none", "", "", ""]
        return [
            self.lead_id, self.as_of, self.excluded or "", ";".join(self.personas),
            "true" if self.target_account else "false", "true" if self.target_lead else "false",
            repr(self.fit), repr(self.engagement), "true" if self.surge else "false",
            self.stage, self.owner,
            recycle.reason if recycle is not None else "", recycle.until if recycle is not None else "",
            *routed, repr(rank_score(self.excluded, self.fit, self.engagement, priority)), rules,
            self.account, self.account_primary, ";".join(self.account_contacts),
            *("true" if v is True else "false" if v is False else v for v in self._life_values(handoff)),
            "", "",
        ]

    @classmethod
    def from_values(
        cls, lead_id: str, as_of: str, excluded: str | None, personas: tuple[str, ...],
        target_account: bool, target_lead: bool, fit: float, fit_breakdown: dict[str, float],
        engagement: float, engagement_breakdown: dict[str, float], recent: int, prior: int,
        surge: bool, stage: str, owner: str, recycle: Recycle | None, handoff: Handoff | None,
        nurture: Nurture | None = None,
    ) -> Decision:
        """The same Decision (no trace), without the frozen ``__init__``.

        Frozen dataclasses set each field through ``object.__setattr__``; the batch
        kernel makes one Decision per lead, and one dict is several times cheaper.
        """
        decision = object.__new__(cls)
        object.__setattr__(decision, "__dict__", {
            "lead_id": lead_id, "as_of": as_of, "excluded": excluded, "personas": personas,
            "target_account": target_account, "target_lead": target_lead, "fit": fit,
            "fit_breakdown": fit_breakdown, "engagement": engagement,
            "engagement_breakdown": engagement_breakdown, "recent": recent, "prior": prior,
            "surge": surge, "stage": stage, "owner": owner, "recycle": recycle, "handoff": handoff,
            "trace": (), "nurture": nurture,
        })
        return decision

    def deciding_rules(self) -> list[str]:
        """The ids of the rules that decided: exclusion, stage, recycle, handoff."""
        rules = [f"exclusion:{self.excluded}"] if self.excluded else []
        rules.append(f"stage:{self.stage}")
        if self.recycle and self.recycle.active:
            rules.append(f"recycle:{self.recycle.reason}")
        if self.handoff:
            rules.append(f"handoff:{self.handoff.rule}")
        return rules


def _iso(cp: CompiledPlaybook, instant: datetime) -> str:
    return instant.astimezone(cp.tz).isoformat()


def recycle_state(cp: CompiledPlaybook, rule: RecycleRule, recycled_at: datetime, as_of: datetime,
                  reentered: bool) -> tuple[Recycle, bool, datetime | None]:
    """A trigger's state: (Recycle, held now, when the cooldown ran out if it did unbroken).

    Shared with the batch kernel, which finds the trigger its own way.
    """
    until = recycled_at + timedelta(seconds=rule.cooldown_seconds)
    active = as_of < until and not reentered
    state = Recycle(rule.rule.id, _iso(cp, recycled_at), _iso(cp, until), active, reentered)
    return state, active, (until if not active and not reentered else None)


def handoff_of(cp: CompiledPlaybook, handoff: HandoffRule, lead: Mapping[str, Any], priority_value: Any,
               anchor: Callable[[], datetime], released: datetime | None) -> Handoff:
    """The Handoff a rule that fired makes: its priority rounded, its due time.

    ``anchor`` gives the instant the handoff's condition first held (``engine.due``);
    it is asked only when an SLA applies. Shared with the batch kernel.
    """
    priority = None if handoff.priority is None else priority_of(priority_value)
    slas = [s for s in (handoff.sla_seconds, _source_sla(cp, lead)) if s is not None]
    due = None
    if slas:
        start = anchor()
        if released is not None and released > start:
            start = released  # the cooldown ended after the condition held
        due = _iso(cp, start + timedelta(seconds=min(slas)))
    return Handoff.from_values(handoff.rule.id, handoff.to, due, priority)


def priority_of(value: Any) -> float | None:
    """A handoff's priority: its expression's number, rounded as scores are; else none."""
    return score(float(value)) if isinstance(value, int | float) else None


def _source_sla(cp: CompiledPlaybook, lead: Mapping[str, Any]) -> int | None:
    field_name = cp.playbook.lead.source
    if field_name is None:
        return None
    source = lead.get(field_name)
    return cp.sources.get(str(source)) if source is not None else None
