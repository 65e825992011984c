"""Dispatcher: the synchronous shell around :class:`hookwise.core.Core`.

``handle()`` stores deliveries and returns. A coordinator thread does the
storage work the :class:`~hookwise.scheduler.Scheduler` plans (claim ahead,
write results in batches, give back leases), and a pool of ``concurrency``
threads sends through one ``httpx.Client``: a thread that finishes a send
takes the next job at once, without waiting for the coordinator. This
module only loops, waits and sends: every decision is the core's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import httpx
from typing_extensions import Unpack

from hookwise.core import Job, Settled
from hookwise.errors import ValidationError
from hookwise.events import Event
from hookwise.probe import WebhookTestResult
from hookwise.senders import HttpxSender
from hookwise.settings import Options
from hookwise.shell import Shell
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["Dispatcher"]

logger = logging.getLogger("hookwise")


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
        self._pipeline = self._core.scheduler()
        self._sending: dict[str, Job] = {}  # by lease token: handed to a sender, not yet back
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._senders_lock = threading.Lock()
        self._senders = 0  # sender threads started
        self._idle = 0  # of which are waiting for a job
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
            self._pipeline.poke()
            self._wake.set()
        return deliveries

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        delivery = self._core.redeliver(delivery_id)
        self._pipeline.poke()
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
        """Send what is due now, once, and write the results; returns how many
        deliveries were tried. For a dispatcher made with ``worker=False``."""
        with self._busy_lock:
            self._busy += 1
        try:
            jobs = self._core.claim(self.settings.concurrency)
            if len(jobs) == 1:
                self._core.write([self._settle(jobs[0])])
            elif jobs:  # every send ends before the pass does, even when one fails
                with ThreadPoolExecutor(len(jobs), thread_name_prefix="hookwise-send") as pool:
                    results = list(pool.map(self._settle, jobs))
                self._core.write(results)
            return len(jobs)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _is_busy(self) -> bool:
        return self._busy > 0 or self._pipeline.busy()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is finished or waits for a retry due after
        ``timeout`` seconds from now; False if time ran out first. Without a
        timeout, wait for what is due now only."""
        waiter = self._core.waiter(timeout)
        working = self._thread is not None
        while (done := waiter.done(busy=self._is_busy, working=working)) is None:
            self._pipeline.poke()
            self._wake.set()
            time.sleep(0.01)
        return done

    def close(self, timeout: float = 10.0) -> int:
        """Drain for up to ``timeout`` seconds, then stop: deliveries claimed
        but not started, and sends still running, are given back to the
        outbox for the next worker. Returns how many deliveries are still
        unfinished there."""
        if self._closed:
            return self._left
        self._closed = True
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()) + 5.0)
        # Sends still running were given back: closing the client ends them
        # (with an error nobody records) instead of leaving their sockets open.
        self._sender.close()
        self._left = self._core.close()
        return self._left

    # -- the worker ------------------------------------------------------

    def _run(self) -> None:
        pipeline = self._pipeline
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._step():
                    continue  # what it did may call for more (a claim after a claim)
            except Exception:  # keep the worker alive whatever one pass hits
                self._wake.wait(self._core.pass_failed())
                continue
            self._wake.wait(pipeline.next_wake())
        self._finish()

    def _step(self) -> bool:
        """Do the storage work the pipeline plans, then start what may go;
        False when there was none."""
        pipeline = self._pipeline
        plan = pipeline.plan()
        if plan:
            self._core.carry_out(plan, pipeline)
        while not self._stop.is_set() and (job := pipeline.take()) is not None:
            self._hand_over(job)
        return bool(plan)

    def _hand_over(self, job: Job) -> None:
        """Give a job to an idle sender thread, starting one if none is idle
        (daemon threads: a send that hangs never holds up the process's exit)."""
        if not self._register(job):
            return
        with self._senders_lock:
            if self._idle:
                self._idle -= 1
            else:
                self._senders += 1
                threading.Thread(target=self._sends, name="hookwise-send", daemon=True).start()
        self._jobs.put(job)

    def _register(self, job: Job) -> bool:
        """Count a job as being sent, so that stopping gives it back; once the
        dispatcher is stopping, give it back instead of sending it."""
        with self._senders_lock:
            if not self._stop.is_set():
                self._sending[job.claim.lease_token] = job
                return True
        self._pipeline.abandon([job])
        self._wake.set()
        return False

    def _sends(self) -> None:
        """A sender thread: take a job, send, hand the result to the pipeline,
        go on with the next job it gives, and wait for more when it has none."""
        while (job := self._jobs.get()) is not None:
            while job is not None:
                if self._stop.is_set():
                    return  # registered: stopping gives it back
                started = self._core.start()
                outcome = None if job.request is None else self._sender.attempt(job.request)
                with self._senders_lock:
                    del self._sending[job.claim.lease_token]
                if self._stop.is_set():
                    return  # given back when the dispatcher stopped: nothing to record
                settled = self._core.settle(job, started.stop(), outcome)
                job = self._pipeline.done(settled)
                self._wake.set()
                if job is not None and not self._register(job):
                    return
            with self._senders_lock:
                self._idle += 1

    def _finish(self) -> None:
        """Stopping: give back what waits and what is still being sent (its
        receiver may get it twice: at least once), and write what finished."""
        pipeline = self._pipeline
        with self._senders_lock:  # nothing is registered after this (see _register)
            pipeline.stop()
            flying = list(self._sending.values())
        pipeline.abandon(flying)
        for _ in range(self._senders):
            self._jobs.put(None)  # each sender thread ends when it takes one
        for _ in range(3):  # what cannot be written is sent again when its lease ends
            try:
                if not self._step():
                    break
            except Exception:
                logger.exception("hookwise worker: could not write everything while stopping")
                break

    def _settle(self, job: Job) -> Settled:
        started = self._core.start()
        outcome = None if job.request is None else self._sender.attempt(job.request)
        return self._core.settle(job, started.stop(), outcome)
