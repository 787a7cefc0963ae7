"""A worker process's main: runs its share (workers.run_share), sends what it emits up its pipe,
obeys the driver's messages from it, and never outlives the runner that started it.

The driver (workerpool) sends ("open", wall time), ("stop",), ("hurry",) or ("give_up", reason).
A worker ignores SIGINT and SIGTERM: Ctrl-C reaches the whole foreground process group (and a
cancelled CI job may signal the whole tree), and the runner's first signal gives in-flight
requests a grace period, which a worker dying of the same signal would turn into lost
requests; the runner relays them as "stop" (then "hurry"). SIGKILL still ends a worker, and
the runner records its unfinished requests as worker_lost."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from runner.run.workers import Control, Share, run_share

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def serve(conn: Connection, share: Share, parent: int) -> None:
    """The process's target (multiprocessing, spawn start method): `parent` is the runner's
    pid, whose death (kill -9 included) ends this process too (0: started from a thread other
    than the main one, whose end Linux would take for the runner's: the pipe alone watches)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))
    _die_with(parent)
    asyncio.run(_serve(conn, share))
    conn.close()


def _die_with(parent: int) -> None:
    """Linux: SIGKILL from the kernel when the runner dies; the pipe's end (EOF) covers the
    rest. Already gone: exit now."""
    if parent and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL),
                                                    0, 0, 0)
    if parent and os.getppid() != parent:
        os._exit(1)


async def _serve(conn: Connection, share: Share) -> None:
    loop = asyncio.get_running_loop()
    control = Control()

    def emit(kind: str, payload: Any) -> None:
        try:
            conn.send((kind, payload))
        except OSError:  # the runner is gone: nobody to send for
            control.parent_gone()

    loop.add_reader(conn.fileno(), _obey, conn, control, loop)
    try:
        await run_share(share, emit, control)
    finally:
        loop.remove_reader(conn.fileno())


def _obey(conn: Connection, control: Control, loop: asyncio.AbstractEventLoop) -> None:
    """One message from the driver (EOF: the runner is gone, stop at once)."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        loop.remove_reader(conn.fileno())
        control.parent_gone()
        return
    control.obey(message)
