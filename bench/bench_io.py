"""Benchmark the io read path (leads + events through grouping) against plain Python.

Times, in one process and one run, ``iter_leads_with_events`` over the canonical
mapping (as ``engine evaluate`` calls it, with ``events_sorted`` on by default) and a
baseline that does the least possible work: ``csv.reader`` + ``datetime.fromisoformat``
grouping tuples by lead id (like ``bench/spec_python.py``'s ``grouped``). The engine is
timed twice: its columnar (Arrow) read path, the default, and the row-by-row path
(``ENGINE_IO_ROW_PATH=1``). Reports the median of ``--repeat`` runs of each and the
ratios to the baseline. Events are counted, not built: the batch kernel reads the
columns, so materialising Events would time something else.

    python bench/bench_io.py [--leads 5000|100000] [--repeat 5] [--unsorted] [--no-row-path]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine.io import EventsFile, LeadsFile, Reject, iter_leads_with_events, load_mapping
from engine.io.arrow_events import ROW_PATH_ENV

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
TYPES = frozenset([
    "page_view", "email_open", "email_click", "content_download", "webinar_attend", "trial_signup",
    "quote_request", "inquiry", "unsubscribe",
])


def engine_read(folder: Path, events_sorted: bool | None, row_path: bool = False) -> tuple[int, int]:
    """Leads and events through the engine's io path; returns (leads, events) seen."""
    if row_path:
        os.environ[ROW_PATH_ENV] = "1"
    else:
        os.environ.pop(ROW_PATH_ENV, None)
    mapping = load_mapping("canonical")
    rejects: list[Reject] = []
    leads = LeadsFile(folder / "leads.csv", mapping, on_reject=rejects.append, as_of=AS_OF,
                      allowed_types=TYPES)
    events = EventsFile(folder / "events.csv", mapping, on_reject=rejects.append, allowed_types=TYPES)
    n_leads = n_events = 0
    for _, found in iter_leads_with_events(leads, events, on_reject=rejects.append,
                                           events_sorted=events_sorted):
        n_leads += 1
        n_events += len(found)
    return n_leads, n_events


def baseline_read(folder: Path) -> tuple[int, int]:
    """The hand-written floor: csv.reader + fromisoformat, tuples grouped by a merge join."""
    n_leads = n_events = 0
    with open(folder / "leads.csv", encoding="utf-8", newline="") as lf, \
            open(folder / "events.csv", encoding="utf-8", newline="") as ef:
        events = csv.reader(ef)
        next(events)
        pending = next(events, None)
        leads = csv.reader(lf)
        next(leads)
        for lead in leads:
            lead_id = lead[0]
            created = datetime.fromisoformat(lead[8]) if lead[8] else None
            record = (lead_id, lead[1], lead[2], lead[3], float(lead[4]) if lead[4] else None,
                      lead[5], lead[6], lead[7], created)
            found: list[tuple[str, datetime, str]] = []
            while pending is not None and pending[0] == lead_id:
                found.append((pending[2], datetime.fromisoformat(pending[1]), pending[3]))
                pending = next(events, None)
            n_leads += 1 if record else 0
            n_events += len(found)
    return n_leads, n_events


def timed(run: Callable[[], tuple[int, int]], repeat: int) -> tuple[float, float, tuple[int, int]]:
    """Median wall and CPU time of ``repeat`` runs, and what the last run counted.

    CPU time is shown too because the bench machine's cores are shared: it moves less
    when a neighbour is busy.
    """
    wall: list[float] = []
    cpu: list[float] = []
    counts = (0, 0)
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        counts = run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=5000, help="bench/data/<N> to read (5000, 100000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--unsorted", action="store_true",
                        help="let grouping choose (pre-scan, merge or spill) instead of --events-sorted")
    parser.add_argument("--no-row-path", action="store_true", help="skip timing the row-by-row path")
    args = parser.parse_args()
    folder = HERE / "data" / str(args.leads)
    sorted_flag: bool | None = None if args.unsorted else True
    runs: list[tuple[str, Callable[[], tuple[int, int]]]] = [
        ("engine io, columnar", lambda: engine_read(folder, sorted_flag)),
        ("baseline (csv+fromiso)", lambda: baseline_read(folder)),
    ]
    if not args.no_row_path:
        runs.insert(1, ("engine io, row path", lambda: engine_read(folder, sorted_flag, row_path=True)))
    # Round robin (one run of each, repeated): a neighbour's load then weighs on all alike.
    samples: dict[str, list[tuple[float, float, tuple[int, int]]]] = {label: [] for label, _ in runs}
    for _ in range(args.repeat):
        for label, run in runs:
            samples[label].append(timed(run, 1))
    results = {label: (statistics.median(w for w, _, _ in got), statistics.median(c for _, c, _ in got),
                       got[-1][2]) for label, got in samples.items()}
    mode = "auto: pre-scan, merge or spill" if args.unsorted else "events_sorted"
    counts = {label: result[2] for label, result in results.items()}
    print(f"data: {folder}; median of {args.repeat}; engine mode: {mode}")
    print("  " + "; ".join(f"{label}: {c[0]:,} leads / {c[1]:,} events" for label, c in counts.items()))
    base_s, base_cpu, _ = results["baseline (csv+fromiso)"]
    for label, (wall, cpu, _) in results.items():
        print(f"{label:<24} {wall:7.3f} s wall {cpu:7.3f} s cpu   "
              f"x baseline: {wall / base_s:5.2f} wall {cpu / base_cpu:5.2f} cpu")
    os.environ.pop(ROW_PATH_ENV, None)


if __name__ == "__main__":
    main()
