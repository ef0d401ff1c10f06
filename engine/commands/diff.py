"""`engine diff`: the plan of a playbook change — what changed, who approves, whom it affects."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

FORMATS = ["text", "markdown", "json"]


class _DiffCommand(click.Command):
    """Keeps what follows ``--`` apart: ``engine diff BASE HEAD -- PATHS`` as in git."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["engine.diff.paths"] = args[cut + 1:]
            args = args[:cut]
        return super().parse_args(ctx, args)


@click.command("diff", cls=_DiffCommand)
@click.argument("sides", nargs=-1)
@click.option("--base", "base_opt", metavar="REV", help="Compare this revision with the work tree "
              "(all playbooks under PATHS, default playbooks/).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, markdown for a PR comment, json for machines.")
@click.option("--fixtures", "fixture_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Where to find fixtures to replay (repeatable; default: fixtures/).")
@click.option("--no-impact", is_flag=True, help="Do not replay fixtures.")
@click.option("--leads", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also replay the leads of this export under both versions (impact on real data).")
@click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The export's activity file (with --leads).")
@click.option("--outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The outcomes file, when the mapping's outcomes section says `source: file` "
                   "(with --leads; see docs/backtest.md).")
@click.option("--mapping", default="canonical", show_default=True,
              help="Column mapping of the export: a preset name or a mapping file. With an "
                   "`outcomes` section, the plan also measures each queue against the outcomes.")
@click.option("--as-of", "as_of", help="When to decide the export's leads (ISO 8601; with --leads).")
@click.option("--fail-on-owner-change", is_flag=True,
              help="Exit 1 when a changed section has owners, or has none at all (nobody could "
                   "approve it).")
@click.option("--check-version", is_flag=True,
              help="Exit 1 when a playbook's rules changed but its metadata.version did not move "
                   "forward (CI runs it on pull requests).")
@click.option("--no-progress", is_flag=True, help="Say nothing on stderr while comparing --leads.")
def diff(sides: tuple[str, ...], base_opt: str | None, fmt: str, fixture_dirs: tuple[Path, ...],
         no_impact: bool, leads: Path | None, events: Path | None, outcomes: Path | None, mapping: str,
         as_of: str | None, fail_on_owner_change: bool, check_version: bool,
         no_progress: bool) -> None:
    """Semantic diff of playbooks between two revisions or two files, like a plan.

    BASE and HEAD are git revisions (HEAD omitted: the work tree) or two playbook
    files. Rules are compared by id, so comments, layout and key order never show;
    rule moves in first-match-wins sections (exclusions, stages, handoffs) do. For
    each changed section the owners from BASE's metadata.owners are listed (a section
    without owners falls to metadata.owners.default), and the JSON names the approvers
    of every change (`engine approvals` checks them against a PR's reviews).

    Impact: every fixture of a changed playbook is replayed under both versions and
    counts as changed exactly when `engine test` would fail on it (its whole timeline
    differs); each decision column that moved is summarised (fit +10: 12 leads, stage
    nurturing → promising: 3 …). With --leads, the export's leads are decided under both
    versions and each team's queue is cut at its weekly capacity on both sides: handoffs
    before → after, leads entering and leaving the queue, the overflow. When the
    mapping has an `outcomes` section (or --outcomes is given), each queue at capacity
    is measured before → after: precision, recall and lift with 95% intervals, and the
    AUC of the ranking (the score column) — docs/changing-a-playbook.md.
    A list's changes show as counts and a sample of five added and removed items;
    list files at a revision are confined to the repository as in the work tree.

    \b
    Examples:
      engine diff origin/main HEAD -- playbooks/smb-saas.yaml
      engine diff --base origin/main --format markdown
      engine diff old.yaml new.yaml
      engine diff --base origin/main --leads export.csv --events activity.csv --as-of 2026-11-01
      engine diff old.yaml new.yaml --leads Leads.csv --mapping leads-x-education --as-of 2020-01-01
      engine diff --base origin/main --check-version --no-impact
    """
    from engine.diff_render import RENDERERS

    export = None
    if (events or as_of or outcomes) and not leads:
        raise click.UsageError("--events, --outcomes and --as-of go with --leads")
    if leads is not None:
        if no_impact:
            raise click.UsageError("--leads asks for the impact on an export; --no-impact skips it")
        if as_of is None:
            raise click.UsageError("--leads needs --as-of: the instant to decide the export's leads at")
        from engine.diff_export import ExportSource

        export = ExportSource(leads, events, mapping, as_of, outcomes)
    ctx = click.get_current_context()
    paths = [str(p) for p in ctx.meta.get("engine.diff.paths", [])]
    progress = _Progress(not no_progress) if export is not None else None
    base_label, head_label, diffs = _plan(list(sides), base_opt, paths,
                                          None if no_impact else (fixture_dirs or (Path("fixtures"),)),
                                          export, progress)
    click.echo(RENDERERS[fmt](diffs, base_label, head_label), nl=False)
    failed = False
    if check_version:
        from engine.versions import notes, version_problems

        for note in notes(diffs):
            click.echo(f"warning: {note}", err=True)
        for problem in version_problems(diffs):
            click.echo(f"error: {problem}", err=True)
            failed = True
    if fail_on_owner_change:
        for d in diffs:
            if d.unowned_sections:
                click.echo(f"error: {d.path}: nobody owns {', '.join(d.unowned_sections)}: add "
                           "metadata.owners (or metadata.owners.default)", err=True)
                failed = True
        if any(d.owned_change for d in diffs):
            click.echo("owned sections changed: their owners must approve", err=True)
            failed = True
    if failed:
        sys.exit(1)


class _Progress:
    """Export leads compared so far, on stderr: a line redrawn on a terminal, else every 10 s."""

    def __init__(self, enabled: bool) -> None:
        import time

        self.enabled, self.clock = enabled, time.monotonic
        self.started = self.last = self.clock()
        self.tty = sys.stderr.isatty()
        self.count = 0

    def __call__(self, count: int) -> None:
        self.count = count
        now = self.clock()
        if not self.enabled or (not self.tty and now - self.last < 10):
            return
        self.last = now
        click.echo(f"{chr(13) if self.tty else ''}impact: {count:,} export lead(s) compared",
                   err=True, nl=not self.tty)

    def done(self, count: int) -> None:
        if self.enabled:
            seconds = self.clock() - self.started
            click.echo(f"{chr(13) if self.tty else ''}impact: {count:,} export lead(s) decided "
                       f"under both versions in {seconds:.1f} s", err=True)


def _repo_paths(paths: list[str]) -> list[str]:
    """PATHS as given, refused when they leave the repository (a PR must not name /etc)."""
    from engine.diagnostics import EngineError
    from engine.revisions import git

    for path in paths:
        if path.startswith("-"):
            raise click.UsageError(f"{path!r} after '--': options go before '--', paths after it")
    try:
        top = Path(git("rev-parse", "--show-toplevel").strip()).resolve()
    except EngineError:
        return paths  # not a repository: two files, or a work tree only
    for path in paths:
        try:
            (Path.cwd() / path).resolve().relative_to(top)
        except ValueError:
            raise EngineError(f"{path}: outside the repository {top} (give paths inside "
                              "the repository)") from None
    return paths


def _plan(sides: list[str], base_opt: str | None, paths: list[str],
          fixture_dirs: tuple[Path, ...] | None, export: Any = None,
          progress: _Progress | None = None) -> tuple[str, str, list[Any]]:
    """Resolve the two sides and diff every playbook present on either."""
    from engine.diagnostics import EngineError
    from engine.revisions import Side, is_revision

    paths = _repo_paths(paths)
    if base_opt is not None:
        if len(sides) > 1 or (sides and not is_revision(sides[0])):
            raise click.UsageError("with --base, give at most one HEAD revision (PATHS go after --)")
        base, head = Side(base_opt), Side(sides[0] if sides else None)
        if not is_revision(base_opt):
            raise click.UsageError(f"--base {base_opt!r} is not a git revision")
    elif len(sides) == 2 and all(Path(s).is_file() for s in sides) and not paths:
        return sides[0], sides[1], [_diff_files(Path(sides[0]), Path(sides[1]), fixture_dirs,
                                                export, progress)]
    else:
        revisions: list[str] = []
        while sides and len(revisions) < 2 and is_revision(sides[0]):
            revisions.append(sides.pop(0))
        paths = sides + paths
        if not revisions:
            raise click.UsageError("give BASE (and HEAD) as git revisions, two playbook files, "
                                   "or --base REV")
        paths = _repo_paths(paths)
        base, head = Side(revisions[0]), Side(revisions[1] if len(revisions) > 1 else None)
    scope = paths or ["playbooks"]
    names = sorted(set(base.list_playbooks(scope)) | set(head.list_playbooks(scope)))
    if paths and not names:
        raise EngineError(f"no playbook matches {' '.join(paths)} at {base.label} or "
                          f"{head.label}: check the path (engine diff BASE HEAD -- playbooks/NAME.yaml)")
    return base.label, head.label, [_diff_one(base, head, name, fixture_dirs, export, progress)
                                    for name in names]


def _diff_one(base: Any, head: Any, name: str, fixture_dirs: tuple[Path, ...] | None,
              export: Any, progress: _Progress | None) -> Any:
    from engine.revisions import compile_side

    old, new = compile_side(base, name), compile_side(head, name)
    cases, note = _cases(Path(name), fixture_dirs) if old and new else (None, None)
    return _compare(name, old, new, cases, note, export, progress)


def _diff_files(base: Path, head: Path, fixture_dirs: tuple[Path, ...] | None,
                export: Any = None, progress: _Progress | None = None) -> Any:
    from engine.validate import load_playbook

    old, new = load_playbook(base).compiled, load_playbook(head).compiled
    cases, note = _cases(head, fixture_dirs, also=base)
    return _compare(str(head), old, new, cases, note, export, progress)


def _compare(name: str, old: Any, new: Any, cases: list[Any] | None, note: str | None,
             export: Any, progress: _Progress | None) -> Any:
    """One playbook: fixtures replayed in full, then the export's leads streamed (if any)."""
    from dataclasses import replace

    from engine.diff import diff_playbooks

    both = export is not None and old and new
    measure = export.measure(old, new) if both else None
    export_cases = export.cases(new) if both else None
    result = diff_playbooks(name, old, new, cases, export_cases,
                            progress=progress if export is not None else None, measure=measure)
    if export is not None and old and new and result.status == "changed":
        if progress is not None and result.export is not None:
            progress.done(result.export.total)
        said: str = export.note()
        note = said + (f"; {note}" if note else "")
    return replace(result, impact_note=note) if result.status == "changed" and note else result


def _cases(playbook: Path, fixture_dirs: tuple[Path, ...] | None,
           also: Path | None = None) -> tuple[list[Any] | None, str | None]:
    """Fixtures written for this playbook, as replayable cases (or why there are none)."""
    if fixture_dirs is None:
        return None, "not replayed (--no-impact)"
    from functools import cache

    from engine.diagnostics import EngineError
    from engine.diff import Case
    from engine.fixtures import discover_fixtures, load_fixture
    from engine.validate import load_playbook

    targets = {playbook.resolve()} | ({also.resolve()} if also else set())
    loader: Any = cache(lambda p: load_playbook(p))
    cases, skipped = [], 0
    for path in discover_fixtures(d for d in fixture_dirs if d.exists()):
        try:
            fixture = load_fixture(path, playbooks=loader)
        except EngineError:
            skipped += 1  # e.g. written for another playbook version; `engine test` reports it
            continue
        if fixture.playbook_path.resolve() in targets:
            cases.append(Case(fixture.lead_id, fixture.lead, fixture.events, fixture.as_of,
                              fixture=True, check_at=tuple(fixture.check_at), contacts=fixture.contacts))
    if not cases:
        return None, "no fixtures for this playbook under " + ", ".join(map(str, fixture_dirs))
    note = f"{skipped} fixture file(s) could not be loaded and were skipped" if skipped else None
    return cases, note
