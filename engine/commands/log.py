"""`engine log`: the semantic history of playbooks — who changed which rule, when and why."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

#: Plan lines shown per commit in the markdown form (the rest: the text or json form).
MAX_LINES = 20


@click.command()
@click.argument("playbooks", nargs=-1)
@click.option("--since", metavar="REV", help="Only commits after this revision (REV..HEAD).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
def log(playbooks: tuple[str, ...], since: str | None, fmt: str) -> None:
    """For each commit that touched a playbook: the rules it added, removed or changed.

    Follows renames (`git log --follow`); each commit's version is compared with its
    parent's by the same semantic diff as `engine diff`, so comment and layout edits
    show as "no semantic change". Author, date, subject and the PR number ("(#123)" or
    "Merge pull request #123") come from git. A version that does not validate under
    this engine is shown as invalid with the reason. PLAYBOOKS default to the
    playbooks under playbooks/ at HEAD; they must be inside the repository.

    \b
    Examples:
      engine log playbooks/smb-saas.yaml
      engine log --since v0.1.0 --format markdown
    """
    from engine.commands.diff import _repo_paths
    from engine.diagnostics import EngineError
    from engine.history_log import log_playbooks
    from engine.revisions import Side, is_revision

    if since is not None and not is_revision(since):
        raise click.UsageError(f"--since {since!r} is not a git revision")
    paths = _repo_paths(list(playbooks)) if playbooks else Side("HEAD").list_playbooks(["playbooks"])
    if not paths:
        raise EngineError("no playbooks to show: name them, or run in a repository with playbooks/")
    history = log_playbooks(paths, since)
    for path, entries in history.items():
        if not entries and since is None:
            raise EngineError(f"{path}: no commit touched it (is the path right?)")
    # With --since, a playbook no commit touched in the range has nothing to show, not an error.
    history = {path: entries for path, entries in history.items() if entries}
    if not history and fmt != "json":
        click.echo(f"no playbook changed since {since}")
        return
    if fmt == "json":
        data = {path: [e.to_dict() for e in entries] for path, entries in history.items()}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo((_markdown if fmt == "markdown" else _text)(history), nl=False)


def _what(entry: Any) -> str:
    if entry.status == "renamed":
        return f"renamed from {entry.renamed_from} (no semantic change)"
    if entry.status == "changed" and entry.renamed_from:
        return f"renamed from {entry.renamed_from}"
    return {"unchanged": "no semantic change", "added": "added", "removed": "removed",
            "invalid": f"invalid at this commit: {entry.note}", "changed": ""}[entry.status]


def _lines(entry: Any) -> list[str]:
    from engine.diff_render import change_lines

    return [line for change in entry.changes for line in change_lines(change)]


def _heading(entry: Any) -> str:
    pr = f" (#{entry.pr})" if entry.pr is not None and f"#{entry.pr}" not in entry.message else ""
    return f"{entry.commit[:10]} {entry.date[:10]} {entry.author}: {entry.message}{pr}"


def _text(history: Mapping[str, Sequence[Any]]) -> str:
    out: list[str] = []
    for path, entries in history.items():
        out.append(path)
        for entry in entries:
            out.append(f"  {_heading(entry)}")
            what = _what(entry)
            if what:
                out.append(f"      {what}")
            out += [f"      {line}" for line in _lines(entry)]
        out.append("")
    return "\n".join(out)


def _markdown(history: Mapping[str, Sequence[Any]]) -> str:
    out: list[str] = []
    for path, entries in history.items():
        out += [f"### `{Path(path).as_posix()}`", ""]
        for entry in entries:
            pr = f" (#{entry.pr})" if entry.pr is not None else ""
            title = entry.message.replace("|", "\\|")
            out += [f"- **{entry.date[:10]}** `{entry.commit[:10]}` {entry.author}{pr}: {title}"]
            what = _what(entry)
            if what:
                out.append(f"  _{what}_")
            lines = _lines(entry)
            if lines:
                cut = len(lines) - MAX_LINES
                shown = lines[:MAX_LINES] + ([f"# … {cut} more line(s): engine log {path}"]
                                             if cut > 0 else [])
                out += ["", "  ```diff", *[f"  {line}" for line in shown], "  ```"]
            out.append("")
    return "\n".join(out)
