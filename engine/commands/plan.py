"""`engine plan`: the playbook's plan simulated backwards from its target and forwards from leads."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--funnel", "funnel_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The JSON of `engine funnel`: where `rate: measured` steps take their rates.")
@click.option("--won-target", type=click.IntRange(min=1),
              help="Deals to win over the plan's period, instead of the playbook's target.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="html: a self-contained report with charts "
              "(pip install 'revenue-playbook-engine[report]').")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of standard output (atomically).")
def plan(playbook: Path, funnel_file: Path | None, won_target: int | None, fmt: str,
         out: Path | None) -> None:
    """Simulate the playbook's `plan:` backwards from its target and forwards from its channels.

    Backwards: deals a week for the target, then the opportunities, MQLs and leads each
    step's rate needs, and the slots a week each team needs against its capacity.
    Forwards: the deals and revenue the channels' expected leads give, with CAC (budget
    over deals) and LTV per channel. A step with `rate: measured` takes its rate from
    --funnel (the rates `engine funnel` measured on an export).

    \b
    Example (how many MQLs a week for 150 won deals a quarter?):
      engine funnel playbooks/olist.yaml --mapping olist --leads MQLS.csv --events DEALS.csv \\
        --from 2017-06-05 --to 2018-11-19 --format json --out out/funnel.json
      engine plan playbooks/olist.yaml --funnel out/funnel.json --won-target 150
    """
    from engine.commands.funnel import write_text
    from engine.measure.plan import plan_report, read_funnel, render_plan
    from engine.validate import load_playbook

    compiled = load_playbook(playbook).compiled
    assert compiled is not None
    if fmt == "html":
        from engine.measure.html_report import require_plotly

        require_plotly()
    funnel = read_funnel(funnel_file) if funnel_file is not None else None
    report = plan_report(compiled, funnel, won_target=won_target, playbook_name=str(playbook))
    if fmt == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from engine.measure.html_report import plan_html

        text = plan_html(report)
    else:
        text = render_plan(report)
    write_text(text, out)
