"""AsyncDispatcher: the asyncio shell around :class:`hookwise.core.Core`.

The mirror of :class:`hookwise.Dispatcher`: a coordinator task instead of a
thread, a task per send instead of sender threads, an ``httpx.AsyncClient``
(or, with ``http="aiohttp"``, an aiohttp session) instead of a Client. Every
storage call runs in a thread, so a slow database never blocks the event
loop; the storage work the pipeline plans runs beside the sends, never in
front of them. An event that fires nothing never leaves the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Literal

import httpx
from typing_extensions import Unpack

from hookwise.core import Job, Settled
from hookwise.errors import ValidationError
from hookwise.events import Event
from hookwise.probe import WebhookTestResult
from hookwise.scheduler import Plan
from hookwise.senders import AsyncHttpxSender, AsyncSender
from hookwise.settings import Options
from hookwise.shell import Shell
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["AsyncDispatcher"]

logger = logging.getLogger("hookwise")


class AsyncDispatcher(Shell):
    """Delivers on a background task. Use ``async with``, or ``await close()``.
    Options are those of :class:`hookwise.Dispatcher`; ``http="aiohttp"``
    sends with aiohttp (the ``hookwise[aiohttp]`` extra) instead of httpx."""

    def __init__(
        self,
        storage: Storage,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        http: Literal["httpx", "aiohttp"] = "httpx",
        **options: Unpack[Options],
    ) -> None:
        super().__init__(storage, options)
        settings = self.settings
        self._sender: AsyncSender
        if http == "aiohttp":
            if transport is not None:
                raise ValidationError(
                    "transport", "is an httpx transport: use it with http='httpx'"
                )
            from hookwise.aiohttp_sender import AiohttpSender

            self._sender = AiohttpSender(settings.network, timeout=settings.timeout)
        elif http == "httpx":
            self._sender = AsyncHttpxSender(
                settings.network, timeout=settings.timeout, transport=transport
            )
        else:
            raise ValidationError("http", "must be 'httpx' or 'aiohttp'")
        self._pipeline = self._core.scheduler()
        self._sends: set[asyncio.Task[None]] = set()
        self._flying: dict[str, Job] = {}  # by lease token: what is being sent now
        self._io: set[asyncio.Task[None]] = set()  # storage work under way
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
            self._pipeline.poke()
            wake.set()
        return deliveries

    async def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        wake = self._start()
        delivery = await asyncio.to_thread(self._core.redeliver, delivery_id)
        self._pipeline.poke()
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
        """Send what is due now, once, and write the results; returns how many
        deliveries were tried. For a dispatcher made with ``worker=False``."""
        self._busy += 1
        try:
            jobs = await asyncio.to_thread(self._core.claim, self.settings.concurrency)
            # every send ends before the pass does, even when one fails
            results = await asyncio.gather(*map(self._settle, jobs))
            if results:
                await asyncio.to_thread(self._core.write, results)
            return len(jobs)
        finally:
            self._busy -= 1

    def _is_busy(self) -> bool:
        return self._busy > 0 or self._pipeline.busy()

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
            self._pipeline.poke()
            wake.set()
            await asyncio.sleep(0.01)

    async def close(self, timeout: float = 10.0) -> int:
        """Drain for up to ``timeout`` seconds, then stop: deliveries claimed
        but not started, and sends still running (they are cancelled), are
        given back to the outbox for the next worker. Returns how many
        deliveries are still unfinished there."""
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
        pipeline = self._pipeline
        try:
            while True:
                wake.clear()
                plan = pipeline.plan()
                if plan:
                    self._spawn(self._io, self._do(plan, wake))
                while (job := pipeline.take()) is not None:
                    self._spawn(self._sends, self._send(job, wake))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), pipeline.next_wake())
        finally:
            await asyncio.shield(self._finish())

    @staticmethod
    def _spawn(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _do(self, plan: Plan, wake: asyncio.Event) -> None:
        """The storage work of one plan, in a thread."""
        try:
            await asyncio.to_thread(self._core.carry_out, plan, self._pipeline)
        except Exception:  # keep the worker alive whatever one pass hits
            logger.exception("hookwise worker pass failed")
        finally:
            wake.set()

    async def _send(self, job: Job, wake: asyncio.Event) -> None:
        next_job: Job | None = job
        while next_job is not None:
            token = next_job.claim.lease_token
            self._flying[token] = next_job
            try:
                settled = await self._settle(next_job)
            finally:
                del self._flying[token]
            next_job = self._pipeline.done(settled)
        wake.set()

    async def _settle(self, job: Job) -> Settled:
        started = self._core.start()
        outcome = None if job.request is None else await self._sender.attempt(job.request)
        return self._core.settle(job, started.stop(), outcome)

    async def _finish(self) -> None:
        """Stopping: give back what waits and what is still being sent (its
        receiver may get it twice: at least once), and write what finished."""
        pipeline = self._pipeline
        pipeline.stop()
        # what the cancelled sends held is still leased to us: give it back
        pipeline.abandon(list(self._flying.values()))
        for task in list(self._sends):
            task.cancel()
        await asyncio.gather(*self._sends, *self._io, return_exceptions=True)
        for _ in range(3):  # what cannot be written is sent again when its lease ends
            plan = pipeline.plan()
            if not plan:
                break
            await self._do(plan, asyncio.Event())
