"""JUnit XML for CI systems: one test case per job. Failed jobs are failures; SLO misses are
failures under the gate, and a visible count (a property per case and per suite) without it.

Model ids and error messages come from servers: every string from a summary is made printable
(runner.printable) before it enters the document, so no character XML 1.0 forbids (an ESC, a
NUL) can make the file unparseable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from runner.plan.expand import point_label
from runner.printable import printable
from runner.run.recap import load_label, slo_misses


def gate_failures(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """`job id: misses` for every job that ran and missed an SLO; a capacity search's trials
    are meant to find where the SLO breaks, so their misses do not gate."""
    return [f"{printable(s['id'])}: {'; '.join(slo_misses(s))}" for s in summaries
            if slo_misses(s) and not s.get("search")]


def render(plan_name: str, summaries: Sequence[Mapping[str, Any]], gate: bool = False) -> str:
    """The JUnit XML document (testsuites > one testsuite per benchmark > testcases)."""
    plan_name = printable(plan_name)
    root = ET.Element("testsuites", name=f"runner {plan_name}")
    suites: dict[str, ET.Element] = {}
    for summary in summaries:
        bench = printable(summary["benchmark"])
        if bench not in suites:
            suites[bench] = ET.SubElement(root, "testsuite", name=f"{plan_name}.{bench}")
        _testcase(suites[bench], plan_name, summary, gate)
    for suite in [root, *suites.values()]:
        _count(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def case_name(summary: Mapping[str, Any]) -> str:
    """`model concurrency=8`: the matrix point, else the load that defines the job."""
    point = point_label(summary.get("point") or {})
    label = point or load_label(summary.get("params") or {})
    name = f"{summary['model']} {label}" if label != "-" else str(summary["model"])
    return printable(name)


def _testcase(suite: ET.Element, plan_name: str, summary: Mapping[str, Any], gate: bool) -> None:
    classname = f"{plan_name}.{printable(summary['benchmark'])}"
    case = ET.SubElement(suite, "testcase", classname=classname,
                         name=case_name(summary), time=f"{summary.get('duration_s') or 0:.3f}")
    status = printable(summary["status"])
    if status in ("skipped", "interrupted", "pending"):
        ET.SubElement(case, "skipped", message=f"{status}: {printable(summary.get('error') or '')}")
        return
    if status == "failed":
        failure = ET.SubElement(case, "failure", type="job_failed",
                                message=printable(summary.get("error") or "job failed"))
        failure.text = _errors_text(summary)
    misses = slo_misses(summary)
    if misses and gate:
        failure = ET.SubElement(case, "failure", type="slo", message="SLO missed: " + misses[0])
        failure.text = "\n".join(misses)
    elif misses:
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="slo_missed", value="; ".join(misses))
    ET.SubElement(case, "system-out").text = "\n".join(
        [*(f"SLO missed: {m}" for m in misses), _metrics_text(summary)])


def _errors_text(summary: Mapping[str, Any]) -> str:
    errors = (summary.get("metrics") or {}).get("errors") or {}
    return "\n".join(f"{printable(kind)}: {count}" for kind, count in errors.items())


def _metrics_text(summary: Mapping[str, Any]) -> str:
    metrics = summary.get("metrics") or {}
    lines = [f"id: {printable(summary['id'])}"]
    for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        dist = metrics.get(name) or {}
        if dist.get("count"):
            lines.append(f"{name}: p50 {dist['p50']:.2f} p95 {dist['p95']:.2f}")
    throughput = metrics.get("throughput") or {}
    # an embeddings job has inputs/s and prompt tokens/s in place of output tokens/s
    names = ("inputs_per_s", "prompt_tokens_per_s") \
        if throughput.get("inputs_per_s") is not None else ("output_tokens_per_s",)
    lines += [f"{name}: {throughput[name]:.1f}" for name in names
              if throughput.get(name) is not None]
    return "\n".join(lines)


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    if element.tag == "testsuite":  # <testsuites> has no <properties> in the JUnit schema
        props = ET.Element("properties")
        missed = sum(1 for c in cases if _missed_slo(c))
        ET.SubElement(props, "property", name="slo_missed", value=str(missed))
        element.insert(0, props)
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    element.set("errors", "0")
    element.set("time", f"{sum(float(c.get('time', 0)) for c in cases):.3f}")


def _missed_slo(case: ET.Element) -> bool:
    failed = any(f.get("type") == "slo" for f in case.findall("failure"))
    return failed or case.find("properties/property[@name='slo_missed']") is not None
