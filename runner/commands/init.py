"""`runner init [DIR]`: start a project: configs, an example plan and the JSON Schemas.

It never replaces a file unless that file is named with `--force FILE`. With `--url` it asks the
proxy once for its models; an unreachable proxy is a WARNING (the files are written anyway), a
refused key is exit 3 (nothing is written: fix the key and run again).
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shlex
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from runner import defaults, fileset
from runner.commands.schema import schema_files
from runner.errors import EXIT_OK, InventoryError, UsageError
from runner.fileset import DIFFERS, NEW, SAME, File, Found
from runner.inventory.config import Server, api_key
from runner.inventory.listing import LiveUnavailable, Model
from runner.inventory.serverurl import base_url, url_problems
from runner.plan import starter
from runner.plan.starter import DEMO_SERVER, EXAMPLE_PLAN, MODELS_FILE, Proxy
from runner.printable import printable, printable_lines
from runner.redaction import redact_keys
from runner.schema import validate
from runner.yamlfile import load_text

_BIG_INVENTORY = 4  # more models than this: say that the example plan benchmarks all of them


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    root = args.dir
    if os.path.exists(root) and not os.path.isdir(root):
        raise UsageError(f"{root}: not a folder; give `runner init` a folder (default: .)")
    proxy = _proxy(args)
    forced = _forced(args.force or [])
    models = _live_models(proxy, env, _again(root, proxy)) if args.url else None
    found = fileset.survey(root, _files(proxy, models))
    if "" in (args.force or []):
        raise UsageError(_bare_force(found))
    for item in found:
        if item.state == NEW or (item.state == DIFFERS and item.file.path in forced):
            fileset.write(root, item)
    print(printable_lines("\n".join(_listing(root, found, forced, models, proxy))))
    return EXIT_OK


_OPTIONS = {".url": "--url", ".api_key_env": "--api-key-env"}  # schema path -> option


def _proxy(args: argparse.Namespace) -> Proxy:
    """The proxy from the options, checked by the servers schema (a bad value is exit 2)."""
    url = base_url(args.url or defaults.INIT_URL)
    proxy = Proxy(args.server, url, args.api_key_env)
    if _has_password(url):
        raise UsageError(f"--url: put no key in the URL; export it as ${proxy.api_key_env}")
    if proxy.name == DEMO_SERVER:
        raise UsageError(f"--server {DEMO_SERVER}: that name is the built-in simulator's; "
                         "choose another")
    doc = load_text(starter.servers_yaml(proxy), starter.SERVERS_FILE)
    for problem in validate(doc, "servers") or url_problems(doc):
        where = problem.where.path or ""
        option = next((o for k, o in _OPTIONS.items() if where.endswith(k)), "--server")
        raise UsageError(f"{option}: {problem.message}")
    return proxy


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        raise UsageError("--url: not a valid URL, e.g. http://127.0.0.1:4000") from None


def _files(proxy: Proxy, models: Sequence[Model] | None) -> list[File]:
    texts = starter.starter_files(proxy, models)
    return [*(File(path, text.encode("utf-8")) for path, text in texts.items()),
            *schema_files(starter.SCHEMAS_DIR)]


def _known_paths() -> list[str]:
    return [*starter.TEXT_FILES, *(f.path for f in schema_files(starter.SCHEMAS_DIR))]


def _forced(names: Sequence[str]) -> set[str]:
    """The files named by --force FILE, as init's own paths; an unknown one is exit 2."""
    known = _known_paths()
    forced = set()
    for name in names:
        if name == "":
            continue  # a bare --force: refused once the files that differ are known
        path = posixpath.normpath(name.replace(os.sep, "/"))
        if path not in known:
            raise UsageError(f"--force {name}: not a file `runner init` writes; name one of "
                             f"{', '.join(known)} (relative to DIR)")
        forced.add(path)
    return forced


def _bare_force(found: Sequence[Found]) -> str:
    differing = [f.file.path for f in found if f.state == DIFFERS]
    if not differing:
        return "--force needs the files to replace (--force FILE), and none differs now"
    named = " ".join(f"--force {shlex.quote(p)}" for p in differing)
    return f"--force replaces only the files it names: name them, e.g. {named}"


def _again(root: str, proxy: Proxy) -> str:
    """The command that fills models.yaml once the proxy answers."""
    where = "" if _is_here(root) else f" {shlex.quote(root)}"
    return f"runner init{where} --url {shlex.quote(proxy.url)} --force {MODELS_FILE}"


def _is_here(root: str) -> bool:
    return os.path.abspath(root) == os.path.abspath(".")


def _live_models(proxy: Proxy, env: Mapping[str, str], again: str) -> tuple[Model, ...] | None:
    """What the proxy serves now; None (with a WARNING) when it cannot be reached or lists
    nothing. A refusal (a missing or wrong key, any other 4xx) stops: nothing is written."""
    from runner.inventory import proxyclient

    server = Server(proxy.name, proxy.url, proxy.api_key_env)
    keys = [key for key in [api_key(server, env)] if key]  # whatever the proxy echoes of it
    try:
        inv = proxyclient.fetch(server, env, None)
    except LiveUnavailable as exc:
        reason = redact_keys(exc.reason, keys)
        _warn(f"server '{proxy.name}' ({proxy.url}) is unreachable: {reason}", again)
        return None
    except InventoryError as exc:
        message = redact_keys(exc.problems[0].message, keys)
        raise InventoryError(f"{message}; nothing was written (leave out --url to write the "
                             "files without asking the proxy)") from None
    real = tuple(m for m in inv.models if not m.wildcard_expansion)  # not price-list names
    if not real:
        _warn(inv.empty_cause() or f"server '{proxy.name}' ({proxy.url}) lists no models", again)
        return None
    return real


def _warn(reason: str, again: str) -> None:
    print(f"WARNING: {printable(reason)}; {MODELS_FILE} gets no models: list them there, or run "
          f"`{again}` when the proxy answers", file=sys.stderr)


def _listing(root: str, found: Sequence[Found], forced: set[str],
             models: Sequence[Model] | None, proxy: Proxy) -> list[str]:
    """What happened to each file, then the next commands."""
    width = max(len(f.file.path) for f in found)
    lines = [f"runner init: {root}"]
    lines += [f"  {f.file.path:<{width}}  {_status(f, forced)}" for f in found]
    if models:
        lines.append(f"{MODELS_FILE} lists the {len(models)} models server '{proxy.name}' "
                     "serves now: the fallback when it is unreachable.")
    return lines + _next_steps(root, proxy, models)


def _status(found: Found, forced: set[str]) -> str:
    if found.state == NEW:
        return "wrote"
    if found.state == SAME:
        return "kept (unchanged)"
    if found.file.path in forced:
        return "replaced (--force)"
    return f"kept (differs; --force {found.file.path} replaces it)"


def _next_steps(root: str, proxy: Proxy, models: Sequence[Model] | None) -> list[str]:
    steps = [] if _is_here(root) else [(f"cd {shlex.quote(root)}", "")]
    steps += [(f"export {proxy.api_key_env}=...", "your proxy's key: runner reads it from there"),
              ("runner inventory", f"the models server '{proxy.name}' serves"),
              (f"runner plan {EXAMPLE_PLAN}", "the dry run: which models and jobs"),
              (f"runner apply {EXAMPLE_PLAN}", "run them; then `runner report latest`")]
    width = max(len(command) for command, _ in steps)
    lines = ["", "Next:", *(f"  {c:<{width}}  # {n}".rstrip(" #") for c, n in steps)]
    if models and len(models) > _BIG_INVENTORY:
        lines.append(_big_note(proxy, models))
    lines.append(f"No proxy at hand? Try the built-in simulator: "
                 f"runner apply {EXAMPLE_PLAN} --server {DEMO_SERVER}")
    return lines


def _big_note(proxy: Proxy, models: Sequence[Model]) -> str:
    other = starter.non_chat(models)
    which = f" ({len(other)} of them not chat models)" if other else ""
    return (f"NOTE: {EXAMPLE_PLAN} benchmarks every model; server '{proxy.name}' serves "
            f"{len(models)}{which}: narrow its `models:` before `runner apply`.")
