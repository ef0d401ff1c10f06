"""Has every required owner approved the pull request? (``engine approvals``)

Inputs: the plan (``engine diff --format json``: each changed playbook's
``required_approvers``, the base branch's owners) and the pull request's reviews as
the GitHub REST API returns them (``GET /repos/{owner}/{repo}/pulls/{n}/reviews``).
A reviewer's *latest* approving, dismissing or change-requesting review counts
(comments do not); with a head SHA, approvals of older commits are stale.

An owner is a user (``sales-ops`` → ``@sales-ops``) or, as in CODEOWNERS, a team
(``@acme/sales-ops``, or any name with ``--prefix @acme/``). A team is satisfied by
an approval from any member: ``GET /orgs/{org}/teams/{slug}/members``, which needs a
token that can read the organisation's teams (``read:org``; the workflow's own
GITHUB_TOKEN cannot). Without one, a team's approval cannot be checked and the
result says so — it never passes on a guess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import EngineError
from engine.owners import handle

#: Where team membership is read from when a token is needed (documented in the workflow).
ORG_TOKEN_ENV = "ENGINE_ORG_TOKEN"
API = "https://api.github.com"

#: ``path`` → parsed JSON (a list, for the endpoints used here); raises LookupError on 404.
Fetch = Callable[[str], Any]


@dataclass(frozen=True)
class OwnerStatus:
    """One required owner: approved (by whom), missing, or not checkable (and why)."""

    owner: str
    approved_by: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Approved by the owner, or by a member of the owner team."""
        return bool(self.approved_by)


@dataclass
class Verdict:
    """The outcome over every required owner; ``passed`` only when each one approved."""

    owners: list[OwnerStatus] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # approvals of an older commit

    @property
    def passed(self) -> bool:
        """Every required owner approved."""
        return all(s.ok for s in self.owners)

    def render(self) -> str:
        """One line per owner, then the verdict."""
        if not self.owners:
            return "approvals: no playbook change needs an owner's approval\n"
        lines = []
        for s in self.owners:
            if s.ok:
                by = "" if s.approved_by == (s.owner.lstrip("@"),) else f" (by {', '.join(s.approved_by)})"
                lines.append(f"  ✓ {s.owner}{by}")
            else:
                lines.append(f"  ✗ {s.owner}: {s.problem or 'has not approved'}")
        if self.stale:
            lines.append(f"  (approvals of an older commit do not count: {', '.join(self.stale)})")
        missing = sum(not s.ok for s in self.owners)
        head = ("approvals: every required owner approved" if self.passed
                else f"approvals: {missing} of {len(self.owners)} required owner(s) missing")
        return "\n".join([head, *lines]) + "\n"


def required_owners(plan: Mapping[str, Any], prefix: str = "@") -> list[str]:
    """Owners whose approval the plan needs, as handles (``@user`` or ``@org/team``), sorted."""
    playbooks = plan.get("playbooks")
    if not isinstance(playbooks, list):
        raise EngineError("the plan is not `engine diff --format json` output (no `playbooks`)")
    found: set[str] = set()
    for entry in playbooks:
        if not isinstance(entry, dict) or entry.get("status") == "unchanged":
            continue
        owners = entry.get("required_approvers")
        if owners is None:  # an added or removed playbook: the owners of its sections
            owners = [o for a in entry.get("approvals", []) for o in a.get("owners", [])]
        found.update(handle(str(o), prefix) for o in owners)
    return sorted(found)


def approvers(reviews: Sequence[Mapping[str, Any]], head_sha: str | None = None
              ) -> tuple[set[str], list[str]]:
    """Logins whose latest deciding review approves (lower-cased), and stale approvers."""
    latest: dict[str, Mapping[str, Any]] = {}
    for review in reviews:  # the API lists reviews oldest first
        user = review.get("user") or {}
        login = str(user.get("login", "")).lower()
        if login and review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[login] = review
    approved, stale = set(), []
    for login, review in latest.items():
        if review.get("state") != "APPROVED":
            continue
        if head_sha and review.get("commit_id") != head_sha:
            stale.append(login)
        else:
            approved.add(login)
    return approved, sorted(stale)


UNKNOWN_TEAM = f"team membership unknown: set the {ORG_TOKEN_ENV} secret (a token with read:org)"


def decide(required: Iterable[str], reviews: Sequence[Mapping[str, Any]],
           members: Callable[[str, str], list[str] | None], head_sha: str | None = None,
           unknown_team: str = UNKNOWN_TEAM) -> Verdict:
    """Check each required owner; ``members(org, team)`` gives logins, or None when unknown."""
    approved, stale = approvers(reviews, head_sha)
    verdict = Verdict(stale=stale)
    for owner in required:
        name = owner.lstrip("@")
        if "/" not in name:
            ok = (name,) if name.lower() in approved else ()
            verdict.owners.append(OwnerStatus(owner, ok))
            continue
        org, _, team = name.partition("/")
        logins = members(org, team)
        if logins is None:
            verdict.owners.append(OwnerStatus(owner, (), unknown_team))
            continue
        by = tuple(sorted(login for login in (m.lower() for m in logins) if login in approved))
        verdict.owners.append(OwnerStatus(owner, by, None if by else "no member has approved"))
    return verdict


def team_members(fetch: Fetch | None) -> Callable[[str, str], list[str] | None]:
    """``members(org, team)`` over the API (None: no token, or the team is not visible)."""
    def members(org: str, team: str) -> list[str] | None:
        if fetch is None:
            return None
        try:
            data = fetch(f"/orgs/{org}/teams/{team}/members?per_page=100")
        except LookupError:
            return None
        return [str(m.get("login", "")) for m in data if isinstance(m, dict)]
    return members


def github_fetch(token: str, api: str | None = None) -> Fetch:
    """GET a GitHub REST path with a token, following ``Link: rel="next"`` pages (urllib only).

    The API is ``GITHUB_API_URL`` (set by Actions, also on GitHub Enterprise Server),
    else api.github.com.
    """
    import re
    import urllib.error
    import urllib.request

    api = (api or os.environ.get("GITHUB_API_URL") or API).rstrip("/")

    def fetch(path: str) -> Any:
        url: str | None = api + path
        items: list[Any] = []
        while url is not None:
            request = urllib.request.Request(url, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "engine-approvals"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    page = json.loads(response.read().decode("utf-8"))
                    link = response.headers.get("Link") or ""
            except urllib.error.HTTPError as exc:
                if exc.code in (403, 404):
                    raise LookupError(f"{path}: HTTP {exc.code}") from None
                raise EngineError(f"GitHub API {path}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, TimeoutError) as exc:
                raise EngineError(f"GitHub API {path}: {exc}") from None
            items.extend(page if isinstance(page, list) else [page])
            found = re.search(r'<([^>]+)>;\s*rel="next"', link)
            # the token is only ever sent to the API itself
            url = found.group(1) if found and found.group(1).startswith(api + "/") else None
        return items
    return fetch


def org_token() -> str | None:
    """The token for team membership, from the environment (empty counts as missing)."""
    return os.environ.get(ORG_TOKEN_ENV) or None
