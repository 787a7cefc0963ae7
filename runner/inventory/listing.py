"""What an inventory is: the models a server serves, where the list came from, and when."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from runner.inventory.config import ModelEntry, ModelsConfig, Server
from runner.printable import lone_surrogate


@dataclass(frozen=True)
class Model:
    """One model of an inventory, with the metadata the proxy or the fallback file gave."""

    id: str
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    tags: tuple[str, ...] = ()
    # Prompt and answer together: the context an engine such as vLLM or SGLang lists in
    # /v1/models as `max_model_len`; LiteLLM's /model/info gives the two limits instead.
    max_model_len: int | None = None
    # Where the metadata came from: "model_group_info", "model_info", "listing" (/v1/models
    # itself) or "models.yaml"; None when no source gave any.
    metadata_source: str | None = None
    # Listed only because the proxy expanded a wildcard route (`openai/*`) into names from
    # LiteLLM's price list, not because a backend is known to serve it.
    wildcard_expansion: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "max_input_tokens": self.max_input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "max_model_len": self.max_model_len,
            "tags": list(self.tags),
            "metadata_source": self.metadata_source,
            "wildcard_expansion": self.wildcard_expansion,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        return cls(
            id=data["id"],
            mode=data.get("mode"),
            max_input_tokens=data.get("max_input_tokens"),
            max_output_tokens=data.get("max_output_tokens"),
            tags=tuple(data.get("tags") or ()),
            max_model_len=data.get("max_model_len"),
            metadata_source=data.get("metadata_source"),
            wildcard_expansion=bool(data.get("wildcard_expansion", False)),
        )


@dataclass(frozen=True)
class Inventory:
    """The models of one server, where they came from (live or fallback), when and why."""

    source: str
    server: str
    url: str
    fetched_at: str
    fallback_reason: str | None
    models: tuple[Model, ...]
    # LiteLLM's placeholders (`all-team-models`...) the listing had instead of model ids.
    placeholders: tuple[str, ...] = ()

    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def empty_cause(self) -> str | None:
        """Why no model can be selected by `all` although the server answered, with what to
        do; None when some model can be (or nothing explains it)."""
        if any(not m.wildcard_expansion for m in self.models):
            return None
        if self.placeholders:
            names = ", ".join(f"'{p}'" for p in self.placeholders)
            return (f"server '{self.server}' listed only LiteLLM's placeholder {names}: the key's "
                    "team grants its models through it, so /v1/models names none; use a key "
                    "whose /v1/models lists them, or name the models in configs/models.yaml "
                    "and run with --source fallback")
        if self.models:
            return (f"server '{self.server}' lists only {len(self.models)} ids expanded from "
                    "wildcard routes (LiteLLM's price list, not what the backend serves); name "
                    "the ids exactly, or set `inventory: {include_wildcard_expansions: true}` "
                    "in the plan")
        return None

    def summary(self) -> dict[str, Any]:
        """Where the inventory came from, without the models."""
        return {
            "source": self.source,
            "server": self.server,
            "url": self.url,
            "fetched_at": self.fetched_at,
            "fallback_reason": self.fallback_reason,
            "model_count": len(self.models),
            "wildcard_expansions": sum(m.wildcard_expansion for m in self.models),
            "placeholders": list(self.placeholders),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "models": [m.to_json() for m in self.models]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        """The inverse of `to_json` (plan locks and run manifests store that shape)."""
        return cls(
            source=data["source"],
            server=data["server"],
            url=data["url"],
            fetched_at=data["fetched_at"],
            fallback_reason=data.get("fallback_reason"),
            models=unique_sorted(Model.from_json(m) for m in data["models"]),
            placeholders=tuple(data.get("placeholders") or ()),
        )


class LiveUnavailable(Exception):
    """The live inventory could not be had for a reason that allows the fallback."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def from_fallback(
    server: Server,
    models: ModelsConfig,
    reason: str | None,
    now: Callable[[], datetime] | None = None,
) -> Inventory:
    """The inventory that the fallback models file lists for `server`."""
    listed = unique_sorted(_from_entry(e) for e in models.for_server(server.name))
    return Inventory("fallback", server.name, server.url, stamp(now), reason, listed)


def with_file_metadata(inv: Inventory, models: ModelsConfig) -> Inventory:
    """A live `inv` whose models take the metadata they still lack from the fallback file's
    entries of the same id for that server (the last source, after the proxy's)."""
    entries = {m.id: m for m in (_from_entry(e) for e in models.for_server(inv.server))}
    filled = tuple(with_metadata(m, entries[m.id].to_json(), "models.yaml")
                   if m.id in entries else m for m in inv.models)
    return replace(inv, models=filled)


def with_metadata(model: Model, info: Mapping[str, Any], source: str | None = None) -> Model:
    """`model` with the metadata it lacks taken from `info` (well-typed values only); when
    `source` gives some and the model had no `metadata_source` yet, it becomes `source`."""
    filled = _filled(model, info)
    if source is not None and model.metadata_source is None and filled != model:
        return replace(filled, metadata_source=source)
    return filled


MODE_CHARS = 64  # LiteLLM's modes are words such as audio_transcription (19 characters)


def _filled(model: Model, info: Mapping[str, Any]) -> Model:
    # LiteLLM's legacy `max_tokens` is ignored: for embedding models it is an input limit.
    return replace(
        model,
        mode=model.mode or _mode(info.get("mode")),
        max_input_tokens=_first(model.max_input_tokens, _token_limit(info.get("max_input_tokens"))),
        max_output_tokens=_first(
            model.max_output_tokens, _token_limit(info.get("max_output_tokens"))
        ),
        max_model_len=_first(model.max_model_len, _token_limit(info.get("max_model_len"))),
    )


def _mode(value: Any) -> str | None:
    """A mode as a proxy names one; None for anything else (not text, empty, a control
    character or an escape sequence, longer than MODE_CHARS): it is printed in every table."""
    ok = isinstance(value, str) and 0 < len(value) <= MODE_CHARS and value.isprintable()
    return value if ok and lone_surrogate(value) is None else None


MAX_TOKEN_LIMIT = 2**53 - 1  # what a float holds exactly: a limit becomes metrics, as floats


def _token_limit(value: Any) -> int | None:
    # /model_group/info gives limits as floats (ModelGroupInfo: `float | None`): 8192.0.
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_TOKEN_LIMIT:
        value = int(value)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_LIMIT
    return value if ok else None


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


def _from_entry(entry: ModelEntry) -> Model:
    model = Model(entry.id, entry.mode, entry.max_input_tokens, entry.max_output_tokens,
                  tuple(entry.tags), entry.max_model_len)
    bare = Model(entry.id, tags=model.tags)
    return model if model == bare else replace(model, metadata_source="models.yaml")


def unique_sorted(models: Iterable[Model]) -> tuple[Model, ...]:
    """One model per id, sorted by id; a repeated id adds only the metadata still missing."""
    by_id: dict[str, Model] = {}
    for model in models:
        seen = by_id.get(model.id)
        if seen is None:
            by_id[model.id] = model
        else:  # listed twice: an expansion only if every listing of it is one
            merged = with_metadata(seen, model.to_json(), model.metadata_source)
            by_id[model.id] = replace(merged, wildcard_expansion=seen.wildcard_expansion
                                      and model.wildcard_expansion)
    return tuple(by_id[i] for i in sorted(by_id))


def stamp(now: Callable[[], datetime] | None) -> str:
    moment = now() if now is not None else datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
