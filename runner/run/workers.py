"""A job's load split over worker processes (issue 15 §1, `runner apply --workers N`): what one
worker needs to send its part of a job (`Share`, picklable), and `run_share`, which sends it in
the current process, handing each record and its outcome to `emit`. The processes that run the
shares and stream their records back: workerpool (workerchild in each process); how their
outcomes become the job's one result: workermerge; how many: workercount; the split: workersplit.

A share carries the job's target with its headers, the API key included: it travels in memory
only, through the pipe of the process that runs it (multiprocessing's spawn start method, or
Ray's object transfer), never in argv, the environment or a file."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runner.errors import RunnerError
from runner.load.deal import Deal
from runner.load.exchange import Target
from runner.load.loadgen import load_job
from runner.load.loadjob import LoadJob
from runner.load.records import RequestRecord

# What a worker tells its driver, as emit(kind, payload):
#   "records"  list[RequestRecord]: records that ended (as they end, in batches per loop turn)
#   "ready"    None: its warm-ups ended; it waits for "open" (Share.opens_at None)
#   "done"     LoadResult without records: how it fared (health, stopped, pauses, ...)
#   "crashed"  (str, RunnerError | None): the exception that ended it ("TypeError: ..."), and
#              itself when it is the user's error (a template failing for one request), which
#              the driver raises as run_load would have
Emit = Callable[[str, Any], None]


@dataclass(frozen=True)
class Share:
    """One worker's part of a job: the target (URL, headers with the API key, see the module
    docstring), the job's params with this worker's `concurrency` (closed loop) or its part of
    `rate` and `max_concurrency` (open loop; workersplit), its prompt source, its indices and
    arrivals (`deal`, dealt from the job's one schedule), and
    the job's max_error_rate and interrupt grace (s). `opens_at`: the wall time (time.time())
    at which its measured window opens; None: when its driver says so ("ready" / "open")."""

    target: Target
    params: Mapping[str, Any]
    prompts: Any  # runner.load.workload.PromptSource
    deal: Deal
    max_error_rate: float = 0.0
    grace_s: float = 2.0
    opens_at: float | None = None


@dataclass
class Control:
    """What a worker's driver can do to it while it runs: stop (first interrupt: send nothing
    more, in-flight requests get their grace), hurry (second: cancel them now), give up for
    the reason another worker gave up for, and open the measured window at a wall time."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)
    opens: asyncio.Future[float] | None = None
    job: LoadJob | None = None

    def open_at(self, wall: float) -> None:
        if self.opens is not None and not self.opens.done():
            self.opens.set_result(wall)

    def give_up(self, reason: str) -> None:
        """Stop sending as the job stops when its server cannot be benchmarked."""
        if self.job is None:
            self.stop.set()
        elif reason == "unreachable":
            self.job.sending = False
            self.job.unreachable.set()
        else:
            self.job._give_up(reason)

    def obey(self, message: tuple[Any, ...]) -> None:
        """One message from the driver: ("open", wall time), ("stop",), ("hurry",) or
        ("give_up", reason); anything else is ignored."""
        kind = message[0]
        if kind == "open":
            self.open_at(float(message[1]))
        elif kind == "stop":
            self.stop.set()
        elif kind == "hurry":
            self.stop.set()
            self.hurry.set()
        elif kind == "give_up":
            self.give_up(str(message[1]))

    def parent_gone(self) -> None:
        self.stop.set()
        self.hurry.set()


async def run_share(share: Share, emit: Emit, control: Control | None = None) -> None:
    """Send `share` in this process's event loop; every record goes to `emit` as it ends, then
    its outcome ("done") or the exception that ended it ("crashed"). Never raises for the
    job's own failures: they are records and outcomes."""
    control = control or Control()
    control.opens = asyncio.get_running_loop().create_future()
    batch: list[RequestRecord] = []
    job = load_job(share.target, share.params, share.prompts,
                   lambda record: _collect(batch, emit, record), share.max_error_rate)
    job.take_part(share.deal)
    job.before_open = lambda: _window(share, emit, control)
    control.job = job
    try:
        result = await job.run(control.stop, control.hurry, share.grace_s)
    except Exception as exc:  # a template failing for one index, say: the worker is lost
        _flush(batch, emit)
        emit("crashed", (f"{type(exc).__name__}: {exc}", _portable(exc)))
        return
    _flush(batch, emit)
    emit("done", replace(result, records=[]))


def _portable(exc: Exception) -> RunnerError | None:
    """`exc` when it is a user's error that survives pickling, else None."""
    if not isinstance(exc, RunnerError):
        return None
    try:
        copy = pickle.loads(pickle.dumps(exc))
    except Exception:  # an error class whose arguments do not rebuild it
        return None
    return copy if isinstance(copy, RunnerError) else None


def _collect(batch: list[RequestRecord], emit: Emit, record: RequestRecord) -> None:
    """Records that end in one turn of the event loop leave together, at its end: one message
    instead of one per record, and no record waits for more than that turn."""
    if not batch:
        asyncio.get_running_loop().call_soon(_flush, batch, emit)
    batch.append(record)


def _flush(batch: list[RequestRecord], emit: Emit) -> None:
    if batch:
        emit("records", batch.copy())
        batch.clear()


async def _window(share: Share, emit: Emit, control: Control) -> None:
    """Before the measured window opens: wait for the wall time at which every worker opens
    it (asked of the driver once this worker's warm-ups ended), or for a stop."""
    assert control.opens is not None
    if share.opens_at is not None:
        control.open_at(share.opens_at)
    else:
        emit("ready", None)
    stopped: asyncio.Future[Any] = asyncio.ensure_future(control.stop.wait())
    waits: list[asyncio.Future[Any]] = [control.opens, stopped]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if control.opens.done():
        await asyncio.sleep(max(0.0, control.opens.result() - time.time()))
