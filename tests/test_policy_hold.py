"""A dispatcher whose NetworkPolicy refuses a URL that Admin accepted is
misconfigured, not facing a bad delivery: the delivery stays queued (no
attempt counted, however old it is), the log says loudly what to fix, and
once the worker runs with the right policy the delivery goes out. An
address refused at connect time, after DNS (which Admin never saw), is
retried like any failure instead, with its reason kept. Both shells; the
aiohttp sender for the connect-time refusal."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import hookwise as hw

from .conftest import LOCAL, MakeDispatcher, Receiver, alias_event, setup_team

LEASE_PASSED = 600.0


def later(seconds: float) -> Any:
    return lambda: time.time() + seconds


def queued(store: hw.Storage, url: str, network: hw.NetworkPolicy = LOCAL) -> hw.Delivery:
    """What the admin side set up and an app enqueued, nothing sent yet."""
    setup_team(store, url, network=network)
    with hw.Dispatcher(store, network=network, worker=False) as app:
        [delivery] = app.handle(alias_event())
    return delivery


def assert_still_queued(store: hw.Storage, delivery_id: str) -> None:
    delivery = store.get_delivery(delivery_id)
    assert delivery is not None
    assert delivery.status is hw.DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.finished_at is None
    assert delivery.error is None
    assert store.list_attempts(delivery_id) == []


def loud_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_worker_without_the_admins_allow_fails_no_delivery(
    store: hw.Storage,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`hookwise worker` started without `--allow 127.0.0.0/8 --allow-http`."""
    delivery = queued(store, receiver.url)
    default_policy = hw.NetworkPolicy()
    with caplog.at_level(logging.DEBUG, logger="hookwise"):
        wrong = make_dispatcher(store, network=default_policy, worker=False)
        assert wrong.deliver_due() == 1
        assert wrong.deliver_due() == 0  # held under its lease: not tried in a loop
        wrong.close()
    assert_still_queued(store, delivery.id)
    assert receiver.requests == []
    [loud] = loud_lines(caplog)
    assert "CONFIGURATION ERROR" in loud
    assert "not failed" in loud
    assert "plain http is refused" in loud
    assert "--allow" in loud
    assert "NetworkPolicy" in loud
    assert f"{delivery.team}/{delivery.webhook}" in loud

    right = make_dispatcher(store, network=LOCAL, worker=False, clock=later(LEASE_PASSED))
    assert right.deliver_due() == 1
    right.close()
    sent = store.get_delivery(delivery.id)
    assert sent is not None
    assert sent.status is hw.DeliveryStatus.SUCCEEDED
    assert sent.attempts == 1
    assert len(receiver.requests) == 1


def resolving_to_loopback(**policy: Any) -> hw.NetworkPolicy:
    """A name the fake DNS answers with 127.0.0.1: refused after DNS unless
    the policy opens loopback (no real lookup, and only the local receiver)."""
    return hw.NetworkPolicy(resolver=lambda host, port: ["127.0.0.1"], allow_http=True, **policy)


def test_an_address_refused_after_dns_is_retried_with_its_reason(
    store: hw.Storage,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Admin never resolves a name, so a refusal after DNS is a worker without
    the admin side's ``--allow`` or a name pointing somewhere it must not: not
    held (that would keep a rebinding target forever), but retried with
    backoff like any failure, the reason in the history, and said loudly."""
    port = receiver.server.server_address[1]
    url = f"http://jenkins.internal:{port}/hook"
    delivery = queued(store, url, network=resolving_to_loopback(allow=["127.0.0.0/8"]))
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        wrong = make_dispatcher(store, network=resolving_to_loopback(), worker=False)
        assert wrong.deliver_due() == 1
        wrong.close()
    after = store.get_delivery(delivery.id)
    assert after is not None
    assert (after.status, after.attempts) == (hw.DeliveryStatus.RETRYING, 1)
    assert "resolves to 127.0.0.1" in (after.error or "")
    assert receiver.requests == []
    [loud] = loud_lines(caplog)
    assert "CONFIGURATION ERROR" in loud
    assert "--allow" in loud
    assert "retried with backoff" in loud

    fixed = resolving_to_loopback(allow=["127.0.0.0/8"])
    right = make_dispatcher(store, network=fixed, worker=False, clock=later(LEASE_PASSED))
    assert right.deliver_due() == 1
    right.close()
    sent = store.get_delivery(delivery.id)
    assert sent is not None
    assert (sent.status, sent.attempts) == (hw.DeliveryStatus.SUCCEEDED, 2)
    assert len(receiver.requests) == 1


def test_the_aiohttp_sender_refuses_after_dns_the_same_way(
    store: hw.Storage, receiver: Receiver
) -> None:
    pytest.importorskip("aiohttp")  # the tests extra installs it: never skipped in CI
    import asyncio

    port = receiver.server.server_address[1]
    delivery = queued(
        store,
        f"http://jenkins.internal:{port}/hook",
        network=resolving_to_loopback(allow=["127.0.0.0/8"]),
    )

    async def once() -> int:
        dispatcher = hw.AsyncDispatcher(
            store, network=resolving_to_loopback(), worker=False, http="aiohttp"
        )
        try:
            return await dispatcher.deliver_due()
        finally:
            await dispatcher.close()

    assert asyncio.run(once()) == 1
    after = store.get_delivery(delivery.id)
    assert after is not None
    assert (after.status, after.attempts) == (hw.DeliveryStatus.RETRYING, 1)
    assert "127.0.0.1" in (after.error or "")
    assert receiver.requests == []


def test_many_held_deliveries_make_one_loud_line(
    store: hw.Storage,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup_team(store, receiver.url)
    with hw.Dispatcher(store, network=LOCAL, worker=False) as app:
        ids = [app.handle(alias_event())[0].id for _ in range(20)]
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        wrong = make_dispatcher(store, network=hw.NetworkPolicy(), worker=False)
        while wrong.deliver_due():
            pass
        wrong.close()
    for delivery_id in ids:
        assert_still_queued(store, delivery_id)
    assert len(loud_lines(caplog)) == 1  # rate limited: not one line per delivery


def test_an_old_backlog_is_held_not_failed(
    store: hw.Storage, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    """Deliveries older than max_age when a misconfigured worker first sees
    them are held like the rest: the worker's mistake fails nothing."""
    delivery = queued(store, receiver.url)
    retry = hw.RetryPolicy(max_age=3600)
    late = make_dispatcher(
        store, network=hw.NetworkPolicy(), worker=False, retry=retry, clock=later(7200)
    )
    assert late.deliver_due() == 1
    late.close()
    assert_still_queued(store, delivery.id)
    assert receiver.requests == []


def test_the_test_button_still_reports_the_refusal(
    store: hw.Storage, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    """Sending now and storing nothing: the refusal is the answer."""
    setup_team(store, receiver.url)
    probe = make_dispatcher(store, network=hw.NetworkPolicy(), worker=False)
    result = probe.test_webhook("ml-team", "github-dispatch")
    probe.close()
    assert not result.ok
    assert result.error is not None
    assert "plain http is refused" in result.error
    assert receiver.requests == []
