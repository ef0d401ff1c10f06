"""SPEC.md's reference workload as one hand-written DuckDB query.

Rounding is round-half-even (``round_even``) like the engine's Python ``round``.
What the rules look like compiled to SQL and run where the data lives (ARCHITECTURE.md):
one aggregate per lead over its events, joined to the leads. ``bench_evaluate.py``
checks it gives the same answers as the engine and the plain-Python version.

    python bench/spec_duckdb.py DATA_DIR OUT.csv
"""

from __future__ import annotations

import sys
from typing import Any

AS_OF = "2026-11-01 00:00:00"

QUERY = """
WITH ev AS (
  SELECT lead_id, type, content_id AS content,
         epoch(TIMESTAMP '{as_of}') - epoch(strptime(occurred_at, '%Y-%m-%dT%H:%M:%SZ')) AS age
  FROM read_csv('{dir}/events.csv', header = true, all_varchar = true)
),
agg AS (
  SELECT lead_id,
    sum(CASE
          WHEN type = 'page_view' AND content = 'pricing' THEN 5
          WHEN type = 'page_view' THEN 1
          WHEN type = 'email_open' THEN 1
          WHEN type = 'email_click' THEN 3
          WHEN type = 'content_download' AND content = 'company-profile' THEN 20
          WHEN type = 'content_download' AND content LIKE 'case-study-%' THEN 12
          WHEN type = 'content_download' THEN 8
          WHEN type = 'webinar_attend' THEN 10
          WHEN type = 'trial_signup' THEN 25
          WHEN type = 'quote_request' THEN 30
          WHEN type = 'inquiry' THEN 40
          ELSE 0 END * pow(0.5, age / 86400.0 / 30)) AS engagement_raw,
    count(*) FILTER (WHERE age < 7 * 86400) AS recent,
    count(*) FILTER (WHERE age >= 7 * 86400 AND age < 14 * 86400) AS prior,
    bool_or(type = 'unsubscribe') AS unsubscribed,
    bool_or(type IN ('quote_request', 'inquiry') AND age < 30 * 86400) AS hot30,
    bool_or(type = 'inquiry' AND age < 14 * 86400) AS inquiry14,
    bool_or(type = 'content_download' AND content = 'company-profile' AND age < 30 * 86400) AS profile30
  FROM ev WHERE age >= 0
  GROUP BY lead_id
),
lead AS (
  SELECT l.lead_id, l.email, l.company_domain, l.industry, TRY_CAST(l.employees AS BIGINT) AS employees,
         coalesce(l.title, '') AS title, l.country
  FROM read_csv('{dir}/leads.csv', header = true, all_varchar = true) l
),
scored AS (
  SELECT lead.lead_id,
    CASE
      WHEN company_domain IN ({competitors}) THEN 'competitor'
      WHEN company_domain IN ({partners}) THEN 'partner'
      WHEN regexp_matches(title, '(?i)student|学生') THEN 'student'
      WHEN coalesce(unsubscribed, false) THEN 'unsubscribed'
      WHEN split_part(email, '@', 2) IN ('gmail.com', 'yahoo.co.jp', 'outlook.com', 'hotmail.com')
           AND employees IS NULL THEN 'freemail_no_company'
      ELSE '' END AS excluded,
    least(60,
      CASE WHEN industry IN ('software', 'manufacturing', 'finance') THEN 20 ELSE 0 END
      + CASE WHEN employees >= 1000 THEN 25 WHEN employees >= 100 THEN 15
             WHEN employees >= 10 THEN 5 ELSE 0 END
      + CASE WHEN regexp_matches(title, '部長|Director|VP|Head') THEN 20
             WHEN regexp_matches(title, '課長|Manager') THEN 10 ELSE 0 END
      + CASE WHEN country = 'JP' THEN 5 ELSE 0 END)::DOUBLE AS fit,
    least(100, round_even(coalesce(engagement_raw, 0), 2)) AS engagement,
    coalesce(recent >= 3 AND recent >= 2 * prior, false) AS surge,
    coalesce(hot30, false) AS hot30, coalesce(inquiry14, false) AS inquiry14,
    coalesce(profile30, false) AS profile30
  FROM lead LEFT JOIN agg USING (lead_id)
),
staged AS (
  SELECT *,
    CASE
      WHEN excluded <> '' THEN 'excluded'
      WHEN fit >= 30 AND engagement >= 40 AND hot30 THEN 'sql'
      WHEN (fit >= 30 AND engagement >= 40) OR profile30 THEN 'mql'
      WHEN engagement > 0 THEN 'nurture'
      ELSE 'lead' END AS stage
  FROM scored
)
SELECT lead_id, excluded, fit, engagement, surge, stage,
  CASE
    WHEN excluded <> '' THEN 'none'
    WHEN inquiry14 OR stage = 'sql' THEN 'field_sales'
    WHEN stage = 'mql' OR (surge AND fit >= 30) THEN 'inside_sales'
    ELSE 'marketing' END AS route
FROM staged ORDER BY lead_id
"""


def query(data_dir: str) -> str:
    competitors = ", ".join(f"'rival{i}.example.com'" for i in range(10))
    partners = ", ".join(f"'partner{i}.example.co.jp'" for i in range(5))
    return QUERY.format(as_of=AS_OF, dir=data_dir, competitors=competitors, partners=partners)


def run(data_dir: str, out: str, con: Any = None) -> int:
    import duckdb

    con = con or duckdb.connect()
    con.execute(f"COPY ({query(data_dir)}) TO '{out}' (HEADER, DELIMITER ',')")
    return int(con.execute(f"SELECT count(*) FROM read_csv('{out}')").fetchone()[0])


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
