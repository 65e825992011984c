"""AsyncDispatcher: the asyncio shell around :class:`hookwise.core.Core`.

The mirror of :class:`hookwise.Dispatcher`: a task instead of a thread, an
``httpx.AsyncClient`` instead of a Client. Storage calls run in a thread so a
slow database never blocks the event loop; an event that fires nothing
never leaves the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType

import httpx

from hookwise.core import RESPONSE_BYTES, Job, TestResult
from hookwise.dispatcher import BaseDispatcher
from hookwise.events import Event, EventType
from hookwise.network import NetworkPolicy
from hookwise.retry import RetryPolicy
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["AsyncDispatcher"]

logger = logging.getLogger("hookwise")


class AsyncDispatcher(BaseDispatcher):
    """Delivers on a background task. Use ``async with``, or ``await close()``."""

    def __init__(
        self,
        storage: Storage,
        *,
        network: NetworkPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        refresh_interval: float = 1.0,
        worker: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            storage,
            network=network,
            retry=retry,
            timeout=timeout,
            concurrency=concurrency,
            poll_interval=poll_interval,
            refresh_interval=refresh_interval,
            clock=clock,
        )
        self._client = httpx.AsyncClient(transport=transport, **self._client_options())  # type: ignore[arg-type]
        self._worker = worker
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._busy = 0

    async def __aenter__(self) -> AsyncDispatcher:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _start(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
            if self._worker:
                self._task = asyncio.get_running_loop().create_task(self._run(self._wake))
        return self._wake

    # -- the API ---------------------------------------------------------

    async def handle(self, event: Event) -> list[Delivery]:
        """Record what ``event`` triggers and return; the worker task sends."""
        self._check_open()
        wake = self._start()
        core = self._core
        if core.needs_refresh():
            await asyncio.to_thread(core.refresh)
        matches = core.match(event)
        deliveries = await asyncio.to_thread(core.enqueue, event, matches) if matches else []
        if event.type is EventType.RUN_STATE:
            await asyncio.to_thread(core.run_ended, event)
        if deliveries:
            wake.set()
        return deliveries

    async def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        wake = self._start()
        delivery = await asyncio.to_thread(self.storage.requeue, delivery_id, self._core.clock())
        wake.set()
        return delivery

    async def test_webhook(self, team: str, name: str, payload: object = None) -> TestResult:
        """Send a test request now and report what came back; stores nothing."""
        self._check_open()
        plan = await asyncio.to_thread(self._core.test_request, team, name, payload)
        if plan.request is None:
            return plan.result(elapsed=0.0)
        started = time.perf_counter()
        try:
            response, body = await self._post(plan.request)
        except httpx.HTTPError as exc:
            return plan.result(elapsed=time.perf_counter() - started, error=exc)
        return plan.result(elapsed=time.perf_counter() - started, response=response, body=body)

    async def deliver_due(self) -> int:
        """Send what is due now, once; returns how many deliveries were tried."""
        self._busy += 1
        try:
            jobs = await asyncio.to_thread(self._core.claim, self._concurrency)
            await asyncio.gather(*(self._send(job) for job in jobs))
            return len(jobs)
        finally:
            self._busy -= 1

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is finished or waits for a retry due after
        ``timeout`` seconds from now; False if time ran out first. Without a
        timeout, wait for what is due now only."""
        wake = self._start()
        deadline = None if timeout is None else time.monotonic() + timeout
        until = self._core.clock() + (timeout or 0.0)
        while True:
            if await asyncio.to_thread(self._core.idle, until) and not self._busy:
                return True
            if self._task is None:
                return False  # nothing here sends: a worker elsewhere does
            if deadline is not None and time.monotonic() >= deadline:
                return False
            wake.set()
            await asyncio.sleep(0.01)

    async def close(self, timeout: float = 10.0) -> int:
        """Drain for up to ``timeout`` seconds, stop, and return how many
        deliveries are still unfinished in the outbox (a later worker sends them)."""
        if self._closed:
            return self._left
        self._closed = True
        if self._wake is not None:
            await self.flush(timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._core.save_windows)
        await self._client.aclose()
        left, _ = await asyncio.to_thread(self.storage.outstanding)
        return self._closed_with(left)

    # -- the worker ------------------------------------------------------

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            try:
                if await self.deliver_due():
                    continue
                wait = await asyncio.to_thread(self._core.seconds_until_due, self._poll_interval)
            except Exception:  # keep the worker alive whatever one pass hits
                logger.exception("hookwise worker pass failed")
                wait = self._poll_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def _post(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """Send, and read at most RESPONSE_BYTES of the answer."""
        response = await self._client.send(request, stream=True)
        try:
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= RESPONSE_BYTES:
                    break
            return response, bytes(data)
        finally:
            await response.aclose()

    async def _send(self, job: Job) -> None:
        core = self._core
        started_at = core.clock()
        started = time.perf_counter()
        if job.request is None:
            await asyncio.to_thread(core.record_error, job, started=started_at, elapsed=0.0)
            return
        try:
            response, body = await self._post(job.request)
        except Exception as exc:  # any failure to get an answer is this attempt's error
            elapsed = time.perf_counter() - started
            await asyncio.to_thread(
                core.record_error, job, started=started_at, elapsed=elapsed, error=exc
            )
            return
        await asyncio.to_thread(
            core.record_response,
            job,
            started=started_at,
            elapsed=time.perf_counter() - started,
            response=response,
            body=body,
        )
