"""engine.sql.constants: the output columns of one value, folded through the query's layers.

The fold may miss a constant but must never invent one: every column it names is
checked against DuckDB running the same query on rows that differ in everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from engine.sql import decisions
from engine.sql.constants import constant_columns
from tests.export_factory import EVENT_COLUMNS, LEAD_COLUMNS, make_rows, write_csv

from .test_sql_batch import _cp, both

LAYERS = """
WITH a AS (SELECT *, FALSE AS f, '' AS s, TRUE AS t FROM leads),
b AS (SELECT *, CASE WHEN f THEN x ELSE 'n' END AS c, NOT f AS g, CAST(NULL AS TIMESTAMPTZ) AS ts,
      COALESCE(NULL, 'k') AS k, x AS y, CASE WHEN x = 'a' THEN 'p' ELSE 'q' END AS unsure,
      CASE s WHEN '' THEN 'e' ELSE 'z' END AS simple, CASE WHEN NULL THEN 'a' ELSE 'b' END AS null_test
      FROM a)
SELECT f, s, c, g, ts, k, y, unsure, simple, null_test,
       f AND x = 'a' AS and_false, t OR x = 'a' AS or_true, f OR x = 'a' AS or_unsure,
       ts IS NULL AS is_null, NOT ts IS NULL AS not_null, x IS NULL AS x_null,
       CASE WHEN x = 'a' THEN 'p' WHEN t THEN 'r' END AS unsure_first,
       CASE WHEN f THEN 'p' WHEN t THEN 'r' END AS first_true,
       CASE WHEN NOT f THEN x END AS takes_x, 1 AS number, CAST('1' AS INT) AS cast_text,
       COALESCE(x, 'k') AS coalesce_x, COALESCE(CAST(NULL AS VARCHAR), s) AS coalesce_s, '' || s AS concat
FROM b
"""

#: What each column of LAYERS holds on every row, for the ones the fold must find.
FOLDED = {"f": False, "s": "", "c": "n", "g": True, "ts": None, "k": "k", "simple": "e", "null_test": "b",
          "and_false": False, "or_true": True, "is_null": True, "not_null": False, "first_true": "r",
          "coalesce_s": ""}


def test_layers_fold_to_their_one_value_and_nothing_else() -> None:
    tree = sqlglot.parse_one(LAYERS, dialect="duckdb")
    found = constant_columns(tree)
    assert found == FOLDED
    con = duckdb.connect()
    con.execute("CREATE TABLE leads AS SELECT * FROM (VALUES ('a'), ('b'), (NULL)) v(x)")
    rows = con.execute(LAYERS).fetchall()
    names = [p.alias_or_name for p in tree.expressions]
    for index, name in enumerate(names):
        values = {row[index] for row in rows}
        if name in FOLDED:
            assert values == {FOLDED[name]}, name
        elif name not in {"number", "cast_text", "concat"}:  # constants the fold leaves alone
            assert len(values) > 1, name  # the others really vary


def test_a_join_or_a_qualified_column_is_not_followed() -> None:
    tree = sqlglot.parse_one("WITH a AS (SELECT *, FALSE AS f FROM leads l JOIN other o ON l.x = o.x), "
                             "b AS (SELECT *, '' AS s FROM leads) SELECT f, b.s, s FROM b", dialect="duckdb")
    assert constant_columns(tree) == {"s": ""}
    chained = sqlglot.parse_one("WITH a AS (SELECT *, FALSE AS f FROM leads l JOIN other o ON l.x = o.x) "
                                "SELECT f FROM a", dialect="duckdb")
    assert constant_columns(chained) == {"f": False}  # defined by the layer itself, whatever it reads
    assert constant_columns(sqlglot.parse_one("SELECT f FROM a JOIN b USING (x)", dialect="duckdb")) == {}


@pytest.mark.parametrize("playbook", ["bench-reference", "enterprise", "smb-saas", "x-education"])
def test_every_column_found_has_that_value_in_every_output_row(playbook: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """On generated leads (varied in every field), the columns the fold names are those
    literals in the view, the table does not store them, and both backends still agree."""
    cp = _cp(Path(__file__).resolve().parents[1] / "playbooks" / f"{playbook}.yaml")
    seen: dict[str, Any] = {}
    make_table = decisions.make_table

    def recorded(con: Any, source: str, *a: Any, **k: Any) -> None:
        make_table(con, source, *a, **k)
        seen["constants"] = k.get("constants") or {}
        seen["stored"] = {c for (c,) in con.execute(
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{decisions.STORED}'")
            .fetchall()}
        seen["values"] = {name: {v for (v,) in con.execute(
            f"SELECT DISTINCT {name} FROM ({source}) q").fetchall()} for name in seen["constants"]}

    monkeypatch.setattr(decisions, "make_table", recorded)
    leads, events = make_rows(150)
    both(cp, tmp_path, write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads),
         write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events))
    assert seen["constants"], "no constant found: the test checks nothing"
    for name, value in seen["constants"].items():
        assert seen["values"][name] == {value}, name
    kept = {"queue", "queue_team"} | {n for n, v in seen["constants"].items()
                                      if v is None and n not in {"recycle_until", "due", "overdue_since"}}
    assert seen["stored"].isdisjoint(set(seen["constants"]) - kept)
