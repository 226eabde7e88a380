"""`logroll report`: a self-contained HTML file, opened in a real headless Chromium.

Needs Debian's `chromium` package (apt-get install chromium). The screenshot is kept as
test-artifacts/report.png.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from logroll.dates import folder_day, layout_regex
from logroll.htmlreport.charts import script_json
from logroll.htmlreport.data import reason_kind

from conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"
EVIL_NAME = "<img src=x onerror=alert(1)>.csv"
EVIL_ROW = "evil-1,2021-01-30 10:00:00,</script><script>alert(2)</script>,u,mobile"


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("the HTML report test needs Debian's chromium: apt-get install -y chromium")
    return exe


def open_in_chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless, no network, console messages on stderr; lets scripts finish first."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--virtual-time-budget=20000",
            *mode,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def console_lines(stderr: str) -> list[str]:
    """What the page said on the console: errors, warnings, CSP violations (network attempts)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def report_page(cli, impressions_raw, tmp_path) -> Path:
    # Data with markup in it: a file name and a rejected row that would run script if unescaped.
    (impressions_raw / "2021/01/30" / EVIL_NAME).write_text("WHO,WHAT\n1,2\n")
    evil = impressions_raw / "2021/01/30/evil.csv"
    evil.write_text("IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n" + EVIL_ROW + "\n")
    dest = tmp_path / "results"
    args = ["--source", str(impressions_raw), "--dest", str(dest)]
    assert cli("run", "impressions", "2021-01-29", *args).code == 1  # the evil file is rejected
    blocked = dest / "2021/01/31/daily_agg_20210131_Guy_Fawkes.csv"
    blocked.mkdir(parents=True)  # a day that fails, for the "not built" table
    assert cli("run", "impressions", "2021-01-30", "--to", "2021-01-31", *args).code == 1
    blocked.rmdir()
    assert cli("run", "impressions", "2021-01-31", *args).code == 0
    out = tmp_path / "report" / "report.html"
    res = cli("report", "impressions", "--dest", str(dest), "--out", str(out))
    assert res.code == 0, res.err
    assert re.fullmatch(r"wrote .*report\.html \(\d+ days, 3 runs, \d+ quarantine samples\)\n", res.out)
    return out


def test_report_renders_in_chromium(report_page, tmp_path):
    text = report_page.read_text()
    # Self-contained: scripts inline only, nothing loaded from anywhere, and a CSP that says so.
    assert not re.search(r"<script[^>]+src=", text, re.I)
    markup = re.sub(r"(?is)<script[^>]*>.*?</script>", "", text)  # the page outside its scripts
    tags = re.findall(r"<[a-zA-Z][^>]*>", markup)
    assert tags and not [
        tag for tag in tags if re.search(r"^<(img|link|iframe|object|embed)\b|\s(src|href)\s*=", tag, re.I)
    ]
    assert "Content-Security-Policy" in text and "default-src &#x27;none&#x27;" in text
    # Escaped: the markup in the data is text, never tags.
    assert "<img src=x" not in text and "alert(2)</script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in text
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in text
    charts = re.findall(r'<script type="application/json" data-chart="(\w+)">', text)
    assert charts == ["rows", "duplicates", "arrivals", "rejects", "runs"]
    assert text.count("<script") == len(charts) + 3  # error hook, Vega bundle, render

    dom = open_in_chromium(report_page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_lines(dom.stderr) == []  # no JS error, no warning, no blocked request
    html = dom.stdout
    root = re.search(r"<html[^>]*>", html).group(0)
    assert 'data-charts="rendered"' in root and "data-js-errors" not in root, root
    for chart in charts:
        m = re.search(
            rf'<div class="chart[^"]*" id="chart-{chart}"[^>]*data-rendered="ok"[^>]*>(.*?)</svg>', html, re.S
        )
        assert m, f"chart {chart} did not render"
        svg = m.group(1)
        assert re.match(r'<svg [^>]*class="marks"', svg)
        assert re.search(r'<path[^>]+d="M', svg), f"chart {chart} drew nothing"
    # The markup from the data is still text after the scripts ran.
    rendered = re.sub(r"(?is)<script[^>]*>.*?</script>", "", html)
    assert "<img" not in rendered and "<script" not in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in html
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "chart failed" not in rendered

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    res = open_in_chromium(
        report_page, tmp_path / "profile-shot", "--window-size=1100,2800", f"--screenshot={shot}"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_lines(res.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_report_of_an_empty_state(cli, tmp_path):
    from logroll.catalog import Catalog

    out = tmp_path / "r.html"
    # a state with nothing in it (a missing destination is an error: tests/test_state.py)
    Catalog(str(tmp_path / "nothing" / "_logroll" / "catalog.sqlite")).close()
    res = cli("report", "impressions", "--dest", str(tmp_path / "nothing"), "--out", str(out))
    assert res.code == 0, res.err
    assert res.out == f"wrote {out} (0 days, 0 runs, 0 quarantine samples)\n"
    text = out.read_text()
    assert "No day has been built yet." in text and "No runs yet." in text
    assert 'data-chart="' not in text


def test_script_json_cannot_close_the_script():
    encoded = script_json({"raw": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in encoded and ">" not in encoded and "&" not in encoded
    import json

    assert json.loads(encoded) == {"raw": "</script><script>alert(1)</script> & <!--"}


def test_late_rows_come_from_the_folder_day():
    pattern = layout_regex("%Y/%m/%d")
    assert folder_day("s3://b/raw/2021/01/30/impressions_20210129.csv", pattern) == "2021-01-30"
    assert folder_day("/data/x.csv", pattern) is None
    assert folder_day("/d/01-30-2021/x.csv", layout_regex("%m-%d-%Y")) == "2021-01-30"
    assert layout_regex("%Y/%m") is None
    assert reason_kind("bad CAMPAIGN_ID: expected an integer, got 'five'") == "bad CAMPAIGN_ID"
    assert reason_kind("too few columns") == "too few columns"
