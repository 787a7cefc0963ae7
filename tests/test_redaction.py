"""Keys never printed or stored: whole, cut short by the server, in error bodies, finish reasons,
inventory errors and fallback reasons (a real apply against a server that echoes the key)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cli_helpers import run_cli
from hostile_text_server import Script, hostile_server

from runner.errors import EXIT_INVENTORY, EXIT_JOBS_FAILED, InventoryError
from runner.inventory.config import ModelEntry, ModelsConfig, Server
from runner.inventory.source import load_inventory
from runner.redaction import hide_url_password, redact_error, redact_keys, url_password

KEY = "sk-live-0123456789abcdef"


def leaked(text: str, key: str = KEY) -> list[str]:
    """The prefixes of `key` of 8 characters or more found in `text`."""
    return [key[:n] for n in range(8, len(key) + 1) if key[:n] in text]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"bad key {KEY}", "bad key ***"),
        (f"Bearer {KEY}.", "Bearer ***."),
        (f"{KEY}{KEY}", "******"),
        (f"key {KEY[:12]}… is invalid", "key ***… is invalid"),  # echoed cut short
        (f"key {KEY[:8]}", "key ***"),
        (f"key {KEY[:7]}", "key sk-***"),  # not a prefix worth hiding, but shaped like a key
        (f"{KEY[:10]}XYZ", "***XYZ"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact_keys(text: str, shown: str) -> None:
    assert redact_keys(text, [KEY]) == shown


@pytest.mark.parametrize(
    ("key", "text", "shown"),
    [("abcdefghij", "x abcdefgh y abcdefg", "x *** y abcdefg"),
     ("test", "a test key", "a *** key"),  # a short key is still hidden whole
     ("abc", "abc", "abc")],
)
def test_other_keys(key: str, text: str, shown: str) -> None:
    assert redact_keys(text, [key]) == shown


def test_an_error_keeps_its_class_and_places() -> None:
    error = InventoryError(f"server said {KEY[:9]}")
    redacted = redact_error(error, [KEY])
    assert isinstance(redacted, InventoryError) and redacted.lines() == ["server said ***"]


def test_a_fallback_reason_echoing_the_key_is_redacted() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot send {request.headers['Authorization']}")

    server = Server("local", "http://127.0.0.1:9", "KEY_VAR")
    client = httpx.Client(transport=httpx.MockTransport(refuse))
    inv = load_inventory(server, ModelsConfig("m.yaml", models=(ModelEntry("m1"),)),
                         {"KEY_VAR": KEY}, client=client)
    assert inv.source == "fallback" and inv.fallback_reason is not None
    assert "cannot send Bearer ***" in inv.fallback_reason and not leaked(inv.fallback_reason)


def test_an_inventory_error_echoing_a_prefix_of_the_key_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = Script([], models_error=(400, f"key {KEY[:12]}… is invalid ({{key}})"))
    monkeypatch.setenv("EVIL_KEY", KEY + "\n")  # as read from a file
    with hostile_server(script) as url:
        (tmp_path / "servers.yaml").write_text(
            f"servers:\n  evil:\n    url: {url}\n    api_key_env: EVIL_KEY\n")
        code, out, err = run_cli(capsys, "inventory", "--config-dir", str(tmp_path))
    assert script.seen_keys == [f"Bearer {KEY}"]  # stripped of its newline
    assert code == EXIT_INVENTORY and "key ***… is invalid (***)" in err
    assert not leaked(out + err)


PLAN = """\
version: 1
name: echo
benchmarks:
  - {name: b, models: all, load: {requests: 2}, workload: {max_tokens: 4}}
"""


@pytest.mark.parametrize("probe", [False, True])
def test_apply_stores_and_prints_no_part_of_an_echoed_key(tmp_path: Path, probe: bool) -> None:
    """Without the probe the 401 is the job's error; with it, the probe's reason (the model is
    dropped, and its reason is in the manifest and on stderr)."""
    script = Script(["refuses", "reasons"], finish={"reasons": "stop {key}"},
                    errors={"refuses": (401, "invalid key {key}… (truncated: " + KEY[:11] + ")")})
    with hostile_server(script) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  evil:\n    url: {url}\n    api_key_env: EVIL_KEY\n")
        (tmp_path / "plan.yaml").write_text(PLAN)
        argv = [sys.executable, "-m", "runner", "apply", "plan.yaml", "--config-dir", "configs",
                "--results", "results", "--junit", "junit.xml", *([] if probe else ["--no-probe"])]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CI": "true", "EVIL_KEY": KEY})
    assert done.returncode == EXIT_JOBS_FAILED, done.stderr
    assert "invalid key ***… (truncated: ***)" in (done.stderr if probe else done.stdout)
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".sqlite"]
    assert {p.name for p in stored} >= {"manifest.json", "summary.md", "report.html", "junit.xml"}
    for path in stored:
        assert not leaked(path.read_text(errors="replace")), path
    assert not leaked(done.stdout + done.stderr)
    assert not leaked((tmp_path / "results" / "index.sqlite").read_bytes().decode("latin-1"))
    records = next(tmp_path.rglob("*reasons*.requests.jsonl")).read_text()
    assert '"finish_reason":"stop ***"' in records


@pytest.mark.parametrize(("text", "shown"), [
    ("postgresql://bench:pa55@db:5432/runs", "postgresql://bench:***@db:5432/runs"),
    ("postgres://bench:p%40ss@db/runs?sslmode=require",
     "postgres://bench:***@db/runs?sslmode=require"),
    ("postgresql://bench@db/runs?password=hunter22&sslmode=require",
     "postgresql://bench@db/runs?password=***&sslmode=require"),
    ('failed: "postgresql://:x@h/d": refused', 'failed: "postgresql://:***@h/d": refused'),
    ("postgresql://bench@db/runs", "postgresql://bench@db/runs"),
    ("postgresql:///runs?host=/tmp", "postgresql:///runs?host=/tmp"),
])
def test_url_passwords_are_hidden_and_the_user_kept(text: str, shown: str) -> None:
    assert hide_url_password(text) == shown


@pytest.mark.parametrize(("url", "password"), [
    ("postgresql://bench:pa55@db:5432/runs", "pa55"),
    ("postgres://bench:p%40ss@db/runs", "p%40ss"),  # as written: that is what a message holds
    ("postgresql://bench@db/runs?password=hunter22", "hunter22"),
    ("postgresql://bench@db/runs", None),
    ("postgresql://bench@[::1/runs", None),
])
def test_url_password(url: str, password: str | None) -> None:
    assert url_password(url) == password
