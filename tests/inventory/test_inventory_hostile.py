"""The live inventory against a hostile server (tests/hostile_server.py, real sockets): deep,
huge, compressed or garbage answers fall back to models.yaml with the reason, never exit 70."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_configs
from hostile_client import measure
from hostile_server import hostile_server
from hostile_text_server import Script
from hostile_text_server import hostile_server as text_server

from runner.errors import EXIT_INVENTORY, EXIT_OK
from runner.inventory.config import ModelEntry, ModelsConfig, Server, load_servers
from runner.inventory.source import load_inventory

Url = Callable[[str], str]
MODELS = ModelsConfig("configs/models.yaml", models=(ModelEntry("fallback-model"),))


@pytest.fixture(scope="module")
def url() -> Iterator[Url]:
    with hostile_server() as url:
        yield url


FALLBACKS = [  # (server case, the reason's ending)
    ("deep", "/deep/v1/models is JSON nested too deeply to parse"),
    ("deeperror", "HTTP 500 from {url}/deeperror/v1/models (3 attempts)"),
    ("line~40000000", "/line~40000000/v1/models is larger than 33554432 bytes"
                      " (limits.inventory_bytes in servers.yaml)"),
    ("gzip", "/gzip/v1/models is gzip-compressed, though runner asks for identity"),
    ("errbody", "/errbody/v1/models is larger than 33554432 bytes"
                " (limits.inventory_bytes in servers.yaml)"),
    ("garbage", "/garbage/v1/models is not JSON"),
]


@pytest.mark.parametrize(("case", "reason"), FALLBACKS, ids=[c[0] for c in FALLBACKS])
def test_a_hostile_models_answer_falls_back_with_the_reason(
    url: Url, case: str, reason: str
) -> None:
    server = Server("hostile", url(case), timeout_s=20)
    inventory = load_inventory(server, MODELS, {})
    assert inventory.source == "fallback" and inventory.ids() == ["fallback-model"]
    assert inventory.fallback_reason is not None
    base = url("").rstrip("/")
    assert inventory.fallback_reason.endswith(reason.format(url=base)), inventory.fallback_reason


def test_a_hostile_model_info_only_costs_the_metadata(url: Url) -> None:
    inventory = load_inventory(Server("hostile", url("deepinfo"), timeout_s=20), MODELS, {})
    assert inventory.source == "live" and inventory.ids() == ["m"]
    assert inventory.models[0].mode is None


def test_inventory_bytes_comes_from_servers_yaml(url: Url, tmp_path: Path) -> None:
    configs = write_configs(tmp_path / "configs", url("line~200000"))
    text = (configs / "servers.yaml").read_text()
    limits = "    limits: {inventory_bytes: 65536}\n"
    (configs / "servers.yaml").write_text(text.replace("    timeout_s: 30\n",
                                                       "    timeout_s: 30\n" + limits, 1))
    server = load_servers(str(configs)).servers["local"]
    assert server.limits["inventory_bytes"] == 65536 and server.limits["line_bytes"] == 4 << 20
    inventory = load_inventory(server, MODELS, {})
    assert (inventory.fallback_reason or "").endswith("is larger than 65536 bytes"
                                                      " (limits.inventory_bytes in servers.yaml)")
    default = load_servers(str(write_configs(tmp_path / "more", url("line~200000"))))
    assert load_inventory(default.servers["local"], MODELS, {}).source == "live"


def test_runner_inventory_warns_and_lists_the_fallback(
    url: Url, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(write_configs(tmp_path / "configs", url("deep"))))
    code, out, err = run_cli(capsys, "inventory")
    assert code == EXIT_OK, err
    assert "WARNING" in err + out and "nested too deeply to parse" in err + out
    assert "Qwen/Qwen3-8B" in out


@pytest.mark.parametrize("case", ["line~1000000000", "gzip"])
def test_memory_and_time_of_a_hostile_inventory_are_bounded(url: Url, case: str) -> None:
    """Before: a 1 GB /v1/models ran out of a 6 GiB address space after 19 s; a gzip bomb as
    /v1/models took 59 s and 3.6 GB. After: the limit ends it at 32 MiB, in under a second."""
    figures = measure("inventory", url(case), {"timeout_s": 60}, 120)
    assert figures["outcome"] == "fallback", figures
    assert figures["peak_mb"] - figures["base_mb"] < 150, figures
    assert figures["seconds"] < 10, figures


def test_an_id_with_a_lone_surrogate_falls_back_and_apply_never_crashes(tmp_path: Path) -> None:
    """`"z\\ud800"` is valid JSON: the id reached the index and every report (exit 70, the
    run left `running`). Now the answer is refused as unparseable, with the reason."""
    script = Script(["ok-model", "z\ud800"])
    with text_server(script) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(f"servers:\n  evil:\n    url: {url}\n")
        (tmp_path / "plan.yaml").write_text(
            "version: 1\nname: p\nbenchmarks:\n  - {name: b, models: all, load: {requests: 1}}\n")
        done = subprocess.run([sys.executable, "-m", "runner", "apply", "plan.yaml"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_INVENTORY, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: no usable inventory: answer from {url}/v1/models has an id "
                           "with \\ud800, half of a surrogate pair, which no request or file"), line
    assert not (tmp_path / "results").exists()
