"""An export → one decision per lead, streamed: the pass behind ``engine evaluate``.

Memory stays bounded as the export grows: leads and their events arrive one lead at a
time (``engine.io`` merges sorted files or spills unsorted events to disk), each row is
written as soon as it is decided, and work queues keep at most a team's capacity.

Nothing half-written: every output is written in full to the run's scratch folder
(:mod:`engine.io.scratch`) and renamed into place at the end, the rejects file and
queues first and the decisions file last, so its presence means the run finished. A run
that stops (too many rejects, an error, SIGTERM, SIGKILL) leaves nothing new in the
output folder but, after SIGKILL, a lock file the next run removes; its scratch goes at
once, or with the next run after SIGKILL.

Every row is accounted for: leads read = decided + rejected, events read = matched +
rejected. A lead whose evaluation fails (a field of an unexpected type) is a reject
with the error as its reason, never a crash of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from engine.account_decide import decide_accounts, lead_error
from engine.accounts import Member, uses_accounts
from engine.compile import CompiledPlaybook
from engine.decision import ROW, ROW_COLUMNS
from engine.diagnostics import EngineError
from engine.evaluate import Decision, KernelBug
from engine.evaluate import decide_for_row as decide  # to_row() shows no breakdown
from engine.events import Event
from engine.expr.regex import DataPatternError
from engine.io import (
    EventsFile,
    InputError,
    LeadEvent,
    LeadRecord,
    LeadsFile,
    Mapping,
    Reject,
    RejectsWriter,
    UnsortedInput,
    file_format,
    iter_leads_with_events,
    parse_timestamp,
    write_cells,
    write_rows,
)
from engine.io.encoding import describe_encoding, detect_encoding
from engine.io.locks import LOCK_SUFFIX, OutputLock, output_locks
from engine.io.output_paths import Named, refuse_overlaps
from engine.io.records import EventTypes
from engine.io.scratch import Run, stall_point, temp_dir
from engine.io.writers import csv_line_maker, write_lines
from engine.kernel import kernel_for
from engine.queues import NURTURE_COLUMNS, QUEUE_COLUMNS, DiskQueue, NurtureQueue, TeamQueue, place, route_of

#: The columns of :meth:`engine.evaluate.Decision.to_row`, in order (a test keeps them equal).
#: The decision row's columns (``engine.decision.ROW``, where the row is declared).
DECISION_COLUMNS = ROW_COLUMNS
#: Parquet types fixed up front: inferring them from the first rows would make
#: ``priority`` a string column whenever the first rows have no handoff.
DECISION_TYPES: dict[str, str] = {c.name: c.type for c in ROW}
#: Columns the engine writes as numbers or booleans: data, never formula-guarded in a CSV.
NOT_TEXT = frozenset(c.name for c in ROW if c.type != "string")
#: Rejects shown in the message when ``--max-errors`` stops a run.
SHOWN_REJECTS = 5
_PROGRESS_EVERY = 500

Progress = Callable[[int], None]
RowT = TypeVar("RowT")


class TooManyRejects(EngineError):
    """More rejected rows than ``--max-errors`` allows: the run stops with no output."""


@dataclass(frozen=True)
class BatchRequest:
    """What to evaluate, and where the results go."""

    leads: Path
    out: Path
    as_of: datetime
    mapping: Mapping
    events: Path | None = None
    rejects: Path | None = None
    queues: Path | None = None
    max_errors: int | None = None
    encoding: str | None = None
    #: True: the caller vouches both files are sorted by lead id (skips the pre-scan; a
    #: violation is an error, never a wrong answer). None: detect. False: always spill.
    events_sorted: bool | None = None
    #: With ``queues``: also write each capped team's overflow as ``TEAM.overflow.csv``.
    overflow: bool = False
    #: Other files the run reads (the playbook, a mapping file), by what names them for the
    #: user (``("the playbook", path)``): no output may overwrite them.
    reads: tuple[tuple[str, Path], ...] = ()
    #: CSV outputs (decisions, rejects, queues): a text cell that a spreadsheet would read
    #: as a formula gets a leading ``'`` (:func:`engine.io.writers.guard_cell`).
    csv_guard: bool = True
    #: ``--timezone``: the zone of naive timestamps, over the mapping's and the playbook's.
    timezone: str | None = None

    @property
    def rejects_path(self) -> Path:
        """``--rejects``, or ``NAME.rejects.csv`` beside ``--out``."""
        return self.rejects or default_rejects_path(self.out)


def default_rejects_path(out: Path) -> Path:
    """``out/decisions.csv`` → ``out/decisions.rejects.csv`` (always CSV).

    From the whole stem, so ``decisions.v1.csv`` and ``decisions.v2.csv`` keep apart
    rejects (``decisions.v1.rejects.csv``); only the extension is replaced.
    """
    return out.with_name(f"{out.stem}.rejects.csv")


def parse_as_of(text: str, cp: CompiledPlaybook) -> datetime:
    """ISO 8601 (``2026-11-01``, ``2026-11-01T09:00``, ``…Z``, ``…+09:00``); naive → playbook zone."""
    try:
        return parse_timestamp(text, default_tz=cp.tz)
    except ValueError as error:
        raise EngineError(f"--as-of: {error}") from None


@dataclass(frozen=True)
class AbsentField:
    """An optional mapped field whose column the file lacks: empty for every row of it."""

    name: str
    column: str
    file: str  # "leads" or "events"


@dataclass
class AccountCounts:
    """How a run grouped leads into accounts and folded account-level handoffs."""

    per_account: frozenset[str]
    keys: set[str] = field(default_factory=set)
    alone: int = 0  # leads with no account: each its own
    handoffs: int = 0  # account-level handoffs (one per account)
    listed: int = 0  # contacts listed under another contact's account-level handoff

    def record(self, decision: Decision) -> None:
        if decision.account:
            self.keys.add(decision.account)
        else:
            self.alone += 1
        if decision.handoff is not None and decision.handoff.rule in self.per_account:
            self.handoffs += 1
        self.listed += bool(decision.account_primary)

    def to_dict(self) -> dict[str, int]:
        return {"accounts": len(self.keys), "leads_without_account": self.alone,
                "account_handoffs": self.handoffs, "contacts_listed": self.listed}

    def render(self) -> str:
        return (f"accounts {len(self.keys):>8,} (+ {self.alone:,} leads without an account, each its own); "
                f"{self.handoffs:,} account-level handoffs listing {self.listed:,} more contacts")


@dataclass
class Summary:
    """What a run did: counts that add up, per stage / route / exclusion, team capacity,
    and how the inputs were read (encodings, the zone of naive times, absent fields)."""

    playbook: str
    as_of: str
    output: str
    rejects_file: str
    queues_dir: str | None
    leads_read: int = 0
    leads_rejected: int = 0
    decided: int = 0
    events_read: int = 0
    events_matched: int = 0
    events_rejected: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    routes: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    recycled: dict[str, int] = field(default_factory=dict)
    teams: dict[str, TeamQueue] = field(default_factory=dict)
    #: Marketing's nurture list (recycled leads whose reason names a track); None without tracks.
    nurture: NurtureQueue | None = None
    #: "leads" / "events" → how the file was decoded, e.g. "cp932 (detected)".
    encodings: dict[str, str] = field(default_factory=dict)
    #: The zone naive timestamps were read in, and who said so.
    timezone: str = "UTC"
    timezone_from: str = "the playbook"
    absent: list[AbsentField] = field(default_factory=list)
    #: Decided leads with at least one event from the events file (absent event fields).
    leads_with_events: int = 0
    #: Accounts (docs/accounts.md): None when the playbook has none; else the rules with
    #: ``per: account`` and the counts ``record_decision`` keeps.
    accounts: AccountCounts | None = None

    def absent_touched(self, absent: AbsentField) -> int:
        """Leads that read an absent field as empty: all decided, or those with events."""
        return self.decided if absent.file == "leads" else self.leads_with_events

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with stable keys (playbook order inside each breakdown)."""
        return {
            "playbook": self.playbook,
            "as_of": self.as_of,
            "output": self.output,
            "rejects": self.rejects_file,
            "queues": self.queues_dir,
            "leads": {"read": self.leads_read, "decided": self.decided, "rejected": self.leads_rejected},
            "events": {"read": self.events_read, "matched": self.events_matched,
                       "rejected": self.events_rejected},
            "inputs": {
                "encodings": dict(self.encodings),
                "timezone": {"zone": self.timezone, "from": self.timezone_from},
                "absent_fields": [
                    {"field": a.name, "column": a.column, "file": a.file,
                     "leads": self.absent_touched(a)} for a in self.absent
                ],
            },
            "stages": dict(self.stages),
            "routes": dict(self.routes),
            "excluded": dict(self.excluded),
            "recycled": dict(self.recycled),
            "handoffs": {
                team: {"handoffs": q.handoffs, "capacity": q.capacity, "queued": q.queued,
                       "overflow": q.overflow, "carried_over": q.carried_over,
                       "overflow_out": q.overflow_out, "overflow_in": q.overflow_in,
                       "overdue": q.overdue, "accepted": q.accepted}
                for team, q in self.teams.items()
            },
            "nurture": dict(self.nurture.tracks) if self.nurture is not None else {},
            **({"accounts": self.accounts.to_dict()} if self.accounts is not None else {}),
        }


def _new_summary(cp: CompiledPlaybook, request: BatchRequest, playbook: str) -> Summary:
    pb = cp.playbook
    targets = [team for team in pb.teams if any(h.to == team for h in pb.handoffs)]
    targets += [h.to for h in pb.handoffs if h.to not in targets]
    queued = list(targets)
    for team in queued:  # the teams overflow is routed to take part in the week too
        target = route_of(pb, team)
        if target is not None and target not in queued:
            queued.append(target)
    teams = {t: TeamQueue(t, pb.teams[t].capacity if t in pb.teams else None) for t in queued}
    for name, queue in teams.items():
        target = route_of(pb, name)
        queue.next = teams[target] if target is not None else None
    return Summary(
        playbook=playbook,
        as_of=request.as_of.astimezone(cp.tz).isoformat(),
        output=str(request.out),
        rejects_file=str(request.rejects_path),
        queues_dir=str(request.queues) if request.queues is not None else None,
        stages=dict.fromkeys(pb.stage_ids(), 0),
        routes=dict.fromkeys([*targets, "none"], 0),
        excluded=dict.fromkeys([e.id for e in pb.exclusions], 0),
        recycled=dict.fromkeys(pb.recycle, 0),
        teams=teams,
        accounts=AccountCounts(frozenset(h.rule.id for h in cp.handoffs if h.per_account))
        if uses_accounts(cp) else None,
        nurture=NurtureQueue(pb.stages[0].owner) if pb.nurture else None,
    )


class Rejects:
    """The run's reject sink: writes, counts per file, stops the run past ``max_errors``."""

    def __init__(self, writer: RejectsWriter, leads_file: str, max_errors: int | None) -> None:
        self.writer, self.leads_file, self.max_errors = writer, leads_file, max_errors
        self.leads = self.events = 0
        self.first: list[Reject] = []

    def __call__(self, reject: Reject) -> None:
        self.writer(reject)
        if reject.file == self.leads_file:
            self.leads += 1
        else:
            self.events += 1
        if len(self.first) < SHOWN_REJECTS:
            self.first.append(reject)
        total = self.leads + self.events
        if self.max_errors is not None and total > self.max_errors:
            shown = "\n".join(f"  {r.file}:{r.row}: {_where(r)}{r.reason}" for r in self.first)
            raise TooManyRejects(
                f"more than {self.max_errors} rejected row(s) (--max-errors); stopped, "
                f"nothing written. First rejects:\n{shown}"
            )


def _where(reject: Reject) -> str:
    return f"column {reject.column!r}: " if reject.column else ""


def evaluate_export(
    cp: CompiledPlaybook,
    request: BatchRequest,
    *,
    playbook_name: str = "",
    progress: Progress | None = None,
) -> Summary:
    """Evaluate every lead of the export; write decisions, rejects and queues; return the summary.

    Raises :class:`engine.io.InputError` for a file that cannot be used at all and
    :class:`TooManyRejects` past ``max_errors``; in both cases nothing is written.
    """

    def produce(summary: Summary, sink: Rejects, staging: Path, req: BatchRequest) -> None:
        _run(cp, req, summary, sink, staging, progress)

    if request.events_sorted is None and request.events is not None:
        # Assume the order a merge join needs (most exports are ORDER BY lead id) instead of
        # reading both files once more to check it: the merge meets any lead id below the
        # one before it, and then nothing has been written (staging, rejects and queues
        # are only renamed into place at the end), so the run starts again with the
        # on-disk index. Every row a merge rejects before that, the index rejects too.
        try:
            return run_export(cp, replace(request, events_sorted=True), produce, playbook_name=playbook_name)
        except UnsortedInput:
            request = replace(request, events_sorted=False)
    return run_export(cp, request, produce, playbook_name=playbook_name)


#: What a backend does inside :func:`run_export`: read the inputs, send every reject to
#: the sink, write the decisions to the staging path, and fill in the summary.
Producer = Callable[["Summary", "Rejects", Path, BatchRequest], None]


def run_export(cp: CompiledPlaybook, request: BatchRequest, produce: Producer, *,
               playbook_name: str = "") -> Summary:
    """The frame every backend runs in: summary, checks, locks, scratch, rejects, queues, renames.

    Shared so the Python and SQL backends cannot differ in what they write or when.
    Every output is written in full to the run's scratch (:mod:`engine.io.scratch`) and
    renamed into place at the very end, the decisions last; a run that stops earlier,
    even by SIGKILL, has put nothing new beside its outputs but lock files the next run
    removes. Two runs writing the same output: the second stops (:mod:`engine.io.locks`).
    """
    file_format(request.out)  # an unknown extension fails before any work
    if request.as_of.tzinfo is None:
        request = _with_zone(request, cp)
    summary = _new_summary(cp, request, playbook_name)
    refuse_overlaps(*_named_paths(request, summary))
    request = resolve_inputs(cp, request, summary)
    folders = [request.out.parent, request.rejects_path.parent]
    if request.queues is not None:
        folders.append(request.queues)
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = "a file is in the way" if isinstance(error, FileExistsError | NotADirectoryError) \
                else error.strerror or str(error)
            raise EngineError(f"cannot make the output folder {folder}: {why} "
                              "(hint: give a path to a folder, or to where one can be made)") from None
    with output_locks(_locks(request)), Run(folders) as run:
        stall_point("started")
        staged: list[tuple[Path, Path]] = []

        def stage(final: Path) -> Path:
            staged.append((run.stage(final), final))
            return staged[-1][0]

        decisions = run.stage(request.out)
        disk = _plan_queues(request, summary)
        try:
            with RejectsWriter(stage(request.rejects_path), csv_guard=request.csv_guard) as writer:
                sink = Rejects(writer, str(request.leads), request.max_errors)
                produce(summary, sink, decisions, request)
                summary.leads_rejected = sink.leads
                summary.leads_read = summary.decided + sink.leads
                summary.events_rejected = sink.events
                summary.events_read = summary.events_matched + sink.events
            if request.queues is not None:
                _write_queues(request.queues, summary, request.overflow, request.csv_guard, stage)
        finally:
            if disk is not None:
                disk.close()
        staged.append((decisions, request.out))  # last: its presence means the run finished
        stall_point("commit")
        run.commit(staged)
    return summary


def _locks(request: BatchRequest) -> list[OutputLock]:
    """A lock beside each output file, and one inside the queue folder."""
    locks = [OutputLock("--out", request.out), OutputLock("the rejects file", request.rejects_path)]
    if request.queues is not None:
        locks.append(OutputLock("--queues", request.queues, request.queues / f".queues{LOCK_SUFFIX}"))
    return locks


def _named_paths(request: BatchRequest, summary: Summary) -> tuple[list[Named], list[Named], Named | None]:
    """The run's inputs, its output files and its queue folder, each with what names it."""
    inputs: list[Named] = [("--leads", request.leads)]
    if request.events is not None:
        inputs.append(("--events", request.events))
    inputs += request.reads
    rejects = "--rejects" if request.rejects is not None else "the rejects file (from --out)"
    outputs: list[Named] = [("--out", request.out), (rejects, request.rejects_path)]
    if request.queues is None:
        return inputs, outputs, None
    for team, queue in summary.teams.items():
        outputs.append(("the queue file", request.queues / f"{team}.csv"))
        if request.overflow and queue.capacity is not None:
            outputs.append(("the overflow file", request.queues / f"{team}.overflow.csv"))
    if summary.nurture is not None:
        outputs.append(("the nurture file", request.queues / f"{summary.nurture.team}.nurture.csv"))
    return inputs, outputs, ("--queues", request.queues)


def resolve_inputs(cp: CompiledPlaybook, request: BatchRequest, summary: Summary) -> BatchRequest:
    """Settle, before any reading, what a run must not guess, and say it in the summary.

    The zone of naive timestamps: ``--timezone``, else the user's mapping file, else the
    playbook's (presets set none: they cannot know a CRM account's zone). The encoding
    of each file: given, or detected only when certain (else an error asking for
    ``--encoding``). Optional fields whose column a file lacks. Shared by every backend,
    so their summaries cannot differ.
    """
    from engine.io.mapping import field_spec, is_optional, with_timezone
    from engine.io.readers import read_columns
    from engine.io.records import check_columns
    from engine.io.timestamps import get_timezone

    mapping = request.mapping
    if request.timezone:
        zone, origin = request.timezone, "--timezone"
    elif mapping.timezone:
        zone, origin = mapping.timezone, "the mapping file"
    else:
        zone, origin = cp.playbook.timezone, "the playbook"
    get_timezone(zone)  # a misspelt zone is an error now, not at the first naive value
    summary.timezone, summary.timezone_from = zone, origin
    mapping = with_timezone(mapping, zone)
    encoding = request.encoding or mapping.encoding
    origin = "--encoding" if request.encoding else "the mapping file"
    files: list[tuple[str, Path, Any]] = [("leads", request.leads, mapping.leads)]
    if request.events is not None:
        if mapping.events is None:
            raise InputError("the mapping has no 'events' section", hint="add one or omit --events")
        files.append(("events", request.events, mapping.events))
    detected: dict[str, str | None] = {}  # format → the codec every file of it was detected in
    for label, path, section in files:
        if not path.is_file():
            raise InputError("no such file", file=path)
        kind = file_format(path)
        codec = encoding
        if kind == "csv" and encoding is None:
            codec = detect_encoding(path)
            detected[kind] = codec if detected.get(kind, codec) == codec else None
        elif kind == "jsonl":
            detected[kind] = None
        summary.encodings[label] = describe_encoding(path, codec, origin if encoding else "detected")
        columns = read_columns(path, encoding=codec)
        if columns is None:
            continue  # JSON Lines: each line has its own keys; the readers check the first
        specs = {name: field_spec(raw) for name, raw in section.fields.items()}
        required = [s.column for s in specs.values() if not is_optional(s, section.fields_required)]
        check_columns(path, required, columns)
        summary.absent += [AbsentField(name, spec.column, label) for name, spec in specs.items()
                           if spec.column not in columns]
    codec = detected.get("csv")
    if codec is not None and "jsonl" not in detected:
        # Every CSV input was detected in the same codec (and no JSONL, which --encoding
        # would change): the readers take it from here instead of detecting again.
        return replace(request, mapping=mapping, encoding=codec)
    return replace(request, mapping=mapping)


def _plan_queues(request: BatchRequest, summary: Summary) -> DiskQueue | None:
    """Keep queue entries only when queues are written; on disk when they are unbounded."""
    keep = request.queues is not None
    teams = summary.teams.values()
    nurture = summary.nurture
    needs_disk = keep and (nurture is not None or any(q.capacity is None or request.overflow for q in teams))
    disk = DiskQueue(temp_dir()) if needs_disk else None
    for queue in teams:
        queue.keep = keep
        queue.disk = disk if queue.capacity is None or request.overflow else None
    if nurture is not None:
        nurture.keep, nurture.disk = keep, disk
    return disk


def event_types(cp: CompiledPlaybook) -> EventTypes:
    """The event types rows may have, and the reasons a rejected handoff may give (docs/handoffs.md)."""
    rejected = cp.life.rejected
    required = {rejected: ("reason", frozenset(cp.playbook.recycle))} if rejected is not None else {}
    return EventTypes(cp.playbook.events, required)


def _with_zone(request: BatchRequest, cp: CompiledPlaybook) -> BatchRequest:
    return replace(request, as_of=request.as_of.replace(tzinfo=cp.tz))


def _run(cp: CompiledPlaybook, request: BatchRequest, summary: Summary, sink: Rejects,
         staging: Path, progress: Progress | None) -> None:
    allowed = event_types(cp)
    leads = LeadsFile(request.leads, request.mapping, on_reject=sink, as_of=request.as_of,
                      allowed_types=allowed, encoding=request.encoding)
    events: EventsFile | tuple[LeadEvent, ...] = ()
    if request.events is not None:
        events = EventsFile(request.events, request.mapping, on_reject=sink,
                            allowed_types=allowed, encoding=request.encoding)
    kernel = kernel_for(cp)  # its blocks of events come with their decayed points
    prepare = kernel.preparer(request.as_of) if kernel is not None else None
    pairs = iter_leads_with_events(leads, events, on_reject=sink, events_sorted=request.events_sorted,
                                   prepare=prepare, spill_dir=temp_dir())
    capped = any(q.capacity is not None for q in summary.teams.values())
    try:
        if file_format(staging) == "csv":  # rows spelled as text straight from each Decision
            cells = _decisions(cp, request, summary, sink, pairs, progress, Decision.to_cells)
            if capped and _WEEK_LAST:
                _write_placed_lines(staging, summary, cells, request.csv_guard)
            elif capped:  # whole rows held (slower): the queue cells are not the last ones
                write_cells(staging, DECISION_COLUMNS, _spilled(summary, cells),
                            raw_columns=NOT_TEXT, csv_guard=request.csv_guard)
            else:
                write_cells(staging, DECISION_COLUMNS, (_with_place(summary, *item) for item in cells),
                            raw_columns=NOT_TEXT, csv_guard=request.csv_guard)
        else:
            rows = _decisions(cp, request, summary, sink, pairs, progress, Decision.to_row)
            write_decisions(staging, _spilled(summary, rows) if capped
                            else (_with_place(summary, *item) for item in rows))
    finally:
        close = getattr(pairs, "close", None)
        if close is not None:
            close()  # removes the events spill file even when the run stops early


Placed = tuple[int, str | None, RowT]
#: Where ``queue`` and ``queue_team`` are in a row, and whether they end it.
_WEEK_AT = tuple(i for i, c in enumerate(ROW) if c.week)
_WEEK_LAST = tuple(range(len(ROW) - len(_WEEK_AT), len(ROW))) == _WEEK_AT


#: Rows spilled per marshal record: one load per batch, not per row.
_SPILL_BATCH = 4096


def _spill(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` back in order after the last one was made: held in a scratch file meanwhile.

    Where a handoff stands depends on every later lead when its team has a capacity, so
    rows wait (marshal, in the run's scratch folder, in length-prefixed batches) until the
    last lead is decided and every queue is known.
    """
    import marshal
    import os
    import tempfile

    handle, path = tempfile.mkstemp(prefix=".engine-rows-", suffix=".marshal", dir=temp_dir())
    try:
        with os.fdopen(handle, "wb") as spill:
            batch: list[Any] = []
            for item in items:
                batch.append(item)
                if len(batch) >= _SPILL_BATCH:
                    _dump(spill, marshal.dumps(batch))
                    batch = []
            if batch:
                _dump(spill, marshal.dumps(batch))
        with open(path, "rb") as spilled:  # loads() of a whole record: load() reads in small steps
            while size := spilled.read(8):
                yield from marshal.loads(spilled.read(int.from_bytes(size, "little")))
    finally:
        os.unlink(path)


def _dump(spill: Any, data: bytes) -> None:
    spill.write(len(data).to_bytes(8, "little"))
    spill.write(data)


def _spilled(summary: Summary, rows: Iterator[Placed[RowT]]) -> Iterator[RowT]:
    """Each row with its ``queue`` cells, once every queue is known (rows held meanwhile)."""
    for row_number, team, row in _spill(rows):
        yield _with_place(summary, row_number, team, row)


def _write_placed_lines(staging: Path, summary: Summary, rows: Iterator[Placed[list[str]]],
                        csv_guard: bool) -> None:
    """The CSV decisions when a team has a capacity: each row held as its finished line but
    the two ``queue`` cells (one string a row rather than one a cell, so holding it costs
    little), which are appended once every queue is known. Team ids and the statuses need
    no quoting and no guard, so the bytes are :func:`write_cells`' own."""
    tsv = staging.suffix.lower() == ".tsv"
    cut = _WEEK_AT[0]
    line = csv_line_maker(DECISION_COLUMNS[:cut], raw_columns=NOT_TEXT, csv_guard=csv_guard, tsv=tsv)
    d = "\t" if tsv else ","

    def lines() -> Iterator[tuple[int, str | None, str, bool]]:
        for row_number, team, cells in rows:
            text, quoted = line(cells[:cut])
            yield row_number, team, text, quoted

    def placed() -> Iterator[str]:
        for row_number, team, text, quoted in _spill(lines()):
            status, holder = place(summary.teams, team, row_number) \
                if team is not None and team in summary.teams else ("", "")
            yield f'{text}{d}"{status}"{d}"{holder}"' if quoted else f"{text}{d}{status}{d}{holder}"

    write_lines(staging, DECISION_COLUMNS, placed(), tsv=tsv)


def _with_place(summary: Summary, row_number: int, team: str | None, row: RowT) -> RowT:
    if team is not None and team in summary.teams:
        status, holder = place(summary.teams, team, row_number)
        if isinstance(row, list):
            row[_WEEK_AT[0]], row[_WEEK_AT[1]] = status, holder
        elif isinstance(row, dict):
            row["queue"], row["queue_team"] = status, holder
    return row


def _decisions(cp: CompiledPlaybook, request: BatchRequest, summary: Summary, sink: Rejects,
               pairs: Iterator[tuple[LeadRecord, Sequence[Event]]],
               progress: Progress | None, shape: Callable[[Decision], RowT]) -> Iterator[Placed[RowT]]:
    """Decide each lead in file order and account for it; yield its input row, the team it is
    handed to, and its output row as ``shape`` makes it (``Decision.to_cells`` for CSV,
    ``Decision.to_row`` for the other formats)."""
    leads_file = str(request.leads)
    matched = with_events = 0
    if summary.accounts is not None:  # a lead's decision needs its account's other leads
        pairs = _with_accounts(cp, request, sink, pairs)
    for count, (lead, events) in enumerate(pairs, start=1):
        from_file = len(events) - len(lead.activity)
        matched += from_file
        try:
            decision = (events.decision if isinstance(events, _Decided)
                        else decide(cp, lead.fields, events, request.as_of, lead_id=lead.lead_id))
            row = shape(decision)
        except KernelBug:
            raise  # a bug, not the lead's fault: exit 3, never a reject
        except DataPatternError as error:  # a regex read from the data: the lead's fault
            sink(Reject(leads_file, lead.row, None, lead.lead_id, str(error)))
            continue
        except Exception as error:  # one lead's failure must not lose the run
            sink(Reject(leads_file, lead.row, None, lead.lead_id,
                        f"evaluation failed: {type(error).__name__}: {error}"))
            continue
        record_decision(summary, decision, lead.row)
        with_events += from_file > 0
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(lead.row)
        yield lead.row, decision.handoff.to if decision.handoff is not None else None, row
    summary.events_matched = matched
    summary.leads_with_events = with_events


def _with_accounts(cp: CompiledPlaybook, request: BatchRequest, sink: Rejects,
                   pairs: Iterator[tuple[LeadRecord, Sequence[Event]]],
                   ) -> Iterator[tuple[LeadRecord, Sequence[Event]]]:
    """Every lead read first (accounts span the file), decided with its account; then each
    pair again in file order, its events replaced by its ready decision (``_Decided``).

    A lead whose own data fails (an invalid pattern in a field) is rejected before the
    accounts are formed, so it is no contact of any account. Memory holds the whole export.
    """
    leads_file = str(request.leads)
    kept: list[tuple[LeadRecord, Sequence[Event]]] = []
    for lead, events in pairs:
        error = lead_error(cp, lead.fields, events, request.as_of)
        if error is not None:
            sink(Reject(leads_file, lead.row, None, lead.lead_id, error))
            continue
        kept.append((lead, events))
    members = [Member(lead.lead_id, lead.fields, events) for lead, events in kept]
    decided = decide_accounts(cp, members, request.as_of, detail=False)
    for (lead, events), decision in zip(kept, decided, strict=True):
        yield lead, _Decided(events, decision)


class _Decided(list[Event]):
    """A lead's events with its decision already made (the account path of ``_decisions``)."""

    def __init__(self, events: Sequence[Event], decision: Decision) -> None:
        super().__init__(events)
        self.decision = decision


def record_decision(summary: Summary, decision: Decision, row: int) -> None:
    """Count one decided lead in the summary and offer its handoff to the team's queue."""
    summary.decided += 1
    if summary.accounts is not None:
        summary.accounts.record(decision)
    if summary.decided == 1:
        stall_point("deciding")  # a test hook (outputs are being written); see engine.io.scratch
    summary.stages[decision.stage] = summary.stages.get(decision.stage, 0) + 1
    summary.routes[decision.route] = summary.routes.get(decision.route, 0) + 1
    if decision.excluded:
        summary.excluded[decision.excluded] = summary.excluded.get(decision.excluded, 0) + 1
    if decision.recycle is not None and decision.recycle.active:
        reason = decision.recycle.reason
        summary.recycled[reason] = summary.recycled.get(reason, 0) + 1
    if decision.handoff is not None:
        queue = summary.teams.get(decision.handoff.to)
        if queue is not None:
            queue.offer(decision, row)
    elif decision.nurture is not None and summary.nurture is not None:
        summary.nurture.offer(decision, row)


def write_decisions(target: Path, rows: Iterator[dict[str, Any]], *, csv_guard: bool = True) -> None:
    """Decision rows to ``target`` in its format (Parquet with the fixed :data:`DECISION_TYPES`)."""
    if file_format(target) != "parquet":
        write_rows(target, DECISION_COLUMNS, rows, csv_guard=csv_guard)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.bool_() if kind == "bool" else pa.float64() if kind == "float64"
                         else pa.string()) for name, kind in DECISION_TYPES.items()])
    with pq.ParquetWriter(str(target), schema, compression="zstd", store_schema=True) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 8192:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch.clear()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def _write_queues(folder: Path, summary: Summary, overflow: bool, csv_guard: bool,
                  stage: Callable[[Path], Path]) -> None:
    """One CSV per team that receives handoffs (empty ones too, so no stale queue survives),
    each written where ``stage`` says (renamed into place with the rest of the run)."""
    for team, queue in summary.teams.items():
        write_rows(stage(folder / f"{team}.csv"), QUEUE_COLUMNS, queue.rows(), csv_guard=csv_guard)
        if overflow and queue.capacity is not None:
            write_rows(stage(folder / f"{team}.overflow.csv"), QUEUE_COLUMNS, queue.overflow_rows(),
                       csv_guard=csv_guard)
    if summary.nurture is not None:
        nurture = summary.nurture
        write_rows(stage(folder / f"{nurture.team}.nurture.csv"), NURTURE_COLUMNS, nurture.rows(),
                   csv_guard=csv_guard)


def count_rows(path: Path) -> int:
    """Rows to expect, for a progress bar: Parquet metadata, else lines (fast, in binary)."""
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(str(path)).metadata.num_rows)
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def render_inputs(summary: Summary) -> list[str]:
    """How the inputs were read: what the engine settled instead of guessing silently."""
    lines = [f"read    {label} file as {how}" for label, how in summary.encodings.items()]
    lines.append(f"times   naive timestamps read in {summary.timezone} (from {summary.timezone_from})")
    for absent in summary.absent:
        touched = summary.absent_touched(absent)
        whose = f"{touched:,} lead{'s' if touched != 1 else ''}"
        if absent.file == "events":
            whose += " with events"
        lines.append(f"absent  optional field {absent.name!r}: no column {absent.column!r} in the "
                     f"{absent.file} file; empty for {whose}")
    return lines


def render_summary(summary: Summary) -> str:
    """The summary for a terminal: counts that add up, then breakdowns, then capacity."""
    lines = [
        f"{summary.playbook} as of {summary.as_of}",
        f"leads   {summary.leads_read:>9,} read = {summary.decided:,} decided + "
        f"{summary.leads_rejected:,} rejected",
        f"events  {summary.events_read:>9,} read = {summary.events_matched:,} matched + "
        f"{summary.events_rejected:,} rejected",
        *render_inputs(summary),
    ]
    for title, counts in (("stage", summary.stages), ("route", summary.routes),
                          ("excluded", summary.excluded), ("recycled", summary.recycled)):
        if not counts:
            continue
        lines.append(f"{title}:")
        width = max(len(key) for key in counts)
        for key, value in counts.items():
            share = f"{100 * value / summary.decided:5.1f}%" if summary.decided else ""
            lines.append(f"  {key:<{width}}  {value:>9,}  {share}")
    if summary.accounts is not None:
        lines.append(summary.accounts.render())
    if summary.teams:
        width = max(len(team) for team in summary.teams)
        lines.append(f"{'handoffs:':<{width + 2}}  {'handoffs':>9}  {'capacity/wk':>11}  "
                     f"{'queued':>9}  {'carried_over':>12}  {'overflow_out':>12}  {'overflow_in':>11}  "
                     f"{'overdue':>9}  {'accepted':>9}")
        for team, q in summary.teams.items():
            capacity = f"{q.capacity:,}" if q.capacity is not None else "unlimited"
            lines.append(f"  {team:<{width}}  {q.handoffs:>9,}  {capacity:>11}  {q.queued:>9,}  "
                         f"{q.carried_over:>12,}  {q.overflow_out:>12,}  {q.overflow_in:>11,}  "
                         f"{q.overdue:>9,}  {q.accepted:>9,}")
    if summary.nurture is not None and summary.nurture.tracks:
        tracks = ", ".join(f"{t} {n:,}" for t, n in summary.nurture.tracks.items())
        lines.append(f"nurture: {sum(summary.nurture.tracks.values()):,} recycled leads to "
                     f"{summary.nurture.team} ({tracks})")
    lines.append(f"wrote {summary.output} ({summary.decided:,} rows); rejects: {summary.rejects_file} "
                 f"({summary.leads_rejected + summary.events_rejected:,})"
                 + (f"; queues: {summary.queues_dir}/" if summary.queues_dir else ""))
    return "\n".join(lines) + "\n"


__all__ = [
    "DECISION_COLUMNS",
    "BatchRequest",
    "InputError",
    "Rejects",
    "Summary",
    "TooManyRejects",
    "count_rows",
    "default_rejects_path",
    "evaluate_export",
    "parse_as_of",
    "record_decision",
    "render_inputs",
    "render_summary",
    "resolve_inputs",
    "run_export",
    "write_decisions",
]
