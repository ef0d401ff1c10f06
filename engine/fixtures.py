"""Fixtures: a lead and its event history, written as YAML, replayed against a playbook.

A fixture states inputs only — the playbook it targets, the lead, its events, and
optionally when to look — never expected values: those live in the snapshot
beside it, written by the engine and reviewed in the pull request.

    apiVersion: engine/v1
    kind: Fixture
    playbook: ../playbooks/smb-saas.yaml
    description: A hot enquiry is fast-passed to field sales.
    lead:
      id: L-hot
      fields: {employees: 250, title: 部長, industry: software}
    events:
      - {at: "2026-10-20T10:00:00+09:00", type: page_view, content: pricing}
      - {at: "2026-10-21 09:00", type: inquiry}      # naive: the playbook's zone
    as_of: "2026-11-01T00:00:00+09:00"                # default: the last event
    check_at: ["2026-10-25T00:00:00+09:00"]          # extra instants in the timeline
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.accounts import Member
from engine.diagnostics import Diagnostic, EngineError
from engine.events import Event
from engine.io.timestamps import TimestampError, TimestampParser
from engine.listfiles import repository_root
from engine.load import Document, declared_kind, load_file
from engine.validate import ValidationResult, load_playbook

Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixtureLead(_Strict):
    """The lead: an id and its field values (types as the playbook declares)."""

    id: str = Field(min_length=1)
    fields: dict[str, Scalar] = Field(default_factory=dict)


class FixtureContact(FixtureLead):
    """Another lead of the same account, with its own events (the account's history)."""

    events: list[dict[str, Scalar]] = Field(default_factory=list)


class FixtureModel(_Strict):
    """The fixture file's shape; events stay loose here and are checked one by one."""

    apiVersion: str = "engine/v1"
    kind: str = Field(pattern="^Fixture$")
    playbook: str
    description: str | None = None
    lead: FixtureLead
    events: list[dict[str, Scalar]] = Field(default_factory=list)
    contacts: list[FixtureContact] = Field(
        default_factory=list,
        description="the other leads of the lead's account, each with its events (docs/accounts.md)")
    as_of: str | None = None
    check_at: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Fixture:
    """A loaded fixture: everything ``replay`` needs, times already timezone-aware."""

    path: Path
    playbook_path: Path
    description: str
    lead_id: str
    lead: dict[str, Any]
    events: tuple[Event, ...]
    as_of: datetime
    check_at: tuple[datetime, ...]
    lines: tuple[int, ...]  # the YAML line of each event, for readable failures
    contacts: tuple[Member, ...] = ()  # the account's other leads (engine.accounts)

    @property
    def name(self) -> str:
        """The fixture's file name without extension: its snapshot's name."""
        return self.path.stem


def _fail(doc: Document, path: list[str | int], message: str, hint: str | None = None) -> EngineError:
    diagnostic = doc.diagnostic(path, "E-FIXTURE", message, hint=hint)
    return EngineError(f"{doc.file}:{diagnostic.line}: {message}", [diagnostic])


def _model(doc: Document) -> FixtureModel:
    try:
        return FixtureModel.model_validate(doc.data)
    except ValidationError as exc:
        diagnostics: list[Diagnostic] = []
        for error in exc.errors(include_url=False):
            loc = [p for p in error["loc"] if isinstance(p, str | int)]
            diagnostics.append(doc.diagnostic(loc, "E-FIXTURE", str(error["msg"])))
        first = diagnostics[0]
        raise EngineError(f"{doc.file}:{first.line}: invalid fixture: {first.message}",
                          diagnostics) from None


PlaybookLoader = Callable[[Path], ValidationResult]


def _repository(folder: Path) -> Path:
    """The git work tree holding ``folder``; outside git, the folder the engine runs in."""
    root = repository_root(folder)
    return root if (root / ".git").exists() else Path.cwd().resolve()


def load_fixture(path: Path | str, playbooks: PlaybookLoader = load_playbook) -> Fixture:
    """Read and check a fixture against its playbook's event vocabulary.

    ``playbooks`` loads (and may cache) the playbook a fixture names, so a test run
    validates each playbook once however many fixtures target it.
    """
    path = Path(path)
    doc, problems = load_file(path)
    if doc is None:
        raise EngineError(f"{path}: cannot read fixture", problems)
    model = _model(doc)
    playbook_path = (path.parent / model.playbook).resolve()
    root = _repository(path.parent)
    if not playbook_path.is_relative_to(root):
        # A pull request is untrusted: its fixture must not make CI read (and print, in a
        # diagnostic's source line) a file outside the repository.
        raise _fail(doc, ["playbook"], f"playbook `{model.playbook}` is outside the repository",
                    f"name a playbook inside {root}, relative to the fixture's folder")
    if not playbook_path.is_file():
        raise _fail(doc, ["playbook"], f"playbook `{model.playbook}` not found",
                    "the path is relative to the fixture's folder")
    result = playbooks(playbook_path)
    assert result.playbook is not None
    pb = result.playbook
    parser = TimestampParser(default_tz=pb.timezone)
    declared = dict(pb.lead.fields)
    leads: list[tuple[list[str | int], FixtureLead]] = [(["lead"], model.lead)]
    leads += [(["contacts", i], c) for i, c in enumerate(model.contacts)]
    for where, lead in leads:
        for name in lead.fields:
            if declared and name not in declared:
                raise _fail(doc, [*where, "fields", name], f"lead field `{name}` is not declared by "
                            "the playbook", f"declared: {', '.join(declared)}")
    ids = [lead.id for _, lead in leads]
    for index, lead_id in enumerate(ids):
        if lead_id in ids[:index]:
            raise _fail(doc, [*leads[index][0], "id"], f"lead id `{lead_id}` appears twice",
                        "each contact of the account needs its own id")
    events, lines = _events(doc, pb, parser, model.events, ["events"])
    contacts = tuple(
        Member(c.id, dict(c.fields), tuple(_events(doc, pb, parser, c.events, ["contacts", i, "events"])[0]))
        for i, c in enumerate(model.contacts))
    instants = [e.at for e in events] + [e.at for c in contacts for e in c.events]
    try:
        as_of = parser.parse(model.as_of) if model.as_of else None
        check_at = tuple(parser.parse(t) for t in model.check_at)
    except TimestampError as exc:
        raise _fail(doc, ["as_of"], str(exc)) from None
    if as_of is None:
        if not instants:
            raise _fail(doc, ["events"], "a fixture without events needs `as_of`")
        as_of = max(instants)
    return Fixture(
        path=path,
        playbook_path=playbook_path,
        description=model.description or "",
        lead_id=model.lead.id,
        lead=dict(model.lead.fields),
        events=tuple(events),
        as_of=as_of,
        check_at=check_at,
        lines=tuple(lines),
        contacts=contacts,
    )


def _events(doc: Document, pb: Any, parser: TimestampParser, raws: list[dict[str, Scalar]],
            base: list[str | int]) -> tuple[list[Event], list[int]]:
    """A fixture's event list, each checked against the playbook's vocabulary."""
    events: list[Event] = []
    lines: list[int] = []
    for index, raw in enumerate(raws):
        where: list[str | int] = [*base, index]
        if "type" not in raw or "at" not in raw:
            raise _fail(doc, where, "an event needs `at` and `type`")
        etype = str(raw["type"])
        if etype not in pb.events:
            raise _fail(doc, [*where, "type"], f"unknown event type `{etype}`",
                        f"declared: {', '.join(pb.events)}")
        try:
            at = parser.parse(str(raw["at"]))
        except TimestampError as exc:
            raise _fail(doc, [*where, "at"], str(exc)) from None
        fields = {k: v for k, v in raw.items() if k not in ("type", "at", "id")}
        for name in fields:
            if name not in pb.events[etype].fields:
                raise _fail(doc, [*where, name], f"`{etype}` events have no field `{name}`",
                            f"declare it under events.{etype}.fields")
        event_id = str(raw["id"]) if raw.get("id") is not None else None
        answer = pb.events[etype].handoff
        if answer == "rejected" and fields.get("reason") not in pb.recycle:  # docs/handoffs.md
            raise _fail(doc, [*where, "reason"] if "reason" in raw else where,
                        f"a rejected handoff must give a recycle reason, not {fields.get('reason')!r}",
                        f"one of: {', '.join(pb.recycle)}")
        events.append(Event(etype, at, fields, event_id, index))
        lines.append(doc.position(where)[0])
    return events, lines


def is_fixture(path: Path) -> bool:
    """A YAML file whose top level says ``kind: Fixture``."""
    return declared_kind(path) == "Fixture"


def discover_fixtures(paths: Iterable[Path]) -> Iterator[Path]:
    """Fixture files under the given files or folders, in sorted order."""
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*.yaml")):
                if is_fixture(candidate):
                    yield candidate
        elif path.suffix in (".yaml", ".yml"):
            yield path
