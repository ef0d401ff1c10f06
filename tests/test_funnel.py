"""`engine funnel`: weekly decisions on a hand-made export whose counts are worked out by hand.

Weeks start Monday 2026-01-05 (UTC): week 0 is (Jan 5, Jan 12], week 1 (Jan 12, Jan 19],
week 2 (Jan 19, Jan 26]. inside_sales takes 2 handoffs a week, best fit first.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main
from tests.export_factory import AS_OF, BENCH_PLAYBOOK, make_export

PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {{name: tiny, version: "1"}}
timezone: UTC
teams:
  marketing: {{}}
  inside_sales: {{handoffs_per_week: {capacity}{overflow}}}
lead:
  source: lead_source
  fields: {{lead_source: string, company_domain: string}}
events:
  form: {{}}
  sale: {{}}
scoring:
  fit:
    rules:
      - id: src
        first_of:
          - {{when: lead.lead_source == "paid", points: 30}}
          - {{when: lead.lead_source == "organic", points: 20}}
stages:
  - {{id: lead, owner: marketing}}
  - {{id: mql, owner: inside_sales, entry: count("form") > 0}}
  - {{id: won, owner: marketing, entry: count("sale") > 0}}
handoffs:
  - {{id: call, to: inside_sales, when: stage == "mql", sla: 2d, priority: fit}}
"""

LEADS = [
    ("A", "paid"), ("B", "organic"), ("C", "organic"), ("D", "paid"), ("E", ""), ("F", "paid"),
]
EVENTS = [
    ("A", "2026-01-06T10:00:00Z", "form"),
    ("B", "2026-01-12T00:00:00Z", "form"),   # exactly week 0's end: week 0
    ("C", "2026-01-12T00:00:01Z", "form"),   # one second later: week 1
    ("D", "2026-01-07T00:00:00Z", "form"),
    ("D", "2026-01-15T00:00:00Z", "sale"),
    ("E", "2026-01-08T00:00:00Z", "form"),   # due Jan 10, worked last: overdue
]                                            # F has no event: not placed


def _export(folder: Path, capacity: int = 2, overflow: str = "") -> tuple[Path, Path, Path]:
    playbook = folder / "tiny.yaml"
    playbook.write_text(PLAYBOOK.format(capacity=capacity, overflow=overflow), encoding="utf-8")
    leads, events = folder / "leads.csv", folder / "events.csv"
    with open(leads, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        # The canonical preset's columns; those this playbook does not read are left empty.
        writer.writerow(["lead_id", "lead_source", "company_domain", "email", "industry", "employees",
                         "title", "country"])
        writer.writerows([lead_id, source, f"{lead_id.lower()}.example", "", "", "", "", ""]
                         for lead_id, source in LEADS)
    with open(events, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lead_id", "occurred_at", "type", "content_id"])
        writer.writerows([*row, ""] for row in EVENTS)
    return playbook, leads, events


def _funnel(tmp_path: Path, *extra: str, capacity: int = 2, overflow: str = "") -> dict:  # type: ignore[type-arg]
    playbook, leads, events = _export(tmp_path, capacity, overflow)
    result = CliRunner().invoke(cli, ["funnel", str(playbook), "--leads", str(leads), "--events", str(events),
                                      "--from", "2026-01-05", "--to", "2026-01-26", "--format", "json",
                                      *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_weeks_stages_and_transitions_by_hand(tmp_path: Path) -> None:
    report = _funnel(tmp_path)
    weeks = report["weeks"]
    assert [w["week"] for w in weeks] == ["2026-01-05", "2026-01-12", "2026-01-19"]
    assert [w["new_leads"] for w in weeks] == [4, 1, 0]        # B at the boundary is week 0, C week 1
    assert [w["events"] for w in weeks] == [4, 2, 0]
    assert [w["stages"] for w in weeks] == [{"lead": 0, "mql": 4, "won": 0},
                                            {"lead": 0, "mql": 4, "won": 1},
                                            {"lead": 0, "mql": 4, "won": 1}]
    assert weeks[0]["transitions"] == {"new→mql": 4}
    assert weeks[1]["transitions"] == {"mql→won": 1, "new→mql": 1}
    assert weeks[2]["transitions"] == {}
    assert report["leads"] == {"read": 6, "placed": 5, "no_events": 1, "after_period": 0, "rejected": 0}
    assert report["days_between_stages"] == {"mql→won": {"median": 8.0, "leads": 1}}
    assert weeks[1]["days_between_stages"] == {"mql→won": {"median": 8.0, "leads": 1}}


def test_capacity_carry_over_and_overdue_by_hand(tmp_path: Path) -> None:
    inside = [w["handoffs"]["inside_sales"] for w in _funnel(tmp_path)["weeks"]]
    # week 0: A, D (fit 30) worked; B (20) and E (0) carried; E due Jan 10 < Jan 12: overdue.
    assert inside[0] == {"capacity": 2, "new": 4, "carried_in": 0, "overflow_in": 0, "worked": 2,
                         "carried_over": 2, "overflow_out": 0, "lapsed": 0, "overdue": 1}
    # week 1: C arrives; B (due Jan 14) before C (due a second later); E still waits, overdue.
    assert inside[1] == {"capacity": 2, "new": 1, "carried_in": 2, "overflow_in": 0, "worked": 2,
                         "carried_over": 1, "overflow_out": 0, "lapsed": 0, "overdue": 1}
    assert inside[2] == {"capacity": 2, "new": 0, "carried_in": 1, "overflow_in": 0, "worked": 1,
                         "carried_over": 0, "overflow_out": 0, "lapsed": 0, "overdue": 0}


def test_overflow_routes_to_marketing(tmp_path: Path) -> None:
    weeks = _funnel(tmp_path, overflow=", overflow: {then: route, to: marketing}")["weeks"]
    inside = [w["handoffs"]["inside_sales"] for w in weeks]
    marketing = [w["handoffs"]["marketing"] for w in weeks]
    assert [(h["worked"], h["overflow_out"], h["carried_over"]) for h in inside] == [(2, 2, 0), (1, 0, 0),
                                                                                      (0, 0, 0)]
    assert [(h["overflow_in"], h["worked"]) for h in marketing] == [(2, 2), (0, 0), (0, 0)]


def test_a_waiting_handoff_lapses_when_the_lead_moves_on(tmp_path: Path) -> None:
    inside = [w["handoffs"]["inside_sales"] for w in _funnel(tmp_path, capacity=0)["weeks"]]
    assert [h["carried_over"] for h in inside] == [4, 4, 4]
    assert [h["lapsed"] for h in inside] == [0, 1, 0]          # D won in week 1
    assert [h["overdue"] for h in inside] == [3, 4, 4]         # B is due Jan 14


def test_rates_by_source(tmp_path: Path) -> None:
    kpis = _funnel(tmp_path)["kpis"]["source"]
    assert kpis["paid"] == {"leads": 2, "reached": {"mql": 2, "won": 1},
                            "rates": {"→mql": 1.0, "→won": 0.5, "overall": 0.5}}
    assert kpis["organic"]["reached"] == {"mql": 2, "won": 0}
    assert kpis["(missing)"]["leads"] == 1


def test_queues_show_each_status(tmp_path: Path) -> None:
    _funnel(tmp_path, "--queues", str(tmp_path / "q"), "--to", "2026-01-12")
    rows = list(csv.DictReader((tmp_path / "q" / "inside_sales.csv").read_text("utf-8").splitlines()))
    assert [(r["lead_id"], r["status"]) for r in rows] == [("A", "queued"), ("D", "queued"),
                                                           ("B", "carried_over"), ("E", "carried_over")]


def test_coverage_with_an_account_list(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("a.example\nz.example\n", encoding="utf-8")
    cov = _funnel(tmp_path, "--account-field", "company_domain", "--accounts", str(accounts),
                  "--opportunity-stage", "won")["coverage"]
    assert cov["target_accounts"] == 2 and cov["with_lead"] == 1 and cov["with_opportunity"] == 0


def test_last_week_agrees_with_evaluate(tmp_path: Path) -> None:
    """The decision at the last week's end is evaluate's at that instant (leads with events)."""
    leads, events = make_export(tmp_path, 40)
    result = CliRunner().invoke(cli, ["funnel", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events",
                                      str(events), "--from", "2026-08-02T00:00:00Z",
                                      "--to", str(AS_OF.date()),
                                      "--format", "json"], catch_exceptions=False)
    report = json.loads(result.output)
    end = report["weeks"][-1]["end"]
    out = tmp_path / "d.csv"
    assert main(["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
                 "--as-of", end, "--out", str(out), "--backend", "python"]) == 0
    with_events = {row[0] for row in csv.reader(events.read_text("utf-8").splitlines())}
    stages: dict[str, int] = {}
    for row in csv.DictReader(out.read_text("utf-8").splitlines()):
        if row["lead_id"] in with_events:
            stages[row["stage"]] = stages.get(row["stage"], 0) + 1
    assert {k: v for k, v in report["weeks"][-1]["stages"].items() if v} == stages


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-01-26", "--to", "2026-01-05"], "must be after --from"),
    (["--from", "2026-01-05", "--to", "2126-01-05"], "weeks; at most 520"),
    (["--from", "yesterday", "--to", "2026-01-05"], "--from:"),
    (["--from", "2026-01-05", "--to", "2026-01-26", "--segment", "nope"], "not a lead field"),
])
def test_bad_options_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                      message: str) -> None:
    playbook, leads, events = _export(tmp_path)
    code = main(["funnel", str(playbook), "--leads", str(leads), "--events", str(events), *args])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_text_report_names_weeks_and_teams(tmp_path: Path) -> None:
    playbook, leads, events = _export(tmp_path)
    result = CliRunner().invoke(cli, ["funnel", str(playbook), "--leads", str(leads), "--events", str(events),
                                      "--from", "2026-01-05", "--to", "2026-01-26"], catch_exceptions=False)
    assert "2026-01-12" in result.output and "inside_sales worked/cap" in result.output
    assert "2/2" in result.output and "lead(s) have no event" in result.output



#: The tiny export's columns, outcomes read from a separate file (a lead placed in the
#: funnel with no row there did not convert).
OUTCOMES_MAPPING = """\
version: 1
null_values: [""]
leads:
  id: lead_id
  fields: {lead_source: lead_source, company_domain: company_domain}
events: {lead_id: lead_id, at: occurred_at, type: type}
outcomes: {source: file, lead_id: lead_id, converted: won, won_at: won_at, lost_at: lost_at}
"""

#: A won in week 1; B won without a date; C lost in week 2; D won in week 1; E won after
#: the weeks; F won but has no event (not placed); Q is not in the export; X's date is
#: unreadable (rejected, line 9).
OUTCOMES = """\
lead_id,won,won_at,lost_at
A,1,2026-01-14T00:00:00Z,
B,1,,
C,0,,2026-01-20T00:00:00Z
D,1,2026-01-16T00:00:00Z,
E,1,2026-03-01T00:00:00Z,
F,1,2026-01-06T00:00:00Z,
Q,0,,2026-01-13T00:00:00Z
X,1,yesterday,
"""


def _outcomes_funnel(tmp_path: Path, fmt: str = "json") -> str:
    playbook, leads, events = _export(tmp_path)
    mapping, outcomes = tmp_path / "mapping.yaml", tmp_path / "outcomes.csv"
    mapping.write_text(OUTCOMES_MAPPING, encoding="utf-8")
    outcomes.write_text(OUTCOMES, encoding="utf-8")
    result = CliRunner().invoke(cli, ["funnel", str(playbook), "--mapping", str(mapping),
                                      "--leads", str(leads), "--events", str(events),
                                      "--outcomes", str(outcomes),
                                      "--from", "2026-01-05", "--to", "2026-01-26", "--format", fmt,
                                      "--opportunity-stage", "mql"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_outcomes_by_hand(tmp_path: Path) -> None:
    report = json.loads(_outcomes_funnel(tmp_path))
    assert [w["outcomes"] for w in report["weeks"]] == [{"won": 0, "lost": 0}, {"won": 2, "lost": 0},
                                                        {"won": 0, "lost": 1}]
    summary = report["outcomes"]
    assert summary["rows_read"] == 8 and summary["rejected"] == 1
    assert summary["rejects"] == [
        f"{tmp_path / 'outcomes.csv'}:9: 'yesterday' is not a timestamp (expected ISO 8601)"]
    # A-E placed (C through its missing won flag), F and Q never placed: not measured.
    assert {k: summary[k] for k in ("leads_measured", "won", "won_undated", "won_outside_weeks")} == {
        "leads_measured": 5, "won": 4, "won_undated": 1, "won_outside_weeks": 1}
    source = report["kpis"]["source"]
    # paid: A, D both won; organic: B won (undated), C lost; missing: E won after the weeks.
    assert {key: (g["won"], g["rates"]["won_of_opportunities"], g["rates"]["won_of_leads"])
            for key, g in source.items()} == {"paid": (2, 1.0, 1.0), "organic": (1, 0.5, 0.5),
                                              "(missing)": (1, 1.0, 1.0)}
    assert report["kpis"]["persona"]["(none)"]["won"] == 4
    assert not any("no outcomes" in note for note in report["notes"])


def test_outcomes_in_the_text_report(tmp_path: Path) -> None:
    text = _outcomes_funnel(tmp_path, "text")
    assert "8 rows read, 1 rejected" in text and "5 leads measured, 4 won" in text
    assert "1 without a date" in text and "1 outside the weeks" in text
    assert "yesterday" in text
    weeks = [line.split() for line in text.splitlines() if line.startswith("2026-01-")]
    assert [row[5] for row in weeks] == ["0/0", "2/0", "0/1"]             # outcome won/lost a week
    paid = next(line.split() for line in text.splitlines() if line.startswith("  paid "))
    assert paid[-3:] == ["2", "100.0%", "100.0%"]


def test_without_outcomes_a_note_says_won_is_a_stage(tmp_path: Path) -> None:
    report = _funnel(tmp_path)
    assert report["outcomes"] is None and "outcomes" not in report["weeks"][0]
    assert "won" not in report["kpis"]["source"]["paid"]
    assert any(note.startswith("no outcomes") for note in report["notes"])
