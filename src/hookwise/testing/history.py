"""The :class:`~hookwise.storage.protocol.History` contract: reading back what
the outbox stored, tried and finished.

A History reads the deliveries an Outbox wrote, so these tests put
deliveries in through that Outbox: the ``storage`` fixture must be both.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import pytest

from hookwise.errors import AlreadyExistsError
from hookwise.storage.protocol import Attempt, AttemptResult, DeliveryStatus, History, Outbox
from hookwise.testing.helpers import (
    T0,
    claim_one,
    enqueue,
    fail_once,
    make_attempt,
    make_cooldown,
    make_delivery,
    make_entry,
    undue,
)

__all__ = ["HistoryContract", "OutboxWithHistory"]


@runtime_checkable
class OutboxWithHistory(Outbox, History, Protocol):
    """What :class:`HistoryContract` tests: an Outbox and the History that
    reads its deliveries back (in practice, the same tables)."""


class HistoryContract:
    """Every behaviour of :class:`~hookwise.storage.protocol.History`, as pytest
    tests: what ``Admin``'s delivery history relies on.

    Subclass it and define a ``storage`` fixture returning a fresh, empty
    store that is **both an Outbox and a History** (:class:`OutboxWithHistory`):
    the tests enqueue, claim and record attempts through the Outbox, then
    read the results back through the History. Pass the Outbox with
    :class:`~hookwise.testing.OutboxContract` too.
    """

    def test_is_a_history_over_an_outbox(self, storage: OutboxWithHistory) -> None:
        assert isinstance(storage, History)
        assert isinstance(storage, Outbox), "HistoryContract needs a store that is also an Outbox"

    def test_history_starts_empty(self, storage: OutboxWithHistory) -> None:
        assert storage.list_deliveries() == []
        assert storage.get_delivery("missing") is None
        assert storage.list_attempts("missing") == []

    # -- what enqueue stored -----------------------------------------------------------

    def test_enqueue_and_get(self, storage: OutboxWithHistory) -> None:
        delivery = make_delivery("d1")
        enqueue(storage, delivery)
        assert storage.get_delivery("d1") == delivery
        assert storage.get_delivery("missing") is None
        assert storage.list_attempts("d1") == []
        assert storage.list_deliveries() == [delivery]
        storage.enqueue([])
        assert storage.list_deliveries() == [delivery]

    def test_history_after_a_refused_enqueue(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        with pytest.raises(AlreadyExistsError):
            enqueue(storage, make_delivery("d2"), make_delivery("d1", display="changed"))
        assert storage.get_delivery("d2") is None
        assert storage.get_delivery("d1") == make_delivery("d1")
        assert [d.id for d in storage.list_deliveries()] == ["d1"]

    def test_history_after_a_duplicate_within_a_batch(self, storage: OutboxWithHistory) -> None:
        with pytest.raises(AlreadyExistsError):
            enqueue(storage, make_delivery("d1"), make_delivery("d2"), make_delivery("d1"))
        assert storage.get_delivery("d1") is None
        assert storage.get_delivery("d2") is None
        assert storage.list_deliveries() == []

    def test_history_has_no_entry_its_cooldown_skipped(self, storage: OutboxWithHistory) -> None:
        storage.enqueue([make_entry(make_delivery("d1"), make_cooldown(at=T0))])
        storage.enqueue([make_entry(make_delivery("d2"), make_cooldown(at=T0 + 1))])
        assert storage.get_delivery("d1") == make_delivery("d1")
        assert storage.get_delivery("d2") is None
        assert [d.id for d in storage.list_deliveries()] == ["d1"]

    # -- what claims and results changed -----------------------------------------------

    def test_history_shows_a_claim_due_again_at_its_lease_end(
        self, storage: OutboxWithHistory
    ) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage, T0 + 1, lease=30.0)
        assert storage.get_delivery("d1") == make_delivery("d1", next_attempt_at=T0 + 31.0)
        assert undue(claim.delivery) == undue(make_delivery("d1"))
        assert storage.list_attempts("d1") == []

    def test_history_of_a_success(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        attempt = make_attempt(claim, started_at=T0 + 1, elapsed=0.5, url="https://example.com/v2")
        assert storage.record_attempt(
            claim, attempt, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 1.5,
        )  # fmt: skip
        delivery = storage.get_delivery("d1")
        assert delivery == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.SUCCEEDED,
            attempts=1,
            next_attempt_at=None,
            url="https://example.com/v2",
            response_status=200,
            response_body="ok",
            error=None,
            finished_at=T0 + 1.5,
        )
        assert storage.list_attempts("d1") == [attempt]

    def test_history_of_a_retry_then_success(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 30,
            finished_at=None,
        )  # fmt: skip
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.RETRYING
        assert delivery.attempts == 1
        assert delivery.next_attempt_at == T0 + 30
        assert delivery.finished_at is None
        assert delivery.response_status == 503
        assert delivery.response_body == "busy"

        again = claim_one(storage, T0 + 30)
        assert undue(again.delivery) == undue(delivery)
        second = make_attempt(again, number=2, started_at=T0 + 30, elapsed=1.0)
        assert storage.record_attempt(
            again, second, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 31,
        )  # fmt: skip
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 2
        assert delivery.next_attempt_at is None
        assert delivery.finished_at == T0 + 31
        assert delivery.response_status == 200
        assert storage.list_attempts("d1") == [first, second]

    def test_history_of_a_failure(self, storage: OutboxWithHistory) -> None:
        attempt = fail_once(storage)
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.FAILED
        assert delivery.attempts == 1
        assert delivery.next_attempt_at is None
        assert delivery.finished_at == T0 + 2
        assert delivery.response_status is None
        assert delivery.error == "connection refused"
        assert storage.list_attempts("d1") == [attempt]

    def test_history_keeps_the_values_given(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        attempt = make_attempt(claim, number=3, response_status=202, response_body="queued")
        assert storage.record_attempt(
            claim, attempt, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 60,
            finished_at=T0 + 0.25,
        )  # fmt: skip
        assert storage.get_delivery("d1") == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.RETRYING,
            attempts=3,
            next_attempt_at=T0 + 60,
            response_status=202,
            response_body="queued",
            finished_at=T0 + 0.25,  # not derived from the status: kept as given
        )

    def test_history_unchanged_by_a_lost_lease(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        stale = claim_one(storage, T0, lease=10)
        fresh = claim_one(storage, T0 + 10, lease=10)
        before = storage.get_delivery("d1")
        assert not storage.record_attempt(
            stale, make_attempt(stale), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0,
        )  # fmt: skip
        assert storage.get_delivery("d1") == before
        assert storage.list_attempts("d1") == []
        assert storage.record_attempt(
            fresh, make_attempt(fresh), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 10,
        )  # fmt: skip
        assert len(storage.list_attempts("d1")) == 1

    def test_history_unchanged_by_a_used_lease(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        first = make_attempt(claim, response_status=500)
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5,
            finished_at=None,
        )  # fmt: skip
        after = storage.get_delivery("d1")
        assert not storage.record_attempt(
            claim,
            make_attempt(claim, number=2),
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=T0 + 1,
        )
        assert storage.get_delivery("d1") == after
        assert storage.list_attempts("d1") == [first]

    def test_history_of_a_requeue(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        attempt = make_attempt(claim, response_status=400)
        assert storage.record_attempt(
            claim, attempt, status=DeliveryStatus.FAILED, next_attempt_at=None,
            finished_at=T0 + 0.25,
        )  # fmt: skip
        requeued = storage.requeue("d1", T0 + 500)
        assert storage.get_delivery("d1") == requeued
        assert storage.list_attempts("d1") == [attempt]  # redelivery keeps the history

    def test_history_of_a_batch_of_results(self, storage: OutboxWithHistory) -> None:
        enqueue(
            storage,
            make_delivery("d1"),
            make_delivery("d2", created_at=T0 + 1),
            make_delivery("d3", created_at=T0 + 2),
        )
        claim = claim_one(storage, T0, lease=600)  # d1
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5,
            finished_at=None,
        )  # fmt: skip
        d2 = claim_one(storage, T0, lease=600)
        stale = claim_one(storage, T0, lease=10)  # d3, claimed again once its lease ends
        d1 = claim_one(storage, T0 + 5, lease=600)
        fresh = claim_one(storage, T0 + 10, lease=600)
        assert [d1.delivery.id, d2.delivery.id, stale.delivery.id, fresh.delivery.id] == [
            "d1", "d2", "d3", "d3",
        ]  # fmt: skip
        before = storage.get_delivery("d3")
        second = make_attempt(
            d1, number=2, started_at=T0 + 5, elapsed=1.0, url="https://example.com/v2"
        )
        timed_out = make_attempt(
            d2, started_at=T0 + 1, response_status=None, response_body=None, error="timed out"
        )
        answers = storage.record_attempts(
            [
                AttemptResult(d1, second, DeliveryStatus.SUCCEEDED, None, T0 + 6),
                AttemptResult(stale, make_attempt(stale), DeliveryStatus.SUCCEEDED, None, T0),
                AttemptResult(d2, timed_out, DeliveryStatus.RETRYING, T0 + 60, None),
            ]
        )
        assert answers == [True, False, True]
        assert storage.get_delivery("d1") == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.SUCCEEDED,
            attempts=2,
            next_attempt_at=None,
            url="https://example.com/v2",
            response_status=200,
            response_body="ok",
            finished_at=T0 + 6,
        )
        assert storage.list_attempts("d1") == [first, second]  # appended, in order
        assert storage.get_delivery("d2") == attrs.evolve(
            make_delivery("d2", created_at=T0 + 1),
            status=DeliveryStatus.RETRYING,
            attempts=1,
            next_attempt_at=T0 + 60,
            error="timed out",
        )
        assert storage.list_attempts("d2") == [timed_out]
        # the lost lease's result changed nothing, and the others still landed
        assert storage.get_delivery("d3") == before
        assert storage.list_attempts("d3") == []

    def test_record_attempts_writes_what_record_attempt_writes(
        self, storage: OutboxWithHistory
    ) -> None:
        # (status, next_attempt_at, finished_at, attempt fields), each written both ways
        kinds: list[tuple[DeliveryStatus, float | None, float | None, dict[str, Any]]] = [
            (DeliveryStatus.SUCCEEDED, None, T0 + 1, {}),
            (DeliveryStatus.RETRYING, T0 + 30, None, {"response_status": 503, "error": "busy"}),
            (
                DeliveryStatus.FAILED, None, T0 + 2,
                {"url": "https://example.com/moved", "response_status": None,
                 "response_body": None, "error": "connection refused"},
            ),
            (DeliveryStatus.SUCCEEDED, T0 + 99, T0 + 3, {"response_status": 202}),
        ]  # fmt: skip
        n = len(kinds)
        enqueue(storage, *(make_delivery(f"{way}{i}") for way in ("one", "many") for i in range(n)))
        claims = {c.delivery.id: c for c in storage.claim(T0, limit=2 * n, lease=60)}
        results = []
        for i, (status, due, finished, fields) in enumerate(kinds):
            one, many = claims[f"one{i}"], claims[f"many{i}"]
            assert storage.record_attempt(
                one, make_attempt(one, number=i + 1, **fields), status=status,
                next_attempt_at=due, finished_at=finished,
            )  # fmt: skip
            attempt = make_attempt(many, number=i + 1, **fields)
            results.append(AttemptResult(many, attempt, status, due, finished))
        assert storage.record_attempts(results) == [True] * n
        for i in range(n):
            single = storage.get_delivery(f"one{i}")
            assert single is not None
            assert storage.get_delivery(f"many{i}") == attrs.evolve(
                single, id=f"many{i}", message_id=f"msg_many{i}", event_id=f"evt_many{i}"
            )
            assert storage.list_attempts(f"many{i}") == [
                attrs.evolve(attempt, delivery_id=f"many{i}")
                for attempt in storage.list_attempts(f"one{i}")
            ]

    def test_history_after_a_release(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"), make_delivery("d2", created_at=T0 + 1))
        claim = claim_one(storage, T0, lease=600)  # d1
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5,
            finished_at=None,
        )  # fmt: skip
        stale = claim_one(storage, T0, lease=10)  # d2, claimed again once its lease ends
        retry = claim_one(storage, T0 + 5, lease=600)  # d1
        fresh = claim_one(storage, T0 + 10, lease=600)  # d2
        assert [stale.delivery.id, retry.delivery.id, fresh.delivery.id] == ["d2", "d1", "d2"]
        held = storage.get_delivery("d2")
        assert storage.release([retry, stale], T0 + 7) == 1
        # due at the time given; status, attempts, response and history as they were
        assert storage.get_delivery("d1") == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.RETRYING,
            attempts=1,
            next_attempt_at=T0 + 7,
            response_status=503,
            response_body="busy",
        )
        assert storage.list_attempts("d1") == [first]
        assert storage.get_delivery("d2") == held  # its lease was lost: not released
        assert storage.list_attempts("d2") == []

    # -- the queries -------------------------------------------------------------------

    def test_list_deliveries_filters_newest_first(self, storage: OutboxWithHistory) -> None:
        enqueue(
            storage,
            make_delivery("old", created_at=T0 - 30),
            make_delivery("new", created_at=T0),
            make_delivery("mid", created_at=T0 - 10, automation="b"),
            make_delivery("theirs", created_at=T0 - 20, team="other"),
        )
        claims = {c.delivery.id: c for c in storage.claim(T0, limit=10, lease=60)}
        for delivery_id in ("old", "theirs"):
            claim = claims[delivery_id]
            assert storage.record_attempt(
                claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED,
                next_attempt_at=None, finished_at=T0 + 0.25,
            )  # fmt: skip

        def ids(**filters: Any) -> list[str]:
            return [d.id for d in storage.list_deliveries(**filters)]

        assert ids() == ["new", "mid", "theirs", "old"]
        assert ids(limit=2) == ["new", "mid"]
        assert ids(limit=0) == []
        assert ids(team="ml-team") == ["new", "mid", "old"]
        assert ids(team="other") == ["theirs"]
        assert ids(automation="a") == ["new", "theirs", "old"]
        assert ids(team="ml-team", automation="a") == ["new", "old"]
        assert ids(status=DeliveryStatus.SUCCEEDED) == ["theirs", "old"]
        assert ids(status=DeliveryStatus.PENDING) == ["new", "mid"]
        assert ids(status=DeliveryStatus.FAILED) == []
        assert ids(team="ml-team", automation="b", status=DeliveryStatus.PENDING) == ["mid"]
        assert ids(team="nobody") == []

    def test_list_deliveries_by_webhook_and_since(self, storage: OutboxWithHistory) -> None:
        enqueue(
            storage,
            make_delivery("old", created_at=T0 - 30),
            make_delivery("new", created_at=T0, webhook="other-hook"),
            make_delivery("mid", created_at=T0 - 10, automation="b"),
            make_delivery("theirs", created_at=T0 - 20, team="other"),
            make_delivery("same-name", created_at=T0 - 5, team="other", webhook="other-hook"),
        )
        [claim] = [c for c in storage.claim(T0, limit=10, lease=60) if c.delivery.id == "mid"]
        assert storage.record_attempt(
            claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None, finished_at=T0 + 0.25,
        )  # fmt: skip

        def ids(**filters: Any) -> list[str]:
            return [d.id for d in storage.list_deliveries(**filters)]

        # webhook: a name, matched exactly; with team, one team's webhook
        assert ids(webhook="hook") == ["mid", "theirs", "old"]
        assert ids(webhook="other-hook") == ["new", "same-name"]
        assert ids(webhook="other-hook", team="ml-team") == ["new"]
        assert ids(webhook="hook", team="other") == ["theirs"]
        assert ids(webhook="HOOK") == []
        assert ids(webhook="nobody") == []
        # since: created_at >= since, the bound included
        assert ids(since=T0 - 10) == ["new", "same-name", "mid"]
        assert ids(since=T0 - 10.5) == ["new", "same-name", "mid"]
        assert ids(since=T0 - 9.5) == ["new", "same-name"]
        assert ids(since=T0) == ["new"]
        assert ids(since=T0 + 0.001) == []
        assert ids(since=T0 - 30) == ["new", "same-name", "mid", "theirs", "old"]
        assert ids(since=0.0) == ids()
        # every filter combines with every other, and with limit
        assert ids(since=T0 - 20, team="ml-team") == ["new", "mid"]
        assert ids(since=T0 - 20, webhook="hook") == ["mid", "theirs"]
        assert ids(since=T0 - 20, webhook="hook", team="ml-team") == ["mid"]
        assert ids(since=T0 - 20, webhook="hook", automation="a") == ["theirs"]
        assert ids(since=T0 - 30, webhook="hook", status=DeliveryStatus.SUCCEEDED) == ["mid"]
        assert ids(since=T0 - 30, webhook="hook", status=DeliveryStatus.PENDING) == [
            "theirs",
            "old",
        ]
        assert ids(
            team="ml-team", automation="b", webhook="hook", status=DeliveryStatus.SUCCEEDED,
            since=T0 - 10,
        ) == ["mid"]  # fmt: skip
        assert ids(team="ml-team", automation="b", webhook="other-hook") == []
        assert ids(since=T0 - 30, webhook="hook", limit=2) == ["mid", "theirs"]
        assert ids(since=T0 - 30, webhook="other-hook", limit=0) == []

    def test_list_attempts_oldest_first(self, storage: OutboxWithHistory) -> None:
        enqueue(storage, make_delivery("d1"), make_delivery("d2"))
        made: dict[str, list[Attempt]] = {"d1": [], "d2": []}
        now = T0
        for number in (1, 2, 3):
            for claim in storage.claim(now, limit=10, lease=60):
                attempt = make_attempt(claim, number=number, started_at=now, response_status=500)
                made[claim.delivery.id].append(attempt)
                assert storage.record_attempt(
                    claim, attempt, status=DeliveryStatus.RETRYING, next_attempt_at=now + 1,
                    finished_at=None,
                )  # fmt: skip
            now += 1
        assert storage.list_attempts("d1") == made["d1"]
        assert [a.number for a in storage.list_attempts("d2")] == [1, 2, 3]
        assert storage.list_attempts("missing") == []
