"""AsyncDispatcher: the asyncio shell around :class:`hookwise.core.Core`.

The mirror of :class:`hookwise.Dispatcher`: a task instead of a thread, an
``httpx.AsyncClient`` instead of a Client. Every storage call runs in a
thread, so a slow database never blocks the event loop; an event that fires
nothing never leaves the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import httpx
from typing_extensions import Unpack

from hookwise.core import Job
from hookwise.errors import ValidationError
from hookwise.events import Event
from hookwise.probe import WebhookTestResult
from hookwise.senders import AsyncHttpxSender
from hookwise.settings import Options
from hookwise.shell import Shell
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["AsyncDispatcher"]


class AsyncDispatcher(Shell):
    """Delivers on a background task. Use ``async with``, or ``await close()``.
    Options are those of :class:`hookwise.Dispatcher`."""

    def __init__(
        self,
        storage: Storage,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(storage, options)
        settings = self.settings
        self._sender = AsyncHttpxSender(
            settings.network, timeout=settings.timeout, transport=transport
        )
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

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
        """The wake event and the worker task, made in the running loop."""
        if self._wake is None:
            self._wake = asyncio.Event()
            if self.settings.worker and not self._closed:
                self._task = asyncio.get_running_loop().create_task(self._run(self._wake))
        return self._wake

    # -- the API ---------------------------------------------------------

    async def handle(self, event: Event) -> list[Delivery]:
        """Record what ``event`` triggers and return; the worker task sends."""
        self._check_open()
        if type(event) is not Event and not isinstance(event, Event):
            raise ValidationError("event", f"must be a hookwise.Event, not {type(event).__name__}")
        wake = self._start()
        core = self._core
        if core.needs_refresh():
            await asyncio.to_thread(core.refresh)
        if core.must_load(event):  # a run's first metrics: its saved windows
            await asyncio.to_thread(core.preload, event)
        matches = core.match(event)
        if not core.must_record(event, matches):
            return []
        deliveries = await asyncio.to_thread(core.record, event, matches)
        if deliveries:
            wake.set()
        return deliveries

    async def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        wake = self._start()
        delivery = await asyncio.to_thread(self._core.redeliver, delivery_id)
        wake.set()
        return delivery

    async def test_webhook(self, team: str, name: str, payload: object = None) -> WebhookTestResult:
        """Send a test request now and report what came back; stores nothing."""
        self._check_open()
        plan = await asyncio.to_thread(self._core.test_plan, team, name, payload)
        if plan.request is None:
            return plan.result()
        started = self._core.start()
        outcome = await self._sender.attempt(plan.request)
        return plan.result(elapsed=started.elapsed(), outcome=outcome)

    async def deliver_due(self) -> int:
        """Send what is due now, once; returns how many deliveries were tried."""
        self._busy += 1
        try:
            jobs = await asyncio.to_thread(self._core.claim, self.settings.concurrency)
            # every send ends before the pass does, even when one fails
            results = await asyncio.gather(*map(self._send, jobs), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return len(jobs)
        finally:
            self._busy -= 1

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is finished or waits for a retry due after
        ``timeout`` seconds from now; False if time ran out first. Without a
        timeout, wait for what is due now only."""
        wake = self._start()
        waiter = self._core.waiter(timeout)
        while True:
            done = await asyncio.to_thread(
                waiter.done, busy=self._is_busy, working=bool(self._task)
            )
            if done is not None:
                return done
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
        await self._sender.aclose()
        self._left = await asyncio.to_thread(self._core.close)
        return self._left

    # -- the worker ------------------------------------------------------

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            try:
                sent = await self.deliver_due()
                wait = 0.0 if sent else await asyncio.to_thread(self._core.seconds_until_due)
            except Exception:  # keep the worker alive whatever one pass hits
                wait = self._core.pass_failed()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def _send(self, job: Job) -> None:
        started = self._core.start()
        outcome = None if job.request is None else await self._sender.attempt(job.request)
        await asyncio.to_thread(self._core.finish, job, started.stop(), outcome)
