"""``engine evaluate`` at two revisions, paired: is a change faster or slower?

Checks the base revision out into a temporary git worktree, then alternates one
``engine evaluate`` of each (base first, then head, ``--rounds`` times) on the same
generated workload (bench/bench_evaluate.py's data, ``playbooks/bench-reference.yaml``
as each revision has it), in fresh processes with the same Python. Prints each
revision's median wall time and the ratio head / base; alternating pairs keep a noisy
machine's drift out of the ratio. The decisions of the two revisions are compared on the columns
both write (a speed change must not change a decision).

    python bench/bench_revisions.py BASE [--head WORKTREE|REVISION] [--leads 100000] [--rounds 5]
                                    [--backend duckdb|python]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_evaluate import AS_OF, GEN, compile_bytecode, ensure_data  # noqa: E402


def run(tree: Path, data: Path, out: Path, backend: str) -> float:
    """One ``python -m engine evaluate`` from ``tree``'s sources; its wall time. Statements
    a revision keeps between runs (engine.sql.statement_cache) go to a folder of this
    benchmark's own beside ``out``: the first round renders them, as a user's first run
    would; ``ENGINE_CACHE`` set by the caller (``off``) wins."""
    env = {"ENGINE_CACHE": str(out.parent / "statements"), **os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-m", "engine", "evaluate", str(tree / "playbooks" / "bench-reference.yaml"),
            "--mapping", "canonical", "--leads", str(data / "leads.csv"), "--events",
            str(data / "events.csv"), "--as-of", AS_OF, "--out", str(out), "--backend", backend]
    start = time.perf_counter()
    subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def agree(base: Path, head: Path) -> str:
    """Whether both revisions decided alike, on the columns both write (a change may add one)."""
    with open(base, encoding="utf-8", newline="") as a, open(head, encoding="utf-8", newline="") as b:
        left, right = list(csv.DictReader(a)), list(csv.DictReader(b))
    common = [c for c in (left[0] if left else {}) if c in (right[0] if right else {})]
    differing = sum(1 for x, y in zip(left, right, strict=False) if any(x[c] != y[c] for c in common))
    differing += abs(len(left) - len(right))
    return f"{differing} of {len(left):,} rows differ on the {len(common)} common columns"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the revision to compare against (a commit, tag or branch)")
    parser.add_argument("--head", default=str(REPO),
                        help="the working tree or revision to measure (default: this working tree)")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="duckdb", choices=["duckdb", "python"])
    args = parser.parse_args()
    data = ensure_data(args.leads, GEN)
    with tempfile.TemporaryDirectory(prefix="bench-revisions-") as scratch:
        base = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base],
                       cwd=REPO, check=True)
        head = Path(args.head)
        if not head.is_dir():  # a revision: checked out beside the base
            head = Path(scratch) / "head"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(head), args.head],
                           cwd=REPO, check=True)
        try:
            times: dict[str, list[float]] = {"base": [], "head": []}
            outs = {name: Path(scratch) / f"decisions-{name}.csv" for name in times}
            trees = {"base": base, "head": head.resolve()}
            for tree in trees.values():
                compile_bytecode(tree)
            for round_ in range(args.rounds):
                for name in ("base", "head"):
                    times[name].append(run(trees[name], data, outs[name], args.backend))
                print(f"round {round_ + 1}: base {times['base'][-1]:.2f} s, head {times['head'][-1]:.2f} s",
                      flush=True)
            same = agree(outs["base"], outs["head"])
        finally:
            for tree in {base, head} - {Path(args.head)}:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    base_median, head_median = statistics.median(times["base"]), statistics.median(times["head"])
    print(f"{args.leads:,} leads, --backend {args.backend}, {args.rounds} alternating rounds, "
          f"{os.cpu_count()} cores")
    print(f"  base {args.base}: median {base_median:.2f} s")
    print(f"  head {args.head}: median {head_median:.2f} s")
    print(f"  head / base: {head_median / base_median:.2f}×; {same}")
    return 0 if same.startswith("0 ") else 1


if __name__ == "__main__":
    raise SystemExit(main())
