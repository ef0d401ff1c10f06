"""The HTML reports in a real headless browser: they load with no console message and draw.

Needs Debian's `chromium` and the `[report]` extra (plotly). Skipped only outside CI
when one is missing; under CI (`CI` set) a missing one fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli, main
from tests.test_funnel import _export

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
         "--run-all-compositor-stages-before-draw"]


def _need(what: str, present: bool) -> None:
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing under CI: .ci/run must install it")
        pytest.skip(f"{what} is not installed (outside CI)")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    _need("chromium (apt-get install -y chromium)", found is not None)
    assert found is not None
    return found


def _plotly() -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        _need("plotly (pip install -e '.[report]')", False)


def _browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120, check=False)


def _funnel_html(tmp_path: Path) -> Path:
    playbook, leads, events = _export(tmp_path)
    out = tmp_path / "funnel.html"
    result = CliRunner().invoke(cli, ["funnel", str(playbook), "--leads", str(leads), "--events", str(events),
                                      "--from", "2026-01-05", "--to", "2026-01-26", "--format", "html",
                                      "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def _charts_drawn(dom: str) -> dict[str, int]:
    """Each chart section's count of plotly's rendered SVG roots (0: not drawn)."""
    sections = re.split(r'<section class="chart" id="section-', dom)[1:]
    return {part.split('"', 1)[0]: part.count('class="main-svg"') for part in sections}


def test_funnel_report_loads_and_draws(tmp_path: Path) -> None:
    _plotly()
    page = _funnel_html(tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "<script src=" not in text and "cdn" not in text.lower().split("<body>")[1]  # no network
    result = _browse(page, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    drawn = _charts_drawn(result.stdout)
    assert set(drawn) == {"funnel", "stages", "capacity-0", "overdue"}
    assert all(count >= 1 for count in drawn.values()), drawn
    assert 'class="trace bars"' in result.stdout or "funnellayer" in result.stdout
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    shot = tmp_path / "shot.png"
    result = _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert shot.exists() and shot.stat().st_size > 20_000   # a blank page is a few kB


def test_plan_report_loads_and_draws(tmp_path: Path) -> None:
    _plotly()
    from tests.test_plan import _playbook

    playbook = _playbook(tmp_path)
    out = tmp_path / "plan.html"
    assert main(["plan", str(playbook), "--format", "html", "--out", str(out)]) == 0
    result = _browse(out, tmp_path, "--dump-dom")
    drawn = _charts_drawn(result.stdout)
    assert set(drawn) == {"plan-funnel", "plan-slots", "plan-cac"} and all(drawn.values()), drawn
    assert [line for line in result.stderr.splitlines() if ":CONSOLE" in line] == []


def test_backtest_report_loads_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _plotly()
    from tests.test_backtest import LEADS, MAPPING, PLAYBOOK

    for name, text in (("p.yaml", PLAYBOOK), ("m.yaml", MAPPING), ("leads.csv", LEADS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    argv = ["backtest", str(tmp_path / "p.yaml"), "--mapping", str(tmp_path / "m.yaml"),
            "--leads", str(tmp_path / "leads.csv"), "--as-of", "2024-06-01", "--format", "html"]
    assert main(argv) == 0
    page = tmp_path / "backtest.html"
    page.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(argv) == 0 and capsys.readouterr().out == page.read_text(encoding="utf-8")  # same bytes
    text = page.read_text(encoding="utf-8")
    assert "<script src=" not in text and "capacity cut: 2 handoffs" in text
    result = _browse(page, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    drawn = _charts_drawn(result.stdout)
    assert set(drawn) == {"lift-0", "lift-1"} and all(drawn.values()), drawn
    assert "capacity cut" in result.stdout  # the marked cut is drawn (an annotation in the SVG)
    assert [line for line in result.stderr.splitlines() if ":CONSOLE" in line] == []
    shot = tmp_path / "shot.png"
    _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1400")
    assert shot.exists() and shot.stat().st_size > 20_000


def test_html_is_deterministic(tmp_path: Path) -> None:
    _plotly()
    first = _funnel_html(tmp_path).read_bytes()
    assert _funnel_html(tmp_path).read_bytes() == first


def test_a_broken_page_is_caught(tmp_path: Path) -> None:
    """The console check can fail: a page with a script error shows up in the log."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>", encoding="utf-8")
    result = _browse(page, tmp_path, "--dump-dom")
    assert any(":CONSOLE" in line and "undefinedFunction" in line for line in result.stderr.splitlines())
