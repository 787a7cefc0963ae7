"""The HTML report in a real browser: headless Chromium, offline, DOM checks and a screenshot."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from stored_runs import EVIL, PER_JOB, Spec, grid, mixed_run, store_run

from runner.report.render import write_reports

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
OFFLINE = ('--host-resolver-rules=MAP * ~NOTFOUND', "--proxy-server=127.0.0.1:9")
PROBE = "document.documentElement.dataset.pwned = '1'"


def chromium() -> str:
    """The chromium binary; skips the test locally when it is missing, fails it in CI."""
    found = shutil.which("chromium") or ("/usr/bin/chromium"
                                         if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    message = ("no chromium on PATH or at /usr/bin/chromium, which the browser tests need"
               " (bash .ci/install-chromium installs it)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def browse(page: Path, tmp: Path, *args: str) -> str:
    """Open `page` offline in a fresh profile; returns stdout (the DOM for --dump-dom)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    argv = [chromium(), *FLAGS, *OFFLINE, f"--user-data-dir={profile}", *args, page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """What the tests need from a dumped DOM: root attributes, svgs and rows per benchmark."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.bench: str | None = None
        self.svgs: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.hidden_dists = 0
        self.cells: list[str] = []
        self._in_jobs = False
        self._in_td = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.root = a
        elif tag == "details" and "data-benchmark" in a:
            self.bench = a["data-benchmark"]
            self.svgs[str(self.bench)] = self.rows[str(self.bench)] = 0
        elif tag == "svg" and self.bench is not None:
            self.svgs[self.bench] += 1
        elif tag == "table":
            self._in_jobs = "jobs" in (a.get("class") or "")
        elif tag == "tr" and self._in_jobs and self.bench is not None:
            self.rows[self.bench] += 1
        elif tag == "div" and "dist-job" in (a.get("class") or "") and "hidden" in a:
            self.hidden_dists += 1
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td and self._in_jobs:
            self.cells.append(data)
            self._in_td = False


def report_page(tmp_path: Path) -> Path:
    run_dir = mixed_run(tmp_path / "results")
    return Path(write_reports(run_dir)[0])


def test_report_renders_offline_with_charts_tables_and_no_script_errors(tmp_path: Path) -> None:
    dom = Dom(browse(report_page(tmp_path), tmp_path, "--dump-dom"))
    assert dom.root.get("data-ready") == "1", dom.root
    assert "data-errors" not in dom.root and "data-pwned" not in dom.root
    # 3 trend charts, plus TTFT and E2E histograms for each job with successful requests
    assert dom.svgs == {"latency": 3 + PER_JOB * 8, "stress": 3 + PER_JOB * 3}
    assert dom.rows == {"latency": 1 + 8, "stress": 1 + 4}  # header + jobs
    assert dom.hidden_dists == 7 + 2  # one distribution shown per benchmark
    assert EVIL in dom.cells  # the model id is shown as text, not run as a script


def test_untrusted_text_never_runs(tmp_path: Path) -> None:
    evil = f"<img src=x onerror=\"{PROBE}\"><script>{PROBE}</script>"
    run_dir = store_run(tmp_path / "results", [
        Spec("x", evil, {"concurrency": 1}, fail_every=2, message=evil),
        Spec("x", "m", {"concurrency": 1}, status="failed", n=0, error=evil),
    ])
    dom = Dom(browse(Path(write_reports(run_dir)[0]), tmp_path, "--dump-dom"))
    assert dom.root.get("data-ready") == "1" and "data-pwned" not in dom.root


def test_table_sorts_on_header_click(tmp_path: Path) -> None:
    page = report_page(tmp_path)
    # Click "TTFT p50" (column 6) twice in the latency table, recording the model order.
    probe = """<script>
    var table = document.querySelector("table.jobs"), th = table.tHead.rows[0].cells[5];
    function order() { return Array.prototype.map.call(table.tBodies[0].rows,
        function (r) { return r.cells[5].getAttribute("data-v"); }).join(" "); }
    th.click(); document.documentElement.dataset.up = order();
    th.click(); document.documentElement.dataset.down = order();
    </script></body>"""
    page.write_text(page.read_text().replace("</body>", probe))
    dom = Dom(browse(page, tmp_path, "--dump-dom"))
    up = [float(v) for v in str(dom.root.get("data-up")).split()]
    down = [float(v) for v in str(dom.root.get("data-down")).split()]
    assert len(up) == 8 and up == sorted(up) and down == sorted(up, reverse=True)
    assert "data-errors" not in dom.root


def test_report_without_javascript_still_shows_tables_and_charts(tmp_path: Path) -> None:
    # Headless --dump-dom needs scripting on, so the page's own policy blocks its scripts.
    page = report_page(tmp_path)
    text = page.read_text()
    assert "script-src 'unsafe-inline'" in text
    page.write_text(text.replace("script-src 'unsafe-inline'", "script-src 'none'"))
    dom = Dom(browse(page, tmp_path, "--dump-dom"))
    assert "data-ready" not in dom.root and dom.hidden_dists == 9
    assert dom.rows == {"latency": 9, "stress": 5} and dom.svgs["latency"] == 3 + PER_JOB * 8


def test_screenshot_is_a_png_of_the_whole_window(tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    browse(report_page(tmp_path), tmp_path, f"--screenshot={shot}", "--window-size=1280,1600",
           "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert struct.unpack(">II", data[16:24]) == (1280, 1600)
    print(f"screenshot: {shot}")


def test_a_hundred_jobs_open_in_the_browser(tmp_path: Path) -> None:
    models = [f"org/model-{i}" for i in range(6)]
    specs = [s for b in ("a", "b") for s in grid(b, models, [1, 2, 4, 8, 16, 32, 64, 128], n=5)]
    page = Path(write_reports(store_run(tmp_path / "results", specs))[0])
    dom = Dom(browse(page, tmp_path, "--dump-dom"))
    assert dom.root.get("data-ready") == "1" and "data-errors" not in dom.root
    assert dom.rows == {"a": 49, "b": 49}
    assert dom.svgs == {"a": 3 + PER_JOB * 40, "b": 3 + PER_JOB * 40}
