"""Replay: timelines name what changed, and the CLI shows them."""

from __future__ import annotations

import json

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
