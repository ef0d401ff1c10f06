"""Grouping: each lead with its events, in lead order, by merge or by on-disk index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import engine.io.grouping as grouping
from engine.events import Event
from engine.io import (
    EventsFile,
    InputError,
    LeadEvent,
    LeadRecord,
    LeadsFile,
    Reject,
    iter_leads_with_events,
    load_mapping,
)

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _lead(lead_id: str, row: int) -> LeadRecord:
    return LeadRecord(lead_id, {}, row)


def _event(lead_id: str, seq: int) -> LeadEvent:
    return LeadEvent(lead_id, Event("page_view", T0, {}, f"{lead_id}-{seq}", seq), "ev.csv", seq + 2)


def _summary(pairs: object) -> list[tuple[str, list[str | None]]]:
    return [(lead.lead_id, [e.id for e in events]) for lead, events in pairs]  # type: ignore[attr-defined]


EXPECTED = [
    ("A", ["A-0", "A-4"]),
    ("B", []),
    ("C", ["C-1", "C-3"]),
]


def test_unsorted_events_are_spilled_and_orphans_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    leads = [_lead("C", 2), _lead("A", 3), _lead("B", 4)]
    events = [_event("A", 0), _event("C", 1), _event("Z", 2), _event("C", 3), _event("A", 4)]
    rejects: list[Reject] = []
    result = _summary(iter_leads_with_events(leads, events, on_reject=rejects.append))
    assert result == [EXPECTED[2], EXPECTED[0], EXPECTED[1]]
    assert [(r.file, r.row, r.value) for r in rejects] == [("ev.csv", 4, "Z")]


def test_sorted_inputs_use_the_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_spill(*args: object) -> None:
        raise AssertionError("sorted inputs must not be spilled")

    monkeypatch.setattr(grouping, "_spill", no_spill)
    leads = [_lead("A", 2), _lead("B", 3), _lead("C", 4)]
    events = [
        _event("0", 5),
        _event("A", 0),
        _event("A", 4),
        _event("Bz", 6),
        _event("C", 1),
        _event("C", 3),
        _event("D", 7),
    ]
    rejects: list[Reject] = []
    assert _summary(iter_leads_with_events(leads, events, on_reject=rejects.append)) == EXPECTED
    assert [r.value for r in rejects] == ["0", "Bz", "D"]


def test_one_shot_iterators_are_spilled_unless_promised_sorted() -> None:
    leads = [_lead("A", 2), _lead("B", 3), _lead("C", 4)]
    events = [_event("A", 0), _event("A", 4), _event("C", 1), _event("C", 3)]
    got = _summary(iter_leads_with_events(iter(leads), iter(events), on_reject=lambda r: None))
    assert got == EXPECTED
    promised = iter_leads_with_events(iter(leads), iter(events), on_reject=lambda r: None, events_sorted=True)
    assert _summary(promised) == EXPECTED
    broken = iter_leads_with_events(
        iter(leads), iter(events[::-1]), on_reject=lambda r: None, events_sorted=True
    )
    with pytest.raises(InputError, match="not sorted"):
        _summary(broken)


def test_activity_comes_first_and_duplicates_are_rejected() -> None:
    synth = Event("email_open", T0, {}, "B#a0.0", 0)
    leads = [_lead("B", 2), LeadRecord("A", {}, 3, (synth,)), _lead("B", 4)]
    rejects: list[Reject] = []
    pairs = list(iter_leads_with_events(leads, [_event("A", 0)], on_reject=rejects.append))
    assert [(lead.row, [e.id for e in evs]) for lead, evs in pairs] == [
        (2, []),
        (3, ["B#a0.0", "A-0"]),
    ]
    assert [(r.row, r.reason) for r in rejects] == [(4, "lead id appears earlier in the leads file")]


def test_files_grouped_like_gen_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "_spill", None)  # must merge
    leads_csv = tmp_path / "leads.csv"
    events_csv = tmp_path / "events.csv"
    header = "lead_id,email,company_domain,industry,employees,title,country,lead_source,created_at\n"
    leads_csv.write_text(
        header
        + "".join(
            f"L{i:07d},u{i}@x.jp,x.jp,software,{i * 10},部長,JP,ad,2026-01-01T00:00:00Z\n"
            for i in range(1, 6)
        ),
        encoding="utf-8",
    )
    events_csv.write_text(
        "lead_id,occurred_at,type,content_id\n"
        "L0000001,2026-10-01T00:00:00Z,page_view,pricing\n"
        "L0000001,2026-10-02T00:00:00Z,inquiry,\n"
        "L0000003,2026-10-03T00:00:00Z,email_open,\n",
        encoding="utf-8",
    )
    mapping = load_mapping("canonical")
    rejects: list[Reject] = []
    pairs = list(
        iter_leads_with_events(
            LeadsFile(leads_csv, mapping, on_reject=rejects.append),
            EventsFile(events_csv, mapping, on_reject=rejects.append),
            on_reject=rejects.append,
        )
    )
    assert [(lead.lead_id, [e.type for e in evs]) for lead, evs in pairs] == [
        ("L0000001", ["page_view", "inquiry"]),
        ("L0000002", []),
        ("L0000003", ["email_open"]),
        ("L0000004", []),
        ("L0000005", []),
    ]
    assert pairs[0][1][0].fields == {"content": "pricing"}
    assert pairs[0][0].fields["employees"] == 10 and rejects == []
