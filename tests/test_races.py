"""Writers racing each other, released together by a Barrier: the outcome
must be one a serial order of the same writes would give, on every store.

A store is opened once per writer: the one MemoryStorage each time, one
SQLiteStorage connection shared by the writers' threads, or a connection of
its own for each writer on one file, as separate processes would have.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import attrs
import httpx
import pytest

import hookwise as hw
from hookwise.storage import Claim
from hookwise.storage.protocol import Cooldown, OutboxEntry
from tests.conftest import LOCAL, PUBLIC, TEAM, alias_event, setup_team

T = TypeVar("T")

NOW = 1_000_000.0
GONE = "the endpoint answered 410 Gone"
OLD_URL = "http://127.0.0.1:9/old"
NEW_URL = "http://127.0.0.1:9/new"
WRITERS = 8

Connect = Callable[[], hw.Storage]


@pytest.fixture(params=["memory", "sqlite", "sqlite-connections"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connect]:
    """Opens the store for one more writer."""
    key = hw.SecretKey.generate()
    opened: list[hw.Storage] = []

    def open_store() -> hw.Storage:
        if opened and request.param != "sqlite-connections":
            return opened[0]
        if request.param == "memory":
            opened.append(hw.MemoryStorage(key=key))
        else:
            opened.append(hw.SQLiteStorage(tmp_path / "hookwise.db", key=key))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def race(*writers: Callable[[], T]) -> list[T]:
    """Run each writer in a thread of its own, all released at once by a
    Barrier; their results in order (a writer's exception is raised here)."""
    barrier = threading.Barrier(len(writers))

    def released(write: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return write()

    with ThreadPoolExecutor(len(writers)) as pool:
        futures = [pool.submit(released, write) for write in writers]
        return [future.result(timeout=60) for future in futures]


def outbox_entry(cooldown: Cooldown | None = None) -> OutboxEntry:
    delivery = hw.Delivery(
        id=uuid.uuid4().hex,
        message_id=f"msg_{uuid.uuid4().hex}",
        team=TEAM,
        webhook="alerts",
        automation="watch",
        event_type="RUN_METRIC",
        event_id=uuid.uuid4().hex,
        created_at=NOW,
        display="{}",
        url="https://hooks.example.com/a",
        next_attempt_at=NOW,
    )
    return OutboxEntry(delivery, b"sealed", cooldown)


# -- the 410 auto-disable against an admin's update --------------------------------
#
# What is guaranteed, and what is not:
#
# Admin.update_webhook replaces the whole webhook with the one it is given:
# last writer wins, with no compare-and-set. An update that says
# enabled=True and lands after a disable turns the webhook back on; that is
# what a replace means, so this file does not claim a disable always
# survives an update.
#
# What must never happen is the reverse lost update: the disable reading the
# webhook, changing it and writing back a stale copy over a URL change made
# in between. disable_webhook (what the core calls on a 410 Gone) is one
# storage operation (one lock in memory, one transaction in SQLite), so the
# webhook afterwards is always what one of the two serial orders gives, and
# the disable's answer says which.


def serial_outcomes(updated: hw.Webhook, reason: str) -> list[tuple[bool, hw.Webhook]]:
    """(what disable_webhook returned, the webhook afterwards) for each order,
    starting from an enabled webhook."""
    disable_then_update = (True, updated)  # the replace wins, whatever it says
    if updated.enabled:  # the disable finds it on and keeps the new URL
        after = attrs.evolve(updated, enabled=False, disabled_reason=reason)
        update_then_disable = (True, after)
    else:  # already off: the disable changes nothing
        update_then_disable = (False, updated)
    return [disable_then_update, update_then_disable]


@pytest.mark.parametrize("enabled", [True, False], ids=["update-on", "update-off"])
def test_a_disable_never_loses_a_concurrent_url_change(connect: Connect, enabled: bool) -> None:
    core_store, admin = connect(), hw.Admin(connect(), network=LOCAL)
    for round_ in range(40):
        name = f"hook-{round_}"
        admin.create_webhook(hw.Webhook(team=TEAM, name=name, url=OLD_URL))
        updated = hw.Webhook(team=TEAM, name=name, url=NEW_URL, enabled=enabled)
        disable = partial(core_store.disable_webhook, TEAM, name, GONE)
        update = partial(admin.update_webhook, updated)
        if round_ % 2:  # the thread the Barrier lets go last tends to run first: take turns
            disabled, _ = race(disable, update)
        else:
            _, disabled = race(update, disable)
        after = core_store.get_webhook(TEAM, name)
        assert (disabled, after) in serial_outcomes(updated, GONE), f"round {round_}"
        assert after is not None
        assert after.url == NEW_URL  # never a stale copy written back


def test_a_read_modify_write_disable_would_be_caught(connect: Connect) -> None:
    """The check above is honest: a disable done as get, then update (not one
    storage operation), interleaved with the admin's update, loses the URL."""
    store, admin = connect(), hw.Admin(connect(), network=LOCAL)
    admin.create_webhook(hw.Webhook(team=TEAM, name="hook", url=OLD_URL))
    updated = hw.Webhook(team=TEAM, name="hook", url=NEW_URL)
    between = threading.Barrier(2)  # passed twice: the update runs between the read and write

    def disable_from_a_stale_read() -> bool:
        webhook = store.get_webhook(TEAM, "hook")
        assert webhook is not None
        between.wait(timeout=30)
        between.wait(timeout=30)
        store.update_webhook(attrs.evolve(webhook, enabled=False, disabled_reason=GONE))
        return True

    def update_in_between() -> None:
        between.wait(timeout=30)
        admin.update_webhook(updated)
        between.wait(timeout=30)

    disabled, _ = race(disable_from_a_stale_read, update_in_between)
    after = store.get_webhook(TEAM, "hook")
    assert (disabled, after) not in serial_outcomes(updated, GONE)
    assert after is not None
    assert after.url == OLD_URL  # the lost update the real disable_webhook cannot make


# -- run alerts with a cooldown ----------------------------------------------------


def test_racing_enqueues_under_one_cooldown_store_one_delivery(connect: Connect) -> None:
    stores = [connect() for _ in range(WRITERS)]

    def alert(store: hw.Storage, at: float) -> list[hw.Delivery]:
        cooldown = Cooldown(f"{TEAM}/watch", "run-1", at=at, since=at - 300.0)
        return store.enqueue([outbox_entry(cooldown)])

    stored = race(*(partial(alert, store, NOW + i / 1000) for i, store in enumerate(stores)))
    assert sorted(len(deliveries) for deliveries in stored) == [0] * (WRITERS - 1) + [1]
    [delivery] = [d for deliveries in stored for d in deliveries]
    assert [d.id for d in stores[0].list_deliveries()] == [delivery.id]


def test_run_alerts_racing_through_the_core_store_one_delivery(connect: Connect) -> None:
    """Dispatchers of one training job (threads, or processes on one file)
    each see the run cross its threshold and record the alert at once."""
    stores = [connect() for _ in range(WRITERS)]
    admin = hw.Admin(stores[0], network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="https://hooks.example.com/a"))
    admin.create_automation(
        hw.Automation(
            name="watch",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunMetric(hw.RunMetric("loss") > 1, cooldown=300),
            action=hw.SendWebhook(webhook="alerts"),
        )
    )
    run = hw.Run(entity=TEAM, project="training", id="run-1")
    event = hw.Event.run_metrics(run, {"loss": 2.0})
    dispatchers = [hw.Dispatcher(s, network=PUBLIC, worker=False) for s in stores]
    records: list[Callable[[], list[hw.Delivery]]] = []
    for dispatcher in dispatchers:
        core = dispatcher._core
        matches = core.match(event)  # each dispatcher sees the crossing
        assert len(matches) == 1
        records.append(partial(core.record, event, matches))

    stored = race(*records)
    assert sorted(len(deliveries) for deliveries in stored) == [0] * (WRITERS - 1) + [1]
    [delivery] = stores[0].list_deliveries()
    assert delivery.automation == "watch"
    for dispatcher in dispatchers:
        dispatcher.close()


# -- claims ------------------------------------------------------------------------


def test_racing_claims_never_lease_a_delivery_twice(connect: Connect) -> None:
    stores = [connect() for _ in range(WRITERS)]
    queued = stores[0].enqueue([outbox_entry() for _ in range(60)])

    claims: list[Claim] = []
    while True:  # in rounds: every writer claims at once, until nothing is left
        batches = race(*(partial(s.claim, NOW, limit=2, lease=60.0) for s in stores))
        if not any(batches):
            break
        claims += [claim for batch in batches for claim in batch]
    assert sorted(c.delivery.id for c in claims) == sorted(d.id for d in queued)
    # each lease is the only one: a delivery leased twice would refuse the older token
    for claim in claims:
        attempt = hw.Attempt(claim.delivery.id, 1, NOW, 0.1, claim.delivery.url, 200)
        assert stores[0].record_attempt(
            claim,
            attempt,
            status=hw.DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=NOW,
        )
    assert stores[0].outstanding() == (0, None)


# -- flush against its own worker --------------------------------------------------


class GatedReads(hw.MemoryStorage):
    """Holds the first ``outstanding()`` read of the ``gated`` thread until
    ``resume`` is set; its later reads set ``read_again``. Reads by anyone
    else (the worker, between passes) set ``idle`` once done."""

    def __init__(self) -> None:
        super().__init__()
        self.gated: threading.Thread | None = None
        self.idle, self.holding = threading.Event(), threading.Event()
        self.resume, self.read_again = threading.Event(), threading.Event()

    def outstanding(self) -> tuple[int, float | None]:
        if threading.current_thread() is not self.gated:
            counted = super().outstanding()
            self.idle.set()
            return counted
        if self.holding.is_set():
            self.read_again.set()
        else:
            self.holding.set()
            assert self.resume.wait(10)
        return super().outstanding()


def test_flush_does_not_return_while_its_worker_sends() -> None:
    store = GatedReads()
    setup_team(store, "https://hooks.example.com/hook", network=PUBLIC)
    sending, answer = threading.Event(), threading.Event()

    def receive(request: httpx.Request) -> httpx.Response:
        sending.set()
        assert answer.wait(10)
        return httpx.Response(200)

    transport = httpx.MockTransport(receive)
    dispatcher = hw.Dispatcher(store, network=PUBLIC, transport=transport, poll_interval=3600.0)
    assert store.idle.wait(10)  # the worker found nothing to send; it sleeps until woken
    recorder = hw.Dispatcher(store, network=PUBLIC, worker=False)  # another app instance
    [delivery] = recorder.handle(alias_event())

    flushed: dict[str, object] = {}

    def flush() -> None:
        try:
            flushed["drained"] = dispatcher.flush(timeout=5)
            flushed["status"] = store.get_delivery(delivery.id).status  # type: ignore[union-attr]
        finally:
            store.read_again.set()  # it has returned: nothing more to wait for

    flusher = threading.Thread(target=flush)
    store.gated = flusher
    flusher.start()
    assert store.holding.wait(10)  # flush saw an idle worker and now reads the outbox
    dispatcher.redeliver(delivery.id)  # wakes the worker: it claims the delivery
    assert sending.wait(10)  # and is sending it
    store.resume.set()  # the read sees the delivery leased: due again when the lease ends
    assert store.read_again.wait(10)  # flush reads again (or has returned already)
    answer.set()
    flusher.join(10)
    assert flushed == {"drained": True, "status": hw.DeliveryStatus.SUCCEEDED}
    dispatcher.close()
    recorder.close()
