"""Stage 2 of the SQL batch path: scanned rows, through the mapping, into lead and event rows.

The SQL twin of :mod:`engine.io.records`: the same columns are required (the same
error, naming the column), each row gets its converted fields — or the *first* problem
the Python reader would have reported for it (lead id, then fields in mapping order,
then activity rules; for events: lead id, type, timestamp, fields), as the column,
value and reason of its reject. Activity rules (leads files with aggregated behaviour)
become event rows here, with the ids and positions engine.io gives them.

Results: views ``lead_rows`` and ``event_rows`` over the stored ``…__rows`` tables (every
row read, ``__reason`` NULL when usable; see ``PROBLEM``) and table ``activity_events``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.io import ActivityRule, FieldSpec, InputError, Mapping
from engine.io.convert import ConversionError, null_set, to_number
from engine.io.mapping import AtColumn, field_spec, is_optional
from engine.io.records import check_columns, required_of, required_reason
from engine.sql.cells import SQL_TYPES, Cells, Plain, last_code, starts_unpadded, unpadded
from engine.sql.inputs import ROW, Inputs, Renumber, Scanned, literal, quote

#: Per row: the problem's column, value and reason (NULL reason: the row is usable). They
#: are stored as one JSON array, ``__problem`` (NULL when usable), and read out by the
#: view over the stored rows: three text columns, NULL in nearly every row, took 70 MB of
#: DuckDB's memory per 3M events, spilled to disk at 1M leads (issue #17).
PROBLEM = ("__column", "__value", "__reason")
#: The view's columns read out of ``__problem``.
PROBLEM_COLUMNS = ", ".join(f"json_extract_string(__problem, '$[{i}]') AS {name}"
                            for i, name in enumerate(PROBLEM))


@dataclass
class Plan:
    """Fields to convert (name → spec) and the columns the file must / may have."""

    fields: dict[str, FieldSpec]
    required: list[str]
    optional: list[str]


def _plan(entries: dict[str, str | FieldSpec], required_default: bool) -> Plan:
    fields: dict[str, FieldSpec] = {}
    required: list[str] = []
    optional: list[str] = []
    for name, raw in entries.items():
        spec = field_spec(raw)
        fields[name] = spec
        (optional if is_optional(spec, required_default) else required).append(spec.column)
    return Plan(fields, required, optional)


def _problem(checks: list[tuple[str, str, str, str]]) -> str:
    """The first failing check's (column, value, reason) as a JSON array (NULL: none failed)."""
    if not checks:
        return "CAST(NULL AS VARCHAR) AS __problem"
    branches = " ".join(
        f"WHEN {check[0]} THEN CAST(json_array(CAST({check[1]} AS VARCHAR), CAST({check[2]} AS VARCHAR), "
        f"CAST({check[3]} AS VARCHAR)) AS VARCHAR)" for check in checks)
    return f"CASE {branches} END AS __problem"


def _check_columns(scanned: Scanned, needed: list[str]) -> None:
    available = scanned.columns if scanned.columns is not None else scanned.first_keys
    if available is not None:
        check_columns(scanned.path, list(dict.fromkeys(needed)), available)


Check = tuple[str, str, str, str]


def _fields_sql(cells: Cells, plan: Plan, scanned: Scanned,
                values: dict[str, tuple[str, str]] | None = None) -> tuple[list[str], list[Check]]:
    """Converted field columns ``f__NAME`` and their checks, in the mapping's order (and in
    ``values``, each field's value expression and its column)."""
    columns, checks = [], []
    have = scanned.columns
    for name, spec in plan.fields.items():
        present = have is None or spec.column in have
        converted = cells.field(spec, present)
        columns.append(f"{converted.value} AS {quote('f__' + name)}")
        if values is not None:
            values[name] = (converted.value, spec.column if present else "")
        if present:
            cell = quote(spec.column)
            checks.append((f"({converted.reason}) IS NOT NULL", literal(spec.column), cell, converted.reason))
    return columns, checks


# -- leads --------------------------------------------------------------------------------


def lead_rows(inputs: Inputs, mapping: Mapping, path: Any, encoding: str | None, as_of: datetime,
              allowed: Collection[str]) -> tuple[Scanned, Plan]:
    """Table ``lead_rows``: each row's id, fields, activity counts and first problem."""
    spec = mapping.leads
    plan = _plan(spec.fields, spec.fields_required)
    _check_rules(spec.activity, allowed)
    rule_columns = [c for rule in spec.activity for c in _rule_columns(rule)]
    needed = [spec.id, *plan.required, *rule_columns]
    columns, first_keys = inputs.columns(path, encoding)
    probe = Scanned("lead_scan", path, columns, [], first_keys)
    _check_columns(probe, needed)
    wanted = [*needed, *(s.column for s in plan.fields.values())]
    scanned = inputs.scan(path, "lead_scan", encoding, wanted)
    cells = Cells(inputs.con, "lead_scan", mapping)
    raw_id = quote(spec.id)
    stripped_id = cells.stripped(raw_id)
    selects = [ROW, f"{stripped_id} AS lead_id"]
    checks = [(f"COALESCE({stripped_id}, '') = ''", literal(spec.id), raw_id, literal("missing lead id"))]
    fields, field_checks = _fields_sql(cells, plan, scanned)
    selects += fields
    checks += field_checks
    for index, rule in enumerate(spec.activity):
        rule_selects, rule_checks = _rule_sql(cells, mapping, index, rule, as_of, scanned)
        selects += rule_selects
        checks += rule_checks
    plain = None if spec.activity else _plain_leads(cells, plan, scanned, raw_id)
    _materialize(inputs, cells, [*selects, _problem(checks)], "lead_rows", scanned, PROBLEM_COLUMNS, plain)
    return scanned, plan


def _plain_leads(cells: Cells, plan: Plan, scanned: Scanned, raw_id: str) -> Plain | None:
    """The lead rows SQL converts the quick way with no reject (:class:`engine.sql.cells.Plain`,
    as :func:`_plain_events` for events): an unpadded id, text fields unpadded or empty,
    numbers of the plain form, times UTC to the second, each field empty where that is a
    null marker. None when a field has no such form (an integer or boolean field, a
    timestamp format): every row then takes the careful path."""
    columns = [f"{last_code(raw_id)} AS __plain_last"]
    tests = [unpadded(raw_id, "__plain_last")]
    values = {"lead_id": raw_id, "__problem": "CAST(NULL AS VARCHAR)"}
    if not _plain_fields(cells, plan, scanned, {"string", "number", "datetime"}, columns, tests, values):
        return None
    return Plain(columns, " AND ".join(f"({t})" for t in tests), values)


def _check_rules(rules: list[ActivityRule], allowed: Collection[str]) -> None:
    for i, rule in enumerate(rules):
        if rule.type not in allowed:
            raise InputError(
                f"activity rule {i} makes events of unknown type {rule.type!r}",
                hint=f"known types: {', '.join(sorted(allowed))}",
            )


def _rule_columns(rule: ActivityRule) -> list[str]:
    names = list(rule.when_column_equals or {})
    if rule.count_column:
        names.append(rule.count_column)
    if isinstance(rule.at, AtColumn):
        names.append(rule.at.column)
    return names + list(rule.fields.values())


def _rule_sql(cells: Cells, mapping: Mapping, index: int, rule: ActivityRule, as_of: datetime,
              scanned: Scanned) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """Columns ``a{i}__count``/``a{i}__at``/``a{i}__f__NAME`` and the rule's check."""
    prefix = f"a{index}__"
    tests = []
    for column, expected in (rule.when_column_equals or {}).items():
        accepted = [expected] if isinstance(expected, str) else expected
        cell = "COALESCE(" + cells.stripped(quote(column)) + ", '')"
        tests.append(f"{cell} IN ({', '.join(literal(v) for v in accepted)})")
    when = " AND ".join(tests) or "TRUE"
    checks: list[tuple[str, str, str, str]] = []
    if rule.count_column:
        cell = quote(rule.count_column)
        counted = cells.lookup(cell, "BIGINT", _Count(rule, mapping))
        count = f"COALESCE({counted.value}, 0)"
        checks.append((f"({when}) AND ({counted.reason}) IS NOT NULL", literal(rule.count_column), cell,
                       counted.reason))
    else:
        count = "1"
    if isinstance(rule.at, AtColumn):
        at_spec = FieldSpec(column=rule.at.column, type="datetime", formats=rule.at.formats)
        at = cells.field(at_spec, True)
        cell = quote(rule.at.column)
        missing = literal(f"no timestamp for the {rule.type!r} activity")
        reason = f"COALESCE({at.reason}, CASE WHEN ({at.value}) IS NULL THEN {missing} END)"
        checks.append((f"({when}) AND ({count}) > 0 AND ({reason}) IS NOT NULL", literal(rule.at.column),
                       cell, reason))
        at_value = at.value
    else:
        at_value = f"CAST({literal(as_of.isoformat())} AS TIMESTAMPTZ)"
    selects = [f"CASE WHEN {when} THEN {count} ELSE 0 END AS {prefix}count", f"{at_value} AS {prefix}at"]
    for name, column in rule.fields.items():
        selects.append(f"{cells.cleaned(column, True)} AS {quote(prefix + 'f__' + name)}")
    return selects, checks


class _Count:
    """An activity rule's count cell, as ``engine.io.records._Activity._count`` reads it."""

    def __init__(self, rule: ActivityRule, mapping: Mapping) -> None:
        self.rule, self.nulls = rule, null_set(mapping.null_values)

    def __call__(self, raw: str) -> int | None:
        if raw.strip().casefold() in self.nulls:
            return 0
        number = to_number(raw)
        if number < 0 or number != int(number):
            raise ConversionError(f"{raw!r} is not a count (a whole number >= 0)")
        if number > self.rule.max_count:
            raise ConversionError(f"count {raw} exceeds max_count {self.rule.max_count} of the activity rule")
        return int(number)


def activity_events(con: Any, mapping: Mapping, event_columns: list[str]) -> None:
    """Table ``activity_events``: the events activity rules make for each usable lead row."""
    parts = []
    for index, rule in enumerate(mapping.leads.activity):
        prefix = f"a{index}__"
        fields = [f"{quote(prefix + 'f__' + name)} AS {quote(name)}" if name in rule.fields
                  else f"CAST(NULL AS VARCHAR) AS {quote(name)}" for name in event_columns]
        parts.append(
            f"SELECT {ROW}, lead_id, lead_id || '#a{index}.' || CAST(k AS VARCHAR) AS event_id, "
            f"{prefix}at AS occurred_at, {literal(rule.type)} AS type, k AS seq"
            + "".join(f", {f}" for f in fields)
            + f" FROM lead_rows, range({prefix}count) AS r(k) WHERE __reason IS NULL AND {prefix}count > 0"
        )
    if not parts:
        names = "".join(f", CAST(NULL AS VARCHAR) AS {quote(n)}" for n in event_columns)
        parts.append("SELECT CAST(NULL AS BIGINT) AS __row, CAST(NULL AS VARCHAR) AS lead_id, "
                     "CAST(NULL AS VARCHAR) AS event_id, CAST(NULL AS TIMESTAMPTZ) AS occurred_at, "
                     f"CAST(NULL AS VARCHAR) AS type, CAST(NULL AS BIGINT) AS seq{names} WHERE FALSE")
    con.execute(f"CREATE OR REPLACE TEMP TABLE activity_events AS {' UNION ALL '.join(parts)}")


# -- events -------------------------------------------------------------------------------


def event_rows(inputs: Inputs, mapping: Mapping, path: Any, encoding: str | None,
               allowed: Collection[str]) -> tuple[Scanned, Plan]:
    """Table ``event_rows``: each row's lead id, type, instant, id, fields and first problem."""
    scanned, plan, cells, selects, derived, _ = _event_selects(inputs, mapping, path, encoding, allowed)
    _materialize(inputs, cells, selects, "event_rows", scanned, derived)
    return scanned, plan


@dataclass(frozen=True)
class Stream:
    """:func:`event_stream`'s answer: the plan of the events' fields, the SELECT, and the
    SQL of each row's type code over it (:func:`type_codes`; None when the types have none).

    ``select`` leaves a plain row's lead id as it is when only its last character could be
    whitespace: the fold checks the ids it grouped by instead (3M cells' last character
    are some 80 ms of CPU at 100k leads; issue #17). ``checked`` tests each row's, for a
    file where that check found a padded id (:func:`engine.sql.streamed.fold`)."""

    plan: Plan
    select: str
    type_code: str | None
    checked: str


def event_stream(inputs: Inputs, mapping: Mapping, path: Any, encoding: str | None,
                 allowed: Collection[str]) -> Stream | None:
    """The SELECT over DuckDB's reader of a CSV events file: the converted columns of
    ``event_rows`` without row numbers, and ``__bad`` — the row has a problem or a cell
    only Python can convert. Nothing is stored (:mod:`engine.sql.streamed`); None when
    the file is not read lazily by DuckDB (the caller takes the general path)."""
    scanned, plan, cells, selects, derived, plain = _event_selects(inputs, mapping, path, encoding, allowed,
                                                                   raw=True)
    if scanned.lazy is None:
        inputs.drop(scanned.table)
        return None
    assert selects[0] == ROW
    # a NULL cell of the raw scan was not read as text (Inputs.scan): the row is bad
    unread = [quote(c) for c in scanned.present]
    checked = cells.stream(selects[1:], derived, plain[0], unread)
    select = cells.stream(selects[1:], derived, plain[1], unread) if plain[1] is not None else checked
    codes = type_codes(allowed)
    assert mapping.events is not None
    if codes is None:
        code = None
    elif mapping.events.type is not None:  # the stream selects it (_type_code)
        code = "__type"
    else:  # one constant type: its code (NULL when it is not one of the playbook's)
        code = _code_of("type", codes)
    return Stream(plan, select, code, checked)


def _event_selects(inputs: Inputs, mapping: Mapping, path: Any, encoding: str | None,
                   allowed: Collection[str], raw: bool = False
                   ) -> tuple[Scanned, Plan, Cells, list[str], str, tuple[Plain | None, Plain | None]]:
    """The scanned events file and the select of ``event_rows``: converted columns, first
    problem; and, for the stream (``raw``; ``event_rows`` has no use for them), the plain
    rows' values (:func:`_plain_events`), with and without the lead id's last character
    tested."""
    spec = mapping.events
    if spec is None:
        raise InputError("the mapping has no 'events' section", hint="add one or omit --events")
    plan = _plan(spec.fields, spec.fields_required)
    needed = [spec.lead_id, spec.at, *(c for c in (spec.type, spec.id) if c), *plan.required]
    columns, first_keys = inputs.columns(path, encoding)
    _check_columns(Scanned("event_scan", path, columns, [], first_keys), needed)
    wanted = [*needed, *(s.column for s in plan.fields.values())]
    scanned = inputs.scan(path, "event_scan", encoding, wanted, raw=raw)
    cells = Cells(inputs.con, "event_scan", mapping)
    raw_id = quote(spec.lead_id)
    stripped_id = cells.stripped(raw_id)
    selects = [ROW, f"{stripped_id} AS lead_id"]
    checks = [(f"COALESCE({stripped_id}, '') = ''", literal(spec.lead_id), raw_id,
               literal("missing lead id"))]
    kind = _EventType(spec.type, spec.type_constant, spec.types, allowed)
    derived = PROBLEM_COLUMNS
    if spec.type is not None:
        cell = quote(spec.type)
        common = [*allowed, *spec.types]  # the playbook's types and the mapping's renames
        typed = cells.lookup(cell, "VARCHAR", kind, known=common)
        shown = cells.lookup(cell, "VARCHAR", kind.shown, known=common)
        missing = literal("missing event type")
        reason = f"CASE WHEN {cell} IS NULL THEN {missing} ELSE {typed.reason} END"
        type_sql = typed.value
        stored, decoded = _type_code(typed.value, allowed)
        selects.append(stored)
        derived += decoded
        checks.append((f"({reason}) IS NOT NULL", literal(spec.type), f"COALESCE({shown.value}, {cell})",
                       reason))
    else:
        assert spec.type_constant is not None
        constant = spec.type_constant
        type_sql = literal(constant)
        selects.append(f"{literal(constant)} AS type")
        if constant not in allowed:
            checks.append(("TRUE", "NULL", literal(constant), literal(kind.unknown(constant))))
    at = cells.field(FieldSpec(column=spec.at, type="datetime", formats=spec.formats), True)
    at_cell = quote(spec.at)
    at_reason = f"COALESCE({at.reason}, CASE WHEN ({at.value}) IS NULL THEN 'missing timestamp' END)"
    selects.append(f"{at.value} AS occurred_at")
    checks.append((f"({at_reason}) IS NOT NULL", literal(spec.at), at_cell, at_reason))
    values: dict[str, tuple[str, str]] = {}
    fields, field_checks = _fields_sql(cells, plan, scanned, values)
    selects += fields
    checks += field_checks
    for required, (name, ok) in required_of(allowed).items():  # engine.io.records.EventTypes
        value, column = values.get(name, ("CAST(NULL AS VARCHAR)", ""))
        listed = ", ".join(literal(v) for v in sorted(ok))
        bad = f"({type_sql}) = {literal(required)} AND COALESCE(({value}) IN ({listed}), FALSE) = FALSE"
        checks.append((bad,
                       literal(column) if column else "NULL", quote(column) if column else "NULL",
                       literal(required_reason(required, name, ok))))
    if spec.id:
        selects.append(f"NULLIF({cells.stripped(quote(spec.id))}, '') AS event_id")
    else:  # a constant: in the view, not stored for every event
        derived += ", CAST(NULL AS VARCHAR) AS event_id"
    plain = ((_plain_events(cells, mapping, plan, scanned, kind, allowed),
              _plain_events(cells, mapping, plan, scanned, kind, allowed, id_end=False)) if raw
             else (None, None))
    return scanned, plan, cells, [*selects, _problem(checks)], derived, plain


def _plain_events(cells: Cells, mapping: Mapping, plan: Plan, scanned: Scanned, kind: _EventType,
                  allowed: Collection[str], id_end: bool = True) -> Plain | None:
    """The event rows SQL converts the quick way with no reject (:class:`engine.sql.cells.Plain`):
    an unpadded lead id, a type cell that is one of the playbook's types (or a rename of
    one) as it is, a timestamp UTC to the second, text fields unpadded or empty. None when
    some column has no such form (number or boolean fields, timestamp formats, event ids,
    types that require field values): every row then takes the careful path.

    Without ``id_end``, a lead id's last character is not tested: the caller checks the
    ids it grouped by instead (:func:`engine.sql.streamed.fold`)."""
    spec = mapping.events
    assert spec is not None
    codes = type_codes(allowed)
    if spec.id or required_of(allowed) or codes is None:
        return None
    raw_id = quote(spec.lead_id)
    # each text cell's last character's code, computed once for its two tests (unpadded)
    columns = [f"{last_code(raw_id)} AS __plain_last"] if id_end else []
    tests = [unpadded(raw_id, "__plain_last") if id_end else starts_unpadded(raw_id)]
    values = {"lead_id": raw_id, "__problem": "CAST(NULL AS VARCHAR)"}
    if spec.type is not None:
        known = []
        for raw in sorted({*allowed, *spec.types}):
            try:
                known.append(f"WHEN {literal(raw)} THEN {codes[kind(raw)]}")
            except ConversionError:
                continue
        columns.append(f"CAST(CASE {quote(spec.type)} {' '.join(known)} END AS UTINYINT) AS __plain_type")
        tests.append("__plain_type IS NOT NULL")
        values["__type"] = "__plain_type"
    elif spec.type_constant is not None and spec.type_constant in allowed:
        values["type"] = literal(spec.type_constant)
    else:
        return None
    instant = cells.plain_instant(FieldSpec(column=spec.at, type="datetime", formats=spec.formats))
    if instant is None:
        return None
    columns.append(f"{instant} AS __plain_at")
    tests.append("__plain_at IS NOT NULL")
    values["occurred_at"] = "__plain_at"
    if not _plain_fields(cells, plan, scanned, {"string"}, columns, tests, values):
        return None
    return Plain(columns, " AND ".join(f"({t})" for t in tests), values)


def _plain_fields(cells: Cells, plan: Plan, scanned: Scanned, kinds: set[str], columns: list[str],
                  tests: list[str], values: dict[str, str]) -> bool:
    """Each field's plain test and value, added to ``columns`` (computed first), ``tests`` and
    ``values``; False when a field has no plain form (its type not in ``kinds``, a time
    format)."""
    for name, field in plan.fields.items():
        alias = quote("f__" + name)
        if scanned.columns is not None and field.column not in scanned.columns:
            values[alias] = f"CAST(NULL AS {SQL_TYPES[field.type]})"
        elif field.type not in kinds:
            return False
        elif field.type == "string":
            last = f"__plain_last{len(columns)}"
            columns.append(f"{last_code(quote(field.column))} AS {last}")
            test, values[alias] = cells.plain_text(field, last)
            tests.append(test)
        elif field.type == "number":
            test, values[alias] = cells.plain_number(field)
            tests.append(test)
        else:  # datetime
            at = f"__plain_at{len(columns)}"
            found = cells.plain_datetime(field, at)
            if found is None:
                return False
            columns.append(found[0])
            tests.append(found[1])
            values[alias] = at
    return True


def _type_code(value: str, allowed: Collection[str]) -> tuple[str, str]:
    """(stored column, view column) for the event type: a one-byte code of the playbook's
    types (:func:`type_codes`), named back in the view. A type is one of them or NULL
    (the row is rejected); text took 13 bytes an event of DuckDB's memory, and at 1M
    leads the events table spills to disk (issue #17)."""
    codes = type_codes(allowed)
    if codes is None:
        return f"{value} AS type", ""
    name = " ".join(f"WHEN {i} THEN {literal(t)}" for t, i in codes.items())
    return f"{_code_of(value, codes)} AS __type", f", CAST(CASE __type {name} END AS VARCHAR) AS type"


def _code_of(value: str, codes: dict[str, int]) -> str:
    """The one-byte code of type ``value`` (SQL text), NULL for a name ``codes`` lacks."""
    branches = " ".join(f"WHEN {literal(t)} THEN {i}" for t, i in codes.items())
    return f"CAST(CASE {value} {branches} END AS UTINYINT)"


def type_codes(allowed: Collection[str]) -> dict[str, int] | None:
    """Each of the playbook's types → its one-byte code (:func:`_type_code`); None when
    there are none or too many for a byte (the type is then stored as text)."""
    types = sorted(allowed)
    return {t: i for i, t in enumerate(types)} if 0 < len(types) <= 255 else None


class _EventType:
    """A type cell → the playbook's event type, as ``engine.io.records._event_type`` decides."""

    def __init__(self, column: str | None, constant: str | None, renames: dict[str, str],
                 allowed: Collection[str]) -> None:
        self.column, self.constant, self.renames, self.allowed = column, constant, renames, allowed

    def unknown(self, kind: str) -> str:
        return f"unknown event type {kind!r} (known: {', '.join(sorted(self.allowed))})"

    def _kind(self, cell: str) -> str | None:
        raw = cell.strip()
        return self.renames.get(raw, raw) if raw else None

    def __call__(self, cell: str) -> str:
        kind = self._kind(cell)
        if kind is None:
            raise ConversionError("missing event type")
        if kind not in self.allowed:
            raise ConversionError(self.unknown(kind))
        return kind

    def shown(self, cell: str) -> str | None:
        """The value a reject shows: the renamed type when it is unknown, else the cell."""
        kind = self._kind(cell)
        return kind if kind is not None and kind not in self.allowed else None



def _materialize(inputs: Inputs, cells: Cells, selects: list[str], table: str, scanned: Scanned,
                 derived: str, plain: Plain | None = None) -> None:
    """The converted rows as ``table`` (a view adding ``derived`` to the stored columns); the
    scanned cells, no longer needed, dropped.

    A CSV file scanned lazily (no copy of its text cells yet) is converted straight from
    DuckDB's reader when that keeps the file's order (:meth:`Cells.materialize_in_order`);
    otherwise its cells are copied, numbered, first. If DuckDB cannot read it after all, it
    is marked for engine.io's reader and the inputs are prepared again (Renumber).
    """
    from engine.sql.opening import driver

    if scanned.lazy is not None:
        assert selects[0] == ROW  # numbered by the converted table's order instead
        try:
            done = cells.materialize_in_order(selects[1:], table, row_offset=2, derived=derived, plain=plain)
        except driver().Error:
            inputs.careful.add(scanned.path)
            inputs.drop(scanned.table)
            raise Renumber(scanned.path) from None
        if done:
            inputs.drop(scanned.table)
            return
        inputs.copy_scan(scanned)
    cells.materialize(selects, table, derived)
    inputs.drop(scanned.table)

def event_field_sql(plan: Plan, name: str) -> str:
    """An event field as the decision query reads it (text)."""
    spec = next((s for n, s in plan.fields.items() if n == name), None)
    if spec is None:
        return "CAST(NULL AS VARCHAR)"
    value = quote("f__" + name)
    return value if SQL_TYPES[spec.type] == "VARCHAR" else f"CAST({value} AS VARCHAR)"
