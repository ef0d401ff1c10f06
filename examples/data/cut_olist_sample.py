"""Re-create the Olist sample from the full export, deterministically.

The first 400 MQLs of olist_marketing_qualified_leads_dataset.csv (the file is not in
date order, so they span the whole year), and every closed deal of those MQLs, in file
order. Lines are copied byte for byte: the spreadsheet mess is kept on purpose.

    python examples/data/cut_olist_sample.py [SOURCE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "data" / "olist-marketing-funnel"
MQLS = 400


def main(source: Path) -> None:
    with open(source / "olist_marketing_qualified_leads_dataset.csv", "rb") as handle:
        lines = handle.readlines()
    header, mqls = lines[0], lines[1 : MQLS + 1]
    (HERE / "olist-mql-sample.csv").write_bytes(header + b"".join(mqls))
    ids = {line.split(b",", 1)[0] for line in mqls}
    with open(source / "olist_closed_deals_dataset.csv", "rb") as handle:
        deals = handle.readlines()
    kept = [line for line in deals[1:] if line.split(b",", 1)[0] in ids]
    (HERE / "olist-deals-sample.csv").write_bytes(deals[0] + b"".join(kept))
    print(f"{len(mqls)} MQLs, {len(kept)} deals -> {HERE}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
