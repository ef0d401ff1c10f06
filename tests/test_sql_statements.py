"""A DuckDB run's statements, rendered once and bound per run (issue #17).

``engine.sql.statements`` prints the playbook query with placeholders where the instant
goes and ``engine.sql.statement_cache`` keeps that text between runs. What must hold: a
bound statement is byte for byte what the query built with the instant prints; the key
changes with anything the text is rendered from; a kept entry that is damaged is a miss;
and a run that finds its statements never loads sqlglot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.batch import BatchRequest
from engine.compile import CompiledPlaybook
from engine.io import load_mapping
from engine.sql import NoSqlForm, statement_cache, statements
from engine.sql.statements import Statements, _render, render
from tests.conftest import PLAYBOOKS, ROOT
from tests.export_factory import (
    BENCH_PLAYBOOK,
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    make_export,
    make_rows,
    write_csv,
)
from tests.test_sql_batch import AS_OF, _cp, both

#: Instants to bind: a whole hour in UTC, and one with microseconds in a zone on its summer-time day.
INSTANTS = [datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 3, 29, 3, 30, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))]


def _requests(tmp_path: Path) -> dict[str, BatchRequest]:
    """One request of each shape: folded, promised order (general path), event ids, no events."""
    canonical = load_mapping("canonical")
    assert canonical.events is not None
    with_ids = canonical.model_copy(update={"events": canonical.events.model_copy(update={"id": "event_id"})})
    folded = BatchRequest(leads=tmp_path / "leads.csv", events=tmp_path / "events.csv",
                          out=tmp_path / "d.csv", as_of=AS_OF, mapping=canonical)
    return {"folded": folded, "sorted": replace(folded, events_sorted=True),
            "ids": replace(folded, mapping=with_ids), "no events": replace(folded, events=None)}


@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bound_statements_are_the_bytes_of_the_query_built_at_the_instant(playbook: Path,
                                                                          tmp_path: Path) -> None:
    cp = _cp(playbook)
    try:
        render(cp, _requests(tmp_path)["folded"])
    except NoSqlForm:
        pytest.skip("no SQL form")
    shapes = set()
    for request in _requests(tmp_path).values():
        rendered = render(cp, request)
        assert not rendered.bound
        assert "$as_of" in rendered.general.source
        shapes.add(rendered.fold is not None)
        for instant in INSTANTS:
            bound = rendered.bind(instant)
            assert bound == _render(cp, replace(request, as_of=instant), instant)
            assert "$as_of" not in bound.general.source and instant.isoformat() in bound.general.source
    if playbook == BENCH_PLAYBOOK:
        assert shapes == {True, False}  # both paths' statements were compared


def _spelling(tmp_path: Path) -> CompiledPlaybook:
    """The reference playbook with a string that spells both placeholders."""
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    assert text.count('lead.country == "JP"') == 1
    playbook = tmp_path / "spelling.yaml"
    spelt = text.replace('lead.country == "JP"', 'lead.country == "$as_of $as_of_us"')
    playbook.write_text(spelt, encoding="utf-8")
    return _cp(playbook)


def test_a_playbook_spelling_a_placeholder_is_bound_when_rendered_and_never_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/hostile/17-9-placeholder-spelt-in-a-playbook: the text is not searched for a
    placeholder it spells itself; the instant is built in, the string stays as written,
    and nothing is kept (the next run renders again)."""
    cp = _spelling(tmp_path)
    request = _requests(tmp_path)["folded"]
    rendered = render(cp, request)
    assert rendered.bound and "'$as_of $as_of_us'" in rendered.general.source
    assert rendered.bind(INSTANTS[1]) is rendered
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENGINE_CACHE", str(cache))
    statement_cache.store(statement_cache.key(cp, request), rendered)
    assert not cache.exists()
    leads, events = make_rows(120)
    country = LEAD_COLUMNS.index("country")
    for row in leads[:10]:
        row[country] = "$as_of $as_of_us"
    files = both(cp, tmp_path, write_csv(tmp_path / "leads.csv", LEAD_COLUMNS, leads),
                 write_csv(tmp_path / "events.csv", EVENT_COLUMNS, events))
    assert files["d.csv"].count(b"\n") == 121
    assert not cache.exists()


def test_the_key_follows_the_playbook_its_lists_the_shape_and_the_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    playbook = tmp_path / "playbook.yaml"
    text = BENCH_PLAYBOOK.read_text(encoding="utf-8")
    start = text.index("  competitors: [")
    end = text.index("]", start) + 1
    playbook.write_text(text[:start] + "  competitors: competitors.txt" + text[end:], encoding="utf-8")
    (tmp_path / "competitors.txt").write_text("rival0.example.com\n", encoding="utf-8")
    one = _cp(playbook)
    (tmp_path / "competitors.txt").write_text("rival1.example.com\n", encoding="utf-8")
    other = _cp(playbook)
    assert one.playbook.model_dump_json() == other.playbook.model_dump_json()  # only the list differs
    requests = _requests(tmp_path)
    keys = {statement_cache.key(one, r) for r in requests.values()}
    assert len(keys) == len(requests)  # each shape its own entry
    folded = requests["folded"]
    assert statement_cache.key(one, folded) != statement_cache.key(other, folded)
    assert statement_cache.key(one, folded) == statement_cache.key(one, replace(folded, as_of=INSTANTS[1]))
    assert statement_cache.key(one, folded) != statement_cache.key(_cp(BENCH_PLAYBOOK), folded)
    monkeypatch.setattr(statement_cache, "_code", lambda: b"another engine")
    assert statement_cache.key(one, folded) not in keys


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A cache folder of this test's own; each rendering of the runs to come, by playbook."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    seen: list[str] = []
    real = statements.render

    def recorded(cp: CompiledPlaybook, request: BatchRequest) -> Statements:
        seen.append("rendered")
        return real(cp, request)

    monkeypatch.setattr(statements, "render", recorded)
    return seen


def test_a_second_run_reads_the_kept_statements_and_writes_the_same_files(
        tmp_path: Path, renders: list[str]) -> None:
    cp = _cp(BENCH_PLAYBOOK)
    export = make_export(tmp_path, 80)
    first = both(cp, tmp_path / "1", *export)
    [entry] = (tmp_path / "cache").glob("*.json")
    second = both(cp, tmp_path / "2", *export, as_of=INSTANTS[1])
    third = both(cp, tmp_path / "3", *export)
    assert len(renders) == 1  # the later runs, at another instant too, read the entry
    assert first == third and first["d.csv"] != second["d.csv"]
    assert json.loads(entry.read_text(encoding="utf-8"))["format"] == statement_cache.FORMAT


@pytest.mark.parametrize("damage", ["", "{not json", '{"format": 1}', '{"format": 99}', "[" * 100_000,
                                    '"text"',
                                    '{"format": 1, "event_columns": [], "general": {"source": 1, '
                                    '"constants": {}, "has_row": false}, "fold": null, "folded": null}'])
def test_a_damaged_entry_is_rendered_again_and_written_anew(tmp_path: Path, renders: list[str],
                                                            damage: str) -> None:
    cp = _cp(BENCH_PLAYBOOK)
    export = make_export(tmp_path, 80)
    first = both(cp, tmp_path / "1", *export)
    [entry] = (tmp_path / "cache").glob("*.json")
    entry.write_text(damage, encoding="utf-8")
    assert both(cp, tmp_path / "2", *export) == first
    assert len(renders) == 2
    assert json.loads(entry.read_text(encoding="utf-8"))["format"] == statement_cache.FORMAT


@pytest.mark.parametrize("setting", ["off", "file in the way"])
def test_without_a_cache_every_run_renders_and_decides_the_same(
        tmp_path: Path, renders: list[str], monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    if setting == "off":
        monkeypatch.setenv("ENGINE_CACHE", "off")
    else:
        (tmp_path / "blocker").write_text("", encoding="utf-8")
        monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "blocker" / "cache"))
    cp = _cp(BENCH_PLAYBOOK)
    export = make_export(tmp_path, 80)
    assert both(cp, tmp_path / "1", *export) == both(cp, tmp_path / "2", *export)
    assert len(renders) == 2
    assert not (tmp_path / "cache").exists()


def test_a_run_that_finds_its_statements_loads_no_sqlglot(tmp_path: Path) -> None:
    leads, events = make_export(tmp_path, 30)
    script = ("import sys\nfrom engine.cli import main\n"
              "assert main(sys.argv[1:]) == 0\nprint('sqlglot' in sys.modules)\n")
    loaded = []
    for run in range(2):
        argv = ["evaluate", str(BENCH_PLAYBOOK), "--leads", str(leads), "--events", str(events),
                "--as-of", "2026-11-01", "--out", str(tmp_path / f"d{run}.csv"), "--no-progress"]
        done = subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, capture_output=True, text=True,
                              env=_env(tmp_path), timeout=300, check=True)
        loaded.append(done.stdout.splitlines()[-1])
    assert loaded == ["True", "False"]
    assert (tmp_path / "d0.csv").read_bytes() == (tmp_path / "d1.csv").read_bytes()


def _env(tmp_path: Path) -> dict[str, Any]:
    return {**os.environ, "ENGINE_CACHE": str(tmp_path / "cache")}


def test_the_folder_keeps_only_the_most_recently_used_entries(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENGINE_CACHE", str(cache))
    monkeypatch.setattr(statement_cache, "KEEP", 3)
    cp = _cp(BENCH_PLAYBOOK)
    requests = list(_requests(tmp_path).values())
    rendered = [render(cp, r) for r in requests]
    for age, (request, statements_) in enumerate(zip(requests[:3], rendered[:3], strict=True)):
        statement_cache.store(statement_cache.key(cp, request), statements_)
        path = cache / f"{statement_cache.key(cp, request)}.json"
        os.utime(path, ns=(age * 10**9, age * 10**9))  # the first stored is the oldest
    assert statement_cache.load(statement_cache.key(cp, requests[0])) is not None  # used now: the newest
    # one too many: the least recently used goes
    statement_cache.store(statement_cache.key(cp, requests[3]), rendered[3])
    kept = {p.stem for p in cache.glob("*.json")}
    assert kept == {statement_cache.key(cp, r) for r in (requests[0], requests[2], requests[3])}


def test_the_folder_is_engine_cache_else_an_absolute_cache_home_else_none(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """A relative XDG_CACHE_HOME is ignored (as the XDG spec says), and a process without a
    home keeps nothing rather than writing a folder named "~" where it runs."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "mine"))
    assert statement_cache.folder() == tmp_path / "mine"
    monkeypatch.setenv("ENGINE_CACHE", "OFF")
    assert statement_cache.folder() is None
    monkeypatch.delenv("ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert statement_cache.folder() == tmp_path / "xdg" / "revenue-playbook-engine"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert statement_cache.folder() == tmp_path / "home" / ".cache" / "revenue-playbook-engine"
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no home to expand "~" to
    assert statement_cache.folder() is None
