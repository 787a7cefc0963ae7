"""Untrusted text made printable: the function, and hostile model ids and server messages through
inventory, plan, apply (progress and RECAP) and JUnit, against a real server and a real apply."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli
from hostile_text_server import Script, hostile_server

from runner.errors import EXIT_INVENTORY, EXIT_JOBS_FAILED, EXIT_OK
from runner.printable import lone_surrogate, printable, printable_lines


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ("llama3.1:8b é 模型", "llama3.1:8b é 模型"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("t\x1b]0;title\x07", "t\\x1b]0;title\\x07"),
        ("\x1b]8;;http://x/\x1b\\l\x1b]8;;\x1b\\", "\\x1b]8;;http://x/\\x1b\\l\\x1b]8;;\\x1b\\"),
        ("a\nFAKE: ok=999", "a\\nFAKE: ok=999"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("a\u202eb\u2066c\u200fd", "a\\u202eb\\u2066c\\u200fd"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("\ufffe\uffff\ud800", "\\ufffe\\uffff\\ud800"),
        ("\U000f0000", "\\U000f0000"),
        ("a b", "a b"),
        (42, "42"),
    ],
)
def test_printable(text: object, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown  # nothing left to escape


def test_printable_lines_keeps_its_own_newlines_only() -> None:
    assert printable_lines("a\x1b[2J\nb\rc\n") == "a\\x1b[2J\nb\\rc\n"
    assert printable_lines("plain\ntext") == "plain\ntext"


def test_printable_text_is_valid_xml() -> None:
    every = "".join(chr(c) for c in range(0x250)) + "\u202e\ufffe\uffff"
    element = ET.Element("a", b=printable(every))
    element.text = printable(every)
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert parsed.text == parsed.get("b") == printable(every)


CLEAR = "clear\x1b[2J\x1b[H"
TITLE = "title\x1b]0;pwned\x07"
LINK = "link\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
FORGE = "forge\njobs: ok=999 slo_missed=0 failed=0 skipped=0 interrupted=0"
CR = "cr\rRECAP overwritten"
BIDI = "bidi\u202eevil"
C1 = "c1\x9b2J\x85"
HOSTILE_IDS = [CLEAR, TITLE, LINK, FORGE, CR, BIDI, C1]
RAW = ("\x1b", "\x07", "\r", "\x9b", "\x85", "\u202e")  # none of these may reach a terminal

PLAN = """\
version: 1
name: hostile
benchmarks:
  - {name: b, models: all, load: {requests: 1}, workload: {max_tokens: 4}}
"""


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Path]:
    """A project whose server lists the hostile ids, fails one model's requests with a hostile
    message and ends another's stream with a hostile finish reason."""
    script = Script(HOSTILE_IDS, finish={TITLE: "\x1b[31mred\nFAKE: ok=999 failed=0"},
                    errors={CLEAR: (500, "\x1b[2Jboom\nFAKE: ok=999 failed=0\x1b]0;t\x07")})
    with hostile_server(script) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  evil:\n    url: {url}\n")
        (tmp_path / "plan.yaml").write_text(PLAN)
        yield tmp_path


def assert_printable(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)
    for line in text.splitlines():
        assert not line.startswith(("jobs: ok=999", "FAKE")), line


def test_inventory_shows_hostile_ids_escaped(
    hostile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "inventory", "--config-dir", str(hostile / "configs"))
    assert code == EXIT_OK, err
    assert_printable(out + err)
    assert "clear\\x1b[2J\\x1b[H" in out and "forge\\njobs: ok=999" in out
    assert len(out.splitlines()) == 3 + len(HOSTILE_IDS)  # source, blank, header, one per id


def test_plan_shows_hostile_ids_escaped(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "plan", str(hostile / "plan.yaml"), "--config-dir",
                             str(hostile / "configs"))
    assert code == EXIT_OK, err
    assert_printable(out + err)
    assert "    bidi\\u202eevil" in out.splitlines()


def test_apply_progress_recap_and_junit_never_print_raw_controls(hostile: Path) -> None:
    argv = [sys.executable, "-m", "runner", "apply", "plan.yaml", "--config-dir", "configs",
            "--results", "results", "--junit", "junit.xml", "--no-report"]
    done = subprocess.run(argv, cwd=hostile, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CI": "true"})
    assert done.returncode == EXIT_JOBS_FAILED, done.stderr
    assert_printable(done.stdout + done.stderr)
    recap = done.stdout.splitlines()
    assert [line for line in recap if line.startswith("jobs:")] == [
        "jobs: ok=5 slo_missed=0 failed=2 skipped=0 interrupted=0"]  # the finish reason fails
    assert any("\\x1b[2Jboom FAKE: ok=999" in line for line in recap)  # the server's message
    assert any("(finish_reason \\x1b[31mred FAKE: ok=999" in line for line in recap)
    assert any(line.startswith("[1/7] ") for line in done.stderr.splitlines())  # progress

    suites = ET.parse(hostile / "junit.xml").getroot()  # the file parses
    names = sorted(case.get("name", "") for case in suites.iter("testcase"))
    assert names == sorted(printable(i) + " concurrency=1" for i in HOSTILE_IDS)
    failure = next(f for f in suites.iter("failure"))
    assert "\\x1b[2Jboom" in failure.get("message", "")


def test_an_error_carrying_a_server_message_is_one_printable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = Script([], models_error=(400, "\x1b[2Jbad\x1b]0;title\x07 request\u202e"))
    with hostile_server(script) as url:
        (tmp_path / "servers.yaml").write_text(f"servers:\n  evil:\n    url: {url}\n")
        code, out, err = run_cli(capsys, "inventory", "--config-dir", str(tmp_path))
    assert code == EXIT_INVENTORY
    assert_printable(out + err)
    assert err.count("\n") == 1 and "\\x1b[2Jbad\\x1b]0;title\\x07 request\\u202e" in err


@pytest.mark.parametrize(("value", "found"), [
    ("Qwen/Qwen3-8B é 模型 \U0001f600", None),
    ("z\ud800", "\\ud800"),
    ({"k": ["x", "plans/\udcff.yaml"]}, "\\udcff"),
    ({"\udfff": 1}, "\\udfff"),
    ([1, None, 2.5], None),
])
def test_lone_surrogate_finds_text_no_file_can_hold(value: object, found: str | None) -> None:
    assert lone_surrogate(value) == found
