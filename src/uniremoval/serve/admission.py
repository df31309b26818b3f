"""Admission and concurrency: how many restore requests may be in flight, how many run at
once, and who frees a slot when.

1. **Admission** before the body is read: at most ``max_concurrent + queue_size`` restore
   requests are in flight; the next gets 503 with ``Retry-After`` at once. Admitting first
   bounds the memory held by uploads to ``capacity x max_upload_bytes``.
2. **Checks** of the upload (see :mod:`.probe`) run in at most ``max_concurrent`` threads of
   their own, so a malformed upload never waits for a worker.
3. **Work** in a dedicated thread pool gated by a semaphore of ``max_concurrent``; the event
   loop stays free to answer /healthz, uploads and 503s. Torch releases the GIL, so this is
   real parallelism.
4. **Timeout**: past the deadline the client gets 504; running work is told to stop at its
   next tile and keeps its worker slot (and its admission) until it really stops, so the
   concurrency bound holds even for abandoned work.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable, TypeVar

from .errors import ApiError, Cancelled
from .settings import ServeSettings

T = TypeVar("T")


@dataclass
class Ticket:
    """One admitted request. ``handed_over`` once its work is running: from then on the
    work's completion, not the request, gives the admission back."""

    handed_over: bool = False


class Gate:
    """Admission (bounded in-flight count), the worker semaphore and the check semaphore.

    Lives with one event loop: the semaphores are made on first use in the running loop,
    because asyncio primitives must not cross loops (tests start several).
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.in_flight = 0  # admitted restore requests: queued, running, or abandoned but still running
        self.running = 0
        self._sem: asyncio.Semaphore | None = None
        self._check_sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._check_sem is None or self._loop is not loop:
            self._sem = asyncio.Semaphore(self.settings.max_concurrent)
            self._check_sem = asyncio.Semaphore(self.settings.max_concurrent)
            self._loop = loop

    def semaphore(self) -> asyncio.Semaphore:
        """The worker semaphore (``max_concurrent`` slots) of the running event loop."""
        self._same_loop()
        assert self._sem is not None
        return self._sem

    def try_admit(self) -> bool:
        """Count one more request in flight, unless the server is at capacity."""
        if self.in_flight >= self.settings.capacity:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        """One request fewer in flight."""
        self.in_flight -= 1

    @asynccontextmanager
    async def admission(self) -> AsyncIterator[Ticket]:
        """Admit a request for the block (503 ``busy`` when at capacity); the admission ends
        with the block unless :meth:`run` handed it over to running work."""
        if not self.try_admit():
            s = self.settings
            raise ApiError(
                503, "busy", f"the server is busy ({s.capacity} requests in flight); retry in {s.retry_after_s} s", {"Retry-After": str(s.retry_after_s)}
            )
        ticket = Ticket()
        try:
            yield ticket
        finally:
            if not ticket.handed_over:
                self.leave()

    async def check(self, fn: Callable[..., T], *args: object, deadline: float) -> T:
        """Run an upload check in a thread, at most ``max_concurrent`` at once (they may
        decode a whole image, so their memory is bounded like the workers')."""
        self._same_loop()
        assert self._check_sem is not None
        try:
            await asyncio.wait_for(self._check_sem.acquire(), _left(deadline))
        except asyncio.TimeoutError:
            raise self._timeout("waited to be checked longer than") from None
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._check_sem.release()

    async def run(self, ticket: Ticket, executor: concurrent.futures.Executor, fn: Callable[[], T], cancel: threading.Event, deadline: float) -> T:
        """Wait for a worker slot, run ``fn`` there and wait for it until ``deadline``.

        Raises:
            ApiError: 504 when the queue or the work passes the deadline (the work is then
                told to stop through ``cancel``), 503 when the work ran out of memory.
        """
        sem = self.semaphore()
        try:
            await asyncio.wait_for(sem.acquire(), _left(deadline))
        except asyncio.TimeoutError:
            raise self._timeout("waited in the queue longer than") from None
        self.running += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(executor, fn)
        except BaseException:
            self.running -= 1
            sem.release()
            raise

        def finished(_: "asyncio.Future[T]") -> None:
            # Runs when the work has truly ended, even after a timeout answer: only then is
            # its worker slot and admission free again.
            self.running -= 1
            sem.release()
            self.leave()

        fut.add_done_callback(finished)
        ticket.handed_over = True
        try:
            return await asyncio.wait_for(asyncio.shield(fut), _left(deadline))
        except asyncio.TimeoutError:
            cancel.set()
            fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)  # silence "never retrieved"
            raise self._timeout("restoring took longer than") from None
        except Cancelled:
            raise ApiError(504, "timeout", "restoring was stopped at the request timeout") from None
        except MemoryError:
            s = self.settings
            raise ApiError(503, "out_of_memory", "out of memory restoring this image; retry later or send a smaller one", {"Retry-After": str(s.retry_after_s)}) from None

    def _timeout(self, what: str) -> ApiError:
        return ApiError(504, "timeout", f"{what} the {self.settings.request_timeout_s:g} s request timeout")


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)
