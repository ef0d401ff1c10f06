"""The playbook language as pydantic models: the one place that states it.

The JSON Schema in ``schemas/`` is generated from these classes (``engine
schema``), never written by hand. Models check shape only — types, required
keys, unknown keys, durations, identifiers. Whether a stage named in a handoff
exists, or an expression type-checks, is ``check.py``'s job, because those
findings need the whole playbook and positions inside strings.

The model and the schema accept the same documents (``tests/test_schema_agreement.py``),
so an editor's squiggles and ``engine validate`` never disagree: models are strict
(no ``true`` as points, no ``"5"`` as a number, no ``1`` as a boolean), an integer may be
written ``2.0`` as JSON Schema allows, and rules the schema states with combinators
(a fit rule's two forms) are stated there too. Two checks have no schema form and
keep codes of their own: a time zone must exist (``E-TIMEZONE``) and a duration must
be at most ten years (``E-DURATION``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.durations import DurationError, parse_seconds

#: Identifiers: lower-case words joined by ``_`` or ``-`` (stage ids, rule ids, teams).
ID_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
DURATION_PATTERN = r"^\s*\d{1,6}\s*[smhdw]\s*$"

Id = Annotated[str, Field(pattern=ID_PATTERN, description="A lower-case identifier.")]
Expr = Annotated[
    str,
    Field(
        min_length=1,
        description="An expression (see README: expression language), e.g. `fit >= 30`.",
        json_schema_extra={"x-engine-expression": True},
    ),
]


def _check_duration(value: str) -> str:
    try:
        parse_seconds(value)
    except DurationError as exc:
        raise PydanticCustomError("duration", str(exc)) from None
    return value


def _integral(value: Any) -> Any:
    """``2.0`` is an integer to JSON Schema; anything else goes to the strict check as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


DurationStr = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, description="A duration: a whole number and s/m/h/d/w, e.g. `14d`."),
    AfterValidator(_check_duration),
]

Section = Literal[
    "teams", "lead", "events", "lists", "personas", "targets", "content", "scoring",
    "exclusions", "stages", "handoffs", "recycle", "sources", "plan", "nurture",
]
SECTIONS: tuple[str, ...] = Section.__args__  # type: ignore[attr-defined]
#: Keys of ``metadata.owners``: the rule sections, ``metadata`` and ``timezone`` themselves,
#: and ``default`` — who owns every section that names no owners of its own.
OwnedKey = Literal[
    "default", "metadata", "timezone",
    "teams", "lead", "events", "lists", "personas", "targets", "content", "scoring",
    "exclusions", "stages", "handoffs", "recycle", "sources", "nurture",
]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are never coerced, immutable once loaded.

    ``defer_build``: the validators are built when a playbook is first loaded, not one
    per model at import, which every ``engine`` command paid for (``engine evaluate`` on
    1,000 leads: 0.97× the wall time; ``engine validate`` the same; issue #17)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False,
                              strict=True, defer_build=True)


class Metadata(Strict):
    """Who the playbook is and who must approve changes to each section."""

    name: Annotated[str, Field(pattern=ID_PATTERN)]
    version: str = Field(description="The playbook's own version, e.g. `2026.11.1`.")
    description: str | None = None
    owners: dict[OwnedKey, list[str]] = Field(
        default_factory=dict,
        description="Per section, the teams or people whose approval a change needs; "
                    "`default` owns every section not named.",
    )

    def owners_of(self, section: str) -> list[str]:
        """Who approves a change to ``section``: its own owners, else the ``default`` ones."""
        table: dict[str, list[str]] = {str(key): value for key, value in self.owners.items()}
        return list(table.get(section) or table.get("default", []))


class Overflow(Strict):
    """What happens to a week's handoffs beyond the team's capacity (never a silent route).

    ``carry_over``: they wait and age into next week's queue. ``route``: they go to the
    team named by ``to`` this week (e.g. marketing nurture).
    """

    then: Literal["carry_over", "route"] = "carry_over"
    to: Id | None = Field(default=None, description="With `then: route`: the team that takes them.")

    @model_validator(mode="after")
    def _target(self) -> Overflow:
        if self.then == "route" and self.to is None:
            raise ValueError("`then: route` needs `to`: the team that takes the overflow")
        if self.then == "carry_over" and self.to is not None:
            raise ValueError("`to` is only read with `then: route`")
        return self


class Team(Strict):
    """A team of THE MODEL and the weekly capacity it can absorb."""

    description: str | None = None
    reps: Annotated[int, Field(ge=0, le=100_000)] | None = None
    slots_per_rep_per_week: Annotated[int, Field(ge=0, le=10_000)] | None = None
    handoffs_per_week: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    overflow: Overflow | None = Field(
        default=None, description="Beyond capacity: carry over (the default) or route to a team."
    )

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        # On the model, not the fields: a field validator would hide the bounds from the schema.
        if isinstance(data, dict):
            return {k: _integral(v) for k, v in data.items()}
        return data

    @property
    def capacity(self) -> int | None:
        """Handoffs the team can take in a week, if the playbook says."""
        if self.handoffs_per_week is not None:
            return self.handoffs_per_week
        if self.reps is not None and self.slots_per_rep_per_week is not None:
            return self.reps * self.slots_per_rep_per_week
        return None


FieldType = Literal["string", "number", "bool", "datetime"]


class AccountFromDomain(Strict):
    """An account keyed by the domain of an email field: the text after its last ``@``."""

    domain_of: str = Field(description="The lead field holding an email address.")
    unless_in: str | None = Field(
        default=None,
        description="A list of domains that are no company (freemail: gmail.com, yahoo.co.jp): "
                    "a lead at one of them is its own account. Entries lower-case.")


class Lead(Strict):
    """The lead attributes expressions may read (``lead.title``) and their types."""

    fields: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")], FieldType] = Field(
        default_factory=dict
    )
    source: str | None = Field(
        default=None, description="The lead field holding the lead source (for `sources`)."
    )
    account: str | AccountFromDomain | None = Field(
        default=None,
        description="Which account a lead belongs to (docs/accounts.md): the lead field holding "
                    "an account id, or `{domain_of: email}` for the company domain of an email "
                    "field (lower-cased). A lead with none is its own account.",
    )


class EventType(Strict):
    """An activity type the exports carry, and the fields each event of it has."""

    description: str | None = None
    fields: list[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")]] = Field(
        default_factory=list
    )
    by: Id | None = Field(
        default=None,
        description="The team whose work this event records (e.g. `inside_sales` for `call`): "
        "sales activity that keeps a handoff to that team from being overdue (docs/handoffs.md).",
    )
    handoff: Literal["accepted", "rejected"] | None = Field(
        default=None,
        description="Sales' answer to a handoff: `accepted` (needs a `team` field) or `rejected` "
        "(needs `reason`, a recycle reason; `team` optional) — docs/handoffs.md.",
    )


class Persona(Strict):
    """A kind of person (seed 004: company, organisation, individual personas)."""

    description: str | None = None
    when: Expr


class Targets(Strict):
    """Target accounts and target leads are separate conditions (seed 004)."""

    accounts: Expr | None = None
    leads: Expr | None = None


class ContentItem(Strict):
    """What a piece of content says about the reader's stage (seed 003)."""

    kind: str | None = None
    topic: str | None = None
    stage: str | None = Field(default=None, description="The stage a reader of this is at.")
    points: float | None = Field(default=None, ge=-1000, le=1000)
    description: str | None = None


Points = Annotated[float, Field(ge=-1000, le=1000)]
#: A cap on what one rule or one event type contributes (docs/scoring.md).
Cap = Annotated[float, Field(gt=0, le=100_000)]
PointsExpr = Annotated[
    str,
    Field(
        min_length=1,
        description="Points computed from the lead, an expression of type number, e.g. "
        "`min(lead.time_on_site / 60, 20)`: clamped to ±1000 and rounded to 2**-32 "
        "(docs/scoring.md); missing gives 0.",
        json_schema_extra={"x-engine-expression": True},
    ),
]
#: A fit rule's points: a number, or an expression of type number.
FitPoints = Points | PointsExpr


class FitBranch(Strict):
    """One branch of a first-of group: the first branch that holds scores."""

    when: Expr
    points: FitPoints


class FitRule(Strict):
    """An attribute (fit) rule: points when a condition holds, or a first-of group."""

    id: Id
    description: str | None = None
    when: Expr | None = None
    points: FitPoints | None = None
    first_of: list[FitBranch] | None = Field(default=None, min_length=1)
    cap: Cap | None = Field(
        default=None, description="The most this rule contributes (whichever branch holds)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> FitRule:
        simple = self.when is not None or self.points is not None
        if simple and self.first_of is not None:
            raise ValueError("a fit rule has either `when` and `points`, or `first_of`, not both")
        if not simple and self.first_of is None:
            raise ValueError("a fit rule needs `when` and `points`, or `first_of`")
        if simple and (self.when is None or self.points is None):
            missing = "points" if self.points is None else "when"
            raise ValueError(f"a fit rule with `when` needs `points` too (missing `{missing}`)")
        return self


class Fit(Strict):
    """Attribute score: how close the lead is to the ideal target (seed 001)."""

    cap: Annotated[float, Field(gt=0, le=100_000)] | None = None
    rules: list[FitRule] = Field(default_factory=list)


class ContentPoints(Strict):
    """Points for the events of one content id or glob, with the most they add together."""

    points: Points
    cap: Cap = Field(description="The most this content's decayed points add (docs/scoring.md).")


class EventPoints(Strict):
    """Points for one event type, with per-content overrides (content globs)."""

    points: Annotated[float, Field(ge=-1000, le=1000)]
    cap: Cap | None = Field(
        default=None,
        description="The most this event type's decayed points add to engagement, before the "
        "overall cap (docs/scoring.md).",
    )
    content: dict[str, Points | ContentPoints] | Literal["catalogue"] | None = (
        Field(
            default=None,
            description="Per-content points (glob → points, or `{points, cap}`), or `catalogue` to "
            "use the content catalogue's points where the event's content has some.",
        )
    )

    def content_points(self) -> dict[str, float]:
        """Glob → points of the per-content table (empty for none or `catalogue`)."""
        if not isinstance(self.content, dict):
            return {}
        return {k: v.points if isinstance(v, ContentPoints) else v for k, v in self.content.items()}

    def content_caps(self) -> dict[str, float]:
        """Glob → cap, for the globs of the per-content table that have one."""
        if not isinstance(self.content, dict):
            return {}
        return {k: v.cap for k, v in self.content.items() if isinstance(v, ContentPoints)}


class Engagement(Strict):
    """Behaviour score: decayed points per activity (seeds 001, 003)."""

    half_life: DurationStr | None = Field(default=None, description="Exponential decay half-life.")
    window: DurationStr | None = Field(default=None, description="Only events this recent count.")
    cap: Annotated[float, Field(gt=0, le=100_000)] | None = None
    points: dict[str, Annotated[float, Field(ge=-1000, le=1000)] | EventPoints] = Field(
        default_factory=dict
    )


class Surge(Strict):
    """Who was quiet and is now active: this window against the one before (seed 003)."""

    window: DurationStr
    when: Expr = Field(description="Uses `recent` and `prior` event counts.")
    events: list[str] | None = Field(default=None, description="Event types counted (all if absent).")


class Scoring(Strict):
    """Fit, engagement and surge: the three axes of seeds 001 and 003."""

    fit: Fit | None = None
    engagement: Engagement | None = None
    surge: Surge | None = None


class Exclusion(Strict):
    """Leads that will never buy (seed 001): kept and scored, never routed."""

    id: Id
    when: Expr
    description: str | None = None


class Stage(Strict):
    """A customer stage owned by one team; the highest whose entry holds wins."""

    id: Id
    owner: str
    entry: Expr | None = Field(default=None, description="Absent: the stage always holds.")
    sticky: bool = Field(
        default=False, description="Once reached at any event, the lead stays at least here."
    )
    description: str | None = None


class Handoff(Strict):
    """A toss-up condition agreed between sales and inside sales (seed 004)."""

    id: Id
    to: str
    when: Expr
    sla: DurationStr | None = None
    priority: Expr | None = Field(default=None, description="A number; higher is called first.")
    per: Literal["lead", "account"] = Field(
        default="lead",
        description="`account`: one handoff per account, to its highest-priority qualifying "
                    "contact; the account's other contacts are listed under it (docs/accounts.md).",
    )
    description: str | None = None
    due_from: Literal["condition", "latest_activity"] = Field(
        default="condition",
        description="Where the SLA starts: when the condition first held (an exact form, see "
        "docs/due.md), or the latest activity (say so for a condition that has no exact form).",
    )


class RecycleReason(Strict):
    """Why a lead is not moving, and when to approach it again (seeds 001, 003)."""

    on: str = Field(
        default="disposition",
        description="Event type that starts it. For `disposition`, the event's `reason` field "
        "must equal this reason's key.",
    )
    cooldown: DurationStr
    reenter_when: Expr | None = Field(
        default=None, description="Ends the cooldown early, e.g. `engagement_since_recycle >= 30`."
    )
    nurture: Id | None = Field(
        default=None, description="The nurture track (under `nurture:`) whose content marketing "
        "sends a lead recycled for this reason.",
    )
    description: str | None = None


class Source(Strict):
    """Follow-up timing per lead source (seed 001: an enquiry is called at once)."""

    follow_up_within: DurationStr


Rate = Annotated[float, Field(gt=0, le=1)]
Money = Annotated[float, Field(ge=0, le=1e15)]


class PlanStep(Strict):
    """One step of the plan's funnel: a stage, and the share of the previous step reaching it."""

    stage: Id
    rate: Rate | Literal["measured"] = Field(
        description="Share of the previous step (of all leads, for the first) that reaches this "
        "stage: a number in (0, 1], or `measured` to take it from `engine funnel` (--funnel)."
    )
    description: str | None = None


class Channel(Strict):
    """A lead source's spend and expected volume, for forward simulation and CAC/LTV."""

    budget: Money | None = Field(default=None, description="Spend over the plan's period.")
    leads_per_week: Annotated[float, Field(ge=0, le=1e9)] | None = Field(
        default=None, description="Leads expected from this source each week."
    )
    lifetime_value: Money | None = Field(default=None, description="Overrides the plan's for this source.")
    description: str | None = None


class Plan(Strict):
    """The revenue plan (THE MODEL, seed 004): a target, simulated backwards through the funnel."""

    period: DurationStr = Field(description="The target's period, e.g. `13w` for a quarter.")
    won_target: Annotated[int, Field(gt=0, le=1_000_000_000)] | None = Field(
        default=None, description="Deals to win over the period (or give `revenue_target`)."
    )
    revenue_target: Annotated[float, Field(gt=0, le=1e15)] | None = Field(
        default=None, description="Revenue to win over the period; deals = this / `deal_size`."
    )
    deal_size: Annotated[float, Field(gt=0, le=1e12)] = Field(description="Average revenue of a won deal.")
    lifetime_value: Money | None = Field(
        default=None, description="Revenue a won customer brings over its life (default: `deal_size`)."
    )
    steps: list[PlanStep] = Field(min_length=1, description="The funnel after `lead`, in stage order.")
    channels: dict[str, Channel] = Field(
        default_factory=dict, description="Per lead source value: budget and expected leads."
    )

    @model_validator(mode="after")
    def _one_target(self) -> Plan:
        if (self.won_target is None) == (self.revenue_target is None):
            raise ValueError("a plan needs one target: `won_target` or `revenue_target`")
        return self


class Playbook(Strict):
    """A revenue playbook: THE MODEL's stages, scores and handoffs as reviewable code."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        defer_build=True,
        json_schema_extra={"title": "Revenue playbook"},
    )

    apiVersion: Literal["engine/v1"]
    kind: Literal["Playbook"]
    metadata: Metadata
    timezone: str = Field(default="UTC", description="IANA zone for naive timestamps.")
    teams: dict[Id, Team] = Field(default_factory=dict)
    lead: Lead = Field(default_factory=Lead)
    events: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")], EventType] = Field(
        default_factory=dict
    )
    lists: dict[Id, str | list[str]] = Field(
        default_factory=dict,
        description="Named lists: inline items, or a path (relative to the playbook) to a file "
        "with one item per line.",
    )
    personas: dict[Id, Persona] = Field(default_factory=dict)
    targets: Targets = Field(default_factory=Targets)
    content: dict[str, ContentItem] = Field(
        default_factory=dict, description="Content id or glob (`case-study-*`) → what it signals."
    )
    scoring: Scoring = Field(default_factory=Scoring)
    exclusions: list[Exclusion] = Field(default_factory=list)
    stages: list[Stage] = Field(min_length=1)
    handoffs: list[Handoff] = Field(default_factory=list)
    recycle: dict[Id, RecycleReason] = Field(default_factory=dict)
    sources: dict[str, Source] = Field(default_factory=dict)
    plan: Plan | None = Field(default=None, description="Revenue target and funnel rates (`engine plan`).")
    nurture: dict[Id, dict[Id, list[str]]] = Field(
        default_factory=dict,
        description="Nurture tracks: track → stage → content ids, in the order marketing sends "
        "them (a recycle reason names its track; docs/handoffs.md).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", "unknown time zone {zone}; use an IANA name like Asia/Tokyo",
                {"zone": repr(value)}) from None
        return value

    def stage_ids(self) -> list[str]:
        """Stage ids in order, lowest first."""
        return [s.id for s in self.stages]


def _keys_by_name(node: Any) -> Any:
    """``patternProperties`` → ``propertyNames`` + ``additionalProperties``, everywhere.

    pydantic states a mapping with constrained keys (``teams: {id: Team}``) as
    ``patternProperties``, which leaves a key that does not match unchecked and its
    value free; the model refuses that key, so the schema must too.
    """
    if isinstance(node, list):
        return [_keys_by_name(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _keys_by_name(value) for key, value in node.items()}
    patterns = out.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in out:
        (pattern, value), = patterns.items()
        del out["patternProperties"]
        out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
        out["additionalProperties"] = value
    return out


def _present(name: str) -> dict[str, Any]:
    """JSON Schema for "``name`` is given and not null" (the model treats null as absent)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


#: A fit rule's two forms, as its model validator checks them (see FitRule._one_form).
_FIT_RULE_FORMS = {"anyOf": [
    {"allOf": [_present("when"), _present("points"), {"not": _present("first_of")}]},
    {"allOf": [_present("first_of"), {"not": _present("when")}, {"not": _present("points")}]},
]}


_ROUTE = {"required": ["then"], "properties": {"then": {"const": "route"}}}
#: An overflow's two forms, as Overflow._target checks them.
_OVERFLOW_FORMS = {"anyOf": [
    {"allOf": [_ROUTE, _present("to")]},
    {"allOf": [{"not": _ROUTE}, {"not": _present("to")}]},
]}
#: A plan's one target, as Plan._one_target checks it.
_PLAN_TARGET = {"anyOf": [
    {"allOf": [_present("won_target"), {"not": _present("revenue_target")}]},
    {"allOf": [_present("revenue_target"), {"not": _present("won_target")}]},
]}


def json_schema() -> dict[str, Any]:
    """The playbook JSON Schema (draft 2020-12), as committed in ``schemas/``."""
    schema = _keys_by_name(Playbook.model_json_schema())
    schema["$defs"]["FitRule"].update(_FIT_RULE_FORMS)
    schema["$defs"]["Overflow"].update(_OVERFLOW_FORMS)
    schema["$defs"]["Plan"].update(_PLAN_TARGET)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/engine/playbook.schema.json",
        **schema,
    }
    return schema
