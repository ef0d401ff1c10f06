"""Time ``decide`` alone (no file reading) against the plain-Python SPEC ``decide``.

Reading is measured by bench_io.py and changes separately; this isolates the per-lead
decision cost. Both inputs are loaded once, outside the timing: the engine's leads and
events grouped as ``engine evaluate`` groups them (EventColumns, as the batch reader
yields them), and SPEC's (lead, events) tuples from bench/spec_python.py (its reader
has already turned each timestamp into an age and dropped events after as_of). The
engine's timing includes what ``engine evaluate`` does per block of events before
deciding: the decayed engagement points of the whole block (engine/kernel/decay.py).
Then, in the same run, ``--repeat`` rounds alternating the two (so load on the machine
hits both alike): medians of each, and the median of the per-round ratios.

    python bench/bench_decide.py [--data bench/data/5000] [--repeat 5]
        [--save FILE | --compare FILE]   # every Decision field, to prove a change is exact
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import spec_python  # noqa: E402

from engine.batch import parse_as_of  # noqa: E402
from engine.compile import CompiledPlaybook  # noqa: E402
from engine.evaluate import decide, decide_for_row  # noqa: E402
from engine.events import Event, EventColumns  # noqa: E402
from engine.io import load_mapping  # noqa: E402
from engine.io.arrow_events import EventBlock, event_blocks  # noqa: E402
from engine.io.block_merge import merge_blocks  # noqa: E402
from engine.io.files import EventsFile, LeadsFile  # noqa: E402
from engine.io.records import LeadRecord  # noqa: E402
from engine.kernel import kernel_for  # noqa: E402
from engine.validate import load_playbook  # noqa: E402

PLAYBOOK = REPO / "playbooks" / "bench-reference.yaml"
AS_OF = "2026-11-01T00:00:00Z"
Pairs = list[tuple[LeadRecord, list[Event] | EventColumns]]


#: How ``engine evaluate`` can hand a lead's events to the kernel, fastest first:
#: per-lead totals from the block (engine/kernel/sums.py), the block's decayed points
#: (engine/kernel/decay.py), or neither (the generated loop does everything per event).
VARIANTS = ("block totals", "block points", "per-event loop")


def load_engine(data: Path) -> tuple[CompiledPlaybook, datetime, dict[str, Pairs], list[EventBlock]]:
    """The compiled playbook, every (lead, events) pair per variant and the blocks of
    events, as ``engine evaluate`` reads them (events as EventColumns)."""
    cp = load_playbook(PLAYBOOK).compiled
    assert cp is not None
    as_of = parse_as_of(AS_OF, cp)
    mapping = load_mapping("canonical")
    allowed = frozenset(cp.playbook.events)
    rejects: list[object] = []
    leads = list(LeadsFile(data / "leads.csv", mapping, on_reject=rejects.append, as_of=as_of,
                           allowed_types=allowed))
    events = EventsFile(data / "events.csv", mapping, on_reject=rejects.append,
                        allowed_types=allowed)
    read = event_blocks(events)
    assert read is not None, "the columnar reader reads gen.py's CSV"
    blocks = list(read)
    pairs = {}
    for variant in VARIANTS:
        prepare = _preparer(cp, as_of, variant)
        pairs[variant] = list(merge_blocks(leads, iter(blocks), rejects.append, prepare))
    assert all(isinstance(e, EventColumns) and e.sums is not None for _, e in pairs[VARIANTS[0]])
    assert all(isinstance(e, EventColumns) and e.points is not None for _, e in pairs[VARIANTS[1]])
    return cp, as_of, pairs, blocks


def _preparer(cp: CompiledPlaybook, as_of: datetime, variant: str) -> Callable[[EventBlock], None]:
    kernel = kernel_for(cp)
    assert kernel is not None
    prepare = kernel.preparer(as_of, totals=variant == VARIANTS[0])
    assert prepare is not None
    if variant == VARIANTS[2]:
        def nothing(block: EventBlock) -> None:
            block.sums = block.points = block.points_key = None
        return nothing
    return prepare


def engine_pass(cp: CompiledPlaybook, as_of: datetime, pairs: Pairs, blocks: list[EventBlock],
                variant: str) -> list[list[str]]:
    """Each block's totals or points, then ``decide_for_row`` + ``to_cells`` per lead,
    exactly as engine/batch.py does for a CSV export (the SPEC ``decide`` returns a dict
    of 7 values; these are 18)."""
    prepare = _preparer(cp, as_of, variant)
    for block in blocks:
        prepare(block)
    return [decide_for_row(cp, lead.fields, events, as_of, lead_id=lead.lead_id).to_cells()
            for lead, events in pairs]


def spec_pass(spec: list[tuple[dict[str, str], list[tuple[float, str, str]]]]) -> list[dict[str, object]]:
    return [spec_python.decide(lead, events) for lead, events in spec]


def full_digest(cp: CompiledPlaybook, as_of: datetime, pairs: Pairs) -> dict[str, str]:
    """Per lead, a hash of every Decision field (breakdowns and trace included)."""
    out: dict[str, str] = {}
    for lead, events in pairs:
        decision = decide(cp, lead.fields, events, as_of, lead_id=lead.lead_id, trace=True)
        fast = decide_for_row(cp, lead.fields, events, as_of, lead_id=lead.lead_id)
        if fast != replace(decision, engagement_breakdown={}):
            raise AssertionError(f"{lead.lead_id}: detail=False changes more than the breakdown")
        text = json.dumps([decision.to_dict(with_trace=True), decision.to_row()],
                          sort_keys=True, default=repr)
        out[lead.lead_id] = hashlib.sha256(text.encode()).hexdigest()
    return out


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "data" / "5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--save", type=Path, help="write every Decision's digest here")
    parser.add_argument("--compare", type=Path, help="check every Decision against a --save file")
    args = parser.parse_args()

    cp, as_of, pairs, blocks = load_engine(args.data)
    spec = list(spec_python.grouped(str(args.data)))
    n_events = sum(len(events) for _, events in pairs[VARIANTS[0]])
    print(f"{len(spec):,} leads, {n_events:,} events (loaded outside the timing)")

    times: dict[str, list[float]] = {}
    for _ in range(args.repeat):  # alternate: a burst of load on the machine hits all alike
        for variant in VARIANTS:
            times.setdefault(variant, []).append(
                median_time(lambda v=variant: engine_pass(cp, as_of, pairs[v], blocks, v), 1))  # type: ignore[misc]
        times.setdefault("SPEC", []).append(median_time(lambda: spec_pass(spec), 1))
    for label, runs in times.items():
        median = statistics.median(runs)
        ratio = statistics.median(e / s for e, s in zip(runs, times["SPEC"], strict=True))
        name = "SPEC python decide" if label == "SPEC" else f"engine, {label}"
        print(f"{name:<28}{median * 1000:8.1f} ms  ({median / len(spec) * 1e6:6.1f} µs/lead)  "
              f"{ratio:5.2f}× SPEC")
    print(f"(ratios: median of {args.repeat} alternating rounds; engine: decide + to_cells, "
          "with the blocks' totals or points computed in the timing)")

    if args.save or args.compare:
        digest = full_digest(cp, as_of, pairs[VARIANTS[0]])
        if args.save:
            args.save.write_text(json.dumps(digest))
            print(f"saved {len(digest):,} decision digests to {args.save}")
        if args.compare:
            expected = json.loads(args.compare.read_text())
            differ = [k for k in expected if digest.get(k) != expected[k]]
            print(f"compared {len(expected):,} decisions: {len(differ)} differ {differ[:5]}")
            return 1 if differ or len(digest) != len(expected) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
