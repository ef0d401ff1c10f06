"""A progress report for ``engine evaluate``'s DuckDB backend: the running query's progress, polled.

DuckDB estimates how far its current query is (``query_progress()``, callable from another
thread while ``execute`` blocks); the run is a few stages of such queries, so the report is
``(stage, fraction of the whole run)``: each stage owns a share of the bar and its queries
fill it. The fraction never goes back (a stage's second query starts again at 0 %). Only
the command decides whether anything is shown (a TTY, no ``--no-progress``); files and pipes
never see it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: (stage, fraction 0..1 of the whole run) -> None.
Report = Callable[[str, float], None]
#: The stages in order, with the share of the bar each ends at (from profiles of the
#: reference workload: reading and converting the exports dominate).
STAGES: dict[str, float] = {"reading": 0.6, "deciding": 0.85, "writing": 1.0}
_POLL_SECONDS = 0.1


class QueryProgress:
    """Poll ``con.query_progress()`` on a thread and report it, within the current stage's share."""

    def __init__(self, con: Any, report: Report) -> None:
        self._con = con
        self._report = report
        self._stage = next(iter(STAGES))
        self._done = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, name="engine-progress", daemon=True)

    def __enter__(self) -> QueryProgress:
        self._con.execute("SET enable_progress_bar = true")  # DuckDB tracks progress only then
        self._con.execute("SET enable_progress_bar_print = false")  # never its own bar on stdout
        self._report(self._stage, 0.0)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self._advance(1.0)

    def stage(self, name: str) -> None:
        """The run moved on to ``name`` (a key of STAGES): the previous stages are done."""
        names = list(STAGES)
        before = names.index(name)
        with self._lock:
            self._stage = name
        self._advance(STAGES[names[before - 1]] if before else 0.0)

    def _advance(self, fraction: float) -> None:
        with self._lock:
            if fraction <= self._done:
                return
            self._done = fraction
            stage = self._stage
        self._report(stage, fraction)

    def _poll(self) -> None:
        names = list(STAGES)
        while not self._stop.wait(_POLL_SECONDS):
            try:
                percent = float(self._con.query_progress())
            except Exception:  # the connection closing under us ends the polling, nothing more
                return
            if percent < 0:  # no query running
                continue
            with self._lock:
                index = names.index(self._stage)
            start = STAGES[names[index - 1]] if index else 0.0
            self._advance(start + (STAGES[names[index]] - start) * min(percent, 100.0) / 100.0)
