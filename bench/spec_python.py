"""SPEC.md's reference workload in plain Python: one pass over the files, one lead at a time.

The straightforward implementation a developer would write without the engine — the
baseline ``bench_evaluate.py`` compares the engine against (for speed and for answers).
Assumes gen.py's layout: leads and events both sorted by lead_id.

    python bench/spec_python.py DATA_DIR OUT.csv
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
COMPETITORS = {f"rival{i}.example.com" for i in range(10)}
PARTNERS = {f"partner{i}.example.co.jp" for i in range(5)}
FREEMAIL = {"gmail.com", "yahoo.co.jp", "outlook.com", "hotmail.com"}
INDUSTRIES = {"software", "manufacturing", "finance"}
SENIOR = re.compile(r"部長|Director|VP|Head")
MANAGER = re.compile(r"課長|Manager")
STUDENT = re.compile(r"(?i)student|学生")
WEIGHTS = {"page_view": 1.0, "email_open": 1.0, "email_click": 3.0, "content_download": 8.0,
           "webinar_attend": 10.0, "trial_signup": 25.0, "quote_request": 30.0, "inquiry": 40.0,
           "unsubscribe": 0.0}
COLUMNS = ["lead_id", "excluded", "fit", "engagement", "surge", "stage", "route"]
DAY = 86400.0


def weight(kind: str, content: str) -> float:
    if kind == "page_view" and content == "pricing":
        return 5.0
    if kind == "content_download":
        if content == "company-profile":
            return 20.0
        if content.startswith("case-study-"):
            return 12.0
    return WEIGHTS[kind]


def fit_of(lead: dict[str, str]) -> float:
    points = 20.0 if lead["industry"] in INDUSTRIES else 0.0
    if lead["employees"]:
        employees = int(lead["employees"])
        points += 25 if employees >= 1000 else 15 if employees >= 100 else 5 if employees >= 10 else 0
    if SENIOR.search(lead["title"]):
        points += 20
    elif MANAGER.search(lead["title"]):
        points += 10
    if lead["country"] == "JP":
        points += 5
    return min(60.0, points)


def decide(lead: dict[str, str], events: list[tuple[float, str, str]]) -> dict[str, object]:
    """events: (age in seconds before as_of, type, content), only those at or before as_of."""
    total = 0.0
    recent = prior = 0
    within30: set[str] = set()
    inquiry14 = profile30 = False
    for age, kind, content in events:
        total += weight(kind, content) * 0.5 ** (age / DAY / 30)
        if age < 7 * DAY:
            recent += 1
        elif age < 14 * DAY:
            prior += 1
        if age < 30 * DAY:
            within30.add(kind)
            profile30 = profile30 or (kind == "content_download" and content == "company-profile")
            inquiry14 = inquiry14 or (kind == "inquiry" and age < 14 * DAY)
    engagement = min(100.0, round(total, 2))
    fit = fit_of(lead)
    surge = recent >= 3 and recent >= 2 * prior
    domain = lead["company_domain"]
    excluded = ""
    if domain in COMPETITORS:
        excluded = "competitor"
    elif domain in PARTNERS:
        excluded = "partner"
    elif STUDENT.search(lead["title"]):
        excluded = "student"
    elif any(kind == "unsubscribe" for _, kind, _ in events):
        excluded = "unsubscribed"
    elif lead["email"].rpartition("@")[2] in FREEMAIL and not lead["employees"]:
        excluded = "freemail_no_company"
    qualified = fit >= 30 and engagement >= 40
    if excluded:
        stage = "excluded"
    elif qualified and ("quote_request" in within30 or "inquiry" in within30):
        stage = "sql"
    elif qualified or profile30:
        stage = "mql"
    elif engagement > 0:
        stage = "nurture"
    else:
        stage = "lead"
    if excluded:
        route = "none"
    elif inquiry14 or stage == "sql":
        route = "field_sales"
    elif stage == "mql" or (surge and fit >= 30):
        route = "inside_sales"
    else:
        route = "marketing"
    return {"lead_id": lead["lead_id"], "excluded": excluded, "fit": fit, "engagement": engagement,
            "surge": surge, "stage": stage, "route": route}


def grouped(data_dir: str) -> Iterator[tuple[dict[str, str], list[tuple[float, str, str]]]]:
    """Merge-join the two sorted files: each lead with its events at or before as_of."""
    base = AS_OF.timestamp()
    with open(f"{data_dir}/leads.csv", encoding="utf-8", newline="") as lf, \
            open(f"{data_dir}/events.csv", encoding="utf-8", newline="") as ef:
        events = csv.reader(ef)
        next(events)
        pending = next(events, None)
        for lead in csv.DictReader(lf):
            found: list[tuple[float, str, str]] = []
            while pending is not None and pending[0] == lead["lead_id"]:
                at = datetime.fromisoformat(pending[1].replace("Z", "+00:00")).timestamp()
                if at <= base:
                    found.append((base - at, pending[2], pending[3]))
                pending = next(events, None)
            yield lead, found


def run(data_dir: str, out: str) -> int:
    count = 0
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for lead, events in grouped(data_dir):
            writer.writerow(decide(lead, events))
            count += 1
    return count


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
