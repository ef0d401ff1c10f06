"""Small deterministic lead exports in gen.py's (canonical) layout, for evaluate tests."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
LEAD_COLUMNS = ["lead_id", "email", "company_domain", "industry", "employees", "title", "country",
                "lead_source", "created_at"]
EVENT_COLUMNS = ["lead_id", "occurred_at", "type", "content_id"]
TYPES = ["page_view", "email_open", "email_click", "content_download", "webinar_attend",
         "quote_request", "inquiry", "unsubscribe"]
TITLES = ["部長", "課長", "Director", "Manager", "Engineer", "Student", "学生", ""]
INDUSTRIES = ["software", "finance", "retail", "media"]
REPO = Path(__file__).resolve().parent.parent
BENCH_PLAYBOOK = REPO / "playbooks" / "bench-reference.yaml"


def make_rows(n: int, seed: int = 7) -> tuple[list[list[str]], list[list[str]]]:
    """``n`` leads (sorted ids) and their events (sorted by lead id)."""
    rng = random.Random(seed)
    leads: list[list[str]] = []
    events: list[list[str]] = []
    for i in range(n):
        lead_id = f"L{i + 1:05d}"
        domain = "rival1.example.com" if i % 50 == 7 else f"corp{i}.example.jp"
        employees = "" if i % 13 == 0 else str(rng.choice([5, 50, 500, 5000]))
        leads.append([lead_id, f"u{i}@{domain}", domain, rng.choice(INDUSTRIES), employees,
                      rng.choice(TITLES), rng.choice(["JP", "JP", "US"]), "web_form",
                      "2026-01-01T00:00:00Z"])
        for _ in range(rng.randrange(0, 12)):
            kind = rng.choices(TYPES, [40, 30, 10, 8, 4, 3, 4, 1])[0]
            at = AS_OF - timedelta(seconds=rng.randrange(-86400, 60 * 86400))
            content = rng.choice(["pricing", "company-profile", "case-study-01", "wp-howto-01"]) \
                if kind in ("page_view", "content_download") else ""
            events.append([lead_id, at.strftime("%Y-%m-%dT%H:%M:%SZ"), kind, content])
    return leads, events


def vary(row: list[str], forms: dict[int, list[str]], rng: random.Random) -> str:
    """Replace the cell of ``row`` at a column ``forms`` names by one of that column's forms
    (``{}`` in a form is the cell it replaces); the new cell."""
    column = rng.choice(list(forms))
    row[column] = rng.choice(forms[column]).format(row[column])
    return row[column]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_export(folder: Path, n: int = 60, seed: int = 7) -> tuple[Path, Path]:
    """leads.csv and events.csv in ``folder``."""
    leads, events = make_rows(n, seed)
    return (write_csv(folder / "leads.csv", LEAD_COLUMNS, leads),
            write_csv(folder / "events.csv", EVENT_COLUMNS, events))


def playbook_with_capacity(folder: Path, inside_sales: int | None, field_sales: int | None) -> Path:
    """The bench playbook with small team capacities (None: unlimited)."""
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    inside = "{}" if inside_sales is None else f"{{handoffs_per_week: {inside_sales}}}"
    text = text.replace("inside_sales: {reps: 10, slots_per_rep_per_week: 80}", f"inside_sales: {inside}")
    field = "{}" if field_sales is None else f"{{handoffs_per_week: {field_sales}}}"
    text = text.replace("field_sales: {handoffs_per_week: 200}", f"field_sales: {field}")
    path = folder / "playbook.yaml"
    path.write_text(text, encoding="utf-8")
    return path
