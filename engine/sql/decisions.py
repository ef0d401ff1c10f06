"""Stage 4 of the SQL batch path: the decisions table → summary, queues and output, in DuckDB.

The decision rows never pass through Python one by one: the summary is a few
``GROUP BY``\\ s over the table, each team's queue is ranked by the queue's key in SQL
(:func:`place_queues`, which also fills the ``queue`` columns), and a CSV output is
written by ``COPY … TO``. The CSV bytes are :mod:`engine.io.writers`' own: each cell is
spelled as ``format_cell`` spells it (DuckDB prints a DOUBLE as ``repr`` does, checked by
tests/test_sql_decisions.py), text cells get the formula guard, and each row is quoted as
Python's ``csv`` module quotes it (minimal; every cell when a cell holds a ``\\r``), then
written as one pre-built line. JSONL and Parquet go through the Python writers, fed in
Arrow batches, so their bytes stay the Python path's too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.batch import DECISION_COLUMNS, NOT_TEXT, Summary, write_decisions
from engine.decision import ROW, Decision, Handoff, Nurture, Recycle
from engine.diagnostics import EngineError
from engine.io import file_format
from engine.io.scratch import stall_point
from engine.model import Playbook
from engine.queues import TeamQueue, key_of, team_order
from engine.sql.inputs import literal, quote

#: The decisions: output columns, ``__row`` (file order) and ``__due`` (the queue key). A view
#: of FIXED, its week's columns placed (:func:`place_queues`); a table in tests.
TABLE = "decisions"
#: STORED, the table the query fills, with the columns of one value as literals (:func:`make_table`).
FIXED = "decisions__fixed"
STORED = "decisions__stored"
#: The week's columns: placed after the query (:func:`place_queues`).
_QUEUE_COLUMNS = ("queue", "queue_team")
_ROW_NAMES = frozenset(column.name for column in ROW)
#: ``engine.io.writers._NUMBER`` in RE2 (``\\d`` is any Unicode digit in Python's ``re``).
_NUMBER = r"[+-]?(?:\p{Nd}+\.?\p{Nd}*|\.\p{Nd}+)(?:[eE][+-]?\p{Nd}+)?"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Their code points, as ``ascii()`` gives a cell's first (0 for '').
_FORMULA_CODES = ", ".join(str(ord(c)) for c in _FORMULA_START)
#: Characters of _FORMULA_START and the delimiters as an RE2 character class spells them.
_RE2_ESCAPES = {"-": "\\-", "\t": "\\t", "\r": "\\r"}
_PLAIN_TYPES = {"VARCHAR", "DOUBLE", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
#: Text columns of few values — the run's instant, and the playbook's names (rule ids,
#: stages, teams, tracks, contents, queue states) alone or joined — checked once per distinct
#: value rather than once per row (:func:`_plain_columns`).
FEW_VALUES = ("as_of", "excluded", "personas", "stage", "owner", "recycle_reason", "route", "handoff_rule",
              "rules", "nurture_track", "next_content", "queue", "queue_team")
#: At most this many distinct combinations of FEW_VALUES columns are read in one statement
#: (:func:`_distinct_values`).
COMBINATIONS = 4096


def with_row(tree: Any) -> Any | None:
    """``tree`` (changed in place: the caller's own copy) also selecting each lead's
    ``__row`` (file order), read from ``leads`` by ``lead_facts`` and carried through the
    layers, which select ``*``; None, and ``tree`` unchanged, when some layer does not.
    :func:`make_table` then needs no join back to the decided leads, 0.5 s of CPU at 1M
    leads (issue #17)."""
    from sqlglot import exp

    ctes = list(tree.ctes)
    names = [cte.alias for cte in ctes]
    if "lead_facts" not in names:
        return None
    start = names.index("lead_facts")
    body = ctes[start].this
    if not isinstance(body, exp.Select) or (body.args["from_"].this.alias_or_name != "l"):
        return None
    if not all(isinstance(cte.this, exp.Select) and any(isinstance(e, exp.Star) for e in cte.this.expressions)
               for cte in ctes[start + 1:]):
        return None
    body.select(exp.column("__row", table="l"), copy=False)
    return tree.select(exp.column("__row"), copy=False)


def split_scans(con: Any) -> None:
    """Let the lead-level statements scan their tables on every thread, however small.

    DuckDB splits a table scan by row group (122,880 rows): with 100k leads every
    statement from here on (the decisions table, the summary, the queues, the CSV) ran on
    one thread. ``verify_parallelism`` — documented among DuckDB's pragmas for its own
    tests, "force parallel query processing" — splits it by vector (2,048 rows) instead:
    at 100k leads 0.90× the wall time of a run, the same CPU (issue #17). The answers do
    not change: the insertion order a statement keeps is kept all the same. A DuckDB
    without the pragma just runs as before."""
    import contextlib

    from engine.sql.opening import driver

    with contextlib.suppress(driver().Error):
        con.execute("PRAGMA verify_parallelism")


def make_table(con: Any, source: str, as_of: str, zone: str, has_row: bool = False,
               constants: dict[str, Any] | None = None) -> dict[str, str | bool]:
    """``decisions``: the query's rows, timestamps spelled as ``Decision.to_row``, with file
    order: the source's own ``__row`` (``has_row``, :func:`with_row`) or the decided lead's.

    ``constants`` (:func:`engine.sql.constants.constant_columns`): the columns every row
    has the same value in; they, and the run's instant, are literals of the view rather
    than columns of the table (a column of 1M equal cells each: issue #17). Returns those
    columns' values, for :func:`write` (``fixed``)."""
    from engine.sql.zones import iso_sql

    constants = constants or {}
    fixed: dict[str, str | bool] = {**_fixed(constants), "as_of": as_of}  # the instant, spelled once
    stored = []
    for column in ROW:
        name = column.name
        if name in fixed:
            continue
        if column.instant:
            stored.append(f"{iso_sql('q.' + quote(name), zone)} AS {name}")
        else:
            stored.append(f"q.{quote(name)}")
    row, joined = ("q.__row", "") if has_row else ("d.__row", " JOIN decided_leads d USING (lead_id)")
    no_due = "due" in constants and constants["due"] is None  # no handoff has an SLA
    sql = (f"CREATE OR REPLACE TEMP TABLE {STORED} AS SELECT {', '.join(stored)}, {row}"
           f"{'' if no_due else ', q.due AS __due'} FROM {source} q{joined}")
    try:
        con.execute(sql)
    except Exception as error:
        raise EngineError(f"DuckDB could not evaluate the playbook query: {error}") from None
    columns = [f"{_sql(fixed[c.name])} AS {c.name}" if c.name in fixed else quote(c.name) for c in ROW]
    due = "CAST(NULL AS TIMESTAMPTZ) AS __due" if no_due else "__due"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {FIXED} AS SELECT {', '.join(columns)}, __row, {due} "
                f"FROM {STORED}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS SELECT * FROM {FIXED}")
    return fixed


def _fixed(constants: dict[str, Any]) -> dict[str, str | bool]:
    """The output columns of one value, as the value the table would hold: text, a
    boolean, or an empty instant (``Decision.to_row`` spells a missing instant as ''). A
    NULL of another column's type stays stored (its type is DuckDB's)."""
    fixed: dict[str, str | bool] = {}
    instants = {column.name for column in ROW if column.instant}
    for name, value in constants.items():
        if name in _QUEUE_COLUMNS or name not in _ROW_NAMES:
            continue
        if name in instants:
            if value is None:
                fixed[name] = ""
        elif isinstance(value, (bool, str)):
            fixed[name] = value
    return fixed


def _sql(value: str | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return literal(value)


def summarize(con: Any, summary: Summary) -> None:
    """The counts ``record_decision`` makes, as aggregates (new keys in first-seen order)."""
    # one statement of grouping sets, the total and each column's (the five apart cost
    # twice the time at 1,000 leads; issue #17)
    tallies = ((summary.stages, "stage", False), (summary.routes, "route", False),
               (summary.excluded, "excluded", True), (summary.recycled, "recycle_reason", True))
    columns = [column for _, column, _ in tallies]
    every = (1 << len(columns)) - 1  # GROUPING_ID's bit is set for each column a set leaves out
    listed = ", ".join(columns)
    rows = con.execute(f"SELECT GROUPING_ID({listed}), {listed}, count(*), min(__row) FROM {TABLE} "
                       f"GROUP BY GROUPING SETS ((), {', '.join(f'({c})' for c in columns)})").fetchall()
    summary.decided = sum(int(row[-2]) for row in rows if row[0] == every)
    if summary.decided:
        stall_point("deciding")  # a test hook (outputs about to be written); see engine.io.scratch
    for index, (counts, _, named) in enumerate(tallies):
        grouped = every ^ (1 << (len(columns) - 1 - index))
        keyed = sorted((row for row in rows if row[0] == grouped), key=lambda row: row[-1])
        for key, count in ((row[1 + index], int(row[-2])) for row in keyed):  # first seen first
            if key is not None and (key != "" or not named):
                counts[key] = counts.get(key, 0) + count
    accounts = summary.accounts
    if accounts is not None:  # AccountCounts.record's counts (engine.batch)
        rules = list(accounts.per_account) or [""]
        marks = ", ".join("?" for _ in rules)
        alone, handoffs, listed = con.execute(
            f"SELECT count(*) FILTER (WHERE account = ''), "
            f"count(*) FILTER (WHERE handoff_rule IN ({marks}) AND handoff_rule <> ''), "
            f"count(*) FILTER (WHERE account_primary <> '') FROM {TABLE}", rules).fetchall()[0]
        accounts.keys = {key for (key,) in con.execute(
            f"SELECT DISTINCT account FROM {TABLE} WHERE account <> ''").fetchall()}
        accounts.alone, accounts.handoffs, accounts.listed = int(alone), int(handoffs), int(listed)


#: The work queue's order (engine.queues.sort_key) over the decisions table.
_QUEUE_ORDER = "d.priority DESC NULLS LAST, d.__due ASC NULLS LAST, d.lead_id, d.__row"


def place_queues(con: Any, summary: Summary, playbook: Playbook) -> None:
    """Where every handoff stands this week — ``engine.queues.place`` in SQL — then counts and queues."""
    teams = summary.teams
    if any(queue.keep or queue.next is not None for queue in teams.values()):
        routed_in = _place_in_turn(con, summary, playbook)
    else:
        _place_alone(con, summary)
        routed_in = {}
    lives = {team: (int(handed), int(overdue), int(accepted)) for team, handed, overdue, accepted
             in con.execute(f"SELECT route, count(*), count(*) FILTER (WHERE overdue), count(*) FILTER "
                            f"(WHERE handoff_accepted) FROM {TABLE} WHERE handoff_rule <> '' GROUP BY route")
             .fetchall()}
    for team, queue in teams.items():
        queue.handoffs, queue.overdue, queue.accepted = lives.get(team, (0, 0, 0))
        queue.overflow_in = int(routed_in.get(team, 0))
        if queue.keep and queue.handoffs + queue.overflow_in:
            _keep_queue(con, queue)
    nurture = summary.nurture
    if nurture is not None:  # every nurtured lead, in file order as the per-lead path offers them
        names = ", ".join(DECISION_COLUMNS)
        cursor = con.execute(f"SELECT {names}, __row FROM {TABLE} WHERE handoff_rule = '' "
                             "AND nurture_track <> '' ORDER BY __row")
        columns = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(10_000):
            for values in batch:
                row = dict(zip(columns, values, strict=True))
                nurture.offer(_decision(row), int(row.pop("__row")))


def _place_alone(con: Any, summary: Summary) -> None:
    """The week's columns when no team routes its overflow on and no queue file is asked
    for: each handoff stays with its route's team, worked this week unless beyond a
    capped team's best ``capacity`` (those are a top-N each, not a ranking of every
    handoff), and the columns are expressions of ``decisions`` over that short list
    rather than an ``UPDATE`` of every handoff (issue #17: eleven statements, 1 s of CPU
    at 1M leads, down to two)."""
    capped = {team: int(q.capacity) for team, q in summary.teams.items() if q.capacity is not None}
    unlimited = [team for team, q in summary.teams.items() if q.capacity is None]
    status = []
    if unlimited:
        status.append(f"WHEN route IN ({', '.join(literal(t) for t in unlimited)}) THEN 'queued'")
    if capped:
        best = " UNION ALL ".join(
            f"(SELECT d.__row FROM {FIXED} d WHERE d.handoff_rule <> '' AND d.route = {literal(team)} "
            f"ORDER BY {_QUEUE_ORDER} LIMIT {capacity})" for team, capacity in capped.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE queue_best AS {best}")
        status.append(f"WHEN route IN ({', '.join(literal(t) for t in capped)}) THEN CASE WHEN __row IN "
                      "(SELECT __row FROM queue_best) THEN 'queued' ELSE 'carried_over' END")
    queue = f"CASE {' '.join(status)} END" if status else "CAST(NULL AS VARCHAR)"  # a route no team has: none
    con.execute(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS SELECT * REPLACE ("
                f"CASE WHEN handoff_rule <> '' THEN {queue} ELSE queue END AS queue, "
                f"CASE WHEN handoff_rule <> '' THEN route ELSE queue_team END AS queue_team) FROM {FIXED}")


def _place_in_turn(con: Any, summary: Summary, playbook: Playbook) -> dict[str, int]:
    """The week's columns, team by team in ``team_order`` (a team before the team its
    overflow is routed to): each ranks the handoffs it holds — its own, and what earlier
    teams routed to it — in queue order; the first ``capacity`` are worked this week, the
    rest carried over or routed on. ``queue_passes`` keeps each team's ranking: the queue
    files are read from it. Returns how many handoffs each team was routed from others."""
    con.execute("CREATE OR REPLACE TEMP TABLE queue_place AS SELECT __row, route AS team, route AS holder, "
                f"CAST(NULL AS VARCHAR) AS status FROM {TABLE} WHERE handoff_rule <> ''")
    con.execute("CREATE OR REPLACE TEMP TABLE queue_passes "
                "(__row BIGINT, team VARCHAR, n BIGINT, beyond BOOLEAN)")
    for team in team_order(playbook, summary.teams):
        queue = summary.teams[team]
        if queue.capacity is None and not queue.keep:
            # no capacity and no queue file: nobody is beyond, and no one reads the ranking
            # (a sort of most leads at 1M, for the team that nurtures them)
            con.execute("INSERT INTO queue_passes SELECT __row, ?, NULL, FALSE FROM queue_place "
                        "WHERE holder = ? AND status IS NULL", [team, team])
        else:
            capacity = "NULL" if queue.capacity is None else str(int(queue.capacity))
            con.execute(
                f"INSERT INTO queue_passes SELECT p.__row, ?, row_number() OVER (ORDER BY {_QUEUE_ORDER}) "
                f"AS n, COALESCE(n > {capacity}, FALSE) FROM queue_place p JOIN {TABLE} d USING (__row) "
                "WHERE p.holder = ? AND p.status IS NULL", [team, team])
        passed = "SELECT __row FROM queue_passes WHERE team = ? AND {} beyond"
        con.execute("UPDATE queue_place SET status = CASE WHEN team = holder THEN 'queued' "
                    f"ELSE 'overflow' END WHERE __row IN ({passed.format('NOT')})", [team])
        if queue.next is not None:
            con.execute(f"UPDATE queue_place SET holder = ? WHERE __row IN ({passed.format('')})",
                        [queue.next.team, team])
        else:
            con.execute("UPDATE queue_place SET status = 'carried_over' "
                        f"WHERE __row IN ({passed.format('')})", [team])
    con.execute(f"UPDATE {STORED} SET queue = p.status, queue_team = p.holder FROM queue_place p "
                f"WHERE {STORED}.__row = p.__row")
    return dict(con.execute("SELECT q.team, count(*) FROM queue_passes q JOIN queue_place p "
                            "USING (__row) WHERE p.team <> q.team GROUP BY q.team").fetchall())


def _keep_queue(con: Any, queue: TeamQueue) -> None:
    """A team's queue-file entries, from its ranking (beyond capacity only for an overflow file)."""
    beyond = "" if queue.disk is not None else " AND NOT q.beyond"
    cursor = con.execute(
        "SELECT d.lead_id, d.priority, d.due, d.handoff_rule, d.stage, d.fit, d.engagement, d.surge, "
        "d.handoff_accepted, d.overdue_since, CASE WHEN d.route = q.team THEN '' ELSE d.route END, "
        "d.__row, q.beyond "
        f"FROM queue_passes q JOIN {TABLE} d USING (__row) WHERE q.team = ?{beyond} ORDER BY q.n",
        [queue.team])
    while batch := cursor.fetchmany(10_000):
        for (lead_id, priority, due, rule, stage, fit, engagement, surge, accepted, overdue_since, origin,
             row, past) in batch:
            values = (lead_id, priority, due or "", rule, stage, fit, engagement, surge, accepted,
                      overdue_since or "", origin)
            queue.put(key_of(priority, due or None, lead_id, int(row)), values, bool(past))


def write(con: Any, staging: Path, csv_guard: bool, fixed: dict[str, str | bool] | None = None) -> None:
    """The decisions file in the leads file's order: CSV by DuckDB, the other formats via Arrow.

    ``fixed``: columns known to hold one value (:func:`make_table`'s answer)."""
    if file_format(staging) == "csv":
        delimiter = "\t" if staging.suffix.lower() == ".tsv" else ","
        lines = _csv_lines(con, delimiter, csv_guard, fixed or {})
        if lines is not None:
            header = _join(list(DECISION_COLUMNS), delimiter)
            # one VARCHAR column of finished lines, written as they are (no quoting of its own)
            con.execute(f"COPY (SELECT line FROM (SELECT -1 AS k, {literal(header)} AS line UNION ALL "
                        f"SELECT __row, line FROM ({lines})) ORDER BY k) "
                        f"TO {literal(str(staging))} "
                        "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')")
            return
    write_decisions(staging, _rows(con), csv_guard=csv_guard)


def _rows(con: Any) -> Iterator[dict[str, Any]]:
    sql = f"SELECT {', '.join(DECISION_COLUMNS)} FROM {TABLE} ORDER BY __row"
    reader = con.sql(sql).to_arrow_reader(8192)
    for batch in reader:
        yield from batch.to_pylist()


def _join(cells: list[str], delimiter: str) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return out.getvalue()


def _csv_lines(con: Any, delimiter: str, csv_guard: bool, fixed: dict[str, str | bool]) -> str | None:
    """``SELECT __row, line``: each row as ``engine.io.writers._CsvOut`` writes it, in SQL;
    None if a type has no exact spelling.

    Most rows need neither quotes nor the formula guard: their line is the cells joined.
    Testing that once on the joined cells that may need care (no quote, newline or CR in
    them, one delimiter per cell boundary, no guarded cell starting with a formula
    character) is far cheaper than testing each of 29 cells (issue #17); numbers,
    booleans and the columns whose every cell was found plain (:func:`_plain_columns`) are
    left out of it; when that leaves none (a clean export), a line is the cells joined
    and nothing else is planned or run. A row failing the test, or only seeming to (a
    guarded ``-3.5``), takes the cell-by-cell spelling, the writer's by construction
    (tests/test_sql_decisions.py); its cells are spelled only for such rows."""
    # DESCRIBE rather than information_schema, whose first query in a connection costs
    # 6-9 ms more (it builds the catalogue's views; issue #17)
    types = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {TABLE}").fetchall()}
    if any(str(types.get(name, "")) not in _PLAIN_TYPES for name in DECISION_COLUMNS):
        return None
    plain_columns = _plain_columns(con, [n for n in DECISION_COLUMNS if types.get(n) == "VARCHAR"], delimiter,
                                   csv_guard, fixed)
    raw: list[str] = []
    spelled: list[str] = []
    texts: list[str] = []
    guarded: list[str] = []
    tested: list[str] = []  # text cells the row's test reads: all but plain_columns
    known = _known_cells(fixed, types, plain_columns)
    for index, name in enumerate(DECISION_COLUMNS):
        kind = str(types.get(name, ""))
        column, text, cell = quote(name), f"__r{index}", f"__c{index}"
        spelling = text
        if name in known:  # one value, written as it is in every row
            raw.append(f"{literal(known[name])} AS {text}")
        elif kind == "VARCHAR":
            raw.append(f"COALESCE({column}, '') AS {text}")
            texts.append(cell)
            if name not in plain_columns:
                tested.append(text)
            if csv_guard and name not in NOT_TEXT:
                if name not in plain_columns:
                    guarded.append(text)
                spelling = (f"(CASE WHEN ascii({text}) IN ({_FORMULA_CODES}) AND NOT "
                            f"regexp_full_match({text}, {literal(_NUMBER)}) "
                            f"THEN {literal(chr(39))} || {text} ELSE {text} END)")
        else:  # numbers and booleans: DuckDB spells them as format_cell (repr, true/false)
            raw.append(f"COALESCE(CAST({column} AS VARCHAR), '') AS {text}")
        spelled.append(f"CASE WHEN __plain THEN NULL ELSE {spelling} END AS {cell}")
    d = literal(delimiter)
    joined = _joined([known.get(name) for name in DECISION_COLUMNS], delimiter)
    texts_of = f"SELECT __row, {', '.join(raw)} FROM {TABLE}"
    if not tested:  # every text cell of every row is written as it is: the cells joined
        return f"SELECT __row, {joined} AS line FROM ({texts_of})"
    cells = [f"__c{i}" for i in range(len(DECISION_COLUMNS))]
    minimal = [f"(CASE WHEN contains({c}, {d}) OR contains({c}, '\"') OR contains({c}, chr(10)) "
               f"THEN '\"' || replace({c}, '\"', '\"\"') || '\"' ELSE {c} END)" if c in texts else c
               for c in cells]
    everything = [f"('\"' || replace({c}, '\"', '\"\"') || '\"')" for c in cells]
    has_return = " OR ".join(f"contains({c}, chr(13))" for c in texts) or "FALSE"
    # numbers and booleans never need quotes, nor do plain_columns: the test reads the rest
    test = f"concat_ws({d}, {', '.join(tested)})"
    plain = ["NOT contains(__test, '\"')", "NOT contains(__test, chr(10))", "NOT contains(__test, chr(13))",
             f"strlen(__test) - strlen(replace(__test, {d}, '')) = {max(len(tested) - 1, 0)}"]
    if guarded:  # (a cell starting with the delimiter already fails the count)
        formula = "".join(_RE2_ESCAPES.get(c, c) for c in _FORMULA_START if c != delimiter)
        edge = _RE2_ESCAPES.get(delimiter, delimiter)
        plain.append(f"NOT regexp_matches(concat_ws({d}, {', '.join(guarded)}), "
                     f"{literal(f'(^|{edge})[{formula}]')})")
    line = (f"CASE WHEN __plain THEN __line WHEN {has_return} THEN concat_ws({d}, {', '.join(everything)}) "
            f"ELSE concat_ws({d}, {', '.join(minimal)}) END")
    tested_of = (f"SELECT *, ({' AND '.join(plain)}) AS __plain "
                 f"FROM (SELECT *, {joined} AS __line, {test} AS __test FROM ({texts_of}))")
    return (f"SELECT __row, {line} AS line "
            f"FROM (SELECT __row, __line, __plain, {', '.join(spelled)} FROM ({tested_of}))")


def _known_cells(fixed: dict[str, str | bool], types: dict[str, Any],
                 plain_columns: set[str]) -> dict[str, str]:
    """The cell text of each ``fixed`` column the writer writes as it is in every row: a
    boolean as DuckDB and ``format_cell`` spell it, a text that needs no care
    (``plain_columns``). A text that does (a delimiter, a formula) stays a column, spelled
    row by row like any other."""
    known: dict[str, str] = {}
    for name, value in fixed.items():
        if isinstance(value, bool) and str(types.get(name, "")) == "BOOLEAN":
            known[name] = "true" if value else "false"
        elif isinstance(value, str) and name in plain_columns:
            known[name] = value
    return known


def _joined(cells: list[str | None], delimiter: str) -> str:
    """A line's cells joined by ``delimiter`` in SQL: ``None`` for a column's ``__r{i}``
    text, else the cell's known text. A run of known cells and the delimiters around them
    is one literal, so a clean row's line concatenates its varying cells and a handful of
    literals (issue #17: 15 of the reference playbook's 29 columns hold one value; folding
    them took the 1M-row write from 1.9 to 1.3 s of CPU, the same bytes)."""
    parts: list[str] = []
    pending = ""
    for index, text in enumerate(cells):
        if index:
            pending += delimiter
        if text is not None:
            pending += text
            continue
        if pending:
            parts.append(literal(pending))
            pending = ""
        parts.append(f"__r{index}")
    if pending:
        parts.append(literal(pending))
    return f"concat({', '.join(parts)})"


def _plain_columns(con: Any, names: list[str], delimiter: str, csv_guard: bool,
                   fixed: dict[str, str | bool] | None = None) -> set[str]:
    """Those of ``names`` whose every cell the writer writes as it is (no quotes, no guard,
    no CR), found in a pass or two over the table, so the row's test need not read them
    (issue #17: at 1M rows the test cost as much as the rest of the CSV, and the test of
    five columns of one empty value each 0.6 s of CPU more).

    The playbook's names (:data:`FEW_VALUES`) are checked exactly, once per distinct value
    (``fixed`` columns' one value is known); any other text column by a test of every
    cell in SQL that is stricter than the writer (a guarded column holding ``-3.5``
    stays in the row's test). A column with one cell needing care stays in the test."""
    from engine.io.writers import csv_line_maker

    fixed = fixed or {}
    listed = [name for name in names if name in FEW_VALUES and name not in fixed]
    others = [name for name in names if name not in FEW_VALUES and name not in fixed]
    d = literal(delimiter)
    checks = []
    for name in others:
        cell = f"COALESCE({quote(name)}, '')"
        tests = [f"contains({cell}, {s})" for s in ("'\"'", "chr(10)", "chr(13)", d)]
        if csv_guard and name not in NOT_TEXT:
            tests.append(f"ascii({cell}) IN ({_FORMULA_CODES})")
        checks.append(f"COALESCE(bool_and(NOT ({' OR '.join(tests)})), TRUE)")
    found: dict[str, Any] = _distinct_values(con, listed) if listed else {}
    if checks:  # apart: beside the plain aggregates, the DISTINCT ones cost twice as much
        row = con.execute(f"SELECT {', '.join(checks)} FROM {TABLE}").fetchall()[0]
        found.update(zip(others, row, strict=True))
    plain = {name for name in others if found[name]}
    for name in [*listed, *(n for n in names if n in fixed)]:
        line = csv_line_maker([name, "x"], csv_guard=csv_guard, tsv=delimiter == "\t")
        texts = [str(fixed[name])] if name in fixed else [value or "" for value in found[name] or ()]
        if all(line([text, "x"]) == (text + delimiter + "x", False) for text in texts):
            plain.add(name)
    return plain


def _distinct_values(con: Any, names: list[str]) -> dict[str, list[Any]]:
    """Each column's distinct values, read as the distinct combinations of all of them:
    one hash table rather than one per column (8 columns: 0.016 -> 0.003 s at 1,000 rows,
    0.026 -> 0.014 s at 100k; issue #17). Past :data:`COMBINATIONS` combinations (values
    that vary together little), each column's values are read apart instead."""
    columns = ", ".join(quote(name) for name in names)
    rows = con.execute(f"SELECT DISTINCT {columns} FROM {TABLE} LIMIT {COMBINATIONS + 1}").fetchall()
    if len(rows) <= COMBINATIONS:
        return {name: list(dict.fromkeys(row[i] for row in rows)) for i, name in enumerate(names)}
    lists = con.execute(f"SELECT {', '.join(f'list(DISTINCT {quote(n)})' for n in names)} "
                        f"FROM {TABLE}").fetchall()[0]
    return dict(zip(names, lists, strict=True))


def _decision(row: dict[str, Any]) -> Decision:
    """Enough of a :class:`Decision` for a queue, from its output row."""
    recycle = Recycle(row["recycle_reason"], "", row["recycle_until"], True, False) \
        if row["recycle_reason"] else None
    handoff = Handoff(row["handoff_rule"], row["route"], row["due"] or None, row["priority"],
                      row["handoff_accepted"], row["overdue_since"] or None) if row["handoff_rule"] else None
    nurture = Nurture(row["nurture_track"], row["next_content"] or None) if row["nurture_track"] else None
    return Decision(
        lead_id=row["lead_id"], as_of=row["as_of"], excluded=row["excluded"] or None,
        personas=tuple(p for p in row["personas"].split(";") if p), target_account=row["target_account"],
        target_lead=row["target_lead"], fit=row["fit"], fit_breakdown={}, engagement=row["engagement"],
        engagement_breakdown={}, recent=0, prior=0, surge=row["surge"], stage=row["stage"],
        owner=row["owner"], recycle=recycle, handoff=handoff, nurture=nurture,
    )
