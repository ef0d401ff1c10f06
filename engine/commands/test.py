"""`engine test`: replay fixtures and compare their timelines with the stored snapshots."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--snapshot-update", is_flag=True,
              help="Rewrite snapshots from the current playbooks (review the diff before committing).")
@click.option("--coverage", is_flag=True,
              help="Report rules (exclusions, fit rules, stages, handoffs, recycle reasons, personas) "
                   "no fixture exercised, with file:line.")
@click.option("--threshold", type=click.FloatRange(0, 100), default=None,
              help="Fail when rule coverage (percent) is below this.")
@click.option("-v", "--verbose", is_flag=True, help="List every fixture.")
def test(paths: tuple[Path, ...], snapshot_update: bool, coverage: bool, threshold: float | None,
         verbose: bool) -> None:
    """Replay every fixture and compare with its snapshot.

    A fixture (kind: Fixture) is a lead and its events; its snapshot is
    snapshots/NAME.txt beside it: the timeline of decisions, event by event, and
    the final decision. A changed outcome fails with a diff of what was decided
    before and now. A missing snapshot fails (write it with --snapshot-update);
    an orphaned one is reported. PATHS default to fixtures/. The same fixtures
    run under plain `pytest`.

    \b
    Examples:
      engine test
      engine test --coverage --threshold 95
      engine test fixtures/smb-saas --snapshot-update
    """
    import pytest

    targets = [str(p) for p in paths] or ["fixtures"]
    if not paths and not Path("fixtures").is_dir():
        raise click.UsageError("no fixtures/ folder here; name the fixture files or folders")
    args = [*targets, "-p", "engine.testing.plugin", "-p", "no:cacheprovider",
            "-o", "addopts=", "-o", "filterwarnings=error", "-q" if not verbose else "-v",
            "--no-header", "-rN"]
    if snapshot_update:
        args.append("--snapshot-update")
    if coverage:
        args.append("--engine-coverage")
    if threshold is not None:
        args += ["--engine-threshold", str(threshold)]
    code = pytest.main(args)
    sys.exit(0 if code == 0 else 1 if code in (1, 5) else 2)
