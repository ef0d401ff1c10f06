"""Rows of an export, through a mapping, into leads and events.

A row that cannot be used becomes a :class:`Reject` sent to ``on_reject`` and the
reader moves on; only problems with the file as a whole raise :class:`InputError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from engine.events import Event
from engine.io.convert import ConversionError, Converter, make_converter, null_set, to_number
from engine.io.errors import InputError, Reject, RejectSink
from engine.io.mapping import ActivityRule, AtColumn, FieldSpec, Mapping, field_spec, is_optional
from engine.io.readers import (
    Row,
    file_format,
    read_columns,
    read_csv_lists,
    read_header,
    read_rows,
    repeated_names,
)


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """One lead: its id, its converted fields, its row in the file.

    ``activity`` holds the events the mapping synthesized from aggregate columns; the
    grouping step adds them to the lead's event list.
    """

    lead_id: str
    fields: dict[str, Any]
    row: int
    activity: tuple[Event, ...] = field(default=())


class LeadEvent(NamedTuple):
    """An event with the lead it belongs to and where it came from (for orphan rejects)."""

    lead_id: str
    event: Event
    file: str
    row: int


class _RowProblem(Exception):
    def __init__(self, column: str | None, value: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


_FieldPlan = list[tuple[str, str, Converter]]
#: A row as a list of cells; a column's cell sits at the position :class:`_Table` gives it.
Values = list[str | None]


class EventTypes(frozenset[str]):
    """The event types a playbook declares, and for some a field whose value must be one of a
    set (a rejected handoff's ``reason`` must be a recycle reason, docs/handoffs.md): a row
    breaking it is a reject, on every reading path, with :func:`required_reason`'s text."""

    required: dict[str, tuple[str, frozenset[str]]]

    def __new__(cls, types: Iterable[str],
                required: dict[str, tuple[str, frozenset[str]]] | None = None) -> EventTypes:
        self = super().__new__(cls, types)
        self.required = dict(required or {})
        return self


def required_of(allowed: Collection[str] | None) -> dict[str, tuple[str, frozenset[str]]]:
    """The required field values of ``allowed`` (none for a plain collection of types)."""
    return allowed.required if isinstance(allowed, EventTypes) else {}


def required_reason(kind: str, name: str, values: frozenset[str]) -> str:
    """Why a row of type ``kind`` whose field ``name`` is not one of ``values`` is rejected."""
    return f"the {name} of a {kind} event must be one of: {', '.join(sorted(values))}"
#: Fields resolved to positions: (field name, column, position, converter).
_BoundPlan = list[tuple[str, str, int, Converter]]


def check_columns(path: str | Path, needed: list[str], available: Collection[str]) -> None:
    """Raise an :class:`InputError` naming every needed column not in the file, with the
    columns it has and a did-you-mean for the first."""
    missing = [column for column in dict.fromkeys(needed) if column not in available]
    if not missing:
        return
    repeated = [column for column in missing if column in repeated_names(path)]
    if repeated:
        raise InputError(
            "the header names this column more than once, so which cell to read is unclear",
            file=path,
            line=1,
            column=repeated[0],
            hint="rename one of them in the file, or map another column",
        )
    column = missing[0]
    close = difflib.get_close_matches(column, list(available), n=1, cutoff=0.6)
    folded = [name for name in available if name.casefold() == column.casefold()]
    guess = (folded or close or [""])[0]
    listing = ", ".join(repr(name) for name in available)
    hint = f"did you mean {guess!r}?" if guess else "fix the mapping or pick another preset"
    hint += "; a field the export may lack can be marked {column: ..., optional: true} in a mapping file"
    if len(missing) == 1:
        raise InputError(f"the mapping needs this column but the file has only: {listing}",
                         file=path, column=column, hint=hint)
    names = ", ".join(repr(name) for name in missing)
    raise InputError(f"the mapping needs columns {names} but the file has only: {listing}",
                     file=path, column=column, hint=hint)


def _plan_fields(
    entries: dict[str, str | FieldSpec], mapping: Mapping, required_default: bool
) -> tuple[_FieldPlan, list[str], list[str]]:
    """Converters per field, and the columns that must / may exist."""
    plan: _FieldPlan = []
    required: list[str] = []
    optional: list[str] = []
    for name, raw_spec in entries.items():
        spec = field_spec(raw_spec)
        plan.append((name, spec.column, make_converter(spec, mapping)))
        (optional if is_optional(spec, required_default) else required).append(spec.column)
    return plan, required, optional


class _Table:
    """A file's rows as lists, with every column's position resolved once per file.

    CSV rows come from the reader as lists already (no dict per row); JSONL and Parquet
    rows, whose keys a line may lack, are laid out over the columns the reader asks for.
    ``columns`` are the file's column names, or None when only the rows can tell (JSONL).
    """

    def __init__(self, path: str | Path, encoding: str | None, delimiter: str | None) -> None:
        self.path, self.encoding, self.delimiter = path, encoding, delimiter
        self.header: list[str] | None = None
        self.columns: list[str] | None
        if Path(path).is_file() and file_format(path) == "csv":
            self.header = read_header(path, encoding=encoding, delimiter=delimiter)
            self.columns = [name for name in self.header if name]
        else:
            self.columns = read_columns(path, encoding=encoding, delimiter=delimiter)
        self.position: dict[str, int] = {}
        if self.header is not None:
            self.position = {name: i for i, name in enumerate(self.header) if name}

    def rows(self, wanted: list[str], on_reject: RejectSink, check: _FirstRows | None = None) -> Iterator[
        tuple[int, Values]
    ]:
        """Rows in file order; ``wanted`` are the columns read (positions: :attr:`position`).

        For files without a header, ``check`` sees each row's keys while it is active.
        """
        if self.header is not None:
            return read_csv_lists(
                self.path, self.header, encoding=self.encoding, delimiter=self.delimiter, on_reject=on_reject
            )
        names = list(dict.fromkeys(wanted))
        self.position = {name: i for i, name in enumerate(names)}
        rows = read_rows(self.path, encoding=self.encoding, delimiter=self.delimiter, on_reject=on_reject)
        return _laid_out(rows, names, check)


class _FirstRows:
    """The column check for files without a header, run on rows until it is switched off."""

    def __init__(self, path: str | Path, needed: list[str]) -> None:
        self.path, self.needed, self.active = path, needed, True

    def __call__(self, row: Row) -> None:
        check_columns(self.path, self.needed, list(row))


def _laid_out(rows: Iterator[tuple[int, Row]], names: list[str], check: _FirstRows | None) -> Iterator[
    tuple[int, Values]
]:
    for number, row in rows:
        if check is not None and check.active:
            check(row)
        yield number, [row.get(name) for name in names]


def _bind(plan: _FieldPlan, position: dict[str, int]) -> _BoundPlan:
    return [(name, column, position[column], convert) for name, column, convert in plan]


def _convert_fields(plan: _BoundPlan, values: Values) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, column, at, convert in plan:
        raw = values[at]
        try:
            fields[name] = convert(raw)
        except ConversionError as error:
            raise _RowProblem(column, raw, str(error)) from None
    return fields


class _Activity:
    """One activity rule, ready to apply to rows."""

    def __init__(self, index: int, rule: ActivityRule, mapping: Mapping) -> None:
        self.index = index
        self.rule = rule
        self.nulls = null_set(mapping.null_values)
        self.when = {
            column: {expected} if isinstance(expected, str) else set(expected)
            for column, expected in (rule.when_column_equals or {}).items()
        }
        self.at_convert: Converter | None = None
        if isinstance(rule.at, AtColumn):
            spec = FieldSpec(column=rule.at.column, type="datetime", formats=rule.at.formats)
            self.at_convert = make_converter(spec, mapping)
        self.position: dict[str, int] = {}

    def columns(self) -> list[str]:
        names = list(self.when)
        if self.rule.count_column:
            names.append(self.rule.count_column)
        if isinstance(self.rule.at, AtColumn):
            names.append(self.rule.at.column)
        return names + list(self.rule.fields.values())

    def bind(self, position: dict[str, int]) -> None:
        """Where each of :meth:`columns` sits in the rows about to be read."""
        self.position = position

    def _cell(self, values: Values, column: str) -> str | None:
        return values[self.position[column]]

    def events(self, lead_id: str, values: Values, as_of: datetime | None) -> list[Event]:
        for column, accepted in self.when.items():
            if (self._cell(values, column) or "").strip() not in accepted:
                return []
        count = self._count(values)
        if count == 0:
            return []
        at = self._at(values, as_of)
        fields = {
            name: self._clean(self._cell(values, column)) for name, column in self.rule.fields.items()
        }
        return [
            Event(self.rule.type, at, dict(fields), f"{lead_id}#a{self.index}.{k}", k) for k in range(count)
        ]

    def _clean(self, raw: str | None) -> str | None:
        if raw is None or raw.strip().casefold() in self.nulls:
            return None
        return raw.strip()

    def _count(self, values: Values) -> int:
        column = self.rule.count_column
        if column is None:
            return 1
        raw = self._cell(values, column)
        if self._clean(raw) is None:
            return 0
        assert raw is not None
        try:
            number = to_number(raw)
        except ConversionError as error:
            raise _RowProblem(column, raw, str(error)) from None
        if number < 0 or number != int(number):
            raise _RowProblem(column, raw, f"{raw!r} is not a count (a whole number >= 0)")
        if number > self.rule.max_count:
            reason = f"count {raw} exceeds max_count {self.rule.max_count} of the activity rule"
            raise _RowProblem(column, raw, reason)
        return int(number)

    def _at(self, values: Values, as_of: datetime | None) -> datetime:
        if self.at_convert is None:
            assert as_of is not None  # checked before reading
            return as_of
        assert isinstance(self.rule.at, AtColumn)
        column = self.rule.at.column
        raw = self._cell(values, column)
        try:
            at: datetime | None = self.at_convert(raw)
        except ConversionError as error:
            raise _RowProblem(column, raw, str(error)) from None
        if at is None:
            raise _RowProblem(column, raw, f"no timestamp for the {self.rule.type!r} activity")
        return at


def read_leads(
    path: str | Path,
    mapping: Mapping,
    *,
    on_reject: RejectSink,
    as_of: datetime | None = None,
    allowed_types: Collection[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[LeadRecord]:
    """Stream the leads of ``path`` in file order; bad rows go to ``on_reject``.

    ``as_of`` is needed only by activity rules with ``at: as_of``.
    """
    layout = LeadLayout(path, mapping, as_of, allowed_types, encoding, delimiter)
    table = layout.table
    check = _FirstRows(path, layout.needed) if table.columns is None else None
    rows = table.rows(layout.wanted, on_reject, check)
    return layout.maker(table.position)(rows, on_reject, check)


class LeadLayout:
    """What reading a leads file needs, worked out once (see :class:`EventLayout`)."""

    def __init__(self, path: str | Path, mapping: Mapping, as_of: datetime | None,
                 allowed_types: Collection[str] | None, encoding: str | None,
                 delimiter: str | None) -> None:
        spec = mapping.leads
        self.path, self.mapping, self.spec, self.as_of = path, mapping, spec, as_of
        plan, required, optional = _plan_fields(spec.fields, mapping, spec.fields_required)
        rules = [_Activity(i, rule, mapping) for i, rule in enumerate(spec.activity)]
        _check_rules(spec.activity, as_of, allowed_types)
        needed = [spec.id, *required] + [c for rule in rules for c in rule.columns()]
        self.encoding = encoding or mapping.encoding
        self.table = _Table(path, self.encoding, delimiter)
        columns = self.table.columns
        self.needed = list(dict.fromkeys(needed))
        if columns is not None:
            check_columns(path, self.needed, columns)
            plan = [item for item in plan if item[1] in columns or item[1] not in optional]
            self.missing = {name for name, col, _ in _plan_all(spec.fields) if col not in columns}
        else:
            self.missing = set()
        self.plan, self.has_activity = plan, bool(rules)
        self.wanted = list(dict.fromkeys([*self.needed, *(column for _, column, _ in plan)]))

    def maker(self, position: dict[str, int]) -> LeadRows:
        """The per-row conversion for rows whose cells sit at ``position``."""
        return LeadRows(self, position)


class LeadRows:
    """The row-by-row conversion of leads: every check and reject reason, in one loop."""

    def __init__(self, layout: LeadLayout, position: dict[str, int]) -> None:
        self.layout = layout
        mapping, spec = layout.mapping, layout.spec
        self.bound = _bind(layout.plan, position)
        self.rules = [_Activity(i, rule, mapping) for i, rule in enumerate(spec.activity)]
        for rule in self.rules:
            rule.bind(position)
        self.id_at = position[spec.id]

    def __call__(self, rows: Iterable[tuple[int, Values]], on_reject: RejectSink,
                 check: _FirstRows | None = None) -> Iterator[LeadRecord]:
        """Leads of ``rows``; bad rows go to ``on_reject``."""
        layout = self.layout
        spec, missing, as_of = layout.spec, layout.missing, layout.as_of
        bound, rules, id_at = self.bound, self.rules, self.id_at
        source = str(layout.path)
        for number, values in rows:
            if check is not None:
                check.active = False
            try:
                raw_id = values[id_at]
                lead_id = raw_id.strip() if raw_id else ""
                if not lead_id:
                    raise _RowProblem(spec.id, raw_id, "missing lead id")
                fields = _convert_fields(bound, values)
                for name in missing:
                    fields[name] = None
                activity: list[Event] = []
                for rule in rules:
                    activity.extend(rule.events(lead_id, values, as_of))
            except _RowProblem as problem:
                on_reject(Reject(source, number, problem.column, problem.value, problem.reason))
                continue
            yield LeadRecord(lead_id, fields, number, tuple(activity))


def _plan_all(entries: dict[str, str | FieldSpec]) -> list[tuple[str, str, None]]:
    return [(name, field_spec(spec).column, None) for name, spec in entries.items()]


def _check_rules(rules: list[ActivityRule], as_of: datetime | None, allowed: Collection[str] | None) -> None:
    for i, rule in enumerate(rules):
        if rule.at == "as_of" and as_of is None:
            raise InputError(
                f"activity rule {i} ({rule.type}) is stamped at the as-of time, but none was given",
                hint="pass --as-of",
            )
        if allowed is not None and rule.type not in allowed:
            raise InputError(
                f"activity rule {i} makes events of unknown type {rule.type!r}",
                hint=f"known types: {', '.join(sorted(allowed))}",
            )
    if as_of is not None and as_of.tzinfo is None:
        raise InputError("the as-of time must carry a timezone")


def read_events(
    path: str | Path,
    mapping: Mapping,
    *,
    on_reject: RejectSink,
    allowed_types: Collection[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[LeadEvent]:
    """Stream the events of ``path`` in file order; ``seq`` is the event's input position."""
    layout = EventLayout(path, mapping, allowed_types, encoding, delimiter)
    table = layout.table
    check = _FirstRows(path, layout.needed) if table.columns is None else None
    rows = table.rows(layout.wanted, on_reject, check)
    return layout.maker(table.position)(rows, on_reject, 0, check)


class EventLayout:
    """What reading an events file needs, worked out once: columns, converters, types.

    Shared by the row-by-row reader and the columnar one (:mod:`engine.io.arrow_events`),
    so both check the same columns and convert with the same converters.
    """

    def __init__(self, path: str | Path, mapping: Mapping, allowed_types: Collection[str] | None,
                 encoding: str | None, delimiter: str | None) -> None:
        spec = mapping.events
        if spec is None:
            raise InputError("the mapping has no 'events' section", hint="add one or omit --events")
        self.path, self.mapping, self.spec, self.allowed_types = path, mapping, spec, allowed_types
        plan, required, optional = _plan_fields(spec.fields, mapping, spec.fields_required)
        self.needed = [spec.lead_id, spec.at] + [c for c in (spec.type, spec.id) if c] + required
        self.encoding = encoding or mapping.encoding
        self.table = _Table(path, self.encoding, delimiter)
        columns = self.table.columns
        if columns is not None:
            check_columns(path, self.needed, columns)
            plan = [item for item in plan if item[1] in columns or item[1] not in optional]
        self.plan = plan
        specs = {name: field_spec(raw) for name, raw in spec.fields.items()}
        #: (field name, column, its FieldSpec) for the fields read, in plan order.
        self.field_specs = [(name, column, specs[name]) for name, column, _ in plan]
        #: Every column read, once each: the needed ones, then optional fields present.
        self.wanted = list(dict.fromkeys([*self.needed, *(column for _, column, _ in plan)]))

    def maker(self, position: dict[str, int]) -> EventRows:
        """The per-row conversion for rows whose cells sit at ``position``."""
        return EventRows(self, position)


class EventRows:
    """The row-by-row conversion: every check, every reject reason, in one loop.

    The columnar reader sends a batch here whenever any of its rows has a problem, so
    rejects (rows, columns, values, reasons) are the same whichever path read the file.
    """

    def __init__(self, layout: EventLayout, position: dict[str, int]) -> None:
        spec, mapping = layout.spec, layout.mapping
        self.spec, self.source = spec, str(layout.path)
        self.bound = _bind(layout.plan, position)
        self.at_convert = make_converter(
            FieldSpec(column=spec.at, type="datetime", formats=spec.formats), mapping
        )
        self.lead_at, self.at_at = position[spec.lead_id], position[spec.at]
        self.id_at = position[spec.id] if spec.id else None
        self.kind_of = _EventTypes(spec.type, spec.type_constant, spec.types, layout.allowed_types, position)
        columns = {name: column for name, column, _ in layout.plan}
        #: type → (field, its column, where the cell is, allowed values, the reject reason)
        self.required = {
            kind: (name, columns.get(name), position.get(columns.get(name, "")), ok,
                   required_reason(kind, name, ok))
            for kind, (name, ok) in required_of(layout.allowed_types).items()}

    def __call__(self, rows: Iterable[tuple[int, Values]], on_reject: RejectSink, seq: int,
                 check: _FirstRows | None = None) -> Iterator[LeadEvent]:
        """Events of ``rows``, numbered from ``seq``; bad rows go to ``on_reject``."""
        spec, bound, at_convert, source = self.spec, self.bound, self.at_convert, self.source
        lead_at, at_at, id_at = self.lead_at, self.at_at, self.id_at
        kind_of, required = self.kind_of, self.required
        known_kinds, type_at = kind_of.known, kind_of.at
        first = seq
        for number, values in rows:
            try:
                raw_id = values[lead_at]
                lead_id = raw_id.strip() if raw_id else ""
                if not lead_id:
                    raise _RowProblem(spec.lead_id, raw_id, "missing lead id")
                # The memo's lookup inlined: this line runs for every event.
                kind = known_kinds.get(values[type_at]) if type_at is not None else None
                if kind is None:
                    kind = kind_of(values)
                raw_at = values[at_at]
                try:
                    at = at_convert(raw_at)
                except ConversionError as error:
                    raise _RowProblem(spec.at, raw_at, str(error)) from None
                if at is None:
                    raise _RowProblem(spec.at, raw_at, "missing timestamp")
                fields = _convert_fields(bound, values)
                if required and kind in required:
                    name, column, at_cell, ok, why = required[kind]
                    if fields.get(name) not in ok:
                        raise _RowProblem(column, values[at_cell] if at_cell is not None else None, why)
                event_id = _event_id(values, id_at) if id_at is not None else None
            except _RowProblem as problem:
                on_reject(Reject(source, number, problem.column, problem.value, problem.reason))
                continue
            yield LeadEvent(lead_id, Event(kind, at, fields, event_id, seq), source, number)
            if seq == first and check is not None:
                check.active = False  # as before: rows are checked until one makes an event
            seq += 1


def event_type(layout: EventLayout, cell: str | None) -> str | None:
    """The event type a type cell gives (renamed, checked), or None if the row is rejected."""
    spec = layout.spec
    try:
        return _event_type(spec.type, spec.type_constant, spec.types, cell, layout.allowed_types)
    except _RowProblem:
        return None


def _event_id(values: Values, position: int) -> str | None:
    raw = values[position]
    return (raw.strip() if raw else "") or None


class _EventTypes:
    """Each row's event type: renamed, checked against the playbook, remembered per cell.

    A file has a handful of distinct type cells, so after the first row of each kind the
    lookup is one dict access; a cell that fails is re-checked (and rejected) every time.
    """

    _LIMIT = 4096

    def __init__(
        self,
        column: str | None,
        constant: str | None,
        renames: dict[str, str],
        allowed: Collection[str] | None,
        position: dict[str, int],
    ) -> None:
        self.column, self.constant, self.renames, self.allowed = column, constant, renames, allowed
        self.at = position[column] if column is not None else None
        self.known: dict[str | None, str] = {}

    def __call__(self, values: Values) -> str:
        raw = values[self.at] if self.at is not None else None
        kind = self.known.get(raw)
        if kind is None:
            kind = _event_type(self.column, self.constant, self.renames, raw, self.allowed)
            if len(self.known) < self._LIMIT:
                self.known[raw] = kind
        return kind


def _event_type(
    column: str | None,
    constant: str | None,
    renames: dict[str, str],
    cell: str | None,
    allowed: Collection[str] | None,
) -> str:
    if column is None:
        assert constant is not None
        kind = constant
    else:
        raw = (cell or "").strip()
        if not raw:
            raise _RowProblem(column, cell, "missing event type")
        kind = renames.get(raw, raw)
    if allowed is not None and kind not in allowed:
        known = ", ".join(sorted(allowed))
        raise _RowProblem(column, kind, f"unknown event type {kind!r} (known: {known})")
    return kind


def column_ids(path: str | Path, column: str, encoding: str | None, delimiter: str | None) -> Iterator[str]:
    """One id column alone, in file order, with no conversion and no rejects (grouping's pre-scan)."""
    table = _Table(path, encoding, delimiter)
    rows = table.rows([column], _ignore)
    at = table.position.get(column)
    for _, values in rows:
        raw = values[at] if at is not None else None
        lead_id = raw.strip() if raw else ""
        if lead_id:
            yield lead_id


def _ignore(_: Reject) -> None:
    """Pre-scans stay quiet: the real pass reports every reject exactly once."""
