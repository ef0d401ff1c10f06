"""engine learn: fitted points on planted data, determinism, the written proposal, the real export."""

from __future__ import annotations

import csv
import json
import math
import random
import sys
from datetime import datetime
from pathlib import Path

import pytest

from engine.cli import main
from engine.diagnostics import EngineError
from engine.evaluate import decide
from engine.io import LeadsFile, load_mapping
from engine.measure.learn import Capacity, Settings, _top, learn, parse_capacity, wilson
from engine.measure.proposal import PROPOSAL_MARK
from engine.measure.run import run_learn
from engine.validate import validate_path

ROOT = Path(__file__).resolve().parent.parent
X_EDUCATION = ROOT.parent / "shared" / "data" / "leads-x-education" / "Leads.csv"

PLAYBOOK = """\
# yaml-language-server: $schema=../schemas/playbook.schema.json
# A guess at what makes a good lead (kept by learn: this comment must survive).
apiVersion: engine/v1
kind: Playbook
metadata: {name: planted, version: "1", owners: {default: [sales-ops]}}
teams:
  sales: {handoffs_per_week: 100}
lead:
  fields:
    segment: string
    size: number
    flag: bool
    region: string
scoring:
  fit:
    rules:
      - {id: segment-b, when: lead.segment == "b", points: 10}   # a wrong guess
      - id: sized
        first_of:
          - {when: lead.size >= 90, points: 10}
          - {when: lead.size >= 20, points: 10}
stages:
  - {id: lead, owner: sales}
handoffs:
  - {id: call, to: sales, when: stage >= "lead", priority: fit}
"""

MAPPING = """\
version: 1
leads:
  id: id
  fields:
    segment: segment
    size: {column: size, type: number}
    flag: {column: flag, type: bool}
    region: region
outcomes:
  converted: converted
"""


def _planted(folder: Path, n: int = 2000, seed: int = 7) -> tuple[Path, Path, Path]:
    """Leads whose conversion follows planted rules: segment a (+), size ≥ 50 (+), flag (−)."""
    rng = random.Random(seed)
    leads = folder / "leads.csv"
    with open(leads, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "segment", "size", "flag", "region", "converted"])
        for i in range(n):
            segment, size = rng.choice("abcd"), rng.randint(0, 100)
            flag, region = rng.random() < 0.3, rng.choice(["north", "south", "east", "west"])
            logit = -1.2 + 2.5 * (segment == "a") + 2.0 * (size >= 50) - 2.0 * flag
            won = rng.random() < 1 / (1 + math.exp(-logit))
            out.writerow([f"L{i:05d}", segment, size, "yes" if flag else "no", region, int(won)])
    playbook = folder / "planted.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    mapping = folder / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return playbook, leads, mapping


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _planted(tmp_path_factory.mktemp("planted"))


def _learn(playbook: Path, leads: Path, mapping: Path, out: Path, **kwargs: object) -> dict[str, object]:
    report = run_learn(playbook, leads=leads, mapping=str(mapping), as_of="2026-01-01", out=out,
                       settings=Settings(**kwargs))  # type: ignore[arg-type]
    return report.to_dict()


def _points(text: str) -> dict[str, float]:
    """Rule id (or id[branch]) → points, read back from the written proposal."""
    from ruamel.yaml import YAML

    rules = YAML(typ="safe").load(text)["scoring"]["fit"]["rules"]
    found: dict[str, float] = {}
    for rule in rules:
        if "first_of" in rule:
            for i, branch in enumerate(rule["first_of"]):
                found[f"{rule['id']}[{i}]"] = branch["points"]
        else:
            found[rule["id"]] = rule["points"]
    return found


def test_recovers_the_planted_rules_and_beats_the_guess(planted: tuple[Path, Path, Path],
                                                       tmp_path: Path) -> None:
    playbook, leads, mapping = planted
    out = tmp_path / "proposed.yaml"
    report = _learn(playbook, leads, mapping, out)
    points = _points(out.read_text(encoding="utf-8"))
    assert points["segment-a"] > 0
    assert points.get("flag-yes", 0) < 0
    # the size effect is a step at 50: the candidates at and around it carry it
    assert points.get("size-50-or-more", 0) > 0
    assert points["segment-b"] <= 0 and points.get("region-north", 0) == 0
    before, after = report["before"], report["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["precision"] > before["precision"] + 0.05
    assert after["auc"] > before["auc"]
    assert after["precision_ci"][0] < after["precision"] < after["precision_ci"][1]
    assert after["rules"] <= 25


def test_the_proposal_scores_what_was_measured(planted: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Deciding the leads with the written proposal gives the fitted sum for every lead."""
    playbook, leads, mapping = planted
    out = tmp_path / "proposed.yaml"
    _learn(playbook, leads, mapping, out)
    cp = validate_path(out).compiled
    assert cp is not None
    points = _points(out.read_text(encoding="utf-8"))
    checked = 0
    for lead in LeadsFile(leads, load_mapping(mapping), on_reject=lambda r: None):
        decision = decide(cp, lead.fields, [], datetime(2026, 1, 1, tzinfo=cp.tz), trace=True)
        fired = {s.rule for s in decision.trace if s.section == "fit" and s.result is True}
        expected = sum(points[label] for label in fired if label in points)
        sized = next((label for label in fired if label.startswith("sized[")), None)
        expected += points[sized] if sized else 0
        assert decision.fit == expected
        checked += 1
    assert checked == 2000


def test_two_runs_write_the_same_bytes(planted: tuple[Path, Path, Path], tmp_path: Path) -> None:
    playbook, leads, mapping = planted
    first, second = tmp_path / "a" / "p.yaml", tmp_path / "b" / "p.yaml"
    one = _learn(playbook, leads, mapping, first)
    two = _learn(playbook, leads, mapping, second)
    assert first.read_bytes() == second.read_bytes()
    one.pop("proposal"), two.pop("proposal")
    assert json.dumps(one) == json.dumps(two)


def test_the_proposal_keeps_comments_validates_and_diffs(planted: tuple[Path, Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    playbook, leads, mapping = planted
    out = playbook.parent / "proposed-for-diff.yaml"
    _learn(playbook, leads, mapping, out)
    text = out.read_text(encoding="utf-8")
    for line in PLAYBOOK.splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in text
    added = [line for line in text.splitlines() if "lead.segment == \"a\"" in line]
    assert len(added) == 1 and PROPOSAL_MARK in added[0]
    result = validate_path(out)
    assert result.ok and not result.diagnostics
    assert main(["diff", str(playbook), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "+ scoring.fit.rules[segment-a]" in printed
    assert "scoring.fit.rules[segment-b].points: 10 →" in printed
    assert main(["fmt", "--check", str(out)]) == 0


def test_cli_formats_and_rule_cap(planted: tuple[Path, Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    playbook, leads, mapping = planted
    out = tmp_path / "p.yaml"
    argv = ["learn", str(playbook), "--mapping", str(mapping), "--leads", str(leads),
            "--as-of", "2026-01-01", "--out", str(out), "--max-rules", "2", "--format", "json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["after"]["rules"] <= 2 and report["settings"]["max_rules"] == 2
    assert sum(1 for p in _points(out.read_text(encoding="utf-8")).values() if p) <= 2
    assert main([*argv[:-4], "--format", "markdown", "--no-propose-rules"]) == 0
    markdown = capsys.readouterr().out
    assert "| current points |" in markdown and "(new)" not in markdown


def test_missing_scikit_learn_says_how_to_install(planted: tuple[Path, Path, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    playbook, leads, mapping = planted
    for name in ["sklearn", *(m for m in sys.modules if m.startswith("sklearn."))]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    out = tmp_path / "p.yaml"
    code = main(["learn", str(playbook), "--mapping", str(mapping), "--leads", str(leads),
                 "--as-of", "2026-01-01", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "pip install 'revenue-playbook-engine[learn]'" in err and "Traceback" not in err
    assert not out.exists()


def test_bad_outcomes_are_reported_not_guessed(tmp_path: Path) -> None:
    playbook, leads, mapping = _planted(tmp_path, n=400)
    with open(leads, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    rows[1][-1], rows[2][-1], rows[3][-1] = "", "maybe", "1"
    rows.append(list(rows[3]))
    rows[-1][-1] = "0"  # the same lead again, with the other outcome
    with open(leads, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    report = _learn(playbook, leads, mapping, tmp_path / "p.yaml")
    counts = report["leads"]
    assert isinstance(counts, dict)
    # the empty and the unreadable outcome are rejects; the lead given twice is rejected as a
    # lead (its outcomes merge as backtest merges them: converted if any row is)
    assert counts["outcome_rejects"] == 2 and counts["without_outcome"] == 2 and counts["rejected"] == 1
    assert counts["learned_from"] == 400 - 2
    notes = report["notes"]
    assert isinstance(notes, list)
    assert any("'maybe'" in note for note in notes) and any("no converted value" in note for note in notes)


def test_outcomes_from_a_file_dated_and_never_readable(tmp_path: Path) -> None:
    """Outcomes in their own file, as backtest reads them: a lead without a row did not convert,
    a conversion dated at or before --as-of was known and is left out; a playbook field named
    like an outcome is refused (engine.measure.leakage) before anything is learned."""
    playbook, leads, mapping = _planted(tmp_path, n=400)
    with open(leads, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    deals = tmp_path / "deals.csv"
    won = [row["id"] for row in rows if row["converted"] == "1"]
    with open(deals, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["lead", "won_on"])
        out.writerows([lead_id, "2025-06-01" if i < 7 else "2026-03-01"] for i, lead_id in enumerate(won))
    by_file = "outcomes: {source: file, lead_id: lead, won_at: won_on}\n"
    mapping.write_text(MAPPING.split("outcomes:")[0] + by_file, encoding="utf-8")
    report = run_learn(playbook, leads=leads, mapping=str(mapping), outcomes=deals, as_of="2026-01-01",
                       out=tmp_path / "p.yaml", settings=Settings()).to_dict()
    counts, after = report["leads"], report["after"]
    assert isinstance(counts, dict) and isinstance(after, dict)
    assert counts["without_outcome"] == 7 and counts["learned_from"] == 400 - 7
    assert after["converted"] == len(won) - 7
    assert any("7 lead(s) converted at or before --as-of" in n for n in report["notes"])  # type: ignore[union-attr]
    with pytest.raises(EngineError, match="nothing learned") as refused:
        leaky = tmp_path / "leaky.yaml"
        leaky.write_text(PLAYBOOK.replace("    region: string\n", "    region: string\n    won_on: string\n"),
                         encoding="utf-8")
        run_learn(leaky, leads=leads, mapping=str(mapping), outcomes=deals, as_of="2026-01-01",
                  out=tmp_path / "q.yaml", settings=Settings())
    assert [d.code for d in refused.value.diagnostics] == ["E-OUTCOME-READABLE"]
    assert not (tmp_path / "q.yaml").exists()


def test_too_few_outcomes_is_a_clear_error(tmp_path: Path) -> None:
    playbook, leads, mapping = _planted(tmp_path, n=30)
    with pytest.raises(EngineError, match="at least 25 converted and 25 not converted"):
        _learn(playbook, leads, mapping, tmp_path / "p.yaml")


def test_capacity_and_intervals() -> None:
    assert parse_capacity("20%") == Capacity(share=0.2) and parse_capacity("500") == Capacity(count=500)
    for bad in ("0%", "120%", "1.5", "many", "-3"):
        with pytest.raises(EngineError):
            parse_capacity(bad)
    assert Capacity(count=500).of(200, 1000) == 100
    low, high = wilson(5, 10)
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634
    assert wilson(0, 10)[0] == 0.0 and round(wilson(0, 10)[1], 4) == 0.2775


def test_ties_at_the_cut_are_shared_pro_rata() -> None:
    np = pytest.importorskip("numpy")
    score = np.array([3.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    converted = np.array([True, True, False, True, False, True])
    hits, k = _top(np, score, converted, 3)  # the best, then 2 of the 4 tied at 2 (half converted)
    assert k == 3 and hits == pytest.approx(2.0)
    reordered = np.array([1, 0, 3, 2, 5, 4])  # input order cannot change it
    assert _top(np, score[reordered], converted[reordered], 3) == (hits, k)


def test_current_points_are_measured_as_written() -> None:
    """With no signal in any column the proposal has nothing to gain, and says so in its figures."""
    columns = [[1.0, 0.0] * 100, [0.0, 1.0] * 100]
    converted = [i % 4 < 2 for i in range(200)]  # independent of both columns
    result = learn(columns, converted, [False] * 200, [10.0, 0.0], Settings())
    assert result.before.rules == 1
    assert abs(result.before.precision - 0.5) < 0.05


@pytest.mark.skipif(not X_EDUCATION.exists(), reason="../shared/data/leads-x-education is not here")
def test_x_education_pre_contact(tmp_path: Path) -> None:
    """The real export, pre-contact columns only: the issue's bar (docs/learn.md has the figures)."""
    out = tmp_path / "x-education-learned.yaml"
    report = run_learn(ROOT / "playbooks" / "x-education-untuned.yaml", leads=X_EDUCATION,
                       mapping="leads-x-education-precontact", as_of="2020-01-01",
                       out=out, settings=Settings()).to_dict()
    after, before = report["after"], report["before"]
    assert isinstance(after, dict) and isinstance(before, dict)
    assert after["leads"] == 9240 and after["converted"] == 3561
    assert after["rules"] <= 25
    # #15's bar: >= 89.5% out of fold in the top 20% with at most 25 non-zero rules; a
    # black-box logistic regression on the same columns reaches 88.6%.
    assert after["precision"] >= 0.895
    assert after["precision"] > before["precision"] + 0.08
    assert validate_path(out).ok


ENGAGED = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: engaged, version: "1"}
teams:
  sales: {handoffs_per_week: 100}
lead:
  fields: {industry: string}
events:
  demo: {}
  email_open: {}
  webinar: {}
scoring:
  engagement:
    points:
      demo: 5        # a demo is worth a lot (comment kept)
      email_open: 5
stages:
  - {id: lead, owner: sales}
handoffs:
  - {id: call, to: sales, when: stage >= "lead", priority: engagement}
"""


def test_engagement_points_per_event_type(tmp_path: Path) -> None:
    """Demos and webinars convert, opens do not: learn weighs the types so, and adds the missing one."""
    rng = random.Random(3)
    leads, events = tmp_path / "leads.csv", tmp_path / "events.csv"
    with open(leads, "w", encoding="utf-8", newline="") as lf, open(events, "w", encoding="utf-8",
                                                                    newline="") as ef:
        lead_rows, event_rows = csv.writer(lf), csv.writer(ef)
        lead_rows.writerow(["lead_id", "industry", "converted"])
        event_rows.writerow(["lead_id", "occurred_at", "type"])
        for i in range(1500):
            counts = {"demo": rng.randint(0, 2), "email_open": rng.randint(0, 6),
                      "webinar": rng.randint(0, 2)}
            logit = -1.5 + 1.2 * counts["demo"] + 0.9 * counts["webinar"]
            won = rng.random() < 1 / (1 + math.exp(-logit))
            lead_rows.writerow([f"L{i:05d}", rng.choice(["retail", "software"]), int(won)])
            for kind, count in counts.items():
                for j in range(count):
                    event_rows.writerow([f"L{i:05d}", f"2025-12-{1 + j:02d}T10:00:00Z", kind])
    playbook = tmp_path / "engaged.yaml"
    playbook.write_text(ENGAGED, encoding="utf-8")
    out, mapping = tmp_path / "proposed.yaml", tmp_path / "mapping.yaml"
    # Only the columns this export has (the canonical preset would require its lead fields).
    mapping.write_text("leads: {id: lead_id, fields: {industry: industry}}\n"
                       "events: {lead_id: lead_id, at: occurred_at, type: type}\n"
                       "outcomes: {converted: converted}\n", encoding="utf-8")
    report = run_learn(playbook, leads=leads, events=events, mapping=str(mapping), as_of="2026-01-01",
                       out=out, settings=Settings()).to_dict()
    from ruamel.yaml import YAML

    points = YAML(typ="safe").load(out.read_text(encoding="utf-8"))["scoring"]["engagement"]["points"]
    assert points["demo"] > 0 and points["webinar"] > 0 and points["email_open"] == 0
    text = out.read_text(encoding="utf-8")
    assert "# a demo is worth a lot (comment kept)" in text
    assert any("webinar" in line and PROPOSAL_MARK in line for line in text.splitlines())
    changes = {c["where"]: c for c in report["changes"]}  # type: ignore[union-attr]
    assert changes["scoring.engagement.points.email_open"]["old"] == 5
    assert changes["scoring.engagement.points.demo"]["matched"] > 1000  # events, not leads


def test_computed_points_are_left_as_written_and_said_so(tmp_path: Path) -> None:
    """Issue #15 item 3: learn fits integer points only; a rule whose points are an expression
    keeps its text, and capped rules and types are named in the notes."""
    playbook, leads, mapping = _planted(tmp_path, n=800)
    text = playbook.read_text(encoding="utf-8").replace(
        "      - id: sized\n",
        "      - {id: by-size, when: lead.size != None, points: 'min(lead.size / 10, 8)'}\n"
        "      - id: sized\n        cap: 15\n",
    )
    playbook.write_text(text, encoding="utf-8")
    out = tmp_path / "proposed.yaml"
    report = _learn(playbook, leads, mapping, out)
    written = out.read_text(encoding="utf-8")
    assert "points: 'min(lead.size / 10, 8)'" in written
    wheres = {c["where"] for c in report["changes"]}  # type: ignore[union-attr]
    assert "scoring.fit.rules.segment-b" in wheres and "scoring.fit.rules.by-size" not in wheres
    notes = report["notes"]
    assert any("'by-size' computes its points from the lead: left as written" in n for n in notes)  # type: ignore[union-attr]
    assert any("'sized' is capped at 15" in n for n in notes)  # type: ignore[union-attr]
