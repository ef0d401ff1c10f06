"""The SQL backend (DuckDB) gives exactly ``engine.evaluate.decide``'s rows, rounding included.

Leads and histories come from hypothesis (derandomized) and from hand-written edge
cases: window boundaries to the microsecond, NULL fields, duplicate event ids,
events after as_of, recycle cooldown boundaries, rounding ties.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.account_decide import decide_accounts
from engine.accounts import Member, uses_accounts
from engine.compile import CompiledPlaybook
from engine.decision import ROW
from engine.evaluate import decide
from engine.events import Event
from engine.sql.duckdb_backend import evaluate_duckdb
from engine.validate import load_playbook

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "sql_cases"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

Lead = tuple[str, dict[str, Any], list[Event]]


def compile_text(text: str, name: str) -> CompiledPlaybook:
    """A playbook written inline in a test, loaded, built and compiled (no problem allowed)."""
    from engine.build import build
    from engine.compile import compile_playbook
    from engine.load import load_text

    doc, problems = load_text(text, name)
    assert doc is not None, problems
    playbook, problems = build(doc)
    assert playbook is not None, problems
    cp, problems = compile_playbook(playbook, Path("."), doc)
    assert cp is not None, problems
    return cp


def _compiled(path: Path) -> CompiledPlaybook:
    cp = load_playbook(path).compiled
    assert cp is not None
    return cp


PLAYBOOKS = {
    "smb-saas": _compiled(ROOT / "playbooks" / "smb-saas.yaml"),
    "enterprise": _compiled(ROOT / "playbooks" / "enterprise.yaml"),
    "reference": _compiled(CASES / "reference.yaml"),
    "constructs": _compiled(CASES / "constructs.yaml"),
    "life": _compiled(CASES / "life.yaml"),
    "scoring": _compiled(ROOT / "playbooks" / "scoring.yaml"),  # computed points, rule and type caps
    # the same without recycling and due times: the kernel decides it from block totals (run_sums)
    "scoring-sums": compile_text(
        (ROOT / "playbooks" / "scoring.yaml").read_text(encoding="utf-8")
        .split("\nrecycle:")[0].replace(", sla: 2d", "") + "\n",
        "scoring-sums",
    ),
}


def _tables(cp: CompiledPlaybook, leads: Sequence[Lead]) -> tuple[pa.Table, pa.Table]:
    types = {
        "string": pa.string(),
        "number": pa.float64(),
        "bool": pa.bool_(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }
    fields = cp.playbook.lead.fields
    lead_cols: dict[str, pa.Array] = {"lead_id": pa.array([lid for lid, _, _ in leads], pa.string())}
    for name, kind in fields.items():
        values = [lead.get(name) for _, lead, _ in leads]
        if kind == "number":
            values = [None if v is None else float(v) for v in values]
        lead_cols[name] = pa.array(values, types[kind])
    rows = [(lid, e) for lid, _, events in leads for e in events]
    event_fields = sorted(
        {f for et in cp.playbook.events.values() for f in et.fields} | {"content", "reason"}
    )
    event_cols: dict[str, pa.Array] = {
        "lead_id": pa.array([lid for lid, _ in rows], pa.string()),
        "event_id": pa.array([e.id for _, e in rows], pa.string()),
        "occurred_at": pa.array([e.at for _, e in rows], pa.timestamp("us", tz="UTC")),
        "type": pa.array([e.type for _, e in rows], pa.string()),
        "seq": pa.array([e.seq for _, e in rows], pa.int64()),
    }
    for name in event_fields:
        event_cols[name] = pa.array([e.fields.get(name) for _, e in rows], pa.string())
    return pa.table(lead_cols), pa.table(event_cols)


def expected_rows(
    cp: CompiledPlaybook, leads: Sequence[Lead], as_of: datetime = AS_OF
) -> list[dict[str, Any]]:
    """The Python path's rows (``decide``; a playbook with accounts decides each lead with its
    account's other leads), in lead_id order: what every SQL engine must return."""
    if uses_accounts(cp):
        members = [Member(lid, lead, events) for lid, lead, events in leads]
        decisions = decide_accounts(cp, members, as_of, detail=False)
    else:
        decisions = [decide(cp, lead, events, as_of, lead_id=lid) for lid, lead, events in leads]
    return sorted((d.to_row() for d in decisions), key=lambda r: r["lead_id"])


#: The decision row's instants (as_of, recycle_until, due, overdue_since, …): text in the row.
INSTANTS = tuple(c.name for c in ROW if c.instant)


def instants_as_text(cp: CompiledPlaybook, row: dict[str, Any]) -> dict[str, Any]:
    """A warehouse's row with its instants spelled as ``Decision.to_row()`` spells them (the
    playbook's zone, ISO 8601, "" for none); a naive value (Spark's, in its UTC session) is UTC."""
    for key in INSTANTS:
        value = row[key]
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        row[key] = "" if value is None else value.astimezone(cp.tz).isoformat()
    return row


def assert_rows_equal(got: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]]) -> None:
    """Same rows, same columns in the same order, and scores with the same bits."""
    assert len(got) == len(expected)
    assert not got or list(got[0]) == list(expected[0])  # same columns, same order
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs, (
            mine["lead_id"],
            {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]},
        )
        for key in ("fit", "engagement", "priority"):  # 0.1 == 0.1 but also the same bits
            assert repr(mine[key]) == repr(theirs[key])


def assert_same(cp: CompiledPlaybook, leads: Sequence[Lead], as_of: datetime = AS_OF) -> None:
    lead_table, event_table = _tables(cp, leads)
    got = evaluate_duckdb(cp, lead_table, event_table, as_of).to_pylist()
    assert_rows_equal(got, expected_rows(cp, leads, as_of))


# -- generated leads and histories ------------------------------------------------------

_TITLES = [
    None,
    "",
    "Director",
    "部長",
    "課長",
    "Manager",
    "Student",
    "学生",
    "Head of IT",
    "chief",
    "VP",
    "CHİEF",
    "ΣΟΦΙΑ",
    "Straße HEAD",
]
_DOMAINS = [
    None,
    "rival1.example.com",
    "partner0.example.co.jp",
    "bad.example",
    "corp.example.jp",
    "toyota.example.jp",
    "a.example.jp",
    "b.example.jp",
    "c.example.jp",
    "d.example.jp",
]
_CONTENT = [
    None,
    "pricing",
    "price1",
    "company-profile",
    "case-study-07",
    "guide-a",
    "guide-b",
    "demo",
    "wp-x",
    "roi-calculator",
    "security-sheet",
    "seminar-1",
    "wp-howto-1",
    "case-study-",
    "case-study-*",
    "guide-*",
    "price?",
    "Pricing",
]
_REASONS = [None, "no_contact", "timing", "no_budget", "no_need", "later"]
_TEAMS = [None, "inside_sales", "field_sales", "marketing", "sales"]
_OUTCOMES = [None, "appointment", "connected", "no_answer"]
#: Offsets before as_of that sit on window edges (1, 2, 7, 14, 30, 90 days; cooldowns).
_EDGES = [d * 86400 + s for d in (0, 1, 2, 3, 5, 7, 10, 14, 30, 90, 120, 180) for s in (-1, 0, 1)]


def _offsets() -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(_EDGES),
        st.integers(-3 * 86400, 200 * 86400),
        st.floats(0, 40 * 86400).map(lambda s: round(s, 6)),
    )


@st.composite
def _lead(draw: st.DrawFn, cp: CompiledPlaybook, index: int) -> Lead:
    lead: dict[str, Any] = {}
    for name, kind in cp.playbook.lead.fields.items():
        if kind == "number":
            value: Any = draw(
                st.one_of(
                    st.none(),
                    st.integers(0, 20000),
                    st.floats(0, 2e6, allow_nan=False),
                    st.sampled_from([9, 10, 99, 100, 500, 999, 1000, 5000]),
                )
            )
        elif kind == "bool":
            value = draw(st.one_of(st.none(), st.booleans()))
        elif kind == "datetime":
            value = draw(
                st.one_of(st.none(), st.integers(0, 60 * 86400).map(lambda s: AS_OF - timedelta(seconds=s)))
            )
        elif name in ("title", "department"):
            value = draw(st.sampled_from([*_TITLES, "情報システム部", "IT", "CTO"]))
        elif "domain" in name:
            value = draw(st.sampled_from(_DOMAINS))
        elif name == "email":
            value = draw(st.sampled_from([None, "a@gmail.com", "b@corp.example.jp", "c@yahoo.co.jp",
                                          "d@Corp.Example.JP", "", "no-at-sign", "e@", "f@x@İSTANBUL.example",
                                          "g@toyota.example.jp"]))
        elif name == "country":
            value = draw(st.sampled_from([None, "JP", "US"]))
        elif name == "industry":
            value = draw(st.sampled_from([None, "software", "finance", "retail"]))
        elif name == "lead_source":
            value = draw(st.sampled_from([None, "inquiry", "web", "expo", "seminar", "ad"]))
        else:
            value = draw(st.sampled_from([None, "x"]))
        if value is not None:
            lead[name] = value
    types = sorted(cp.playbook.events)
    engagement = cp.playbook.scoring.engagement
    scored = sorted(engagement.points) if engagement else types  # the common activities
    count = draw(st.integers(0, 12))
    events = []
    for seq in range(count):
        etype = draw(st.sampled_from(scored if draw(st.integers(0, 9)) < 7 else types))
        at = AS_OF - timedelta(seconds=draw(_offsets()))
        fields: dict[str, Any] = {}
        declared = cp.playbook.events[etype].fields
        for name, pool in (
            ("content", _CONTENT),
            ("reason", _REASONS),
            ("outcome", _OUTCOMES),
            ("team", _TEAMS),
            ("item", [None, "budget", "authority", "need", "timing"]),
            ("name", [None, "evaluation", "negotiation", "approval"]),
        ):
            if name in declared:
                value = draw(st.sampled_from(pool))
                if value is not None:
                    fields[name] = value
        event_id = draw(st.one_of(st.none(), st.sampled_from(["e1", "e2", "e3"])))
        events.append(Event(etype, at, fields, event_id, seq))
    return f"L{index:03d}", lead, events


@pytest.mark.parametrize("name", sorted(PLAYBOOKS))
def test_generated_leads_decide_the_same(name: str) -> None:
    cp = PLAYBOOKS[name]

    # No shrinking: each example runs DuckDB; the failure message names the differing lead.
    @settings(
        max_examples=8,
        derandomize=True,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        # Many leads per example: one DuckDB query checks them all.
        leads = [data.draw(_lead(cp, i)) for i in range(data.draw(st.integers(1, 60)))]
        assert_same(cp, leads)

    check()


# -- hand-written edge cases ------------------------------------------------------------


def _at(seconds_before: float) -> datetime:
    return AS_OF - timedelta(seconds=seconds_before)


SMB_LEAD = {
    "email": "a@corp.example.jp",
    "company_domain": "corp.example.jp",
    "industry": "software",
    "employees": 1000,
    "title": "Director",
    "country": "JP",
    "lead_source": "web_form",
}


def window_edges_duplicates_and_future_events() -> tuple[CompiledPlaybook, list[Lead]]:
    cp = PLAYBOOKS["smb-saas"]
    day = 86400
    leads: list[Lead] = [
        ("edge-in", SMB_LEAD, [Event("inquiry", _at(14 * day - 0.000001))]),
        ("edge-out", SMB_LEAD, [Event("inquiry", _at(14 * day))]),
        ("future", SMB_LEAD, [Event("inquiry", _at(-1)), Event("page_view", _at(-0.000001))]),
        ("at-as-of", SMB_LEAD, [Event("inquiry", AS_OF)]),
        (
            "dup",
            SMB_LEAD,
            [
                Event("quote_request", _at(3), {}, "x", 0),
                Event("quote_request", _at(5), {}, "x", 1),
                Event("quote_request", _at(4), {}, "x", 2),
            ],
        ),
        (
            "dup-future",
            SMB_LEAD,
            [Event("inquiry", _at(-5), {}, "y", 0), Event("email_open", _at(5), {}, "y", 1)],
        ),
        (
            "surge-edge",
            SMB_LEAD,
            [
                Event("page_view", _at(7 * day)),
                Event("page_view", _at(7 * day - 1)),
                Event("page_view", _at(14 * day)),
                Event("page_view", _at(1)),
                Event("page_view", _at(2)),
            ],
        ),
        ("no-events-null-fields", {}, []),
    ]
    return cp, leads


def recycle_cooldown_boundaries_and_reentry() -> tuple[CompiledPlaybook, list[Lead]]:
    cp = PLAYBOOKS["smb-saas"]
    day = 86400
    leads: list[Lead] = [
        ("cooldown-ends-now", SMB_LEAD, [Event("disposition", _at(14 * day), {"reason": "no_contact"})]),
        (
            "cooldown-1us-left",
            SMB_LEAD,
            [Event("disposition", _at(14 * day - 0.000001), {"reason": "no_contact"})],
        ),
        (
            "latest-wins",
            SMB_LEAD,
            [Event("disposition", _at(100 * day), {"reason": "no_need"}), Event("deal_lost", _at(10 * day))],
        ),
        (
            "same-instant",
            SMB_LEAD,
            [
                Event("deal_lost", _at(day), {}, None, 0),
                Event("disposition", _at(day), {"reason": "timing"}, None, 1),
            ],
        ),
        (
            "reentered",
            SMB_LEAD,
            [Event("disposition", _at(20 * day), {"reason": "no_budget"}), Event("inquiry", _at(2 * day))],
        ),
        (
            "not-reentered",
            SMB_LEAD,
            [Event("disposition", _at(20 * day), {"reason": "no_budget"}), Event("email_open", _at(2 * day))],
        ),
        (  # the cooldown ends exactly at as_of, after the inquiry: due counts from its end
            "released-at-as-of",
            SMB_LEAD,
            [Event("disposition", _at(14 * day), {"reason": "no_contact"}), Event("inquiry", _at(3 * day))],
        ),
        (
            "released-before-last-activity",
            SMB_LEAD,
            [Event("disposition", _at(20 * day), {"reason": "no_contact"}), Event("inquiry", _at(3 * day))],
        ),
        (
            "unknown-reason",
            SMB_LEAD,
            [Event("disposition", _at(day), {"reason": "other"}), Event("inquiry", _at(day))],
        ),
        (  # a trigger after as_of neither recycles nor hides the one before it
            "future-trigger",
            SMB_LEAD,
            [
                Event("disposition", _at(5 * day), {"reason": "timing"}),
                Event("email_open", _at(4 * day)),
                Event("deal_lost", _at(-0.000001)),
                Event("inquiry", _at(-day)),
            ],
        ),
        (
            "only-future-trigger",
            SMB_LEAD,
            [Event("inquiry", _at(2 * day)), Event("disposition", _at(-1), {"reason": "no_need"})],
        ),
    ]
    return cp, leads


def rounding_ties_follow_python() -> tuple[CompiledPlaybook, list[Lead]]:
    """0.125 is a true tie (to even: 0.12); 2.675 is really 2.67499... (0.01 below)."""
    cp = PLAYBOOKS["constructs"]
    lead = {"employees": 3.0, "revenue": 10.0, "title": "x", "domain": "ok.example"}
    leads: list[Lead] = [
        (f"t{i}", lead, [Event("call", _at(s), {"outcome": "no_answer"}) for s in offsets])
        for i, offsets in enumerate([[0], [1], [86400 * 3], [86400 * 3, 7], [12345.678901]])
    ]
    return cp, leads


_WEIGHTS = """
apiVersion: engine/v1
kind: Playbook
metadata: {name: weights, version: "1"}
timezone: UTC
teams: {marketing: {}}
lead: {fields: {title: string}}
events: {view: {fields: [content]}, read: {fields: [content]}, other: {}}
content:
  "doc-*": {points: 3}
  doc-a: {stage: seen}
  "*": {points: 0.25}
scoring:
  engagement:
    half_life: 7d
    points:
      view: {points: 1, content: {"g-*": 4, g-x: 2, "g-?": 6, "*-z": 5}}
      read: {points: 0.5, content: catalogue}
      other: 2
stages:
  - {id: lead, owner: marketing}
  - {id: warm, owner: marketing, entry: engagement > 0}
handoffs:
  - {id: all, to: marketing, when: "True"}
"""


def content_points_exact_id_before_globs_first_glob_wins() -> tuple[CompiledPlaybook, list[Lead]]:
    """An exact id beats a glob it also matches (g-x: 2, not g-* or g-?); among globs the
    first declared wins; catalogue ids without points and unmatched ids get the type's
    points; a catch-all glob does not make a missing content match."""
    cp = compile_text(_WEIGHTS, "weights.yaml")
    contents = [None, "g-x", "g-y", "g-yy", "a-z", "g-z", "h", "doc-a", "doc-b", "zzz", "*", "g-*"]
    leads: list[Lead] = [
        (f"w{i:02d}", {"title": None}, [Event(t, _at(3600 * (i + 1)), {"content": c} if c else {})])
        for i, (t, c) in enumerate((t, c) for t in ("view", "read", "other") for c in contents)
    ]
    return cp, leads


def sticky_stage_holds_after_its_entry_stops_holding() -> tuple[CompiledPlaybook, list[Lead]]:
    """`promising` (sticky) held 30 days ago through content read then; not any more."""
    cp = PLAYBOOKS["constructs"]
    lead = {"employees": 3.0, "title": "x", "domain": "ok.example"}
    day = 86400
    leads: list[Lead] = [
        (
            "reached-before",
            lead,
            [Event("download", _at(30 * day), {"content": "demo"}), Event("call", _at(day))],
        ),
        ("reached-at-last-event", lead, [Event("download", _at(day), {"content": "demo"})]),
        ("reached-exactly-at-as-of", lead, [Event("download", AS_OF, {"content": "demo"})]),
        ("never", lead, [Event("download", _at(30 * day), {"content": "guide-a"})]),
    ]
    return cp, leads


#: The hand-written cases by name, each (playbook, leads): every SQL engine's test runs them all.
EDGE_CASES: dict[str, Callable[[], tuple[CompiledPlaybook, list[Lead]]]] = {
    f.__name__: f
    for f in (
        window_edges_duplicates_and_future_events,
        recycle_cooldown_boundaries_and_reentry,
        rounding_ties_follow_python,
        content_points_exact_id_before_globs_first_glob_wins,
        sticky_stage_holds_after_its_entry_stops_holding,
    )
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_decide_the_same(case: str) -> None:
    assert_same(*EDGE_CASES[case]())


def test_sticky_stage_is_reached_through_an_old_entry() -> None:
    cp, leads = sticky_stage_holds_after_its_entry_stops_holding()
    rows = {r["lead_id"]: r for r in evaluate_duckdb(cp, *_tables(cp, leads), AS_OF).to_pylist()}
    assert rows["reached-before"]["stage"] == "promising"
    assert rows["never"]["stage"] == "nurturing"


# -- a handoff's life (docs/handoffs.md) ---------------------------------------------------

LIFE_LEAD = {"employees": 500, "lead_source": "ad"}


def _life_leads() -> list[Lead]:
    day = 86400
    hot = Event("inquiry", _at(3 * day))
    return [
        ("accepted", LIFE_LEAD, [hot, Event("handoff_accepted", _at(2 * day), {"team": "field_sales"})]),
        ("accepted-other-team", LIFE_LEAD,
         [hot, Event("handoff_accepted", _at(2 * day), {"team": "inside_sales"})]),
        ("overdue", LIFE_LEAD, [hot]),
        ("worked", LIFE_LEAD, [hot, Event("meeting", _at(2 * day))]),
        ("worked-by-other-team", LIFE_LEAD, [hot, Event("call", _at(2 * day), {"outcome": "connected"})]),
        ("due-not-passed", LIFE_LEAD, [Event("inquiry", _at(3600))]),
        ("due-exactly-now", LIFE_LEAD, [Event("inquiry", _at(day))]),
        ("rejected", LIFE_LEAD, [hot, Event("handoff_rejected", _at(2 * day),
                                            {"team": "field_sales", "reason": "no_budget"})]),
        ("rejected-unknown-reason", LIFE_LEAD,
         [hot, Event("handoff_rejected", _at(2 * day), {"reason": "nope"})]),
        ("accepted-before-reject", LIFE_LEAD, [
            Event("handoff_accepted", _at(9 * day), {"team": "field_sales"}),
            Event("handoff_rejected", _at(8 * day), {"reason": "timing"}), hot]),
        ("same-instant", LIFE_LEAD, [hot, Event("handoff_rejected", _at(day), {"reason": "no_need"}),
                                     Event("handoff_accepted", _at(day), {"team": "field_sales"})]),
        ("nurture-next", LIFE_LEAD, [Event("download", _at(3 * day), {"content": "guide-b"}),
                                     Event("disposition", _at(2 * day), {"reason": "no_budget"})]),
        ("nurture-all-consumed", LIFE_LEAD, [Event("page_view", _at(3 * day), {"content": "guide-a"}),
                                             Event("churn", _at(2 * day))]),
        ("nurture-no-track", LIFE_LEAD, [Event("page_view", _at(3 * day), {"content": "guide-a"}),
                                         Event("disposition", _at(2 * day), {"reason": "no_need"})]),
    ]


def test_a_handoffs_life_hand_checked_and_the_same_in_sql() -> None:
    cp = PLAYBOOKS["life"]
    leads = _life_leads()
    rows = {lid: decide(cp, lead, events, AS_OF, lead_id=lid).to_row() for lid, lead, events in leads}
    assert (rows["accepted"]["route"], rows["accepted"]["handoff_accepted"], rows["accepted"]["overdue"]) \
        == ("field_sales", True, False)
    assert rows["accepted-other-team"]["handoff_accepted"] is False
    # due: the inquiry 3 days before as_of + the 1-day SLA
    overdue = rows["overdue"]
    assert (overdue["overdue"], overdue["overdue_since"]) == (True, "2026-10-30T09:00:00+09:00")
    assert rows["worked"]["overdue"] is False
    assert rows["worked-by-other-team"]["overdue"] is True  # a call is inside sales' work
    assert rows["due-not-passed"]["overdue"] is False and rows["due-exactly-now"]["overdue"] is False
    assert (rows["rejected"]["route"], rows["rejected"]["recycle_reason"]) == ("none", "no_budget")
    assert rows["rejected"]["nurture_track"] == "budget"
    assert rows["rejected-unknown-reason"]["recycle_reason"] == ""  # not a recycle reason: no trigger
    assert rows["accepted-before-reject"]["handoff_accepted"] is False  # answered a recycled handoff
    assert rows["same-instant"]["recycle_reason"] == "no_need"  # the reject is at the same instant
    nurtured = rows["nurture-next"]
    assert (nurtured["nurture_track"], nurtured["next_content"]) == ("budget", "price1")
    assert (rows["nurture-all-consumed"]["nurture_track"], rows["nurture-all-consumed"]["next_content"]) \
        == ("timing", "")
    assert rows["nurture-no-track"]["nurture_track"] == ""
    assert_same(cp, leads)
