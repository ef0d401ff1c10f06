"""SPEC.md's reference workload hand-written with Polars' lazy API.

The baseline an engineer would write with a DataFrame library instead of the engine (an
open issue asks the engine to beat it at 100k and 1M leads): one aggregate per lead over
its events, left-joined to the leads, the same semantics as spec_duckdb.py (everything
read as strings, ``employees`` cast non-strictly, engagement rounded half-to-even to two
decimals). The plan runs on Polars' streaming engine, so 30M events need not fit in
memory at once. ``bench_evaluate.py`` checks it gives the same answers as spec_duckdb.py.

    python bench/spec_polars.py DATA_DIR OUT.csv
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import polars as pl

AS_OF = datetime(2026, 11, 1)  # naive, as the timestamps are parsed (their 'Z' is literal)
AS_OF_EPOCH = int((AS_OF - datetime(1970, 1, 1)).total_seconds())
DAY = 86400
COMPETITORS = [f"rival{i}.example.com" for i in range(10)]
PARTNERS = [f"partner{i}.example.co.jp" for i in range(5)]
FREEMAIL = ["gmail.com", "yahoo.co.jp", "outlook.com", "hotmail.com"]
INDUSTRIES = ["software", "manufacturing", "finance"]
STUDENT = "(?i)student|学生"
SENIOR = "部長|Director|VP|Head"
MANAGER = "課長|Manager"


def weight() -> pl.Expr:
    """An event's weight by type (and content)."""
    kind, content = pl.col("type"), pl.col("content_id")
    return (
        pl.when((kind == "page_view") & (content == "pricing")).then(5)
        .when(kind.is_in(["page_view", "email_open"])).then(1)
        .when(kind == "email_click").then(3)
        .when((kind == "content_download") & (content == "company-profile")).then(20)
        .when((kind == "content_download") & content.str.starts_with("case-study-")).then(12)
        .when(kind == "content_download").then(8)
        .when(kind == "webinar_attend").then(10)
        .when(kind == "trial_signup").then(25)
        .when(kind == "quote_request").then(30)
        .when(kind == "inquiry").then(40)
        .otherwise(0)
    )


def per_lead(data_dir: Path) -> pl.LazyFrame:
    """One row per lead with events at or before AS_OF: decayed engagement and the flags."""
    occurred = pl.col("occurred_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us")
    kind, age = pl.col("type"), pl.col("age")
    return (
        pl.scan_csv(data_dir / "events.csv", infer_schema=False)
        .with_columns(age=AS_OF_EPOCH - occurred.dt.epoch("s"))
        .filter(age >= 0)
        .group_by("lead_id")
        .agg(
            engagement_raw=(weight() * pl.lit(0.5).pow(age.cast(pl.Float64) / DAY / 30)).sum(),
            recent=(age < 7 * DAY).sum(),
            prior=((age >= 7 * DAY) & (age < 14 * DAY)).sum(),
            unsubscribed=(kind == "unsubscribe").any(),
            hot30=(kind.is_in(["quote_request", "inquiry"]) & (age < 30 * DAY)).any(),
            inquiry14=((kind == "inquiry") & (age < 14 * DAY)).any(),
            profile30=((kind == "content_download") & (pl.col("content_id") == "company-profile")
                       & (age < 30 * DAY)).any(),
        )
    )


def decisions(data_dir: Path) -> pl.LazyFrame:
    employees, title = pl.col("employees"), pl.col("title")
    fit, engagement, excluded = pl.col("fit"), pl.col("engagement"), pl.col("excluded")
    qualified = (fit >= 30) & (engagement >= 40)
    leads = pl.scan_csv(data_dir / "leads.csv", infer_schema=False).select(
        "lead_id", "email", "company_domain", "industry", "country",
        employees.cast(pl.Int64, strict=False), title.fill_null(""),
    )
    return (
        leads.join(per_lead(data_dir), on="lead_id", how="left")
        .with_columns(pl.col("unsubscribed", "hot30", "inquiry14", "profile30").fill_null(False))
        .select(
            "lead_id", "hot30", "inquiry14", "profile30",
            excluded=pl.when(pl.col("company_domain").is_in(COMPETITORS)).then(pl.lit("competitor"))
            .when(pl.col("company_domain").is_in(PARTNERS)).then(pl.lit("partner"))
            .when(title.str.contains(STUDENT)).then(pl.lit("student"))
            .when(pl.col("unsubscribed")).then(pl.lit("unsubscribed"))
            .when(pl.col("email").str.split("@").list.get(1, null_on_oob=True).is_in(FREEMAIL)
                  & employees.is_null()).then(pl.lit("freemail_no_company"))
            .otherwise(pl.lit("")),
            fit=pl.min_horizontal(
                60,
                pl.when(pl.col("industry").is_in(INDUSTRIES)).then(20).otherwise(0)
                + pl.when(employees >= 1000).then(25).when(employees >= 100).then(15)
                .when(employees >= 10).then(5).otherwise(0)
                + pl.when(title.str.contains(SENIOR)).then(20)
                .when(title.str.contains(MANAGER)).then(10).otherwise(0)
                + pl.when(pl.col("country") == "JP").then(5).otherwise(0),
            ).cast(pl.Float64),
            engagement=pl.min_horizontal(100.0, pl.col("engagement_raw").fill_null(0.0).round(2)),
            surge=((pl.col("recent") >= 3) & (pl.col("recent") >= 2 * pl.col("prior"))).fill_null(False),
        )
        .with_columns(
            stage=pl.when(excluded != "").then(pl.lit("excluded"))
            .when(qualified & pl.col("hot30")).then(pl.lit("sql"))
            .when(qualified | pl.col("profile30")).then(pl.lit("mql"))
            .when(engagement > 0).then(pl.lit("nurture"))
            .otherwise(pl.lit("lead")),
        )
        .select(
            "lead_id", "excluded", "fit", "engagement", "surge", "stage",
            route=pl.when(excluded != "").then(pl.lit("none"))
            .when(pl.col("inquiry14") | (pl.col("stage") == "sql")).then(pl.lit("field_sales"))
            .when((pl.col("stage") == "mql") | (pl.col("surge") & (fit >= 30))).then(pl.lit("inside_sales"))
            .otherwise(pl.lit("marketing")),
        )
        .sort("lead_id")
    )


def run(data_dir: str, out: str) -> int:
    """Write the decisions to ``out`` through Polars' streaming engine (``sink_csv``). With
    polars 2.1, ``collect().write_csv(out)`` instead took the same time at 100k (0.76× the
    DuckDB query against 0.78×) and 11 MiB more."""
    decisions(Path(data_dir)).sink_csv(out)
    return int(pl.scan_csv(out, infer_schema=False).select(pl.len()).collect().item())


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
