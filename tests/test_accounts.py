"""Accounts (engine.accounts, docs/accounts.md): keys, account values, the per-account handoff,
on both evaluate backends — the same files to the byte — and in replay and explain."""

from __future__ import annotations

import csv
import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.accounts import AccountFacts, Early, account_key, domain_of, facts, group
from engine.cli import cli
from engine.compile import CompiledPlaybook
from engine.io import parse_mapping
from engine.validate import load_playbook, validate_path
from tests.export_factory import AS_OF, write_csv
from tests.test_sql_batch import both

REPO = Path(__file__).resolve().parent.parent
ENTERPRISE = REPO / "playbooks" / "enterprise.yaml"

#: A small playbook whose account rules fire often on generated leads.
ACCOUNTS_PLAYBOOK = """\
apiVersion: engine/v1
kind: Playbook
metadata: {name: accounts, version: 2026.12.2, owners: {default: [t]}}
timezone: UTC
teams:
  marketing: {}
  inside_sales: {handoffs_per_week: 5}
  field_sales: {handoffs_per_week: 3}
lead:
  account: ACCOUNT
  fields: {email: string, company_domain: string, industry: string, employees: number,
           title: string, country: string, lead_source: string}
lists:
  freemail: [gmail.com, beta.example]
events:
  page_view: {fields: [content]}
  email_open: {}
  email_click: {}
  content_download: {fields: [content]}
  webinar_attend: {}
  quote_request: {}
  inquiry: {}
  unsubscribe: {}
personas:
  boss: {when: 'matches(lead.title, "部長|Director")'}
  staff: {when: 'matches(lead.title, "課長|Manager|Engineer")'}
targets:
  accounts: lead.industry == "software"
scoring:
  fit:
    rules:
      - {id: target, when: target_account, points: 20}
      - {id: size, when: lead.employees >= 500, points: 15}
      - {id: boss, when: persona("boss"), points: 10}
  engagement:
    half_life: 30d
    points: {page_view: 1, email_open: 1, email_click: 3, content_download: 8,
             webinar_attend: 10, quote_request: 30, inquiry: 40, unsubscribe: 0}
exclusions:
  - {id: student, when: 'matches(lead.title, "(?i)student|学生")'}
  - {id: unsubscribed, when: 'count("unsubscribe") > 0'}
stages:
  - {id: lead, owner: marketing}
  - {id: nurture, owner: marketing, entry: engagement > 0 or account.engagement >= 30}
  - {id: mql, owner: inside_sales, entry: fit >= 20 and engagement >= 10}
handoffs:
  - id: buying-group
    to: field_sales
    per: account
    when: account.contacts >= 2 and account_persona("boss") >= 1 and account.engagement >= 20
    sla: 2d
    priority: fit + engagement
  - id: mql
    to: inside_sales
    when: stage == "mql" and account.fit >= 20
    sla: 1d
    priority: engagement
"""

TITLES = ["部長", "課長", "Director", "Manager", "Engineer", "Student", ""]
TYPES = ["page_view", "email_open", "email_click", "content_download", "webinar_attend", "quote_request",
         "inquiry", "unsubscribe"]


def _playbook(folder: Path, account: str = "{domain_of: email}") -> Path:
    path = folder / "accounts.yaml"
    path.write_text(ACCOUNTS_PLAYBOOK.replace("ACCOUNT", account), encoding="utf-8")
    return path


def _cp(path: Path) -> CompiledPlaybook:
    result = load_playbook(path)
    assert result.compiled is not None, result.diagnostics
    return result.compiled


def _export(folder: Path, n: int, seed: int) -> tuple[Path, Path]:
    """Leads at a few companies (emails with mixed case, none, no @) and their events."""
    rng = random.Random(seed)
    leads, events = [], []
    for i in range(n):
        company = rng.choice(["Acme.example", "acme.example", "beta.example", "gamma.example", "solo"])
        email = rng.choice([f"u{i}@{company}", f"u{i}@{company.upper()}", "", f"nobody{i}"])
        leads.append([f"L{i:04d}", email, company, rng.choice(["software", "retail"]),
                      rng.choice(["", "50", "500", "5000"]), rng.choice(TITLES), "JP", "web",
                      "2026-01-01T00:00:00Z"])
        for _ in range(rng.randrange(0, 6)):
            at = AS_OF - timedelta(seconds=rng.randrange(0, 40 * 86400))
            kind = rng.choices(TYPES, [30, 20, 10, 10, 5, 3, 3, 1])[0]
            events.append([f"L{i:04d}", at.strftime("%Y-%m-%dT%H:%M:%SZ"), kind,
                           "pricing" if kind in ("page_view", "content_download") else ""])
    header = ["lead_id", "email", "company_domain", "industry", "employees", "title", "country",
              "lead_source", "created_at"]
    return (write_csv(folder / "leads.csv", header, leads),
            write_csv(folder / "events.csv", ["lead_id", "occurred_at", "type", "content_id"], events))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- keys and values ---------------------------------------------------------------------------


def test_domain_is_lower_cased_after_the_last_at() -> None:
    assert domain_of("Sato@Toyota.Example.JP") == "toyota.example.jp"
    assert domain_of("a@b@C.example") == "c.example"
    assert domain_of("x@İSTANBUL.example") == "i̇stanbul.example"  # as SQL LOWER after the U+0130 fix


def test_a_lead_without_an_account_is_its_own(tmp_path: Path) -> None:
    cp = _cp(_playbook(tmp_path))
    assert account_key(cp, {"email": "nobody"}) == ""
    assert account_key(cp, {"email": "x@"}) == ""
    assert account_key(cp, {}) == ""
    assert group(["a", "", "a", ""]) == [[0, 2], [1], [3]]  # two leads without one: two accounts


def test_account_values_skip_excluded_contacts_and_add_engagement_exactly() -> None:
    members = [Early("k", False, 10.0, 0.1, None, ("boss",)), Early("k", True, 50.0, 0.2, None, ()),
               Early("k", False, 90.0, 99.0, "student", ("boss",))]
    found = facts("k", True, members)
    assert found == AccountFacts("k", True, 50.0, 0.3, 2, {"boss": 1})  # 0.1 + 0.2 as hundredths
    assert facts("k", False, members[2:]) == AccountFacts("k", False, None, None, 0, {})


def test_a_freemail_domain_is_no_account(tmp_path: Path) -> None:
    cp = _cp(_playbook(tmp_path, "{domain_of: email, unless_in: freemail}"))
    assert account_key(cp, {"email": "a@GMAIL.com"}) == ""
    assert account_key(cp, {"email": "a@corp.example"}) == "corp.example"


def test_the_huge_account_case_is_the_same_on_both_backends(tmp_path: Path) -> None:
    case = REPO / "tests" / "hostile" / "19-2-huge-account"
    cp = _cp(case / "playbook.yaml")
    mapping = parse_mapping((case / "mapping.yaml").read_text(encoding="utf-8"))
    files = both(cp, tmp_path, case / "leads.csv", case / "events.csv", mapping=mapping)
    rows = list(csv.DictReader(files["d.csv"].decode().splitlines()))
    primary = [r for r in rows if r["account_contacts"]]
    assert len(primary) == 1 and len(primary[0]["account_contacts"].split(";")) == 2999


def test_account_id_field_must_be_a_declared_string(tmp_path: Path) -> None:
    result = validate_path(_playbook(tmp_path, account="employees"))
    assert any(d.code == "E-ACCOUNT-FIELD" for d in result.diagnostics)
    result = validate_path(_playbook(tmp_path, account="company"))
    assert any(d.code == "E-REF" and "company" in d.message for d in result.diagnostics)


def test_account_values_are_not_known_in_fit_rules(tmp_path: Path) -> None:
    path = _playbook(tmp_path)
    path.write_text(path.read_text().replace("when: target_account, points: 20",
                                             "when: account.fit > 1, points: 20"), encoding="utf-8")
    result = validate_path(path)
    messages = [d.message for d in result.diagnostics if d.severity.name == "ERROR"]
    assert any("account" in m and "fit is being scored" in m for m in messages), messages


# -- both backends -----------------------------------------------------------------------------


@pytest.mark.parametrize("account", ["{domain_of: email}", "company_domain",
                                     "{domain_of: email, unless_in: freemail}"])
@pytest.mark.parametrize("seed", [1, 2])
def test_backends_write_the_same_files_with_accounts(tmp_path: Path, account: str, seed: int) -> None:
    cp = _cp(_playbook(tmp_path, account))
    leads, events = _export(tmp_path, 150, seed)
    files = both(cp, tmp_path, leads, events)
    rows = list(csv.DictReader(files["d.csv"].decode().splitlines()))
    primaries = [r for r in rows if r["account_contacts"]]
    listed = [r for r in rows if r["account_primary"]]
    assert primaries and listed  # the generated accounts do fold handoffs
    for row in primaries:  # one account-level handoff per account
        assert row["handoff_rule"] == "buying-group"
        same = [r for r in primaries if r["account"] == row["account"]]
        assert len(same) == 1
        assert row["account_contacts"].split(";") == sorted(
            r["lead_id"] for r in listed if r["account"] == row["account"])
    for row in listed:
        assert row["handoff_rule"] != "buying-group"


ENTERPRISE_MAPPING = """\
version: 1
name: enterprise-test
null_values: [""]
leads:
  id: lead_id
  fields: {email: email, company_domain: company_domain, industry: industry,
           employees: {column: employees, type: number}, title: title, department: department,
           country: country, lead_source: lead_source}
events:
  lead_id: lead_id
  at: at
  type: type
  fields: {content: content}
"""


def _five_contacts(folder: Path) -> tuple[Path, Path]:
    """Five contacts at one target company (Hitachi, mixed-case emails) and one lone lead."""
    header = ["lead_id", "email", "company_domain", "industry", "employees", "title", "department",
              "country", "lead_source"]
    people = [("H-cio", "suzuki@Hitachi.example.jp", "CIO", "IT戦略部"),
              ("H-it", "tanaka@hitachi.example.jp", "課長", "情報システム部"),
              ("H-dx", "ito@hitachi.example.jp", "DX推進部長", "DX推進部"),
              ("H-eng", "kato@hitachi.example.jp", "エンジニア", "情報システム部"),
              ("H-buy", "kimura@HITACHI.example.jp", "購買担当", "調達部")]
    leads = [[i, e, "hitachi.example.jp", "manufacturing", "30000", t, d, "JP", "seminar"]
             for i, e, t, d in people]
    leads.append(["S-solo", "solo@small.example.jp", "small.example.jp", "retail", "20", "部長",
                  "総務部", "JP", "expo"])
    activity = [("H-cio", "2026-09-10T10:00:00+09:00", "seminar_attend", ""),
                ("H-cio", "2026-09-20T10:00:00+09:00", "content_download", "case-study-mfg"),
                ("H-it", "2026-09-05T10:00:00+09:00", "content_download", "wp-cloud"),
                ("H-it", "2026-09-12T10:00:00+09:00", "content_download", "security-sheet"),
                ("H-dx", "2026-09-25T10:00:00+09:00", "content_download", "roi-calculator"),
                ("H-eng", "2026-09-10T10:00:00+09:00", "seminar_attend", ""),
                ("H-buy", "2026-09-28T10:00:00+09:00", "page_view", "pricing"),
                ("S-solo", "2026-09-28T10:00:00+09:00", "seminar_attend", "")]
    return (write_csv(folder / "leads.csv", header, leads),
            write_csv(folder / "events.csv", ["lead_id", "at", "type", "content"],
                      [list(a) for a in activity]))


def test_five_contacts_at_a_target_company_get_one_account_handoff(tmp_path: Path) -> None:
    cp = _cp(ENTERPRISE)
    leads, events = _five_contacts(tmp_path)
    mapping = parse_mapping(ENTERPRISE_MAPPING)
    as_of = datetime(2026, 10, 1, tzinfo=UTC)
    files = both(cp, tmp_path, leads, events, mapping=mapping, as_of=as_of)
    rows = {r["lead_id"]: r for r in csv.DictReader(files["d.csv"].decode().splitlines())}
    assert rows["H-cio"]["handoff_rule"] == "buying-group"
    assert rows["H-cio"]["route"] == "field_sales"
    assert rows["H-cio"]["account"] == "hitachi.example.jp"
    assert rows["H-cio"]["account_contacts"] == "H-buy;H-dx;H-eng;H-it"
    for other in ("H-it", "H-dx", "H-eng", "H-buy"):
        assert rows[other]["account_primary"] == "H-cio"
        assert rows[other]["handoff_rule"] != "buying-group"
    assert rows["S-solo"]["account"] == "small.example.jp" and not rows["S-solo"]["account_primary"]
    queue = files["q/field_sales.csv"].decode()
    assert queue.count("buying-group") == 1
    # The due time counts from the account's latest activity (H-buy, 09-28) + 2d.
    assert rows["H-cio"]["due"] == "2026-09-30T10:00:00+09:00"


def test_evaluate_cli_summary_counts_accounts_and_contacts(tmp_path: Path) -> None:
    leads, events = _five_contacts(tmp_path)
    (tmp_path / "m.yaml").write_text(ENTERPRISE_MAPPING, encoding="utf-8")
    outputs = {}
    for backend in ("python", "duckdb"):
        result = CliRunner().invoke(cli, [
            "evaluate", str(ENTERPRISE), "--leads", str(leads), "--events", str(events),
            "--mapping", str(tmp_path / "m.yaml"), "--as-of", "2026-10-01T00:00:00Z",
            "--out", str(tmp_path / backend / "d.csv"), "--backend", backend], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert ("accounts        2 (+ 0 leads without an account, each its own); "
                "1 account-level handoffs listing 4 more contacts") in result.output
        outputs[backend] = (tmp_path / backend / "d.csv").read_bytes()
    assert outputs["python"] == outputs["duckdb"]


# -- replay and explain ------------------------------------------------------------------------


def test_explain_of_an_export_lead_reads_its_whole_account(tmp_path: Path) -> None:
    leads, events = _five_contacts(tmp_path)
    (tmp_path / "m.yaml").write_text(ENTERPRISE_MAPPING, encoding="utf-8")
    result = CliRunner().invoke(cli, [
        "explain", str(ENTERPRISE), "--leads", str(leads), "--events", str(events),
        "--mapping", str(tmp_path / "m.yaml"), "--lead", "H-it", "--as-of", "2026-10-01T00:00:00Z",
        "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["account_primary"] == "H-cio"
    seen = {s["rule"]: s["result"] for s in data["trace"] if s["section"] == "account"}
    assert seen["contacts"] == 5 and seen["target"] is True


def test_replay_takes_the_whole_account_from_the_fixture() -> None:
    fixture = REPO / "fixtures" / "enterprise" / "account-buying-group.yaml"
    result = CliRunner().invoke(cli, ["replay", str(ENTERPRISE), str(fixture)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "(account: H-it-manager content_download)" in result.output  # a contact's event is a step
    assert "account handoff lists H-dx-head, H-engineer, H-it-manager, H-procurement" in result.output


# -- engine diff -------------------------------------------------------------------------------


def test_diff_impact_decides_export_leads_and_fixtures_with_their_accounts(tmp_path: Path) -> None:
    from engine.diff_impact import Case, impact
    from engine.fixtures import load_fixture

    head_path = tmp_path / "enterprise.yaml"
    head_path.write_text(ENTERPRISE.read_text(encoding="utf-8").replace(
        "account.contacts >= 3", "account.contacts >= 6"), encoding="utf-8")
    shutil.copytree(REPO / "playbooks" / "lists", tmp_path / "lists")
    base, head = _cp(ENTERPRISE), _cp(head_path)
    fixture = load_fixture(REPO / "fixtures" / "enterprise" / "account-buying-group.yaml")
    people = [(fixture.lead_id, fixture.lead, fixture.events),
              *((c.lead_id, c.fields, c.events) for c in fixture.contacts)]
    export = [Case(lid, lead, list(events), fixture.as_of) for lid, lead, events in people]
    report = impact(base, head, export)
    moved = {(t.before, t.after): t.count for t in report.routes if t.before != t.after}
    # The primary loses the account handoff; a contact folded under it gets its own mql one.
    assert moved == {("field_sales", "inside_sales"): 1, ("none", "inside_sales"): 1}
    replayed = Case(fixture.lead_id, fixture.lead, fixture.events, fixture.as_of, fixture=True,
                    contacts=fixture.contacts)
    assert impact(base, head, [replayed]).changed == 1


def test_funnel_refuses_a_playbook_with_accounts_instead_of_guessing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    leads, events = _five_contacts(tmp_path)
    (tmp_path / "m.yaml").write_text(ENTERPRISE_MAPPING, encoding="utf-8")
    code = main(["funnel", str(ENTERPRISE), "--leads", str(leads), "--events", str(events),
                 "--mapping", str(tmp_path / "m.yaml"), "--from", "2026-09-01", "--to", "2026-10-01"])
    assert code == 1
    err = capsys.readouterr().err
    assert "engine funnel does not decide leads with their accounts yet" in err
    assert "Traceback" not in err
