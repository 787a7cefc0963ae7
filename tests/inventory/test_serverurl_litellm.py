"""A LiteLLM proxy's URL written with `/v1` or a trailing slash: the inventory and the requests
both reach the proxy (the requests went to /v1/v1/chat/completions and got 404)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_helpers import jsonl_lines, manifest, run_dirs
from cli_helpers import run_cli, write_plan
from litellm_proxy import LiteLLMProxy

from runner.errors import EXIT_OK

pytestmark = pytest.mark.litellm

PLAN = """\
version: 1
name: v1
inventory: {fallback: false}
benchmarks:
  - name: b
    models: Qwen/Qwen3-8B
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {requests: 2}
"""


@pytest.mark.parametrize("suffix", ["/", "/v1", "/v1/"])
def test_a_proxy_url_ending_in_v1_or_a_slash_works_for_every_client(
    suffix: str, litellm_proxy: LiteLLMProxy, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {litellm_proxy.url}{suffix}\n    api_key_env: PROXY_KEY\n")
    monkeypatch.setenv("PROXY_KEY", litellm_proxy.master_key)
    plan = write_plan(tmp_path, PLAN)
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(plan), "--config-dir", str(configs),
                             "--results", str(results))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "v1")
    [job] = manifest(run)["jobs"]
    records = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
    assert len(records) == 2 and all(r["ok"] for r in records), records
    assert manifest(run)["inventory"]["url"] == litellm_proxy.url
