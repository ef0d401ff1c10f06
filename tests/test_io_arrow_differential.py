"""The columnar read path and the row path give the same leads, events and rejects.

Many generated exports (tests/export_factory.py's rows, then damaged: bad rows of every
kind, BOM, CP932, CRLF, quoted newlines, blank lines, missing optional columns, event
ids with duplicates, unsorted files, Parquet, JSONL) are read both ways through
``iter_leads_with_events``; the ``(lead, list(events))`` sequences, the rejects (in
order) and any error must be equal. Chunks are made tiny so one file mixes Arrow
chunks, csv-module chunks and the switch to the row path at a quote.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine.io.csv_chunks as csv_chunks
from engine.events import EventColumns
from engine.io import EventsFile, InputError, LeadsFile, Reject, iter_leads_with_events, parse_mapping
from engine.io.arrow_events import ROW_PATH_ENV
from tests.export_factory import AS_OF, LEAD_COLUMNS, make_rows

#: Exports generated per run; raise it (ENGINE_DIFF_SEEDS=2000) for a longer hunt.
SEEDS = int(os.environ.get("ENGINE_DIFF_SEEDS", "120"))
TYPES = frozenset(["page_view", "email_open", "email_click", "content_download", "webinar_attend",
                   "quote_request", "inquiry", "unsubscribe"])

MAPPING = """
timezone: Asia/Tokyo
null_values: ["", "N/A", "-"]
leads:
  id: lead_id
  fields_required: false
  fields:
    email: email
    employees: {column: employees, type: number}
    created_at: {column: created_at, type: datetime}
events:
  lead_id: lead_id
  at: occurred_at
  type: type
  id: event_id
  types: {"Visit": page_view, "Open": email_open}
  fields_required: false
  fields:
    content: content_id
    score: {column: score, type: number}
    flag: {column: flag, type: bool}
"""

GOOD_TIMES = ["2026-10-01T09:30:00Z", "2026-10-01 09:30:00+09:00", "2026-10-02T00:00:00.5-05:30",
              "2026-09-30T23:59:59.123456Z"]
ODD_TIMES = ["2026-10-01T09:30:00", "2026-10-01", "2026/10/01 9:30", "2026-10-01T09:30:00z",
             "2026-10-01T09:30:00+0900", " 2026-10-01T09:30:00Z", "2026-02-30T00:00:00Z", "yesterday",
             "N/A", "", "2026-10-01T24:00:00Z", "0001-01-01T00:00:00Z"]
BAD_TYPES = ["Dance", "", " page_view", "Visit", "Open "]
BAD_IDS = ["", " ", " L00003", "L00003 "]


def _events(rng: random.Random, n: int) -> tuple[list[str], list[list[str]]]:
    """Event rows with extra columns (event_id, score, flag), some damaged."""
    _, base = make_rows(n, seed=rng.randrange(1000))
    header = ["lead_id", "occurred_at", "type", "content_id", "event_id", "score", "flag"]
    rows = []
    for i, (lead_id, at, kind, content) in enumerate(base):
        event_id = rng.choice([f"e{i}", f"e{i}", f"e{i // 3}", "", f" e{i} "])
        score = rng.choice(["1", "2.5", "", "N/A"])
        flag = rng.choice(["yes", "no", ""])
        rows.append([lead_id, at, kind, content, event_id, score, flag])
    damage = rng.random() < 0.85
    for _ in range(rng.randrange(0, 6) if damage else 0):
        at = rng.randrange(len(rows)) if rows else 0
        row = list(rows[at]) if rows else ["L00001", GOOD_TIMES[0], "page_view", "", "", "", ""]
        what = rng.randrange(7)
        if what == 0:
            row[1] = rng.choice(ODD_TIMES)
        elif what == 1:
            row[2] = rng.choice(BAD_TYPES)
        elif what == 2:
            row[0] = rng.choice(BAD_IDS)
        elif what == 3:
            row[5] = rng.choice(["many", "1,000", "１２", "nan"])
        elif what == 4:
            row[6] = rng.choice(["maybe", "はい"])
        elif what == 5:
            row[1] = rng.choice(GOOD_TIMES)
        else:
            row[3] = rng.choice(["a,b", "two\nlines", 'say "hi"', " padded ", "N/A"])
        rows.insert(at + rng.randrange(2), row)  # next to its twin: the order stays
    if rng.random() < 0.15:
        rng.shuffle(rows)  # unsorted: spilled, or an error with --events-sorted
    if rng.random() < 0.2:
        rows.append(["L99999", GOOD_TIMES[0], "page_view", "", "", "", ""])  # orphan past the end
    if rng.random() < 0.2:
        rows.insert(0, ["L00000", GOOD_TIMES[0], "page_view", "", "", "", ""])  # orphan first
    if rng.random() < 0.3:  # missing optional columns
        drop = rng.sample([3, 5, 6], rng.randrange(1, 3))
        header = [name for j, name in enumerate(header) if j not in drop]
        rows = [[cell for j, cell in enumerate(row) if j not in drop] for row in rows]
    return header, rows


def _csv_text(header: list[str], rows: list[list[str]], rng: random.Random) -> str:
    newline = rng.choice(["\n", "\n", "\r\n"])
    lines = [",".join(header)]
    for row in rows:
        cells = [f'"{c.replace(chr(34), chr(34) * 2)}"' if any(x in c for x in ',"\n') else c for c in row]
        lines.append(",".join(cells))
        roll = rng.random()
        if roll < 0.01:
            lines.append("")  # blank line
        elif roll < 0.015:
            lines.append("   ")  # whitespace only
        elif roll < 0.02:
            lines.append(",".join(row[:2]))  # short row
        elif roll < 0.025:
            lines.append(",".join([*row, "extra"]))  # long row
        elif roll < 0.03:
            lines.append(",".join([*row, ""]))  # trailing comma
    end = newline if rng.random() < 0.8 else ""
    ends = [("\r" if rng.random() < 0.01 else newline) for _ in lines]  # a lone CR ends a line too
    return "".join(line + sep for line, sep in zip(lines[:-1], ends, strict=False)) + lines[-1] + end


def _write(folder: Path, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    n = rng.randrange(3, 40)
    leads, _ = make_rows(n, seed=seed)
    for lead in leads:  # mostly distinct: converted in Arrow, not per distinct value
        lead[8] = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T0{rng.randrange(10)}:00:00Z"
    if rng.random() < 0.2:
        leads.insert(rng.randrange(len(leads)), list(leads[rng.randrange(len(leads))]))  # repeated id
    for _ in range(rng.randrange(0, 4) if rng.random() < 0.6 else 0):
        at = rng.randrange(len(leads))
        row = list(leads[at])
        what = rng.randrange(4)
        if what == 0:
            row[0] = rng.choice(["", " "]) if rng.random() < 0.5 else f" {row[0]}"
        elif what == 1:
            row[4] = rng.choice(["lots", "1,200", "N/A", "３"])
        elif what == 2:
            row[8] = rng.choice(ODD_TIMES + GOOD_TIMES)
        else:
            row[5] = rng.choice(['"Head, Sales"', "  課長  ", "-"])
        leads[at] = row
    header, events = _events(rng, n)
    kind = rng.choices(["csv", "parquet", "jsonl"], [8, 2, 1])[0]
    leads_path = folder / "leads.csv"
    leads_path.write_text(_csv_text(LEAD_COLUMNS, leads, rng), encoding="utf-8")
    events_path = folder / f"events.{kind}"
    if kind == "csv":
        text = _csv_text(header, events, rng)
        encoding = rng.choice(["utf-8", "utf-8", "utf-8-sig", "cp932"])
        if encoding == "cp932":
            text = text.replace("pricing", "価格")
        events_path.write_bytes(text.encode(encoding))
    elif kind == "jsonl":
        lines = [json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False) for row in events]
        events_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, Any] = {name: [row[j] for row in events] for j, name in enumerate(header)}
        if rng.random() < 0.3:
            columns["lead_id"] = [None if not v.strip() else v for v in columns["lead_id"]]
        if "score" in columns and rng.random() < 0.3:
            columns["score"] = pa.array([2 if i % 3 else None for i in range(len(events))], pa.int64())
        pq.write_table(pa.table(columns), events_path)
    return leads_path, events_path


def _read(leads_path: Path, events_path: Path, events_sorted: bool | None,
          mapping_text: str = MAPPING) -> tuple[Any, list[Reject], str]:
    mapping = parse_mapping(mapping_text)
    rejects: list[Reject] = []
    pairs: list[Any] = []
    error = ""
    try:
        leads = LeadsFile(leads_path, mapping, on_reject=rejects.append, as_of=AS_OF, allowed_types=TYPES)
        events = EventsFile(events_path, mapping, on_reject=rejects.append, allowed_types=TYPES)
        for lead, found in iter_leads_with_events(leads, events, on_reject=rejects.append,
                                                  events_sorted=events_sorted):
            pairs.append((lead, list(found), type(found).__name__))
    except InputError as problem:
        error = str(problem)
    return pairs, rejects, error


def _both(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any]) -> tuple[Any, Any]:
    monkeypatch.setenv(ROW_PATH_ENV, "1")
    slow = run()
    monkeypatch.delenv(ROW_PATH_ENV)
    return slow, run()


@pytest.mark.parametrize("seed", range(SEEDS))
def test_fast_path_reads_like_the_row_path(seed: int, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_chunks, "CHUNK_BYTES", random.Random(seed).choice([64, 300, 1 << 22]))
    monkeypatch.setattr(csv_chunks, "ROWS_PER_PIECE", 7)
    leads_path, events_path = _write(tmp_path, seed)
    for events_sorted in (None, True):
        (slow_pairs, slow_rejects, slow_error), (fast_pairs, fast_rejects, fast_error) = _both(
            monkeypatch, lambda: _read(leads_path, events_path, events_sorted))  # noqa: B023
        assert fast_error == slow_error
        assert [(lead, events) for lead, events, _ in fast_pairs] == \
            [(lead, events) for lead, events, _ in slow_pairs]
        assert fast_rejects == slow_rejects


def test_clean_csv_comes_as_columns(tmp_path: Path) -> None:
    """No problem anywhere: every lead without activity gets EventColumns."""
    leads, events = make_rows(30)
    leads_path = tmp_path / "leads.csv"
    leads_path.write_text(",".join(LEAD_COLUMNS) + "\n" + "\n".join(",".join(r) for r in leads) + "\n")
    events_path = tmp_path / "events.csv"
    events_path.write_text("lead_id,occurred_at,type,content_id\n" + "\n".join(",".join(r) for r in events))
    canonical = (Path(__file__).parent.parent / "engine" / "presets" / "canonical.yaml").read_text()
    pairs, rejects, error = _read(leads_path, events_path, None, canonical)
    assert not rejects and not error
    assert {kind for _, _, kind in pairs} == {EventColumns.__name__}
    assert sum(len(found) for _, found, _ in pairs) == len(events)
