"""Benchmark: the compiled playbook query in DuckDB against a hand-written DuckDB query of
shared/bench/SPEC.md, on the reference workload (shared/bench/gen.py), same run, same files.

    python bench/bench_sql.py                 # 100k leads, medians of 3
    python bench/bench_sql.py --leads 20000 --runs 5 --data /tmp/wl

Prints each run, the medians, the ratio (compiled / hand-written) and how many leads
the two agree on for the columns SPEC.md and the playbook share.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT.parent / "shared" / "bench" / "gen.py"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
RENAME = {"content": "content_id"}


def playbook_path() -> Path:
    """The reference-workload playbook: playbooks/bench.yaml if someone added it, else ours."""
    shared = ROOT / "playbooks" / "bench.yaml"
    return shared if shared.exists() else ROOT / "tests" / "sql_cases" / "reference.yaml"


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


def generate(leads: int, folder: Path) -> None:
    if (folder / "leads.csv").exists() and (folder / "events.csv").exists():
        return
    subprocess.run([sys.executable, str(GEN), str(leads), str(folder)], check=True)


def timed(label: str, runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for run in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        print(f"  {label} run {run + 1}: {times[-1]:.2f} s", flush=True)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="folder for (or with) leads.csv and events.csv")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    args = parser.parse_args()

    import duckdb

    from engine.sql.duckdb_backend import evaluate_duckdb
    from engine.validate import load_playbook

    folder = args.data or Path(tempfile.mkdtemp(prefix="bench-sql-"))
    start = time.perf_counter()
    generate(args.leads, folder)
    print(f"workload in {folder} ({time.perf_counter() - start:.1f} s)")
    cp = load_playbook(playbook_path()).compiled
    assert cp is not None
    leads, events = folder / "leads.csv", folder / "events.csv"

    def compiled() -> Any:
        con = duckdb.connect()
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        return evaluate_duckdb(cp, leads, events, AS_OF, rename=RENAME, connection=con)

    def hand() -> Any:
        con = duckdb.connect()
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        con.execute("SET TimeZone = 'UTC'")
        literal = {
            k: "'" + str(v).replace("'", "''") + "'" for k, v in (("leads", leads), ("events", events))
        }
        return con.sql(HAND_WRITTEN.format(**literal)).to_arrow_table()

    print(f"playbook {playbook_path().relative_to(ROOT)}, as_of {AS_OF.isoformat()}, {args.runs} runs")
    hand_median, hand_rows = timed("hand-written", args.runs, hand)
    compiled_median, compiled_rows = timed("compiled", args.runs, compiled)
    print(
        f"median hand-written {hand_median:.2f} s, compiled {compiled_median:.2f} s, "
        f"ratio {compiled_median / hand_median:.2f}x ({compiled_rows.num_rows} leads)"
    )
    agree(hand_rows, compiled_rows)


def agree(hand: Any, compiled: Any) -> None:
    """Leads on which both give the same SPEC columns (SPEC's stage 'excluded' aside)."""
    mine = {r["lead_id"]: r for r in compiled.to_pylist()}
    same = {c: 0 for c in ("excluded", "fit", "engagement", "surge", "stage", "route")}
    for row in hand.to_pylist():
        other = mine[row["lead_id"]]
        for column in same:
            spec_only = column == "stage" and row["excluded"]  # SPEC's stage 'excluded'
            if spec_only or row[column] == other[column]:
                same[column] += 1
    total = hand.num_rows
    print("agreement with the hand-written query: " + ", ".join(f"{c} {n}/{total}" for c, n in same.items()))


if __name__ == "__main__":
    main()
