"""The duckdb backend's progress bar: on a terminal only, from DuckDB's own query progress."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import duckdb

from engine.sql.progress import STAGES, QueryProgress

from .export_factory import BENCH_PLAYBOOK, EVENT_COLUMNS, LEAD_COLUMNS, make_rows, write_csv

_SLOW = ("SELECT count(*) FROM range(30000) a, range(2000) b "
         "WHERE (a.range * b.range) % 7 = 1")


def test_reports_a_running_querys_progress_within_its_stage_share() -> None:
    con = duckdb.connect()
    seen: list[tuple[str, float]] = []
    with QueryProgress(con, lambda stage, fraction: seen.append((stage, fraction))) as progress:
        con.execute(_SLOW).fetchall()
        progress.stage("deciding")
        con.execute(_SLOW).fetchall()
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # never goes back, ends full
    reading = [f for s, f in seen if s == "reading"]
    deciding = [f for s, f in seen if s == "deciding"]
    assert any(0.0 < f < STAGES["reading"] for f in reading), seen  # DuckDB's estimate, polled
    assert deciding[0] == STAGES["reading"]  # a new stage starts where the last one's share ends
    assert all(STAGES["reading"] <= f <= STAGES["deciding"] for f in deciding[:-1])
    assert con.execute("SELECT current_setting('enable_progress_bar_print')").fetchone() == (False,)


def _command(tmp_path: Path, *extra: str) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    leads, events = make_rows(400, seed=3)
    lp = write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads)
    ep = write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events)
    return [sys.executable, "-m", "engine", "evaluate", str(BENCH_PLAYBOOK), "--leads", str(lp),
            "--events", str(ep), "--as-of", "2026-11-01T00:00:00Z", "--out", str(tmp_path / "o" / "d.csv"),
            *extra]


def _run_on_a_tty(argv: list[str]) -> tuple[int, str, str]:
    """``argv`` with stderr on a pseudo-terminal (stdout a pipe): exit code, stdout, what the tty saw."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.communicate(timeout=120)[0]
    os.close(master)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


def test_bar_on_a_terminal_for_the_default_backend(tmp_path: Path) -> None:
    code, out, tty = _run_on_a_tty(_command(tmp_path))
    assert code == 0, tty
    assert "evaluating: reading" in tty and "evaluating: writing" in tty and "100%" in tty
    # the summary on stdout, the bar not
    assert "evaluating:" not in out and "100%" not in out and "decided" in out


def test_no_bar_when_piped_or_asked(tmp_path: Path) -> None:
    piped = subprocess.run(_command(tmp_path), capture_output=True, text=True, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "evaluating:" not in piped.stderr + piped.stdout
    code, _, tty = _run_on_a_tty(_command(tmp_path / "again", "--no-progress"))
    assert code == 0 and "evaluating:" not in tty
