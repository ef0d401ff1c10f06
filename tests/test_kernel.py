"""The generated batch kernel decides exactly as ``decide(..., detail=False)``, to the bit.

Leads and histories come from the SQL differential test's hypothesis strategy (window
edges to the microsecond, NULL fields, duplicate ids, events after as_of); each lead is
decided from a list of Events and from EventColumns, as the fast reader yields them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.accounts import uses_accounts
from engine.batch import DECISION_COLUMNS
from engine.compile import CompiledPlaybook
from engine.evaluate import KernelBug, decide, decide_for_row
from engine.events import Event, EventColumns
from engine.fixtures import discover_fixtures, load_fixture
from engine.io.writers import format_cell
from engine.kernel import kernel_for
from engine.replay import replay
from engine.validate import load_playbook

from .test_sql_differential import AS_OF, PLAYBOOKS, _compiled, _lead

ROOT = Path(__file__).resolve().parents[1]


def _enterprise_per_lead() -> CompiledPlaybook:
    """enterprise.yaml without its accounts (the kernel has no account form): the kernel's
    sticky-stage playbook, as it was before accounts (docs/accounts.md)."""
    from engine.build import build
    from engine.compile import compile_playbook
    from engine.load import load_text

    path = ROOT / "playbooks" / "enterprise.yaml"
    text = re.sub(r"\n  account: [^\n]*", "", path.read_text(encoding="utf-8"))
    text = re.sub(r"\n  - id: buying-group.*?(?=\n  - id: )", "", text, flags=re.S)
    doc, _ = load_text(text, str(path))
    assert doc is not None
    playbook, _ = build(doc)
    assert playbook is not None
    cp, problems = compile_playbook(playbook, path.parent, doc)
    assert cp is not None, problems
    assert not uses_accounts(cp) and kernel_for(cp) is not None
    return cp


KERNEL_PLAYBOOKS = {
    "reference": PLAYBOOKS["reference"],
    "smb-saas": PLAYBOOKS["smb-saas"],  # recycle rules, reenter_when, source SLAs
    "enterprise": _enterprise_per_lead(),  # sticky stages
    "constructs": PLAYBOOKS["constructs"],  # every construct the SQL tests use
    "life": PLAYBOOKS["life"],  # accepted and rejected handoffs, work by team, nurture tracks
    "scoring": PLAYBOOKS["scoring"],  # computed points, rule caps, engagement type caps
    "scoring-sums": PLAYBOOKS["scoring-sums"],  # the same decided from block totals
    "bench-reference": _compiled(ROOT / "playbooks" / "bench-reference.yaml"),
    "olist": _compiled(ROOT / "playbooks" / "olist.yaml"),
    "x-education": _compiled(ROOT / "playbooks" / "x-education.yaml"),
}


def _columns(events: list[Event]) -> EventColumns:
    return EventColumns.from_events(events)


@pytest.mark.parametrize("name", sorted(KERNEL_PLAYBOOKS))
def test_generated_leads_decide_the_same(name: str) -> None:
    cp = KERNEL_PLAYBOOKS[name]
    kernel = kernel_for(cp)
    assert kernel is not None, name
    fallbacks = 0
    seen: set[str] = set()

    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        nonlocal fallbacks
        for i in range(data.draw(st.integers(1, 20))):
            lead_id, lead, events = data.draw(_lead(cp, i))
            expected = decide(cp, lead, events, AS_OF, lead_id=lead_id, detail=False)
            if expected.recycle is not None:
                seen.add("reentered" if expected.recycle.reentered else
                         "held" if expected.recycle.active else "released")
            if expected.handoff is not None and expected.handoff.due:
                seen.add("due")
            if expected.handoff is not None and expected.handoff.accepted:
                seen.add("accepted")
            if expected.handoff is not None and expected.handoff.overdue_since:
                seen.add("overdue")
            if expected.nurture is not None:
                seen.add("nurture" if expected.nurture.next_content else "nurture done")
            for given_events in (events, _columns(events)):
                got = kernel.decide(lead, given_events, AS_OF, lead_id)
                ids = [e.id for e in events if e.id is not None]
                if got is None:  # only repeated event ids are decide's job, never an exception
                    assert len(set(ids)) != len(ids), (lead_id, lead, events)
                    fallbacks += 1
                    continue
                assert got == expected, (lead_id, lead, events)
                assert got.to_row() == expected.to_row()
            assert decide_for_row(cp, lead, _columns(events), AS_OF, lead_id=lead_id) == expected

    check()
    assert fallbacks  # the strategy does repeat ids: the fallback was exercised
    if cp.recycle:  # recycle states were compared, not just "none" (re-entry: below)
        assert {"held", "due"} <= seen, seen
    if name == "life":  # a handoff's life was compared, not just its absence
        assert {"accepted", "overdue", "nurture"} <= seen, seen


def test_a_handoffs_life_hand_cases() -> None:
    from .test_sql_differential import _life_leads

    cp = KERNEL_PLAYBOOKS["life"]
    kernel = kernel_for(cp)
    assert kernel is not None
    for lead_id, lead, events in _life_leads():
        expected = decide(cp, lead, events, AS_OF, lead_id=lead_id, detail=False)
        for given_events in (events, _columns(events)):
            assert kernel.decide(lead, given_events, AS_OF, lead_id) == expected, lead_id


def test_recycle_cooldown_edges_reentry_and_release() -> None:
    cp = KERNEL_PLAYBOOKS["smb-saas"]
    kernel = kernel_for(cp)
    assert kernel is not None
    day = 86400

    def at(seconds: float) -> datetime:
        return AS_OF - timedelta(seconds=seconds)

    def disposition(seconds: float, reason: str, seq: int = 0) -> Event:
        return Event("disposition", at(seconds), {"reason": reason}, None, seq)

    histories = [
        [disposition(14 * day, "no_contact")],  # the cooldown ends exactly now
        [disposition(14 * day - 1e-6, "no_contact")],  # a microsecond left
        [disposition(100 * day, "no_need"), Event("deal_lost", at(10 * day))],  # the latest wins
        [Event("deal_lost", at(day), {}, None, 0), disposition(day, "timing", 1)],  # same instant
        [disposition(20 * day, "no_budget"), Event("inquiry", at(2 * day))],  # re-entered
        [disposition(20 * day, "no_budget"), Event("email_open", at(2 * day))],  # still held
        [disposition(20 * day, "no_budget"), Event("inquiry", at(20 * day))],  # same instant: not after
        [disposition(14 * day, "no_contact"), Event("inquiry", at(3 * day))],  # released at as_of
        [disposition(20 * day, "no_contact"), Event("inquiry", at(3 * day))],  # released earlier
        [disposition(day, "other"), Event("inquiry", at(day))],  # not a recycle reason
    ]
    lead = {"email": "a@corp.example.jp", "company_domain": "corp.example.jp", "industry": "software",
            "employees": 1000, "title": "Director", "country": "JP", "lead_source": "web_form"}
    states = set()
    for events in histories:
        expected = decide(cp, lead, events, AS_OF, detail=False)
        assert kernel.decide(lead, _columns(events), AS_OF) == expected, events
        assert kernel.decide(lead, events, AS_OF) == expected, events
        if expected.recycle is not None:
            states.add((expected.recycle.active, expected.recycle.reentered))
    assert states == {(True, False), (False, False), (False, True)}


@pytest.mark.parametrize("name", sorted(PLAYBOOKS))
def test_a_rows_rules_are_the_deciding_rules(name: str) -> None:
    """to_row() builds ``rules`` inline; it must stay ``deciding_rules()`` joined (recycle too)."""
    cp = PLAYBOOKS[name]
    kinds = set()

    @settings(max_examples=200, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_lead(cp, 0))
    def check(drawn: tuple[str, dict[str, object], list[Event]]) -> None:
        lead_id, lead, events = drawn
        decision = decide(cp, lead, events, AS_OF, lead_id=lead_id)
        assert decision.to_row()["rules"] == ";".join(decision.deciding_rules())
        kinds.update(rule.partition(":")[0] for rule in decision.deciding_rules())

    check()
    assert {"stage", "handoff", "exclusion"} <= kinds


def test_csv_cells_are_the_row_as_the_writer_spells_it() -> None:
    """to_cells() (what a CSV export writes) must stay to_row() spelled by format_cell.

    Every step of every shipped fixture: together they reach each rule of the example
    playbooks, so every column is seen both filled and empty."""
    filled: set[tuple[str, bool]] = set()
    for path in discover_fixtures([ROOT / "fixtures"]):
        fixture = load_fixture(path)
        cp = load_playbook(fixture.playbook_path).compiled
        assert cp is not None
        timeline = replay(cp, fixture.lead, fixture.events, fixture.as_of, lead_id=fixture.lead_id,
                          check_at=fixture.check_at)
        for step in timeline.steps:
            row, cells = step.decision.to_row(), step.decision.to_cells()
            assert cells == [format_cell(row[name]) for name in DECISION_COLUMNS], (path, step)
            filled.update((name, cell != "") for name, cell in zip(DECISION_COLUMNS, cells, strict=True))
    optional = ("excluded", "personas", "recycle_reason", "recycle_until", "handoff_rule", "due", "priority")
    assert {(name, seen) for name in optional for seen in (True, False)} <= filled


def test_events_after_as_of_and_window_edges() -> None:
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    kernel = kernel_for(cp)
    assert kernel is not None
    lead = {"email": "a@corp.example.jp", "company_domain": "corp.example.jp", "industry": "software",
            "employees": 1000.0, "title": "Director", "country": "JP", "lead_source": "web"}
    day = 86400
    for seconds in (14 * day, 14 * day - 1e-6, 7 * day, 7 * day - 1e-6, 0, -1e-6, 30 * day, 30 * day - 1e-6):
        events = [Event("inquiry", AS_OF - timedelta(seconds=seconds), {}, None, 0),
                  Event("page_view", AS_OF - timedelta(seconds=seconds), {"content": "pricing"}, None, 1)]
        expected = decide(cp, lead, events, AS_OF, detail=False)
        assert kernel.decide(lead, _columns(events), AS_OF) == expected, seconds


def test_the_kernel_is_built_once_and_binds_no_playbook_text() -> None:
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    kernel = kernel_for(cp)
    assert kernel is not None and kernel_for(cp) is kernel
    assert "rival0.example.com" not in kernel.source and "Director" not in kernel.source
    assert "competitor" not in kernel.source  # ids are constants too, never spliced text


_GOOD_LEAD = {"employees": 500, "title": "VP Sales", "country": "JP", "industry": "software",
              "company_domain": "acme.example.jp", "lead_source": "web"}
_EVENTS = [Event("page_view", AS_OF - timedelta(days=2), {"content": "pricing"}, id="e1"),
           Event("inquiry", AS_OF - timedelta(days=1), {}, id="e2")]


def test_only_the_known_cases_go_to_decide() -> None:
    """A mistyped lead field and an undeclared event type are decide's job; the answer is decide's."""
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    kernel = kernel_for(cp)
    assert kernel is not None
    assert kernel.decide(_GOOD_LEAD, _EVENTS, AS_OF, "L1") is not None  # the kernel's own case
    mistyped = {**_GOOD_LEAD, "employees": "many"}
    undeclared = [*_EVENTS, Event("mystery", AS_OF - timedelta(hours=1), {}, id="e3")]
    for lead, events in ((mistyped, _EVENTS), (_GOOD_LEAD, undeclared)):
        for given_events in (events, _columns(events)):
            assert kernel.decide(lead, given_events, AS_OF, "L1") is None
        expected = decide(cp, lead, events, AS_OF, lead_id="L1", detail=False)
        assert decide_for_row(cp, lead, events, AS_OF, lead_id="L1") == expected


@pytest.mark.parametrize("error", [ZeroDivisionError("bug"), TypeError("bug"), KeyError("bug")])
def test_any_other_kernel_exception_is_a_bug(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Even the exception types of the known cases, when the lead shows neither case."""
    cp = KERNEL_PLAYBOOKS["bench-reference"]
    kernel = kernel_for(cp)
    assert kernel is not None

    def broken(*args: object) -> None:
        raise error

    monkeypatch.setattr(kernel, "_run", broken)
    with pytest.raises(KernelBug, match="L1"):
        decide_for_row(cp, _GOOD_LEAD, _EVENTS, AS_OF, lead_id="L1")


def test_a_kernel_bug_in_a_run_exits_3_with_nothing_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Never a reject, never a silent fallback: the run stops as a bug (exit 3, a crash log)."""
    from engine.cli import main
    from engine.kernel import Kernel

    from .export_factory import BENCH_PLAYBOOK, make_export

    leads, events = make_export(tmp_path, 20)

    def broken(self: Kernel, *args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a kernel bug")

    monkeypatch.setattr(Kernel, "decide", broken)
    out = tmp_path / "o" / "d.csv"
    code = main(["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
                 "--as-of", "2026-11-01", "--out", str(out), "--backend", "python"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "internal error" in err and "Traceback" not in err
    log = Path(err.split("details written to ")[1].split()[0])
    report = log.read_text(encoding="utf-8")
    assert "KernelBug" in report and "a kernel bug" in report
    assert not out.exists() and not (tmp_path / "o" / "d.rejects.csv").exists()
