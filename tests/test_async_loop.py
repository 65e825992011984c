"""The async shell never blocks its event loop, even on a slow database.

Every call to :class:`SlowStorage` takes 0.2 s, as a company database far
away might. The loop runs in asyncio's debug mode, which logs "Executing
... took" for a step longer than ``slow_callback_duration`` (0.1 s), and a
watchdog ticks every 10 ms beside it: a storage call made on the loop shows
up in both, and in the list of calls the storage saw made on a loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import pytest

import hookwise as hw
from tests.conftest import LOCAL, TEAM, Receiver, alias_event, setup_team

DELAY = 0.2  # each storage call, once the storage is slow
SLOW_STEP = 0.1  # what asyncio's debug mode reports
TICK = 0.01  # the watchdog's period
LARGEST_GAP = 0.15  # well under DELAY: no storage call ran on the loop


class SlowStorage(hw.MemoryStorage):
    """A MemoryStorage whose every call takes ``DELAY`` seconds once ``slow``
    is set (setting up is quick). ``on_loop`` names the calls made from a
    thread running an event loop: there should be none."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.on_loop: list[str] = []
        self._noted = threading.Lock()


def _slowed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: SlowStorage, *args: Any, **kwargs: Any) -> Any:
        if self.slow:
            if _loop_running():
                with self._noted:
                    self.on_loop.append(name)
            time.sleep(DELAY)
        return method(self, *args, **kwargs)

    return call


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


for _name, _method in list(vars(hw.MemoryStorage).items()):
    if not _name.startswith("_") and callable(_method):
        setattr(SlowStorage, _name, _slowed(_name, _method))


@attrs.frozen
class LoopReport:
    """What the loop went through while a scenario ran."""

    slow_steps: list[str]  # asyncio's "Executing ... took" warnings
    largest_gap: float  # the longest the watchdog waited between two 10 ms ticks


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def watch(scenario: Callable[[], Awaitable[None]]) -> LoopReport:
    """Run ``scenario`` on a new loop in debug mode, a watchdog beside it."""
    collect = _Collect()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(collect)
    try:
        largest_gap = asyncio.run(_watched(scenario), debug=True)
    finally:
        asyncio_logger.removeHandler(collect)
    slow = [m for m in collect.messages if m.startswith("Executing") and " took " in m]
    return LoopReport(slow, largest_gap)


async def _watched(scenario: Callable[[], Awaitable[None]]) -> float:
    asyncio.get_running_loop().slow_callback_duration = SLOW_STEP
    gaps = [0.0]
    ticking = asyncio.Event()

    async def watchdog() -> None:
        last = time.monotonic()
        ticking.set()
        try:
            while True:
                await asyncio.sleep(TICK)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        except asyncio.CancelledError:
            gaps.append(time.monotonic() - last)  # a block at the very end counts too
            raise

    dog = asyncio.create_task(watchdog())
    await ticking.wait()
    try:
        await scenario()
    finally:
        dog.cancel()
        await asyncio.gather(dog, return_exceptions=True)
    return max(gaps)


@pytest.fixture
def store() -> Iterator[SlowStorage]:
    storage = SlowStorage()
    yield storage
    storage.slow = False
    storage.close()


def assert_the_loop_ran_free(report: LoopReport, store: SlowStorage) -> None:
    culprits = f"storage calls made on the loop: {store.on_loop}"
    assert report.slow_steps == [], culprits
    assert report.largest_gap < LARGEST_GAP, culprits
    assert store.on_loop == []


def test_the_async_dispatcher_never_waits_for_storage_on_the_loop(
    store: SlowStorage, receiver: Receiver
) -> None:
    admin = setup_team(store, receiver.url)
    # built before the watch: httpx makes its SSL context here, tens of ms
    # of work that is no storage call
    dispatcher = hw.AsyncDispatcher(store, network=LOCAL)
    store.slow = True

    async def sent() -> hw.Delivery:
        """Flush until the history shows the delivery finished. One flush
        should do, but one can return while the worker still sends: see
        test_races.py::test_flush_does_not_return_while_its_worker_sends."""
        for _ in range(10):
            assert await dispatcher.flush(timeout=30)
            [delivery] = await asyncio.to_thread(admin.deliveries)  # as an app reads it
            if delivery.status.finished:
                return delivery
        raise AssertionError("flush kept returning before the delivery was sent")

    async def use_it() -> None:
        [delivery] = await dispatcher.handle(alias_event())
        assert (await sent()).status is hw.DeliveryStatus.SUCCEEDED
        await dispatcher.redeliver(delivery.id)
        assert (await sent()).attempts == 2
        result = await dispatcher.test_webhook(TEAM, "github-dispatch")
        assert result.ok
        assert await dispatcher.close() == 0

    report = watch(use_it)
    assert len(receiver.requests) == 3  # the delivery, its redelivery, the test
    assert_the_loop_ran_free(report, store)


def test_the_check_sees_a_storage_call_made_on_the_loop(store: SlowStorage) -> None:
    setup_team(store, "http://127.0.0.1:9/hook")
    store.slow = True

    async def call_storage_on_the_loop() -> None:
        store.list_webhooks(TEAM)

    report = watch(call_storage_on_the_loop)
    assert store.on_loop == ["list_webhooks"]
    [warning] = report.slow_steps
    assert "took" in warning
    assert report.largest_gap >= DELAY


def watch_loss(store: hw.Storage) -> None:
    """An automation watching the mean loss of runs in ml-team/training."""
    admin = hw.Admin(store, network=LOCAL)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="http://127.0.0.1:9/a"))
    admin.create_automation(
        hw.Automation(
            name="watch",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunMetric(hw.RunMetric("loss").avg(3) > 5),
            action=hw.SendWebhook(webhook="alerts"),
        )
    )


def test_the_first_metrics_of_a_run_do_not_wait_for_storage_on_the_loop(
    store: SlowStorage,
) -> None:
    watch_loss(store)
    dispatcher = hw.AsyncDispatcher(store, network=LOCAL, worker=False)
    store.slow = True
    run = hw.Run(entity=TEAM, project="training", id="run-1")

    async def log_metrics() -> None:
        assert await dispatcher.handle(hw.Event.run_metrics(run, {"loss": 1.0})) == []
        assert await dispatcher.close() == 0

    report = watch(log_metrics)
    assert_the_loop_ran_free(report, store)


def test_a_run_loading_its_windows_holds_up_no_other_event(store: SlowStorage) -> None:
    """While one run's saved windows load (in a thread), events of a run
    already in memory are matched on the loop at once: nothing waits for
    the load behind the tracker's lock."""
    watch_loss(store)
    dispatcher = hw.AsyncDispatcher(store, network=LOCAL, worker=False, refresh_interval=3600)
    known = hw.Run(entity=TEAM, project="training", id="known")
    new = hw.Run(entity=TEAM, project="training", id="new")

    async def two_runs() -> None:
        await dispatcher.handle(hw.Event.run_metrics(known, {"loss": 1.0}))  # in memory now
        store.slow = True
        loading = asyncio.create_task(dispatcher.handle(hw.Event.run_metrics(new, {"loss": 1.0})))
        await asyncio.sleep(0)  # the loading task starts, and hands the load to a thread
        started = time.monotonic()
        for _ in range(5):
            await dispatcher.handle(hw.Event.run_metrics(known, {"loss": 1.0}))
        assert time.monotonic() - started < DELAY / 2  # did not wait for the load
        assert not loading.done()
        await loading
        store.slow = False
        await dispatcher.close()

    report = watch(two_runs)
    assert_the_loop_ran_free(report, store)
