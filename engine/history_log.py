"""The semantic history of a playbook: who changed which rule, when and why (``engine log``).

``git log --follow`` lists the commits that touched the file, renames included; each
commit's version is compared with its parent's through the same semantic diff as
``engine diff`` (rules by id, comments and layout never count). A version that does
not validate under today's engine is reported as such for that commit, never skipped.
Not to be confused with :mod:`engine.history` (a lead's events).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.diagnostics import EngineError
from engine.diff import Change, diff_data, snapshot
from engine.revisions import Side, compile_side, git

_PR = re.compile(r"\(#(\d+)\)\s*$|^Merge pull request #(\d+)")
_SEP = "\x1f"


@dataclass(frozen=True)
class Entry:
    """One commit that touched a playbook, and what it changed semantically."""

    commit: str
    author: str
    date: str  # ISO 8601, the author date
    message: str  # the subject line
    pr: int | None
    path: str  # the file's path at this commit
    status: str  # added | changed | renamed | removed | unchanged | invalid
    renamed_from: str | None = None
    changes: tuple[Change, ...] = ()
    note: str | None = None  # why it could not be compared

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"commit": self.commit, "author": self.author, "date": self.date,
                "message": self.message, "pr": self.pr, "path": self.path,
                "status": self.status, "renamed_from": self.renamed_from,
                "changes": [c.to_dict() for c in self.changes], "note": self.note}


def pr_number(message: str) -> int | None:
    """``Lower the threshold (#123)`` or ``Merge pull request #123 from …`` → 123."""
    found = _PR.search(message)
    return int(found.group(1) or found.group(2)) if found else None


def _top() -> Path:
    return Path(git("rev-parse", "--show-toplevel").strip()).resolve()


def _local(top: Path, path: str) -> str:
    """A repository path (as git log prints it) relative to the current directory."""
    return os.path.relpath(top / path)


def _commits(path: str, since: str | None) -> list[tuple[list[str], list[str]]]:
    """(header fields, name-status fields) per commit touching ``path``, newest first."""
    args = ["log", "--follow", "-M", "--name-status", f"--format=%x1e%H{_SEP}%an{_SEP}%aI{_SEP}%s"]
    if since is not None:
        args.append(f"{since}..HEAD")
    out = git(*args, "--", path)
    commits = []
    for block in out.split("\x1e")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        status = lines[1].split("\t") if len(lines) > 1 else []
        commits.append((lines[0].split(_SEP), status))
    return commits


def _compile(rev: str, path: str) -> Any:
    return compile_side(Side(rev), path)


def log_playbook(path: str, since: str | None = None) -> list[Entry]:
    """Every commit that touched ``path`` (followed through renames), newest first."""
    top = _top()
    entries = []
    for header, status in _commits(path, since):
        commit, author, date, message = [*header, "", "", "", ""][:4]
        kind = status[0][:1] if status else "M"
        now = status[-1] if status else path
        before = status[1] if kind in ("R", "C") and len(status) > 2 else now
        base = dict(commit=commit, author=author, date=date, message=message, pr=pr_number(message),
                    path=now, renamed_from=before if before != now else None)
        entries.append(_entry(base, kind, commit, _local(top, before), _local(top, now)))
    return entries


def _entry(base: dict[str, Any], kind: str, commit: str, before: str, now: str) -> Entry:
    try:
        head = None if kind == "D" else _compile(commit, now)
        parent = None if kind == "A" or not _has_parent(commit) else _compile(f"{commit}^", before)
    except EngineError as exc:  # the reasons, not the temporary copy's path
        reasons = "; ".join(d.message for d in exc.diagnostics[:3]) or exc.message
        return Entry(**base, status="invalid", note=reasons)
    if head is None and parent is None:
        return Entry(**base, status="unchanged")
    if parent is None:
        return Entry(**base, status="added")
    if head is None:
        return Entry(**base, status="removed")
    changes = tuple(diff_data(snapshot(parent), snapshot(head)))
    status = "changed" if changes else "renamed" if base["renamed_from"] else "unchanged"
    return Entry(**base, status=status, changes=changes)


def _has_parent(commit: str) -> bool:
    return len(git("rev-list", "--parents", "-n", "1", commit).split()) > 1


def log_playbooks(paths: Sequence[str], since: str | None = None) -> dict[str, list[Entry]]:
    """The history of each playbook, in the order given."""
    return {path: log_playbook(path, since) for path in paths}
