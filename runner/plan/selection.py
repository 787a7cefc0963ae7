"""From a plan and an inventory to the benchmarks' models and the jobs (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runner.errors import InputError, InventoryError, Location, Problem, RunnerError
from runner.inventory.listing import Inventory
from runner.plan import patterns
from runner.plan.expand import Job, check_unique, enforce_max_jobs, expand_jobs, expand_matrix
from runner.plan.modes import DEFAULT_ENDPOINT, misfits, wanted_modes
from runner.plan.planfile import Benchmark, Plan, complete_params
from runner.plan.searchplan import trial_jobs
from runner.plan.servers import SEPARATOR, with_server
from runner.plural import counted


@dataclass(frozen=True)
class Selected:
    """What one benchmark resolved to."""

    benchmark: Benchmark
    patterns: tuple[str, ...]
    models: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    skipped: str | None = None  # why it does not run, or None
    jobs: tuple[Job, ...] = ()
    mode_skipped: tuple[tuple[str, str], ...] = ()  # (id, mode) matched but of a mode not served
    expansions_left_out: int = 0  # wildcard expansions the pattern would match if included
    server: str | None = None  # in a plan with several servers: the one it resolved against

    def to_json(self) -> dict[str, Any]:
        return {"name": self.benchmark.name, "patterns": list(self.patterns),
                "models": list(self.models), "unmatched_terms": list(self.unmatched),
                "warnings": list(self.warnings), "skipped": self.skipped is not None,
                "skip_reason": self.skipped, "job_count": len(self.jobs),
                "slo": dict(self.benchmark.slo), "retries": self.benchmark.retries,
                "max_error_rate": self.benchmark.max_error_rate,
                "skipped_by_mode": [{"id": i, "mode": m} for i, m in self.mode_skipped],
                "wildcard_expansions_left_out": self.expansions_left_out} | (
                    {"server": self.server} if self.server else {})

    @property
    def label(self) -> str:
        """Its name in messages: `bench`, or `eu:bench` in a plan with several servers."""
        name = self.benchmark.name
        return f"{self.server}{SEPARATOR}{name}" if self.server else name


@dataclass(frozen=True)
class Options:
    """Selection options from the command line."""

    limit: str | None = None
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    max_jobs: int = 10_000


SPECIAL_TAGS = ("all", "always", "never")  # Ansible's tags with a meaning of their own


def split_tags(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def tag_skip_reason(bench: Benchmark, tags: Sequence[str], skip_tags: Sequence[str]) -> str | None:
    """Ansible's rules: `never` runs only when asked for by tag, `always` unless skipped."""
    own = set(bench.tags)
    if own & set(skip_tags):
        return "skipped by --skip-tags"
    if tags and not own & (set(tags) | {"always"}) and "all" not in tags:
        return "not selected by --tags"
    if "never" in own and not own & set(tags) - {"all"}:
        return "tagged never"
    return None


def unknown_tags(plan: Plan, options: Options) -> list[str]:
    """One warning per --tags/--skip-tags value that no benchmark of the plan carries."""
    known = sorted({t for b in plan.benchmarks for t in b.tags})
    lines = []
    for flag, given in (("--tags", options.tags), ("--skip-tags", options.skip_tags)):
        for tag in given:
            if tag not in known and tag not in SPECIAL_TAGS:
                lines.append(f"{flag} '{tag}': no benchmark has this tag ({_tag_hint(tag, known)})")
    return lines


def _tag_hint(tag: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(tag, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return f"tags in this plan: {', '.join(known)}" if known else "the plan has no tags"


@dataclass(frozen=True)
class _Facts:
    """What selection knows of the inventory beyond its ids."""

    modes: Mapping[str, str | None]
    hidden: frozenset[str]  # wildcard expansions `all`, globs and regexes do not select
    empty_cause: str | None


def _facts(plan: Plan, inv: Inventory | None) -> _Facts:
    if inv is None:
        return _Facts({}, frozenset(), None)
    hidden = frozenset(() if plan.include_wildcard_expansions
                       else (m.id for m in inv.models if m.wildcard_expansion))
    return _Facts({m.id: m.mode for m in inv.models}, hidden, inv.empty_cause())


def select(plan: Plan, ids: Sequence[str], groups: Mapping[str, Sequence[str]],
           options: Options, inv: Inventory | None = None,
           allow_empty: bool = False) -> list[Selected]:
    """Resolve every benchmark against the inventory ids, then expand the jobs.

    With `inv`, models whose mode does not fit a benchmark's endpoint are skipped (listed in
    `mode_skipped`), and wildcard expansions are left out unless the plan includes them.
    A selection that leaves no job at all is an InventoryError (exit 3), as is an empty --limit;
    when the inventory explains its emptiness (placeholders, only expansions), that is said.
    `allow_empty`: a selection with no job is returned (one server of several: the others
    may have jobs).
    """
    facts = _facts(plan, inv)
    limit = _limit_models(options.limit, ids, groups)
    chosen = [_resolve(b, ids, groups, limit, options, facts) for b in plan.benchmarks]
    errors = [p for s in chosen for p in _empty_problem(s, facts.empty_cause)]
    if errors:
        raise InventoryError.many(errors)
    enforce_max_jobs(_count(chosen), options.max_jobs)
    jobs = check_unique([j for s in chosen for j in _jobs(s)])
    enforce_max_jobs(sum(trial_jobs(j.params) for j in jobs), options.max_jobs,
                     "at most ")  # a search or sweep: its most trials
    if not jobs and not allow_empty:
        raise InventoryError.many(_nothing_left(plan, chosen, options))
    by_bench: dict[str, list[Job]] = {}
    for job in jobs:
        by_bench.setdefault(job.benchmark, []).append(job)
    return [_with_jobs(s, by_bench.get(s.benchmark.name, [])) for s in chosen]


def for_server(selected: Sequence[Selected], server: str) -> list[Selected]:
    """A selection of one server of several: its jobs' ids and slugs carry the server, its
    warnings name it."""
    return [replace(s, server=server, jobs=tuple(with_server(j, server) for j in s.jobs),
                    warnings=tuple(f"on server '{server}': {w}" for w in s.warnings))
            for s in selected]


def nothing_left(plan: Plan, chosen: Sequence[Selected], options: Options) -> RunnerError:
    """The error of a selection that leaves no job to run."""
    return InventoryError.many(_nothing_left(plan, chosen, options))


def _nothing_left(plan: Plan, chosen: Sequence[Selected], options: Options) -> list[Problem]:
    why = "; ".join(f"{s.benchmark.name}: {s.skipped}" for s in chosen if s.skipped)
    where = Location(plan.path)
    head = Problem(f"the selection leaves no job to run ({why or 'the plan has no benchmark'}); "
                   "check --tags, --skip-tags and --limit", where)
    return [head, *(Problem(line, where) for line in unknown_tags(plan, options))]


def _limit_models(limit: str | None, ids: Sequence[str],
                  groups: Mapping[str, Sequence[str]]) -> frozenset[str] | None:
    if limit is None:
        return None
    found = patterns.resolve(limit, ids, groups)
    if not found.models:
        close = [i for term in found.unmatched for i in found.suggestions.get(term, ())]
        hint = (f"did you mean {' or '.join(dict.fromkeys(close))}?" if close
                else "see `runner inventory` for the model ids")
        raise InventoryError(f"--limit '{limit}' matches no model of the inventory ({hint})")
    return frozenset(found.models)


def _resolve(bench: Benchmark, ids: Sequence[str], groups: Mapping[str, Sequence[str]],
             limit: frozenset[str] | None, options: Options, facts: _Facts) -> Selected:
    terms = tuple(patterns.split_terms(bench.models))
    reason = tag_skip_reason(bench, options.tags, options.skip_tags)
    if reason:
        return Selected(bench, terms, skipped=reason)
    found = patterns.resolve(bench.models, ids, groups, facts.modes, facts.hidden)
    left_out = 0
    if facts.hidden:
        every = patterns.resolve(bench.models, ids, groups, facts.modes)
        left_out = len(set(every.models) - set(found.models))
    models = found.models if limit is None else tuple(m for m in found.models if m in limit)
    misfit = misfits(models, facts.modes, _endpoints(bench), (t for t in terms if t in ids))
    if misfit:
        wrong = {m for m, _ in misfit}
        models = tuple(m for m in models if m not in wrong)
    skipped = None
    if found.models and not models and not misfit:
        skipped = "no models left after --limit"
    elif not models and bench.on_empty == "skip":
        what = "no model of a mode its endpoint takes" if misfit else "no models matched"
        skipped = f"{what} (on_empty: skip)"
    return Selected(bench, terms, models, found.unmatched, tuple(found.warnings()), skipped,
                    mode_skipped=misfit, expansions_left_out=left_out)


def inventory_notes(selected: Selected) -> list[str]:
    """The plan view's lines on models the inventory's metadata kept out of a benchmark."""
    lines = [f"skipped (mode {mode}): {model}" for model, mode in selected.mode_skipped]
    if selected.expansions_left_out:
        lines.append(f"{counted(selected.expansions_left_out, 'wildcard expansion')} left out "
                     "(ids a LiteLLM wildcard route lists from its price list); name them "
                     "exactly or set `inventory: {include_wildcard_expansions: true}`")
    return lines


def _endpoints(bench: Benchmark) -> set[str]:
    """The endpoints (`chat`, `completions`) the benchmark's jobs call."""
    default = bench.params.get("endpoint", DEFAULT_ENDPOINT)
    return {str(p.get("endpoint", default)) for p in _points(bench)} or {str(default)}


def _empty_problem(selected: Selected, empty_cause: str | None) -> list[Problem]:
    if selected.models or selected.skipped:
        return []
    name = selected.benchmark.name
    if selected.mode_skipped:
        modes = sorted({mode for _, mode in selected.mode_skipped})
        message = (f"benchmark '{name}' matches only models whose mode does not fit its endpoint"
                   f" ({', '.join(modes)}); {wanted_modes(_endpoints(selected.benchmark))}"
                   " (a model whose mode is unknown: name it exactly, or give it "
                   "model_info: {mode: ...} in LiteLLM's config), or set on_empty: skip")
    elif empty_cause:
        message = f"benchmark '{name}' matches no model: {empty_cause}"
    else:
        message = (f"benchmark '{name}' matches no model; check its models pattern against "
                   "`runner inventory`, or set on_empty: skip")
    return [Problem(message, selected.benchmark.where["models"])]


def _points(bench: Benchmark) -> list[dict[str, Any]]:
    return expand_matrix(bench.matrix, path=bench.where["matrix"].path or "$.matrix")


def _count(chosen: Sequence[Selected]) -> int:
    return sum(len(s.models) * len(_points(s.benchmark)) for s in chosen if not s.skipped)


def _jobs(selected: Selected) -> list[Job]:
    if selected.skipped:
        return []
    bench = selected.benchmark
    points = _points(bench)
    if not points:
        raise InputError("the matrix's exclude removes every combination", bench.where["matrix"])
    return expand_jobs(bench.name, selected.models, points, _completer(bench))


def _completer(bench: Benchmark) -> Any:
    where: Location = bench.where["matrix"]

    def complete(point: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return complete_params(bench.params, point)
        except ValueError as exc:
            raise InputError(str(exc), where) from None

    return complete


def _with_jobs(selected: Selected, jobs: list[Job]) -> Selected:
    return replace(selected, jobs=tuple(jobs))
