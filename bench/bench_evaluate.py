"""Benchmark ``engine evaluate`` against plain Python and DuckDB on SPEC.md's workload.

In one run: generate data with gen.py (cached under bench/data/, git-ignored), time the
engine's per-lead Python path (in process, --repeat rounds alternating with the others,
plus one real ``engine evaluate --backend python`` subprocess and one ``--backend
duckdb``), the plain-Python SPEC (bench/spec_python.py), the DuckDB SPEC
(bench/spec_duckdb.py) and, when polars is installed (the ``bench`` extra), the Polars SPEC
(bench/spec_polars.py, the hand-written lazy-API baseline); peak memory of each as a
subprocess (ru_maxrss via wait4); and check all agree on every lead (fit, engagement,
surge, stage, route), the two backends byte for byte, Polars with the DuckDB SPEC.

    python bench/bench_evaluate.py [--leads 100000] [--repeat 3] [--sub-repeat 1] [--profile]
        [--duckdb-only]

The default backend runs twice a round as a subprocess: reading its rendered statements
(kept in a folder of the run's own from its first round on, engine.sql.statement_cache)
and keeping nothing (``ENGINE_CACHE=off``), each paired with the hand-written query;
the Polars SPEC runs right after the DuckDB one (``--duckdb-only`` too), its ratio to it
the median of the per-round ratios.

The engine keeps an excluded lead's computed stage; SPEC calls it 'excluded', so the
comparison maps stage → 'excluded' when ``excluded`` is set.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GEN = REPO.parent / "shared" / "bench" / "gen.py"
PLAYBOOK = REPO / "playbooks" / "bench-reference.yaml"
AS_OF = "2026-11-01T00:00:00Z"
Row = tuple[str, str, float, float, bool, str, str]


def ensure_data(n: int, gen: Path) -> Path:
    folder = HERE / "data" / str(n)
    if not (folder / "events.csv").exists():
        print(f"generating {n:,} leads with {gen} ...", flush=True)
        subprocess.run([sys.executable, str(gen), str(n), str(folder)], check=True)
    return folder


def engine_in_process(data: Path, out: Path, events_sorted: bool | None = None) -> None:
    from engine.batch import BatchRequest, evaluate_export, parse_as_of
    from engine.io import load_mapping
    from engine.validate import load_playbook

    cp = load_playbook(PLAYBOOK).compiled
    assert cp is not None
    request = BatchRequest(leads=data / "leads.csv", events=data / "events.csv", out=out,
                           as_of=parse_as_of(AS_OF, cp), mapping=load_mapping("canonical"),
                           events_sorted=events_sorted)
    evaluate_export(cp, request)


def engine_duckdb_in_process(data: Path, out: Path) -> None:
    """The default backend (``--backend duckdb``), as ``engine evaluate`` runs it."""
    from engine.batch import BatchRequest, parse_as_of
    from engine.io import load_mapping
    from engine.sql.batch import evaluate_export_sql
    from engine.validate import load_playbook

    cp = load_playbook(PLAYBOOK).compiled
    assert cp is not None
    request = BatchRequest(leads=data / "leads.csv", events=data / "events.csv", out=out,
                           as_of=parse_as_of(AS_OF, cp), mapping=load_mapping("canonical"))
    evaluate_export_sql(cp, request)


def engine_sorted_in_process(data: Path, out: Path) -> None:
    engine_in_process(data, out, events_sorted=True)


def python_in_process(data: Path, out: Path) -> None:
    sys.path.insert(0, str(HERE))
    import spec_python

    spec_python.run(str(data), str(out))


def duckdb_in_process(data: Path, out: Path) -> None:
    sys.path.insert(0, str(HERE))
    import spec_duckdb

    spec_duckdb.run(str(data), str(out))


#: Linux keeps a process's peak RSS across fork and exec, so a child forked from this
#: (large) process would report at least our size: children are started from a tiny launcher.
LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss,
      usage.ru_utime + usage.ru_stime)
"""


#: The hand-written Polars baseline's row (bench/spec_polars.py), when polars is installed,
#: and its output file.
POLARS = {"Polars": "pl.csv"}
#: The subprocess runs ``--duckdb-only`` keeps.
DUCKDB_ONLY = ("engine evaluate --backend duckdb", "  the same, nothing kept", "DuckDB SQL", *POLARS)


def polars_steps(data: Path, out: Path) -> tuple[tuple[str, list[str], dict[str, str]], ...]:
    """The Polars SPEC's subprocess runs; none (and a line saying why) without polars."""
    if importlib.util.find_spec("polars") is None:
        print("  Polars: skipped, polars is not installed (pip install -e '.[bench]')")
        return ()
    return (("Polars", [sys.executable, str(HERE / "spec_polars.py"), str(data), str(out / POLARS["Polars"])],
             {}),)


def check_polars(out: Path) -> int:
    """Leads on which a Polars SPEC's output differs from the DuckDB SPEC's (printed)."""
    reference = load(out / "d2.csv", engine=False)
    bad = 0
    for name, file in POLARS.items():
        wrong = compare(reference, load(out / file, engine=False), name)
        print(f"  leads compared {len(reference):,}; {name} vs DuckDB SQL mismatches {wrong}")
        bad += wrong
    return bad


def compile_bytecode(tree: Path) -> None:
    """The engine package's bytecode, as an installed engine has it (pip compiles it at
    install). A checkout run with ``PYTHONDONTWRITEBYTECODE`` set (as on the CI machines)
    otherwise compiles some 90 modules from source in every run: 0.2-0.3 s of a
    subprocess's wall time that no user pays. Compiling writes only ``__pycache__``
    folders (ignored by git)."""
    import compileall

    compileall.compile_dir(str(tree / "engine"), quiet=1)


def in_subprocess(args: list[str], env: dict[str, str] | None = None,
                  cwd: Path = REPO) -> tuple[float, int, float]:
    """Wall time, peak RSS (bytes) and CPU time (user + system) of one child process
    (``env``: variables set for it), run in ``cwd``."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *args], cwd=cwd, capture_output=True,
                          text=True, check=True, env={**os.environ, **(env or {})})
    elapsed, code, maxrss, cpu = done.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(args)} failed with {code}:\n{done.stderr}")
    return float(elapsed), int(maxrss) * (1 if sys.platform == "darwin" else 1024), float(cpu)


def load(path: Path, engine: bool) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            stage = "excluded" if engine and r["excluded"] else r["stage"]
            route = r["route"]
            rows[r["lead_id"]] = (r["lead_id"], r["excluded"], float(r["fit"]), float(r["engagement"]),
                                  r["surge"].lower() == "true", stage, route)
    return rows


def compare(reference: dict[str, Row], other: dict[str, Row], name: str) -> int:
    fields = ("lead_id", "excluded", "fit", "engagement", "surge", "stage", "route")
    mismatches = 0
    for lead_id, row in reference.items():
        theirs = other.get(lead_id)
        if theirs != row:
            mismatches += 1
            if mismatches <= 5:
                diff = {f: (a, b) for f, a, b in zip(fields, row, theirs or ("",) * 7, strict=True) if a != b}
                print(f"    {name} differs on {lead_id}: {diff}")
    mismatches += len(set(other) - set(reference))
    return mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="in-process runs per implementation; 0: subprocess runs only (for 1M)")
    parser.add_argument("--gen", type=Path, default=GEN)
    parser.add_argument("--sub-repeat", type=int, default=1,
                        help="rounds of the subprocess runs, alternating (medians and ratios when > 1)")
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process engine run")
    parser.add_argument("--duckdb-only", action="store_true",
                        help="subprocess runs of the default backend and the hand-written DuckDB and "
                             "Polars scripts only")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    data = ensure_data(args.leads, args.gen)
    with open(data / "events.csv", "rb") as handle:
        events = sum(1 for _ in handle) - 1
    print(f"data: {args.leads:,} leads, {events:,} events ({data})", flush=True)
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        out = Path(tmp)
        ratios = timings(data, out, args.repeat, events) if args.repeat > 0 else None
        compile_bytecode(REPO)
        print("one subprocess each (wall time, peak RSS):")
        # the same work as the baselines (decisions only); then once more writing the
        # per-team work queues too, which the baselines do not
        engine_cmd = [str(Path(sys.executable).with_name("engine")), "evaluate", str(PLAYBOOK),
                      "--leads", str(data / "leads.csv"), "--events", str(data / "events.csv"),
                      "--as-of", AS_OF, "--out", str(out / "engine-sub.csv"),
                      "--no-progress", "--backend", "python"]
        queues_cmd = [*engine_cmd, "--queues", str(out / "q")]
        queues_cmd[queues_cmd.index("--out") + 1] = str(out / "engine-queues.csv")
        duck_cmd = [*engine_cmd[:-1], "duckdb"]
        duck_cmd[duck_cmd.index("--out") + 1] = str(out / "engine-duck.csv")
        # The default backend keeps its rendered statements between runs (ENGINE_CACHE,
        # engine.sql.statement_cache): a folder of this run's own, so the first round
        # renders them and the next ones read them; and once more keeping nothing.
        kept = {"ENGINE_CACHE": str(out / "statements")}
        fresh_cmd = [*duck_cmd]
        fresh_cmd[fresh_cmd.index("--out") + 1] = str(out / "engine-fresh.csv")
        plan: tuple[tuple[str, list[str], dict[str, str]], ...] = (
            ("engine evaluate --backend python", engine_cmd, {}),
            ("  the same, writing --queues", queues_cmd, {}),
            ("engine evaluate --backend duckdb", duck_cmd, kept),
            ("  the same, nothing kept", fresh_cmd, {"ENGINE_CACHE": "off"}),
            ("plain Python", [sys.executable, str(HERE / "spec_python.py"), str(data), str(out / "p2.csv")],
             {}),
            ("DuckDB SQL", [sys.executable, str(HERE / "spec_duckdb.py"), str(data), str(out / "d2.csv")],
             {}),
        )
        polars = polars_steps(data, out)
        plan = (*plan, *polars)
        if args.duckdb_only:
            plan = tuple(step for step in plan if step[0] in DUCKDB_ONLY)
        walls: dict[str, list[float]] = {}
        for _ in range(args.sub_repeat):  # alternating, as in process
            for name, cmd, env in plan:
                elapsed, rss, _ = in_subprocess(cmd, env)
                walls.setdefault(name, []).append(elapsed)
                print(f"  {name:<32} {elapsed:8.2f} s   peak RSS {rss / 2**20:8.1f} MiB", flush=True)
        if args.sub_repeat > 1:
            duck_walls = walls["DuckDB SQL"]
            for name in ("engine evaluate --backend duckdb", "  the same, nothing kept", *POLARS):
                if name not in walls:
                    continue
                ratio_duck = statistics.median(t / d for t, d in zip(walls[name], duck_walls, strict=True))
                print(f"  {name.strip():<32} / DuckDB SQL (subprocess) {ratio_duck:5.2f}x "
                      "(median of per-round ratios)")
            for name in (n for n in POLARS if n in walls):
                pairs = zip(walls["engine evaluate --backend duckdb"], walls[name], strict=True)
                ratio_polars = statistics.median(t / p for t, p in pairs)
                print(f"  engine evaluate --backend duckdb / {name} (subprocess) "
                      f"{ratio_polars:5.2f}x (median of per-round ratios)")
            python_walls = walls.get("plain Python", duck_walls)
            baseline = "plain Python" if "plain Python" in walls else "DuckDB SQL"
            for name, times in walls.items():
                ratio = statistics.median(t / p for t, p in zip(times, python_walls, strict=True))
                print(f"  {name:<32} median {statistics.median(times):8.2f} s   / {baseline} {ratio:5.2f}x")
        if args.duckdb_only:
            same = (out / "engine-duck.csv").read_bytes() == (out / "engine-fresh.csv").read_bytes()
            print(f"  kept and rendered statements, outputs identical: {same}")
            return 0 if not polars or check_polars(out) == 0 else 1
        print("correctness (fit, engagement, surge, stage, route on every lead):")
        reference = load(out / "p2.csv", engine=False)
        bad_engine = compare(reference, load(out / "engine-sub.csv", engine=True), "engine")
        bad_duck = compare(reference, load(out / "d2.csv", engine=False), "duckdb")
        same = "n/a"
        if ratios is not None:
            same = str((out / "engine.csv").read_bytes() == (out / "engine-sub.csv").read_bytes())
        same_backends = (out / "engine-duck.csv").read_bytes() == (out / "engine-sub.csv").read_bytes() \
            == (out / "engine-fresh.csv").read_bytes()
        print(f"  --backend duckdb (kept and rendered statements) and --backend python outputs identical: "
              f"{same_backends}")
        print(f"  leads compared {len(reference):,}; engine vs Python mismatches {bad_engine}; "
              f"DuckDB vs Python mismatches {bad_duck}; in-process and subprocess output identical: {same}")
        bad_polars = check_polars(out) if polars else 0
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(engine_in_process, data, out / "profiled.csv")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0 if bad_engine == bad_duck == bad_polars == 0 and same_backends else 1


def timings(data: Path, out: Path, repeat: int, events: int) -> tuple[float, float, float]:
    """Median in-process times (engine, plain Python, DuckDB), printed with their ratios.

    The implementations alternate round by round, so a burst of load on the machine
    hits all of them alike; ratios are the median of the per-round ratios.
    """
    print(f"time (in process, {repeat} alternating rounds):")
    runs: dict[str, list[float]] = {}
    plan = (
        ("engine (Python per-lead path)", engine_in_process, "engine.csv"),
        ("engine, --events-sorted", engine_sorted_in_process, "engine-sorted.csv"),
        ("plain Python (spec_python)", python_in_process, "python.csv"),
        ("DuckDB SQL (spec_duckdb)", duckdb_in_process, "duckdb.csv"),
        ("engine default (--backend duckdb)", engine_duckdb_in_process, "engine-duckdb.csv"),
    )
    for _ in range(repeat):
        for label, fn, name in plan:
            start = time.perf_counter()
            fn(data, out / name)
            runs.setdefault(label, []).append(time.perf_counter() - start)
    for label, times in runs.items():
        print(f"  {label:<32} median {statistics.median(times):8.2f} s   "
              f"runs: {', '.join(f'{t:.2f}' for t in times)}", flush=True)
    engine, python, duck = (runs[label] for label, _, _ in (plan[0], plan[2], plan[3]))
    sorted_runs = runs[plan[1][0]]

    def ratio(a: list[float], b: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(a, b, strict=True))

    leads = sum(1 for _ in open(data / "leads.csv", "rb")) - 1  # noqa: SIM115
    t_engine = statistics.median(engine)
    print("ratios (median of the per-round ratios):")
    print(f"  engine / plain Python             {ratio(engine, python):6.2f}x")
    print(f"  engine --events-sorted / Python   {ratio(sorted_runs, python):6.2f}x")
    print(f"  engine / DuckDB                   {ratio(engine, duck):6.2f}x")
    print(f"  engine default (duckdb) / DuckDB  {ratio(runs[plan[4][0]], duck):6.2f}x   (target <= 1.5x)")
    print(f"  engine default / engine python    {ratio(runs[plan[4][0]], engine):6.2f}x")
    print(f"  plain Python / DuckDB             {ratio(python, duck):6.2f}x")
    print(f"  engine throughput      {leads / t_engine:,.0f} leads/s, {events / t_engine:,.0f} events/s")
    return t_engine, statistics.median(python), statistics.median(duck)


if __name__ == "__main__":
    sys.exit(main())
