"""A fixture's playbook, like a list file, is read only from inside the repository (issue #13)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.diagnostics import EngineError
from engine.fixtures import load_fixture

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "tests" / "hostile" / "13-02-fixture-playbook-outside"


def test_a_fixture_cannot_name_a_playbook_outside_the_repository(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(CASE, work)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    with pytest.raises(EngineError, match="outside the repository") as caught:
        load_fixture(work / "fixtures" / "leak.yaml")
    assert "root:" not in str(caught.value)
    result = subprocess.run([sys.executable, "-m", "engine", "test", "fixtures"], cwd=work,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "outside the repository" in result.stdout + result.stderr
    assert "root:" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_a_relative_escape_is_refused_and_a_sibling_folder_is_not(tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text("token: s3cret\n", encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / "fixtures").mkdir(parents=True)
    (repo / "playbooks").mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ROOT / "playbooks" / "smb-saas.yaml", repo / "playbooks" / "smb-saas.yaml")
    shutil.copytree(ROOT / "playbooks" / "lists", repo / "playbooks" / "lists")
    fixture = repo / "fixtures" / "f.yaml"
    fixture.write_text("apiVersion: engine/v1\nkind: Fixture\nplaybook: ../../secret.yaml\n"
                       "lead: {id: L-1}\nevents: []\nas_of: '2026-10-01T00:00:00Z'\n", encoding="utf-8")
    with pytest.raises(EngineError, match="outside the repository") as caught:
        load_fixture(fixture)
    assert "s3cret" not in str(caught.value)
    fixture.write_text(fixture.read_text(encoding="utf-8").replace("../../secret.yaml",
                                                                   "../playbooks/smb-saas.yaml"),
                       encoding="utf-8")
    assert load_fixture(fixture).lead_id == "L-1"
