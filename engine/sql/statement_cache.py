"""A DuckDB run's rendered statements, kept between runs as Python keeps bytecode.

:mod:`engine.sql.statements` renders once what every run of the same playbook would
render again; this module keeps it in one JSON file per key, under ``$ENGINE_CACHE``,
else ``$XDG_CACHE_HOME/revenue-playbook-engine``, else ``~/.cache/revenue-playbook-engine``
(``ENGINE_CACHE=off`` keeps nothing). The key is a SHA-256 over everything the text is
rendered from:

- this engine's code, by each ``.py`` file's path, size and modification time (what
  Python checks before it trusts a ``.pyc``), and sqlglot's version file likewise;
- the compiled playbook: its model as JSON and its lists' values (a list file can change
  while the playbook does not);
- the run's :func:`engine.sql.statements.shape`.

So a changed playbook, list, mapping shape or engine is a new key, never a stale answer.
An entry is written to a temporary name and renamed; one that cannot be read or parsed
is a miss, rendered and written again. A folder that cannot be written costs only the
rendering, every run. The folder holds at most :data:`KEEP` entries, the most recently
used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.sql.statements import Decisions, Statements, shape

if TYPE_CHECKING:
    from engine.batch import BatchRequest
    from engine.compile import CompiledPlaybook

#: The entries' layout; another number is a miss.
FORMAT = 1
#: Entries kept (about 30 KB each): writing one more removes the least recently used.
KEEP = 64
_ENGINE = Path(__file__).resolve().parent.parent


def folder() -> Path | None:
    """Where entries are kept, or None: ``ENGINE_CACHE=off``, or no absolute cache or home
    folder to put them in (a relative one would land in whatever folder the run is in)."""
    chosen = os.environ.get("ENGINE_CACHE", "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    base = Path(os.environ.get("XDG_CACHE_HOME", ""))  # the XDG spec: ignored unless absolute
    if not base.is_absolute():
        base = Path(os.path.expanduser("~")) / ".cache"  # "~" itself when there is no home
    return base / "revenue-playbook-engine" if base.is_absolute() else None


def load(name: str) -> Statements | None:
    """The statements kept under ``name`` (:func:`key`), or None."""
    where = folder()
    if where is None:
        return None
    path = where / f"{name}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry["format"] != FORMAT:
            return None
        found = _statements(entry)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # absent, unreadable or not ours
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used: the last to be removed
    return found


def store(name: str, statements: Statements) -> None:
    """Keep ``statements`` under ``name`` (:func:`key`), unless they are bound to one
    instant or nowhere can take them."""
    where = folder()
    if where is None or statements.bound:
        return
    entry = {"format": FORMAT, "event_columns": list(statements.event_columns),
             "general": _entry(statements.general), "fold": statements.fold,
             "folded": None if statements.folded is None else _entry(statements.folded)}
    with contextlib.suppress(OSError):
        where.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=where, prefix=".entry-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entry, out, sort_keys=True)
            os.replace(scratch, where / f"{name}.json")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        _prune(where)


def key(cp: CompiledPlaybook, request: BatchRequest) -> str:
    """The entry's name: a digest of the code, the compiled playbook and the run's shape."""
    digest = hashlib.sha256(_code())
    digest.update(cp.playbook.model_dump_json().encode())
    digest.update(json.dumps({name: sorted(values) for name, values in sorted(cp.lists.items())}).encode())
    digest.update(json.dumps(shape(request)).encode())
    return digest.hexdigest()


@cache
def _code() -> bytes:
    """This engine's and sqlglot's source files, by path, size and modification time."""
    paths = sorted(_ENGINE.rglob("*.py"))
    spec = importlib.util.find_spec("sqlglot")
    if spec is not None and spec.origin:  # its version file: rewritten by every install
        paths.append(Path(spec.origin).with_name("_version.py"))
    stamps = []
    for path in paths:
        with contextlib.suppress(OSError):
            status = path.stat()
            stamps.append(f"{path}\0{status.st_size}\0{status.st_mtime_ns}")
    return "\n".join(stamps).encode()


def _prune(where: Path) -> None:
    """Remove all but the :data:`KEEP` most recently used entries (another engine's or
    playbook's entries are never read again once they change)."""
    entries = []
    for path in where.glob("*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime_ns, path.name, path))
    for _, _, path in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            path.unlink()


def _entry(decisions: Decisions) -> dict[str, Any]:
    return {"source": decisions.source, "constants": decisions.constants, "has_row": decisions.has_row}


def _decisions(entry: dict[str, Any]) -> Decisions:
    source, constants, has_row = entry["source"], entry["constants"], entry["has_row"]
    if not (isinstance(source, str) and isinstance(constants, dict) and isinstance(has_row, bool)
            and all(v is None or isinstance(v, str | bool) for v in constants.values())):
        raise TypeError("not an entry")
    return Decisions(source, constants, has_row)


def _statements(entry: dict[str, Any]) -> Statements:
    columns, fold, folded = entry["event_columns"], entry["fold"], entry["folded"]
    if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)
            and (fold is None or isinstance(fold, str)) and (fold is None) == (folded is None)):
        raise TypeError("not an entry")
    return Statements(tuple(columns), _decisions(entry["general"]), fold,
                      None if folded is None else _decisions(folded))
