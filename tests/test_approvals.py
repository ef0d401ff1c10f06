"""engine approvals: required owners against a PR's reviews, offline (recorded API responses)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from engine import approvals as check
from engine.cli import main
from tests.conftest import PLAYBOOKS

API_DIR = Path(__file__).parent / "github_api"
HEAD_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
REVIEWS = json.loads((API_DIR / "pulls-42-reviews.json").read_text(encoding="utf-8"))


@pytest.fixture
def plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A real plan: smb-saas with a handoff SLA and an engagement weight changed."""
    shutil.copytree(PLAYBOOKS / "lists", tmp_path / "lists")
    text = (PLAYBOOKS / "smb-saas.yaml").read_text(encoding="utf-8")
    edited = text.replace("      webinar_attend: 10\n", "      webinar_attend: 15\n")
    edited = edited.replace("sla: 1h", "sla: 2h", 1)
    assert edited.count("webinar_attend: 15") == 1 and "sla: 2h" in edited
    (tmp_path / "base.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "head.yaml").write_text(edited, encoding="utf-8")
    assert main(["diff", str(tmp_path / "base.yaml"), str(tmp_path / "head.yaml"), "--no-impact",
                 "--format", "json"]) == 0
    out = tmp_path / "plan.json"
    out.write_text(capsys.readouterr().out, encoding="utf-8")
    return out


def test_required_owners_come_from_the_plan(plan: Path) -> None:
    data = json.loads(plan.read_text(encoding="utf-8"))
    assert check.required_owners(data) == ["@inside-sales-lead", "@marketing-ops", "@sales-ops"]
    assert check.required_owners(data, "@acme/") == [
        "@acme/inside-sales-lead", "@acme/marketing-ops", "@acme/sales-ops"]
    approval = data["playbooks"][0]["changes"]
    assert {tuple(c["approvers"]) for c in approval} == {("marketing-ops",),
                                                          ("sales-ops", "inside-sales-lead")}


def test_latest_review_counts_and_older_commits_are_stale() -> None:
    approved, stale = check.approvers(REVIEWS)
    assert approved == {"kenji-sato", "marketing-ops"}  # the change request was replaced
    approved, stale = check.approvers(REVIEWS, HEAD_SHA)
    assert approved == {"kenji-sato"} and stale == ["marketing-ops"]


def _members(name: str) -> list[str]:
    data = json.loads((API_DIR / f"teams-{name}-members.json").read_text(encoding="utf-8"))
    return [m["login"] for m in data]


def test_teams_are_satisfied_by_any_member_and_unknown_teams_fail() -> None:
    teams = {"sales-ops": _members("sales-ops"), "inside-sales-lead": _members("inside-sales-lead")}
    required = ["@acme/inside-sales-lead", "@acme/sales-ops"]
    verdict = check.decide(required, REVIEWS, lambda org, team: teams.get(team), HEAD_SHA)
    assert not verdict.passed
    assert [(s.owner, s.approved_by) for s in verdict.owners] == [
        ("@acme/inside-sales-lead", ()), ("@acme/sales-ops", ("kenji-sato",))]
    approval = {**REVIEWS[3], "id": 1006, "state": "APPROVED"}  # aiko-tanaka approves the head
    assert check.decide(required, [*REVIEWS, approval], lambda o, t: teams.get(t), HEAD_SHA).passed
    unknown = check.decide(required, [*REVIEWS, approval], lambda o, t: None, HEAD_SHA)
    assert not unknown.passed and "ENGINE_ORG_TOKEN" in unknown.render()


def test_cli_offline_users_and_teams(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviews = str(API_DIR / "pulls-42-reviews.json")
    assert main(["approvals", "--plan", str(plan), "--reviews", reviews]) == 1
    out = capsys.readouterr().out
    assert "approvals: 2 of 3 required owner(s) missing" in out
    assert "✓ @marketing-ops" in out and "✗ @sales-ops: has not approved" in out
    teams = [f"--team-members=acme/{t}={API_DIR / f'teams-{t}-members.json'}"
             for t in ("sales-ops", "inside-sales-lead")]
    args = ["approvals", "--plan", str(plan), "--reviews", reviews, "--prefix", "@acme/", *teams]
    assert main([*args, "--head-sha", HEAD_SHA]) == 1
    out = capsys.readouterr().out
    assert "✓ @acme/sales-ops (by kenji-sato)" in out
    assert "✗ @acme/marketing-ops: team membership unknown: no --team-members file" in out
    assert "older commit do not count: marketing-ops" in out


class _Api(BaseHTTPRequestHandler):
    """Serves the recorded responses; the reviews in two pages linked by ``Link``."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        host = f"http://{self.headers['Host']}"
        pages: dict[str, tuple[Any, str | None]] = {
            "/repos/acme/playbooks/pulls/42/reviews?per_page=100":
                (REVIEWS[:2], f'<{host}/repos/acme/playbooks/pulls/42/reviews?page=2>; rel="next"'),
            "/repos/acme/playbooks/pulls/42/reviews?page=2": (REVIEWS[2:], None),
            "/orgs/acme/teams/sales-ops/members?per_page=100":
                (json.loads((API_DIR / "teams-sales-ops-members.json").read_text()), None),
        }
        if self.path not in pages:
            self.send_response(404)
            self.end_headers()
            return
        body, link = pages[self.path]
        self.send_response(200)
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("GITHUB_API_URL", url)
    _Api.seen = []
    yield url
    server.shutdown()
    server.server_close()


def test_cli_reads_the_api_with_pages_and_says_when_the_org_token_is_missing(
        plan: Path, api: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["approvals", "--plan", str(plan), "--repo", "acme/playbooks", "--pr", "42",
            "--prefix", "@acme/", "--head-sha", HEAD_SHA]
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("ENGINE_ORG_TOKEN", raising=False)
    assert main(args) == 1
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_pr_token")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "ENGINE_ORG_TOKEN is not set: team approvals cannot be checked" in captured.err
    assert "team membership unknown: set the ENGINE_ORG_TOKEN secret" in captured.out
    assert [p for p, _ in _Api.seen] == ["/repos/acme/playbooks/pulls/42/reviews?per_page=100",
                                         "/repos/acme/playbooks/pulls/42/reviews?page=2"]
    monkeypatch.setenv("ENGINE_ORG_TOKEN", "ghp_org_token")
    _Api.seen = []
    assert main(args) == 1  # inside-sales-lead's member only commented; marketing-ops 404
    out = capsys.readouterr().out
    assert "✓ @acme/sales-ops (by kenji-sato)" in out
    assert ("/orgs/acme/teams/sales-ops/members?per_page=100", "Bearer ghp_org_token") in _Api.seen
    assert all(auth == "Bearer ghs_pr_token" for p, auth in _Api.seen if "/pulls/" in p)
