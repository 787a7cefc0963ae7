"""Space held on the results' disk while `apply` writes a run, so that a run stopped by a full
disk can still say so: giving it back leaves room for the final manifest and its index row."""

from __future__ import annotations

import os
from contextlib import suppress

from runner.errors import cannot_write

RESERVE_FILE = "run.reserve"
HEADROOM = 256 * 1024  # beyond the manifest: the index's WAL frames, and a margin
_CHUNK = 64 * 1024


class Reserve:
    """run.reserve in a run directory: bytes written (random, so that no file system compresses
    or shares them away) while the run is written, removed at its end."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, RESERVE_FILE)
        self.held = 0

    def hold(self, manifest_size: int) -> None:
        """Hold room for a manifest of `manifest_size` bytes (a quarter more, as its statuses
        grow) plus HEADROOM. StorageError (exit 74) when the disk cannot hold that much."""
        want = manifest_size + manifest_size // 4 + HEADROOM
        if want <= self.held:
            return
        try:
            with open(self.path, "ab" if self.held else "wb") as fh:
                for left in range(want - self.held, 0, -_CHUNK):
                    fh.write(os.urandom(min(left, _CHUNK)))
        except OSError as exc:
            self.release()
            raise cannot_write(self.path, exc, "the run's reserve of free space",
                               "free some space, then run it again") from None
        self.held = want

    def release(self) -> bool:
        """Give the space back; False when none was held."""
        held, self.held = self.held, 0
        with suppress(FileNotFoundError):
            os.unlink(self.path)
        return held > 0
