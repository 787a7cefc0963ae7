"""`runner new`: write a plan from the models a server serves, by questions or by options.

Questions, the model listing and notes go to stderr; stdout carries only the final plan view,
so `runner new ... --yes > view.txt` keeps the view. Answers are read line by line from stdin.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from runner.atomicfile import write_atomic
from runner.commands.plan import as_text
from runner.commands.targeting import Target
from runner.errors import EXIT_OK, InputError, InventoryError, UsageError
from runner.inventory import config
from runner.inventory.listing import Inventory, Model
from runner.inventory.workspace import Workspace, describe_source, fetch, open_workspace, serving
from runner.plan import newplan, patterns
from runner.plan.newplan import AnswerError, Choice, Preset
from runner.plan.planfile import Plan, load_plan
from runner.plan.selection import Options, select
from runner.printable import printable, printable_lines

T = TypeVar("T")
_DEFAULTS = "--yes to take the defaults"
_SCHEMA = os.path.join("schemas", "plan.schema.json")


class Asker:
    """Asks on `out`, reads answers from `inp`; with `yes`, every question takes its default."""

    def __init__(self, inp: TextIO | None, out: TextIO, yes: bool) -> None:
        self.inp, self.out, self.yes = inp, out, yes

    def say(self, text: str = "") -> None:
        self.out.write(printable_lines(text) + "\n")
        self.out.flush()

    def ask(self, question: str, parse: Callable[[str], T], default: str | None,
            option: str) -> T:
        """Ask until `parse` accepts the answer; an empty answer takes `default`.
        End of input is an InputError naming `option`, the way to answer without asking."""
        if self.yes:
            if default is None:
                raise UsageError(f"--yes: '{question}' has no default; pass {option}")
            self.say(f"{question}: {default}")
            return parse(default)
        while True:
            try:
                return parse(self._read(question, default, option) or default or "")
            except AnswerError as err:
                self.say(f"  {err}")

    def _read(self, question: str, default: str | None, option: str) -> str:
        self.out.write(f"{question}{f' [{default}]' if default else ''}: ")
        self.out.flush()
        line = self.inp.readline() if self.inp is not None else ""
        if not line:
            self.say()
            raise InputError(f"no answer to '{question}' (end of input); pass {option}")
        if self.inp is not None and not self.inp.isatty():
            self.say(line.rstrip("\n"))  # piped answers are not echoed: show them
        return line.strip()


@dataclass(frozen=True)
class Draft:
    """Everything the plan is made of."""

    ws: Workspace
    inv: Inventory
    models: tuple[str, ...]
    preset: Preset
    values: Mapping[str, Any]


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    asker = Asker(sys.stdin, sys.stderr, args.yes)
    try:
        draft = _draft(args, env, asker)
        name, path, replace = _ask_path(args, asker, draft.preset.name)
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # end the prompt's line before main says "interrupted"
        raise
    plan = _write(draft, name, path, args.plans_dir, replace)
    asker.say(f"wrote {path}; run it with: runner apply {path}")
    chosen = select(plan, draft.inv.ids(), draft.ws.models.groups, Options(), draft.inv)
    found = [Target(draft.ws.server, draft.inv, chosen)]
    print(printable_lines(as_text(plan, found, draft.ws.models.path)))
    return EXIT_OK


def _draft(args: argparse.Namespace, env: Mapping[str, str], asker: Asker) -> Draft:
    _check_options(args)
    found = config.find_config_dir(args.config_dir, env, near=args.plans_dir)
    servers = config.load_servers(found)
    server = args.server or _ask_server(asker, servers, env)
    ws = open_workspace(args.config_dir, server, env, None, near=args.plans_dir)
    if args.models:
        patterns.check(args.models, ws.models.groups)
    inv = _inventory(ws, env, args.source, asker)
    terms, selected = _ask_models(asker, inv, ws.models.groups, args.models)
    preset = newplan.PRESETS[args.preset or _ask_preset(asker)]
    chosen = [m for m in inv.models if m.id in selected]
    return Draft(ws, inv, terms, preset, _ask_values(asker, preset, chosen))


def _check_options(args: argparse.Namespace) -> None:
    if args.name:
        try:
            args.name = newplan.check_name(args.name)
        except AnswerError as err:
            raise UsageError(f"--name: {err}") from None
        if args.yes:
            _refuse_existing(_plan_path(args.plans_dir, args.name))


def _ask_server(asker: Asker, servers: config.Servers, env: Mapping[str, str]) -> str:
    names = list(servers.servers)
    if len(names) == 1:
        asker.say(f"server: {names[0]} (the only one in {servers.path})")
        return names[0]
    default = env.get("RUNNER_SERVER") or servers.default
    asker.say(f"Servers in {servers.path}:")
    for i, (name, server) in enumerate(servers.servers.items(), 1):
        where = "simulator, started by runner" if server.kind == "mock" else server.url
        asker.say(f"  {i}) {name:<{max(map(len, names))}}  {where}")
    return asker.ask("Server", lambda t: newplan.parse_choice(t, names),
                     default if default in names else None, "--server NAME")


def _inventory(ws: Workspace, env: Mapping[str, str], source: str, asker: Asker) -> Inventory:
    with serving(ws) as live:
        inv = fetch(live, env, source, allow_fallback=True)
    asker.say(printable(describe_source(inv, ws.models.path)))
    if not inv.models:
        raise InventoryError(f"server '{inv.server}' serves no models")
    return inv


def _ask_models(asker: Asker, inv: Inventory, groups: newplan.Groups,
                given: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The terms to write into the plan, and the models they select now."""
    ids = inv.ids()
    if given:
        try:
            found = newplan.parse_selection(given, ids, groups, numbers=False)
        except AnswerError as err:
            raise InventoryError(f"--models '{given}': {err}") from None
        return found.typed or found.models, found.models
    asker.say("\n".join(["", *listing(inv.models), ""]))
    asker.say("Choose by numbers (1-3,7) or a pattern (Qwen/*, !*-FP8, ~regex, @group, all).")
    choice = asker.ask("Models", lambda t: newplan.parse_selection(t, ids, groups),
                       newplan.DEFAULT_MODELS, "--models PATTERN")
    asker.say(f"selected {len(choice.models)}: {printable(', '.join(choice.models))}")
    return _ask_keep(asker, choice, ids), choice.models


def listing(models: Sequence[Model]) -> list[str]:
    """The numbered table of models with their metadata."""
    rows = [[str(i), m.id, m.mode or "-", _cell(m.max_input_tokens), _cell(m.max_output_tokens)]
            for i, m in enumerate(models, 1)]
    header = ["#", "ID", "MODE", "MAX IN", "MAX OUT"]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return ["  " + "  ".join(c.rjust(w) if i == 0 else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in [header, *rows]]


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ask_keep(asker: Asker, choice: Choice, ids: Sequence[str]) -> tuple[str, ...]:
    pattern = newplan.propose_pattern(choice, ids)
    fixed = tuple(map(patterns.literal_term, choice.models))  # `a=b` would read as a mode term
    if pattern == fixed:
        return pattern
    asker.say("Save the selection in the plan as")
    asker.say(f"  1) the pattern     {', '.join(pattern)}  (resolved again at every run)")
    asker.say(f"  2) the fixed list  {printable(', '.join(fixed))}")
    keep = asker.ask("Save as", lambda t: newplan.parse_choice(t, ["pattern", "list"]),
                     "pattern", "--models PATTERN")
    return pattern if keep == "pattern" else fixed


def _ask_preset(asker: Asker) -> str:
    names = list(newplan.PRESETS)
    asker.say("Presets:")
    for i, preset in enumerate(newplan.PRESETS.values(), 1):
        asker.say(f"  {i}) {preset.name:<12}  {preset.summary}")
    return asker.ask("Preset", lambda t: newplan.parse_choice(t, names), names[0],
                     "--preset NAME")


def _ask_values(asker: Asker, preset: Preset, models: Sequence[Model]) -> dict[str, Any]:
    caps = newplan.caps_for(models)
    values: dict[str, Any] = {}
    for field in preset.fields:
        default = newplan.default_for(field, caps)
        if default != field.default and field.cap:
            asker.say(f"  ({field.key} at most {default}: the {field.cap} of "
                      f"{caps[field.cap][1]})")
        shown = ", ".join(map(str, default)) if isinstance(default, list) else str(default)
        values[field.key] = asker.ask(field.question, _parser(field, caps), shown, _DEFAULTS)
    return values


def _parser(field: newplan.Field, caps: newplan.Caps) -> Callable[[str], Any]:
    return lambda text: newplan.parse_value(field, text, caps)


def _ask_path(args: argparse.Namespace, asker: Asker, default: str) -> tuple[str, str, bool]:
    """The plan's name, its file, and whether the user agreed to replace that file."""
    name: str | None = args.name
    while True:
        if name is None:
            free = newplan.free_name(default, lambda n: _exists(args.plans_dir, n))
            name = asker.ask("Plan name", newplan.check_name, free, "--name NAME")
        path = _plan_path(args.plans_dir, name)
        if not os.path.exists(path):
            return name, path, False
        if asker.yes:
            _refuse_existing(path)
        if asker.ask(f"{path} exists. Replace it?", newplan.parse_yes_no, "n", "--name NAME"):
            return name, path, True
        name = None


def _plan_path(plans_dir: str, name: str) -> str:
    return os.path.join(plans_dir, f"{name}.yaml")


def _exists(plans_dir: str, name: str) -> bool:
    return os.path.exists(_plan_path(plans_dir, name))


def _refuse_existing(path: str) -> None:
    if os.path.exists(path):
        raise UsageError(f"{path} exists and runner new never replaces a file without asking: "
                         "choose another --name or move the file away")


def _write(draft: Draft, name: str, path: str, plans_dir: str, replace: bool) -> Plan:
    """Validate the text with the plan loader, then write it atomically (nothing before)."""
    data = newplan.build_plan(name, draft.inv.server, draft.models, draft.preset, draft.values)
    text = newplan.render_plan(data, newplan.schema_ref(plans_dir, _schema_file(plans_dir)),
                               _header(draft), _notes(draft))
    with tempfile.TemporaryDirectory() as tmp:
        trial = os.path.join(tmp, os.path.basename(path))
        with open(trial, "w", encoding="utf-8") as fh:
            fh.write(text)
        plan = load_plan(trial)
    if not replace:
        _refuse_existing(path)  # it may have appeared while the questions were asked
    os.makedirs(plans_dir, exist_ok=True)
    write_atomic(path, text)
    return dataclasses.replace(plan, path=path)


def _schema_file(plans_dir: str) -> str:
    """schemas/plan.schema.json in the nearest folder above the plans that has one, else in
    the current folder (the project root, where plans/ and configs/ are by default)."""
    folder = os.path.abspath(plans_dir)
    while not os.path.isfile(os.path.join(folder, _SCHEMA)):
        if os.path.dirname(folder) == folder:
            return _SCHEMA
        folder = os.path.dirname(folder)
    return os.path.join(folder, _SCHEMA)


def _header(draft: Draft) -> list[str]:
    inv = draft.inv
    source = "the live inventory" if inv.source == "live" else "the fallback models file"
    return [f"Written by `runner new` (preset {draft.preset.name}) from {source} of server "
            f"'{inv.server}'.", "Edit freely; `runner plan FILE` shows the models and jobs."]


def _notes(draft: Draft) -> dict[tuple[str, ...], str]:
    exact = set(draft.models) <= set(map(patterns.literal_term, draft.inv.ids()))
    note = "exact model ids" if exact else "a pattern, resolved again at every run"
    return {("benchmarks", "models"): note}
