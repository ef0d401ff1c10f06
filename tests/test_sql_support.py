"""The validate-time check of SQL support agrees with the compiler it mirrors.

``engine.sql.support`` must find a construct exactly when ``build_query`` raises
NoSqlForm, in the same words, or ``engine validate`` would warn about playbooks the SQL
backends run (or stay silent about ones they refuse).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.sql import NoSqlForm, build_query
from engine.sql.support import gaps
from engine.validate import validate_path

from .conftest import PLAYBOOKS, ROOT

BENCH = (PLAYBOOKS / "bench-reference.yaml").read_text(encoding="utf-8")
JAPAN = 'when: lead.country == "JP"'
#: One variant of the benchmark playbook per construct without a SQL form.
VARIANTS = {
    "bracket-glob": BENCH.replace('"case-study-*"', '"case-study-[0-9]*"'),
    "pattern-not-literal": BENCH.replace(JAPAN, "when: 'matches(lead.country, lead.title)'"),
    "filter-not-literal": BENCH.replace(JAPAN, "when: 'count(\"page_view\", content=lead.title) > 0'"),
    "list-outside-in": BENCH.replace(JAPAN, "when: 'lists.target_industries == lead.country'"),
    "two": BENCH.replace('"case-study-*"', '"case-study-[0-9]*"').replace(
        JAPAN, "when: 'matches(lead.country, lead.title)'"),
}


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    paths = sorted(PLAYBOOKS.glob("*.yaml")) + sorted((ROOT / "tests" / "sql_cases").glob("*.yaml"))
    for name, text in VARIANTS.items():
        path = tmp_path / f"variant-{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def test_support_check_agrees_with_the_compiler(corpus: list[Path]) -> None:
    refused = 0
    for path in corpus:
        cp = validate_path(path).compiled
        if cp is None:
            continue
        found = [what for _, what in gaps(cp)]
        try:
            build_query(cp)
        except NoSqlForm as error:
            refused += 1
            assert str(error) in found, (path.name, str(error), found)
        else:
            assert found == [], (path.name, found)
    assert refused >= 4  # the variants really exercise the check


def test_validate_warns_with_position_and_code(corpus: list[Path]) -> None:
    path = next(p for p in corpus if p.name == "variant-two.yaml")
    result = validate_path(path)
    warnings = [d for d in result.diagnostics if d.code == "W-NO-SQL-FORM"]
    assert result.ok and len(warnings) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    for warning in warnings:
        assert warning.severity.value == "warning" and "--backend python" in warning.message
    glob = next(w for w in warnings if "bracket globs" in w.message)
    assert "case-study-[0-9]*" in lines[glob.line - 1][glob.col - 1:]
    pattern = next(w for w in warnings if "matches()" in w.message)
    assert "matches(lead.country, lead.title)" in lines[pattern.line - 1]
    assert all(not any(d.code == "W-NO-SQL-FORM" for d in validate_path(p).diagnostics)
               for p in sorted(PLAYBOOKS.glob("*.yaml")))
