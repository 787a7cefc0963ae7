"""Files a command writes into a folder: compared with what is there, then written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from runner.atomicfile import write_atomic
from runner.defaults import MAX_DOCUMENT_BYTES
from runner.errors import InputError
from runner.inputfile import read_input

NEW, SAME, DIFFERS = "new", "same", "differs"


@dataclass(frozen=True)
class File:
    """One file to write: its path relative to the folder ('/'-separated) and its bytes."""

    path: str
    content: bytes


@dataclass(frozen=True)
class Found:
    """A file to write and how it compares with what the folder holds now."""

    file: File
    state: str  # NEW, SAME or DIFFERS


def full_path(root: str, relative: str) -> str:
    """`relative` ('/'-separated) inside `root`."""
    return os.path.join(root, *relative.split("/"))


def survey(root: str, files: Sequence[File]) -> list[Found]:
    """Each of `files` with its state in `root`; a path that cannot be read is an InputError."""
    return [Found(f, _state(full_path(root, f.path), f.content)) for f in files]


def _state(path: str, content: bytes) -> str:
    try:
        existing = read_input(path, "a file runner writes", MAX_DOCUMENT_BYTES,
                              "move it away and run again")
    except FileNotFoundError:
        return NEW
    except OSError as exc:
        raise InputError(f"{path}: exists but cannot be read ({exc.strerror}); "
                         "move it away and run again") from None
    return SAME if existing == content else DIFFERS


def write(root: str, found: Found) -> None:
    """Write one file, creating its folders. A new file that appeared since the survey is left
    alone (InputError): only a file found to differ may be replaced."""
    path = full_path(root, found.file.path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if found.state == NEW and os.path.lexists(path):
            raise InputError(f"{path}: appeared while runner was writing; run again")
        write_atomic(path, found.file.content)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
