"""The text form of a funnel report: weeks as rows, then capacity per team, then rates."""

from __future__ import annotations

from typing import Any


def render_funnel(report: dict[str, Any]) -> str:
    """A terminal summary of :func:`engine.measure.funnel.run_funnel`'s report."""
    leads, events = report["leads"], report["events"]
    lines = [
        f"{report['playbook']} week by week, {report['from']} → {report['to']} "
        f"({len(report['weeks'])} weeks)",
        f"leads   {leads['read']:>9,} read = {leads['placed']:,} placed + {leads['no_events']:,} without "
        f"events + {leads['after_period']:,} after the period + {leads['rejected']:,} rejected",
        f"events  {events['read']:>9,} read = {events['matched']:,} matched + "
        f"{events['rejected']:,} rejected",
    ]
    lines += [f"  reject: {text}" for text in report["rejects"]]
    stages: list[str] = report["stages"]
    teams = list(report["weeks"][0]["handoffs"]) if report["weeks"] else []
    head = f"{'week':<10}  {'new':>6}  " + "  ".join(f"{s:>9}" for s in stages)
    head += "".join(f"  {t + ' worked/cap carried overdue':>{len(t) + 28}}" for t in teams)
    lines += ["", head]
    for week in report["weeks"]:
        row = f"{week['week']:<10}  {week['new_leads']:>6,}  "
        row += "  ".join(f"{week['stages'][s]:>9,}" for s in stages)
        for team in teams:
            h = week["handoffs"][team]
            cap = "∞" if h["capacity"] is None else f"{h['capacity']:,}"
            cell = f"{h['worked']:,}/{cap} {h['carried_over']:>7,} {h['overdue']:>7,}"
            if h["overflow_out"]:
                cell += f" (+{h['overflow_out']:,} routed)"
            row += f"  {cell:>{len(team) + 28}}"
        lines.append(row)
    totals = _team_totals(report)
    if totals:
        lines += ["", "handoffs over the period:"]
        for team, t in totals.items():
            lines.append(f"  {team}: {t['new']:,} new, {t['worked']:,} worked, {t['overflow_out']:,} "
                         f"routed on, {t['lapsed']:,} lapsed unworked, {t['carried_over_last']:,} "
                         f"still waiting ({t['overdue_last']:,} overdue) at the end")
    if report["days_between_stages"]:
        lines += ["", "median days between stages:"]
        for pair, d in report["days_between_stages"].items():
            lines.append(f"  {pair:<24} {d['median']:>8.1f} d  ({d['leads']:,} leads)")
    for name, groups in report["kpis"].items():
        if not groups:
            continue
        lines += ["", f"funnel by {name}:  leads  " + "  ".join(f"{'→' + s:>10}" for s in stages[1:])
                  + "    overall"]
        for key, g in groups.items():
            cells = "  ".join(f"{_pct(g['rates'][f'→{s}']):>10}" for s in stages[1:])
            lines.append(f"  {key[:22]:<22} {g['leads']:>7,}  {cells}  {_pct(g['rates']['overall']):>9}")
    cov = report.get("coverage")
    if cov:
        lines += ["", f"target accounts ({cov['field']}; {cov['basis']}): {cov['target_accounts']:,}",
                  f"  with a lead {cov['with_lead']:,}, with a target lead {cov['with_target_lead']:,}"
                  + (f", with an opportunity ({cov['opportunity_stage']}) {cov['with_opportunity']:,}"
                     if cov["with_opportunity"] is not None else "")]
    if report["notes"]:
        lines += ["", *[f"note: {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def _team_totals(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for week in report["weeks"]:
        for team, h in week["handoffs"].items():
            t = totals.setdefault(team, {"new": 0, "worked": 0, "overflow_out": 0, "lapsed": 0})
            for key in ("new", "worked", "overflow_out", "lapsed"):
                t[key] += h[key]
            t["carried_over_last"], t["overdue_last"] = h["carried_over"], h["overdue"]
    return totals


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"
