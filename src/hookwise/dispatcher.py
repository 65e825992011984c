"""Dispatcher: the synchronous shell around :class:`hookwise.core.Core`.

``handle()`` stores deliveries and returns; a background thread claims them
and a small pool of threads sends them through one ``httpx.Client``. This
module only loops, waits and sends: every decision is the core's.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from types import TracebackType

import httpx
from typing_extensions import Unpack

from hookwise.core import Job
from hookwise.errors import ValidationError
from hookwise.events import Event
from hookwise.probe import WebhookTestResult
from hookwise.senders import HttpxSender
from hookwise.settings import Options
from hookwise.shell import Shell
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["Dispatcher"]


class Dispatcher(Shell):
    """Delivers on a background thread. Use it as a context manager, or call
    :meth:`close`, so queued deliveries get a chance to go out.
    Options are those of :class:`hookwise.settings.Settings`.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(storage, options)
        settings = self.settings
        self._sender = HttpxSender(settings.network, timeout=settings.timeout, transport=transport)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="hookwise-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if settings.worker:
            self._thread = threading.Thread(target=self._run, name="hookwise-worker", daemon=True)
            self._thread.start()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API ---------------------------------------------------------

    def handle(self, event: Event) -> list[Delivery]:
        """Record what ``event`` triggers and return at once; the worker sends."""
        if self._closed:
            self._check_open()
        if type(event) is not Event and not isinstance(event, Event):
            raise ValidationError("event", f"must be a hookwise.Event, not {type(event).__name__}")
        deliveries = self._core.handle(event)
        if deliveries:
            self._wake.set()
        return deliveries

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        delivery = self._core.redeliver(delivery_id)
        self._wake.set()
        return delivery

    def test_webhook(self, team: str, name: str, payload: object = None) -> WebhookTestResult:
        """Send a test request now and report what came back; stores nothing."""
        self._check_open()
        plan = self._core.test_plan(team, name, payload)
        if plan.request is None:
            return plan.result()
        started = self._core.start()
        outcome = self._sender.attempt(plan.request)
        return plan.result(elapsed=started.elapsed(), outcome=outcome)

    def deliver_due(self) -> int:
        """Send what is due now, once; returns how many deliveries were tried."""
        with self._busy_lock:
            self._busy += 1
        try:
            jobs = self._core.claim(self.settings.concurrency)
            if len(jobs) == 1:
                self._send(jobs[0])
            elif jobs:  # every send ends before the pass does, even when one fails
                sends = [self._pool.submit(self._send, job) for job in jobs]
                wait(sends)
                for send in sends:
                    send.result()
            return len(jobs)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is finished or waits for a retry due after
        ``timeout`` seconds from now; False if time ran out first. Without a
        timeout, wait for what is due now only."""
        waiter = self._core.waiter(timeout)
        working = self._thread is not None
        while (done := waiter.done(busy=self._is_busy, working=working)) is None:
            self._wake.set()
            time.sleep(0.01)
        return done

    def close(self, timeout: float = 10.0) -> int:
        """Drain for up to ``timeout`` seconds, stop, and return how many
        deliveries are still unfinished in the outbox (a later worker sends them)."""
        if self._closed:
            return self._left
        self._closed = True
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True)
        self._sender.close()
        self._left = self._core.close()
        return self._left

    # -- the worker ------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = 0.0 if self.deliver_due() else self._core.seconds_until_due()
            except Exception:  # keep the worker alive whatever one pass hits
                wait = self._core.pass_failed()
            self._wake.wait(wait)

    def _send(self, job: Job) -> None:
        started = self._core.start()
        outcome = None if job.request is None else self._sender.attempt(job.request)
        self._core.finish(job, started.stop(), outcome)
