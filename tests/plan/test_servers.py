"""Which servers each benchmark of a plan runs on, and job ids that carry their server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runner.errors import InputError
from runner.plan.expand import Job, slugify
from runner.plan.servers import id_server, plan_targets, with_server


@dataclass(frozen=True)
class _Bench:
    name: str
    servers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Plan:
    servers: tuple[str, ...] | None
    benchmarks: tuple[_Bench, ...]
    path: str = "plan.yaml"


@pytest.mark.parametrize(("servers", "own", "picked", "names", "per", "several"), [
    # inventory.servers: every benchmark on each
    (("eu", "us"), None, None, ("eu", "us"), (("eu", "us"), ("eu", "us")), True),
    # a benchmark's own server replaces the plan's
    (("eu", "us"), ("us",), None, ("eu", "us"), (("eu", "us"), ("us",)), True),
    # no inventory.servers: the others get the default server
    (None, ("us",), None, ("local", "us"), (("local",), ("us",)), True),
    # --server picks one: a benchmark not on it runs nowhere, ids keep their server
    (("eu", "us"), ("eu",), "us", ("us",), (("us",), ()), True),
    # one server named: --server replaces it, as it always did; ids stay as today
    (("eu",), None, "us", ("us",), (("us",), ("us",)), False),
    (("eu",), ("eu",), None, ("eu",), (("eu",), ("eu",)), False),
])
def test_plan_targets(servers: tuple[str, ...] | None, own: tuple[str, ...] | None,
                      picked: str | None, names: tuple[str, ...],
                      per: tuple[tuple[str, ...], ...], several: bool) -> None:
    plan = _Plan(servers, (_Bench("a"), _Bench("b", own)))
    found = plan_targets(plan, "local", picked)
    assert (found.names, (found.benchmarks["a"], found.benchmarks["b"]), found.several) == (
        names, per, several)


def test_server_must_be_one_of_a_plan_of_several() -> None:
    plan = _Plan(("eu", "us"), (_Bench("a"),))
    with pytest.raises(InputError, match=r"--server 'euu' is not one of the plan's servers "
                                         r"\(did you mean 'eu'\?\)"):
        plan_targets(plan, "local", "euu")


def test_a_job_of_several_servers_carries_its_server_in_id_and_slug() -> None:
    job = Job("chat/org/m", slugify("chat/org/m"), "chat", "org/m", {}, {"concurrency": 1})
    eu, us = with_server(job, "eu"), with_server(job, "us")
    assert (eu.id, eu.server, eu.slug.startswith("eu_chat_org_m-")) == ("eu:chat/org/m", "eu", True)
    assert len({job.slug, eu.slug, us.slug}) == 3
    assert eu.to_json()["server"] == "eu" and "server" not in job.to_json()


@pytest.mark.parametrize(("job_id", "server"), [
    ("eu:chat/org/m", "eu"), ("chat/org/m", None), ("chat/llama3.1:8b", None),
    ("chat/org/m/k=a:b", None), ("us:chat/llama3.1:8b/k=1", "us"),
])
def test_id_server(job_id: str, server: str | None) -> None:
    assert id_server(job_id) == server
