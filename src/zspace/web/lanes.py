"""Where the web app's model calls run: quick calls on a thread pool, restyles apart.

Quick calls (generate, interpolate, classify) take a millisecond or two and share a thread pool
in the server process. A restyle takes about 5 ms with the run's noise inverter and 50 ms
without (a hundred Adam steps from eight starts), mostly short torch calls and Python glue, so
a restyle thread would hold the interpreter lock for much of its time and slow every quick
request (and the event loop) down. When the app was loaded from a run folder, restyles
therefore run in separate worker processes that load the generator themselves, at a lower CPU
priority: with the cores busy, quick requests go first. (Lower priority is not free: on this
2-core machine a busy nice-19 process still took the grid's p99 from 35 to 95 ms, which is why
the cheap inverter path matters.)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from pathlib import Path

import torch

from zspace.web.service import DigitService, ServiceUnavailable

# The restyle workers' nice value (0 normal .. 19 lowest). A restyle costs 5 (with an inverter)
# to 50 grids' worth of CPU; at the lowest priority it takes mostly what the quick requests
# leave (with a core idle, it still runs at full speed). Measured with bench_web.py: grid p99 about 2 ms lower than
# at nice 10, within the noise of single runs.
RESTYLE_NICENESS = 19


def one_torch_thread() -> None:
    """Run in each inference thread or worker: its torch ops use one core. Requests run side by
    side instead; splitting a forward pass this small across cores costs more than it saves."""
    torch.set_num_threads(1)


# Each worker process's own service, set once by _start_worker (the process pool's initializer).
_worker_service: DigitService | None = None


def _exit_when_parent_exits() -> None:
    # A server killed outright (SIGKILL, or a signal re-raised right after shutdown) never
    # tells its workers to stop; without this they would live on, holding its stdout open.
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _start_worker(run_dir: str, device: str) -> None:
    import zspace

    global _worker_service
    threading.Thread(target=_exit_when_parent_exits, daemon=True).start()
    one_torch_thread()
    try:
        os.nice(RESTYLE_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform: run at the normal priority
        pass
    _worker_service = DigitService(zspace.load(run_dir, device=device))
    # Pay the first restyle's one-off costs now, not on the first user's drawing: importing the
    # module its function comes from (FastAPI and all, about 0.25 s) and torch's lazy set-up.
    import zspace.web.app  # noqa: F401

    if _worker_service.conditional:
        _worker_service.restyle(torch.zeros(28, 28, dtype=torch.uint8), [0], source_digit=0)


def _call_in_worker(function, args: tuple):
    return function(_worker_service, *args)


def _ready(service: DigitService) -> bool:
    return service is not None


class RestyleLane:
    """Runs restyle calls `function(service, *args)` away from the quick lane.

    With `run_dir`, in `workers` processes that each load the generator from the run folder
    (`function` and its arguments must pickle: a module-level function and plain values or
    tensors); a worker that dies is replaced. Without, in `workers` threads over `service`.
    More calls than workers wait their turn.
    """

    def __init__(
        self,
        service: DigitService,
        run_dir: str | Path | None = None,
        device: str = "cpu",
        workers: int = 1,
    ):
        self.service, self.workers = service, workers
        self._worker_args = None if run_dir is None else (str(run_dir), str(device))
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPoolExecutor | None = None
        if self._worker_args is None:
            self._threads = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="zspace-restyle",
                initializer=one_torch_thread,
            )
        else:
            self._processes = self._new_process_pool()

    @property
    def in_processes(self) -> bool:
        return self._processes is not None

    def _new_process_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process already holds torch's thread pools and, under
        # uvicorn, an event loop; a forked copy of those can deadlock.
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=self._worker_args,
        )

    def start(self) -> None:
        """Start loading the workers now, so that the first restyle does not wait for it."""
        if self._processes is not None:
            self._processes.submit(_call_in_worker, _ready, ())

    async def run(self, function, *args):
        """`function(service, *args)` in the lane; ServiceUnavailable if a worker died."""
        loop = asyncio.get_running_loop()
        if self._threads is not None:
            return await loop.run_in_executor(self._threads, function, self.service, *args)
        pool = self._processes
        try:
            return await loop.run_in_executor(pool, _call_in_worker, function, args)
        except BrokenProcessPool:
            if self._processes is pool:  # the first caller to notice replaces the pool
                pool.shutdown(wait=False, cancel_futures=True)
                self._processes = self._new_process_pool()
                self.start()
            raise ServiceUnavailable("the restyle worker stopped; try again") from None

    def shutdown(self) -> None:
        """Drop waiting calls; wait for running ones (a restyle takes well under a second),
        so that the worker processes have stopped when this returns."""
        for pool in (self._threads, self._processes):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
