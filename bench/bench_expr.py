"""Cost per evaluation of realistic expressions: compiled closures vs the simpleeval
reference, in one run. ``python bench/bench_expr.py [--rounds 7] [--calls 2000]``.

The point is the ratio: a batch evaluates every expression for every lead at every
event, so per-call cost is what scales.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.events import Event
from engine.expr import Scope, Vocabulary, compile_expression
from engine.history import History

VOCAB = Vocabulary(
    event_fields={
        "page_view": ["content"],
        "email_open": [],
        "content_download": ["content"],
        "inquiry": [],
        "call": ["outcome"],
        "unsubscribe": [],
        "opportunity_created": [],
    },
    stages=["lead", "nurturing", "promising", "appointment", "opportunity", "won"],
    personas=["it_decision_maker"],
    lists=["competitors", "partners"],
    lead_fields={"title": "string", "employees": "number", "industry": "string",
                 "company_domain": "string"},
)  # fmt: skip

EXPRESSIONS: list[tuple[str, str, str]] = [
    ("fit", "bool", "lead.employees >= 100 and matches(lead.title, '部長|Director|VP|Head')"),
    ("target", "bool", "lead.industry in ['software', 'manufacturing', 'finance']"),
    ("exclusion", "bool", "lead.company_domain in lists.competitors"),
    ("surge", "bool", "recent >= 3 and recent >= 2 * prior"),
    (
        "stage",
        "bool",
        "(fit >= 30 and engagement >= 40) or content_stage('promising', within='30d')",
    ),
    ("stage", "bool", "count('call', outcome='appointment') > 0"),
    ("handoff", "bool", "stage >= 'promising' or (surge and fit >= 30)"),
    ("handoff", "number", "fit + engagement"),
    ("handoff", "bool", "count('inquiry', within='14d') > 0"),
]

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
CONTENT = {"case-study-1": "promising", "wp-howto-1": "nurturing"}


def _scope() -> Scope:
    kinds = ["page_view", "email_open", "content_download", "call", "inquiry"]
    events = []
    for i in range(60):
        etype = kinds[i % len(kinds)]
        fields: dict[str, Any] = {}
        if etype in ("page_view", "content_download"):
            fields["content"] = "wp-howto-1" if i % 3 else "case-study-1"
        if etype == "call":
            fields["outcome"] = "no_answer"
        events.append(Event(etype, AS_OF - timedelta(hours=7 * i + 1), fields, f"e{i}", i))
    lead = {"title": "情報システム部長", "employees": 350, "industry": "software",
            "company_domain": "example.co.jp"}  # fmt: skip
    values = {
        "lead": lead,
        "lists": {"competitors": frozenset(f"rival{i}.example" for i in range(200)),
                  "partners": frozenset()},
        "fit": 35, "engagement": 22.5, "surge": True, "recent": 4, "prior": 1, "stage": 2,
    }  # fmt: skip
    return Scope(values, History(events, AS_OF), lambda p: True, CONTENT.get)


def _per_call(fn: Callable[[Scope], Any], scope: Scope, calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn(scope)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    scope = _scope()
    print(f"{'expression':<72} {'compiled':>10} {'reference':>10} {'ratio':>7}")
    ratios = []
    for context, type_, source in EXPRESSIONS:
        compiled, issues = compile_expression(source, VOCAB, context, type_)
        assert compiled is not None, issues
        assert compiled(scope) == compiled.reference(scope), source
        fast = _per_call(compiled, scope, args.calls, args.rounds)
        slow = _per_call(compiled.reference, scope, max(args.calls // 10, 1), args.rounds)
        ratios.append(slow / fast)
        print(f"{source[:72]:<72} {fast * 1e6:>8.2f}µs {slow * 1e6:>8.1f}µs {slow / fast:>6.0f}x")
    print(f"median ratio (reference / compiled): {statistics.median(ratios):.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
