"""`engine learn`: fit a playbook's points to outcomes and write them as a reviewable change."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--leads", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The lead export: .csv/.tsv (any encoding), .jsonl, .parquet.")
@click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The activity export, in any order.")
@click.option("--mapping", default="canonical", show_default=True,
              help="A preset (e.g. leads-x-education-precontact) or the path of a mapping YAML file, "
                   "with an `outcomes` section saying what converted (as for engine backtest).")
@click.option("--outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The outcomes file, when the mapping's outcomes section says `source: file` "
                   "(Olist closed deals, opportunities, deals).")
@click.option("--as-of", "as_of", required=True,
              help="ISO 8601 instant to decide at; without an offset it is in the playbook's timezone.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the proposed playbook is written (beside the original, so list files resolve).")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Cross-validation folds, for choosing the regularisation and for every figure.")
@click.option("--capacity", default="20%", show_default=True,
              help="Leads worked, as a share (20%) or a number (500): precision and recall are at this cut.")
@click.option("--max-rules", type=click.IntRange(1, 1000), default=25, show_default=True,
              help="At most this many rules with non-zero points in the proposal.")
@click.option("--propose-rules/--no-propose-rules", default=True, show_default=True,
              help="Also propose new fit rules from the declared lead fields (category values, number "
                   "thresholds at deciles, missing values), each marked in a comment.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="How the report is printed.")
@click.option("--encoding", help="Encoding of CSV inputs; detected if omitted.")
def learn(playbook: Path, leads: Path, events: Path | None, mapping: str, outcomes: Path | None,
          as_of: str, out: Path, folds: int, capacity: str, max_rules: int,
          propose_rules: bool, fmt: str, encoding: str | None) -> None:
    """Fit the playbook's points to outcomes; write the proposal to --out and report each change.

    Fits fit-rule points (each first_of branch too) and engagement points per event
    type — and, with --propose-rules, new rules from the declared lead fields — with an
    L1-regularised logistic regression (scikit-learn), rounded to integer points. Every
    figure is out-of-fold: precision, recall (95% Wilson intervals), lift and AUC at
    --capacity, for the current points and the proposed ones. Outcomes are read as
    engine backtest reads them: the mapping's `outcomes` section, from the leads file
    or --outcomes FILE; a dated conversion at or before --as-of is left out (it was
    known), and a playbook whose rules could read an outcome is refused. The proposal keeps the
    playbook's comments and layout (engine fmt), validates, and is reviewed with
    `engine diff PLAYBOOK PROPOSED.yaml`. Needs `pip install 'revenue-playbook-engine[learn]'`.
    See docs/learn.md.

    \b
    Example:
      engine learn playbooks/x-education-untuned.yaml --mapping leads-x-education-precontact \\
        --leads ../shared/data/leads-x-education/Leads.csv --as-of 2020-01-01 \\
        --out playbooks/x-education-learned.yaml
    """
    from engine.measure.learn import Settings, parse_capacity
    from engine.measure.learn_report import RENDERERS
    from engine.measure.run import run_learn

    settings = Settings(folds=folds, capacity=parse_capacity(capacity), max_rules=max_rules)
    report = run_learn(playbook, leads=leads, events=events, mapping=mapping, outcomes=outcomes,
                       as_of=as_of, out=out, settings=settings,
                       propose=propose_rules, encoding=encoding)
    click.echo(RENDERERS[fmt](report), nl=False)
