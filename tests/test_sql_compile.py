"""`engine compile`: one query per playbook, readable, valid in every target dialect; and
the constructs the SQL backend refuses, each named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from engine.cli import main
from engine.sql import TARGETS, NoSqlForm, render

from .conftest import PLAYBOOKS
from .test_sql_differential import compile_text

CASES = Path(__file__).parent / "sql_cases"
COMPILABLE = [
    PLAYBOOKS / "smb-saas.yaml",
    PLAYBOOKS / "enterprise.yaml",
    CASES / "reference.yaml",
    CASES / "constructs.yaml",
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", COMPILABLE, ids=lambda p: p.stem)
def test_output_reads_back_in_its_dialect(
    path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compile", str(path), "--target", target, "--as-of", "2026-11-01T00:00:00Z"]) == 0
    sql = capsys.readouterr().out
    assert sql.startswith(f"-- playbook {path.stem}")
    statements = [s for s in sqlglot.parse(sql, read=target) if s is not None]
    assert len(statements) == 1
    query = statements[0]
    assert isinstance(query, exp.Select)
    names = [e.alias_or_name for e in query.expressions]
    assert names[:3] == ["lead_id", "as_of", "excluded"]
    assert {"fit", "engagement", "stage", "route", "due", "priority", "recycle_until"} <= set(names)


def test_rules_are_commented_and_output_is_stable(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(PLAYBOOKS / "smb-saas.yaml")
    assert main(["compile", path]) == 0
    first = capsys.readouterr().out
    assert main(["compile", path]) == 0
    assert capsys.readouterr().out == first
    assert "/* fit size (line" in first and "lead.employees >= 1000 -> 25" in first
    assert "/* exclusions, first match: competitor:" in first
    assert "$as_of" in first  # no --as-of: a parameter


def test_every_dialect_sums_engagement_exactly_without_an_order(capsys: pytest.CaptureFixture[str]) -> None:
    """Whole 2**-32 units summed as integers: no dialect needs an ordered fold or a caveat."""
    for target in ("duckdb", "bigquery", "spark"):
        assert main(["compile", str(PLAYBOOKS / "smb-saas.yaml"), "--target", target]) == 0
        out = capsys.readouterr().out
        assert "4294967296" in out and "LIST_REDUCE" not in out.upper()
        assert "addition order" not in out and "engagement sums use SUM" not in out


def test_matches_is_a_search_in_every_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    """Snowflake's REGEXP_LIKE matches the whole text; matches() searches (as RE2's search)."""
    assert main(["compile", str(PLAYBOOKS / "smb-saas.yaml"), "--target", "snowflake"]) == 0
    out = capsys.readouterr().out
    assert "REGEXP_LIKE" not in out
    assert "REGEXP_INSTR(lead__title, 'student|学生', 1, 1, 0, 'i') > 0" in out
    assert "-- note: matches() patterns run on POSIX ERE, not RE2" in out
    assert main(["compile", str(CASES / "constructs.yaml"), "--target", "postgres"]) == 0
    out = capsys.readouterr().out
    assert "-- note: `%` is an exact fmod in double arithmetic (postgres's MOD takes integers)" in out
    assert "fmod__q" in out and "PRECISION) %" not in out


def test_ages_are_epoch_microseconds_spelled_per_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    """Ages are differences of epoch microseconds; Snowflake and Postgres have no UNIX_MICROS."""
    spelled = {
        "duckdb": 'EPOCH_US("at")',
        "spark": "UNIX_MICROS(at)",
        "bigquery": "UNIX_MICROS(`at`)",
        "snowflake": "DATE_PART(EPOCH_MICROSECOND, at)",
        "postgres": "CAST(EXTRACT(EPOCH FROM at) * 1000000 AS BIGINT)",
    }
    for target, text in spelled.items():
        assert main(["compile", str(CASES / "reference.yaml"), "--target", target]) == 0
        out = capsys.readouterr().out
        assert f"- {text} AS age_us" in out, target
        assert "DATE_DIFF" not in out.upper() and "DATEDIFF" not in out.upper()
        if target in ("snowflake", "postgres"):
            assert "UNIX_MICROS" not in out


def test_bad_as_of_is_a_usage_error() -> None:
    assert main(["compile", str(PLAYBOOKS / "smb-saas.yaml"), "--as-of", "yesterday"]) == 2


BASE = """
apiVersion: engine/v1
kind: Playbook
metadata: {name: t, version: "1"}
teams: {marketing: {}}
lead: {fields: {title: string, pattern: string}}
events: {page_view: {fields: [content]}}
content: CONTENT
stages:
  - {id: lead, owner: marketing}
  - {id: warm, owner: marketing, entry: 'ENTRY'}
"""


def _compiled(entry: str, content: str = "{}", fields: bool = True) -> object:
    text = BASE.replace("ENTRY", entry).replace("CONTENT", content)
    if not fields:
        text = text.replace("lead: {fields: {title: string, pattern: string}}", "")
    return compile_text(text, "t.yaml")


@pytest.mark.parametrize(
    ("entry", "content", "fields", "message"),
    [
        (
            "matches(lead.title, lead.pattern)",
            "{}",
            True,
            "stages.warm: matches() with a pattern that is not",
        ),
        ('count("page_view", content=lead.title) > 0', "{}", True, "`content=` filter with a value"),
        ('content_stage("warm")', '{"g[ab]": {stage: warm}}', True, "content pattern `g[ab]`: bracket globs"),
        ('lead.title == "x"', "{}", False, "`lead.title`: the SQL backend needs the playbook to declare"),
    ],
)
def test_constructs_without_sql_form_are_named(entry: str, content: str, fields: bool, message: str) -> None:
    cp = _compiled(entry, content, fields)
    with pytest.raises(NoSqlForm, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        render(cp, "duckdb")  # type: ignore[arg-type]
