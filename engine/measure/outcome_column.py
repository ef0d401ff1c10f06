"""TEMPORARY: read a converted/not-converted column by name, until outcomes have their own reader.

Issue #15 item 1 gives outcomes their own mapping section and ``--outcomes`` reader
(``engine/measure/outcomes.py``, branch h-outcomes). Until it is merged, ``engine learn
--outcome-column NAME`` reads one column of the leads file (or of ``--outcomes FILE``),
keyed by the mapping's lead id column. Replace this module with that reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.io import InputError, Mapping, Reject, read_columns, read_rows


@dataclass
class Outcomes:
    """Converted or not per lead id, and the rows that could not say."""

    converted: dict[str, bool] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)


def read_outcome_column(path: Path, column: str, mapping: Mapping, encoding: str | None = None) -> Outcomes:
    """``column`` of ``path`` as booleans (the mapping's true/false words), by lead id.

    An empty or unreadable cell, or a lead id given twice with different values, is a
    reject (reported, never guessed); the lead is then left out of learning.
    """
    id_column = mapping.leads.id
    names = read_columns(path, encoding=encoding or mapping.encoding)
    for wanted in (id_column, column):
        if names is not None and wanted not in names:
            raise InputError(f"no column {wanted!r} for the outcome", file=path,
                             hint="--outcome-column names the converted column of the leads file "
                                  "(or of --outcomes FILE); it is matched to leads by the mapping's id")
    true_words = {w.lower() for w in mapping.true_values}
    false_words = {w.lower() for w in mapping.false_values}
    nulls = set(mapping.null_values)
    found = Outcomes()
    rejects: list[Reject] = []
    conflicting: set[str] = set()
    for row, cells in read_rows(path, encoding=encoding or mapping.encoding, on_reject=rejects.append):
        lead_id = (cells.get(id_column) or "").strip()
        raw = cells.get(column)
        text = (raw or "").strip()
        if not lead_id:
            rejects.append(Reject(str(path), row, id_column, raw, "no lead id"))
            continue
        if text in nulls or not text:
            rejects.append(Reject(str(path), row, column, raw, "no outcome"))
            continue
        if text.lower() in true_words:
            value = True
        elif text.lower() in false_words:
            value = False
        else:
            rejects.append(Reject(str(path), row, column, raw, f"not a yes/no outcome: {text!r}"))
            continue
        if found.converted.setdefault(lead_id, value) != value:
            reason = f"lead {lead_id!r} has two different outcomes"
            rejects.append(Reject(str(path), row, column, raw, reason))
            conflicting.add(lead_id)
    for lead_id in conflicting:
        del found.converted[lead_id]
    found.rejects = rejects
    return found
