"""`engine diff --leads/--events`: the impact of a rule change on the leads of an export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main

from .conftest import PLAYBOOKS

LEADS = """lead_id,email,company_domain,industry,employees,title,country,lead_source
A1,a@x.example.jp,x.example.jp,software,250,部長,JP,web_form
A2,b@y.example.jp,y.example.jp,retail,5,Engineer,JP,expo
A3,c@z.example.jp,z.example.jp,finance,40,Manager,US,seminar
"""
EVENTS = """lead_id,occurred_at,type,content_id
A1,2026-10-30T10:00:00Z,webinar_attend,
A1,2026-10-31T10:00:00Z,webinar_attend,
A1,2026-10-31T11:00:00Z,webinar_attend,
A2,2026-10-31T10:00:00Z,email_open,
A3,2026-10-31T10:00:00Z,bogus_type,
"""


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "lists")
    text = (PLAYBOOKS / "smb-saas.yaml").read_text(encoding="utf-8")
    base, head = tmp_path / "base.yaml", tmp_path / "head.yaml"
    base.write_text(text, encoding="utf-8")
    head.write_text(text.replace("      webinar_attend: 10\n", "      webinar_attend: 15\n"),
                    encoding="utf-8")
    (tmp_path / "leads.csv").write_text(LEADS, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    return base, head


def test_export_leads_join_the_impact(sides: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    base, head = sides
    folder = base.parent
    code = main(["diff", str(base), str(head), "--no-impact", "--format", "json"])
    assert code == 0
    capsys.readouterr()
    code = main(["diff", str(base), str(head), "--fixtures", str(folder / "none"),
                 "--leads", str(folder / "leads.csv"), "--events", str(folder / "events.csv"),
                 "--as-of", "2026-11-01T00:00:00Z", "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    playbook = report["playbooks"][0] if "playbooks" in report else report[0]
    assert playbook["impact"] is None  # no fixtures: the export is reported on its own
    impact = playbook["export_impact"]
    assert impact["total"] == 3
    # three webinars: 30 → 45 points crosses the promising threshold for the fit-60 lead
    assert impact["changed"] == 1 and impact["changed_examples"] == ["A1"]
    assert "1 row(s) rejected" in playbook["impact_note"]  # the unknown event type


def test_leads_without_as_of_is_a_usage_error(sides: tuple[Path, Path]) -> None:
    base, head = sides
    assert main(["diff", str(base), str(head), "--leads", str(base.parent / "leads.csv")]) == 2
