"""Crash safety of ``hookwise worker`` processes (DESIGN section 3, "At least
once"): real worker processes on one SQLite file, real keep-alive receivers on
127.0.0.1, SIGKILL and SIGTERM. Every wait is bounded; every process is
killed and every server shut down on the way out, whatever happens."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

import hookwise as hw
from hookwise.crypto import ENV_VAR, generate_key_text
from hookwise.settings import Settings
from tests.conftest import LOCAL, alias_event, setup_team

# cli.py ends in `if __name__ == "__main__"`: this runs the installed code
# with the interpreter running the tests, whatever the venv is called.
WORKER = [sys.executable, "-m", "hookwise.cli", "worker", "--allow", "127.0.0.0/8", "--allow-http"]
DRAIN = 15.0  # seconds: the longest any test waits for an outbox to empty
PROMPT = 5.0  # seconds: how soon a worker must be gone after SIGTERM


class HookReceiver:
    """A keep-alive (HTTP/1.1) server on 127.0.0.1 that records the
    ``webhook-id`` of each request as soon as its body is read, then answers
    204 after ``delay`` seconds, or, with ``hang``, never answers (until
    :meth:`close`)."""

    def __init__(self, *, delay: float = 0.0, hang: bool = False) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # an idle keep-alive connection never holds a thread for good

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.ids.append(self.headers.get("webhook-id", "<none>"))
                if hang:
                    receiver.release.wait(60)
                    self.close_connection = True
                    return
                if delay:
                    time.sleep(delay)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a killed worker resets its connections: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def received(self) -> Counter[str]:
        with self.lock:
            return Counter(self.ids)

    def __enter__(self) -> HookReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Workers:
    """``hookwise worker`` processes, each logging to its own file; on exit
    every one still running is SIGKILLed and reaped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, db: Path, key_text: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*WORKER, "--db", str(db)],
                env={**os.environ, ENV_VAR: key_text},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, log))
        return proc

    def logs(self) -> str:
        parts = []
        for proc, log in self.procs:
            text = log.read_text(errors="replace") if log.exists() else ""
            parts.append(f"--- worker pid {proc.pid} (exit {proc.poll()}):\n{text[-3000:]}")
        return "\n".join(parts)

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@contextmanager
def crash_rig(tmp_path: Path, **receiver: Any) -> Iterator[tuple[HookReceiver, Workers]]:
    """A receiver and the workers; the workers die first, then the server stops."""
    with HookReceiver(**receiver) as server, Workers(tmp_path) as workers:
        yield server, workers


def fill_outbox(tmp_path: Path, url: str, count: int) -> tuple[Path, str, list[str]]:
    """A SQLite file with one signed webhook (so every request carries a
    ``webhook-id``) and ``count`` deliveries to it, recorded by a dispatcher
    that sends nothing itself. Returns the file, the key as the text
    ``HOOKWISE_SECRET_KEY`` takes (what ``hookwise keygen`` prints: a key from
    ``SecretKey.generate()`` has no text form) and the webhook-ids."""
    key_text = generate_key_text()
    db = tmp_path / "hookwise.db"
    with hw.SQLiteStorage(db, key=hw.SecretKey(key_text)) as store:
        setup_team(store, url)
        with hw.Dispatcher(store, worker=False, network=LOCAL) as dispatcher:
            ids = [d.message_id for _ in range(count) for d in dispatcher.handle(alias_event())]
    assert len(set(ids)) == count
    return db, key_text, ids


def wait_until(
    done: Callable[[], bool],
    what: str,
    workers: Workers,
    *,
    running: list[subprocess.Popen[bytes]],
    timeout: float = DRAIN,
) -> None:
    """Poll ``done`` until true; fail after ``timeout`` seconds, or at once
    when a worker that should be running has exited."""
    deadline = time.monotonic() + timeout
    while not done():
        if any(proc.poll() is not None for proc in running):
            pytest.fail(f"a worker exited while waiting for {what}\n{workers.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g}s for {what}\n{workers.logs()}")
        time.sleep(0.02)


def leased_ids(db: Path) -> set[str]:
    """Webhook-ids of the deliveries a worker holds now: a claim moves
    ``next_attempt_at`` to the lease's end, in the future (a retry waiting
    for its backoff would count too; the receivers here never ask for one)."""
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT message_id FROM deliveries WHERE next_attempt_at > ?", (time.time(),)
        ).fetchall()
    return {row[0] for row in rows}


def expire_leases(db: Path) -> int:
    """Simulate the leases of a dead worker running out. A lease lasts
    ``Settings().lease`` (the request timeout + 60 s), too long to wait for in
    CI, so move each held delivery's due time (and lease end, where the
    schema has one) to now: what the clock would have done. Nothing else
    changes: status, attempts and the lease token stay, so the dead worker's
    claim still could not record a result. Not ``requeue``, which would make
    the delivery new again."""
    now = time.time()
    with closing(sqlite3.connect(db, timeout=10)) as conn, conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
        moves = ["next_attempt_at = :now"]
        if "lease_until" in columns:
            moves.append("lease_until = min(lease_until, :now)")  # NULL stays NULL
        cursor = conn.execute(
            f"UPDATE deliveries SET {', '.join(moves)} WHERE next_attempt_at > :now",
            {"now": now},
        )
        return cursor.rowcount


def statuses(store: hw.Storage) -> Counter[hw.DeliveryStatus]:
    return Counter(d.status for d in store.list_deliveries(limit=10_000))


def test_sigkill_mid_drain_loses_nothing(tmp_path: Path) -> None:
    """A worker SIGKILLed a third of the way through 1,000 deliveries; a
    second worker sends the rest. Every webhook-id arrives, every delivery
    succeeds, and the only repeats are of deliveries the dead worker held
    when it died. That is the bound asserted: today's worker holds at most
    ``concurrency`` at once, a pipelined one also holds the batch it claimed
    ahead, and both are counted by reading the leases off the file."""
    total = 1000
    with crash_rig(tmp_path, delay=0.005) as (receiver, workers):
        db, key_text, ids = fill_outbox(tmp_path, receiver.url, total)
        first = workers.start(db, key_text)
        wait_until(lambda: receiver.count() >= 300, "300 requests", workers, running=[first])
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        seen_at_kill = receiver.count()
        held = leased_ids(db)
        with hw.SQLiteStorage(db, key=hw.SecretKey(key_text)) as store:
            left_at_kill = store.outstanding()[0]
            assert 0 < left_at_kill < total, "the kill was not mid-drain"
            assert expire_leases(db) == len(held)

            second = workers.start(db, key_text)
            wait_until(lambda: store.outstanding()[0] == 0, "the drain", workers, running=[second])
            done = statuses(store)
        received = receiver.received()

    assert done == {hw.DeliveryStatus.SUCCEEDED: total}
    assert set(received) == set(ids)  # all arrived; nothing but their ids
    repeats = {mid: n - 1 for mid, n in received.items() if n > 1}
    assert set(repeats) <= held, "a delivery the dead worker did not hold went out twice"
    assert max(received.values()) <= 2
    assert sum(repeats.values()) <= len(held)
    print(
        f"\nsigkill: {seen_at_kill} requests seen at the kill, {left_at_kill} left, "
        f"{len(held)} leased (concurrency {Settings().concurrency}), "
        f"{sum(repeats.values())} sent twice, {sum(received.values())} requests in all"
    )


def test_two_workers_on_one_file_send_each_delivery_once(tmp_path: Path) -> None:
    """Two workers started together on one SQLite file: claims never overlap,
    so no webhook-id arrives twice (no lease runs out: the receiver is quick)."""
    total = 600
    with crash_rig(tmp_path) as (receiver, workers):
        db, key_text, ids = fill_outbox(tmp_path, receiver.url, total)
        both = [workers.start(db, key_text), workers.start(db, key_text)]
        with hw.SQLiteStorage(db, key=hw.SecretKey(key_text)) as store:
            wait_until(lambda: store.outstanding()[0] == 0, "the drain", workers, running=both)
            done = statuses(store)
        assert all(proc.poll() is None for proc in both), workers.logs()
        received = receiver.received()

    assert done == {hw.DeliveryStatus.SUCCEEDED: total}
    assert set(received) == set(ids)
    twice = sorted(mid for mid, n in received.items() if n > 1)
    assert twice == [], f"{len(twice)} webhook-ids arrived more than once"


def test_sigterm_stops_promptly_and_keeps_the_outbox(tmp_path: Path) -> None:
    """SIGTERM while every request hangs: the worker exits cleanly within
    PROMPT seconds, well before the per-request timeout, so it does not wait
    for a receiver that never answers; and nothing it held is lost."""
    total = 10
    timeout = Settings().timeout
    assert timeout > PROMPT * 1.5, "the bound would not tell waiting from stopping"
    with crash_rig(tmp_path, hang=True) as (receiver, workers):
        db, key_text, _ = fill_outbox(tmp_path, receiver.url, total)
        worker = workers.start(db, key_text)
        wait_until(lambda: receiver.count() >= 1, "a request", workers, running=[worker])
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code: int | None = worker.wait(timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            code = None  # killed on the way out
        elapsed = time.monotonic() - signalled
        logs = workers.logs()
        print(f"\nsigterm: exit {code} after {elapsed:.2f}s, {receiver.count()} requests seen")

    with hw.SQLiteStorage(db, key=hw.SecretKey(key_text)) as store:
        left = store.outstanding()[0]
        done = statuses(store)
    finished = done[hw.DeliveryStatus.SUCCEEDED] + done[hw.DeliveryStatus.FAILED]
    assert finished == 0, f"nothing can finish against a hung receiver: {done}"
    assert left == total
    assert code == 0, f"not a clean exit: {code}\n{logs}"
    assert elapsed < PROMPT, f"exit took {elapsed:.2f}s after SIGTERM (request timeout {timeout}s)"
