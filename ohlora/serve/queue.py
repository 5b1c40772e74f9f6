"""One engine, one generation at a time: a FIFO wait list in front of a single worker thread.

Every job runs on the worker thread, so the engine, the sessions and the adapter switch are
only ever touched by one thread. `submit` refuses a job when `max_waiting` jobs are already
waiting (`QueueFull` carries a Retry-After estimate: the mean job time times the jobs ahead).
`cancel` takes a waiting job off the list, or flags a running one: the job's code checks
`job.cancelled` after each token and stops the engine (`ChatSession.cancel`).

llama-cpp-python's `Llama` runs one sequence per context; batching two conversations would
mean a second sampler and the low-level batch API, so requests are served one at a time.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import math
import threading
import time
from typing import Any, Callable

log = logging.getLogger("ohlora.serve")


class QueueFull(Exception):
    def __init__(self, retry_after: int, waiting: int):
        super().__init__(f"the server is busy: {waiting} requests are waiting; retry in {retry_after} s")
        self.retry_after = retry_after
        self.waiting = waiting


class QueueClosed(Exception):
    """The server is shutting down."""


class Job:
    """One request's work. `fn(job)` runs on the worker thread; `emit` hands events to the loop."""

    _ids = itertools.count(1)

    def __init__(self, fn: Callable[["Job"], None], loop: asyncio.AbstractEventLoop | None = None):
        self.id = next(self._ids)
        self.fn = fn
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.enqueued_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def queue_wait(self) -> float:
        return ((self.started_at or time.monotonic()) - self.enqueued_at)

    def emit(self, kind: str, payload: Any = None) -> None:
        if self.loop is None:
            self.events.put_nowait((kind, payload))
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is gone (server shutting down): nobody is listening
            pass


class EngineQueue:
    def __init__(self, max_waiting: int = 32, *, first_estimate_s: float = 2.0) -> None:
        self.max_waiting = max_waiting
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.running: Job | None = None
        self.served = 0
        self._mean_s = first_estimate_s  # moving average of a job's run time
        self._calls: collections.deque[tuple[Callable[[], Any], concurrent.futures.Future]] = collections.deque()
        self._thread = threading.Thread(target=self._run, name="ohlora-engine", daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def retry_after(self) -> int:
        return max(1, min(600, math.ceil(self._mean_s * (len(self._waiting) + 1))))

    def submit(self, job: Job) -> int:
        """Add a job at the back; its place in the line (0: runs next). QueueFull when full."""
        with self._cond:
            if self._closed:
                raise QueueClosed("the server is shutting down")
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(self.retry_after(), len(self._waiting))
            job.enqueued_at = time.monotonic()
            self._waiting.append(job)
            self._cond.notify_all()
            return len(self._waiting) - 1

    def cancel(self, job: Job) -> None:
        job.cancelled.set()
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                pass

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run `fn` on the worker thread before the next job (warm-up, shutdown work)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            self._calls.append((fn, fut))
            self._cond.notify_all()
        return fut

    def close(self, timeout: float = 10.0) -> None:
        """Drop the waiting jobs, flag the running one, and let the worker finish it."""
        with self._cond:
            self._closed = True
            for job in self._waiting:
                job.cancelled.set()
            self._waiting.clear()
            if self.running is not None:
                self.running.cancelled.set()
            self._cond.notify_all()
        self._thread.join(timeout)

    def stats(self) -> dict:
        return {"waiting": len(self._waiting), "running": int(self.running is not None),
                "max_waiting": self.max_waiting, "served": self.served,
                "mean_job_s": round(self._mean_s, 3)}

    # -- the worker thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._calls:
                    self._cond.wait()
                if self._calls:
                    fn, fut = self._calls.popleft()
                    job = None
                elif self._waiting:
                    job = self._waiting.popleft()
                    self.running = job
                else:  # closed and nothing left
                    return
            if job is None:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn())
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
                continue
            job.started_at = time.monotonic()
            try:
                if not job.cancelled.is_set():
                    job.fn(job)
            except BaseException:  # noqa: BLE001 - a job's own code reports its errors; this is a bug
                log.exception("job %s failed", job.id)
                job.emit("error", None)
            finally:
                job.finished_at = time.monotonic()
                with self._cond:
                    self.running = None
                    self.served += 1
                    took = job.finished_at - job.started_at
                    self._mean_s = 0.8 * self._mean_s + 0.2 * took
