"""evaluate_duckdb over files: CSV, JSONL and Parquet give decide()'s rows; naive timestamps
are in the playbook's zone; bad inputs are EngineErrors, not tracebacks."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.diagnostics import EngineError
from engine.evaluate import decide
from engine.events import Event
from engine.sql.duckdb_backend import evaluate_duckdb
from engine.validate import load_playbook

from .conftest import PLAYBOOKS

TOKYO = ZoneInfo("Asia/Tokyo")
AS_OF = datetime(2026, 11, 1, 9, 0, tzinfo=TOKYO)
LEAD_HEADER = [
    "lead_id",
    "email",
    "company_domain",
    "industry",
    "employees",
    "title",
    "country",
    "lead_source",
]
LEAD_ROWS = [
    ["L1", "a@corp.jp", "corp.jp", "software", "1200", " Director ", "JP", "inquiry"],
    ["L2", "b@rival3.example.com", "rival3.example.com", "", "", "Manager", "US", ""],
    ["L3", "", "", "finance", "150", "", "", "expo"],
]
EVENT_HEADER = ["lead_id", "event_id", "occurred_at", "type", "content_id", "reason"]
EVENT_ROWS = [
    ["L1", "e1", "2026-10-31 18:00:00", "inquiry", "", ""],  # naive: Tokyo time; a later copy
    ["L1", "e1", "2026-10-31T08:00:00Z", "inquiry", "", ""],  # of this one (17:00 Tokyo): kept
    ["L1", "", "2026-10-20T00:00:00+09:00", "content_download", "case-study-3", ""],
    ["L1", "", "2026-11-02 00:00:00", "deal_won", "", ""],  # after as_of
    ["L2", "", "2026-10-30 12:00:00", "page_view", "pricing", ""],
    ["L3", "x", "2026-10-01 09:00:00", "disposition", "", "no_budget"],
    ["L3", "", "2026-10-29 09:00:00", "trial_signup", "", ""],
]


def _python_rows() -> list[dict[str, object]]:
    cp = load_playbook(PLAYBOOKS / "smb-saas.yaml").compiled
    assert cp is not None
    rows = []
    for raw in LEAD_ROWS:
        lead: dict[str, object] = {}
        for name, cell in zip(LEAD_HEADER[1:], raw[1:], strict=True):
            if cell.strip():
                lead[name] = int(cell) if name == "employees" else cell.strip()
        events = []
        for seq, (lead_id, event_id, at, etype, content, reason) in enumerate(EVENT_ROWS, start=1):
            if lead_id != raw[0]:
                continue
            instant = datetime.fromisoformat(at)
            instant = instant if instant.tzinfo else instant.replace(tzinfo=TOKYO)
            fields = {k: v for k, v in (("content", content), ("reason", reason)) if v}
            events.append(Event(etype, instant, fields, event_id or None, seq))
        rows.append(decide(cp, lead, events, AS_OF, lead_id=raw[0]).to_row())
    return rows


def _write(folder: Path, fmt: str) -> tuple[Path, Path]:
    leads, events = folder / f"leads.{fmt}", folder / f"events.{fmt}"
    for path, header, rows in ((leads, LEAD_HEADER, LEAD_ROWS), (events, EVENT_HEADER, EVENT_ROWS)):
        if fmt == "csv":
            with path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([header, *rows])
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in rows))
        else:
            pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)}), path)
    return leads, events


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_files_decide_like_python(tmp_path: Path, fmt: str) -> None:
    cp = load_playbook(PLAYBOOKS / "smb-saas.yaml").compiled
    assert cp is not None
    leads, events = _write(tmp_path, fmt)
    got = evaluate_duckdb(cp, leads, events, AS_OF, rename={"content": "content_id"}).to_pylist()
    expected = _python_rows()
    assert got == expected
    assert got[0]["route"] == "field_sales" and got[0]["due"] == "2026-10-31T18:00:00+09:00"
    assert got[2]["recycle_reason"] == "no_budget" and got[2]["recycle_until"].endswith("+09:00")


def test_unusable_inputs_are_engine_errors(tmp_path: Path) -> None:
    cp = load_playbook(PLAYBOOKS / "smb-saas.yaml").compiled
    assert cp is not None
    leads, events = _write(tmp_path, "csv")
    with pytest.raises(EngineError, match="unknown file type"):
        evaluate_duckdb(cp, tmp_path / "leads.xlsx", events, AS_OF)
    with pytest.raises(EngineError, match="no such file"):
        evaluate_duckdb(cp, tmp_path / "missing.csv", events, AS_OF)
    with pytest.raises(EngineError, match="events: no `occurred_at` column"):
        evaluate_duckdb(cp, leads, leads, AS_OF)
