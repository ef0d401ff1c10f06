"""Stage 4 on Spark: the playbook query, rendered by sqlglot for Spark SQL, on a Spark session.

Stages 1-3 (reading, the mapping, rejects and their order) stay in embedded DuckDB —
they decide what the Python path would reject, row by row, and are the same whatever
runs the query — and their ``leads`` and ``events`` views go to Spark as Arrow. Spark
runs ``build_query(...).tree.sql(dialect="spark")``; its answers come back as Arrow and
are joined to file order in DuckDB. Spark's session zone is UTC, so its timestamps are
instants, rendered in the playbook's zone exactly as the DuckDB path renders them.

pyspark is an optional extra (``pip install 'revenue-playbook-engine[spark]'``, Java 17+);
the session is made once per process and master URL (``local[*]`` by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError

_SESSIONS: dict[str, Any] = {}


def spark_session(master: str | None = None) -> Any:
    """A Spark session for ``master`` (default ``local[*]``), reused for the process's life."""
    url = master or "local[*]"
    if url in _SESSIONS:
        return _SESSIONS[url]
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "--backend spark needs pyspark (hint: pip install 'revenue-playbook-engine[spark]'; "
            "it also needs Java 17+)"
        ) from None
    session = (
        SparkSession.builder.master(url)
        .appName("engine-evaluate")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        # the query is one deep tree of steps (accounts add window layers): Spark's analyzer
        # needs more than its default 100 passes to resolve it, as its own error advises
        .config("spark.sql.analyzer.maxIterations", "1000")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    _SESSIONS[url] = session
    return session


def run_on_spark(con: Any, cp: CompiledPlaybook, as_of: datetime, query: Any, master: str | None) -> str:
    """Run ``query`` on Spark over DuckDB's ``leads``/``events``; return a DuckDB table of its rows."""
    spark = spark_session(master)
    for view in ("leads", "events"):
        table = con.sql(f"SELECT * FROM {view}").to_arrow_table()
        spark.createDataFrame(table).createOrReplaceTempView(view)
    try:
        result = spark.sql(query.tree.sql(dialect="spark")).toArrow()
    except Exception as error:  # Spark's errors are many classes; report, no traceback
        raise EngineError(f"Spark could not evaluate the playbook query: {error}") from None
    con.register("spark_decisions_arrow", result)
    con.execute("CREATE OR REPLACE TEMP TABLE spark_decisions AS SELECT * FROM spark_decisions_arrow")
    con.unregister("spark_decisions_arrow")
    return "spark_decisions"
