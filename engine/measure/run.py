"""One ``engine learn`` run: read, decide, fit, write the proposal, check it, report.

Kept apart from the click command (parse, call this, render) so tests and scripts call
it in-process, and apart from :mod:`engine.measure.learn` (the fitting knows no files).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from engine.batch import parse_as_of
from engine.diagnostics import EngineError, Severity
from engine.fmt import write_atomic
from engine.io import EventsFile, InputError, LeadsFile, Reject, iter_leads_with_events, load_mapping
from engine.io.mapping import in_zone_unless_set
from engine.measure.features import Feature, build_table
from engine.measure.leakage import mapping_diagnostics
from engine.measure.learn import Settings, _libraries, learn
from engine.measure.learn_report import LearnReport
from engine.measure.outcomes import Outcomes, read_outcomes
from engine.measure.proposal import changes_of, write_proposal
from engine.validate import load_playbook, validate_path

#: Rejected rows named in the report's notes (the count is always given).
SHOWN_REJECTS = 5


def run_learn(playbook: Path, *, leads: Path, mapping: str, as_of: str, out: Path,
              settings: Settings, events: Path | None = None, outcomes: Path | None = None,
              propose: bool = True, encoding: str | None = None) -> LearnReport:
    """Learn the playbook's points from the export; write the proposal to ``out``.

    Outcomes are read as ``engine backtest`` reads them: the mapping's ``outcomes``
    section, from the leads file or ``outcomes`` (``--outcomes FILE``). A playbook whose
    rules could read an outcome is refused before any work (:mod:`engine.measure.leakage`).
    """
    _libraries()  # a missing scikit-learn is said before any work
    if out.resolve() == playbook.resolve():
        raise EngineError(f"--out {out} is the playbook itself; write the proposal to another file "
                          "and review it with `engine diff`")
    loaded = load_playbook(playbook)
    cp = loaded.compiled
    assert cp is not None and loaded.document is not None
    rejects: list[Reject] = []
    try:
        chosen = in_zone_unless_set(load_mapping(mapping), cp.playbook.timezone)
        found_by_check = mapping_diagnostics(cp, loaded.document, chosen)
        leaking = [d for d in found_by_check if d.severity is Severity.ERROR]
        if leaking:
            raise EngineError(f"{playbook}: a rule could read an outcome; nothing learned", leaking)
        at = parse_as_of(as_of, cp)
        found = read_outcomes(chosen, leads, outcomes, encoding=encoding)
        allowed = frozenset(cp.playbook.events)
        lead_rows = LeadsFile(leads, chosen, on_reject=rejects.append, as_of=at, allowed_types=allowed,
                              encoding=encoding)
        event_rows = (EventsFile(events, chosen, on_reject=rejects.append, allowed_types=allowed,
                                 encoding=encoding) if events is not None else ())
        pairs = iter_leads_with_events(lead_rows, event_rows, on_reject=rejects.append)
        try:
            table = build_table(cp, pairs, at, propose=propose)
        finally:
            close = getattr(pairs, "close", None)
            if close is not None:
                close()
    except InputError as error:
        raise EngineError(str(error)) from None
    labels = _labels(found, table.lead_ids, at)
    keep = [label is not None for label in labels]
    learned = table.select(keep)
    converted = [label for label in labels if label is not None]
    current = [f.points for f in learned.features]
    result = learn(learned.columns, converted, learned.excluded, current, settings)
    changes = changes_of(learned.features, result.points, learned.columns, converted)
    original = playbook.read_text(encoding="utf-8")
    text = write_proposal(original, str(playbook), changes)
    notes = list(learned.notes)
    if not learned.features:
        notes.append("nothing to learn: the playbook has no fit rules, no engagement section and no "
                     "declared lead fields to propose rules from")
    notes += _check_written(out, text)
    notes += _cap_notes(cp.fit_cap, cp.engagement_cap, learned.features, result.points)
    known = sum(1 for lead_id, label in zip(table.lead_ids, labels, strict=True)
                if label is None and found.get(lead_id) is not None)
    if known:
        notes.append(f"{known:,} lead(s) converted at or before --as-of (known when deciding): left out")
    if not found.dated:
        notes.append("outcomes carry no dates: a conversion before --as-of cannot be told from one after it")
    notes += [f"rejected: {r.file}:{r.row}: {r.reason}" for r in (rejects + found.rejects)[:SHOWN_REJECTS]]
    lead_file = str(leads)
    return LearnReport(
        playbook=str(playbook), proposal=str(out), settings=settings, result=result, changes=changes,
        leads_read=len(table.lead_ids) + sum(r.file == lead_file for r in rejects),
        leads_rejected=sum(r.file == lead_file for r in rejects), without_outcome=keep.count(False),
        outcome_rejects=found.rejected, features=len(learned.features),
        candidates=sum(f.kind == "candidate" for f in learned.features), notes=notes,
    )


def _labels(found: Outcomes, lead_ids: Sequence[str], at: datetime) -> list[bool | None]:
    """Converted or not per lead, as backtest measures it; None: no outcome, or converted at or
    before ``at`` (already known when deciding, so not something to learn)."""
    labels: list[bool | None] = []
    for lead_id in lead_ids:
        outcome = found.get(lead_id)
        labels.append(None if outcome is None else
                      outcome.converted_within(at if found.dated else None, None))
    return labels


def _check_written(out: Path, text: str) -> list[str]:
    """Write the proposal and validate it as ``engine validate`` would; a proposal that does
    not validate is removed (a bug, or list files that do not resolve from --out's folder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, text)
    result = validate_path(out)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if errors or not result.ok:
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise EngineError(f"{out}: the proposal does not validate, so it was not kept "
                          "(list files are read relative to the playbook: write --out beside it)", errors)
    return [f"the proposal has a warning: {d.message} ({d.path})" for d in result.diagnostics
            if d.severity is Severity.WARNING]


def _cap_notes(fit_cap: float | None, engagement_cap: float | None, features: list[Feature],
               points: tuple[int, ...]) -> list[str]:
    """Caps are not part of the fitted sum: say when the proposal can reach one."""
    notes = []
    fit_max = sum(p for f, p in zip(features, points, strict=True) if f.kind != "engagement" and p > 0)
    if fit_cap is not None and fit_max > fit_cap:
        notes.append(f"the proposal's fit can reach {fit_max}, above the fit cap {fit_cap:g}: the cap "
                     "flattens the ranking measured here; raise or remove it")
    engaged = any(f.kind == "engagement" and p for f, p in zip(features, points, strict=True))
    if engagement_cap is not None and engaged:
        notes.append(f"engagement is capped at {engagement_cap:g}; the figures are for uncapped points")
    return notes
