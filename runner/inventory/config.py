"""Config files: named servers and the fallback model inventory with groups."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner import cache, defaults
from runner.errors import InputError, Location
from runner.inputfile import read_input
from runner.inventory.serverurl import base_url, url_problems
from runner.redaction import url_password
from runner.schema import schema_bytes, validate, whole_numbers_as_int
from runner.yamlfile import Document, load_file

_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # a bearer token: visible ASCII, no spaces


@dataclass(frozen=True)
class Server:
    """A named endpoint from configs/servers.yaml."""

    name: str
    url: str
    api_key_env: str | None = None
    verify_tls: bool = True
    kind: str = "litellm"  # or "mock": the embedded simulator
    timeout_s: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)  # kind-specific settings
    source: str = "configs/servers.yaml"  # the file that defines it
    limits: Mapping[str, int] = field(default_factory=lambda: dict(defaults.LIMITS))
    # the Prometheus endpoint read during jobs: None = try {url}/metrics, False = never scrape
    metrics_url: str | bool | None = None
    scrape_interval_s: float = float(defaults.SERVER["scrape_interval_s"])
    # what a LiteLLM proxy may do behind runner's back (True: allowed, runner asks nothing)
    gateway: Mapping[str, bool] = field(default_factory=lambda: dict(defaults.GATEWAY))

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", base_url(self.url))  # one root URL for every client


def api_key(server: Server, env: Mapping[str, str]) -> str | None:
    """The key from the server's variable, stripped of surrounding whitespace (a file or a
    Kubernetes secret often ends in a newline); an empty (or blank) variable gives no key.

    Raises InputError (exit 2, naming the variable, never showing the key) when what is left
    holds a character an HTTP header cannot carry: a space, a control or a non-ASCII character.
    A client library would otherwise echo the whole key in its error."""
    key = env.get(server.api_key_env, "").strip() if server.api_key_env else ""
    if not key:
        return None
    if not _HEADER_SAFE.fullmatch(key):
        raise InputError(
            f"${server.api_key_env} (the key of server '{server.name}') holds a space, a control"
            " or a non-ASCII character inside the key: put only the key in it")
    return key


def key_state(name: str, env: Mapping[str, str]) -> str:
    """Why `$name` gives no key, for messages: "unset" or "empty" (blank counts as empty)."""
    return "unset" if name not in env else "empty"


def auth_headers(server: Server, env: Mapping[str, str]) -> dict[str, str]:
    """`Authorization: Bearer <key>` when the server's key variable is set."""
    key = api_key(server, env)
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True)
class ModelEntry:
    """One model of the fallback inventory in configs/models.yaml."""

    id: str
    servers: tuple[str, ...] | None = None  # None: listed for every server
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    tags: tuple[str, ...] = ()
    max_model_len: int | None = None  # prompt + answer tokens together (vLLM's max_model_len)


@dataclass(frozen=True)
class ModelsConfig:
    """configs/models.yaml: fallback models and named groups of patterns."""

    path: str
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    models: tuple[ModelEntry, ...] = ()
    missing: str = ""  # when the file does not exist: where it was looked for, what to do

    def for_server(self, server: str) -> list[ModelEntry]:
        """The fallback models listed for `server`."""
        return [m for m in self.models if m.servers is None or server in m.servers]

    def groups_source(self) -> str:
        """Where model groups come from, for messages about an unknown group."""
        return self.missing or f"groups are defined in {self.path}"


@dataclass(frozen=True)
class Servers:
    """configs/servers.yaml."""

    path: str
    default: str | None
    servers: Mapping[str, Server]
    index_url: str | None = None  # results.index_url: a team's PostgreSQL results index


@dataclass(frozen=True)
class ConfigDir:
    """The folder of servers.yaml and models.yaml, and every folder searched to find it."""

    path: str
    searched: tuple[str, ...]
    origin: str = ""  # "--config-dir", "$RUNNER_CONFIG_DIR", "folder" (named by a caller), ""

    def missing(self, name: str) -> str:
        """The message for a config file that is not there: where it was looked for, what to do."""
        if not self.origin:
            return (f"no {name} found: searched {', '.join(self.searched)}; create "
                    f"configs/{name} beside your plans, or pass --config-dir DIR")
        if self.origin == _FOLDER:
            return f"no {name} in {self.path}"
        if self.origin.startswith("$"):
            return (f"no {name} in {self.path} (from {self.origin}): create it there, or "
                    f"change or unset {self.origin}")
        return f"no {name} in {self.path} (from {self.origin}): create it there"


def _as_found(directory: str | ConfigDir) -> ConfigDir:
    if isinstance(directory, ConfigDir):
        return directory
    return ConfigDir(directory, (directory,), _FOLDER)


_FOLDER = "folder"  # the origin of a folder a caller names directly


def find_config_dir(option: str | None, env: Mapping[str, str],
                    near: str | None = None) -> ConfigDir:
    """--config-dir > $RUNNER_CONFIG_DIR > the nearest configs/ folder (one holding servers.yaml
    or models.yaml) at or above the folder of `near` (a plan file or a plans folder), up to its
    repository's root > the same from the current folder. Nothing found: ./configs."""
    if option:
        return ConfigDir(option, (option,), "--config-dir")
    given = env.get("RUNNER_CONFIG_DIR")
    if given:
        return ConfigDir(given, (given,), "$RUNNER_CONFIG_DIR")
    searched: list[str] = []
    starts = [near if os.path.isdir(near) else os.path.dirname(near)] if near else []
    for start in [*starts, "."]:
        for folder in _upwards(start or "."):
            candidate = _shown(os.path.join(folder, defaults.CONFIG_DIR))
            if candidate in searched:
                continue
            searched.append(candidate)
            if any(os.path.isfile(os.path.join(candidate, f)) for f in _FILES):
                return ConfigDir(candidate, tuple(searched))
    return ConfigDir(defaults.CONFIG_DIR, tuple(searched))


_FILES = ("servers.yaml", "models.yaml")


def _upwards(start: str) -> list[str]:
    """`start` and the folders above it, up to a repository's root (a folder with .git), the
    home folder or the file system's root, whichever comes first."""
    folder, home = os.path.abspath(start), os.path.expanduser("~")
    found = [folder]
    while not os.path.exists(os.path.join(folder, ".git")) and folder != home:
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
        found.append(folder)
    return found


def _shown(path: str) -> str:
    """A path as a user would type it: relative to the current folder or absolute,
    whichever is shorter."""
    relative = os.path.relpath(path)
    return relative if len(relative) <= len(path) else path


def _load_valid(path: str, schema: str, found: ConfigDir | None = None) -> Document:
    if not os.path.exists(path):  # a FIFO or a device is refused by load_file
        raise InputError(_as_found(found or os.path.dirname(path)).missing(os.path.basename(path)))
    doc = load_file(path)
    if doc.data is None:
        doc.data = {}
    problems = validate(doc, schema)
    if schema == "servers":  # a URL the schema let through may still be one no client can use
        flagged = {p.where.path for p in problems}
        problems += [p for p in url_problems(doc) if p.where.path not in flagged]
        problems += [p for p in url_problems(doc, "metrics_url") if p.where.path not in flagged]
    if problems:
        raise InputError.many(problems)
    whole_numbers_as_int(doc, schema)  # retries: 1.0 is a valid integer, and range() refuses it
    return doc


def _load_cached(path: str, schema: str, env: Mapping[str, str]) -> Any:
    try:
        raw = read_input(path, "a config file", defaults.MAX_DOCUMENT_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    folder = cache.cache_dir(env)
    key = cache.document_key(raw, schema_bytes(schema))
    data = cache.get(folder, key)
    if data is None:
        data = _load_valid(path, schema).data
        cache.put(folder, key, data)
    return data


def load_servers(directory: str | ConfigDir) -> Servers:
    """Read and validate servers.yaml; a missing one names the folders searched for it."""
    found = _as_found(directory)
    path = os.path.join(found.path, "servers.yaml")
    doc = _load_valid(path, "servers", found)
    servers = {name: _server(name, spec, path) for name, spec in doc.data["servers"].items()}
    default = doc.data.get("default")
    if default is not None and default not in servers:
        message = f"default server '{default}' is not defined{_hint(default, servers)}"
        raise InputError(message, doc.where(("default",)))
    return Servers(path, default, servers, _index_url(doc))


def _index_url(doc: Document) -> str | None:
    """results.index_url; InputError where it carries a password (a secret has no place in
    a config file: libpq reads it from $PGPASSWORD or ~/.pgpass)."""
    url = (doc.data.get("results") or {}).get("index_url")
    if isinstance(url, str) and url_password(url):
        raise InputError("results.index_url holds a password: remove it, and give it in "
                         "$PGPASSWORD or ~/.pgpass (or the whole URL in $RUNNER_INDEX_URL)",
                         doc.where(("results", "index_url")))
    return url if isinstance(url, str) else None


def _server(name: str, spec: Mapping[str, Any], source: str) -> Server:
    kind = spec.get("kind", defaults.SERVER["kind"])
    options = {k: spec.get(k, defaults.SERVER.get(k)) for k in _MOCK_KEYS} if kind == "mock" else {}
    return Server(
        name=name,
        url=spec.get("url", ""),
        api_key_env=spec.get("api_key_env"),
        verify_tls=spec.get("verify_tls", defaults.SERVER["verify_tls"]),
        kind=kind,
        timeout_s=float(spec.get("timeout_s", defaults.SERVER["timeout_s"])),
        options=options,
        source=source,
        limits={**defaults.LIMITS, **{k: int(v) for k, v in spec.get("limits", {}).items()}},
        metrics_url=spec.get("metrics_url", False if kind == "mock" else None),
        scrape_interval_s=float(spec.get("scrape_interval_s",
                                         defaults.SERVER["scrape_interval_s"])),
        gateway={**defaults.GATEWAY, **spec.get("gateway", {})},
    )


_MOCK_KEYS = ("models", "ttft_ms", "itl_ms", "output_tokens", "max_streams", "reasoning_tokens",
              "tokens_per_word", "tokenize", "prefix_cache_blocks")


def load_models(directory: str | ConfigDir, env: Mapping[str, str] | None = None) -> ModelsConfig:
    """Read and validate models.yaml; a missing file is an empty fallback inventory that
    remembers where it was looked for.

    A large fallback inventory is slow to parse and validate, so the validated data is
    cached by content (see runner.cache); pass `env` to use the cache."""
    found = _as_found(directory)
    path = os.path.join(found.path, "models.yaml")
    if not os.path.exists(path):
        return ModelsConfig(path, missing=found.missing("models.yaml"))
    data = _load_cached(path, "models", env) if env else _load_valid(path, "models").data
    groups = {name: _as_terms(members) for name, members in data.get("groups", {}).items()}
    models = tuple(_model(spec) for spec in data.get("models", []))
    return ModelsConfig(path, groups, models)


def _as_terms(members: str | list[str]) -> tuple[str, ...]:
    return (members,) if isinstance(members, str) else tuple(members)


def _model(spec: Mapping[str, Any]) -> ModelEntry:
    servers = spec.get("servers")
    return ModelEntry(
        id=spec["id"],
        servers=tuple(servers) if servers is not None else None,
        mode=spec.get("mode"),
        max_input_tokens=spec.get("max_input_tokens"),
        max_output_tokens=spec.get("max_output_tokens"),
        tags=tuple(spec.get("tags", ())),
        max_model_len=spec.get("max_model_len"),
    )


def choose_server(
    servers: Servers, option: str | None, env: Mapping[str, str], plan_server: str | None,
    plan_where: Location | None = None,
) -> Server:
    """--server > RUNNER_SERVER > the plan's inventory.server (at `plan_where` in the plan
    file) > servers.yaml's default."""
    for source, name in (("--server", option), ("$RUNNER_SERVER", env.get("RUNNER_SERVER")),
                         (_PLAN_SERVER, plan_server),
                         ("the default in " + servers.path, servers.default)):
        if name:
            unknown = unknown_server(servers, name, source)
            if unknown:
                raise InputError(unknown, plan_where if source == _PLAN_SERVER else None)
            return servers.servers[name]
    if len(servers.servers) == 1:
        return next(iter(servers.servers.values()))
    names = ", ".join(servers.servers)
    raise InputError(f"no server chosen: pass --server NAME or set default: in {servers.path} "
                     f"(servers: {names})")


_PLAN_SERVER = "the plan's inventory.server"


def unknown_server(servers: Servers, name: str, source: str) -> str | None:
    """The message for a server name that servers.yaml does not define, else None."""
    if name in servers.servers:
        return None
    return (f"server '{name}' (from {source}) is not defined in "
            f"{servers.path}{_hint(name, servers.servers)}")


def _hint(name: str, choices: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; defined: {', '.join(choices)}"
