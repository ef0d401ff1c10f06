"""The leads of a CRM export as cases: for ``engine diff`` (impact) and ``engine explain``.

Streams the export through the same readers ``engine evaluate`` uses (mappings,
encodings, rejects), so a reviewer sees how a rule change moves real leads, not
just the fixtures. Rejected rows are counted, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.diff import Case
from engine.diff_impact import QueueCut
from engine.io import (
    EventsFile,
    InputError,
    LeadsFile,
    Mapping,
    Reject,
    iter_leads_with_events,
    load_mapping,
    read_columns,
)
from engine.io.mapping import in_zone_unless_set
from engine.io.timestamps import parse_timestamp


@dataclass
class ExportSource:
    """Where the export is and how to read it; ``rejected`` counts bad rows as they stream."""

    leads: Path
    events: Path | None
    mapping: str
    as_of: str
    outcomes: Path | None = None
    rejected: int = 0
    outcome_note: str | None = None
    samples: list[Reject] = field(default_factory=list)

    def _reject(self, reject: Reject) -> None:
        self.rejected += 1
        if len(self.samples) < 3:
            self.samples.append(reject)

    def cases(self, cp: CompiledPlaybook) -> Iterator[Case]:
        """Each lead of the export with its events, decided at ``as_of`` by both versions."""
        self.rejected, self.samples = 0, []
        try:
            as_of: datetime = parse_timestamp(self.as_of, default_tz=cp.tz)
            mapping = load_mapping(self.mapping)
            mapping = in_zone_unless_set(mapping, cp.playbook.timezone)  # as engine evaluate
            allowed = frozenset(cp.playbook.events)
            leads = LeadsFile(self.leads, mapping, on_reject=self._reject, as_of=as_of,
                              allowed_types=allowed)
            events = (EventsFile(self.events, mapping, on_reject=self._reject,
                                 allowed_types=allowed) if self.events is not None else ())
            pairs = iter_leads_with_events(leads, events, on_reject=self._reject)
            for lead, history in pairs:
                yield Case(lead.lead_id, lead.fields, history, as_of)
        except (InputError, ValueError) as error:
            raise EngineError(f"export for impact: {error}") from None

    def measure(self, base: CompiledPlaybook, head: CompiledPlaybook) -> Any:
        """Outcome impact's observer maker for :func:`engine.diff.diff_playbooks`, or None
        when there are no outcomes (the mapping has no ``outcomes`` section, no ``--outcomes``).

        The maker reads the outcomes (only for a changed playbook), before any lead is decided.
        """
        try:
            mapping = in_zone_unless_set(load_mapping(self.mapping), head.playbook.timezone)
        except (InputError, ValueError) as error:
            raise EngineError(f"export for impact: {error}") from None
        self.outcome_note = None
        if mapping.outcomes is None and self.outcomes is None:
            return None
        if self.outcomes is None:  # not asked for: measured only when the export carries them
            self.outcome_note = self._unmeasured(mapping)
            if self.outcome_note is not None:
                return None

        def make(cut: QueueCut) -> list[Any]:
            from engine.diff_outcomes import OutcomeImpact, after_contact_reads
            from engine.measure.outcomes import read_created, read_outcomes

            try:
                outcomes = read_outcomes(mapping, self.leads, self.outcomes)
                created = read_created(mapping, self.leads) if outcomes.dated else {}
                as_of = parse_timestamp(self.as_of, default_tz=head.tz)
            except (InputError, ValueError) as error:
                raise EngineError(f"outcomes for impact: {error}") from None
            late = mapping.after_contact_fields()
            warnings = []
            for side, cp in (("before", base), ("after", head)):
                reads = after_contact_reads(cp, late)
                if reads:
                    warnings.append(f"{side}: {'; '.join(reads)}, written by sales after contacting "
                                    "the lead: figures are optimistic")
            return [OutcomeImpact(cut, outcomes, as_of, created, tuple(warnings))]

        return make

    def _unmeasured(self, mapping: Mapping) -> str | None:
        """Why the mapping's outcomes cannot come from this export (then the plan says so and
        measures nothing), or None. Asked for with ``--outcomes``, any such problem is an error."""
        spec = mapping.outcomes
        assert spec is not None
        if spec.source == "file":
            return "outcomes not measured: the mapping reads them from a separate file (give --outcomes FILE)"
        try:
            columns = read_columns(self.leads, encoding=mapping.encoding)
        except (InputError, ValueError):
            return None  # the leads file's own problem, reported where it is read
        missing = [c for c in spec.columns().values() if columns is not None and c not in columns]
        if missing:
            return (f"outcomes not measured: the export has no {', '.join(map(repr, missing))} "
                    "column(s) the mapping's outcomes section names")
        return None

    def find(self, cp: CompiledPlaybook, lead_id: str) -> Case:
        """One lead of the export with its events (``engine explain --leads``), or an error."""
        for case in self.cases(cp):
            if case.lead_id == lead_id:
                return case
        rejected = f"; {self.rejected} row(s) were rejected" if self.rejected else ""
        first = f" (e.g. row {self.samples[0].row}: {self.samples[0].reason})" if self.samples else ""
        raise EngineError(f"lead {lead_id!r} is not in {self.leads}{rejected}{first}")

    def note(self) -> str:
        """What the summary says about the export: where it came from, what was rejected,
        why outcomes were not measured."""
        text = f"export {self.leads}" + (f" + {self.events}" if self.events else "")
        if self.rejected:
            first = "; ".join(f"row {r.row}: {r.reason}" for r in self.samples)
            text += f" ({self.rejected} row(s) rejected, e.g. {first})"
        if self.outcome_note:
            text += f"; {self.outcome_note}"
        return text
