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
    lines += _outcomes(report.get("outcomes"))
    stages: list[str] = report["stages"]
    teams = list(report["weeks"][0]["handoffs"]) if report["weeks"] else []
    head = f"{'week':<10}  {'new':>6}  " + "  ".join(f"{s:>9}" for s in stages)
    outcomes = report.get("outcomes") is not None
    if outcomes:
        head += f"  {'won/lost':>9}"
    head += "".join(f"  {t + ' worked/cap carried overdue':>{len(t) + 28}}" for t in teams)
    lines += ["", head]
    for week in report["weeks"]:
        row = f"{week['week']:<10}  {week['new_leads']:>6,}  "
        row += "  ".join(f"{week['stages'][s]:>9,}" for s in stages)
        if outcomes:
            row += f"  {'{:,}/{:,}'.format(week['outcomes']['won'], week['outcomes']['lost']):>9}"
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
        if outcomes:
            lines[-1] += "    won  of opp.  of leads"
        for key, g in groups.items():
            cells = "  ".join(f"{_pct(g['rates'][f'→{s}']):>10}" for s in stages[1:])
            row = f"  {key[:22]:<22} {g['leads']:>7,}  {cells}  {_pct(g['rates']['overall']):>9}"
            if outcomes:
                rates = g["rates"]
                row += (f"  {g['won']:>5,}  {_pct(rates['won_of_opportunities']):>6}  "
                        f"{_pct(rates['won_of_leads']):>8}")
            lines.append(row)
    cov = report.get("coverage")
    if cov:
        lines += ["", f"target accounts ({cov['field']}; {cov['basis']}): {cov['target_accounts']:,}",
                  f"  with a lead {cov['with_lead']:,}, with a target lead {cov['with_target_lead']:,}"
                  + (f", with an opportunity ({cov['opportunity_stage']}) {cov['with_opportunity']:,}"
                     if cov["with_opportunity"] is not None else "")]
    if report["notes"]:
        lines += ["", *[f"note: {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def _outcomes(summary: dict[str, Any] | None) -> list[str]:
    """The outcomes file's line: what was read, what was measured, what has no week."""
    if summary is None:
        return []
    lines = [f"outcomes {summary['file']}: {summary['rows_read']:,} rows read, {summary['rejected']:,} "
             f"rejected; {summary['leads_measured']:,} leads measured, {summary['won']:,} won "
             f"({summary['won_undated']:,} without a date, {summary['won_outside_weeks']:,} outside the "
             "weeks: in the rates, in no week)"]
    return lines + [f"  reject: {text}" for text in summary["rejects"]]


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
