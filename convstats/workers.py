"""Blocking store calls from asynchronous code: a bounded pool of worker threads, a deadline.

A store answers by blocking (a MongoDB round trip, a lock); an event loop must not wait on
it. :class:`StoreCalls` runs each call in a worker thread, at most ``threads`` at once, and
gives up waiting after ``timeout`` seconds with :class:`~convstats.errors.StorageTimeout`,
which the endpoint answers with its 503. A call that hangs keeps its thread until it returns,
so a store that hangs costs at most ``threads`` threads, and the event loop keeps answering.
Standard library only (asyncio), so that any asyncio application can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

from convstats.errors import StorageTimeout

__all__ = ["StoreCalls"]

T = TypeVar("T")


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


@attrs.define(eq=False)
class _Job(Generic[T]):
    call: Callable[[], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    started: bool = False


@attrs.define(kw_only=True, eq=False)
class StoreCalls:
    """Runs blocking store calls in worker threads: ``threads`` at most, ``timeout`` each.

    A call that has not returned after ``timeout`` seconds (or that cannot start before then,
    because ``threads`` calls are still running) raises
    :class:`~convstats.errors.StorageTimeout` in the caller; its thread is left to finish on
    its own and keeps its place until it does. Workers are daemon threads, started as they
    are needed and kept for the next calls. Safe to share between event loops and threads.
    """

    threads: int = attrs.field(default=32, validator=[attrs.validators.instance_of(int), _positive])
    timeout: float = attrs.field(default=30.0, validator=_positive)
    _jobs: queue.SimpleQueue[_Job[Any]] = attrs.field(init=False, factory=queue.SimpleQueue)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _workers: int = attrs.field(init=False, default=0)
    _idle: int = attrs.field(init=False, default=0)

    async def run(self, call: Callable[[], T], *, timeout: float | None = None) -> T:
        """The result of ``call()``, run in a worker thread; its exception is raised as it is."""
        limit = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(call, loop, loop.create_future())
        self._submit(job)
        try:
            return await asyncio.wait_for(job.future, limit)
        except asyncio.TimeoutError:
            # wait_for cancelled the future: a worker that has not begun the job skips it.
            busy = "" if job.started else f" ({self.threads} calls still running)"
            raise StorageTimeout(f"the store did not answer within {limit:g} s{busy}") from None

    def _submit(self, job: _Job[Any]) -> None:
        with self._lock:
            start = self._idle == 0 and self._workers < self.threads
            if start:
                self._workers += 1
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name="convstats-store", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if job.future.cancelled():
                continue  # abandoned before it began
            job.started = True
            try:
                result = job.call()
            except BaseException as error:  # handed to the caller, whatever it is
                self._settle(job, None, error)
            else:
                self._settle(job, result, None)

    @staticmethod
    def _settle(job: _Job[Any], result: Any, error: BaseException | None) -> None:
        def done() -> None:
            if job.future.done():
                return  # abandoned meanwhile
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

        # The loop has closed when nobody waits for this answer any more.
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(done)
