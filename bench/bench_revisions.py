"""``engine evaluate`` at two revisions, paired: is a change faster or slower?

Checks the base revision out into a temporary git worktree, then alternates one
``engine evaluate`` of each (``--rounds`` times, each first in every other round) on the
same generated workload (bench/bench_evaluate.py's data, ``playbooks/bench-reference.yaml``
as each revision has it), in fresh processes with the same Python. Prints each
revision's median wall and CPU time, the ratio head / base of the medians, and the median
of the rounds' own ratios (wall and CPU); alternating pairs keep a noisy machine's drift
out of the ratio. The decisions of the two revisions are compared on the columns both
write (a speed change must not change a decision).

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
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_evaluate import AS_OF, GEN, compile_bytecode, ensure_data, in_subprocess  # noqa: E402


def run(tree: Path, data: Path, out: Path, backend: str) -> tuple[float, float]:
    """One ``python -m engine evaluate`` from ``tree``'s sources; its wall time and CPU time
    (user + system, from ``wait4``: steadier than wall time on a shared machine). Statements
    a revision keeps between runs (engine.sql.statement_cache) go to a folder of this
    benchmark's own beside ``out``: the first round renders them, as a user's first run
    would; ``ENGINE_CACHE`` set by the caller (``off``) wins."""
    env = {"ENGINE_CACHE": os.environ.get("ENGINE_CACHE", str(out.parent / "statements")),
           "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-m", "engine", "evaluate", str(tree / "playbooks" / "bench-reference.yaml"),
            "--mapping", "canonical", "--leads", str(data / "leads.csv"), "--events",
            str(data / "events.csv"), "--as-of", AS_OF, "--out", str(out), "--backend", backend]
    elapsed, _, cpu = in_subprocess(argv, env, cwd=tree)
    return elapsed, cpu


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
            times: dict[str, list[tuple[float, float]]] = {"base": [], "head": []}
            outs = {name: Path(scratch) / f"decisions-{name}.csv" for name in times}
            trees = {"base": base, "head": head.resolve()}
            for tree in trees.values():
                compile_bytecode(tree)
            for round_ in range(args.rounds):
                # each goes first in every other round: a drift of the machine's speed within
                # a round falls on both alike
                for name in ("base", "head") if round_ % 2 == 0 else ("head", "base"):
                    times[name].append(run(trees[name], data, outs[name], args.backend))
                (bw, bc), (hw, hc) = times["base"][-1], times["head"][-1]
                print(f"round {round_ + 1}: base {bw:.2f} s ({bc:.2f} s CPU), "
                      f"head {hw:.2f} s ({hc:.2f} s CPU)", flush=True)
            same = agree(outs["base"], outs["head"])
        finally:
            for tree in {base, head} - {Path(args.head)}:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    def median(name: str, i: int) -> float:
        return statistics.median(t[i] for t in times[name])

    def ratio(i: int) -> float:  # the median of the rounds' own ratios
        return statistics.median(h[i] / b[i] for b, h in zip(times["base"], times["head"], strict=True))

    print(f"{args.leads:,} leads, --backend {args.backend}, {args.rounds} alternating rounds, "
          f"{os.cpu_count()} cores")
    print(f"  base {args.base}: median {median('base', 0):.2f} s, CPU {median('base', 1):.2f} s")
    print(f"  head {args.head}: median {median('head', 0):.2f} s, CPU {median('head', 1):.2f} s")
    print(f"  head / base: {median('head', 0) / median('base', 0):.2f}× "
          f"(rounds' ratios: wall {ratio(0):.3f}×, CPU {ratio(1):.3f}×); {same}")
    return 0 if same.startswith("0 ") else 1


if __name__ == "__main__":
    raise SystemExit(main())
