"""Benchmark: the compiled playbook query in DuckDB against a hand-written DuckDB query of
shared/bench/SPEC.md, on the reference workload (shared/bench/gen.py), same run, same files.

    python bench/bench_sql.py                           # 100k leads, medians of 3
    python bench/bench_sql.py --leads 100000 1000000    # both sizes in one run
    python bench/bench_sql.py --leads 20000 --runs 5 --data /tmp/wl
    python bench/bench_sql.py --cli on                  # also the end-to-end CLI (see below)

Every run is a fresh Python process (runs alternate between the queries, so a busy
machine slows both alike). For each size it prints each run, the median time of the
compiled query (``engine.sql.duckdb_backend.evaluate_duckdb``: build, bind, run, to
Arrow) and of the hand-written query (``HAND_WRITTEN``, to Arrow), their ratio, the
peak resident memory of each process (ru_maxrss, before the result is saved for the
check), and on how many leads the two agree for the columns SPEC.md and the playbook
share. With ``--spec`` (default) it also times bench/spec_duckdb.py's query, a second
hand-written SPEC that parses timestamps with strptime into naive TIMESTAMPs.

End to end (``--cli``; ``auto``, the default, when ``engine evaluate --help`` offers
``--backend``): ``engine evaluate PLAYBOOK --backend duckdb ... --out X.csv`` as a
process, against a process that runs the hand-written query and writes its CSV
(``COPY ... TO``); both timed from process start to exit, with their peak memory.

Data is generated once per size under bench/data/N (git-ignored) unless ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT.parent / "shared" / "bench" / "gen.py"
PLAYBOOK = ROOT / "playbooks" / "bench-reference.yaml"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF_TEXT = "2026-11-01T00:00:00Z"
RENAME = {"content": "content_id"}


HAND_WRITTEN = """
WITH ev AS (
  SELECT lead_id, CAST(occurred_at AS TIMESTAMPTZ) AS t, type, NULLIF(content_id, '') AS content
  FROM read_csv({events}, all_varchar = true, header = true)
  WHERE CAST(occurred_at AS TIMESTAMPTZ) <= TIMESTAMPTZ '2026-11-01 00:00:00+00'
), scored AS (
  SELECT *, date_diff('microsecond', t, TIMESTAMPTZ '2026-11-01 00:00:00+00') / 1e6 AS age_s,
    CASE type
      WHEN 'page_view' THEN CASE WHEN content = 'pricing' THEN 5 ELSE 1 END
      WHEN 'email_open' THEN 1 WHEN 'email_click' THEN 3
      WHEN 'content_download' THEN CASE WHEN content = 'company-profile' THEN 20
                                        WHEN content LIKE 'case-study-%' THEN 12 ELSE 8 END
      WHEN 'webinar_attend' THEN 10 WHEN 'trial_signup' THEN 25 WHEN 'quote_request' THEN 30
      WHEN 'inquiry' THEN 40 ELSE 0 END AS w
  FROM ev
), agg AS (
  SELECT lead_id,
    SUM(w * pow(0.5, age_s / 86400 / 30)) AS eng,
    count(*) FILTER (WHERE type = 'unsubscribe') AS unsub,
    count(*) FILTER (WHERE age_s < 7 * 86400) AS recent,
    count(*) FILTER (WHERE age_s >= 7 * 86400 AND age_s < 14 * 86400) AS prior,
    count(*) FILTER (WHERE type IN ('quote_request', 'inquiry') AND age_s < 30 * 86400) AS qi30,
    count(*) FILTER (WHERE type = 'content_download' AND content = 'company-profile'
                     AND age_s < 30 * 86400) AS cp30,
    count(*) FILTER (WHERE type = 'inquiry' AND age_s < 14 * 86400) AS inq14
  FROM scored GROUP BY lead_id
), l AS (
  SELECT lead_id, email, company_domain, industry, TRY_CAST(NULLIF(employees, '') AS DOUBLE) AS employees,
         title, country
  FROM read_csv({leads}, all_varchar = true, header = true)
), base AS (
  SELECT l.lead_id,
    CASE
      WHEN company_domain IN ('rival0.example.com', 'rival1.example.com', 'rival2.example.com',
        'rival3.example.com', 'rival4.example.com', 'rival5.example.com', 'rival6.example.com',
        'rival7.example.com', 'rival8.example.com', 'rival9.example.com') THEN 'competitor'
      WHEN company_domain IN ('partner0.example.co.jp', 'partner1.example.co.jp', 'partner2.example.co.jp',
        'partner3.example.co.jp', 'partner4.example.co.jp') THEN 'partner'
      WHEN regexp_matches(title, '(?i)student|学生') THEN 'student'
      WHEN coalesce(a.unsub, 0) > 0 THEN 'unsubscribed'
      WHEN regexp_matches(email, '@(gmail\\.com|yahoo\\.co\\.jp|outlook\\.com|hotmail\\.com)$')
           AND employees IS NULL THEN 'freemail_no_company'
      ELSE '' END AS excluded,
    least(60, (CASE WHEN industry IN ('software', 'manufacturing', 'finance') THEN 20 ELSE 0 END)
      + (CASE WHEN employees >= 1000 THEN 25 WHEN employees >= 100 THEN 15 WHEN employees >= 10 THEN 5
              ELSE 0 END)
      + (CASE WHEN regexp_matches(title, '部長|Director|VP|Head') THEN 20
              WHEN regexp_matches(title, '課長|Manager') THEN 10 ELSE 0 END)
      + (CASE WHEN country = 'JP' THEN 5 ELSE 0 END)) AS fit,
    least(100, round(coalesce(a.eng, 0), 2)) AS engagement,
    coalesce(a.recent, 0) >= 3 AND coalesce(a.recent, 0) >= 2 * coalesce(a.prior, 0) AS surge,
    coalesce(a.qi30, 0) AS qi30, coalesce(a.cp30, 0) AS cp30, coalesce(a.inq14, 0) AS inq14
  FROM l LEFT JOIN agg a USING (lead_id)
), staged AS (
  SELECT *, CASE WHEN excluded <> '' THEN 'excluded'
    WHEN fit >= 30 AND engagement >= 40 AND qi30 > 0 THEN 'sql'
    WHEN (fit >= 30 AND engagement >= 40) OR cp30 > 0 THEN 'mql'
    WHEN engagement > 0 THEN 'nurture' ELSE 'lead' END AS stage
  FROM base
)
SELECT lead_id, excluded, fit, engagement, surge, stage,
  CASE WHEN excluded <> '' THEN 'none' WHEN inq14 > 0 THEN 'field_sales' WHEN stage = 'sql' THEN 'field_sales'
       WHEN stage = 'mql' OR (surge AND fit >= 30) THEN 'inside_sales' ELSE 'marketing' END AS route
FROM staged ORDER BY lead_id
"""

#: The columns SPEC.md and the playbook share (compared lead by lead).
SHARED = ("excluded", "fit", "engagement", "surge", "stage", "route")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def hand_sql(folder: Path) -> str:
    return HAND_WRITTEN.format(leads=_literal(folder / "leads.csv"), events=_literal(folder / "events.csv"))


def _peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)


# -- one measurement, in its own process -------------------------------------------------


def child(mode: str, folder: Path, playbook: Path, out: Path | None, threads: int | None) -> None:
    """Run one query in this (fresh) process; print its time and peak memory as JSON."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    if mode == "compiled":
        from engine.sql.duckdb_backend import evaluate_duckdb
        from engine.validate import load_playbook

        cp = load_playbook(playbook).compiled
        assert cp is not None
        start = time.perf_counter()
        table = evaluate_duckdb(
            cp, folder / "leads.csv", folder / "events.csv", AS_OF, rename=RENAME, connection=con
        )
    elif mode == "hand":
        con.execute("SET TimeZone = 'UTC'")
        start = time.perf_counter()
        table = con.sql(hand_sql(folder)).to_arrow_table()
    elif mode == "spec":  # bench/spec_duckdb.py's query: another hand-written SPEC, to Arrow
        sys.path.insert(0, str(ROOT / "bench"))
        import spec_duckdb

        start = time.perf_counter()
        table = con.sql(spec_duckdb.query(str(folder))).to_arrow_table()
    elif mode == "hand-csv":  # end to end: the hand-written query writes its CSV
        assert out is not None
        con.execute("SET TimeZone = 'UTC'")
        start = time.perf_counter()
        con.execute(f"COPY ({hand_sql(folder)}) TO {_literal(out)} (HEADER, DELIMITER ',')")
        table = None
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - start
    report = {"seconds": seconds, "peak_rss": _peak_rss(), "rows": None if table is None else table.num_rows}
    if table is not None and out is not None:  # saved for the agreement check, after measuring
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    print(json.dumps(report), flush=True)


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> int:
        return max(self.peak_rss)


def _spawn(command: list[str]) -> tuple[float, int, str]:
    """Run ``command``; (wall seconds, peak RSS in bytes from wait4, stdout)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(command, stdout=stdout, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        text = stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{text}")
    return wall, int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024), text


def measure_query(mode: str, folder: Path, args: argparse.Namespace, out: Path | None) -> tuple[float, int]:
    command = [sys.executable, __file__, "--child", mode, "--data", str(folder)]
    command += ["--playbook", str(args.playbook)]
    if out is not None:
        command += ["--out", str(out)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    _, _, text = _spawn(command)
    report = json.loads(text.strip().splitlines()[-1])
    return float(report["seconds"]), int(report["peak_rss"])


def cli_command(folder: Path, playbook: Path, out: Path) -> list[str]:
    engine = shutil.which("engine", path=str(Path(sys.executable).parent)) or "engine"
    return [
        engine, "evaluate", str(playbook), "--backend", "duckdb",
        "--leads", str(folder / "leads.csv"), "--events", str(folder / "events.csv"),
        "--as-of", AS_OF_TEXT, "--out", str(out), "--no-progress",
    ]  # fmt: skip


def cli_has_backend() -> bool:
    command = [sys.executable, "-m", "engine.cli", "evaluate", "--help"]
    engine = shutil.which("engine", path=str(Path(sys.executable).parent))
    if engine:
        command = [engine, "evaluate", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    return "--backend" in done.stdout


# -- agreement ----------------------------------------------------------------------------


def _reader(path: Path) -> str:
    if path.suffix == ".csv":
        return f"read_csv({_literal(path)}, all_varchar = true, header = true)"
    return f"read_parquet({_literal(path)})"


def agreement(hand: Path, other: Path) -> tuple[int, int, dict[str, int]]:
    """(hand-written leads, other's leads, leads agreeing per SPEC column).

    SPEC's stage of an excluded lead is 'excluded'; the engine keeps the computed stage,
    so stage agrees there whenever ``excluded`` does. Numbers compare as DOUBLE, booleans
    as lower-case text, so Parquet and CSV outputs compare alike.
    """
    import duckdb

    def text(c: str, side: str) -> str:
        return f"coalesce(lower(CAST({side}.{c} AS VARCHAR)), '')"

    def number(c: str, side: str) -> str:
        return f"TRY_CAST({side}.{c} AS DOUBLE)"

    checks = []
    for c in SHARED:
        if c in ("fit", "engagement"):
            same = f"{number(c, 'h')} = {number(c, 'o')}"
        else:
            same = f"{text(c, 'h')} = {text(c, 'o')}"
        if c == "stage":
            same = f"({same} OR {text('excluded', 'h')} <> '')"
        checks.append(f"count(*) FILTER (WHERE {same})")
    con = duckdb.connect()
    (n_hand,) = con.execute(f"SELECT count(*) FROM {_reader(hand)}").fetchone() or (0,)
    (n_other,) = con.execute(f"SELECT count(*) FROM {_reader(other)}").fetchone() or (0,)
    row = con.execute(
        f"SELECT {', '.join(checks)} FROM {_reader(hand)} h JOIN {_reader(other)} o USING (lead_id)"
    ).fetchone()
    assert row is not None
    return int(n_hand), int(n_other), dict(zip(SHARED, (int(v) for v in row), strict=True))


def _agreement_line(label: str, hand: Path, other: Path) -> str:
    n_hand, n_other, same = agreement(hand, other)
    counts = ", ".join(f"{c} {n}/{n_hand}" for c, n in same.items())
    extra = "" if n_hand == n_other else f" (leads: hand-written {n_hand}, {label} {n_other})"
    return f"  agreement, {label} vs hand-written: {counts}{extra}"


# -- the benchmark ---------------------------------------------------------------------------


def generate(leads: int, folder: Path) -> None:
    if (folder / "leads.csv").exists() and (folder / "events.csv").exists():
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, str(GEN), str(leads), str(folder)], check=True)
    print(f"generated {leads:,} leads in {folder} ({time.perf_counter() - start:.1f} s)", flush=True)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def bench_size(leads: int, folder: Path, args: argparse.Namespace, cli: bool) -> list[str]:
    generate(leads, folder)
    work = Path(tempfile.mkdtemp(prefix="bench-sql-"))
    try:
        modes = ["hand", "compiled"] + (["spec"] if args.spec else []) + (["hand-csv", "cli"] if cli else [])
        results = {m: Measured() for m in modes}
        outputs = {
            "hand": work / "hand.parquet",
            "compiled": work / "compiled.parquet",
            "spec": work / "spec.parquet",
            "hand-csv": work / "hand.csv",
            "cli": work / "cli.csv",
        }
        print(f"\n{leads:,} leads ({folder}), playbook {args.playbook}, {args.runs} runs", flush=True)
        for run in range(args.runs):
            for mode in modes:
                last = run == args.runs - 1
                if mode == "cli":
                    seconds, peak, _ = _spawn(cli_command(folder, args.playbook, outputs["cli"]))
                elif mode == "hand-csv":
                    command = [sys.executable, __file__, "--child", mode, "--data", str(folder),
                               "--out", str(outputs[mode])]  # fmt: skip
                    if args.threads:
                        command += ["--threads", str(args.threads)]
                    seconds, peak, _ = _spawn(command)
                else:
                    seconds, peak = measure_query(mode, folder, args, outputs[mode] if last else None)
                results[mode].seconds.append(seconds)
                results[mode].peak_rss.append(peak)
                print(f"  run {run + 1} {mode:>9}: {seconds:6.2f} s, peak {_mib(peak)}", flush=True)
        hand, compiled = results["hand"], results["compiled"]
        lines = [
            f"{leads:,} leads, medians of {args.runs}:",
            f"  query      hand-written {hand.median:6.2f} s (peak {_mib(hand.peak)}), "
            f"compiled {compiled.median:6.2f} s (peak {_mib(compiled.peak)}), "
            f"ratio {compiled.median / hand.median:.2f}x",
            _agreement_line("compiled", outputs["hand"], outputs["compiled"]),
        ]
        if args.spec:
            spec = results["spec"]
            lines.insert(
                2,
                f"  query      bench/spec_duckdb.py {spec.median:6.2f} s (peak {_mib(spec.peak)}), "
                f"compiled / spec_duckdb {compiled.median / spec.median:.2f}x",
            )
        if cli:
            hand_csv, end_to_end = results["hand-csv"], results["cli"]
            lines += [
                f"  end to end hand-written to CSV {hand_csv.median:6.2f} s (peak {_mib(hand_csv.peak)}), "
                f"engine evaluate --backend duckdb {end_to_end.median:6.2f} s "
                f"(peak {_mib(end_to_end.peak)}), ratio {end_to_end.median / hand_csv.median:.2f}x",
                _agreement_line("CLI", outputs["hand-csv"], outputs["cli"]),
            ]
        else:
            why = "--cli off"
            if args.cli != "off":
                why = "`engine evaluate` has no --backend here; --cli on forces it"
            lines.append(f"  end to end: not measured ({why})")
        for line in lines:
            print(line, flush=True)
        return lines
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, nargs="+", default=[100_000], help="sizes (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per query and size (median reported)")
    parser.add_argument("--data", type=Path, help="folder for (or with) leads.csv and events.csv (one size)")
    parser.add_argument("--playbook", type=Path, default=PLAYBOOK)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--cli",
        choices=("auto", "on", "off"),
        default="auto",
        help="time `engine evaluate --backend duckdb` end to end (auto: if the CLI has --backend)",
    )
    parser.add_argument(
        "--spec",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time bench/spec_duckdb.py's hand-written query (strptime, no time zones)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.playbook = args.playbook.resolve()
    if args.child:
        assert args.data is not None
        child(args.child, args.data, args.playbook, args.out, args.threads)
        return
    if args.data is not None and len(args.leads) > 1:
        parser.error("--data names one folder: give one --leads size with it")
    cli = args.cli == "on" or (args.cli == "auto" and cli_has_backend())
    summary: list[str] = []
    for leads in args.leads:
        folder = (args.data or ROOT / "bench" / "data" / str(leads)).resolve()
        summary += bench_size(leads, folder, args, cli)
    if len(args.leads) > 1:
        print("\nsummary", *summary, sep="\n")


if __name__ == "__main__":
    main()
