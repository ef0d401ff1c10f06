"""Benchmark ``engine funnel`` (52 weekly decisions per lead) against one ``engine evaluate``.

The issue's target: 52 weeks over 100k leads in at most 3x one evaluate. Both run as
real subprocesses on the reference workload (gen.py data, cached under bench/data/), in
alternating rounds so a busy machine slows both alike; medians and the median of the
per-round ratios are printed. evaluate runs ``--backend python`` (funnel decides on the
same per-lead path) and, for reference, the default duckdb.

    python bench/bench_funnel.py [--leads 100000] [--rounds 3] [--weeks 52]
    python bench/bench_funnel.py --leads 100000 --phases    # where the CPU time goes, in-process

On a shared machine wall time swings with the load; ``--phases`` reports process CPU
time per stage of one in-process run (nested stages are inside their parents).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_evaluate import AS_OF, GEN, PLAYBOOK, ensure_data  # noqa: E402

ENGINE = [sys.executable, "-m", "engine"]
#: (module, attribute) timed by --phases; nested ones are included in their parents.
PHASES = (
    ("engine.measure.weeks", "_in_time_order"),
    ("engine.measure.weeks", "_frame_weeks"),
    ("engine.kernel.frames", "Frames.of"),
    ("engine.kernel.frames", "Frames.columns"),
    ("engine.kernel", "Kernel.decide_instants"),
    ("engine.measure.weeks", "_vector_weeks"),
    ("engine.kernel.vector", "VectorWeeks.prepare"),
    ("engine.kernel.vector", "VectorWeeks.decide_codes"),
    ("engine.measure.weeks", "_climb_stages"),
    ("engine.measure.weeks", "_lead_weeks"),
    ("engine.measure.weeks", "chunk_decisions"),
    ("engine.measure.funnel", "simulate"),
    ("engine.measure.funnel", "_Totals.add"),
)


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def phases(argv: list[str]) -> None:
    """One in-process ``engine funnel`` run: CPU seconds in total and per phase."""
    import importlib
    import inspect

    sys.path.insert(0, str(HERE.parent))
    spent: dict[str, float] = {}
    for module_name, dotted in PHASES:
        owner: object = importlib.import_module(module_name)
        *path, name = dotted.split(".")
        for part in path:
            owner = getattr(owner, part)
        raw = inspect.getattr_static(owner, name)
        original = raw.__func__ if isinstance(raw, classmethod) else raw

        def timed(*args: object, __f: object = original, __n: str = dotted, **kwargs: object) -> object:
            start = time.process_time()
            try:
                return __f(*args, **kwargs)  # type: ignore[operator]
            finally:
                spent[__n] = spent.get(__n, 0.0) + time.process_time() - start

        setattr(owner, name, classmethod(timed) if isinstance(raw, classmethod) else timed)
    from engine.cli import main as engine_main

    start = time.process_time()
    with contextlib.suppress(SystemExit):
        engine_main(argv)
    print(f"engine funnel in-process: {time.process_time() - start:.2f} s CPU")
    for name, seconds in spent.items():
        print(f"    {name:<28} {seconds:6.2f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--duckdb", action="store_true", help="also time evaluate --backend duckdb")
    parser.add_argument("--phases", action="store_true",
                        help="CPU time per phase of one in-process funnel run")
    args = parser.parse_args()
    data = ensure_data(args.leads, GEN)
    end = date.fromisoformat(AS_OF[:10])
    start = end - timedelta(weeks=args.weeks)
    inputs = ["--leads", str(data / "leads.csv"), "--events", str(data / "events.csv")]
    times: dict[str, list[float]] = {"evaluate": [], "funnel": [], "duckdb": []}
    if args.phases:
        with tempfile.TemporaryDirectory() as tmp:
            phases(["funnel", str(PLAYBOOK), *inputs, "--from", start.isoformat(), "--to", end.isoformat(),
                    "--format", "json", "--out", f"{tmp}/funnel.json"])
        return
    with tempfile.TemporaryDirectory() as tmp:
        evaluate = [*ENGINE, "evaluate", str(PLAYBOOK), *inputs, "--as-of", AS_OF, "--out",
                    f"{tmp}/d.csv", "--backend", "python", "--no-progress"]
        funnel = [*ENGINE, "funnel", str(PLAYBOOK), *inputs, "--from", start.isoformat(), "--to",
                  end.isoformat(), "--format", "json", "--out", f"{tmp}/funnel.json"]
        duckdb = [*ENGINE, "evaluate", str(PLAYBOOK), *inputs, "--as-of", AS_OF, "--out", f"{tmp}/e.csv"]
        for round_ in range(args.rounds):
            order = [("evaluate", evaluate), ("funnel", funnel)]
            if args.duckdb:
                order.append(("duckdb", duckdb))
            if round_ % 2:
                order.reverse()
            for name, argv in order:
                times[name].append(_timed(argv))
                print(f"round {round_ + 1} {name:<9} {times[name][-1]:8.2f} s", flush=True)
    ratios = [f / e for f, e in zip(times["funnel"], times["evaluate"], strict=True)]
    print(f"\n{args.leads:,} leads, {args.weeks} weeks, {args.rounds} alternating round(s), medians:")
    print(f"  engine evaluate --backend python  {statistics.median(times['evaluate']):8.2f} s")
    if times["duckdb"]:
        print(f"  engine evaluate (duckdb)          {statistics.median(times['duckdb']):8.2f} s")
    print(f"  engine funnel ({args.weeks} weeks)          {statistics.median(times['funnel']):8.2f} s")
    print(f"  ratio funnel / evaluate (median of per-round ratios): {statistics.median(ratios):.2f}x "
          f"(target <= 3x)")


if __name__ == "__main__":
    main()
