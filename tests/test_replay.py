"""Replay: timelines name what changed, and the CLI shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.fixtures import load_fixture
from engine.replay import replay
from engine.validate import load_playbook

from .conftest import PLAYBOOKS, ROOT

FIXTURES = ROOT / "fixtures" / "smb-saas"


def timeline(name: str):  # type: ignore[no-untyped-def]
    result = load_playbook(PLAYBOOKS / "smb-saas.yaml")
    fx = load_fixture(FIXTURES / name, lambda _p: result)
    assert result.compiled is not None
    return replay(result.compiled, fx.lead, fx.events, fx.as_of, lead_id=fx.lead_id,
                  check_at=fx.check_at)


def test_steps_name_stage_handoff_and_threshold_changes() -> None:
    steps = timeline("hot-enquiry.yaml").steps
    changes = [c for s in steps for c in s.changes]
    assert "stage promising (owner inside_sales)" in changes
    assert "engagement rose past 40" in changes
    assert any(c.startswith("handoff fast-pass → field_sales") for c in changes)


def test_cooldown_end_is_a_step() -> None:
    steps = timeline("lost-deal.yaml").steps
    assert [s.reason for s in steps].count("cooldown end") == 1
    end = next(s for s in steps if s.reason == "cooldown end")
    assert "recycle ended: deal_lost (cooldown over)" in end.changes


def test_replay_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", str(PLAYBOOKS / "smb-saas.yaml"), str(FIXTURES / "surge.yaml"),
                 "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lead_id"] == "L-surge"
    assert data["steps"][-1]["decision"]["surge"] is True


def test_explain_cli_shows_rules_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", str(PLAYBOOKS / "smb-saas.yaml"), str(FIXTURES / "hot-enquiry.yaml")])
    assert code == 0
    out = capsys.readouterr().out
    assert "✓ handoffs/fast-pass" in out
    assert "saw lead.company_domain='acme.example.jp'" in out


def test_functions_cli_lists_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.functions import FUNCTIONS, NAMES

    assert main(["functions", "--format", "json"]) == 0
    listed = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert listed == set(FUNCTIONS) | set(NAMES)


EXPORT_LEADS = """lead_id,email,company_domain,industry,employees,title,country,lead_source
A1,a@x.example.jp,x.example.jp,software,250,部長,JP,web_form
A2,b@y.example.jp,y.example.jp,retail,5,Engineer,JP,expo
"""
EXPORT_EVENTS = """lead_id,occurred_at,type,content_id
A1,2026-10-30T10:00:00Z,webinar_attend,
A1,2026-10-31T10:00:00Z,inquiry,
A2,2026-10-31T10:00:00Z,email_open,
"""


def test_explain_a_lead_of_an_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "leads.csv").write_text(EXPORT_LEADS, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EXPORT_EVENTS, encoding="utf-8")
    args = ["explain", str(PLAYBOOKS / "smb-saas.yaml"), "--leads", str(tmp_path / "leads.csv"),
            "--events", str(tmp_path / "events.csv"), "--as-of", "2026-11-01T00:00:00Z"]
    assert main([*args, "--lead", "A1", "--format", "json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["lead_id"] == "A1" and decision["handoff"]["rule"] == "fast-pass"
    assert any(step["rule"] == "fast-pass" and step["result"] for step in decision["trace"])
    assert main([*args, "--lead", "A2"]) == 0
    assert "decision for A2" in capsys.readouterr().out
    assert main([*args, "--lead", "A9"]) == 1
    assert "lead 'A9' is not in" in capsys.readouterr().err
    assert main([*args[:2], "--lead", "A1"]) == 2  # a fixture or an export, one of them


def test_explain_shows_stage_names_not_positions(capsys: pytest.CaptureFixture[str]) -> None:
    enterprise = PLAYBOOKS.parent / "fixtures" / "enterprise" / "bant-to-won.yaml"
    assert main(["explain", str(PLAYBOOKS / "enterprise.yaml"), str(enterprise)]) == 0
    out = capsys.readouterr().out
    assert "saw stage='won'" in out.replace('"', "'") and "stage=9" not in out
