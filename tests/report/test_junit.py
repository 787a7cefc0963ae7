"""JUnit XML: one test case per job; failed jobs are failures, SLO misses under the gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from runner.report.junit import gate_failures, render


def summary(model: str, status: str = "ok", passed: bool | None = True,
            error: str | None = None) -> dict[str, Any]:
    slo = None if passed is None else {"passed": passed, "checks": [
        {"metric": "ttft_ms", "stat": "p95", "limit": 100, "value": 150.0 if not passed else 50.0,
         "passed": passed},
        {"metric": "min_output_tokens_per_s", "stat": None, "limit": 10, "value": 20.0,
         "passed": True}]}
    metrics = {"errors": {"http_500": 2}, "slo": slo, "ttft_ms": {"count": 1, "p50": 1.0,
                                                                  "p95": 2.0}}
    return {"id": f"b/{model}", "benchmark": "b", "model": model, "point": {"concurrency": 1},
            "status": status, "error": error, "duration_s": 1.5,
            "metrics": None if status == "skipped" else metrics}


def test_cases_failures_and_skips() -> None:
    jobs = [summary("ok-model"), summary("<slow>&model", passed=False),
            summary("broken", status="failed", passed=None, error="no request succeeded"),
            summary("later", status="skipped", passed=None, error="--fail-fast")]
    root = ET.fromstring(render("nightly", jobs, gate=True))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "2", "1")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "nightly.b" and suite.get("time") == "6.000"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"ok-model concurrency=1", "<slow>&model concurrency=1",
                          "broken concurrency=1", "later concurrency=1"}
    slow = cases["<slow>&model concurrency=1"].find("failure")
    assert slow is not None and slow.get("type") == "slo"
    assert slow.get("message") == "SLO missed: ttft_ms p95 150.0 (limit <= 100)"
    broken = cases["broken concurrency=1"].find("failure")
    assert broken is not None and broken.text == "http_500: 2"
    assert cases["later concurrency=1"].find("skipped") is not None
    assert "&lt;slow&gt;&amp;model" in render("nightly", jobs)


def test_gate_failures_name_the_job_and_the_miss() -> None:
    jobs = [summary("a"), summary("b", passed=False), summary("c", status="skipped",
                                                             passed=None)]
    assert gate_failures(jobs) == ["b/b: ttft_ms p95 150.0 (limit <= 100)"]


def test_without_the_gate_slo_misses_are_a_visible_count_not_failures() -> None:
    jobs = [summary("ok-model"), summary("slow", passed=False), summary("slower", passed=False)]
    root = ET.fromstring(render("nightly", jobs))
    assert root.get("failures") == "0"
    [suite] = root.findall("testsuite")
    [count] = suite.findall("properties/property")
    assert (count.get("name"), count.get("value")) == ("slo_missed", "2")
    slow = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("slow "))
    assert slow.find("properties/property").get("value") == "ttft_ms p95 150.0 (limit <= 100)"
    assert "SLO missed: ttft_ms p95" in (slow.findtext("system-out") or "")
    gated = ET.fromstring(render("nightly", jobs, gate=True))
    assert gated.get("failures") == "2"
    assert gated.find("testsuite/properties/property").get("value") == "2"


def test_a_failed_job_is_not_also_an_slo_miss() -> None:
    unreachable = summary("gone", status="failed", passed=False, error="server unreachable")
    root = ET.fromstring(render("nightly", [unreachable], gate=True))
    assert [f.get("type") for f in root.iter("failure")] == ["job_failed"]
    assert root.find("testsuite/properties/property").get("value") == "0"


def test_case_names_without_a_matrix_point_name_the_load_not_a_dash() -> None:
    closed = {**summary("m"), "point": {}, "params": {"concurrency": 8, "requests": 40}}
    bare = {**summary("n"), "point": {}, "params": {}}
    names = [c.get("name") for c in ET.fromstring(render("p", [closed, bare])).iter("testcase")]
    assert names == ["m concurrency=8", "n"]


def test_ids_and_messages_with_characters_xml_forbids_still_parse() -> None:
    hostile = "m\x1b[2J\x00\x07\ufffe"
    jobs = [summary(hostile, status="failed", passed=None, error="boom \x1b]0;t\x07\x0c"),
            summary(hostile + "2", status="skipped", passed=None, error="\x01why")]
    root = ET.fromstring(render("p\x1b", jobs))  # before: "not well-formed (invalid token)"
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["m\\x1b[2J\\x00\\x07\\ufffe concurrency=1",
                     "m\\x1b[2J\\x00\\x07\\ufffe2 concurrency=1"]
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == "boom \\x1b]0;t\\x07\\x0c"
    assert root.get("name") == "runner p\\x1b"


def test_an_embeddings_jobs_output_says_its_inputs_not_output_tokens() -> None:
    job = summary("embedder")
    job["metrics"]["throughput"] = {"output_tokens_per_s": None, "inputs_per_s": 345.2,
                                    "prompt_tokens_per_s": 4142.4}
    chat = summary("chat")
    chat["metrics"]["throughput"] = {"output_tokens_per_s": 41.25, "inputs_per_s": None,
                                     "prompt_tokens_per_s": 90.0}
    [suite] = ET.fromstring(render("nightly", [job, chat])).findall("testsuite")
    out = {c.get("name"): c.findtext("system-out") or "" for c in suite.iter("testcase")}
    assert "inputs_per_s: 345.2\nprompt_tokens_per_s: 4142.4" in out["embedder concurrency=1"]
    assert "output_tokens_per_s" not in out["embedder concurrency=1"]
    assert "output_tokens_per_s: 41.2" in out["chat concurrency=1"]
    assert "inputs_per_s" not in out["chat concurrency=1"]
