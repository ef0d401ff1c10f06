"""engine diff's outcome impact (#16 item 3): each queue at capacity measured before → after.

The small export is made so every figure can be checked by hand; the X Education test is
the issue's priority-only change, whose queue conversion the issue measured by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import SHARED

X_EDUCATION = SHARED / "data" / "leads-x-education" / "Leads.csv"

PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {{name: tiny, version: "{version}", owners: {{default: [sales-ops]}}}}
teams:
  sales: {{handoffs_per_week: 2}}
lead:
  fields:
    size: number
scoring:
  fit:
    rules:
      - {{id: big, when: lead.size >= 50, points: 10}}
stages:
  - {{id: lead, owner: sales}}
handoffs:
  - {{id: call, to: sales, when: stage >= "lead", priority: {priority}}}
"""
#: The base calls the biggest leads first; the head the smaller ones (all others at 0).
BASE_PRIORITY, HEAD_PRIORITY = "lead.size", "'lead.size if lead.size < 50 else 0'"
#: id, size, converted. Base queue (capacity 2): L1, L2 → 1 of 2. Head queue: L4, L5 → 2 of 2.
LEADS = [("L1", 90, 1), ("L2", 80, 0), ("L3", 70, 0), ("L4", 30, 1), ("L5", 20, 1), ("L6", 10, 0)]
MAPPING = "leads:\n  id: id\n  fields: {size: {column: size, type: number}}\n"


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (the engine takes it from scipy)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _tiny(folder: Path, outcomes: str, *, in_leads: bool = True) -> list[str]:
    base, head = folder / "base.yaml", folder / "head.yaml"
    base.write_text(PLAYBOOK.format(version="1", priority=BASE_PRIORITY), encoding="utf-8")
    head.write_text(PLAYBOOK.format(version="2", priority=HEAD_PRIORITY), encoding="utf-8")
    rows = [f"{i},{size}" + (f",{won}" if in_leads else "") for i, size, won in LEADS]
    header = "id,size" + (",converted" if in_leads else "")
    (folder / "leads.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    (folder / "mapping.yaml").write_text(MAPPING + outcomes, encoding="utf-8")
    return ["diff", str(base), str(head), "--leads", str(folder / "leads.csv"), "--mapping",
            str(folder / "mapping.yaml"), "--as-of", "2026-01-01", "--no-progress"]


def _outcomes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["playbooks"][0]["export_impact"]["outcomes"]
    assert isinstance(report, dict)
    return report


def test_figures_checked_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _outcomes(_tiny(tmp_path, "outcomes: {converted: converted}\n"), capsys)
    assert (report["leads"], report["converted"], report["base_rate"]) == (6, 3, 0.5)
    (team,) = report["teams"]  # type: ignore[misc]
    before, after = team["before"], team["after"]
    assert team["team"] == "sales" and team["capacity_before"] == team["capacity_after"] == 2
    assert (before["handoffs"], before["converted"], after["handoffs"], after["converted"]) == (2, 1, 2, 2)
    assert (before["precision"], after["precision"]) == (0.5, 1.0)
    assert (before["recall"], after["recall"]) == (round(1 / 3, 6), round(2 / 3, 6))
    assert (before["lift"], after["lift"]) == (1.0, 2.0)  # precision over the base rate 3/6
    for side, (k, n) in ((before, (1, 2)), (after, (2, 2))):
        low, high = _wilson(k, n)
        assert side["precision_ci"] == pytest.approx([low, high], abs=1e-6)
        assert side["lift_ci"] == pytest.approx([low / 0.5, high / 0.5], abs=1e-6)
        low, high = _wilson(k, 3)
        assert side["recall_ci"] == pytest.approx([low, high], abs=1e-6)
    # AUC of the score (the priority here): base 5 of 9 converter/non-converter pairs in order;
    # head: L4 and L5 beat all three, L1 (0) ties L2 and L3 (0) and loses to L6 (10) → 7/9
    assert report["auc"] == {"before": round(5 / 9, 6), "after": round(7 / 9, 6)}
    assert main([*_tiny(tmp_path, "outcomes: {converted: converted}\n"), "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert "AUC of the ranking (score): 0.556 → 0.778" in text
    assert "precision 50.0% [" in text and "→ 100.0% [" in text and "lift 1.00 [" in text
    assert main([*_tiny(tmp_path, "outcomes: {converted: converted}\n"), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| `sales` | 2/wk | 50.0% [" in markdown and "sales precision 50.0% → 100.0%" in markdown


def test_outcomes_file_and_dated_conversions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A separate file (a lead without a row did not convert); a conversion dated before
    --as-of was known when deciding, so that lead is left out and said so."""
    outcomes = tmp_path / "deals.csv"
    outcomes.write_text("lead,won\nL1,2026-02-01\nL4,2025-12-01\nL5,2026-03-01\n", encoding="utf-8")
    argv = _tiny(tmp_path, "outcomes: {source: file, lead_id: lead, won_at: won}\n", in_leads=False)
    report = _outcomes([*argv, "--outcomes", str(outcomes)], capsys)
    assert (report["leads"], report["converted"]) == (5, 2)
    assert report["left_out"]["converted_before_as_of"] == 1  # type: ignore[index]
    assert any("1 decided lead(s) not measured: converted before as of" in w
               for w in report["warnings"])  # type: ignore[union-attr]
    (team,) = report["teams"]  # type: ignore[misc]
    # L4 is queued after the change but not measured: the head's queue has one measured lead, L5
    assert (team["before"]["converted"], team["before"]["handoffs"]) == (1, 2)
    assert (team["after"]["converted"], team["after"]["handoffs"]) == (1, 1)
    assert team["after"]["queued_without_outcome"] == 1


def test_no_outcomes_section_means_no_outcome_impact(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = _tiny(tmp_path, "")
    assert main([*argv, "--format", "json"]) == 0
    export = json.loads(capsys.readouterr().out)["playbooks"][0]["export_impact"]
    assert "outcomes" not in export and export["queues"][0]["entered"] == 2
    assert main([*argv, "--outcomes", str(tmp_path / "leads.csv")]) == 1
    err = capsys.readouterr().err
    assert "has no outcomes section" in err and "Traceback" not in err


def test_diff_before_is_backtest_of_the_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The diff's 'before' is what `engine backtest` reports for the base version, both backends
    (here no two queued leads tie; at a tie the diff keeps the queue's order, lead id before input
    row, as `engine evaluate --queues` cuts it, and backtest the input row)."""
    argv = _tiny(tmp_path, "outcomes: {converted: converted}\n")
    team = _outcomes(argv, capsys)["teams"][0]  # type: ignore[index]
    for backend in ("duckdb", "python"):
        assert main(["backtest", argv[1], "--leads", argv[4], "--mapping", argv[6], "--as-of",
                     "2026-01-01", "--format", "json", "--backend", backend]) == 0
        measured = json.loads(capsys.readouterr().out)["teams"]["sales"]
        for key in ("handoffs", "precision", "precision_ci", "recall", "recall_ci", "lift", "lift_ci"):
            assert measured[key] == team["before"][key], (backend, key)


@pytest.mark.skipif(not X_EDUCATION.exists(), reason="X Education's Leads.csv (not shipped: no "
                    "licence) is read from ../shared/data/leads-x-education/, absent here")
def test_priority_only_change_reports_precision_at_capacity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #16: changing only the priority to `fit` moved 241 of the 800 queued leads and
    the queue's conversion fell from 96.2% to 94.8%; the plan now says so itself."""
    text = (Path(__file__).parent / "data" / "x-education-2026.11.1.yaml").read_text(encoding="utf-8")
    start, end = text.index("    priority: >-"), text.index("  - {id: nurture")
    base, head = tmp_path / "base.yaml", tmp_path / "head.yaml"
    base.write_text(text, encoding="utf-8")
    head.write_text(text[:start] + "    priority: fit\n" + text[end:], encoding="utf-8")
    argv = ["diff", str(base), str(head), "--leads", str(X_EDUCATION), "--mapping", "leads-x-education",
            "--as-of", "2020-01-01", "--no-progress"]
    report = _outcomes(argv, capsys)
    assert (report["leads"], report["converted"]) == (9240, 3561)
    team = next(t for t in report["teams"] if t["team"] == "inside_sales")  # type: ignore[union-attr]
    before, after = team["before"], team["after"]
    assert before["handoffs"] == after["handoffs"] == 800
    assert (before["converted"], after["converted"]) == (770, 758)  # 96.2% → 94.8%
    assert before["precision"] > after["precision"]
    assert before["precision_ci"][0] < before["precision"] < before["precision_ci"][1]
    # the change reads fewer after-contact notes, yet still some: the plan warns on both sides
    assert any(w.startswith("after:") and "optimistic" in w for w in report["warnings"])  # type: ignore[union-attr]
    assert main([*argv, "--format", "text"]) == 0
    assert "precision 96.2% [" in capsys.readouterr().out


def test_outcome_columns_absent_are_said_not_guessed(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The canonical mapping declares outcome columns most exports lack: without --outcomes the
    plan measures nothing and says why; asked for with --outcomes, a missing column is an error."""
    argv = _tiny(tmp_path, "outcomes: {converted: converted}\n", in_leads=False)
    assert main([*argv, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)["playbooks"][0]
    assert "outcomes" not in plan["export_impact"]
    assert "outcomes not measured: the export has no 'converted' column(s)" in plan["impact_note"]
    file_mapping = "outcomes: {source: file, lead_id: id, converted: converted}\n"
    argv = _tiny(tmp_path, file_mapping, in_leads=False)
    assert main(argv) == 0
    assert "give --outcomes FILE" in capsys.readouterr().out
    assert main([*argv, "--outcomes", str(tmp_path / "leads.csv")]) == 1
    assert "outcome column(s) not in the file: 'converted'" in capsys.readouterr().err
