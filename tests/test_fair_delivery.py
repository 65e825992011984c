"""Fairness and the worker's safety nets, end to end on both shells against
real receivers on 127.0.0.1: a slow or trickling endpoint never holds back
a fast one, a failing one is paused (circuit breaker) and, when it keeps
failing, turned off; on_attempt sees every attempt; a storage error while
recording never sends a request again; close() gives back what hangs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import hookwise as hw
from tests.conftest import LOCAL, TEAM, MakeDispatcher

QUICK = hw.RetryPolicy(max_attempts=50, base_delay=0.05, factor=1.0, jitter=False)


class Endpoints:
    """One local server; the path picks the behaviour. Counts requests,
    and how many are open at once, per path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.open: dict[str, int] = {}
        self.most_open: dict[str, int] = {}
        self.stop = threading.Event()
        self.times: dict[str, list[float]] = {}
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path.strip("/")
                with endpoints.lock:
                    endpoints.seen[path] = endpoints.seen.get(path, 0) + 1
                    endpoints.times.setdefault(path, []).append(time.monotonic())
                    endpoints.open[path] = endpoints.open.get(path, 0) + 1
                    endpoints.most_open[path] = max(
                        endpoints.most_open.get(path, 0), endpoints.open[path]
                    )
                try:
                    endpoints.answer(self, path)
                finally:
                    with endpoints.lock:
                        endpoints.open[path] -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        status = {"fail": 503, "error": 500}.get(path, 204)
        if path == "slow":
            self.stop.wait(1.5)
        if path == "hang":
            self.stop.wait(30)
            return
        if path == "trickle":
            for byte in b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n":
                if self.stop.wait(0.5):
                    return
                handler.wfile.write(bytes([byte]))
            return
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.seen.get(path, 0)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    server = Endpoints()
    yield server
    server.close()


def add_endpoint(admin: hw.Admin, endpoints: Endpoints, path: str, **webhook: Any) -> None:
    """A webhook ``path`` to that path, fired by an alias named ``path``."""
    admin.create_webhook(
        hw.Webhook(team=TEAM, name=path, url=endpoints.url(path), signing=(), **webhook)
    )
    admin.create_automation(
        hw.Automation(
            name=f"to-{path}",
            scope=hw.Scope.project(TEAM, "models"),
            event=hw.OnAddArtifactAlias(alias=f"^{path}$"),
            action=hw.SendWebhook(webhook=path, payload={"v": "${artifact_version}"}),
        )
    )


def fire(dispatcher: Any, path: str, count: int) -> list[hw.Delivery]:
    made = []
    for i in range(count):
        event = hw.Event.artifact_alias_added(
            entity=TEAM, project="models", collection="c", version=f"v{i}", alias=path
        )
        made += dispatcher.handle(event)
    return made


def running(dispatcher: Any) -> Any:
    """The async dispatcher starts its worker on first use: use it."""
    dispatcher.flush(timeout=0)
    return dispatcher


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def statuses(store: hw.Storage, deliveries: list[hw.Delivery]) -> list[hw.DeliveryStatus]:
    found = [store.get_delivery(d.id) for d in deliveries]
    return [d.status for d in found if d is not None]


def all_succeeded(store: hw.Storage, deliveries: list[hw.Delivery]) -> Callable[[], bool]:
    return lambda: statuses(store, deliveries) == [hw.DeliveryStatus.SUCCEEDED] * len(deliveries)


def test_a_slow_endpoint_ahead_in_the_queue_never_holds_back_a_fast_one(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "slow")
    add_endpoint(admin, endpoints, "fast")
    producer = hw.Dispatcher(store, network=LOCAL, worker=False)
    fire(producer, "slow", 40)  # first in the queue: the hostile case
    fast = fire(producer, "fast", 100)
    started = time.monotonic()
    running(make_dispatcher(store, concurrency=4))  # webhook_concurrency: half, 2
    assert wait_until(all_succeeded(store, fast), timeout=8.0)
    elapsed = time.monotonic() - started
    # had the slow ones gone first, 40 x 1.5 s over 4 slots would take 15 s
    assert endpoints.count("slow") <= 2 * (elapsed / 1.5 + 1)
    assert endpoints.most_open["slow"] <= 2  # the slow endpoint's cap
    producer.close(timeout=0)


def test_a_trickling_endpoint_is_cut_at_the_deadline_and_holds_no_one_back(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "trickle")
    add_endpoint(admin, endpoints, "fast")
    producer = hw.Dispatcher(store, network=LOCAL, worker=False)
    [trickled] = fire(producer, "trickle", 1)
    fast = fire(producer, "fast", 20)
    running(make_dispatcher(store, timeout=1.0, retry=hw.RetryPolicy(base_delay=60, jitter=False)))
    assert wait_until(all_succeeded(store, fast), timeout=5.0)
    assert wait_until(lambda: bool(store.list_attempts(trickled.id)), timeout=5.0)
    [attempt] = store.list_attempts(trickled.id)
    assert attempt.elapsed < 2.0  # one deadline for the whole attempt, headers included
    assert attempt.error is not None
    assert "longer than 1 s" in attempt.error
    producer.close(timeout=0)


def test_the_breaker_pauses_a_failing_endpoint_and_the_others_go_on(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "fail")
    add_endpoint(admin, endpoints, "fast")
    producer = hw.Dispatcher(store, network=LOCAL, worker=False)
    fire(producer, "fail", 20)
    running(make_dispatcher(store, retry=QUICK, breaker_threshold=3, concurrency=1))
    assert wait_until(lambda: endpoints.count("fail") >= 3, timeout=5.0)
    time.sleep(1.5)  # paused for 5 s: nothing more reaches it
    assert endpoints.count("fail") == 3
    fast = fire(producer, "fast", 5)
    assert wait_until(all_succeeded(store, fast), timeout=3.0)
    assert endpoints.count("fail") == 3
    producer.close(timeout=0)


def test_a_webhook_failing_for_disable_after_is_turned_off_and_enable_starts_again(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "error")
    producer = hw.Dispatcher(store, network=LOCAL, worker=False)
    fire(producer, "error", 1)
    caplog.set_level(logging.WARNING, logger="hookwise")
    running(make_dispatcher(store, retry=QUICK, disable_after=0.5, breaker_threshold=1000))
    assert wait_until(lambda: not admin.get_webhook(TEAM, "error").enabled, timeout=5.0)
    webhook = admin.get_webhook(TEAM, "error")
    assert webhook.disabled_reason is not None
    assert "failing since" in webhook.disabled_reason
    assert any("disabled: failing since" in r.getMessage() for r in caplog.records)
    sent = endpoints.count("error")
    assert sent >= 2
    before = time.time()
    admin.enable_webhook(TEAM, "error")
    # the streak starts again: a failure now is the first of a new one
    assert store.note_failure(TEAM, "error", time.time()) >= before
    producer.close(timeout=0)


def test_on_attempt_sees_every_attempt_and_a_raising_one_stops_nothing(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "fast")
    seen: list[tuple[hw.Delivery, hw.Attempt]] = []

    def on_attempt(delivery: hw.Delivery, attempt: hw.Attempt) -> None:
        seen.append((delivery, attempt))
        if len(seen) == 1:
            raise RuntimeError("the platform's metrics are down")

    dispatcher = make_dispatcher(store, on_attempt=on_attempt)
    made = fire(dispatcher, "fast", 3)
    assert dispatcher.flush(timeout=10)
    assert sorted(d.id for d, _ in seen) == sorted(d.id for d in made)
    for delivery, attempt in seen:
        assert delivery.status is hw.DeliveryStatus.SUCCEEDED
        assert attempt.response_status == 204
        assert attempt.delivery_id == delivery.id
    assert any("on_attempt raised" in r.getMessage() for r in caplog.records)


class FailingWrites(hw.MemoryStorage):
    """Its batch write raises ``failures`` times, then works."""

    failures = 2

    def record_attempts(self, results: Any) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return super().record_attempts(results)


def test_a_storage_error_while_recording_never_sends_again(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingWrites()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "fast")
    dispatcher = make_dispatcher(store)
    [delivery] = fire(dispatcher, "fast", 1)
    assert wait_until(all_succeeded(store, [delivery]), timeout=10.0)
    assert endpoints.count("fast") == 1
    assert store.failures == 0
    [attempt] = store.list_attempts(delivery.id)
    assert attempt.number == 1
    assert any("written again" in r.getMessage() for r in caplog.records)


def test_close_gives_back_a_send_that_hangs(
    endpoints: Endpoints, make_dispatcher: MakeDispatcher
) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    add_endpoint(admin, endpoints, "hang")
    dispatcher = make_dispatcher(store, timeout=30.0, retry=hw.RetryPolicy(jitter=False))
    [delivery] = fire(dispatcher, "hang", 1)
    assert wait_until(lambda: endpoints.count("hang") == 1, timeout=5.0)
    started = time.monotonic()
    left = dispatcher.close(timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert left == 1
    kept = store.get_delivery(delivery.id)
    assert kept is not None
    assert kept.status is hw.DeliveryStatus.PENDING
    assert kept.next_attempt_at is not None
    assert kept.next_attempt_at <= time.time()  # given back: due at once, not at the lease's end
