"""Records: rows through a mapping into leads and events, with rejects for bad rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.io import InputError, Reject, load_mapping, parse_mapping, read_events, read_leads
from engine.io.mapping import with_timezone

SHARED = Path(__file__).parents[1].parent / "shared" / "data"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

MAPPING = parse_mapping(
    """
timezone: Asia/Tokyo
null_values: ["", "Select", "N/A"]
leads:
  id: lead_id
  fields:
    employees: {column: employees, type: number}
    title: title
    optin: {column: optin, type: bool}
    created_at: {column: created_at, type: datetime}
    phone: {column: phone, optional: true}
events:
  lead_id: lead_id
  at: occurred_at
  type: type
  id: event_id
  types: {"Visit Web Page": page_view}
  fields: {content: content_id}
"""
)


def test_leads_convert_and_reject_with_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        "lead_id,employees,title,optin,created_at\n"
        'L1,"1,200",部長,Yes,2026-01-01 09:00\n'
        "L2,many,課長,No,2026-01-01\n"
        ",5,x,No,2026-01-01\n"
        "L4,N/A,Select,no,not a date\n"
        "L5,,Select,,\n",
        encoding="utf-8",
    )
    rejects: list[Reject] = []
    leads = list(read_leads(path, MAPPING, on_reject=rejects.append))
    assert [lead.lead_id for lead in leads] == ["L1", "L5"]
    first = leads[0]
    assert first.row == 2
    assert first.fields == {
        "employees": 1200,
        "title": "部長",
        "optin": True,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "phone": None,
    }
    assert leads[1].fields["employees"] is None and leads[1].fields["title"] is None
    assert [(r.row, r.column, r.value) for r in rejects] == [
        (3, "employees", "many"),
        (4, "lead_id", ""),
        (5, "created_at", "not a date"),
    ]
    assert all(r.file == str(path) for r in rejects)
    assert "not a timestamp" in rejects[2].reason


def test_missing_column_says_which_and_suggests(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("lead_id,employes,title,optin,created_at\nL1,1,a,yes,2026-01-01\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, MAPPING, on_reject=lambda r: None))
    message = str(caught.value)
    assert caught.value.column == "employees"
    assert str(path) in message and "'employes'" in message and "did you mean" in message


def test_events_rename_types_and_reject_unknown(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "lead_id,occurred_at,type,event_id,content_id\n"
        "L1,2026-10-01T00:00:00Z,Visit Web Page,e1,pricing\n"
        "L1,2026-10-02T00:00:00Z,Dance,e2,\n"
        "L2,yesterday,email_open,e3,\n"
        "L2,2026-10-03T00:00:00+09:00,email_open,,\n",
        encoding="utf-8",
    )
    rejects: list[Reject] = []
    allowed = {"page_view", "email_open"}
    events = list(read_events(path, MAPPING, on_reject=rejects.append, allowed_types=allowed))
    assert [(e.lead_id, e.event.type, e.event.id, e.row) for e in events] == [
        ("L1", "page_view", "e1", 2),
        ("L2", "email_open", None, 5),
    ]
    assert events[0].event.fields == {"content": "pricing"}
    assert events[1].event.at == datetime(2026, 10, 2, 15, tzinfo=UTC)
    assert [e.event.seq for e in events] == [0, 1]
    assert [(r.row, r.column) for r in rejects] == [(3, "type"), (4, "occurred_at")]
    assert "unknown event type 'Dance'" in rejects[0].reason


def test_activity_rules_synthesize_deterministic_events(tmp_path: Path) -> None:
    mapping = parse_mapping(
        """
leads:
  id: Prospect ID
  activity:
    - {type: page_view, count_column: TotalVisits, at: as_of}
    - {type: email_open, when_column_equals: {"Last Activity": "Email Opened"}, at: as_of}
    - {type: mql_created, at: {column: Created, formats: ["%d-%m-%Y"]}, fields: {origin: Origin}}
"""
    )
    path = tmp_path / "leads.csv"
    path.write_text(
        "Prospect ID,TotalVisits,Last Activity,Created,Origin,\n"
        "a,2,Email Opened,01-02-2018,social,\n"
        "b,,SMS Sent,02-02-2018,,\n"
        "c,2.5,Email Opened,03-02-2018,x,\n"
        "d,1,SMS Sent,01-May,x,\n"
    )
    rejects: list[Reject] = []
    leads = list(read_leads(path, mapping, on_reject=rejects.append, as_of=AS_OF))
    assert [lead.lead_id for lead in leads] == ["a", "b"]
    a = leads[0].activity
    assert [(e.type, e.id) for e in a] == [
        ("page_view", "a#a0.0"),
        ("page_view", "a#a0.1"),
        ("email_open", "a#a1.0"),
        ("mql_created", "a#a2.0"),
    ]
    assert a[0].at == AS_OF and a[3].fields == {"origin": "social"}
    assert [(e.type, e.fields) for e in leads[1].activity] == [("mql_created", {"origin": None})]
    assert [(r.row, r.column, r.value) for r in rejects] == [
        (4, "TotalVisits", "2.5"),
        (5, "Created", "01-May"),
    ]
    with pytest.raises(InputError, match="as-of"):
        list(read_leads(path, mapping, on_reject=rejects.append))


needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data (real exports, not in the repo) is absent"
)


@needs_shared
def test_leads_x_education_through_its_mapping() -> None:
    rejects: list[Reject] = []
    path = SHARED / "leads-x-education" / "Leads.csv"
    mapping = load_mapping("leads-x-education")
    leads = list(read_leads(path, mapping, on_reject=rejects.append, as_of=AS_OF))
    assert len(leads) == 9240 and rejects == []
    # Converted is the outcome, read apart (engine.measure.outcomes), never a lead field
    assert all("converted" not in lead.fields for lead in leads)
    from engine.measure.outcomes import read_outcomes

    assert sum(o.converted for o in read_outcomes(mapping, path).by_lead.values()) == 3561
    assert leads[0].lead_id == "7927b2df-8bba-4d29-b9a2-b6e0beafe620" and leads[0].row == 2
    assert leads[0].fields["specialization"] is None  # "Select" is null
    second = leads[1]
    assert [e.type for e in second.activity] == ["page_view"] * 5 + ["email_open"]
    unsubscribed = sum(any(e.type == "unsubscribe" for e in lead.activity) for lead in leads)
    assert unsubscribed == 734


@needs_shared
def test_olist_dates_and_deals() -> None:
    folder = SHARED / "olist-marketing-funnel"
    # The preset sets no zone (issue #13 item 3): engine evaluate gives it the playbook's.
    mapping = with_timezone(load_mapping("olist"), "America/Sao_Paulo")
    rejects: list[Reject] = []
    leads = list(
        read_leads(folder / "olist_marketing_qualified_leads_dataset.csv", mapping, on_reject=rejects.append)
    )
    assert len(leads) == 8000 and rejects == []
    first = leads[0]
    assert first.fields["created_at"].date().isoformat() == "2018-02-01"
    assert first.activity[0].type == "mql_created"
    deals = list(read_events(folder / "olist_closed_deals_dataset.csv", mapping, on_reject=rejects.append))
    assert len(deals) == 842 and rejects == []
    won = deals[0].event
    assert won.type == "deal_won"
    assert won.at == datetime(2018, 2, 26, 22, 58, tzinfo=UTC)  # 19:58 in São Paulo
