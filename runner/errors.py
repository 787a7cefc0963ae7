"""The one error tree and the one table of exit codes."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_JOBS_FAILED = 1
EXIT_INVALID = 2
EXIT_INVENTORY = 3
EXIT_GATE = 4
EXIT_STALE = 5
EXIT_INTERNAL = 70
EXIT_STORAGE = 74  # sysexits.h EX_IOERR
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file position and/or a data path such as `$.benchmarks[1].load`."""

    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    path: str | None = None

    def prefix(self) -> str:
        parts = [p for p in (self.file, self.line, self.col) if p is not None]
        return ":".join(str(p) for p in parts)


@dataclass(frozen=True)
class Problem:
    """One user-facing problem: a message and where it is."""

    message: str
    where: Location = Location()

    def render(self) -> str:
        head = self.where.prefix()
        text = f"{head}: {self.message}" if head else self.message
        if self.where.path:
            text += f" (at {self.where.path})"
        return text


class RunnerError(Exception):
    """Base of every error a user may see; `exit_code` says how the process ends."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = (Problem(message, where or Location()),)

    @classmethod
    def many(cls, problems: Sequence[Problem]) -> RunnerError:
        """One error carrying several problems, all reported at once."""
        err = cls(problems[0].message, problems[0].where)
        err.problems = tuple(problems)
        return err

    def lines(self) -> list[str]:
        return [p.render() for p in self.problems]


class UsageError(RunnerError):
    """Bad command line."""

    exit_code = EXIT_INVALID


class InputError(RunnerError):
    """A plan, config or template is invalid."""

    exit_code = EXIT_INVALID


class BusyError(RunnerError):
    """Another runner holds what this one needs: a run directory, or a server being benchmarked."""

    exit_code = EXIT_INVALID


class RefusedError(RunnerError):
    """`apply` refuses a plan the server would not let it measure (it passes the key's limits);
    `--force` runs it anyway."""

    exit_code = EXIT_INVALID


class InventoryError(RunnerError):
    """No usable inventory, an auth failure, or a selection that matches no models."""

    exit_code = EXIT_INVENTORY


class InstallationError(RunnerError):
    """runner's own files are missing or damaged: nothing the user's input can fix."""

    exit_code = EXIT_INTERNAL

    @classmethod
    def missing(cls, what: str) -> InstallationError:
        """The error for a file that every installation of runner carries but this one lacks."""
        return cls(f"this installation of runner has no {what}; reinstall it,"
                   " e.g. `pip install --force-reinstall runner`")


class GateError(RunnerError):
    """A quality gate failed."""

    exit_code = EXIT_GATE


class StaleError(RunnerError):
    """A saved plan no longer matches the plan file or the inventory."""

    exit_code = EXIT_STALE


class StorageError(RunnerError):
    """A file could not be written: the disk is full (or over quota, or failing). `failed`
    says which file and why; the message adds what to do."""

    exit_code = EXIT_STORAGE
    fix = "free some space"  # what to do before the run is resumed

    def __init__(self, failed: str, then: str = "") -> None:
        then = then or f"{self.fix}, then run it again"
        super().__init__(f"{failed}; {then}")
        self.failed = failed


# Out of space, over quota or a file-size limit, or the device failing: no input can fix it.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def cannot_write(path: str, exc: OSError, what: str = "", then: str = "") -> RunnerError:
    """The one-line error for `exc` raised while writing `path` (`what` names the file, `then`
    says what to do): a StorageError (exit 74) when the disk is full or failing, else an
    InputError (exit 2: a path the user chose cannot be written)."""
    reason = exc.strerror or str(exc)
    text = f"{path}: cannot write{f' {what}' if what else ''} ({reason})"
    if exc.errno in STORAGE_ERRNOS:
        return StorageError(text, then) if then else StorageError(text)
    return InputError(f"{text}{f'; {then}' if then else ''}")


class UnreachableIndexError(StorageError):
    """The results index on a PostgreSQL server cannot be reached or used now (refused,
    timed out, shut down): like a full disk, the run's files are kept, and it can be resumed."""

    fix = "make the results index reachable again"
