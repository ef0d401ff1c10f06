"""Outcomes: what happened to each lead after the decision, read apart from its fields.

An :class:`Outcome` is never part of a lead's fields or events, so no playbook
expression can read one; ``engine validate --mapping`` also refuses a playbook lead
field named like an outcome (:mod:`engine.measure.leakage`). Outcomes come from the
mapping's ``outcomes`` section, either from the leads file's own columns
(X Education ``Converted``, Salesforce ``IsConverted``) or from a separate file given
as ``--outcomes`` (Olist closed deals, Opportunities, HubSpot deals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.io import ConvertedSpec, FieldSpec, InputError, Mapping, Reject, read_columns, read_rows
from engine.io.convert import ConversionError, make_converter

#: Rejected outcome rows kept for the report (all are counted).
KEPT_REJECTS = 20


@dataclass(frozen=True)
class Outcome:
    """One lead's outcome; dates are aware datetimes (naive ones take the mapping's zone)."""

    lead_id: str
    converted: bool
    opportunity_at: datetime | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: float | None = None
    lost_reason: str | None = None

    def converted_within(self, start: datetime | None, end: datetime | None) -> bool | None:
        """Converted in ``(start, end]``; None when it converted at or before ``start``
        (already known when the decision was made: not a measurable outcome).

        Without a won date only the flag is known and any window counts it.
        """
        if not self.converted:
            return False
        if self.won_at is None or start is None:
            return True
        if self.won_at <= start:
            return None
        return end is None or self.won_at <= end


@dataclass
class Outcomes:
    """Every lead's outcome by id, with the rows that could not be read."""

    source: str
    by_lead: dict[str, Outcome] = field(default_factory=dict)
    #: From a separate file: every lead without a row there did not convert.
    absent_means_lost: bool = False
    #: Whether the export dates its conversions (a time split needs them).
    dated: bool = False
    rows_read: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)

    def get(self, lead_id: str) -> Outcome | None:
        """The lead's outcome; a lead absent from an outcomes file did not convert."""
        found = self.by_lead.get(lead_id)
        if found is None and self.absent_means_lost:
            return Outcome(lead_id, False)
        return found


def read_outcomes(mapping: Mapping, leads: Path, outcomes_file: Path | None = None, *,
                  encoding: str | None = None) -> Outcomes:
    """The outcomes the mapping describes, from ``leads`` or from ``outcomes_file``.

    Raises :class:`InputError` when the mapping has no ``outcomes`` section, the file
    the section names is missing, or a column it names is not in the file. A row whose
    cell cannot be read is a reject (counted, kept for the report), never dropped silently.
    """
    spec = mapping.outcomes
    if spec is None:
        raise InputError(f"the mapping {mapping.name or ''!s} has no outcomes section",
                         hint="add `outcomes: {converted: COLUMN}` (or source: file with lead_id) "
                              "to the mapping; see docs/backtest.md")
    if spec.source == "file":
        if outcomes_file is None:
            raise InputError("this mapping reads outcomes from a separate file (outcomes.source: file)",
                             hint="give it with --outcomes FILE")
        path, id_column = outcomes_file, spec.lead_id
    else:
        if outcomes_file is not None:
            raise InputError("this mapping reads outcomes from the leads file (outcomes.source: leads), "
                             "so --outcomes is not used", hint="drop --outcomes, or set source: file")
        path, id_column = leads, mapping.leads.id
    assert id_column is not None
    encoding = encoding or mapping.encoding
    wanted = {"lead id": id_column, **spec.columns()}
    columns = read_columns(path, encoding=encoding)
    if columns is not None:
        missing = [f"{column!r} ({what})" for what, column in wanted.items() if column not in columns]
        if missing:
            raise InputError(f"outcome column(s) not in the file: {', '.join(missing)}", file=path,
                             hint="correct the mapping's outcomes section or give the right file")
    result = Outcomes(source=str(path), absent_means_lost=spec.source == "file",
                      dated=spec.won_at is not None)
    parse = _row_parser(mapping)
    for number, row in read_rows(path, encoding=encoding):
        result.rows_read += 1
        try:
            outcome = parse(row)
        except _BadCell as bad:
            result.rejected += 1
            if len(result.rejects) < KEPT_REJECTS:
                result.rejects.append(Reject(str(path), number, bad.column, row.get(id_column) or "",
                                             bad.reason))
            continue
        if outcome is None:
            continue
        before = result.by_lead.get(outcome.lead_id)
        result.by_lead[outcome.lead_id] = outcome if before is None else _merge(before, outcome)
    return result


class _BadCell(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def _row_parser(mapping: Mapping) -> Any:
    spec = mapping.outcomes
    assert spec is not None
    id_column = spec.lead_id if spec.source == "file" else mapping.leads.id
    assert id_column is not None

    def converter(column: str | None, kind: str) -> Any:
        if column is None:
            return None
        return make_converter(FieldSpec(column=column, type=kind), mapping)  # type: ignore[arg-type]

    dates = {name: converter(getattr(spec, name), "datetime")
             for name in ("opportunity_at", "won_at", "lost_at")}
    amount = converter(spec.amount, "number")
    reason = converter(spec.lost_reason, "string")
    is_converted = _converted(spec.converted, mapping)

    def cell(row: dict[str, str | None], column: str | None, convert: Any) -> Any:
        if column is None or convert is None:
            return None
        try:
            return convert(row.get(column))
        except (ConversionError, ValueError) as error:
            raise _BadCell(column, str(error)) from None

    def parse(row: dict[str, str | None]) -> Outcome | None:
        lead_id = (row.get(id_column) or "").strip()
        if not lead_id:
            raise _BadCell(id_column, "no lead id")
        converted = True if is_converted is None else cell(row, is_converted[0], is_converted[1])
        if converted is None:
            raise _BadCell(is_converted[0] if is_converted else None, "no converted value")
        values = {name: cell(row, getattr(spec, name), dates[name]) for name in dates}
        raw_amount = cell(row, spec.amount, amount)
        return Outcome(lead_id, bool(converted), values["opportunity_at"], values["won_at"],
                       values["lost_at"], float(raw_amount) if raw_amount is not None else None,
                       cell(row, spec.lost_reason, reason))

    return parse


def _converted(spec: str | ConvertedSpec | None, mapping: Mapping) -> tuple[str, Any] | None:
    """(column, cell → bool or None) for the ``converted`` entry; None: a row means converted."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec, make_converter(FieldSpec(column=spec, type="bool"), mapping)
    if spec.values is not None:
        wanted = frozenset(v.strip().casefold() for v in spec.values)

        def one_of(raw: str | None) -> bool | None:
            return None if raw is None else raw.strip().casefold() in wanted

        return spec.column, one_of
    flag = FieldSpec(column=spec.column, type="bool", true_values=spec.true_values,
                     false_values=spec.false_values)
    return spec.column, make_converter(flag, mapping)


def _merge(a: Outcome, b: Outcome) -> Outcome:
    """Several rows for one lead (deals, opportunities): converted if any row is; the
    earliest date of each kind; amounts of converted rows summed; the last lost reason."""

    def first(x: datetime | None, y: datetime | None) -> datetime | None:
        return y if x is None else x if y is None else min(x, y)

    won = a.converted or b.converted
    amounts = [o.amount for o in (a, b) if o.amount is not None and (o.converted or not won)]
    return Outcome(a.lead_id, a.converted or b.converted, first(a.opportunity_at, b.opportunity_at),
                   first(a.won_at, b.won_at), first(a.lost_at, b.lost_at),
                   sum(amounts) if amounts else None, b.lost_reason or a.lost_reason)



def read_created(mapping: Mapping, leads: Path, *, encoding: str | None = None) -> dict[str, datetime]:
    """Each lead's ``created_at`` (when the mapping has that datetime field): a lead created
    after an as-of instant was not a lead yet, so a time split leaves it out.

    Cells that cannot be read are skipped here: ``engine evaluate`` rejects those leads anyway.
    """
    spec = mapping.leads.fields.get("created_at")
    if spec is None:
        return {}
    field_ = FieldSpec(column=spec, type="datetime") if isinstance(spec, str) else spec
    if field_.type != "datetime":
        return {}
    convert = make_converter(field_, mapping)
    created: dict[str, datetime] = {}
    for _, row in read_rows(leads, encoding=encoding or mapping.encoding):
        try:
            value = convert(row.get(field_.column))
        except (ConversionError, ValueError):
            continue
        lead_id = (row.get(mapping.leads.id) or "").strip()
        if value is not None and lead_id:
            created[lead_id] = value
    return created
