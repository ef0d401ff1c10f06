"""Every registry entry agrees with itself on every backend, driven by the registry.

For each function in ``engine.functions.FUNCTIONS`` there is a case file
``tests/function_cases/<name>.yaml`` (a test fails when one is missing): a tiny playbook
that uses the function, leads with events, and what is expected of them —

* ``values``: expressions and their value for that lead, through the compiled closures
  and through the reference interpreter (simpleeval);
* ``row``: decision-row columns, as ``decide``, the generated kernel (from Events and
  from EventColumns) and the compiled SQL query run by DuckDB each write them.

Then hypothesis (seeded) generates leads for the case's playbook, and every backend's
row must equal ``decide``'s, to the bit. Adding an entry is adding a case file: this
code then covers it.

Case file keys: ``playbook`` (text), ``numbers`` (event fields generated as numbers),
``leads``: ``id``, ``fields`` (lead fields), ``events`` (``[type, ago, {fields}]``;
``ago`` a duration such as ``3d``, or seconds, negative for after as_of),
``recycled`` (ago, for ``values`` read after a recycle), ``values``, ``row``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from engine.account_decide import decide_accounts
from engine.accounts import Member, uses_accounts
from engine.compile import CompiledPlaybook
from engine.durations import parse_seconds
from engine.evaluate import decide
from engine.events import Event, EventColumns
from engine.expr import Scope, compile_expression
from engine.expr.compile import same_value
from engine.functions import FUNCTIONS
from engine.history import History
from engine.kernel import kernel_for
from engine.sql.duckdb_backend import evaluate_duckdb

from .test_sql_differential import AS_OF, Lead, _lead, _tables, compile_text

CASES = Path(__file__).parent / "function_cases"


def _case(name: str) -> dict[str, Any]:
    path = CASES / f"{name}.yaml"
    assert path.is_file(), f"registry entry {name!r} has no case file {path.relative_to(CASES.parents[1])}"
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data


def _ago(value: Any) -> timedelta:
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = str(value)
    sign = -1 if text.startswith("-") else 1
    return timedelta(seconds=sign * parse_seconds(text.lstrip("-")))


def _leads(case: dict[str, Any], declared: dict[str, str]) -> list[Lead]:
    leads: list[Lead] = []
    seq = 0
    for spec in case["leads"]:
        events = []
        for item in spec.get("events", []):
            etype, ago, *rest = item
            fields = dict(rest[0]) if rest else {}
            events.append(Event(etype, AS_OF - _ago(ago), fields, None, seq))
            seq += 1
        fields = dict(spec.get("fields") or {})
        for name, kind in declared.items():  # YAML has no aware datetimes: ISO text
            if kind == "datetime" and isinstance(fields.get(name), str):
                fields[name] = datetime.fromisoformat(fields[name])
        leads.append((str(spec["id"]), fields, events))
    return leads


def _typed_tables(cp: CompiledPlaybook, leads: list[Lead], numbers: list[str]) -> tuple[pa.Table, pa.Table]:
    """The differential test's tables, with the number fields as DOUBLE columns (as a
    mapping's ``type: number`` reads them)."""
    texts = [(lid, lead, [Event(e.type, e.at, {k: v for k, v in e.fields.items() if k not in numbers},
                                e.id, e.seq) for e in events]) for lid, lead, events in leads]
    lead_table, event_table = _tables(cp, texts)
    rows = [e for _, _, events in leads for e in events]
    for name in numbers:
        column = pa.array([_number(e.fields.get(name)) for e in rows], pa.float64())
        event_table = event_table.set_column(event_table.schema.get_field_index(name), name, column)
    return lead_table, event_table


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def _rows_agree(cp: CompiledPlaybook, leads: list[Lead], numbers: list[str]) -> list[dict[str, Any]]:
    """decide's rows; the kernel's and DuckDB's must be the same, bit for bit."""
    if uses_accounts(cp):  # decided with their accounts; the kernel has no account form
        members = [Member(lid, lead, events) for lid, lead, events in leads]
        expected = [d.to_row() for d in decide_accounts(cp, members, AS_OF, detail=False)]
        assert kernel_for(cp) is None
    else:
        expected = [decide(cp, lead, events, AS_OF, lead_id=lid).to_row() for lid, lead, events in leads]
    kernel = kernel_for(cp)
    assert kernel is not None or uses_accounts(cp), "the case playbook has a kernel form"
    for (lid, lead, events), row in zip(leads if kernel is not None else [], expected, strict=False):
        for given_events in (events, EventColumns.from_events(events)):
            got = kernel.decide(lead, given_events, AS_OF, lid)
            if got is None:  # repeated event ids are decide's job
                ids = [e.id for e in events if e.id is not None]
                assert len(set(ids)) != len(ids), lid
                continue
            assert got.to_row() == row, (lid, lead, events)
    sql = evaluate_duckdb(cp, *_typed_tables(cp, leads, numbers), AS_OF).to_pylist()
    by_id = {row["lead_id"]: row for row in expected}
    assert len(sql) == len(by_id)
    for mine in sql:
        theirs = by_id[mine["lead_id"]]
        assert mine == theirs, {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        for key in ("fit", "engagement", "priority"):  # 0.1 == 0.1 but also the same bits
            assert repr(mine[key]) == repr(theirs[key])
    return expected


def test_every_case_file_names_a_registry_entry() -> None:
    assert sorted(p.stem for p in CASES.glob("*.yaml")) == sorted(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_case_file(name: str) -> None:
    case = _case(name)
    cp = compile_text(case["playbook"], f"{name}.yaml")
    assert name in {f for expr in _expressions(cp) for f in expr.functions}, "the playbook uses it"
    leads = _leads(case, dict(cp.playbook.lead.fields))
    numbers = list(case.get("numbers", []))
    rows = _rows_agree(cp, leads, numbers)
    checked = 0
    for spec, (lid, lead, events), row in zip(case["leads"], leads, rows, strict=True):
        for key, value in (spec.get("row") or {}).items():
            assert row[key] == value and type(row[key]) is type(value), (lid, key, row[key], value)
            checked += 1
        for source, value in (spec.get("values") or {}).items():
            expr, issues = compile_expression(source, cp.vocabulary, "recycle", "any")
            assert expr is not None, [str(i) for i in issues]
            values: dict[str, Any] = {"lead": lead, "lists": cp.lists}
            if "recycled" in spec:
                values["recycled_at"] = AS_OF - _ago(spec["recycled"])
            personas = set(filter(None, str(row["personas"]).split(";")))
            scope = Scope(values, History(events, AS_OF), personas.__contains__, cp.content_stage_of)
            got, reference = expr(scope), expr.reference(scope)
            assert same_value(got, value) and type(got) is type(value), (lid, source, got, value)
            assert same_value(reference, value), (lid, source, reference, value)
            checked += 1
    assert checked, "a case expects something"


def _expressions(cp: CompiledPlaybook) -> list[Any]:
    from engine.sql.support import expressions

    return [expr for _, _, expr in expressions(cp)]


@st.composite
def _numbered_lead(draw: st.DrawFn, cp: CompiledPlaybook, index: int, numbers: list[str]) -> Lead:
    """The differential test's generated lead, with number fields on events that declare them."""
    lid, lead, events = draw(_lead(cp, index))
    pool = st.one_of(
        st.none(),
        st.integers(-(10**6), 10**12),
        st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.1, 0.2, 0.3, -0.1, 1e-10, 2.5e-10, 7, 1e15, -1e15, 2**53 + 1]),
        st.sampled_from(["12", "text"]),  # text in a number field: never summed
    )
    for event in events:
        for name in numbers:
            if name in cp.playbook.events[event.type].fields:
                value = draw(pool)
                if value is not None:
                    event.fields[name] = value
    return lid, lead, events


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_generated_leads(name: str) -> None:
    case = _case(name)
    cp = compile_text(case["playbook"], f"{name}.yaml")
    numbers = list(case.get("numbers", []))

    @settings(max_examples=6, derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        count = data.draw(st.integers(1, 40))
        leads = [data.draw(_numbered_lead(cp, i, numbers)) for i in range(count)]
        _rows_agree(cp, leads, numbers)

    check()


FILES = Path(__file__).parent / "function_cases_files"


def test_sum_and_avg_from_a_csv_export_on_both_backends(tmp_path: Path) -> None:
    """Through the readers: a number field mapped ``type: number`` ("2,500", full-width digits,
    an empty cell; text is a rejected row), both backends of ``engine evaluate`` write the
    same bytes, and the stages say what sum() and avg() made of it."""
    from click.testing import CliRunner

    from engine.cli import cli

    (tmp_path / "leads.csv").write_text("lead_id,Title\nL1,VP\nL2,CTO\nL3,x\nL4,y\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text(
        "lead_id,at,Amount\n"
        "L1,2026-10-01T00:00:00Z,1000.1\nL1,2026-10-02T00:00:00Z,0.2\n"  # 1000.3 within 90d: big
        'L2,2026-10-01T00:00:00Z,"2,500"\nL2,2026-10-03T00:00:00Z,\n'  # avg 2500 of one number
        "L3,2026-10-01T00:00:00Z,lots\n"  # rejected: not a number
        "L4,2026-10-01T00:00:00Z,１０００\nL4,2026-10-01T00:00:00Z,0.2\n",  # full-width 1000
        encoding="utf-8")
    outputs = []
    for backend in ("duckdb", "python"):
        out = tmp_path / backend / "d.csv"
        result = CliRunner().invoke(cli, [
            "evaluate", str(FILES / "playbook.yaml"), "--mapping", str(FILES / "mapping.yaml"),
            "--leads", str(tmp_path / "leads.csv"), "--events", str(tmp_path / "events.csv"),
            "--as-of", "2026-10-28", "--out", str(out), "--backend", backend], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "1 rejected" in result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    stages = {line.split(",")[0]: line.split(",")[9] for line in outputs[0].decode().splitlines()[1:]}
    assert stages == {"L1": "big", "L2": "steady", "L3": "lead", "L4": "lead"}
