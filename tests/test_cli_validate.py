"""`engine validate` end to end: exit codes, formats, strictness."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

from .conftest import PLAYBOOKS

BROKEN = Path(__file__).parent / "broken"


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(PLAYBOOKS)]) == 0
    assert "playbook(s) valid" in capsys.readouterr().out


def test_invalid_playbook_exits_1_with_position(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(BROKEN / "unknown-team.yaml")]) == 1
    out = capsys.readouterr().out
    assert "unknown-team.yaml:26:28: error[E-REF] unknown team `insides_sales`" in out
    assert "did you mean `inside_sales`?" in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "xml", str(PLAYBOOKS)]) == 2
    assert main(["validate", "/no/such/path"]) == 2


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (BROKEN / "unknown-team.yaml").read_text(encoding="utf-8")
    text = text.replace("to: inside_sales", "to: field_sales").replace("page_view: 1", "pv: 1")
    path = tmp_path / "many.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "engine", "validate", "--format", "json", str(path)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"]]
    assert codes.count("E-REF") == 3


def test_github_format_annotates_lines(capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", "--format", "github", str(BROKEN / "unknown-key.yaml")])
    out = capsys.readouterr().out
    assert out.startswith("::error file=")
    assert ",line=25,col=39,title=E-SCHEMA-UNKNOWN-KEY::unknown key `entri`" in out


def test_sarif_format_is_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", "--format", "sarif", str(BROKEN / "unknown-key.yaml")])
    sarif = json.loads(capsys.readouterr().out)
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "E-SCHEMA-UNKNOWN-KEY"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 25, "startColumn": 39}


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    source = PLAYBOOKS / "smb-saas.yaml"
    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "lists")
    text = source.read_text(encoding="utf-8").replace(
        "  - {id: lead, owner: marketing}", "  - {id: lead, owner: marketing, entry: fit >= 0}"
    )
    path = tmp_path / "warn.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    assert main(["validate", "--strict", str(path)]) == 1


def test_directories_skip_other_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fixture.yaml").write_text("kind: Fixture\nlead: {}\n", encoding="utf-8")
    shutil.copy(BROKEN / "unknown-key.yaml", tmp_path / "pb.yaml")
    assert main(["validate", str(tmp_path)]) == 1
    assert "fixture.yaml" not in capsys.readouterr().out


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Revenue playbook"
