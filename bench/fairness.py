"""Fairness between endpoints: does one slow receiver hold back the others?

Three receivers run in a child process on 127.0.0.1: "fast" answers each
POST at once, "slow" answers each POST after 2 s, and "trickle" sends its
answer one byte every 0.5 s (about 19 s for the whole response). For each
dispatcher (``hw.AsyncDispatcher`` and ``hw.Dispatcher``, SQLite outbox):

(a) alone: N deliveries to "fast" (N = 1,000; ``--quick``: 300), timed from
    the dispatcher's start until every one of them is SUCCEEDED;
(b) behind slow ones: the same N, stored after 200 deliveries to "slow"
    (stored first, so they are ahead in the queue: the hostile case), timed
    the same way. The ratio (b) / (a) of the fast deliveries' rates should be
    0.8 or more;
(c) behind trickled ones: the same with 200 deliveries to "trickle" first and
    ``timeout=2``: how long the fast deliveries take, and how long each
    trickled attempt took (it should end at its 2 s deadline).

Every wait is bounded: a measurement that has not finished after the time
limit is cut off and reported as such (its ratio is then an upper bound).
At the end of each measurement the dispatcher is closed with
``close(timeout=1)`` and what is left in the outbox is reported.

Run: ``python bench/fairness.py`` (``--quick`` for a short run;
``--concurrency N`` passes ``concurrency=N`` to the dispatchers).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from receivers import ENDPOINTS, FAST, SLOW, TRICKLE, receivers

import hookwise as hw

TEAM = "ml-team"
LOCAL = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
HOSTILE = 200  # deliveries to the slow (or trickling) receiver, stored first
TRICKLE_TIMEOUT = 2.0  # the dispatchers' timeout= in part (c)
CLOSE_TIMEOUT = 1.0


# -- one measurement ----------------------------------------------------------


def outbox(path: Path, urls: dict[str, str], hostile: str | None, fast: int) -> hw.SQLiteStorage:
    """A store with ``HOSTILE`` deliveries to ``hostile`` (if any), then ``fast``
    deliveries to the fast receiver, in that order, stored through handle()."""
    store = hw.SQLiteStorage(path, key=hw.SecretKey.generate())
    admin = hw.Admin(store, network=LOCAL)
    for kind in ENDPOINTS:
        admin.create_webhook(hw.Webhook(team=TEAM, name=kind, url=urls[kind], signing=()))
        admin.create_automation(
            hw.Automation(
                f"to-{kind}",
                hw.Scope.project(TEAM, "models"),
                hw.OnAddArtifactAlias(alias=f"^{kind}$"),
                hw.SendWebhook(webhook=kind, payload={"version": "${artifact_version}"}),
            )
        )
    todo = [(hostile, HOSTILE)] if hostile else []
    todo.append((FAST, fast))
    with hw.Dispatcher(store, network=LOCAL, worker=False) as dispatcher:
        for alias, count in todo:
            for i in range(count):
                event = hw.Event.artifact_alias_added(
                    entity=TEAM, project="models", collection="c", version=f"v{i}", alias=alias
                )
                assert len(dispatcher.handle(event)) == 1
        dispatcher.close(timeout=0)
    return store


def succeeded(store: hw.SQLiteStorage, kind: str, limit: int) -> int:
    deliveries = store.list_deliveries(
        automation=f"to-{kind}", status=hw.DeliveryStatus.SUCCEEDED, limit=limit
    )
    return len(deliveries)


class Watch:
    """Tells when all ``count`` fast deliveries are SUCCEEDED, or the time is up.
    The store is read only once the fast receiver has had that many POSTs."""

    def __init__(
        self, store: hw.SQLiteStorage, received: Callable[[str], int], count: int, limit: float
    ) -> None:
        self.store, self.received, self.count = store, received, count
        self._before = received(FAST)
        self.started = time.perf_counter()
        self._until = self.started + limit

    def done(self) -> float | bool | None:
        """Seconds it took once done; False once the time is up; None meanwhile."""
        now = time.perf_counter()
        arrived = self.received(FAST) - self._before >= self.count
        if arrived and succeeded(self.store, FAST, self.count) >= self.count:
            return now - self.started
        return False if now > self._until else None


@attrs.frozen
class Result:
    fast_done: int  # fast deliveries SUCCEEDED when the measurement ended
    seconds: float | None  # until all were SUCCEEDED; None when cut off at the limit
    left: int  # what close(timeout=1) said was left in the outbox
    close_seconds: float
    statuses: dict[str, dict[str, int]]  # endpoint -> status -> deliveries
    trickled: list[hw.Attempt]  # the attempts to the trickling receiver


Run = tuple[float | bool, int, float]  # Watch.done()'s answer, left, seconds close took


def run_sync(store: hw.SQLiteStorage, watch: Callable[[], Watch], options: dict[str, Any]) -> Run:
    clock = watch()
    with hw.Dispatcher(store, network=LOCAL, **options) as dispatcher:
        try:
            while (done := clock.done()) is None:
                time.sleep(0.005)
        finally:
            closing = time.perf_counter()
            left = dispatcher.close(timeout=CLOSE_TIMEOUT)
            close_seconds = time.perf_counter() - closing
    return done, left, close_seconds


def run_async(store: hw.SQLiteStorage, watch: Callable[[], Watch], options: dict[str, Any]) -> Run:
    async def main() -> Run:
        clock = watch()
        async with hw.AsyncDispatcher(store, network=LOCAL, **options) as dispatcher:
            try:
                while (done := clock.done()) is None:
                    await asyncio.sleep(0.005)
            finally:
                closing = time.perf_counter()
                left = await dispatcher.close(timeout=CLOSE_TIMEOUT)
                close_seconds = time.perf_counter() - closing
        return done, left, close_seconds

    return asyncio.run(main())


RUNNERS = {"hw.AsyncDispatcher": run_async, "hw.Dispatcher": run_sync}


def measure(
    shell: str,
    folder: Path,
    urls: dict[str, str],
    received: Callable[[str], int],
    *,
    hostile: str | None,
    count: int,
    limit: float,
    options: dict[str, Any],
) -> Result:
    path = folder / f"{shell}-{hostile or 'alone'}-{time.monotonic_ns()}.db"
    store = outbox(path, urls, hostile, count)
    try:
        done, left, close_seconds = RUNNERS[shell](
            store, lambda: Watch(store, received, count, limit), options
        )
        fast_done = succeeded(store, FAST, count + 1)
        statuses = {}
        for kind in ENDPOINTS:
            rows = store.list_deliveries(automation=f"to-{kind}", limit=HOSTILE + count + 1)
            statuses[kind] = dict(collections.Counter(str(d.status) for d in rows))
        trickled = [
            attempt
            for delivery in store.list_deliveries(automation=f"to-{TRICKLE}", limit=HOSTILE + 1)
            for attempt in store.list_attempts(delivery.id)
        ]
    finally:
        store.close()
    seconds = None if done is False else float(done)
    assert seconds is None or seconds > 0
    return Result(fast_done, seconds, left, close_seconds, statuses, trickled)


# -- the report ---------------------------------------------------------------


def describe(result: Result, count: int, limit: float) -> str:
    if result.seconds is None:
        return f"cut off at {limit:g} s with {result.fast_done} of {count} fast SUCCEEDED"
    return f"{count} fast in {result.seconds:.2f} s = {count / result.seconds:7.0f} deliveries/s"


def ratio(result: Result, alone: Result, count: int, limit: float) -> str:
    """The fast deliveries' rate here over their rate alone (target >= 0.8)."""
    assert alone.seconds is not None
    alone_rate = count / alone.seconds
    if result.seconds is None:  # it would have taken longer than the limit
        return f"ratio < {count / limit / alone_rate:.3f} (cut off; target >= 0.8: NOT met)"
    value = count / result.seconds / alone_rate
    verdict = "met" if value >= 0.8 else "NOT met"
    return f"ratio {value:.2f} (target >= 0.8: {verdict})"


def closed(result: Result) -> str:
    statuses = "; ".join(
        f"{kind}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        for kind, counts in result.statuses.items()
        if counts
    )
    return (
        f"close(timeout={CLOSE_TIMEOUT:g}) took {result.close_seconds:.2f} s, "
        f"{result.left} left in the outbox ({statuses})"
    )


def trickle_report(result: Result) -> str:
    if not result.trickled:
        return "no trickled attempt finished"
    times = sorted(attempt.elapsed for attempt in result.trickled)
    errors = collections.Counter(
        attempt.error or f"HTTP {attempt.response_status}" for attempt in result.trickled
    )
    shown = "; ".join(f"{n}x {error[:60]}" for error, n in errors.most_common(3))
    return (
        f"{len(times)} trickled attempts took {times[0]:.2f} / "
        f"{statistics.median(times):.2f} / {times[-1]:.2f} s (min / median / max; "
        f"deadline {TRICKLE_TIMEOUT:g} s): {shown}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 fast deliveries, 20 s limit")
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="pass concurrency=N to the dispatchers"
    )
    args = parser.parse_args()
    count = 300 if args.quick else 1_000
    limit = 20.0 if args.quick else 60.0
    options: dict[str, Any] = {}
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    shown = f"concurrency={args.concurrency}" if options else "the default concurrency"
    print(
        f"{count} fast deliveries, {HOSTILE} hostile ones stored first; "
        f"dispatchers with {shown}; each wait cut off at {limit:g} s"
    )

    with receivers() as (urls, received), tempfile.TemporaryDirectory() as folder:

        def run(shell: str, hostile: str | None, **extra: Any) -> Result:
            return measure(
                shell,
                Path(folder),
                urls,
                received,
                hostile=hostile,
                count=count,
                limit=limit,
                options={**options, **extra},
            )

        for shell in RUNNERS:
            print(f"\n{shell}")
            alone = run(shell, None)
            assert alone.seconds is not None, f"{shell}: {describe(alone, count, limit)}"
            assert alone.left == 0, f"{shell}: {alone.left} left with no hostile receiver"
            print(f"  (a) alone:        {describe(alone, count, limit)}")

            slow = run(shell, SLOW)
            print(f"  (b) behind slow:  {describe(slow, count, limit)}")
            print(f"      {ratio(slow, alone, count, limit)}")
            print(f"      {closed(slow)}")

            trickle = run(shell, TRICKLE, timeout=TRICKLE_TIMEOUT)
            print(f"  (c) behind trickle, timeout={TRICKLE_TIMEOUT:g}:")
            print(f"      {describe(trickle, count, limit)}")
            print(f"      {ratio(trickle, alone, count, limit)}")
            print(f"      {trickle_report(trickle)}")
            print(f"      {closed(trickle)}")


if __name__ == "__main__":
    main()
