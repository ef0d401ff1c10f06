"""HTML reports of ``engine funnel``, ``plan`` and ``backtest``: one self-contained file with charts.

Charts are plotly figures (a well-kept library; no hand-drawn SVG). plotly's Python
package ships plotly.js, which is inlined once, so the file opens with no network at
view time. plotly is the optional extra ``[report]`` (about 15 MB installed); it is
imported here only, when an HTML report is asked for. Div ids are fixed so two runs
write the same bytes.
"""

from __future__ import annotations

import html
from typing import Any

from engine.diagnostics import EngineError

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 2px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; } tr:nth-child(even) { background: #f4f4f4; }
.note { color: #666; font-size: 0.85rem; }
"""


def require_plotly() -> None:
    """Stop with an install hint (never a traceback) when the ``[report]`` extra is missing."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise EngineError("--format html needs plotly: "
                          "pip install 'revenue-playbook-engine[report]'") from None


def _page(title: str, sections: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style>\n<script>{get_plotlyjs()}</script></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n")


def _chart(figure: Any, div_id: str, title: str) -> str:
    figure.update_layout(title=title, template="plotly_white", height=380, margin={"t": 50, "b": 40})
    div = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                         config={"displaylogo": False, "responsive": True})
    return f'<section class="chart" id="section-{div_id}">{div}</section>'


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def funnel_html(report: dict[str, Any]) -> str:
    """The funnel report: funnel, stages over time, volume against capacity, overdue handoffs."""
    import plotly.graph_objects as go

    stages: list[str] = report["stages"]
    weeks = [w["week"] for w in report["weeks"]]
    reached = dict.fromkeys(stages, 0)
    for group in report["kpis"]["source"].values():
        reached[stages[0]] += group["leads"]
        for stage in stages[1:]:
            reached[stage] += group["reached"][stage]
    sections = [f'<p class="note">{html.escape(report["from"])} → {html.escape(report["to"])}: '
                f'{report["leads"]["placed"]:,} leads placed in {len(weeks)} weeks</p>']
    funnel = go.Figure(go.Funnel(y=stages, x=[reached[s] for s in stages], textinfo="value+percent initial"))
    sections.append(_chart(funnel, "funnel", "Leads that reached each stage"))
    volume = go.Figure([go.Scatter(x=weeks, y=[w["stages"][s] for w in report["weeks"]], name=s,
                                   stackgroup="stages") for s in stages])
    sections.append(_chart(volume, "stages", "Leads per stage at each week's end"))
    teams = list(report["weeks"][0]["handoffs"]) if report["weeks"] else []
    for index, team in enumerate(teams):
        rows = [w["handoffs"][team] for w in report["weeks"]]
        figure = go.Figure([
            go.Bar(x=weeks, y=[r["new"] for r in rows], name="new"),
            go.Bar(x=weeks, y=[r["carried_in"] + r["overflow_in"] for r in rows], name="carried / routed in"),
            go.Scatter(x=weeks, y=[r["worked"] for r in rows], name="worked", mode="lines+markers"),
        ])
        if rows and rows[0]["capacity"] is not None:
            figure.add_trace(go.Scatter(x=weeks, y=[r["capacity"] for r in rows], name="capacity",
                                        mode="lines", line={"dash": "dash"}))
        figure.update_layout(barmode="stack")
        sections.append(_chart(figure, f"capacity-{index}", f"{team}: weekly handoffs against capacity"))
    overdue = go.Figure([go.Scatter(x=weeks, y=[w["handoffs"][t]["overdue"] for w in report["weeks"]], name=t,
                                    mode="lines+markers") for t in teams])
    sections.append(_chart(overdue, "overdue",
                           "Overdue handoffs (due passed, not worked) at each week's end"))
    for name, groups in report["kpis"].items():
        rows_ = [[key, f"{g['leads']:,}", *(_pct(g["rates"][f"→{s}"]) for s in stages[1:]),
                  _pct(g["rates"]["overall"])] for key, g in groups.items()]
        sections.append(f"<h2>Funnel by {html.escape(name)}</h2>"
                        + _table([name, "leads", *(f"→{s}" for s in stages[1:]), "overall"], rows_))
    if report["days_between_stages"]:
        sections.append("<h2>Median days between stages</h2>" + _table(
            ["stages", "median days", "leads"],
            [[pair, d["median"], d["leads"]] for pair, d in report["days_between_stages"].items()]))
    sections += [f'<p class="note">{html.escape(note)}</p>' for note in report["notes"]]
    return _page(f"Funnel: {report['playbook']}", sections)


def plan_html(report: dict[str, Any]) -> str:
    """The plan: volumes a week the target needs, team slots against capacity, channels' CAC/LTV."""
    import plotly.graph_objects as go

    backward = report["backward"]
    target = report["target"]
    sections = [f'<p class="note">{target["won"]:,} won deals ({target["revenue"]:,.0f}) in '
                f'{report["period_weeks"]:g} weeks</p>']
    funnel = go.Figure(go.Funnel(y=[r["stage"] for r in backward], x=[r["per_week"] for r in backward],
                                 textinfo="value"))
    sections.append(_chart(funnel, "plan-funnel", "Needed each week, backwards from the target"))
    teams = report["teams"]
    slots = go.Figure([
        go.Bar(x=[t["team"] for t in teams], y=[t["slots_per_week"] for t in teams], name="slots needed"),
        go.Bar(x=[t["team"] for t in teams], y=[t["capacity"] for t in teams], name="capacity"),
    ])
    sections.append(_chart(slots, "plan-slots", "Slots a week each team needs, against its capacity"))
    sections.append("<h2>Backwards</h2>" + _table(
        ["stage", "rate", "rate from", "per week", "per period"],
        [[r["stage"], _pct(r["rate"]) if r["rate"] is not None else "", r["rate_from"] or "",
          r["per_week"], r["per_period"]] for r in backward]))
    forward = report["forward"]
    if forward is not None:
        channels = forward["channels"]
        cac = go.Figure([
            go.Bar(x=[c["channel"] for c in channels], y=[c["cac"] for c in channels], name="CAC"),
            go.Bar(x=[c["channel"] for c in channels], y=[c["ltv"] for c in channels], name="LTV"),
        ])
        sections.append(_chart(cac, "plan-cac", "CAC and LTV per channel"))
        sections.append("<h2>Forwards, from the leads expected</h2>" + _table(
            ["channel", "leads", "conversion", "won", "revenue", "CAC", "LTV", "LTV/CAC"],
            [[c["channel"], c["leads_per_period"], _pct(c["conversion"]), c["won_per_period"],
              c["revenue_per_period"], c["cac"] if c["cac"] is not None else "–", c["ltv"],
              c["ltv_to_cac"] if c["ltv_to_cac"] is not None else "–"] for c in channels]))
    return _page(f"Plan: {report['playbook']}", sections)


def backtest_html(report: dict[str, Any]) -> str:
    """The backtest: each team's lift curve with its capacity cut marked, the team and rule tables."""
    import plotly.graph_objects as go

    base = report["base_rate"]
    sections = [f'<p class="note">as of {html.escape(", ".join(report["as_of"]))}: '
                f'{report["leads"]:,} leads measured of {report["decided"]:,} decided, '
                f'{report["converted"]:,} converted (base rate {_pct(base)}), AUC {report["auc"]}</p>']
    for index, (team, figures) in enumerate(report["teams"].items()):
        curve = figures.get("curve") or []
        shares = [100 * p["share"] for p in curve]
        figure = go.Figure([
            go.Scatter(x=shares, y=[p["lift"] for p in curve], name="lift", mode="lines+markers"),
            go.Scatter(x=shares, y=[None if p["precision"] is None else 100 * p["precision"] for p in curve],
                       name="precision %", mode="lines", yaxis="y2"),
        ])
        figure.update_layout(xaxis={"title": "share of leads worked (%)"}, yaxis={"title": "lift"},
                             yaxis2={"title": "precision (%)", "overlaying": "y", "side": "right"})
        if report["leads"] and figures["handoffs"]:
            cut = 100 * figures["handoffs"] / report["leads"]
            figure.add_vline(x=cut, line_dash="dash",
                             annotation_text=f"capacity cut: {figures['handoffs']:,} handoffs")
        sections.append(_chart(figure, f"lift-{index}", f"{team}: lift against the share of leads worked"))
    sections.append("<h2>Teams at capacity</h2>" + _table(
        ["team", "capacity", "routed", "handoffs", "precision", "recall", "lift", "AUC"],
        [[team, t["capacity"] if t["capacity"] is not None else "unlimited", f"{t['routed']:,}",
          f"{t['handoffs']:,}", _pct(t["precision"]), _pct(t["recall"]),
          "–" if t["lift"] is None else f"{t['lift']:.2f}", "–" if t["auc"] is None else t["auc"]]
         for team, t in report["teams"].items()]))
    sections.append("<h2>Rules</h2>" + _table(
        ["kind", "rule", "matched", "conversion", "lift", "lift lost"],
        [[r["kind"], r["id"], "–" if r["matched"] is None else f"{r['matched']:,}", _pct(r["conversion"]),
          "–" if r["lift"] is None else f"{r['lift']:.2f}",
          "–" if r["lift_lost"] is None else f"{r['lift_lost']:.2f}"] for r in report["rules"]]))
    sections += [f'<p class="note">{html.escape(w)}</p>' for w in report["warnings"]]
    return _page(f"Backtest: {report['playbook']}", sections)
