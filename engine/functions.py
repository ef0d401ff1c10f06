"""The catalogue: every name and function a playbook expression may use, declared once.

One registry, and the only place a function is named: each :class:`Function` entry
holds its signature and types, where in the pipeline it is known, its doc and
examples, and its four forms — the compiled implementation (``impl``), the naive
reference one (``reference``, for the simpleeval interpreter), the kernel form
(``kernel``, for :mod:`engine.kernel.emit`) and the SQL form (``sql`` / ``sql_aggregate``,
sqlglot builders for :mod:`engine.sql`) with its static mirror (``sql_gaps``, for
validate's fast check in :mod:`engine.sql.support`). Backends hand each form a small
object of their own (:class:`KernelCall`, :class:`SqlCall`, :class:`SqlAggregateCall`),
so this module imports neither the kernel nor sqlglot (validate's start-up stays low).
The checker, the compiler and ``engine functions`` read the signatures. It is built
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

import ast
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
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


class Naive(Protocol):
    """What a reference implementation reads: the whole history, scanned (no indexes)."""

    @property
    def scope(self) -> Runtime: ...
    @property
    def events(self) -> Sequence[Any]: ...
    @property
    def as_of(self) -> datetime: ...
    def window(self, within: str | None) -> list[Any]: ...


class KernelCall(Protocol):
    """One call being emitted as kernel source (:mod:`engine.kernel.emit` provides it)."""

    def literals(self) -> list[Any]: ...  # the arguments' values; no kernel form unless literal
    def filters(self) -> tuple[tuple[str, Any], ...]: ...  # field=value filters, sorted
    def aggregate(self, kind: str, type_: str | None, within: int | None,
                  fields: tuple[tuple[str, Any], ...] = (), stage: str | None = None,
                  value: str | None = None) -> str: ...
    def persona(self, persona_id: str) -> str: ...
    def emitted(self, text: str, number: bool = False, boolean: bool = False) -> Any: ...
    def call(self, boolean: bool = False) -> Any: ...  # ``impl(None, *args)`` inline
    def literal_search(self) -> Any | None: ...  # a memoised ``impl`` for a literal pattern


class SqlCall(Protocol):
    """One scalar call being translated to sqlglot (:mod:`engine.sql.expressions` provides it)."""

    @property
    def node(self) -> ast.Call: ...
    @property
    def exp(self) -> Any: ...  # the sqlglot.exp module
    def value(self, node: ast.expr) -> Any: ...
    def persona(self, persona_id: str) -> Any: ...
    def fail(self, what: str) -> Exception: ...
    def lit(self, value: Any) -> Any: ...
    def two_valued(self, e: Any) -> Any: ...
    def is_null(self, e: Any) -> Any: ...
    def not_null(self, e: Any) -> Any: ...


class SqlAggregateCall(Protocol):
    """One per-lead aggregate being built over the history CTE (:mod:`engine.sql.aggregates`).

    Its columns: ``type``, ``at``, ``age_us`` (integer microseconds to as_of),
    ``content_stage`` (the content's mapped stage) and the event fields."""

    @property
    def node(self) -> ast.Call: ...
    @property
    def exp(self) -> Any: ...  # the sqlglot.exp module
    @property
    def us(self) -> int: ...  # microseconds per second

    def lit(self, value: Any) -> Any: ...
    def col(self, name: str) -> Any: ...
    def double(self, e: Any) -> Any: ...
    def within(self, position: int) -> Any | None: ...  # ``age_us < window``, if a window
    def filters(self) -> dict[str, Any]: ...  # field=value filters (their columns are read)
    def read(self, column: str) -> None: ...  # an event column the aggregate reads


#: ``sql_gaps(call, walk)``: what of a call has no SQL form, as NoSqlForm words it.
Gaps = Callable[[ast.Call, Callable[[ast.AST], Iterator[str]]], Iterator[str]]


@dataclass(frozen=True)
class Param:
    """A parameter. ``kind`` is a value type (``number``, ``string``, ``datetime``) or
    a literal-only kind resolved at compile time: ``event_type``, ``stage_id``,
    ``persona_id``, ``duration``, ``event_field`` (a field the call's event type declares);
    ``pattern`` is a string compiled by re2 (at compile time when literal)."""

    name: str
    kind: str
    optional: bool = False
    keyword: bool = False  # may be passed by keyword

    @property
    def literal_only(self) -> bool:
        return self.kind in ("event_type", "stage_id", "persona_id", "duration", "event_field")


@dataclass(frozen=True)
class Function:
    """A catalogue function: signature, result type, doc, availability, implementation.

    ``impl(runtime, *args[, fields={field: value}])`` receives literal arguments
    already resolved (durations in seconds, compiled patterns), the others
    evaluated, and (``field_keywords``) the event-field filters as one mapping.
    ``reference(naive, *args, **fields)`` gets them as written (durations as text).
    ``aggregate``: computed per lead from its events, order-free (so SQL computes it in
    one GROUP BY); ``after_recycle``: from the events after the recycle trigger only.
    ``examples`` are expressions the checker accepts (tests/test_registry.py).
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
    reference: Impl | None = None
    kernel: Callable[[KernelCall], Any] | None = None
    sql: Callable[[SqlCall], Any] | None = None
    sql_aggregate: Callable[[SqlAggregateCall], tuple[Any, Any]] | None = None
    sql_gaps: Gaps | None = None
    aggregate: bool = False
    after_recycle: bool = False
    # How engine.due times a test on the value (a handoff's due time): "events" (``> 0``:
    # the first matching event, or the start of the window's run), "crossing" (``> D``:
    # the latest event + D days); None: no exact start time.
    due_anchor: Literal["events", "crossing"] | None = None
    regex: bool = False  # takes an re2 pattern (SQL dialects without RE2 warn)
    examples: tuple[str, ...] = ()

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


#: The fields of the ``account`` record (engine.accounts computes them): type and doc.
ACCOUNT_FIELDS: dict[str, tuple[str, str]] = {
    "fit": ("number", "The best (highest) fit among the account's non-excluded contacts."),
    "engagement": ("number", "The engagement of the account's non-excluded contacts, added up."),
    "contacts": ("number", "How many non-excluded contacts the account has (the lead included)."),
    "target": ("bool", "Whether any of the account's leads is a target account."),
}


def _account_persona(rt: Runtime, persona_id: str) -> int | None:
    account = rt.values.get("account")
    if account is None:
        return None
    found: int = account["personas"].get(persona_id, 0)
    return found


def _count_since_recycle(rt: Runtime, type_: str, fields: Mapping[str, Any] | None = None) -> int:
    since = rt.values.get("recycled_at")
    if since is None:
        return 0
    return rt.history.count(type_, None, fields, after=since)


#: Numbers are summed as integers of 2**-64 (a double's every bit down to 2**-11, so
#: 0.1 + 0.2 is 0.30000000000000004 as in Python): integers add up the same in any order,
#: so every backend's total is the same integer, then one rounding makes it a double.
UNIT = 2.0**64
#: The magnitude from which a value is not added: its units must fit in 128 bits, summed
#: over millions of events (SQL's HUGEINT). A trillion is more than any amount or duration.
LIMIT = 2.0**40


def units(value: Any) -> int | None:
    """An event field's number in whole 2**-64 units (``floor(v * 2**64)``, exact for
    ``|v| >= 2**-11``); None for anything not a number (None, text, bool) or beyond LIMIT."""
    if type(value) is not float and type(value) is not int:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not -LIMIT < number < LIMIT:
        return None
    return math.floor(number * UNIT)


def from_units(total: int) -> float:
    """A total of 2**-64 units as the nearest double (SQL: ``CAST(total AS DOUBLE) / 2**64``)."""
    return float(total) / UNIT


def _numbers(events: Sequence[Any], field: str) -> list[int]:
    found = (units(e.fields.get(field)) for e in events)
    return [u for u in found if u is not None]


def _sum(rt: Runtime, type_: str, field: str, within: float | None = None) -> float:
    return from_units(sum(_numbers(rt.history.in_window(type_, within), field)))


def _avg(rt: Runtime, type_: str, field: str, within: float | None = None) -> float | None:
    found = _numbers(rt.history.in_window(type_, within), field)
    return from_units(sum(found)) / len(found) if found else None


# --- reference forms: naive, scanning the whole history (reference.py runs them) ---


def _filtered(event: Any, type_: str, fields: Mapping[str, Any]) -> bool:
    return bool(event.type == type_ and all(event.fields.get(k) == v for k, v in fields.items()))


def _ref_count(n: Naive, type_: str, within: str | None = None, **fields: Any) -> int:
    return sum(1 for e in n.window(within) if _filtered(e, type_, fields))


def _ref_last(n: Naive, type_: str) -> Any:
    times = [e.at for e in n.events if e.type == type_]
    return max(times) if times else None


def _ref_days_since(n: Naive, type_: str) -> Any:
    at = _ref_last(n, type_)
    return None if at is None else (n.as_of - at).total_seconds() / 86400


def _ref_content_stage(n: Naive, stage: str, within: str | None = None) -> bool:
    stage_of = n.scope.content_stage_of
    return any(
        isinstance(e.fields.get("content"), str) and stage_of(e.fields["content"]) == stage
        for e in n.window(within)
    )


def _ref_matches(n: Naive, text: Any, pattern: Any) -> bool:
    from engine.expr.regex import search

    return isinstance(text, str) and isinstance(pattern, str) and search(pattern, text)


def _ref_extreme(pick: Callable[..., Any]) -> Impl:
    def extreme(n: Naive, *values: Any) -> Any:
        if any(not _is_number(v) or v != v for v in values):
            return None
        return pick(values)

    return extreme


def _ref_count_since_recycle(n: Naive, type_: str, **fields: Any) -> int:
    since = n.scope.values.get("recycled_at")
    if since is None:
        return 0
    return sum(1 for e in n.events if e.at > since and _filtered(e, type_, fields))


def _ref_numbers(n: Naive, type_: str, field: str, within: str | None) -> list[int]:
    return _numbers([e for e in n.window(within) if e.type == type_], field)


def _ref_sum(n: Naive, type_: str, field: str, within: str | None = None) -> float:
    return from_units(sum(_ref_numbers(n, type_, field, within)))


def _ref_avg(n: Naive, type_: str, field: str, within: str | None = None) -> float | None:
    found = _ref_numbers(n, type_, field, within)
    return from_units(sum(found)) / len(found) if found else None


# --- kernel forms: source text over the one pass's aggregate variables (engine.kernel) ---


def _k_count(k: KernelCall) -> Any:
    type_, within = k.literals()
    return k.emitted(k.aggregate("tally", type_, within, k.filters()), number=True)


def _k_count_since_recycle(k: KernelCall) -> Any:  # tallied in the pass after the trigger
    (type_,) = k.literals()
    return k.emitted(k.aggregate("since_tally", type_, None, k.filters()), number=True)


def _k_last(k: KernelCall) -> Any:
    at = k.aggregate("latest", k.literals()[0], None)
    return k.emitted(f"(None if {at} is None else to_datetime({at}))")


def _k_days_since(k: KernelCall) -> Any:
    at = k.aggregate("latest", k.literals()[0], None)
    return k.emitted(f"(None if {at} is None else ((as_of_us - {at}) / 1000000) / 86400)")


def _k_content_stage(k: KernelCall) -> Any:
    stage, within = k.literals()
    return k.emitted(k.aggregate("seen_stage", None, within, stage=stage), boolean=True)


def _k_sum(k: KernelCall) -> Any:  # the loop adds the field's units ("units") and counts them ("numbers")
    type_, field, within = k.literals()
    total = k.aggregate("units", type_, within, value=field)
    return k.emitted(f"from_units({total})", number=True)


def _k_avg(k: KernelCall) -> Any:
    type_, field, within = k.literals()
    total = k.aggregate("units", type_, within, value=field)
    many = k.aggregate("numbers", type_, within, value=field)
    return k.emitted(f"(from_units({total}) / {many} if {many} else None)")


def _k_persona(k: KernelCall) -> Any:
    return k.emitted(k.persona(k.literals()[0]), boolean=True)


def _k_matches(k: KernelCall) -> Any:
    return k.literal_search() or k.call(boolean=True)


def _k_call(k: KernelCall) -> Any:
    return k.call()


# --- SQL forms: sqlglot builders (engine.sql), and their static mirror for validate ---


def _sql_count(a: SqlAggregateCall, after_recycle: bool = False) -> tuple[Any, Any]:
    exp = a.exp
    cond = exp.EQ(this=a.col("type"), expression=a.lit(_first(a.node)))
    window = None if after_recycle else a.within(1)
    if window is not None:
        cond = exp.and_(cond, window)
    for name, value in a.filters().items():
        test = (exp.Is(this=a.col(name), expression=exp.null()) if value is None
                else exp.EQ(this=a.col(name), expression=a.lit(value)))
        cond = exp.and_(cond, test)
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond)), a.lit(0)


def _sql_count_since_recycle(a: SqlAggregateCall) -> tuple[Any, Any]:
    return _sql_count(a, after_recycle=True)  # the query reads it over the events after the trigger


def _sql_last(a: SqlAggregateCall) -> tuple[Any, Any]:
    exp = a.exp
    cond = exp.EQ(this=a.col("type"), expression=a.lit(_first(a.node)))
    return exp.Max(this=exp.Case(ifs=[exp.If(this=cond, true=a.col("at"))])), exp.null()


def _sql_days_since(a: SqlAggregateCall) -> tuple[Any, Any]:
    exp = a.exp
    cond = exp.EQ(this=a.col("type"), expression=a.lit(_first(a.node)))
    youngest = exp.Min(this=exp.Case(ifs=[exp.If(this=cond, true=a.col("age_us"))]))
    days = exp.Div(this=exp.Div(this=a.double(youngest), expression=a.double(a.lit(a.us))),
                   expression=a.double(a.lit(86400)))
    return days, exp.null()


def _sql_units(a: SqlAggregateCall) -> tuple[Any, Any]:
    """(the matching events' total in 2**-64 units as a 128-bit integer, how many numbers)."""
    exp = a.exp
    type_, field = a.node.args[0], a.node.args[1]
    assert isinstance(type_, ast.Constant) and isinstance(field, ast.Constant)
    assert isinstance(field.value, str)
    cond = exp.EQ(this=a.col("type"), expression=a.lit(type_.value))
    window = a.within(2)
    if window is not None:
        cond = exp.and_(cond, window)
    a.read(field.value)
    number = exp.TryCast(this=a.col(field.value), to=exp.DataType.build("DOUBLE"))
    inside = exp.LT(this=exp.Abs(this=number), expression=a.double(a.lit(int(LIMIT))))
    scaled = exp.Floor(this=exp.Mul(this=number.copy(), expression=a.double(a.lit(int(UNIT)))))
    unit = exp.Case(ifs=[exp.If(this=exp.and_(cond, inside), true=exp.cast(scaled, "HUGEINT"))])
    return exp.Sum(this=unit), exp.Count(this=unit.copy())


def _sql_from_units(a: SqlAggregateCall, total: Any) -> Any:
    return a.exp.Div(this=a.double(total), expression=a.double(a.lit(int(UNIT))))


def _sql_sum(a: SqlAggregateCall) -> tuple[Any, Any]:
    total, _ = _sql_units(a)
    value = _sql_from_units(a, total)
    return a.exp.Coalesce(this=value, expressions=[a.lit(0.0)]), a.lit(0.0)


def _sql_avg(a: SqlAggregateCall) -> tuple[Any, Any]:
    total, many = _sql_units(a)  # no number: SUM is NULL, and so is the average
    return a.exp.Div(this=_sql_from_units(a, total), expression=a.double(many)), a.exp.null()


def _sql_content_stage(a: SqlAggregateCall) -> tuple[Any, Any]:
    exp = a.exp
    cond = exp.EQ(this=a.col("content_stage"), expression=a.lit(_first(a.node)))
    window = a.within(1)
    if window is not None:
        cond = exp.and_(cond, window)
    a.read("content")
    count = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))
    return exp.GT(this=count, expression=a.lit(0)), exp.false()


def _sql_persona(s: SqlCall) -> Any:
    return s.persona(_first(s.node))


def _sql_account_persona(s: SqlCall) -> Any:  # a window column of engine.sql.accounts
    return s.exp.column("account_" + s.persona(_first(s.node)).name)


def _sql_lower(s: SqlCall) -> Any:
    # Python lowers U+0130 (İ) to "i" + U+0307 (combining dot); SQL LOWER gives "i".
    # It is the only code point where they differ (checked over all of Unicode).
    exp = s.exp
    dotted = exp.Replace(this=s.value(s.node.args[0]), expression=s.lit("\u0130"),
                         replacement=s.lit("i\u0307"))
    return exp.Lower(this=dotted)


def _sql_matches(s: SqlCall) -> Any:
    pattern = s.node.args[1]
    if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
        raise s.fail(_MATCHES_GAP)
    text = s.value(s.node.args[0])
    found = s.exp.RegexpLike(this=text, expression=s.lit(pattern.value))
    return s.two_valued(s.exp.and_(s.not_null(text), found))


def _sql_extreme(least: bool) -> Callable[[SqlCall], Any]:
    def extreme(s: SqlCall) -> Any:
        exp = s.exp
        values = [s.value(a) for a in s.node.args]
        cls = exp.Least if least else exp.Greatest
        any_null = exp.or_(*[s.is_null(v) for v in values])
        pick = cls(this=values[0].copy(), expressions=[v.copy() for v in values[1:]])
        return exp.Case(ifs=[exp.If(this=any_null, true=exp.null())], default=pick)

    return extreme


def _first(call: ast.Call) -> Any:
    first = call.args[0]
    assert isinstance(first, ast.Constant)
    return first.value


_MATCHES_GAP = "matches() with a pattern that is not a literal string"


def _gaps_filters(call: ast.Call, walk: Callable[[ast.AST], Iterator[str]]) -> Iterator[str]:
    """An aggregate: its field=value filters must be literal strings or None."""
    for kw in call.keywords:
        if kw.arg is None or kw.arg == "within":
            continue
        value = kw.value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str | None)):
            yield f"`{kw.arg}=` filter with a value that is not a literal string or None"


def _gaps_none(call: ast.Call, walk: Callable[[ast.AST], Iterator[str]]) -> Iterator[str]:
    return iter(())


def _gaps_args(call: ast.Call, walk: Callable[[ast.AST], Iterator[str]]) -> Iterator[str]:
    for arg in call.args:
        yield from walk(arg)


def _gaps_matches(call: ast.Call, walk: Callable[[ast.AST], Iterator[str]]) -> Iterator[str]:
    pattern = call.args[1] if len(call.args) > 1 else None
    if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
        yield _MATCHES_GAP
    yield from walk(call.args[0])


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
            reference=_ref_count, kernel=_k_count, sql_aggregate=_sql_count, sql_gaps=_gaps_filters,
            aggregate=True, due_anchor="events", examples=('count("web_visit", within="7d") >= 3',),
        ),
        Function(
            "last",
            (_TYPE,),
            "datetime",
            "When the latest event of a type happened, or None.",
            _last,
            reference=_ref_last, kernel=_k_last, sql_aggregate=_sql_last, sql_gaps=_gaps_filters,
            aggregate=True, examples=('last("demo_request") is not None',),
        ),
        Function(
            "days_since",
            (_TYPE,),
            "number",
            "Fractional days from the latest event of a type to t, or None if none.",
            _days_since,
            reference=_ref_days_since, kernel=_k_days_since, sql_aggregate=_sql_days_since,
            sql_gaps=_gaps_filters, aggregate=True, due_anchor="crossing",
            examples=('days_since("web_visit") < 30',),
        ),
        Function(
            "content_stage",
            (Param("stage", "stage_id"), _WITHIN),
            "bool",
            "Whether the lead consumed content mapped to a stage (within a window).",
            _content_stage,
            reference=_ref_content_stage, kernel=_k_content_stage, sql_aggregate=_sql_content_stage,
            sql_gaps=_gaps_filters, aggregate=True,
        ),
        Function(
            "matches",
            (Param("text", "string"), Param("pattern", "pattern")),
            "bool",
            "Whether an re2 pattern occurs in the text; False when the text is None.",
            _matches,
            reference=_ref_matches, kernel=_k_matches, sql=_sql_matches, sql_gaps=_gaps_matches,
            regex=True, examples=('matches(lead.title, "(?i)vp|head of")',),
        ),
        Function(
            "persona",
            (Param("id", "persona_id"),),
            "bool",
            "Whether the lead matches a declared persona.",
            _persona,
            since="target",
            reference=lambda n, pid: bool(n.scope.persona(pid)), kernel=_k_persona, sql=_sql_persona,
            sql_gaps=_gaps_none,
        ),
        Function("lower", (Param("text", "string"),), "string", "Lower-cased text, or None.", _lower,
                 reference=lambda n, text: text.lower() if isinstance(text, str) else None,
                 kernel=_k_call, sql=_sql_lower, sql_gaps=_gaps_args,
                 examples=('lower(lead.country) == "de"',)),
        Function(
            "min",
            (Param("a", "number"), Param("b", "number")),
            "number",
            "The smallest of two or more numbers; None if any is None.",
            _min,
            variadic=True,
            reference=_ref_extreme(min), kernel=_k_call, sql=_sql_extreme(True), sql_gaps=_gaps_args,
            examples=("min(fit, 50) + engagement > 60",),
        ),
        Function(
            "max",
            (Param("a", "number"), Param("b", "number")),
            "number",
            "The largest of two or more numbers; None if any is None.",
            _max,
            variadic=True,
            reference=_ref_extreme(max), kernel=_k_call, sql=_sql_extreme(False), sql_gaps=_gaps_args,
            examples=("max(fit, engagement) >= 40",),
        ),
        Function(
            "sum",
            (_TYPE, Param("field", "event_field"), _WITHIN),
            "number",
            "The total of a number field (mapped `type: number`) over events of a type "
            "(within a window); 0 if none. The same on every backend: values are added as "
            "whole 2^-64 units (any order), then rounded once; |value| >= 2^40 or text is not added.",
            _sum,
            reference=_ref_sum, kernel=_k_sum, sql_aggregate=_sql_sum, sql_gaps=_gaps_none,
            aggregate=True, examples=('sum("deal", "amount", within="90d") >= 10000',),
        ),
        Function(
            "avg",
            (_TYPE, Param("field", "event_field"), _WITHIN),
            "number",
            "The mean of a number field over events of a type (within a window): sum() "
            "divided by how many events carry a number; None if none do.",
            _avg,
            reference=_ref_avg, kernel=_k_avg, sql_aggregate=_sql_avg, sql_gaps=_gaps_none,
            aggregate=True, examples=('avg("deal", "amount") > 500',),
        ),
        Function(
            "account_persona",
            (Param("id", "persona_id"),),
            "number",
            "How many of the account's non-excluded contacts match a persona: the buying group "
            "(docs/accounts.md).",
            _account_persona,
            since="stage",
            reference=lambda n, pid: _account_persona(n.scope, pid),
            kernel=_k_call,  # never emitted: engine.kernel refuses playbooks with accounts
            sql=_sql_account_persona, sql_gaps=_gaps_none,
            examples=('account_persona("buyer") >= 2',),
        ),
        Function(
            "count_since_recycle",
            (_TYPE,),
            "number",
            "Events of a type since the lead was recycled (field=value filters allowed).",
            _count_since_recycle,
            only=("recycle",),
            field_keywords=True,
            reference=_ref_count_since_recycle, kernel=_k_count_since_recycle,
            sql_aggregate=_sql_count_since_recycle, sql_gaps=_gaps_filters, aggregate=True,
            after_recycle=True, examples=('count_since_recycle("web_visit") >= 2',),
        ),
    )
}

#: The functions computed per lead from its events (order-free: SQL's GROUP BY may).
AGGREGATES = frozenset(name for name, f in FUNCTIONS.items() if f.aggregate)

NAMES: dict[str, Name] = {
    n.name: n
    for n in (
        Name("lead", "record", "The lead's fields, e.g. lead.title or lead.employees."),
        Name("lists", "record", "Declared lists of strings, e.g. lists.competitors."),
        Name(
            "target_account",
            "bool",
            "Whether the lead's account matches targets.accounts (with accounts declared: "
            "whether any of the account's leads does).",
            since="fit",
        ),
        Name("target_lead", "bool", "Whether the lead matches targets.leads.", since="fit"),
        Name(
            "account",
            "record",
            "The lead's account, over its non-excluded contacts at the same instant: "
            + ", ".join(f"account.{k}" for k in ACCOUNT_FIELDS) + " (docs/accounts.md).",
            since="stage",
        ),
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
