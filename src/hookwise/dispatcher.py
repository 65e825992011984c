"""Dispatcher: the synchronous shell around :class:`hookwise.core.Core`.

``handle()`` stores deliveries and returns; a background thread sends them
with an ``httpx.Client``. Everything that decides lives in the core, shared
with :class:`hookwise.AsyncDispatcher`; this module only sends and waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import httpx

from hookwise.core import RESPONSE_BYTES, Core, Job, TestResult
from hookwise.errors import DispatcherClosedError, ValidationError
from hookwise.events import Event
from hookwise.network import NetworkPolicy
from hookwise.retry import RetryPolicy
from hookwise.storage.protocol import Delivery, Storage

__all__ = ["BaseDispatcher", "Dispatcher"]

logger = logging.getLogger("hookwise")


def _check_option(name: str, value: object, *, least: float, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= least:
        kind = "an int" if integer else "a number"
        raise ValidationError(name, f"must be {kind} >= {least:g}")


class BaseDispatcher:
    """Configuration and the parts of the API that do no I/O of their own."""

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
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_option("concurrency", concurrency, integer=True, least=1)
        _check_option("timeout", timeout, least=0.001)
        _check_option("poll_interval", poll_interval, least=0.0)
        _check_option("refresh_interval", refresh_interval, least=0.0)
        self._core = Core(
            storage,
            network=network,
            retry=retry,
            refresh_interval=refresh_interval,
            lease=timeout + 60.0,
            clock=clock,
        )
        self._timeout = timeout
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._closed = False
        self._left = 0

    @property
    def storage(self) -> Storage:
        return self._core.storage

    def _check_open(self) -> None:
        if self._closed:
            raise DispatcherClosedError("this dispatcher is closed")

    def _closed_with(self, left: int) -> int:
        self._left = left
        if left:
            logger.warning("dispatcher closed with %d deliveries left in the outbox", left)
        return left

    def deliveries(self, **filters: object) -> list[Delivery]:
        """The delivery history, newest first (``team=``, ``automation=``,
        ``status=``, ``limit=``)."""
        return self.storage.list_deliveries(**filters)  # type: ignore[arg-type]

    def _client_options(self) -> dict[str, object]:
        # trust_env=False: no proxy from the environment sits between us and
        # the address the NetworkPolicy checked.
        return {"timeout": self._timeout, "follow_redirects": False, "trust_env": False}


class Dispatcher(BaseDispatcher):
    """Delivers on a background thread. Use it as a context manager, or call
    :meth:`close`, so queued deliveries get a chance to go out.

    With ``worker=False`` nothing is sent from this process: another process
    (``hookwise worker``) drains the outbox, or call :meth:`deliver_due`.
    """

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
        transport: httpx.BaseTransport | None = None,
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
        self._client = httpx.Client(transport=transport, **self._client_options())  # type: ignore[arg-type]
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="hookwise-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if worker:
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
        deliveries = self._core.handle(event)
        if deliveries:
            self._wake.set()
        return deliveries

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same ``webhook-id``."""
        self._check_open()
        delivery = self.storage.requeue(delivery_id, self._core.clock())
        self._wake.set()
        return delivery

    def test_webhook(self, team: str, name: str, payload: object = None) -> TestResult:
        """Send a test request now and report what came back; stores nothing."""
        self._check_open()
        plan = self._core.test_request(team, name, payload)
        if plan.request is None:
            return plan.result(elapsed=0.0)
        started = time.perf_counter()
        try:
            response, body = self._post(plan.request)
        except httpx.HTTPError as exc:
            return plan.result(elapsed=time.perf_counter() - started, error=exc)
        return plan.result(elapsed=time.perf_counter() - started, response=response, body=body)

    def deliver_due(self) -> int:
        """Send what is due now, once; returns how many deliveries were tried."""
        with self._busy_lock:
            self._busy += 1
        try:
            jobs = self._core.claim(self._concurrency)
            if len(jobs) == 1:
                self._send(jobs[0])
            elif jobs:
                list(self._pool.map(self._send, jobs))
            return len(jobs)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every delivery is finished or waits for a retry due after
        ``timeout`` seconds from now; False if time ran out first. Without a
        timeout, wait for what is due now only."""
        deadline = None if timeout is None else time.monotonic() + timeout
        until = self._core.clock() + (timeout or 0.0)
        while True:
            if self._core.idle(until) and not self._busy:
                return True
            if self._thread is None:
                return False  # nothing here sends: a worker elsewhere does
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)

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
        self._client.close()
        self._core.save_windows()
        return self._closed_with(self.storage.outstanding()[0])

    # -- the worker ------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.deliver_due():
                    continue
                wait = self._core.seconds_until_due(self._poll_interval)
            except Exception:  # keep the worker alive whatever one pass hits
                logger.exception("hookwise worker pass failed")
                wait = self._poll_interval
            self._wake.wait(wait)

    def _post(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """Send, and read at most RESPONSE_BYTES of the answer."""
        response = self._client.send(request, stream=True)
        try:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) >= RESPONSE_BYTES:
                    break
            return response, bytes(data)
        finally:
            response.close()

    def _send(self, job: Job) -> None:
        core = self._core
        started_at = core.clock()
        started = time.perf_counter()
        if job.request is None:
            core.record_error(job, started=started_at, elapsed=0.0)
            return
        try:
            response, body = self._post(job.request)
        except Exception as exc:  # any failure to get an answer is this attempt's error
            core.record_error(
                job, started=started_at, elapsed=time.perf_counter() - started, error=exc
            )
            return
        elapsed = time.perf_counter() - started
        core.record_response(job, started=started_at, elapsed=elapsed, response=response, body=body)
