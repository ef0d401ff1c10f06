"""A backtest report (the dict of :func:`engine.measure.backtest.run_backtest`) as text or Markdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ci_pct(ci: list[float] | None) -> str:
    return "" if ci is None else f"[{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci_num(ci: list[float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.2f}–{ci[1]:.2f}]"


def _team_cells(team: dict[str, Any]) -> list[str]:
    capacity = team["capacity"]
    return [
        "unlimited" if capacity is None else str(capacity) if not isinstance(capacity, list)
        else "/".join(map(str, capacity)),
        f"{team['routed']:,}", f"{team['handoffs']:,}",
        f"{_pct(team['precision'])} {_ci_pct(team['precision_ci'])}".strip(),
        f"{_pct(team['recall'])} {_ci_pct(team['recall_ci'])}".strip(),
        f"{_num(team['lift'])} {_ci_num(team['lift_ci'])}".strip(),
        _num(team["auc"], 3),
    ]


def _rule_cells(rule: dict[str, Any]) -> list[str]:
    matched = "–" if rule["matched"] is None else f"{rule['matched']:,}"
    return [rule["kind"], rule["id"], matched, _pct(rule["conversion"]), _num(rule["lift"]),
            _num(rule["lift_lost"])]


TEAM_HEADER = ["team", "capacity", "routed", "handoffs", "precision [95% CI]", "recall [95% CI]",
               "lift [95% CI]", "AUC"]
RULE_HEADER = ["kind", "rule", "matched", "conversion", "lift", "lift lost"]


def _headline(report: dict[str, Any]) -> list[str]:
    as_of = ", ".join(report["as_of"])
    horizon = f", horizon {report['horizon_days']:g}d" if report["horizon_days"] is not None else ""
    return [
        f"backtest {report['playbook']} as of {as_of}{horizon} ({report['backend']} backend)",
        f"leads measured {report['leads']:,} of {report['decided']:,} decided; converted "
        f"{report['converted']:,}; base rate {_pct(report['base_rate'])}; AUC {_num(report['auc'], 3)}",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)).rstrip()

    return [line(r) for r in [header, *rows]]


def render_text(report: dict[str, Any]) -> str:
    """For a terminal: the headline, a table per team and per rule, then every warning."""
    lines = _headline(report)
    teams = [[name, *_team_cells(team)] for name, team in report["teams"].items()]
    lines += ["", *_table(TEAM_HEADER, teams), ""]
    lines += _table(RULE_HEADER, [_rule_cells(r) for r in report["rules"]])
    if len(report["splits"]) > 1:
        lines += ["", "per as-of:"]
        for split in report["splits"]:
            teams_text = "; ".join(f"{t} {_pct(v['precision'])} of {v['handoffs']:,}"
                                   for t, v in split["teams"].items())
            lines.append(f"  {split['as_of']}  {split['leads']:,} leads, base {_pct(split['base_rate'])}, "
                         f"AUC {_num(split['auc'], 3)}; {teams_text}")
    if report["warnings"]:
        lines += ["", "warnings:", *(f"  - {w}" for w in report["warnings"])]
    return "\n".join(lines) + "\n"


def render_markdown(report: dict[str, Any]) -> str:
    """For a pull-request comment or a README: the same content as Markdown tables."""

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(r) + " |" for r in rows)]

    head = _headline(report)
    lines = [f"**{head[0]}**", "", head[1], ""]
    lines += table(TEAM_HEADER, [[f"`{n}`", *_team_cells(t)] for n, t in report["teams"].items()])
    lines += ["", *table(RULE_HEADER, [_rule_cells(r) for r in report["rules"]])]
    if report["warnings"]:
        lines += ["", "Warnings:", "", *(f"- {w}" for w in report["warnings"])]
    return "\n".join(lines) + "\n"


def render_json(report: dict[str, Any]) -> str:
    """The report itself; keys documented in docs/backtest.md."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page with each team's lift curve (engine.measure.html_report)."""
    from engine.measure.html_report import backtest_html

    return backtest_html(report)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": render_text, "json": render_json, "markdown": render_markdown, "html": render_html,
}
