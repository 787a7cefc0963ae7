"""Names that become paths or stored keys: plan names (results/<plan>/), job slugs
(jobs/<slug>.json) and keys named like credentials. `validate` and the results store ask the
same functions, so what validates can be stored."""

from __future__ import annotations

import re

PLAN_NAME_MAX = 64
SLUG_MAX = 200  # a job's files add at most 15 characters (.requests.jsonl); file names hold 255
# The results folder's own files: results/index.sqlite with its -wal, -shm and -journal.
RESULTS_FILES = ("index.sqlite",)
REPORT_WORDS = ("latest", "previous")  # `runner report latest --plan NAME`
_PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})
_SECRET_KEY = re.compile(
    r"(?:.*_)?(?:api_?key|master_key)|(?:proxy_)?authorization|litellm_params"
)


def component_problem(name: object, max_len: int) -> str | None:
    """Why `name` cannot be one file name inside a folder on every system runner's results are
    copied to (Linux, macOS, Windows CI artifacts), or None."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name.encode("utf-8", "surrogatepass")) > max_len:
        return f"is longer than {max_len} bytes"
    if name.startswith("."):
        return "must not start with '.' (a hidden file, or a way out of the folder)"
    if any(c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "must not hold '/', '\\' or control characters"
    if name.endswith((".", " ")):
        return "must not end with '.' or a space (Windows drops them)"
    return None


def plan_name_problem(name: object) -> str | None:
    """Why `name` cannot name results/<name>/ (beside results/index.sqlite), or None."""
    problem = component_problem(name, PLAN_NAME_MAX)
    if problem or not isinstance(name, str):
        return problem
    if not _PLAN_NAME.fullmatch(name):
        return "must start with a letter or digit and hold only letters, digits and _ . -"
    if name.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return "is a device name on Windows (CON, NUL, COM1...): choose another name"
    folded = name.casefold()
    if folded.startswith(RESULTS_FILES):  # case-insensitive file systems fold it too
        return "collides with results/index.sqlite, the results index: choose another name"
    if folded in REPORT_WORDS:
        return "is a word of `runner report` (latest, previous): choose another name"
    return None


def slug_problem(slug: object) -> str | None:
    """Why `slug` cannot name a job's files inside a run's jobs/ folder, or None."""
    return component_problem(slug, SLUG_MAX)


def is_secret_key(key: object) -> bool:
    """Whether a mapping key is named like a credential (api_key, X-Api-Key, authorization,
    master_key, litellm_params...): such keys are never stored."""
    return bool(_SECRET_KEY.fullmatch(str(key).lower().replace("-", "_")))
