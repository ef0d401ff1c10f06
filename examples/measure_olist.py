"""Measure playbooks/olist.yaml against Olist's real outcome: which MQLs closed *later*.

Decide every MQL at an instant (default 2018-06-01, the day after the last MQL), then
look forward: of the open MQLs each route holds, how many closed a deal after that
instant? The playbook never sees those deals (events after --as-of are ignored), so this
is an honest out-of-time check of "call fresh MQLs first".

    python examples/measure_olist.py [SOURCE_DIR] [AS_OF]

Reads the full export from ../shared/data/olist-marketing-funnel/ (CC BY-NC-SA 4.0,
"Marketing Funnel by Olist"); the sample in examples/data/ works too but is small.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "data" / "olist-marketing-funnel"


def main(source: Path, as_of_text: str) -> int:
    from engine.batch import BatchRequest, evaluate_export, parse_as_of
    from engine.io import load_mapping
    from engine.validate import load_playbook

    leads = source / "olist_marketing_qualified_leads_dataset.csv"
    deals = source / "olist_closed_deals_dataset.csv"
    if not leads.exists():
        sample = REPO / "examples" / "data"
        leads, deals = sample / "olist-mql-sample.csv", sample / "olist-deals-sample.csv"
    cp = load_playbook(REPO / "playbooks" / "olist.yaml").compiled
    assert cp is not None
    as_of = parse_as_of(as_of_text, cp)
    with open(deals, encoding="utf-8", newline="") as handle:
        won = {r["mql_id"]: datetime.strptime(r["won_date"], "%d-%m-%Y %H:%M").replace(tzinfo=cp.tz)
               for r in csv.DictReader(handle)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary = evaluate_export(cp, BatchRequest(leads=leads, events=deals, out=out / "d.csv", as_of=as_of,
                                                   mapping=load_mapping("olist"), queues=out / "q"))
        with open(out / "d.csv", encoding="utf-8", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["stage"] == "mql"]  # not won yet
        with open(out / "q" / "inside_sales.csv", encoding="utf-8", newline="") as handle:
            queue = [r["lead_id"] for r in csv.DictReader(handle)]
    later = {lead for lead, at in won.items() if at > as_of}
    base = sum(r["lead_id"] in later for r in rows) / len(rows)
    print(f"{leads.name}: {len(rows):,} open MQLs at {as_of.isoformat()}; {base:.1%} closed a deal later")
    capacity = summary.teams["inside_sales"].capacity
    groups = {
        "routed to SDRs (first-call)": [r["lead_id"] for r in rows if r["route"] == "inside_sales"],
        f"  of which this week's queue (capacity {capacity})": queue,
        "back to marketing (nurture)": [r["lead_id"] for r in rows if r["route"] == "marketing"],
    }
    for label, ids in groups.items():
        share = sum(i in later for i in ids) / len(ids) if ids else 0.0
        lift = share / base if base else 0.0
        print(f"  {label:<46} {len(ids):>6,} MQLs  closed later {share:6.1%}  lift {lift:4.2f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE,
                  sys.argv[2] if len(sys.argv) > 2 else "2018-06-01"))
