"""`engine approvals`: fail until every owner the plan requires has approved the pull request."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click


def _read_json(path: Path, what: str) -> Any:
    from engine.diagnostics import EngineError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineError(f"{path}: cannot read {what}: {exc}") from None


@click.command()
@click.option("--plan", "plan_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The plan: `engine diff --base origin/main --format json` output.")
@click.option("--reviews", "reviews_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The PR's reviews as the GitHub API returns them (offline; else --repo/--pr).")
@click.option("--team-members", "team_files", multiple=True, metavar="ORG/TEAM=FILE",
              help="Offline: a team's members as the API returns them (repeatable).")
@click.option("--repo", help="owner/name: read the reviews from the GitHub API (GITHUB_TOKEN).")
@click.option("--pr", type=click.IntRange(min=1), help="The pull request number (with --repo).")
@click.option("--head-sha", help="Only approvals of this commit count (the PR's head).")
@click.option("--prefix", default="@", show_default=True,
              help="How owner names become handles, as in `engine owners`: `@acme/` makes them "
                   "teams of the acme organisation.")
def approvals(plan_path: Path, reviews_path: Path | None, team_files: tuple[str, ...],
              repo: str | None, pr: int | None, head_sha: str | None, prefix: str) -> None:
    """Check that every owner the plan requires approved the pull request.

    The plan (`engine diff --format json`) names, per changed playbook, the owners
    whose approval it needs — the base branch's `metadata.owners`, so a PR cannot
    approve itself by editing them. A reviewer's latest review counts; a team is
    satisfied by any member's approval. Team membership needs a token that can read
    the organisation's teams, in the ENGINE_ORG_TOKEN environment variable (a
    fine-grained token with "Members: read", or a classic one with read:org): the
    workflow's GITHUB_TOKEN cannot. Without it, a team's approval is reported as
    unknown and the check fails. Exit 0 when everyone approved, 1 otherwise.

    \b
    Examples:
      engine approvals --plan plan.json --repo acme/playbooks --pr 42 --head-sha "$SHA"
      engine approvals --plan plan.json --reviews reviews.json \\
          --team-members acme/sales-ops=members.json --prefix @acme/
    """
    from engine import approvals as check
    from engine.diagnostics import EngineError

    plan = _read_json(plan_path, "the plan")
    if not isinstance(plan, dict):
        raise EngineError(f"{plan_path}: the plan is not `engine diff --format json` output")
    required = check.required_owners(plan, prefix)
    if (reviews_path is None) == (repo is None):
        raise click.UsageError("give the reviews: --reviews FILE, or --repo OWNER/NAME --pr N")
    if reviews_path is not None:
        if pr is not None:
            raise click.UsageError("--pr goes with --repo")
        reviews = _read_json(reviews_path, "the reviews")
        teams: dict[str, list[str]] = {}
        for spec in team_files:
            name, sep, file = spec.partition("=")
            if not sep or "/" not in name:
                raise click.UsageError(f"--team-members {spec!r}: write ORG/TEAM=FILE")
            members = _read_json(Path(file), f"the members of {name}")
            teams[name.lower()] = [str(m.get("login", "")) for m in members if isinstance(m, dict)]
        verdict = check.decide(required, reviews if isinstance(reviews, list) else [],
                               lambda org, team: teams.get(f"{org}/{team}".lower()), head_sha,
                               unknown_team="team membership unknown: no --team-members file for it")
    else:
        assert repo is not None
        if pr is None or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise click.UsageError("--repo OWNER/NAME needs --pr N")
        import os

        token = os.environ.get("GITHUB_TOKEN")
        if not token:
            raise EngineError("GITHUB_TOKEN is not set: it is needed to read the pull request's "
                              "reviews (in a workflow: env: GITHUB_TOKEN: ${{ github.token }})")
        reviews = check.github_fetch(token)(f"/repos/{repo}/pulls/{pr}/reviews?per_page=100")
        org_token = check.org_token()
        if org_token is None and any("/" in o for o in required):
            click.echo(f"warning: {check.ORG_TOKEN_ENV} is not set: team approvals cannot be "
                       "checked (a token with read:org is needed)", err=True)
        fetch = check.github_fetch(org_token) if org_token else None
        verdict = check.decide(required, reviews, check.team_members(fetch), head_sha)
    click.echo(verdict.render(), nl=False)
    sys.exit(0 if verdict.passed else 1)
