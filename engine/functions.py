"""The catalogue: every name and function a playbook expression may use.

One registry, read by the checker (signatures, availability), the compiler
(implementations), the simpleeval reference interpreter (signatures; it has its
own naive implementations) and the ``engine functions`` listing. It is built
from plain data (:class:`Vocabulary`), never from the playbook model, so the
model can depend on the expression language and not the other way round.

Every function is an aggregate over the lead's history as of ``t`` — that is
what lets a playbook also compile to SQL.

**Contexts.** Names are only known at some points of the pipeline: personas are
matched first, then targets, fit, surge, exclusions, stages, handoffs (``when``
and ``priority``) and recycling (``reenter_when``). Each entry says from which
context on it is available (and, for a few, in which contexts only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from engine.history import History

Context = Literal["persona", "target", "fit", "surge", "exclusion", "stage", "handoff", "recycle"]

#: Pipeline order: a name available "from" a context is available in all later ones.
CONTEXTS: tuple[Context, ...] = (
    "persona",
    "target",
    "fit",
    "surge",
    "exclusion",
    "stage",
    "handoff",
    "recycle",
)

#: How a diagnostic says where an expression sits.
CONTEXT_PHRASES: dict[str, str] = {
    "persona": "personas are being matched",
    "target": "targets are being matched",
    "fit": "fit is being scored",
    "surge": "surge is being detected",
    "exclusion": "exclusions are being decided",
    "stage": "stages are being decided",
    "handoff": "handoffs are being decided",
    "recycle": "recycling is being decided",
}


@dataclass(frozen=True)
class Vocabulary:
    """What a playbook declares, as plain data.

    ``lead_fields`` maps a field to ``string|number|bool|datetime``; None means the
    playbook declares no lead fields, so any ``lead.x`` is accepted with type any.
    ``content_stages`` are the stages some content is mapped to (empty: unknown).
    """

    event_fields: Mapping[str, Sequence[str]]
    stages: Sequence[str] = ()
    personas: Sequence[str] = ()
    lists: Sequence[str] = ()
    lead_fields: Mapping[str, str] | None = None
    content_stages: Sequence[str] = ()


class Runtime(Protocol):
    """What a function implementation may read: the expression :class:`Scope`."""

    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def history(self) -> History: ...
    @property
    def persona(self) -> Callable[[str], bool]: ...
    @property
    def content_stage_of(self) -> Callable[[str], str | None]: ...


Impl = Callable[..., Any]


@dataclass(frozen=True)
class Param:
    """A parameter. ``kind`` is a value type (``number``, ``string``, ``datetime``) or
    a literal-only kind resolved at compile time: ``event_type``, ``stage_id``,
    ``persona_id``, ``duration``; ``pattern`` is a string compiled by re2 (at compile
    time when literal)."""

    name: str
    kind: str
    optional: bool = False
    keyword: bool = False  # may be passed by keyword

    @property
    def literal_only(self) -> bool:
        return self.kind in ("event_type", "stage_id", "persona_id", "duration")


@dataclass(frozen=True)
class Function:
    """A catalogue function: signature, result type, doc, availability, implementation.

    ``impl(runtime, *args[, fields={field: value}])`` receives literal arguments
    already resolved (durations in seconds, compiled patterns), the others
    evaluated, and (``field_keywords``) the event-field filters as one mapping.
    """

    name: str
    params: tuple[Param, ...]
    returns: str
    doc: str
    impl: Impl
    since: Context = "persona"
    only: tuple[Context, ...] = ()
    not_in: tuple[Context, ...] = ()
    field_keywords: bool = False  # accepts event-field equality filters as keywords
    variadic: bool = False  # the last param repeats (min, max)

    def available(self, context: str) -> bool:
        return _available(context, self.since, self.only, self.not_in)

    def signature(self) -> str:
        parts = []
        for p in self.params:
            text = f"{p.name}: {p.kind}"
            parts.append(f"{text}=…" if p.optional else text)
        if self.variadic:
            parts.append("…")
        if self.field_keywords:
            parts.append("**field=value")
        return f"{self.name}({', '.join(parts)}) -> {self.returns}"


@dataclass(frozen=True)
class Name:
    """A catalogue name: a value in ``Scope.values`` (or a record: ``lead``, ``lists``)."""

    name: str
    type: str  # a type spelling, or "record"
    doc: str
    since: Context = "persona"
    only: tuple[Context, ...] = ()

    def available(self, context: str) -> bool:
        return _available(context, self.since, self.only, ())


def _available(context: str, since: str, only: Sequence[str], not_in: Sequence[str]) -> bool:
    if only:
        return context in only
    return CONTEXTS.index(context) >= CONTEXTS.index(since) and context not in not_in


def contexts_of(entry: Name | Function) -> list[str]:
    """The contexts where ``entry`` is available, in pipeline order."""
    return [c for c in CONTEXTS if entry.available(c)]


# --- implementations (the compiled path; reference.py has its own naive ones) ---


def _count(
    rt: Runtime, type_: str, within: float | None = None, fields: Mapping[str, Any] | None = None
) -> int:
    return rt.history.count(type_, within, fields)


def _last(rt: Runtime, type_: str) -> datetime | None:
    event = rt.history.last(type_)
    return None if event is None else event.at


def _days_since(rt: Runtime, type_: str) -> float | None:
    event = rt.history.last(type_)
    if event is None:
        return None
    return (rt.history.as_of - event.at).total_seconds() / 86400


def _content_stage(rt: Runtime, stage: str, within: float | None = None) -> bool:
    stage_of = rt.content_stage_of
    for event in rt.history.in_window(None, within):
        content = event.fields.get("content")
        if isinstance(content, str) and stage_of(content) == stage:
            return True
    return False


def _matches(rt: Runtime, text: Any, pattern: Any) -> bool:
    if not isinstance(text, str) or pattern is None:
        return False
    if isinstance(pattern, str):  # not a literal: compiled (and cached) on first use
        from engine.expr.regex import search

        return search(pattern, text)
    return bool(pattern.search(text))  # an engine.expr.regex.Pattern resolved at compile time


def _persona(rt: Runtime, persona_id: str) -> bool:
    return bool(rt.persona(persona_id))


def _lower(rt: Runtime, text: Any) -> str | None:
    return text.lower() if isinstance(text, str) else None


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _min(rt: Runtime, *values: Any) -> Any:
    if not all(_is_number(v) for v in values) or any(math.isnan(v) for v in values):
        return None
    return min(values)


def _max(rt: Runtime, *values: Any) -> Any:
    if not all(_is_number(v) for v in values) or any(math.isnan(v) for v in values):
        return None
    return max(values)


def _count_since_recycle(rt: Runtime, type_: str, fields: Mapping[str, Any] | None = None) -> int:
    since = rt.values.get("recycled_at")
    if since is None:
        return 0
    return rt.history.count(type_, None, fields, after=since)


_TYPE = Param("type", "event_type")
_WITHIN = Param("within", "duration", optional=True, keyword=True)

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "count",
            (_TYPE, _WITHIN),
            "number",
            "Events of a type (within a window, with field=value filters) up to t.",
            _count,
            field_keywords=True,
        ),
        Function(
            "last",
            (_TYPE,),
            "datetime",
            "When the latest event of a type happened, or None.",
            _last,
        ),
        Function(
            "days_since",
            (_TYPE,),
            "number",
            "Fractional days from the latest event of a type to t, or None if none.",
            _days_since,
        ),
        Function(
            "content_stage",
            (Param("stage", "stage_id"), _WITHIN),
            "bool",
            "Whether the lead consumed content mapped to a stage (within a window).",
            _content_stage,
        ),
        Function(
            "matches",
            (Param("text", "string"), Param("pattern", "pattern")),
            "bool",
            "Whether an re2 pattern occurs in the text; False when the text is None.",
            _matches,
        ),
        Function(
            "persona",
            (Param("id", "persona_id"),),
            "bool",
            "Whether the lead matches a declared persona.",
            _persona,
            since="target",
        ),
        Function("lower", (Param("text", "string"),), "string", "Lower-cased text, or None.", _lower),
        Function(
            "min",
            (Param("a", "number"), Param("b", "number")),
            "number",
            "The smallest of two or more numbers; None if any is None.",
            _min,
            variadic=True,
        ),
        Function(
            "max",
            (Param("a", "number"), Param("b", "number")),
            "number",
            "The largest of two or more numbers; None if any is None.",
            _max,
            variadic=True,
        ),
        Function(
            "count_since_recycle",
            (_TYPE,),
            "number",
            "Events of a type since the lead was recycled (field=value filters allowed).",
            _count_since_recycle,
            only=("recycle",),
            field_keywords=True,
        ),
    )
}

NAMES: dict[str, Name] = {
    n.name: n
    for n in (
        Name("lead", "record", "The lead's fields, e.g. lead.title or lead.employees."),
        Name("lists", "record", "Declared lists of strings, e.g. lists.competitors."),
        Name(
            "target_account",
            "bool",
            "Whether the lead's account matches targets.accounts.",
            since="fit",
        ),
        Name("target_lead", "bool", "Whether the lead matches targets.leads.", since="fit"),
        Name("recent", "number", "Events in the latest surge window.", since="surge"),
        Name("prior", "number", "Events in the surge window before the latest.", since="surge"),
        Name("fit", "number", "The fit (attribute) score.", since="exclusion"),
        Name("engagement", "number", "The decayed engagement (behaviour) score.", since="exclusion"),
        Name("surge", "bool", "Whether the lead's activity is surging.", since="exclusion"),
        Name(
            "stage",
            "stage",
            'The lead\'s stage; compare with stage ids: stage >= "promising".',
            since="handoff",
        ),
        Name(
            "engagement_since_recycle",
            "number",
            "Engagement points earned since the lead was recycled.",
            only=("recycle",),
        ),
        Name(
            "events_since_recycle",
            "number",
            "Events of any type since the lead was recycled.",
            only=("recycle",),
        ),
    )
}


def catalogue_rows(context: str | None = None) -> list[tuple[str, str, str, str]]:
    """(name, signature or type, contexts, doc) for a listing such as ``engine functions``."""
    rows: list[tuple[str, str, str, str]] = []
    entries: list[Name | Function] = [*NAMES.values(), *FUNCTIONS.values()]
    for entry in entries:
        if context is not None and not entry.available(context):
            continue
        sig = entry.signature() if isinstance(entry, Function) else f"{entry.name}: {entry.type}"
        rows.append((entry.name, sig, ", ".join(contexts_of(entry)), entry.doc))
    return rows
