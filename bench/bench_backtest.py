"""Benchmark ``engine backtest`` against ``engine evaluate`` on the same generated export.

Generates SPEC.md's workload with ../shared/bench/gen.py (cached under bench/data/,
git-ignored), adds a generated outcome (``converted`` and a ``won_at`` after the as-of,
more likely for larger companies and fuller histories, from a fixed seed), then times,
in paired alternating rounds, one ``engine evaluate`` and one ``engine backtest`` as real
subprocesses (default backend, start-up included). Prints each side's median and the
ratio; the budget is backtest ≤ 2× evaluate.

    python bench/bench_backtest.py [--leads 100000] [--rounds 3] [--backend duckdb]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GEN = REPO.parent / "shared" / "bench" / "gen.py"
ENGINE = str(Path(sys.executable).parent / "engine")
PLAYBOOK = REPO / "playbooks" / "bench-reference.yaml"
AS_OF = "2026-11-01T00:00:00Z"


def ensure_data(n: int) -> Path:
    folder = HERE / "data" / str(n)
    if not (folder / "events.csv").exists():
        print(f"generating {n:,} leads with {GEN} ...", flush=True)
        subprocess.run([sys.executable, str(GEN), str(n), str(folder)], check=True)
    return folder


def with_outcomes(folder: Path) -> Path:
    """leads.csv plus ``converted`` / ``won_at`` (canonical preset's outcome columns)."""
    target = folder / "leads-outcomes.csv"
    if target.exists():
        return target
    import numpy as np

    rng = np.random.default_rng(15)
    as_of = datetime.fromisoformat(AS_OF)
    with open(folder / "leads.csv", encoding="utf-8", newline="") as src, \
            open(target, "w", encoding="utf-8", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader)
        employees = header.index("employees")
        writer.writerow([*header, "converted", "won_at"])
        for row in reader:
            size = float(row[employees]) if row[employees] else 10.0
            chance = min(0.6, 0.03 + 0.05 * np.log1p(size) / np.log(10))
            won = bool(rng.random() < chance)
            when = (as_of + timedelta(days=int(rng.integers(1, 180)))).isoformat() if won else ""
            writer.writerow([*row, "1" if won else "0", when])
    return target


def run(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([ENGINE, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: engine {' '.join(argv)}\n{done.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="duckdb", choices=["duckdb", "python"])
    args = parser.parse_args()
    folder = ensure_data(args.leads)
    leads = with_outcomes(folder)
    common = ["--mapping", "canonical", "--leads", str(leads), "--events", str(folder / "events.csv"),
              "--as-of", AS_OF, "--backend", args.backend]
    evaluate_s: list[float] = []
    backtest_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        evaluate = ["evaluate", str(PLAYBOOK), *common, "--out", str(Path(tmp) / "d.csv")]
        backtest = ["backtest", str(PLAYBOOK), *common, "--format", "json"]
        for index in range(args.rounds):
            pair = [(evaluate, evaluate_s), (backtest, backtest_s)]
            for argv, times in pair if index % 2 == 0 else reversed(pair):
                times.append(run(argv))
            print(f"round {index + 1}: evaluate {evaluate_s[-1]:.2f} s, backtest {backtest_s[-1]:.2f} s",
                  flush=True)
        report = json.loads(subprocess.run([ENGINE, *backtest],
                                           capture_output=True, text=True, check=True).stdout)
    ratios = [b / e for b, e in zip(backtest_s, evaluate_s, strict=True)]
    e_med, b_med = statistics.median(evaluate_s), statistics.median(backtest_s)
    print(f"{args.leads:,} leads, {args.backend}: evaluate median {e_med:.2f} s, backtest median "
          f"{b_med:.2f} s, ratio {b_med / e_med:.2f}x (median of per-round ratios "
          f"{statistics.median(ratios):.2f}x; budget 2x)")
    sales = report["teams"].get("inside_sales", {})
    print(f"measured {report['leads']:,} leads, base rate {report['base_rate']}, AUC {report['auc']}, "
          f"inside_sales precision {sales.get('precision')} at {sales.get('capacity')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
