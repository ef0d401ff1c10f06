"""`engine backtest` on a small hand-made export whose figures are worked out by hand below."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cli import main
from engine.measure.metrics import auc, wilson

PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: hand-made, version: "1"}
timezone: UTC
teams:
  marketing: {}
  inside_sales: {handoffs_per_week: 2}
lead:
  fields: {employees: number, title: string}
events:
  page_view: {}
scoring:
  fit:
    rules:
      - {id: big, when: lead.employees >= 100, points: 30}
exclusions:
  - {id: student, when: lead.title == "student"}
stages:
  - {id: lead, owner: marketing}
  - {id: promising, owner: inside_sales, entry: fit >= 30}
handoffs:
  - {id: call, to: inside_sales, when: stage >= "promising", priority: lead.employees}
  - {id: nurture, to: marketing, when: stage >= "lead"}
"""

MAPPING = """\
leads:
  id: id
  fields: {employees: {column: employees, type: number}, title: title}
outcomes: {converted: converted, won_at: won_at}
"""

#: Priority (= employees) ranks a > b > c > d for inside sales; e-h are nurtured (score 0);
#: i is excluded; j converted before 2024-06-01 (known at decision time: left out).
LEADS = """\
id,employees,title,converted,won_at
a,500,cto,1,2024-07-01
b,400,cto,0,
c,300,cto,1,2024-08-01
d,200,cto,0,
e,50,cto,1,2024-07-15
f,40,cto,0,
g,30,cto,0,
h,20,cto,1,2024-12-01
i,900,student,1,2024-07-01
j,10,cto,1,2024-05-01
"""


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    (tmp_path / "p.yaml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "leads.csv").write_text(LEADS, encoding="utf-8")
    return tmp_path


def backtest(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    argv = ["backtest", str(folder / "p.yaml"), "--mapping", str(folder / "m.yaml"),
            "--leads", str(folder / "leads.csv"), "--format", "json", *args]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def by_hand_wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_metrics_match_the_hand_computed_figures(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-06-01")
    assert (report["decided"], report["leads"], report["converted"]) == (10, 9, 5)
    assert report["left_out"]["converted_before_as_of"] == 1  # j
    assert report["base_rate"] == round(5 / 9, 6)
    sales = report["teams"]["inside_sales"]
    # routed a, b, c, d; the top 2 by priority are a (converted) and b (not)
    assert (sales["capacity"], sales["routed"], sales["handoffs"], sales["converted"]) == (2, 4, 2, 1)
    assert sales["precision"] == 0.5 and sales["recall"] == 0.2  # 1 of the 5 converters
    assert sales["lift"] == round(0.5 / (5 / 9), 6)
    low, high = by_hand_wilson(1, 2)
    assert sales["precision_ci"] == pytest.approx([low, high], abs=1e-6)
    assert sales["lift_ci"] == pytest.approx([low / (5 / 9), high / (5 / 9)], abs=1e-6)
    # non-excluded a-h: converters a500 c300 e0 h0 against b400 d200 f0 g0 → 9 of 16 pairs
    assert report["auc"] == 0.5625 and sales["auc"] == 0.5625
    marketing = report["teams"]["marketing"]
    assert (marketing["capacity"], marketing["handoffs"], marketing["converted"]) == (None, 4, 2)
    rules = {(r["kind"], r["id"]): r for r in report["rules"]}
    assert (rules["exclusion", "student"]["matched"], rules["exclusion", "student"]["conversion"]) == (1, 1.0)
    call = rules["handoff", "call"]
    assert (call["matched"], call["converted"], call["lift_lost"]) == (4, 2, sales["lift"])
    assert rules["fit", "big"]["matched"] is None  # no per-rule breakdown in decision rows


def test_lift_curve_by_hand(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-06-01")
    curve = report["teams"]["inside_sales"]["curve"]
    assert len(curve) == 50 and curve[-1]["leads"] == 9 and curve[-1]["share"] == 1.0
    by_leads = {point["leads"]: point for point in curve}
    # inside_sales' ranking: its routed a, b, c, d by priority, then the rest; a and c convert
    assert by_leads[1]["precision"] == 1.0 and by_leads[2]["precision"] == 0.5
    assert by_leads[3]["precision"] == round(2 / 3, 6) and by_leads[4]["precision"] == 0.5
    assert by_leads[1]["lift"] == round(1 / (5 / 9), 6) and curve[-1]["lift"] == 1.0
    assert [p["share"] for p in curve] == sorted(p["share"] for p in curve)


def test_capacity_option_and_horizon(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-06-01", "--capacity", "3", "--horizon", "90d")
    sales = report["teams"]["inside_sales"]
    # h converts in December, after the 90-day horizon: converters a, c, e, i
    assert report["converted"] == 4
    assert (sales["handoffs"], sales["converted"], sales["recall"]) == (3, 2, 0.5)
    share = backtest(export, capsys, "--as-of", "2024-06-01", "--capacity", "50%")
    assert share["teams"]["inside_sales"]["capacity"] == round(9 * 0.5)


def test_time_split_pools_the_instants(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-07-10", "--as-of", "2024-06-01", "--horizon", "30d")
    first, second = report["splits"]
    assert first["as_of"].startswith("2024-06-01") and second["as_of"].startswith("2024-07-10")
    # 06-01: converters in (06-01, 07-01] are a and i; the cut a, b holds one
    assert (first["leads"], first["converted"], first["teams"]["inside_sales"]["precision"]) == (9, 2, 0.5)
    # 07-10: a, i, j converted before (left out); c and e convert by 08-09; the cut b, c holds one
    assert (second["leads"], second["converted"], second["teams"]["inside_sales"]["precision"]) == (7, 2, 0.5)
    sales = report["teams"]["inside_sales"]
    assert (sales["handoffs"], sales["converted"], sales["recall"]) == (4, 2, 0.5)
    assert report["left_out"]["converted_before_as_of"] == 1 + 3


def test_json_keys_are_the_documented_ones(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-06-01")
    assert {"teams", "auc", "rules", "base_rate", "leads", "outcomes_matched", "warnings"} <= set(report)
    for team in report["teams"].values():
        assert {"handoffs", "capacity", "precision", "recall", "lift", "precision_ci"} <= set(team)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "backtest.md").read_text(encoding="utf-8")
    for key in [*report, *report["teams"]["inside_sales"], *report["rules"][0]]:
        assert re.search(rf"`{re.escape(key)}(`|\[\]`|\.<)", doc), f"docs/backtest.md lacks `{key}`"


def test_both_backends_give_the_same_report(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--as-of", "2024-06-01", "--as-of", "2024-07-10")
    duck = backtest(export, capsys, *args, "--backend", "duckdb")
    python = backtest(export, capsys, *args, "--backend", "python")
    assert duck.pop("backend") == "duckdb" and python.pop("backend") == "python"
    assert duck == python


def test_a_playbook_reading_an_outcome_is_refused(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = PLAYBOOK.replace("title: string}", "title: string, converted: bool}")
    (export / "p.yaml").write_text(text, encoding="utf-8")
    code = main(["backtest", str(export / "p.yaml"), "--mapping", str(export / "m.yaml"),
                 "--leads", str(export / "leads.csv"), "--as-of", "2024-06-01"])
    assert code == 1
    assert "E-OUTCOME-READABLE" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--as-of", "2024-06-01", "--capacity", "lots"], "--capacity"),
    (["--as-of", "2024-06-01", "--format", "pdf"], "pdf"),
    ([], "missing --as-of"),
    (["--split-every", "30d", "--from", "2024-06-01"], "--split-every"),
])
def test_bad_options_are_usage_errors(export: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                      message: str) -> None:
    code = main(["backtest", str(export / "p.yaml"), "--mapping", str(export / "m.yaml"),
                 "--leads", str(export / "leads.csv"), *args])
    assert code in (1, 2)
    assert message in capsys.readouterr().err


def test_auc_and_wilson_edges() -> None:
    assert auc(np.array([True, True]), np.array([1.0, 2.0])) is None  # one class only
    assert auc(np.array([True, False]), np.array([1.0, 1.0])) == 0.5  # a tie counts half
    assert wilson(0, 0) is None
    assert wilson(0, 10) == pytest.approx(by_hand_wilson(0, 10))


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "olist-marketing-funnel"


@pytest.mark.skipif(not (SHARED / "olist_closed_deals_dataset.csv").exists(),
                    reason="the full Olist export is read from ../shared/data/, absent here")
def test_full_olist_export_with_closed_deals_both_backends(capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(__file__).resolve().parents[1]
    deals = str(SHARED / "olist_closed_deals_dataset.csv")
    argv = ["backtest", str(repo / "playbooks" / "olist.yaml"), "--mapping", "olist",
            "--leads", str(SHARED / "olist_marketing_qualified_leads_dataset.csv"), "--events", deals,
            "--outcomes", deals, "--as-of", "2018-03-01", "--as-of", "2018-05-01", "--horizon", "90d",
            "--format", "json"]
    reports = []
    for backend in ("duckdb", "python"):
        assert main([*argv, "--backend", backend]) == 0
        report = json.loads(capsys.readouterr().out)
        report.pop("backend")
        reports.append(report)
    assert reports[0] == reports[1]
    report = reports[0]
    assert report["outcomes_matched"] > 0 and report["converted"] > 0
    sales = report["teams"]["inside_sales"]
    assert sales["handoffs"] == 2 * 320  # 4 SDRs x 80 slots, at each of the two instants
    assert sales["lift"] > 1.5  # fresh MQLs called first convert well above the base rate


def test_the_cut_is_the_work_queue_ties_and_missing_priorities_included(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Backtest measures exactly the leads `engine evaluate --queues` puts in a team's queue:
    equal priorities fall to the lead id (not the input row), and a handoff without a priority
    is called last whatever its fit + engagement score."""
    playbook = PLAYBOOK.replace("priority: lead.employees", "priority: 10 if lead.employees >= 300 else None")
    (tmp_path / "p.yaml").write_text(playbook, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    # In input order, b comes before a (same priority); d and c have no priority.
    (tmp_path / "leads.csv").write_text(
        "id,employees,title,converted,won_at\n"
        "d,250,cto,0,\nb,300,cto,0,\na,300,cto,1,2024-07-01\nc,200,cto,0,\n"
        "e,50,cto,0,\n", encoding="utf-8")
    report = backtest(tmp_path, capsys, "--as-of", "2024-06-01", "--capacity", "2")
    out = tmp_path / "run" / "d.csv"
    assert main(["evaluate", str(tmp_path / "p.yaml"), "--mapping", str(tmp_path / "m.yaml"),
                 "--leads", str(tmp_path / "leads.csv"), "--as-of", "2024-06-01", "--out", str(out),
                 "--queues", str(tmp_path / "run" / "queues")]) == 0
    capsys.readouterr()
    queue = (tmp_path / "run" / "queues" / "inside_sales.csv").read_text(encoding="utf-8").splitlines()
    called = [line.split(",")[1] for line in queue[1:3]]  # rank, lead_id, ...: the first two
    assert called == ["a", "b"]  # priority 10 each, lead id order; d (no priority) is last
    team = report["teams"]["inside_sales"]
    assert team["handoffs"] == 2 and team["precision"] == 0.5  # a converted, b did not


PER_RULE_PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: per-rule, version: "1"}
timezone: UTC
teams:
  marketing: {}
  inside_sales: {handoffs_per_week: 2}
lead:
  fields: {employees: number, title: string}
events:
  page_view: {}
scoring:
  fit:
    rules:
      - {id: big, when: lead.employees >= 100, points: 30}
      - id: senior
        first_of:
          - {when: lead.title == "vp", points: 45}
          - {when: lead.title == "director", points: 'lead.employees / 100'}
  engagement:
    points: {page_view: 1}
exclusions:
  - {id: student, when: lead.title == "student"}
stages:
  - {id: lead, owner: marketing}
  - {id: promising, owner: inside_sales, entry: fit >= 30}
handoffs:
  - {id: call, to: inside_sales, when: stage >= "promising", priority: fit}
  - {id: nurture, to: marketing, when: stage >= "lead"}
"""

#: fit: a 30, b 30, c 75 (big + vp), d 30 + 2 (director: 200 / 100), e 45 (vp), f-h 0, i 30
#: (excluded). Inside sales calls the top 2 by fit: c, e — both converted.
PER_RULE_LEADS = """\
id,employees,title,converted,won_at
a,500,cto,1,2024-07-01
b,400,cto,0,
c,300,vp,1,2024-08-01
d,200,director,0,
e,50,vp,1,2024-07-15
f,40,cto,0,
g,30,cto,0,
h,20,cto,1,2024-12-01
i,900,student,1,2024-07-01
j,10,cto,1,2024-05-01
"""

PER_RULE_EVENTS = """\
lead_id,at,type
f,2024-05-20T10:00:00Z,page_view
g,2024-05-21T10:00:00Z,page_view
h,2024-05-22T10:00:00Z,page_view
"""


@pytest.mark.parametrize("backend", ["duckdb", "python"])
def test_per_rule_figures_for_fit_rules_branches_and_engagement_types(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str) -> None:
    (tmp_path / "p.yaml").write_text(PER_RULE_PLAYBOOK, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING + "events: {lead_id: lead_id, at: at, type: type}\n",
                                     encoding="utf-8")
    (tmp_path / "leads.csv").write_text(PER_RULE_LEADS, encoding="utf-8")
    (tmp_path / "events.csv").write_text(PER_RULE_EVENTS, encoding="utf-8")
    report = backtest(tmp_path, capsys, "--as-of", "2024-06-01", "--per-rule", "--backend", backend,
                      "--events", str(tmp_path / "events.csv"))
    base = 5 / 9
    sales = report["teams"]["inside_sales"]
    assert (sales["handoffs"], sales["converted"]) == (2, 2)  # c and e
    rules = {(r["kind"], r["id"]): r for r in report["rules"]}
    big = rules["fit", "big"]
    assert (big["matched"], big["converted"]) == (5, 3)  # a b c d i (j is left out)
    assert big["lift"] == round(0.6 / base, 6)
    # without big: c 45, d 2, e 45: still c and e → nothing lost
    assert big["lift_lost"] == 0.0
    senior = rules["fit", "senior"]
    assert (senior["matched"], senior["converted"]) == (3, 2)  # c e (vp), d (director)
    # without senior: a b c d tie at 30 → the queue's order takes a, b: 1 of 2 converted
    assert senior["lift_lost"] == round(1.0 / base - 0.5 / base, 6)
    assert (rules["fit", "senior[0]"]["matched"], rules["fit", "senior[1]"]["matched"]) == (2, 1)
    # without the vp branch: c 30, e 0, d 32 → d, then a (30, first by id): 1 of 2 converted
    assert rules["fit", "senior[0]"]["lift_lost"] == round(1.0 / base - 0.5 / base, 6)
    # without the director branch: d 30; c and e stay on top → nothing lost
    assert rules["fit", "senior[1]"]["lift_lost"] == 0.0
    views = rules["engagement", "page_view"]
    assert (views["matched"], views["converted"], views["lift_lost"]) == (3, 1, 0.0)  # f g h
    assert not any("per-rule figures" in w for w in report["warnings"])


def test_without_per_rule_fit_rows_stay_null_and_say_how(export: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    report = backtest(export, capsys, "--as-of", "2024-06-01")
    assert any("pass --per-rule" in w for w in report["warnings"])
