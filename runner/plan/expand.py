"""Expand parameter matrices (GitHub Actions semantics) into jobs with stable ids and slugs."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import InputError, Location, Problem

RESERVED_KEYS = ("include", "exclude")
SLUG_MAX = 120
_HASH_LEN = 12
_READABLE_MAX = SLUG_MAX - _HASH_LEN - 1
# "_" is in the class so that runs of unsafe characters and underscores collapse to one "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9.=,-]+")
_MISSING = object()


@dataclass(frozen=True)
class Job:
    """One benchmark x one model x one matrix point."""

    id: str  # "<benchmark>/<model id>/<k=v,...>", or "<benchmark>/<model id>" for an empty point
    slug: str  # file-system-safe and unique: names the job's result files
    benchmark: str
    model: str
    point: Mapping[str, Any]  # only the values the matrix chose
    params: Mapping[str, Any]  # base params overridden by the point
    # the server of a plan with several (its id then starts `<server>:`); None: the plan's one
    server: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as JSON-ready data (`point` and `params` are shared, not copied)."""
        return {
            "id": self.id,
            "slug": self.slug,
            "benchmark": self.benchmark,
            "model": self.model,
            "point": self.point,
            "params": self.params,
        } | ({"server": self.server} if self.server else {})


def expand_matrix(
    matrix: Mapping[str, Any] | None, *, path: str = "$.matrix"
) -> list[dict[str, Any]]:
    """The points of `matrix`: product of its lists, then `exclude`, then `include`.

    `path` is the data path of the matrix, used in error locations.
    """
    if not matrix:
        return [{}]
    axes = _axes(matrix, path)
    exclude = _entries(matrix, "exclude", path)
    include = _entries(matrix, "include", path)
    _check_exclude(exclude, axes, path)
    if not axes and not include:
        return [{}]
    # With no list-valued keys there is no original combination: every include entry stands alone.
    product = _product(axes) if axes else []
    originals = [combo for combo in product if not _excluded(combo, exclude)]
    return _include(originals, include)


def _axes(matrix: Mapping[str, Any], path: str) -> dict[str, list[Any]]:
    return {
        key: _axis(key, values, f"{path}.{key}")
        for key, values in matrix.items()
        if key not in RESERVED_KEYS
    }


def _axis(key: str, values: Any, path: str) -> list[Any]:
    if isinstance(values, list | tuple) and values:
        return list(values)
    hint = "" if isinstance(values, list | tuple) else f" (write [{format_value(values)}] for one)"
    raise InputError(
        f"matrix key {key!r} must be a non-empty list of values{hint}", Location(path=path)
    )


def _entries(matrix: Mapping[str, Any], name: str, path: str) -> list[Mapping[str, Any]]:
    entries = matrix.get(name)
    if entries is None:
        return []
    if not isinstance(entries, list | tuple):
        raise InputError(
            f"matrix {name} must be a list of mappings", Location(path=f"{path}.{name}")
        )
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            where = Location(path=f"{path}.{name}[{i}]")
            raise InputError(f"each matrix {name} entry must be a mapping of key: value", where)
    return list(entries)


def _check_exclude(
    exclude: Sequence[Mapping[str, Any]], axes: Mapping[str, Any], path: str
) -> None:
    for i, entry in enumerate(exclude):
        where = Location(path=f"{path}.exclude[{i}]")
        if not entry:
            raise InputError("an exclude entry must name at least one matrix key", where)
        for key in entry:
            if key not in axes:
                known = ", ".join(map(str, axes)) or "none"
                raise InputError(f"exclude names {key!r}, not a matrix key (keys: {known})", where)


def _product(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())]


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML/JSON values: `true` is not `1`."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def _matches(combo: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(key in combo and _same(combo[key], value) for key, value in entry.items())


def _excluded(combo: Mapping[str, Any], exclude: Sequence[Mapping[str, Any]]) -> bool:
    return any(_matches(combo, entry) for entry in exclude)


def _include(
    originals: list[dict[str, Any]], include: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    points = [dict(combo) for combo in originals]
    for entry in include:
        merged = False
        # zip stops at the originals: GitHub never merges into a combination an include appended.
        for original, point in zip(originals, points, strict=False):
            if all(key not in original or _same(original[key], v) for key, v in entry.items()):
                point.update((key, v) for key, v in entry.items() if key not in original)
                merged = True
        if not merged:
            points.append(dict(entry))
    return points


def format_value(value: Any) -> str:
    """A matrix value as it appears in a job id: `8`, `0.7`, `true`, `null`, `text`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that round-trips: 0.1, not 0.1000000000000000055
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def point_label(point: Mapping[str, Any]) -> str:
    """The point part of a job id: `k=v` pairs sorted by key, so YAML key order never matters."""
    return ",".join(f"{key}={format_value(point[key])}" for key in sorted(point, key=str))


def job_id(benchmark: str, model: str, point: Mapping[str, Any]) -> str:
    """The stable, readable id of one job."""
    label = point_label(point)
    return f"{benchmark}/{model}/{label}" if label else f"{benchmark}/{model}"


def slugify(text: str) -> str:
    """A file-system-safe name for `text`: readable part + `-` + 12 hex of its sha256."""
    return _finish_slug(text, _UNSAFE.sub("_", text))


def _finish_slug(text: str, sanitized: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    readable = sanitized.lstrip("._-")[:_READABLE_MAX].rstrip("._-")
    return f"{readable}-{digest}" if readable else digest


def count_jobs(model_counts: Sequence[int], point_counts: Sequence[int]) -> int:
    """Jobs a plan will expand to, given per benchmark its model and point counts."""
    return sum(m * p for m, p in zip(model_counts, point_counts, strict=True))


def expand_jobs(
    benchmark: str,
    models: Sequence[str],
    points: Sequence[Mapping[str, Any]],
    base_params: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]],
) -> list[Job]:
    """The jobs of one benchmark, model-major: every point of the first model, then the next.

    `base_params` is either the parameters a point overrides, or a function from a point
    to the job's complete parameters."""
    complete = base_params if callable(base_params) else _overlay(base_params)
    prepared = [_prepare(point, complete) for point in points]
    return [job for model in models for job in _model_jobs(benchmark, model, prepared)]


_Prepared = tuple[Mapping[str, Any], str, str, dict[str, Any]]


def _overlay(base: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    return lambda point: {**base, **point}


def _prepare(
    point: Mapping[str, Any], complete: Callable[[Mapping[str, Any]], Mapping[str, Any]]
) -> _Prepared:
    label = point_label(point)
    clean = _UNSAFE.sub("_", label)
    # Sanitised "<benchmark>/<model>/" ends in "_": a leading "_" here belongs to the same run.
    clean = clean[1:] if clean.startswith("_") else clean
    return point, label, clean, dict(complete(point))


def _model_jobs(benchmark: str, model: str, prepared: Sequence[_Prepared]) -> Iterator[Job]:
    # Sanitising the id once per model and once per point, not once per job, halves the time.
    prefix = f"{benchmark}/{model}/"
    clean_prefix = _UNSAFE.sub("_", prefix)
    for point, label, clean, params in prepared:
        if label:
            ident = prefix + label
            slug = _finish_slug(ident, clean_prefix + clean)
        else:
            ident = f"{benchmark}/{model}"
            slug = slugify(ident)
        yield Job(ident, slug, benchmark, model, dict(point), dict(params))


def check_unique(jobs: Sequence[Job]) -> list[Job]:
    """Drop exact duplicates; an id shared by jobs with different params is an InputError."""
    kept: dict[str, Job] = {}
    problems: dict[str, Problem] = {}
    for job in jobs:
        first = kept.setdefault(job.id, job)
        if first is not job and first.params != job.params and job.id not in problems:
            problems[job.id] = Problem(_conflict_message(first, job))
    if problems:
        raise InputError.many(list(problems.values()))
    _check_slugs(kept.values())
    return list(kept.values())


def _conflict_message(first: Job, other: Job) -> str:
    keys = {**first.params, **other.params}
    differ = [k for k in keys if first.params.get(k, _MISSING) != other.params.get(k, _MISSING)]
    return (
        f"two jobs share the id {first.id!r} but differ in {', '.join(map(str, differ))}; "
        "make the matrix values distinct (ids show values as text: 1 and '1' look alike)"
    )


def _check_slugs(jobs: Iterable[Job]) -> None:
    seen: dict[str, str] = {}
    for job in jobs:
        other = seen.setdefault(job.slug, job.id)
        if other != job.id:
            raise RuntimeError(f"slug collision: {other!r} and {job.id!r} both map to {job.slug!r}")


def enforce_max_jobs(count: int, max_jobs: int, most: str = "") -> None:
    """Refuse a plan that expands to more than `max_jobs` jobs (`most`: "at most " when the
    count is a capacity search's or sweep's worst case)."""
    if count > max_jobs:
        raise InputError(
            f"plan expands to {most}{count} jobs, more than --max-jobs {max_jobs}; "
            "narrow the plan or raise --max-jobs"
        )
