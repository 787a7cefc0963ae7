"""A server's URL: one root for every client (`/v1` as copied from OpenAI configs works), and a
URL no client can use is exit 2 at its place in servers.yaml, never a crash later."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli, write_plan

from runner.errors import EXIT_INVALID, EXIT_OK
from runner.inventory.config import Server
from runner.inventory.serverurl import base_url, url_problem
from runner.run.serverlock import server_key

PLAN = """\
version: 1
name: tiny
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {requests: 3, concurrency: 2}
"""


@pytest.mark.parametrize(("url", "root"), [
    ("http://127.0.0.1:4000", "http://127.0.0.1:4000"),
    ("http://127.0.0.1:4000/", "http://127.0.0.1:4000"),
    ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4000"),
    ("http://127.0.0.1:4000/v1/", "http://127.0.0.1:4000"),
    ("https://gw.example/litellm/v1", "https://gw.example/litellm"),
    ("https://gw.example/v1x", "https://gw.example/v1x"),
])
def test_one_root_url_however_it_is_written(url: str, root: str) -> None:
    assert base_url(url) == root
    assert Server("s", url).url == root  # every client takes the url from a Server
    assert server_key(url) == server_key(root)


# Each passed `runner validate`, then `runner plan` or `apply` exited 70 (or every request 404'd).
BAD_URLS = [
    ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
    ("http://999.999.999.999/", "has an invalid IP address '999.999.999.999'"),
    ("http://127.0.0.1:4000/\\0x", "control character"),  # the schema's words, editors' too
    ("http://127.0.0.1:4000/a\\tb", "control character"),
    ("http://127.0.0.1:99999/", "is not a valid URL (Port out of range 0-65535)"),
    ("http://127.0.0.1:0/", "has port 0"),
    ("http://:80/", "names no host"),
    ("http://01.2.3.4/", "has an invalid IP address '01.2.3.4'"),
    ("http://[zz]/", "is not a valid URL"),
    ("http://a..b:4000", "has an invalid host name 'a..b'"),
    ("http://-proxy-/", "has an invalid host name '-proxy-'"),
    ("http://m\\u00fcnchen.example/", "has a non-ASCII host"),
    ("http://127.0.0.1:4000/v1/chat/completions", "names an endpoint"),
    ("http://127.0.0.1:4000/v1/models", "names an endpoint"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_a_url_no_client_can_use_is_exit_2_at_its_place(
    url: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f'servers:\n  p:\n    url: "{url}"\n')
    plan = write_plan(tmp_path, PLAN)
    code, out, _ = run_cli(capsys, "validate", str(configs / "servers.yaml"))
    assert code == EXIT_INVALID
    assert out.startswith(f"{configs / 'servers.yaml'}:3:10: ") and reason in out
    assert out.rstrip().endswith("e.g. http://127.0.0.1:4000 (at $.servers.p.url)")
    for command in ("plan", "apply"):
        code, _, err = run_cli(capsys, command, str(plan), "--config-dir", str(configs))
        assert code == EXIT_INVALID and reason in err and "internal error" not in err


@pytest.mark.parametrize("url", ["http://127.0.0.1:4000", "http://[::1]:4000/proxy",
                                 "https://proxy_1.internal.example:8443/litellm/v1/",
                                 "http://localhost"])
def test_ordinary_urls_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_a_url_ending_in_v1_reaches_the_simulator(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`/v1` as copied from OpenAI configs: the inventory worked, then every request went to
    /v1/v1/chat/completions and got 404."""
    with simulator("--models", "m") as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}{suffix}\n")
        plan = write_plan(tmp_path, PLAN)
        results = tmp_path / "results"
        code, out, err = run_cli(capsys, "apply", str(plan), "--config-dir", str(configs),
                                 "--results", str(results), "--source", "live")
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "tiny")
    assert manifest(run)["inventory"]["url"] == url
    assert [job["status"] for job in manifest(run)["jobs"]] == ["ok"]
    assert "jobs: ok=1 " in out


@pytest.mark.parametrize("url", ["http://h/\x00", "http://h/a b", "http://h\x7f/"])
def test_a_control_character_or_a_space_is_named(url: str) -> None:
    """`runner init --url` checks with the same function as servers.yaml."""
    assert url_problem(url) == "holds a space or a control character"


@pytest.mark.parametrize(("given", "written"), [
    ("http://127.0.0.1:9/v1", "http://127.0.0.1:9"),
    ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9"),
])
def test_init_writes_the_root_url(
    given: str, written: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "init", str(tmp_path), "--url", given)
    assert code == EXIT_OK, err  # an unreachable proxy is a warning
    assert f'url: "{written}"\n' in (tmp_path / "configs" / "servers.yaml").read_text()


@pytest.mark.parametrize("url", ["http://[::1", "http://999.999.999.999/", "http://h:4000?x=1"])
def test_init_refuses_a_url_no_client_can_use(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "init", str(tmp_path), "--url", url)
    assert code == EXIT_INVALID and err.startswith("error: --url: ") and "internal" not in err
    assert not (tmp_path / "configs").exists()
