"""`engine plan`: backward and forward simulation with declared and measured rates, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main

PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {{name: planned, version: "1"}}
teams:
  marketing: {{}}
  inside_sales: {{handoffs_per_week: 100}}
  field_sales: {{handoffs_per_week: 10}}
stages:
  - {{id: lead, owner: marketing}}
  - {{id: mql, owner: inside_sales, entry: count("form") > 0}}
  - {{id: opportunity, owner: field_sales, entry: count("meeting") > 0}}
  - {{id: won, owner: marketing, entry: count("deal") > 0}}
events: {{form: {{}}, meeting: {{}}, deal: {{}}}}
plan:
  period: 10w
  {target}
  deal_size: 1000
  lifetime_value: 5000
  steps:
    - {{stage: mql, rate: {mql}}}
    - {{stage: opportunity, rate: 0.5}}
    - {{stage: won, rate: 0.25}}
  channels:
    paid: {{budget: 20000, leads_per_week: 100}}
    organic: {{leads_per_week: 50}}
"""


def _playbook(tmp_path: Path, target: str = "won_target: 20", mql: str = "0.2") -> Path:
    path = tmp_path / "planned.yaml"
    path.write_text(PLAYBOOK.format(target=target, mql=mql), encoding="utf-8")
    return path


def _plan(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["plan", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_backward_from_the_target(tmp_path: Path) -> None:
    report = _plan(str(_playbook(tmp_path)))
    # 20 won in 10 weeks = 2 a week; / 0.25 = 8 opportunities; / 0.5 = 16 MQLs; / 0.2 = 80 leads
    assert [(r["stage"], r["per_week"]) for r in report["backward"]] == [
        ("lead", 80.0), ("mql", 16.0), ("opportunity", 8.0), ("won", 2.0)]
    assert report["backward"][1]["per_period"] == 160.0
    assert report["teams"] == [
        {"team": "inside_sales", "slots_per_week": 16.0, "capacity": 100, "load": 0.16},
        {"team": "field_sales", "slots_per_week": 8.0, "capacity": 10, "load": 0.8},
        {"team": "marketing", "slots_per_week": 2.0, "capacity": None, "load": None},
    ]


def test_revenue_target_rounds_deals_up(tmp_path: Path) -> None:
    report = _plan(str(_playbook(tmp_path, target="revenue_target: 20500")))
    assert report["target"] == {"won": 21, "revenue": 21000.0}


def test_forward_cac_and_ltv(tmp_path: Path) -> None:
    forward = _plan(str(_playbook(tmp_path)))["forward"]
    paid, organic = forward["channels"]
    # 100 leads a week x 10 weeks x (0.2 x 0.5 x 0.25 = 0.025) = 25 won; CAC 20000 / 25 = 800
    assert (paid["leads_per_period"], paid["conversion"], paid["won_per_period"]) == (1000.0, 0.025, 25.0)
    assert (paid["cac"], paid["ltv"], paid["ltv_to_cac"]) == (800.0, 5000.0, 6.25)
    assert organic["cac"] is None and organic["won_per_period"] == 12.5
    assert forward["won_per_period"] == 37.5 and forward["cac"] == round(20000 / 37.5, 2)


def _funnel_json(tmp_path: Path) -> Path:
    """What `engine funnel` writes, reduced to the rates plan reads: paid 10 leads, 4 MQLs."""
    kpis = {"source": {
        "paid": {"leads": 10, "reached": {"mql": 4, "opportunity": 2, "won": 1}},
        "organic": {"leads": 30, "reached": {"mql": 6, "opportunity": 3, "won": 1}},
    }}
    path = tmp_path / "funnel.json"
    path.write_text(json.dumps({"kpis": kpis}), encoding="utf-8")
    return path


def test_measured_rate_from_the_funnel(tmp_path: Path) -> None:
    report = _plan(str(_playbook(tmp_path, mql="measured")), "--funnel", str(_funnel_json(tmp_path)))
    mql = report["backward"][1]
    assert (mql["rate"], mql["rate_from"]) == (0.25, "measured")      # 10 of 40 leads
    assert report["backward"][0]["per_week"] == 64.0                   # 16 MQLs / 0.25
    paid = report["forward"]["channels"][0]
    assert paid["conversion"] == round(0.4 * 0.5 * 0.25, 4) and "paid's 10 leads" in paid["rates_from"]


def test_won_target_option_answers_how_many_mqls(tmp_path: Path) -> None:
    report = _plan(str(_playbook(tmp_path)), "--won-target", "40")
    assert report["backward"][1]["per_week"] == 32.0


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: [str(_playbook(p, mql="measured"))], "needs --funnel"),
    (lambda p: [str(_playbook(p, mql="measured")), "--funnel", str(_garbage(p))], "not a funnel report"),
    (lambda p: [str(Path(__file__).parent.parent / "playbooks" / "smb-saas.yaml")],
     "no `plan:` section"),
])
def test_plan_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                               make, message: str) -> None:
    code = main(["plan", *make(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def _garbage(folder: Path) -> Path:
    path = folder / "garbage.json"
    path.write_bytes(b"\xff\xfe not json")
    return path
