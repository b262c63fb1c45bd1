"""Where the web app's model calls run: quick calls on a thread pool, restyles apart.

Quick calls (generate, interpolate, classify) take a millisecond or two and share a thread pool
in the server process. A restyle takes about 5 ms with the run's noise inverter and 50 ms
without (a hundred Adam steps from eight starts), mostly short torch calls and Python glue, so
a restyle thread would hold the interpreter lock for much of its time and slow every quick
request (and the event loop) down. When the app was loaded from a run folder, restyles
therefore run in separate worker processes that load the generator themselves (restyle.py), at
a lower CPU priority: with the cores busy, quick requests go first. (Lower priority is not
free: on this 2-core machine a busy nice-19 process still took the grid's p99 from 35 to 95 ms,
which is why the cheap inverter path matters.)

Every call is `function(service, *args)`, in either lane, and `Lanes` gives each request one
time limit (waiting included) across the calls it makes.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from pathlib import Path

from zspace.web.restyle import call_in_worker, start_worker, worker_ready
from zspace.web.service import DigitService, ServiceUnavailable, one_torch_thread

# Seconds stopping worker processes may take before they are killed (see RestyleLane.shutdown).
WORKER_STOP_TIMEOUT = 1.0


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
            initializer=start_worker,
            initargs=self._worker_args,
        )

    def start(self) -> None:
        """Start loading the workers now, so that the first restyle does not wait for it."""
        if self._processes is not None:
            self._processes.submit(call_in_worker, worker_ready, ())

    async def run(self, function, *args):
        """`function(service, *args)` in the lane; ServiceUnavailable if a worker died."""
        loop = asyncio.get_running_loop()
        if self._threads is not None:
            return await loop.run_in_executor(self._threads, function, self.service, *args)
        pool = self._processes
        try:
            return await loop.run_in_executor(pool, call_in_worker, function, args)
        except BrokenProcessPool:
            if self._processes is pool:  # the first caller to notice replaces the pool
                pool.shutdown(wait=False, cancel_futures=True)
                self._processes = self._new_process_pool()
                self.start()
            raise ServiceUnavailable("the restyle worker stopped; try again") from None

    def shutdown(self, timeout: float = WORKER_STOP_TIMEOUT) -> None:
        """Drop waiting calls and stop the worker processes, within about `timeout` seconds.

        A worker is not waited for: at the lowest priority on a busy machine, its restyle (or
        its start-up) can take a minute, and a server told to stop must stop. Workers still
        running after SIGTERM and `timeout` are killed. Restyle threads are left to finish.
        """
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            stop_processes(self._processes, timeout)


def stop_processes(pool: ProcessPoolExecutor, timeout: float) -> None:
    """Shut `pool` down now: SIGTERM its workers, SIGKILL those alive after `timeout` s."""
    # The executor has no public way to stop a busy worker (Python 3.14 adds
    # terminate_workers); its `_processes` maps pid -> multiprocessing.Process.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0))
        if worker.is_alive():
            worker.kill()
            worker.join(1)


class Lanes:
    """Both lanes of one app, with the time limit of each request (asyncio.TimeoutError).

    `threads` quick calls run at once; `restyle_workers` restyles beside them, in processes
    loading `run_dir` when it is given (see RestyleLane), else in threads.
    """

    def __init__(
        self,
        service: DigitService,
        run_dir: str | Path | None = None,
        device: str = "cpu",
        threads: int = 1,
        restyle_workers: int = 1,
        timeout: float = 30.0,
    ):
        self.service, self.timeout = service, timeout
        self._new_quick_pool = functools.partial(
            ThreadPoolExecutor,
            max_workers=threads,
            thread_name_prefix="zspace-infer",
            initializer=one_torch_thread,
        )
        self._new_restyle_lane = functools.partial(
            RestyleLane, service, run_dir, device=device, workers=restyle_workers
        )
        self._quick = self._new_quick_pool()
        self.restyles = self._new_restyle_lane()
        self._stopped = False

    def deadline(self) -> float:
        """When a request starting now runs out of time (on the running loop's clock)."""
        return asyncio.get_running_loop().time() + self.timeout

    async def quick(self, function, *args, deadline: float | None = None):
        """`function(service, *args)` in the quick lane, by `deadline` (default: the limit)."""
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._quick, function, self.service, *args)
        return await asyncio.wait_for(call, timeout=self._time_left(deadline))

    async def restyle(self, function, *args, deadline: float | None = None):
        """`function(service, *args)` in the restyle lane, by `deadline`."""
        call = self.restyles.run(function, *args)
        return await asyncio.wait_for(call, timeout=self._time_left(deadline))

    def _time_left(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout
        return max(deadline - asyncio.get_running_loop().time(), 0.001)

    def start(self) -> None:
        if self._stopped:  # started again after a shutdown (a test client opened twice)
            self._quick, self.restyles = self._new_quick_pool(), self._new_restyle_lane()
            self._stopped = False
        self.restyles.start()

    def shutdown(self) -> None:
        self._stopped = True
        self._quick.shutdown(wait=False, cancel_futures=True)
        self.restyles.shutdown()
