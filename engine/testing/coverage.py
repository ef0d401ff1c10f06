"""Rule coverage: which exclusions, fit rules, stages, handoffs, recycle reasons and
personas no fixture ever exercised — a rule nobody tested is a rule nobody reviewed.

"Exercised" means the rule *held* in at least one decision of some fixture's
timeline: the exclusion matched, the fit rule scored, the stage was reached, the
handoff fired, the recycle reason started, the persona matched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.compile import CompiledPlaybook
from engine.decision import Decision
from engine.pipeline import PIPELINE


@dataclass(frozen=True, order=True)
class RuleRef:
    """A rule of a playbook, named the way a reviewer finds it: file, line, section, id."""

    file: str
    line: int
    section: str
    id: str


def rules_of(cp: CompiledPlaybook) -> list[RuleRef]:
    """Every rule coverage counts (the sections of ``engine.pipeline.PIPELINE`` it
    counts), in file order."""
    f = os.path.relpath(cp.source)
    return sorted(RuleRef(f, rule.line, section.name, rule.id)
                  for section in PIPELINE if section.counted for rule in section.rules(cp))


def exercised(decision: Decision) -> set[tuple[str, str]]:
    """(section, id) of the rules that held in one decision."""
    return {(section.name, rule_id)
            for section in PIPELINE if section.held is not None for rule_id in section.held(decision)}


@dataclass
class Coverage:
    """Rules per playbook and the ones some fixture exercised."""

    rules: dict[str, list[RuleRef]] = field(default_factory=dict)
    hit: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def add(self, cp: CompiledPlaybook, decisions: Iterable[Decision]) -> None:
        """Record one fixture's decisions against its playbook."""
        self.rules.setdefault(cp.source, rules_of(cp))
        seen = self.hit.setdefault(cp.source, set())
        for decision in decisions:
            seen |= exercised(decision)

    def missed(self) -> list[RuleRef]:
        """Rules no fixture exercised, in file order."""
        return [r for source, refs in sorted(self.rules.items()) for r in refs
                if (r.section, r.id) not in self.hit.get(source, set())]

    @property
    def percent(self) -> float:
        """Exercised rules over all rules, 0–100 (100 when there are no rules)."""
        total = sum(len(refs) for refs in self.rules.values())
        return 100.0 if total == 0 else 100.0 * (total - len(self.missed())) / total

    def report(self) -> str:
        """Per playbook: covered/total, then each rule never exercised with file:line."""
        lines = []
        for source, refs in sorted(self.rules.items()):
            hit = self.hit.get(source, set())
            covered = sum((r.section, r.id) in hit for r in refs)
            lines.append(f"{os.path.relpath(source)}: {covered}/{len(refs)} rules exercised")
            lines += [f"  {r.file}:{r.line}: {r.section}/{r.id} never exercised"
                      for r in refs if (r.section, r.id) not in hit]
        lines.append(f"rule coverage: {self.percent:.1f}%")
        return "\n".join(lines) + "\n"
