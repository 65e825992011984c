"""Deliveries per second: hookwise's dispatchers against hand-written loops.

What it measures: the same POSTs, in the same run, sent to one local
keep-alive HTTP/1.1 receiver on 127.0.0.1 that answers every POST with 204:

- baselines, hand-written: an ``httpx.Client`` loop (sync); ``httpx.AsyncClient``
  with 1, 4 and 16 requests in flight (the best is the async baseline); and,
  when aiohttp is importable, ``aiohttp.ClientSession`` with 1, 4 and 16 in
  flight (the best is the aiohttp baseline);
- hookwise: ``hw.Dispatcher`` and ``hw.AsyncDispatcher`` over a SQLite outbox,
  and, when aiohttp is importable, ``hw.AsyncDispatcher(..., http="aiohttp")``.
  The deliveries are first stored through ``handle()`` (not timed); the clock
  runs from the dispatcher's start until ``flush()`` says the outbox is
  drained. Afterwards nothing may be left and every delivery must have
  SUCCEEDED, and the receiver must have counted exactly one POST per delivery.

The receiver is a minimal asyncio server in a child process, so it never
competes with the senders for this process's GIL. Each side runs twice
(best of 2 rounds); within a round a baseline and its hookwise side take
turns, and the second round reverses each pair, so neither always runs warm.
The printed ratios are hookwise's rate over its baseline's (target: 1.0 for
httpx, 0.8 for aiohttp). A run that fails stops the bench: no ratio is ever
printed from a failed run.

Run: ``python bench/delivery.py`` (5,000 deliveries per side; ``--quick``:
500). ``--concurrency N`` passes ``concurrency=N`` to the dispatchers;
without it they run with their default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from receivers import FAST, receivers

import hookwise as hw

TEAM = "ml-team"
LOCAL = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
IN_FLIGHT = (1, 4, 16)
ROUNDS = 2
DRAIN_TIMEOUT = 300.0  # seconds a dispatcher gets to drain, at most
HAS_AIOHTTP = importlib.util.find_spec("aiohttp") is not None


# -- the receiver: a child process (bench/receivers.py) ------------------------


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, Callable[[], int]]]:
    """The fast receiver's URL and a function that reads how many POSTs it got."""
    with receivers() as (urls, received):
        yield urls[FAST], lambda: received(FAST)


# -- the baselines: hand-written loops ---------------------------------------


def _payload(i: int) -> bytes:
    return b'{"event_type": "ADD_ARTIFACT_ALIAS", "version": "v%d"}' % i


HEADERS = {"Content-Type": "application/json"}


def httpx_sync(url: str, count: int) -> float:
    """Seconds a plain ``httpx.Client`` loop takes to send ``count`` POSTs."""
    started = time.perf_counter()
    with httpx.Client(trust_env=False, timeout=10) as client:
        for i in range(count):
            client.post(url, content=_payload(i), headers=HEADERS).raise_for_status()
    return time.perf_counter() - started


def httpx_async(url: str, count: int, in_flight: int) -> float:
    """Seconds ``httpx.AsyncClient`` takes with ``in_flight`` requests at a time."""

    async def main() -> float:
        started = time.perf_counter()
        todo = iter(range(count))
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:

            async def lane() -> None:
                for i in todo:
                    response = await client.post(url, content=_payload(i), headers=HEADERS)
                    response.raise_for_status()

            await asyncio.gather(*(lane() for _ in range(in_flight)))
        return time.perf_counter() - started

    return asyncio.run(main())


def aiohttp_async(url: str, count: int, in_flight: int) -> float:
    """Seconds ``aiohttp.ClientSession`` takes with ``in_flight`` requests at a time."""
    import aiohttp

    async def main() -> float:
        started = time.perf_counter()
        todo = iter(range(count))
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def lane() -> None:
                for i in todo:
                    async with session.post(url, data=_payload(i), headers=HEADERS) as response:
                        await response.read()
                        response.raise_for_status()

            await asyncio.gather(*(lane() for _ in range(in_flight)))
        return time.perf_counter() - started

    return asyncio.run(main())


# -- hookwise: the dispatchers over a SQLite outbox --------------------------


def outbox(path: Path, url: str, count: int) -> hw.SQLiteStorage:
    """A SQLite store with ``count`` deliveries waiting for ``url``, stored by handle()."""
    store = hw.SQLiteStorage(path, key=hw.SecretKey.generate())
    admin = hw.Admin(store, network=LOCAL)
    admin.create_webhook(hw.Webhook(team=TEAM, name="hook", url=url, signing=()))
    admin.create_automation(
        hw.Automation(
            "on-alias",
            hw.Scope.project(TEAM, "models"),
            hw.OnAddArtifactAlias(alias="^production$"),
            hw.SendWebhook(webhook="hook", payload={"version": "${artifact_version}"}),
        )
    )
    with hw.Dispatcher(store, network=LOCAL, worker=False) as dispatcher:
        for i in range(count):
            event = hw.Event.artifact_alias_added(
                entity=TEAM, project="models", collection="c", version=f"v{i}", alias="production"
            )
            dispatcher.handle(event)
        dispatcher.close(timeout=0)
    return store


def hookwise_sync(store: hw.SQLiteStorage, options: dict[str, Any]) -> float:
    """Seconds from a Dispatcher's start until flush() says it is drained."""
    started = time.perf_counter()
    with hw.Dispatcher(store, network=LOCAL, **options) as dispatcher:
        drained = dispatcher.flush(timeout=DRAIN_TIMEOUT)
        elapsed = time.perf_counter() - started
    assert drained, f"Dispatcher did not drain within {DRAIN_TIMEOUT:g} s"
    return elapsed


class NotAvailable(Exception):
    """This hookwise version has no such dispatcher (yet)."""


def hookwise_async(store: hw.SQLiteStorage, options: dict[str, Any]) -> float:
    """Seconds from an AsyncDispatcher's start until flush() says it is drained."""

    async def main() -> float:
        started = time.perf_counter()
        try:
            dispatcher = hw.AsyncDispatcher(store, network=LOCAL, **options)
        except (TypeError, hw.ValidationError) as exc:
            if "http" in options:  # the aiohttp keyword, not there yet
                raise NotAvailable(str(exc)) from None
            raise
        async with dispatcher:
            drained = await dispatcher.flush(timeout=DRAIN_TIMEOUT)
            elapsed = time.perf_counter() - started
        assert drained, f"AsyncDispatcher did not drain within {DRAIN_TIMEOUT:g} s"
        return elapsed

    return asyncio.run(main())


def check_delivered(store: hw.SQLiteStorage, count: int) -> None:
    """Nothing is left in the outbox and every delivery SUCCEEDED."""
    left = store.outstanding()[0]
    assert left == 0, f"{left} deliveries left in the outbox"
    succeeded = len(store.list_deliveries(status=hw.DeliveryStatus.SUCCEEDED, limit=count + 1))
    assert succeeded == count, f"{succeeded} of {count} deliveries SUCCEEDED"


# -- the run -----------------------------------------------------------------

Send = Callable[[], float]  # a baseline: seconds to send the POSTs
Drain = Callable[[hw.SQLiteStorage], float]  # a dispatcher: seconds to drain a store


class Bench:
    """Runs each side once per call, checks it, and keeps its best rate."""

    def __init__(self, url: str, received: Callable[[], int], folder: str, count: int) -> None:
        self.url, self.received, self.folder, self.count = url, received, Path(folder), count
        self.best: dict[str, float] = {}  # side -> deliveries per second, best round
        self.missing: set[str] = set()  # dispatchers this hookwise does not have
        self._stores = 0

    def baseline(self, name: str, send: Send) -> None:
        before = self.received()
        elapsed = send()
        self._check_received(name, before)
        self._record(name, elapsed)

    def dispatcher(self, name: str, drain: Drain) -> None:
        if name in self.missing:
            return
        self._stores += 1
        store = outbox(self.folder / f"outbox-{self._stores}.db", self.url, self.count)
        try:
            before = self.received()
            try:
                elapsed = drain(store)
            except NotAvailable as exc:
                print(f"  aiohttp dispatcher: not available ({exc})")
                self.missing.add(name)
                return
            check_delivered(store, self.count)
            self._check_received(name, before)
        finally:
            store.close()
        self._record(name, elapsed)

    def ratio(self, ours: str, baselines: list[str], target: float) -> None:
        """Print ours / the best of ``baselines``."""
        if ours not in self.best:
            print(f"  {ours}: not available, no ratio")
            return
        theirs = max(baselines, key=self.best.__getitem__)
        value = self.best[ours] / self.best[theirs]
        verdict = "met" if value >= target else "NOT met"
        print(f"  {ours} / {theirs}: {value:.2f} (target >= {target:.1f}: {verdict})")

    def _check_received(self, name: str, before: int) -> None:
        got = self.received() - before
        assert got == self.count, f"{name}: the receiver got {got} POSTs, not {self.count}"

    def _record(self, name: str, elapsed: float) -> None:
        assert elapsed > 0, f"{name}: {elapsed} s"
        rate = self.count / elapsed
        self.best[name] = max(self.best.get(name, 0.0), rate)
        print(f"  {name:<34} {rate:8.0f} deliveries/s")


SYNC = "hw.Dispatcher"
ASYNC = "hw.AsyncDispatcher"
AIOHTTP = 'hw.AsyncDispatcher(http="aiohttp")'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 deliveries instead of 5,000")
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="pass concurrency=N to the dispatchers"
    )
    args = parser.parse_args()
    count = 500 if args.quick else 5_000
    options: dict[str, Any] = {}
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency

    with receiver() as (url, received), tempfile.TemporaryDirectory() as folder:
        bench = Bench(url, received, folder, count)
        # (baselines, the hookwise side they are the baseline of)
        groups: list[tuple[dict[str, Send], tuple[str, Drain]]] = [
            (
                {"httpx.Client loop": lambda: httpx_sync(url, count)},
                (SYNC, lambda store: hookwise_sync(store, options)),
            ),
            (
                {
                    f"httpx.AsyncClient x{n}": lambda n=n: httpx_async(url, count, n)
                    for n in IN_FLIGHT
                },
                (ASYNC, lambda store: hookwise_async(store, options)),
            ),
        ]
        if HAS_AIOHTTP:
            aiohttp_options = {**options, "http": "aiohttp"}
            groups.append(
                (
                    {f"aiohttp x{n}": lambda n=n: aiohttp_async(url, count, n) for n in IN_FLIGHT},
                    (AIOHTTP, lambda store: hookwise_async(store, aiohttp_options)),
                )
            )
        else:
            print("aiohttp is not importable: no aiohttp baseline or dispatcher")

        for round_ in range(ROUNDS):
            print(f"round {round_ + 1} of {ROUNDS}")
            for baselines, (name, drain) in groups:
                steps: list[Callable[[], None]] = [
                    lambda n=n, s=s: bench.baseline(n, s) for n, s in baselines.items()
                ]
                steps.append(lambda n=name, d=drain: bench.dispatcher(n, d))
                if round_ % 2:  # the second round: hookwise first
                    steps.reverse()
                for step in steps:
                    step()

    shown = f"concurrency={args.concurrency}" if options else "their default concurrency"
    print()
    print(f"{count:,} POSTs to a keep-alive receiver on 127.0.0.1, best of {ROUNDS} rounds;")
    print(f"the dispatchers ran with {shown}")
    for name, rate in sorted(bench.best.items(), key=lambda item: -item[1]):
        print(f"  {name:<34} {rate:8.0f} deliveries/s  ({1e6 / rate:6.0f} us each)")
    print("ratios (hookwise / the best hand-written loop)")
    bench.ratio(ASYNC, [f"httpx.AsyncClient x{n}" for n in IN_FLIGHT], 1.0)
    bench.ratio(SYNC, ["httpx.Client loop"], 1.0)
    if HAS_AIOHTTP:
        bench.ratio(AIOHTTP, [f"aiohttp x{n}" for n in IN_FLIGHT], 0.8)


if __name__ == "__main__":
    main()
