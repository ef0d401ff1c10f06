"""Measure playbooks/x-education.yaml against X Education's real outcome (`Converted`).

Of the leads the playbook hands to sales (inside sales), how many converted, against the
38.5% base rate (lift); and of the ones that fit in a week's capacity (the work queue).
Run twice: as written, and without the exclusions built from counsellors' notes (`Tags`,
written after contact), because those know more than a new lead shows.

    python examples/measure_x_education.py [PATH/TO/Leads.csv]

The data has no licence and is not in this repository: it is read from
../shared/data/leads-x-education/ (see its PROVENANCE.md).
"""

from __future__ import annotations

import csv
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "x-education.yaml"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "leads-x-education" / "Leads.csv"
AS_OF = "2020-01-01"
SALES_NOTES = re.compile(r"  # begin: sales notes.*?# end: sales notes\n", re.DOTALL)


def outcomes(path: Path) -> dict[str, bool]:
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["Prospect ID"]: row["Converted"] == "1" for row in csv.DictReader(handle)}


def evaluate(playbook: Path, leads: Path, folder: Path) -> tuple[list[dict[str, str]], list[str], int]:
    """Decision rows, the inside-sales queue (lead ids) and the team's capacity."""
    from engine.batch import BatchRequest, evaluate_export, parse_as_of
    from engine.io import load_mapping
    from engine.validate import load_playbook

    cp = load_playbook(playbook).compiled
    assert cp is not None
    request = BatchRequest(leads=leads, out=folder / "decisions.csv", as_of=parse_as_of(AS_OF, cp),
                           mapping=load_mapping("leads-x-education"), queues=folder / "queues")
    summary = evaluate_export(cp, request)
    with open(folder / "decisions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(folder / "queues" / "inside_sales.csv", encoding="utf-8", newline="") as handle:
        queue = [row["lead_id"] for row in csv.DictReader(handle)]
    capacity = summary.teams["inside_sales"].capacity
    assert capacity is not None
    return rows, queue, capacity


def rate(ids: list[str], converted: dict[str, bool]) -> tuple[int, float]:
    return len(ids), (sum(converted[i] for i in ids) / len(ids) if ids else 0.0)


def report(name: str, rows: list[dict[str, str]], queue: list[str], capacity: int,
           converted: dict[str, bool]) -> None:
    base = sum(converted.values()) / len(converted)
    groups = {
        "routed to inside sales": [r["lead_id"] for r in rows if r["route"] == "inside_sales"],
        f"  of which this week's queue (capacity {capacity})": queue,
        "nurtured by marketing": [r["lead_id"] for r in rows if r["route"] == "marketing"],
        "excluded": [r["lead_id"] for r in rows if r["excluded"]],
    }
    print(f"\n{name}: base rate {base:.1%} of {len(converted):,} leads")
    for label, ids in groups.items():
        n, share = rate(ids, converted)
        print(f"  {label:<46} {n:>6,} leads  converted {share:6.1%}  lift {share / base:4.2f}")


def main(data: Path) -> int:
    if not data.exists():
        print(f"{data} not found: X Education's data is not shipped (no licence); see PROVENANCE.md")
        return 1
    converted = outcomes(data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report("as written", *evaluate(PLAYBOOK, data, folder / "a"), converted)
        variant = folder / "x-education-no-sales-notes.yaml"
        text, removed = SALES_NOTES.subn("", PLAYBOOK.read_text(encoding="utf-8"))
        assert removed == 1, "the sales-notes block markers are missing from the playbook"
        variant.write_text(text, encoding="utf-8")
        report("without the exclusions built from Tags (sales notes)",
               *evaluate(variant, data, folder / "b"), converted)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA))
