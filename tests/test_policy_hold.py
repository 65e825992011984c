"""A dispatcher whose NetworkPolicy refuses a URL that Admin accepted is
misconfigured, not facing a bad delivery: the delivery stays queued (no
attempt counted), the log says loudly what to fix, and once the worker runs
with the right policy the delivery goes out. Only a delivery held past the
retry policy's ``max_age`` is failed. Both shells, both refusal points (the
URL check before sending, the address check at connect time)."""

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


def test_an_address_refused_at_connect_time_is_held_too(
    store: hw.Storage, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    """The name resolved to a private address for this worker (its policy
    does not open 10.0.0.0/8, the admin side's does): refused before any
    socket opens, and kept."""
    url = "https://hooks.internal.example/deploy"
    admin_side = hw.NetworkPolicy(allow=["10.0.0.0/8"], resolver=lambda host, port: ["10.0.0.5"])
    delivery = queued(store, url, network=admin_side)
    worker_side = hw.NetworkPolicy(resolver=lambda host, port: ["10.0.0.5"])
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        wrong = make_dispatcher(store, network=worker_side, worker=False)
        assert wrong.deliver_due() == 1
        wrong.close()
    assert_still_queued(store, delivery.id)
    [loud] = loud_lines(caplog)
    assert "10.0.0.5" in loud
    assert "not failed" in loud


def test_many_held_deliveries_make_one_loud_line(
    store: hw.Storage, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    setup_team(store, receiver.url)
    with hw.Dispatcher(store, network=LOCAL, worker=False) as app:
        ids = [app.handle(alias_event())[0].id for _ in range(20)]
    with (
        caplog.at_level(logging.WARNING, logger="hookwise"),
        hw.Dispatcher(store, network=hw.NetworkPolicy(), worker=False) as wrong,
    ):
        while wrong.deliver_due():
            pass
    for delivery_id in ids:
        assert_still_queued(store, delivery_id)
    assert len(loud_lines(caplog)) == 1  # rate limited: not one line per delivery


def test_a_delivery_held_past_max_age_fails_with_the_reason(
    store: hw.Storage, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    delivery = queued(store, receiver.url)
    retry = hw.RetryPolicy(max_age=3600)
    late = make_dispatcher(
        store, network=hw.NetworkPolicy(), worker=False, retry=retry, clock=later(7200)
    )
    assert late.deliver_due() == 1
    late.close()
    failed = store.get_delivery(delivery.id)
    assert failed is not None
    assert failed.status is hw.DeliveryStatus.FAILED
    assert failed.attempts == 1
    assert failed.error is not None
    assert "plain http is refused" in failed.error
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
