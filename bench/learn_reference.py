"""Black-box references for `engine learn` on X Education: what the same columns allow.

Out-of-fold precision in the top 20% (same folds and pro-rata ties as `engine learn`)
of a plain L2 logistic regression and of gradient-boosted trees, on every column the
`leads-x-education-precontact` preset reads (one-hot values, raw numbers); with
``--with COLUMN`` a post-contact column is added, to show what it is worth.

    python bench/learn_reference.py [--with "Last Activity"] [PATH/TO/Leads.csv]

The data has no licence and is not in this repository (../shared/data, PROVENANCE.md).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "leads-x-education" / "Leads.csv"


def main() -> int:
    sys.path.insert(0, str(REPO))
    from engine.io import load_mapping
    from engine.io.mapping import field_spec
    from engine.measure.learn import _top

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--with", dest="extra", action="append", default=[], help="add a column")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"{args.data} not found (see PROVENANCE.md)")
        return 1
    mapping = load_mapping("leads-x-education-precontact")
    specs = [field_spec(s) for s in mapping.leads.fields.values()]
    numbers = [s.column for s in specs if s.type == "number"]
    categories = [s.column for s in specs if s.type != "number"] + args.extra
    with open(args.data, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    y = np.array([r["Converted"] == "1" for r in rows])
    columns = []
    for name in categories:
        for value in sorted({r[name] for r in rows}):
            columns.append([float(r[name] == value) for r in rows])
    for name in numbers:
        values = np.array([float(r[name]) if r[name] else np.nan for r in rows])
        missing = np.isnan(values)
        values[missing] = np.nanmedian(values)
        columns += [list(values), list(np.log1p(values)), list(missing.astype(float))]
    X = np.array(columns).T
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    models = {
        "logistic regression (L2)": lambda: LogisticRegression(C=0.1, max_iter=5000),
        "gradient-boosted trees": lambda: HistGradientBoostingClassifier(random_state=0, learning_rate=0.05),
    }
    extra = ", ".join(args.extra) or "none"
    print(f"{len(rows):,} leads, {X.shape[1]} columns (one-hot values, numbers); extra: {extra}")
    for name, make in models.items():
        hits = selected = 0.0
        for train, test in folds:
            scaler = StandardScaler().fit(X[train])
            model = make().fit(scaler.transform(X[train]), y[train])
            score = model.predict_proba(scaler.transform(X[test]))[:, 1]
            got, k = _top(np, score, y[test], round(0.2 * len(test)))
            hits, selected = hits + got, selected + k
        print(f"  {name:<28} precision in the top 20%: {hits / selected:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
