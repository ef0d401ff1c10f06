"""The Spark SQL rendering gives decide()'s rows too (local Spark; opt-in: it takes ~2 minutes).

Run with ``ENGINE_SPARK=1 pytest tests/test_sql_spark.py`` after ``pip install -e .[spark]``
(needs Java 17+). Spark sums engagement with SUM, not in history order (see
engine.sql.numeric); on one local partition the order is the input's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.compile import CompiledPlaybook
from engine.evaluate import decide
from engine.sql import build_query

from .test_sql_differential import AS_OF, PLAYBOOKS, Lead, _lead, _tables

pytestmark = pytest.mark.skipif(os.environ.get("ENGINE_SPARK") != "1", reason="set ENGINE_SPARK=1 to run")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session_module = pytest.importorskip("pyspark.sql")
    session = (
        session_module.SparkSession.builder.master("local[1]")
        .appName("engine-sql-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _frame(spark: Any, table: Any) -> Any:
    from pyspark.sql import types as T

    kinds = {
        "string": T.StringType(),
        "double": T.DoubleType(),
        "bool": T.BooleanType(),
        "int64": T.LongType(),
    }
    schema = T.StructType(
        [T.StructField(f.name, kinds.get(str(f.type), T.TimestampType()), True) for f in table.schema]
    )
    return spark.createDataFrame([tuple(r.values()) for r in table.to_pylist()], schema=schema)


def _iso(cp: CompiledPlaybook, value: datetime | None) -> str:
    return "" if value is None else value.replace(tzinfo=UTC).astimezone(cp.tz).isoformat()


def _run(spark: Any, cp: CompiledPlaybook, leads: list[Lead]) -> list[dict[str, Any]]:
    lead_table, event_table = _tables(cp, leads)
    _frame(spark, lead_table).createOrReplaceTempView("leads")
    _frame(spark, event_table).createOrReplaceTempView("events")
    sql = build_query(cp, AS_OF).tree.sql(dialect="spark")
    rows = []
    for row in spark.sql(sql).collect():
        data = row.asDict()
        for key in ("as_of", "recycle_until", "due"):
            data[key] = _iso(cp, data[key])
        rows.append(data)
    return rows


@pytest.mark.parametrize("name", sorted(PLAYBOOKS))
def test_spark_decides_like_python(spark: Any, name: str) -> None:
    cp = PLAYBOOKS[name]

    @settings(
        max_examples=1,
        derandomize=True,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        leads = [data.draw(_lead(cp, i)) for i in range(60)]
        got = _run(spark, cp, leads)
        expected = sorted(
            (decide(cp, lead, ev, AS_OF, lead_id=lid).to_row() for lid, lead, ev in leads),
            key=lambda r: r["lead_id"],
        )
        assert got == expected

    check()
