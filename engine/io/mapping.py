"""Column mappings: which export column feeds which lead field or event attribute.

Mappings are data, not code (like sqlglot dialects): each CRM is a YAML preset under
``engine/presets/`` and a team's own export is one more YAML file. The pydantic models
below are the single statement of the format; unknown keys are refused so a typo in a
mapping is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.io.errors import InputError

FieldType = Literal["string", "number", "integer", "bool", "datetime"]

DEFAULT_TRUE = ["true", "t", "yes", "y", "1", "on", "はい", "有"]
DEFAULT_FALSE = ["false", "f", "no", "n", "0", "off", "いいえ", "無"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One field taken from one column; the short form ``name: Column`` means a string."""

    column: str = Field(min_length=1)
    type: FieldType = "string"
    formats: list[str] | None = Field(default=None, description="datetime formats (strptime)")
    null_values: list[str] | None = None
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    optional: bool | None = Field(
        default=None,
        description="the column may be missing from the file: the field is then empty for every "
                    "row and the run's summary says so (default: not optional, unless the "
                    "section says fields_required: false)",
    )
    after_contact: bool = Field(
        default=False,
        description="written by sales after contacting the lead (notes, dispositions): a rule "
                    "reading it gets a warning, and backtest figures are optimistic",
    )


class AtColumn(_Strict):
    """An activity rule's time read from a column of the lead row."""

    column: str = Field(min_length=1)
    formats: list[str] | None = None


class ActivityRule(_Strict):
    """Events synthesized from a lead row's aggregate columns (exports without an event log).

    Without ``count_column`` a matching row yields one event; with it, as many as the
    column says. ``at: as_of`` stamps the events with the run's as-of time.
    """

    type: str = Field(min_length=1)
    at: Literal["as_of"] | AtColumn
    count_column: str | None = None
    when_column_equals: dict[str, str | list[str]] | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    max_count: int = Field(default=1000, ge=1, le=1_000_000)
    after_contact: bool = Field(default=False, description="read from a column written after sales "
                                                           "contact: engagement on this type is warned about")


class LeadsMapping(_Strict):
    """How the leads file becomes :class:`~engine.io.records.LeadRecord`s."""

    id: str = Field(min_length=1, description="the lead id column")
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)
    fields_required: bool = Field(default=True, description="false: every field is optional")
    activity: list[ActivityRule] = Field(default_factory=list)


class EventsMapping(_Strict):
    """How an activity export becomes :class:`~engine.events.Event`s."""

    lead_id: str = Field(min_length=1)
    at: str = Field(min_length=1, description="the timestamp column")
    type: str | None = Field(default=None, description="the event type column")
    type_constant: str | None = Field(default=None, description="every row is this type")
    id: str | None = None
    types: dict[str, str] = Field(default_factory=dict, description="rename type values")
    formats: list[str] | None = None
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)
    fields_required: bool = Field(default=True, description="false: every field is optional")

    @model_validator(mode="after")
    def _one_type_source(self) -> EventsMapping:
        if (self.type is None) == (self.type_constant is None):
            raise ValueError("give exactly one of 'type' (a column) or 'type_constant'")
        return self


class ConvertedSpec(_Strict):
    """Which cell means converted: a yes/no column, or a column whose value is one of ``values``."""

    column: str = Field(min_length=1)
    values: list[str] | None = Field(
        default=None, description="converted when the cell is one of these (e.g. HubSpot "
                                  "lifecycle stage `customer`); any other value is not converted")
    true_values: list[str] | None = None
    false_values: list[str] | None = None


class OutcomesMapping(_Strict):
    """What happened to each lead *after* the decision: the measured side, never a lead field.

    ``source: leads`` reads the outcome columns from the leads file; ``source: file``
    from ``--outcomes FILE`` (one row per lead, e.g. Salesforce Opportunities, HubSpot
    deals, Olist closed deals). Without ``converted``, a lead with a row in the outcomes
    file converted and every other lead did not.
    """

    source: Literal["leads", "file"] = "leads"
    lead_id: str | None = Field(default=None, description="the outcomes file's lead id column")
    converted: str | ConvertedSpec | None = None
    opportunity_at: str | None = Field(default=None, description="when an opportunity was opened")
    won_at: str | None = Field(default=None, description="when the deal was won (the conversion date)")
    lost_at: str | None = None
    amount: str | None = None
    lost_reason: str | None = None

    @model_validator(mode="after")
    def _says_what_converted(self) -> OutcomesMapping:
        if self.source == "leads" and self.converted is None:
            raise ValueError("outcomes read from the leads file need a 'converted' column")
        if self.source == "file" and self.lead_id is None:
            raise ValueError("outcomes read from a file (source: file) need its 'lead_id' column")
        return self

    def columns(self) -> dict[str, str]:
        """Outcome name → the column it is read from (the names a rule may never read)."""
        converted = self.converted.column if isinstance(self.converted, ConvertedSpec) else self.converted
        named = {"converted": converted, "opportunity_at": self.opportunity_at, "won_at": self.won_at,
                 "lost_at": self.lost_at, "amount": self.amount, "lost_reason": self.lost_reason}
        return {name: column for name, column in named.items() if column is not None}


class Mapping(_Strict):
    """A whole mapping file."""

    version: Literal[1] = 1
    name: str | None = None
    description: str | None = None
    encoding: str | None = None
    #: The zone of naive timestamps. Presets leave it out — a preset cannot know a CRM
    #: account's zone — and ``engine evaluate`` then uses the playbook's (issue #13, item 3).
    timezone: str | None = None
    timestamp_formats: list[str] = Field(default_factory=list)
    null_values: list[str] = Field(default_factory=lambda: [""])
    true_values: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUE))
    false_values: list[str] = Field(default_factory=lambda: list(DEFAULT_FALSE))
    leads: LeadsMapping
    events: EventsMapping | None = None
    outcomes: OutcomesMapping | None = None

    @model_validator(mode="after")
    def _outcomes_are_not_fields(self) -> Mapping:
        """An outcome column mapped as a lead field would let a rule score on the result itself."""
        if self.outcomes is None or self.outcomes.source != "leads":
            return self
        outcome_columns = set(self.outcomes.columns().values())
        for name, spec in self.leads.fields.items():
            column = field_spec(spec).column
            if column in outcome_columns:
                raise ValueError(f"leads.fields.{name}: column {column!r} is an outcome (outcomes "
                                 "section); a rule must never read an outcome, remove the field")
        return self

    def after_contact_fields(self) -> dict[str, str]:
        """Lead field → column, for the fields marked ``after_contact: true``."""
        return {name: spec.column for name, spec in self.leads.fields.items()
                if isinstance(spec, FieldSpec) and spec.after_contact}


def field_spec(spec: str | FieldSpec) -> FieldSpec:
    """The long form of a field entry."""
    return FieldSpec(column=spec) if isinstance(spec, str) else spec


def is_optional(spec: FieldSpec, fields_required: bool) -> bool:
    """Whether the field's column may be missing from the file (then it is reported)."""
    return spec.optional if spec.optional is not None else not fields_required


def with_timezone(mapping: Mapping, zone: str) -> Mapping:
    """``mapping`` reading naive timestamps in ``zone``."""
    return mapping.model_copy(update={"timezone": zone})


def in_zone_unless_set(mapping: Mapping, zone: str) -> Mapping:
    """``mapping`` as every command reads an export: naive timestamps in the mapping file's
    own zone, else in ``zone`` (the playbook's); presets set none (issue #13)."""
    return mapping if mapping.timezone else with_timezone(mapping, zone)


def preset_names() -> list[str]:
    """Names accepted by ``--mapping NAME``."""
    folder = resources.files("engine") / "presets"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def load_mapping(name_or_path: str | Path) -> Mapping:
    """A preset by name (``salesforce``) or a mapping file by path, validated."""
    text_name = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or any(c in text_name for c in "/\\.")
    if not looks_like_path:
        names = preset_names()
        if text_name not in names:
            close = difflib.get_close_matches(text_name, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            raise InputError(
                f"no mapping preset named {text_name!r}; presets: {', '.join(names)}",
                hint=hint or "or give the path of a mapping YAML file",
            )
        resource = resources.files("engine") / "presets" / f"{text_name}.yaml"
        return parse_mapping(resource.read_text(encoding="utf-8"), f"preset:{text_name}")
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("mapping file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the mapping file: {error}", file=path) from None
    return parse_mapping(text, str(path))


def parse_mapping(text: str, source: str = "<mapping>") -> Mapping:
    """Validate mapping YAML ``text``; ``source`` names it in errors."""
    yaml = YAML(typ="safe", pure=True)
    try:
        data: Any = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"invalid YAML: {error.problem}", file=source, line=line) from None
    except YAMLError as error:
        raise InputError(f"invalid YAML: {error}", file=source) from None
    if not isinstance(data, dict):
        raise InputError("a mapping file must be a YAML mapping with a 'leads' key", file=source)
    try:
        return Mapping.model_validate(data)
    except ValidationError as error:
        raise InputError(_describe(error), file=source, hint=_hint(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if not _is_union_tag(part))
        problems.append(f"{where or '(top)'}: {item['msg']}")
    unique = list(dict.fromkeys(problems))
    return "invalid mapping: " + "; ".join(unique[:5])


def _is_union_tag(part: object) -> bool:
    # pydantic names the union member it tried ("str", "FieldSpec", "literal['as_of']").
    members = {"str", "FieldSpec", "AtColumn", "ConvertedSpec"}
    return isinstance(part, str) and (part in members or "[" in part)


def _hint(error: ValidationError) -> str | None:
    for item in error.errors():
        if item["type"] == "extra_forbidden":
            return "remove or correct the unknown key; see engine/presets/*.yaml for examples"
    return None
