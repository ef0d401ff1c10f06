"""Reading exports without silent guesses (issue #13, items 3-7), on both backends.

Each test runs ``engine evaluate`` with ``--backend python`` and ``--backend duckdb``
and checks the two write byte-identical files and print the same summary, then checks
what that outcome is: the zone of naive times at the day boundary, missing and absent
columns, encodings, short rows, and ``matches()`` patterns read from the data.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main
from engine.evaluate import decide, decide_for_row
from engine.expr.regex import DataPatternError
from engine.kernel import kernel_for
from engine.validate import load_playbook

PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: inputs, version: 1.0.0}
timezone: Asia/Tokyo
teams:
  marketing: {}
  field_sales: {handoffs_per_week: 100}
lead:
  source: lead_source
  fields: {title: string, pattern: string, lead_source: string}
events:
  inquiry: {}
  page_view: {fields: [content]}
scoring:
  fit:
    cap: 60
    rules:
      - {id: title, when: 'matches(lead.title, "Director|部長|Directeur Général")', points: 40}
      - {id: source, when: lead.lead_source == "web_form", points: 20}
  engagement:
    half_life: 30d
    cap: 100
    points: {inquiry: 40, page_view: {points: 1, content: {pricing: 5}}}
stages:
  - {id: lead, owner: marketing}
  - {id: sql, owner: field_sales, entry: fit >= 40 and engagement >= 30}
handoffs:
  - {id: inquiry, to: field_sales, when: 'count("inquiry", within="14d") > 0', priority: 100 + fit}
  - {id: nurture, to: marketing, when: "True"}
"""
CANONICAL = ["lead_id", "email", "company_domain", "industry", "employees", "title", "country",
             "lead_source", "created_at"]


def _lead(lead_id: str, title: str) -> list[str]:
    return [lead_id, f"{lead_id.lower()}@corp.example.jp", "corp.example.jp", "software", "50", title,
            "JP", "web_form", "2026-01-01T00:00:00Z"]


def _csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture()
def playbook(tmp_path: Path) -> Path:
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return path


def _both(tmp_path: Path, args: list[str]) -> tuple[int, str, dict[str, str]]:
    """Run on both backends; assert they agree; return exit code, output, written files."""
    seen = {}
    for backend in ("python", "duckdb"):
        folder = tmp_path / backend
        result = CliRunner().invoke(cli, ["evaluate", *args, "--out", str(folder / "d.csv"),
                                          "--backend", backend], catch_exceptions=False)
        files = {str(p.relative_to(folder)): p.read_text(encoding="utf-8")
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        seen[backend] = (result.exit_code, result.output.replace(str(folder), "OUT"), files)
        assert "Traceback" not in result.output
    assert seen["duckdb"] == seen["python"]
    return seen["python"]


def _decisions(files: dict[str, str]) -> dict[str, dict[str, str]]:
    return {row["lead_id"]: row for row in csv.DictReader(files["d.csv"].splitlines())}


# -- item 3: naive timestamps are read in the playbook's zone ---------------------------------


def _boundary_export(tmp_path: Path) -> list[str]:
    """Two inquiries at naive local times 30 minutes either side of Tokyo midnight."""
    leads = _csv(tmp_path / "leads.csv", CANONICAL, [_lead("L1", "Director"), _lead("L2", "Director")])
    events = _csv(tmp_path / "events.csv", ["lead_id", "occurred_at", "type", "content_id"],
                  [["L1", "2026-10-27 23:30:00", "inquiry", ""],
                   ["L2", "2026-10-28 00:30:00", "inquiry", ""]])
    return ["--leads", str(leads), "--events", str(events), "--as-of", "2026-10-28"]


def test_naive_times_take_the_playbook_zone_at_the_day_boundary(tmp_path: Path, playbook: Path) -> None:
    code, output, files = _both(tmp_path, [str(playbook), *_boundary_export(tmp_path)])
    assert code == 0, output
    assert "naive timestamps read in Asia/Tokyo (from the playbook)" in output
    decided = _decisions(files)
    # 23:30 Tokyo is before the as-of (midnight Tokyo): counted. The preset's UTC read it
    # as 08:30 the next morning, after the as-of, and silently dropped it.
    assert (decided["L1"]["stage"], decided["L1"]["route"]) == ("sql", "field_sales")
    assert decided["L1"]["handoff_rule"] == "inquiry"
    assert (decided["L2"]["stage"], decided["L2"]["route"]) == ("lead", "marketing")


def test_timezone_option_and_mapping_file_override_the_playbook(tmp_path: Path, playbook: Path) -> None:
    args = [str(playbook), *_boundary_export(tmp_path)]
    code, output, files = _both(tmp_path / "option", [*args, "--timezone", "UTC"])
    assert code == 0 and "naive timestamps read in UTC (from --timezone)" in output
    assert _decisions(files)["L1"]["route"] == "marketing"  # 23:30 UTC is 08:30 in Tokyo: later
    mapping = tmp_path / "mine.yaml"
    mapping.write_text("version: 1\ntimezone: Europe/London\nleads: {id: lead_id, fields: {title: title, "
                       "lead_source: lead_source}}\nevents: {lead_id: lead_id, at: occurred_at, type: type, "
                       "fields: {content: content_id}}\n", encoding="utf-8")
    code, output, files = _both(tmp_path / "file", [*args, "--mapping", str(mapping)])
    assert code == 0 and "naive timestamps read in Europe/London (from the mapping file)" in output
    assert _decisions(files)["L1"]["route"] == "marketing"
    code, output, _ = _both(tmp_path / "both", [*args, "--mapping", str(mapping), "--timezone", "Asia/Tokyo"])
    assert code == 0 and "naive timestamps read in Asia/Tokyo (from --timezone)" in output
    assert main(["evaluate", *args, "--out", str(tmp_path / "x.csv"), "--timezone", "Tokyo"]) == 1


def test_presets_set_no_timezone() -> None:
    from engine.io import load_mapping, preset_names

    assert [name for name in preset_names() if load_mapping(name).timezone is not None] == []


# -- item 4: a missing column is an error unless the field is optional ------------------------


def test_missing_column_is_an_error_listing_the_columns(tmp_path: Path, playbook: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    header = [c for c in CANONICAL if c not in ("title", "country")]
    leads = _csv(tmp_path / "leads.csv", header, [[v for c, v in zip(CANONICAL, _lead("L1", "x"), strict=True)
                                                   if c in header]])
    for backend in ("python", "duckdb"):
        out = tmp_path / backend / "d.csv"
        code = main(["evaluate", str(playbook), "--leads", str(leads), "--as-of", "2026-10-28",
                     "--out", str(out), "--backend", backend])
        err = capsys.readouterr().err
        assert code == 1
        assert "the mapping needs columns 'title', 'country' but the file has only: 'lead_id'" in err
        assert "optional: true" in err and "Traceback" not in err
        assert not out.exists()


def test_absent_optional_fields_are_said_in_the_summary(tmp_path: Path, playbook: Path) -> None:
    mapping = tmp_path / "mine.yaml"
    mapping.write_text(
        "version: 1\nleads:\n  id: lead_id\n  fields:\n    title: {column: Title, optional: true}\n"
        "    lead_source: lead_source\nevents:\n  lead_id: lead_id\n  at: occurred_at\n  type: type\n"
        "  fields:\n    content: {column: content_id, optional: true}\n", encoding="utf-8")
    leads = _csv(tmp_path / "leads.csv", ["lead_id", "lead_source"],
                 [["L1", "web_form"], ["L2", "web_form"], ["L3", "event"]])
    events = _csv(tmp_path / "events.csv", ["lead_id", "occurred_at", "type"],
                  [["L1", "2026-10-27T10:00:00Z", "page_view"], ["L1", "2026-10-27T11:00:00Z", "inquiry"],
                   ["L3", "2026-10-27T10:00:00Z", "page_view"]])
    code, output, files = _both(tmp_path, [str(playbook), "--mapping", str(mapping), "--leads", str(leads),
                                           "--events", str(events), "--as-of", "2026-10-28"])
    assert code == 0, output
    assert ("absent  optional field 'title': no column 'Title' in the leads file; empty for 3 leads"
            in output)
    assert ("absent  optional field 'content': no column 'content_id' in the events file; "
            "empty for 2 leads with events" in output)
    assert _decisions(files)["L1"]["fit"] == "20.0"  # title empty, source scored


# -- item 5: encodings are detected only when certain ------------------------------------------


def test_latin1_stops_and_asks_for_the_encoding(tmp_path: Path, playbook: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    leads = _csv(tmp_path / "leads.csv", CANONICAL, [_lead("L1", "Directeur Général"), _lead("L2", "Gérant")],
                 encoding="latin-1")
    args = [str(playbook), "--leads", str(leads), "--as-of", "2026-10-28"]
    for backend in ("python", "duckdb"):
        out = tmp_path / backend / "d.csv"
        assert main(["evaluate", *args, "--out", str(out), "--backend", backend]) == 1
        err = capsys.readouterr().err
        assert "cannot tell the text encoding" in err and "--encoding" in err and "Traceback" not in err
        assert not out.exists() and not out.with_name("d.rejects.csv").exists()
    code, output, files = _both(tmp_path, [*args, "--encoding", "latin-1"])
    assert code == 0 and "read    leads file as iso8859-1 (--encoding)" in output
    assert _decisions(files)["L1"]["fit"] == "60.0"  # the title decoded right: matched


def test_utf8_bom_and_kanji_only_cp932_are_detected(tmp_path: Path, playbook: Path) -> None:
    rows = [_lead("L1", "部長"), _lead("L2", "課長"), _lead("L3", "学生")]
    outputs = {}
    for encoding, expected in (("cp932", "cp932 (detected)"), ("utf-8-sig", "utf-8-sig (detected)"),
                               ("utf-8", "utf-8 (detected)")):
        leads = _csv(tmp_path / f"{encoding}.csv", CANONICAL, rows, encoding=encoding)
        code, output, files = _both(tmp_path / encoding, [str(playbook), "--leads", str(leads),
                                                          "--as-of", "2026-10-28"])
        assert code == 0 and f"read    leads file as {expected}" in output
        outputs[encoding] = files["d.csv"]
    assert outputs["cp932"] == outputs["utf-8"] == outputs["utf-8-sig"]
    assert _decisions({"d.csv": outputs["cp932"]})["L1"]["fit"] == "60.0"


# -- item 6: short rows are rejected like long ones --------------------------------------------


def test_short_and_long_rows_are_rejects_with_their_line(tmp_path: Path, playbook: Path) -> None:
    leads = tmp_path / "leads.csv"
    lines = [",".join(CANONICAL), ",".join(_lead("L1", "Director")), "L2,l2@x.jp,x.jp,software,50,Director",
             ",".join(_lead("L3", "Director")), ",".join([*_lead("L4", "Director"), "extra"])]
    leads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, output, files = _both(tmp_path, [str(playbook), "--leads", str(leads), "--as-of", "2026-10-28"])
    assert code == 0, output
    assert "leads 4 read = 2 decided + 2 rejected" in " ".join(output.split())
    assert list(_decisions(files)) == ["L1", "L3"]
    rejects = list(csv.DictReader(files["d.rejects.csv"].splitlines()))
    assert [(r["row"], r["reason"]) for r in rejects] == [
        ("3", "the row has 6 values but the header has 9 names"),
        ("5", "the row has 10 values but the header has 9 names"),
    ]


# -- item 7: a regex read from the data is a reject, never a silent False ----------------------

REGEX_RULE = '      - {id: custom, when: "matches(lead.title, lead.pattern)", points: 5}\n'


def test_invalid_pattern_from_a_field_is_a_reject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    playbook = tmp_path / "regex.yaml"
    playbook.write_text(PLAYBOOK.replace("    rules:\n", "    rules:\n" + REGEX_RULE), encoding="utf-8")
    mapping = tmp_path / "mine.yaml"
    mapping.write_text("version: 1\nleads: {id: lead_id, fields: {title: title, pattern: pattern, "
                       "lead_source: lead_source}}\n", encoding="utf-8")
    leads = _csv(tmp_path / "leads.csv", ["lead_id", "title", "pattern", "lead_source"],
                 [["L1", "VP Sales", "VP|Head", "web_form"], ["L2", "VP Sales", "VP(", "web_form"],
                  ["L3", "VP Sales", "", "web_form"]])
    out = tmp_path / "d.csv"
    args = ["evaluate", str(playbook), "--mapping", str(mapping), "--leads", str(leads),
            "--as-of", "2026-10-28", "--out", str(out)]
    assert main([*args, "--backend", "python"]) == 0
    assert "leads 3 read = 2 decided + 1 rejected" in " ".join(capsys.readouterr().out.split())
    assert [row["fit"] for row in csv.DictReader(out.read_text(encoding="utf-8").splitlines())] == [
        "25.0", "20.0"]
    (reject,) = csv.DictReader(out.with_name("d.rejects.csv").read_text(encoding="utf-8").splitlines())
    assert reject["row"] == "3" and reject["value"] == "L2"
    assert reject["reason"].startswith("matches(): the pattern 'VP(', read from the data, is not a valid "
                                       "regular expression: missing )")
    # The SQL backends have no form for a pattern that is not a literal: they stop, naming it.
    assert main([*args, "--backend", "duckdb"]) == 1
    assert "matches() with a pattern that is not a literal string" in capsys.readouterr().err
    # decide and the generated kernel raise alike (the batch turns that into the reject above).
    compiled = load_playbook(playbook).compiled
    assert compiled is not None
    lead = {"title": "VP Sales", "pattern": "VP(", "lead_source": "web_form"}
    at = datetime(2026, 10, 28, tzinfo=UTC)
    for run in (decide, decide_for_row):
        with pytest.raises(DataPatternError, match="'VP\\('"):
            run(compiled, lead, [], at)
    kernel = kernel_for(compiled)  # the kernel never answers False for it: it raises the same error
    assert kernel is not None
    with pytest.raises(DataPatternError, match="'VP\\('"):
        kernel.decide(lead, [], at, "L2")
    assert kernel.decide({**lead, "pattern": "VP"}, [], at, "L1").fit == 25.0


def test_invalid_pattern_in_the_playbook_is_a_diagnostic(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    playbook = tmp_path / "regex.yaml"
    rule = ('      - {id: custom, when: "matches(lead.title, lead.pattern if lead.pattern else \'[\')", '
            'points: 5}\n')
    playbook.write_text(PLAYBOOK.replace("    rules:\n", "    rules:\n" + rule), encoding="utf-8")
    assert main(["validate", str(playbook)]) == 1
    assert "E-EXPR-REGEX" in capsys.readouterr().out
