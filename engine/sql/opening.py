"""The DuckDB connection of a run, opened on a thread while ``engine evaluate`` is still
importing its modules and loading the playbook (issue #17).

Opening DuckDB (its catalogue of functions and built-in extensions) takes 25-40 ms, and
the first JSON and time-zone calls of a process a few ms more; DuckDB does that work with
the GIL released. The imports and the playbook's load before a run's first statement
keep one core busy for 0.25 s, so the command wraps them in :func:`head_start`, which
does that work on a second thread, and :func:`connect` takes the connection when the run
needs one (or opens one itself when none was started). DuckDB is imported on the
calling thread: an import holds the GIL, and two threads importing at once slowed the
command's own imports as much as the thread saved.

What the run imports is :func:`driver`, DuckDB's C extension, not the ``duckdb`` package
around it: the package re-exports the extension's connection and exceptions, and since
duckdb 2 first loads a pure-Python relation API that a clean CSV run never uses (50 ms
against 18 ms). The extension scans Python objects (registered Arrow tables) and builds
relations through that package's modules, so the run's connection is a
:class:`Connection`: SQL runs straight through, and any other call imports the package
first.

The database is in memory: every table of a run is a ``TEMP`` table, which lives in
memory with a database file too, and spills past :data:`MEMORY_LIMIT` to
``temp_directory``, set by :func:`connect` to the run's scratch folder
(:mod:`engine.io.scratch`) before any statement of the run. Until then spilling is off
(``temp_directory`` empty): the early connection writes nothing anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: DuckDB's own memory cap for a batch run (it spills past it); the process's peak adds
#: Python and Arrow buffers on top: 700 MB kept 1M leads / 30M events under issue #17's
#: 1 GiB (922 MiB when chosen, 772 MiB now; 1 GB gave 1,217 MiB) for the same CPU time.
MEMORY_LIMIT = "700MB"
#: A process's first call of each kind costs a few ms more than the next (the JSON
#: functions, the time-zone data): paid on the thread, for the statements every run has.
_WARM = (
    "SELECT json_extract_string('[1]', '$[0]')",
    "SELECT make_timestamptz(epoch_us(try_strptime('2026-01-01T00:00:00Z', '%Y-%m-%dT%H:%M:%SZ')))",
    "SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' AT TIME ZONE 'UTC'",
)

_lock = threading.Lock()
_opening: _Opening | None = None


class _Opening:
    """One connection being opened on a thread; an error there only loses the head start."""

    def __init__(self) -> None:
        self.con: Any = None
        self.thread = threading.Thread(target=self._open, name="engine-duckdb-open", daemon=True)

    def _open(self) -> None:
        try:
            self.con = _new()
            for statement in _WARM:
                self.con.execute(statement).fetchall()
        except Exception:  # connect() opens one itself, and reports its error, when one is needed
            if self.con is not None:
                self.con.close()
            self.con = None

    def take(self) -> Any:
        self.thread.join()
        return self.con


@contextmanager
def head_start(wanted: bool = True) -> Iterator[None]:
    """Open a connection on a thread for the run inside this block (when ``wanted``); close
    it at the block's end if the run never took it (the command stopped before)."""
    global _opening
    if wanted:
        driver()  # imported on this thread: see the module's docstring
        with _lock:
            if _opening is None:
                _opening = _Opening()
                _opening.thread.start()
    try:
        yield
    finally:
        opening = _take_opening()
        con = opening.take() if opening is not None else None
        if con is not None:
            con.close()


def connect(temp_directory: str) -> Connection:
    """The run's connection, spilling to ``temp_directory``: the one :func:`head_start` opened
    if it is there and not yet taken, else a new one."""
    opening = _take_opening()
    con = opening.take() if opening is not None else None
    if con is None:
        con = _new()
    con.execute("SET temp_directory = '" + temp_directory.replace("'", "''") + "'")
    return Connection(con)


class Connection:
    """A DuckDB connection opened through :func:`driver`. The calls that only run SQL and
    read its rows go straight to it; every other one (``register`` of an Arrow table,
    ``sql`` for a relation, ...) first imports the ``duckdb`` package, which the extension
    needs for Python objects ("the duckdb package did not set up duckdb._sources")."""

    _SQL_ONLY = frozenset({"fetchall", "fetchmany", "fetchone", "description", "query_progress",
                           "interrupt", "close"})

    def __init__(self, native: Any) -> None:
        self.native = native  # the extension's own connection

    def execute(self, query: str, *parameters: Any) -> Connection:
        self.native.execute(query, *parameters)
        return self

    def __getattr__(self, name: str) -> Any:
        if name not in self._SQL_ONLY:
            import duckdb  # noqa: F401  (sets up the modules the extension calls back into)
        return getattr(self.native, name)


def _take_opening() -> _Opening | None:
    global _opening
    with _lock:
        opening, _opening = _opening, None
    return opening


def _new() -> Any:
    return driver().connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": ""})


def driver() -> Any:
    """DuckDB's C extension, whose ``connect`` and exception classes the ``duckdb`` package
    re-exports as they are: the top-level ``_duckdb`` since duckdb 1.4, else the package
    itself (before 1.4 the extension lived inside it)."""
    import importlib

    try:
        return importlib.import_module("_duckdb")
    except ImportError:
        return importlib.import_module("duckdb")
