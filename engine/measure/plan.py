"""``engine plan``: the playbook's ``plan:`` simulated backwards from the target and forwards
from the leads expected, with each team's slots against its capacity and CAC/LTV per channel.

Backwards (THE MODEL, seed 004): deals a week = the target over the period's weeks; each
step before needs the next step's volume divided by the next step's rate; each team
needs one slot a week per lead entering a stage it owns. Forwards: the channels' expected
leads times the rates give deals and revenue, so the gap to the target shows. A step's
rate is declared, or ``measured``: read from ``engine funnel``'s JSON (leads that reached
the stage over leads that reached the step before), per channel where the funnel saw
that source, else over all leads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from engine.compile import CompiledPlaybook
from engine.diagnostics import EngineError
from engine.durations import parse_seconds
from engine.model import Plan

WEEK_SECONDS = 7 * 86_400


def read_funnel(path: Path) -> dict[str, Any]:
    """``engine funnel --format json`` output, checked enough to take rates from."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EngineError(f"--funnel {path}: not a funnel report ({error}); write one with "
                          "`engine funnel ... --format json --out FILE`") from None
    if not isinstance(data, dict) or not isinstance(data.get("kpis", {}).get("source"), dict):
        raise EngineError(f"--funnel {path}: no `kpis.source` rates in it; write it with "
                          "`engine funnel ... --format json --out FILE`")
    return data


def _reached(groups: dict[str, Any], stages: list[str]) -> dict[str, int]:
    """Leads, and leads that reached each stage, summed over groups."""
    total = dict.fromkeys(["lead", *stages], 0)
    for group in groups.values():
        total["lead"] += int(group["leads"])
        for stage in stages:
            total[stage] += int(group["reached"].get(stage, 0))
    return total


def _rates(plan: Plan, first_stage: str, counts: dict[str, int] | None, where: str) -> list[float]:
    rates = []
    previous = first_stage
    for step in plan.steps:
        if step.rate != "measured":
            rates.append(float(step.rate))
        elif counts is None:
            raise EngineError(f"plan step `{step.stage}` has `rate: measured`, which needs "
                              "--funnel FILE (the JSON of `engine funnel`)")
        elif step.stage not in counts:
            raise EngineError(f"{where} has no stage `{step.stage}`: was it written for another playbook?")
        elif not counts[previous]:
            raise EngineError(f"{where}: no lead reached `{previous}`, so the rate to `{step.stage}` "
                              "cannot be measured; declare it")
        else:
            rates.append(counts[step.stage] / counts[previous])
        previous = step.stage
    return rates


def plan_report(cp: CompiledPlaybook, funnel: dict[str, Any] | None = None, *,
                won_target: int | None = None, playbook_name: str = "") -> dict[str, Any]:
    """The plan's backward and forward simulation, JSON-ready."""
    pb = cp.playbook
    plan = pb.plan
    if plan is None:
        raise EngineError(f"{playbook_name or 'the playbook'} has no `plan:` section; add one "
                          "(see docs/funnel.md)")
    stages = [s.stage for s in plan.steps]
    first = pb.stage_ids()[0]
    overall = _reached(funnel["kpis"]["source"], stages) if funnel is not None else None
    rates = _rates(plan, "lead", overall, "the funnel report")
    weeks = parse_seconds(plan.period) / WEEK_SECONDS
    deals = won_target if won_target is not None else (
        plan.won_target if plan.won_target is not None
        else math.ceil((plan.revenue_target or 0) / plan.deal_size))
    per_week = [deals / weeks]
    for rate in reversed(rates):
        per_week.insert(0, per_week[0] / rate)
    owners = {s.id: s.owner for s in pb.stages}
    backward = [{"stage": first if i == 0 else stages[i - 1],
                 "rate": None if i == 0 else round(rates[i - 1], 4),
                 "rate_from": None if i == 0 else ("measured" if plan.steps[i - 1].rate == "measured"
                                                   else "declared"),
                 "per_week": round(v, 2), "per_period": round(v * weeks, 1)}
                for i, v in enumerate(per_week)]
    slots: dict[str, float] = {}
    for stage, volume in zip(stages, per_week[1:], strict=True):
        slots[owners[stage]] = slots.get(owners[stage], 0.0) + round(volume, 2)
    teams = []
    for team, needed in slots.items():
        capacity = pb.teams[team].capacity if team in pb.teams else None
        teams.append({"team": team, "slots_per_week": round(needed, 1), "capacity": capacity,
                      "load": round(needed / capacity, 3) if capacity else None})
    return {
        "playbook": playbook_name,
        "period_weeks": round(weeks, 2),
        "target": {"won": deals, "revenue": round(deals * plan.deal_size, 2)},
        "deal_size": plan.deal_size,
        "backward": backward,
        "teams": teams,
        "forward": _forward(plan, stages, rates, weeks, funnel),
    }


def _forward(plan: Plan, stages: list[str], rates: list[float], weeks: float,
             funnel: dict[str, Any] | None) -> dict[str, Any] | None:
    """Deals and revenue the channels' expected leads give; CAC and LTV per channel."""
    if not plan.channels:
        return None
    by_source = funnel["kpis"]["source"] if funnel is not None else {}
    channels = []
    total_leads = total_won = total_budget = 0.0
    for name, channel in plan.channels.items():
        channel_rates, basis = rates, "all leads"
        group = by_source.get(name)
        if group is not None and group["leads"] and any(s.rate == "measured" for s in plan.steps):
            counts = _reached({name: group}, stages)
            try:
                channel_rates = _rates(plan, "lead", counts, f"the funnel's `{name}` leads")
                basis = f"{name}'s {group['leads']:,} leads"
            except EngineError:
                basis = f"all leads ({name} reached too few stages to measure)"
        conversion = math.prod(channel_rates)
        leads = (channel.leads_per_week or 0.0) * weeks
        won = leads * conversion
        ltv = channel.lifetime_value or plan.lifetime_value or plan.deal_size
        cac = channel.budget / won if channel.budget is not None and won > 0 else None
        channels.append({
            "channel": name, "leads_per_period": round(leads, 1), "conversion": round(conversion, 4),
            "rates_from": basis, "won_per_period": round(won, 2),
            "revenue_per_period": round(won * plan.deal_size, 2),
            "budget": channel.budget, "cac": round(cac, 2) if cac is not None else None,
            "ltv": ltv, "ltv_to_cac": round(ltv / cac, 2) if cac else None,
        })
        total_leads += leads
        total_won += won
        total_budget += channel.budget or 0.0
    return {
        "channels": channels,
        "leads_per_period": round(total_leads, 1),
        "won_per_period": round(total_won, 2),
        "revenue_per_period": round(total_won * plan.deal_size, 2),
        "cac": round(total_budget / total_won, 2) if total_won > 0 and total_budget else None,
    }


def render_plan(report: dict[str, Any]) -> str:
    """The plan for a terminal."""
    target = report["target"]
    lines = [f"{report['playbook']}: {target['won']:,} won deals ({target['revenue']:,.0f} revenue) "
             f"in {report['period_weeks']:g} weeks", "", "backward, from the target:",
             f"  {'stage':<20} {'rate':>8} {'from':>9} {'per week':>10} {'per period':>11}"]
    for row in report["backward"]:
        rate = "" if row["rate"] is None else f"{100 * row['rate']:.1f}%"
        lines.append(f"  {row['stage']:<20} {rate:>8} {row['rate_from'] or '':>9} "
                     f"{row['per_week']:>10,.1f} {row['per_period']:>11,.1f}")
    lines += ["", "slots a week each team needs:"]
    for team in report["teams"]:
        cap = "unlimited" if team["capacity"] is None else f"{team['capacity']:,}"
        load = "" if team["load"] is None else f"  ({100 * team['load']:.0f}% of capacity)"
        lines.append(f"  {team['team']:<20} {team['slots_per_week']:>10,.1f} of {cap}{load}")
    forward = report["forward"]
    if forward is not None:
        lines += ["", "forward, from the leads expected:",
                  f"  {'channel':<18} {'leads':>9} {'conv.':>7} {'won':>8} {'revenue':>12} {'CAC':>10} "
                  f"{'LTV':>10} {'LTV/CAC':>8}"]
        for c in forward["channels"]:
            lines.append(f"  {c['channel']:<18} {c['leads_per_period']:>9,.0f} "
                         f"{100 * c['conversion']:>6.1f}% {c['won_per_period']:>8,.1f} "
                         f"{c['revenue_per_period']:>12,.0f} {_money(c['cac']):>10} "
                         f"{_money(c['ltv']):>10} {c['ltv_to_cac'] or '–':>8}")
        gap = forward["won_per_period"] - target["won"]
        lines.append(f"  total: {forward['won_per_period']:,.1f} won in the period ({gap:+,.1f} against "
                     f"the target), CAC {_money(forward['cac'])}")
    return "\n".join(lines) + "\n"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"
