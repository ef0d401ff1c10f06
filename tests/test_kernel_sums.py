"""Per-lead totals from a block's prefix sums (engine.kernel.sums) decide as ``decide`` does.

Many generated leads share one block (run boundaries are where a prefix-sum mistake
would show), and the same leads split over two blocks (a lead's totals then add up
across its parts, as engine.io.block_merge joins them).
"""

from __future__ import annotations

import csv
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.batch import BatchRequest, evaluate_export
from engine.evaluate import decide
from engine.events import Event, EventColumns
from engine.io import parse_mapping
from engine.io.block_merge import _columns
from engine.kernel import Kernel, kernel_for
from engine.kernel.source import Total
from engine.kernel.sums import block_sums
from engine.validate import load_playbook
from tests.export_factory import write_csv

from .test_kernel import KERNEL_PLAYBOOKS
from .test_kernel_decay import AS_OF_US, counted_calls, generated, weigh
from .test_sql_differential import AS_OF, _lead

ELIGIBLE = sorted(name for name, cp in KERNEL_PLAYBOOKS.items() if kernel_for(cp)._totals is not None)  # type: ignore[union-attr]


def test_which_playbooks_decide_from_totals() -> None:
    # bench-reference is SPEC.md's workload; the others need events (recycling, sticky
    # stages, due times from the latest activity, last()/content_stage())
    assert "bench-reference" in ELIGIBLE
    assert "smb-saas" not in ELIGIBLE and "enterprise" not in ELIGIBLE


Lead = tuple[str, dict[str, object], list[Event]]


def _block(leads: list[Lead], names: tuple[str, ...]) -> SimpleNamespace:
    """One block holding every lead's events, one run each, in order (``names``: its fields)."""
    at_us: list[int] = []
    types: list[str] = []
    fields: dict[str, list[Any]] = {}
    starts = [0]
    for _, _, events in leads:
        columns = EventColumns.from_events(events)
        for name in names:
            fields.setdefault(name, []).extend(columns.fields.get(name) or [None] * len(events))
        at_us += columns.at_us
        types += columns.types
        starts.append(len(at_us))
    for name in names:
        fields.setdefault(name, [])
    return SimpleNamespace(at_us=at_us, types=types, fields=fields, starts=starts, ids=None, seq0=0,
                           points=None, points_key=None, sums=None)


def _decide_all(kernel: Kernel, leads: list[tuple[str, dict[str, object], list[Event]]],
                parts: list[list[tuple[Any, int, int]]]) -> None:
    """Each lead from its parts (block, start, end) must decide as decide() does."""
    for (lead_id, lead, events), runs in zip(leads, parts, strict=True):
        columns = _columns([(lead_id, block, start, end) for block, start, end in runs])
        if len({e.id for e in events if e.id is not None}) != len([e for e in events if e.id is not None]):
            continue  # repeated ids: decide's job, whatever the path
        assert columns.sums is not None
        got = kernel.decide(lead, columns, AS_OF, lead_id)
        assert got == decide(kernel.cp, lead, events, AS_OF, lead_id=lead_id, detail=False), (lead_id, events)


@pytest.mark.parametrize("name", ELIGIBLE)
def test_totals_from_one_block_and_from_two(name: str) -> None:
    cp = KERNEL_PLAYBOOKS[name]
    kernel = kernel_for(cp)
    assert kernel is not None and kernel._run_sums is not None
    prepare = kernel.preparer(AS_OF)
    assert prepare is not None
    with counted_calls(kernel, "_run_sums") as taken:
        @generated(15)
        @given(st.data())
        def check(data: st.DataObject) -> None:
            drawn = [data.draw(_lead(cp, i)) for i in range(data.draw(st.integers(1, 12)))]
            leads = [lead for lead in drawn if lead[2]]  # a lead without events has no run
            if not leads:
                return
            whole = _block(leads, kernel.fields)
            prepare(whole)
            assert whole.sums is not None
            _decide_all(kernel, leads, [[(whole, a, b)] for a, b in pairwise(whole.starts)])
            # the same leads cut in two blocks, the middle lead's events on both sides
            middle = len(leads) // 2
            lead_id, fields, events = leads[middle]
            cut = data.draw(st.integers(1, len(events) - 1)) if len(events) > 1 else len(events)
            head, tail = events[:cut], events[cut:]
            first = _block([*leads[:middle], (lead_id, fields, head)], kernel.fields)
            second = _block([*([(lead_id, fields, tail)] if tail else []), *leads[middle + 1:]],
                            kernel.fields)
            prepare(first)
            prepare(second)
            runs = [[(first, a, b)] for a, b in pairwise(first.starts)]
            rest = [[(second, a, b)] for a, b in pairwise(second.starts)]
            if tail:
                runs[-1].extend(rest.pop(0))
            _decide_all(kernel, leads, runs + rest)

        check()
    assert taken[0] > 0


def test_blocks_that_cannot_give_totals_give_none() -> None:
    count = [Total(False, 0, None, frozenset({"a"}), (("content", "x"),))]
    args: dict[str, Any] = {"as_of_us": AS_OF_US, "half_life": 2592000, "weigh": weigh}
    known = frozenset({"a", "b"})
    assert block_sums(count, [0, 2], [AS_OF_US, AS_OF_US], ["a", "b"], {"content": ["x", None]},
                      known_types=known, **args) == [(1,)]
    assert block_sums(count, [0, 1, 2], [AS_OF_US, AS_OF_US], ["a", "zz"], {"content": ["x", "x"]},
                      known_types=known, **args) is None  # a type the playbook lacks: the loop's KeyError
    assert block_sums(count, [0, 2], [AS_OF_US, AS_OF_US], ["a", "a"], {},
                      known_types=known, **args) is None  # no such field column
    after = [AS_OF_US + 1, AS_OF_US - 1, AS_OF_US]
    assert block_sums(count, [0, 1, 3], after, ["a", "a", "a"], {"content": ["x", "x", "x"]},
                      known_types=known, **args) == [(0,), (2,)]  # after as_of: nowhere
    assert block_sums(count, [0], [], [], {"content": []}, known_types=known, **args) == []


FIT_ONLY = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: fit-only, version: 2026.11.1}
timezone: UTC
teams: {marketing: {}}
lead:
  fields: {industry: string}
events:
  page_view: {}
scoring:
  fit:
    rules:
      - {id: industry, when: lead.industry == "software", points: 20}
stages:
  - {id: lead, owner: marketing}
  - {id: fit, owner: marketing, entry: fit >= 20}
handoffs:
  - {id: all, to: marketing, when: "True"}
"""


#: The file's own columns (the canonical preset now requires the fields playbooks score on).
ONLY_INDUSTRY = parse_mapping("version: 1\nleads: {id: lead_id, fields: {industry: industry}}\n"
                              "events: {lead_id: lead_id, at: occurred_at, type: type}\n")


def test_a_playbook_that_reads_nothing_of_a_history(tmp_path: Path) -> None:
    """No engagement, no surge, no count(): zero totals, and an export still decides."""
    (tmp_path / "fit-only.yaml").write_text(FIT_ONLY, encoding="utf-8")
    cp = load_playbook(tmp_path / "fit-only.yaml").compiled
    assert cp is not None
    kernel = kernel_for(cp)
    assert kernel is not None and kernel._totals == [] and kernel._run_sums is not None
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "industry"],
                      [["L1", "software"], ["L2", "retail"], ["L3", ""]])
    events = write_csv(tmp_path / "events.csv", ["lead_id", "occurred_at", "type"],
                       [["L1", "2026-10-01T00:00:00Z", "page_view"],
                        ["L3", "2026-10-02T00:00:00Z", "page_view"]])
    with counted_calls(kernel, "_run_sums") as taken:
        evaluate_export(cp, BatchRequest(leads=leads, events=events, out=tmp_path / "d.csv", as_of=AS_OF,
                                         mapping=ONLY_INDUSTRY))
    assert taken[0] == 2  # the two leads with events; L2 has none (no run, no totals)
    with open(tmp_path / "d.csv", encoding="utf-8", newline="") as handle:
        rows = {row["lead_id"]: (row["fit"], row["stage"]) for row in csv.DictReader(handle)}
    assert rows == {"L1": ("20.0", "fit"), "L2": ("0.0", "lead"), "L3": ("0.0", "lead")}
