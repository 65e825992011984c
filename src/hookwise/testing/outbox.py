"""The :class:`~hookwise.storage.protocol.Outbox` contract: enqueue with
cooldowns, claims and leases (passing over endpoints), results one by one
and in batches, leases given back, failing streaks, redelivery.

These tests look at the store only through the Outbox's own methods (what
``enqueue`` and ``requeue`` return, what ``claim`` hands out, ``outstanding``),
so an Outbox is checked on its own; :mod:`hookwise.testing.history` reads the
same operations back through the History.
"""

from __future__ import annotations

import threading

import attrs
import pytest

from hookwise.errors import AlreadyExistsError, NotFoundError
from hookwise.scheduler import MAX_EXCLUDED
from hookwise.storage.protocol import AttemptResult, Cooldown, Delivery, DeliveryStatus, Outbox
from hookwise.testing.helpers import (
    T0,
    claim_one,
    enqueue,
    fail_once,
    make_attempt,
    make_cooldown,
    make_delivery,
    make_entry,
    sealed_body,
    undue,
)

__all__ = ["OutboxContract"]


class OutboxContract:
    """Every behaviour of :class:`~hookwise.storage.protocol.Outbox`, as pytest
    tests: what the dispatchers' workers rely on.

    Subclass it and define a ``storage`` fixture returning a fresh, empty
    ``Outbox`` (yield it to close it afterwards). The store must be safe to
    call from several threads. Time is passed in, as the protocol does.
    """

    def test_is_an_outbox(self, storage: Outbox) -> None:
        assert isinstance(storage, Outbox)

    def test_outbox_starts_empty(self, storage: Outbox) -> None:
        assert storage.outstanding() == (0, None)
        assert storage.claim(T0 + 1e9, limit=10, lease=60) == []

    # -- enqueue ---------------------------------------------------------------------

    def test_enqueue_returns_what_it_stored(self, storage: Outbox) -> None:
        delivery = make_delivery("d1")
        assert enqueue(storage, delivery) == [delivery]
        assert storage.enqueue([]) == []
        assert storage.outstanding() == (1, T0)
        claim = claim_one(storage)
        assert undue(claim.delivery) == undue(delivery)
        assert claim.sealed_body == sealed_body("d1")

    def test_enqueue_is_all_or_none(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        cooldown = make_cooldown()
        with pytest.raises(AlreadyExistsError):
            storage.enqueue(
                [
                    make_entry(make_delivery("d2"), cooldown),
                    make_entry(make_delivery("d1", display="changed")),
                ]
            )
        assert storage.outstanding() == (1, T0)
        [claim] = storage.claim(T0, limit=10, lease=60)
        assert undue(claim.delivery) == undue(make_delivery("d1"))
        # the cooldown was not recorded either
        assert storage.enqueue([make_entry(make_delivery("d3"), cooldown)]) != []

    def test_enqueue_duplicate_within_a_batch_stores_nothing(self, storage: Outbox) -> None:
        with pytest.raises(AlreadyExistsError):
            enqueue(storage, make_delivery("d1"), make_delivery("d2"), make_delivery("d1"))
        assert storage.outstanding() == (0, None)
        assert storage.claim(T0 + 1e9, limit=10, lease=60) == []

    def test_due_is_next_attempt_at_alone(self, storage: Outbox) -> None:
        # the store holds no rules: status and finished_at do not make a delivery due or not
        enqueue(
            storage,
            make_delivery("held", next_attempt_at=None),
            make_delivery("done", status=DeliveryStatus.SUCCEEDED, next_attempt_at=T0 + 5,
                          finished_at=T0),
            make_delivery("now"),
        )  # fmt: skip
        assert storage.outstanding() == (2, T0)
        claims = storage.claim(T0 + 1e9, limit=10, lease=60)
        assert [c.delivery.id for c in claims] == ["now", "done"]
        assert claims[1].delivery.status is DeliveryStatus.SUCCEEDED
        assert storage.outstanding() == (2, T0 + 1e9 + 60)  # "held" is never due

    # -- cooldowns -------------------------------------------------------------------

    def test_cooldown_once_per_cooldown(self, storage: Outbox) -> None:
        count = 0

        def fire(automation: str, run: str, at: float) -> bool:
            nonlocal count
            count += 1
            delivery = make_delivery(f"d{count}", next_attempt_at=at)
            cooldown = make_cooldown(automation, run, at=at, seconds=100.0)
            stored = storage.enqueue([make_entry(delivery, cooldown)])
            assert stored in ([], [delivery])
            return stored == [delivery]

        assert fire("ml-team/a", "run-1", T0)
        assert not fire("ml-team/a", "run-1", T0 + 99.0)
        # other runs and other automations have their own cooldowns
        assert fire("ml-team/a", "run-2", T0 + 1.0)
        assert fire("ml-team/b", "run-1", T0 + 1.0)
        # a refused try does not restart the clock
        assert fire("ml-team/a", "run-1", T0 + 100.0)
        assert not fire("ml-team/a", "run-1", T0 + 150.0)
        # an entry whose cooldown does not hold is not stored
        assert storage.outstanding() == (4, T0)

    def test_cooldown_records_its_at(self, storage: Outbox) -> None:
        def fire(delivery_id: str, at: float, since: float) -> bool:
            cooldown = Cooldown("ml-team/a", "ml-team/proj/run-1", at=at, since=since)
            return storage.enqueue([make_entry(make_delivery(delivery_id), cooldown)]) != []

        assert fire("d1", T0 + 50, T0 - 50)  # the delivery was created at T0
        assert not fire("d2", T0 + 100, T0 + 49)
        assert fire("d3", T0 + 101, T0 + 50)  # fired at or before since holds
        assert not fire("d4", T0 + 200, T0 + 100)

    def test_cooldowns_in_a_batch(self, storage: Outbox) -> None:
        assert storage.enqueue([make_entry(make_delivery("d0"), make_cooldown("ml-team/a"))])
        later = T0 + 10
        stored = storage.enqueue(
            [
                make_entry(make_delivery("free")),
                make_entry(make_delivery("held"), make_cooldown("ml-team/a", at=later)),
                make_entry(make_delivery("fires"), make_cooldown("ml-team/b", at=later)),
            ]
        )
        assert sorted(stored, key=lambda d: d.id) == [make_delivery("fires"), make_delivery("free")]
        assert storage.outstanding() == (3, T0)

    def test_cooldown_is_atomic(self, storage: Outbox) -> None:
        results: list[list[Delivery]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(8, timeout=30)

        def fire(delivery_id: str) -> None:
            try:
                entry = make_entry(make_delivery(delivery_id), make_cooldown(seconds=3600.0))
                start.wait()
                stored = storage.enqueue([entry])
                with lock:
                    results.append(stored)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=fire, args=(f"d{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(len(stored) for stored in results) == [0] * 7 + [1]
        assert storage.outstanding() == (1, T0)

    def test_failed_enqueue_records_no_cooldown(self, storage: Outbox) -> None:
        cooldown = make_cooldown()
        with pytest.raises(AlreadyExistsError):
            storage.enqueue(
                [make_entry(make_delivery("d1"), cooldown), make_entry(make_delivery("d1"))]
            )
        assert storage.outstanding() == (0, None)
        assert storage.enqueue([make_entry(make_delivery("d2"), cooldown)]) == [make_delivery("d2")]

    # -- claim -----------------------------------------------------------------------

    def test_claim_returns_the_delivery_and_its_body(self, storage: Outbox) -> None:
        delivery = make_delivery("d1")
        enqueue(storage, delivery)
        claim = claim_one(storage, T0 + 1, lease=30.0)
        assert undue(claim.delivery) == undue(delivery)
        assert claim.sealed_body == sealed_body("d1")
        assert claim.lease_until == T0 + 31.0
        assert isinstance(claim.lease_token, str)
        assert claim.lease_token
        assert storage.outstanding() == (1, T0 + 31.0)  # due again when the lease ends

    def test_claim_only_due(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("now"), make_delivery("later", next_attempt_at=T0 + 100))
        assert [c.delivery.id for c in storage.claim(T0, limit=10, lease=600)] == ["now"]
        assert storage.claim(T0 + 99, limit=10, lease=600) == []
        assert [c.delivery.id for c in storage.claim(T0 + 100, limit=10, lease=600)] == ["later"]

    def test_lease_excludes_others_until_it_expires(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        first = claim_one(storage, T0, lease=60)
        assert storage.claim(T0, limit=10, lease=60) == []
        assert storage.claim(T0 + 59.5, limit=10, lease=60) == []
        second = claim_one(storage, T0 + 60, lease=60)
        assert second.delivery.id == "d1"
        assert second.lease_token != first.lease_token
        assert second.lease_until == T0 + 120
        assert storage.claim(T0 + 61, limit=10, lease=60) == []

    def test_claim_limit_and_oldest_due_first(self, storage: Outbox) -> None:
        enqueue(
            storage,
            make_delivery("c", next_attempt_at=T0 + 3, created_at=T0 - 30),
            make_delivery("a", next_attempt_at=T0 + 1, created_at=T0 - 10),
            make_delivery("b2", next_attempt_at=T0 + 2, created_at=T0 - 5),
            make_delivery("b1", next_attempt_at=T0 + 2, created_at=T0 - 20),
            make_delivery("future", next_attempt_at=T0 + 50, created_at=T0 - 40),
        )
        now = T0 + 10
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60)] == ["a", "b1"]
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60)] == ["b2", "c"]
        assert storage.claim(now, limit=2, lease=60) == []
        assert storage.claim(T0 + 50, limit=0, lease=60) == []

    def test_finished_deliveries_are_not_claimed(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"), make_delivery("d2"))
        for claim in storage.claim(T0, limit=10, lease=60):
            status = (
                DeliveryStatus.SUCCEEDED if claim.delivery.id == "d1" else DeliveryStatus.FAILED
            )
            assert storage.record_attempt(
                claim, make_attempt(claim), status=status, next_attempt_at=None,
                finished_at=T0 + 0.25,
            )  # fmt: skip
        assert storage.claim(T0 + 1000, limit=10, lease=60) == []

    def test_concurrent_claims_never_share_a_delivery(self, storage: Outbox) -> None:
        ids = [f"d{i:03}" for i in range(60)]
        enqueue(storage, *(make_delivery(i) for i in ids))
        got: list[list[str]] = [[] for _ in range(4)]
        errors: list[BaseException] = []

        def work(mine: list[str]) -> None:
            try:
                # bounded: a store that hands a delivery out twice fails, not hangs
                while len(mine) <= len(ids) and (claims := storage.claim(T0, limit=3, lease=600)):
                    mine.extend(c.delivery.id for c in claims)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(mine,)) for mine in got]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        claimed = [i for mine in got for i in mine]
        assert sorted(claimed) == ids

    # -- record_attempt --------------------------------------------------------------

    def test_success(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        attempt = make_attempt(claim, started_at=T0 + 1, elapsed=0.5, url="https://example.com/v2")
        ok = storage.record_attempt(
            claim, attempt, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 1.5,
        )  # fmt: skip
        assert ok is True
        assert storage.outstanding() == (0, None)
        assert storage.claim(T0 + 1000, limit=10, lease=60) == []

    def test_retry_then_success(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 30,
            finished_at=None,
        )  # fmt: skip
        assert storage.outstanding() == (1, T0 + 30)
        assert storage.claim(T0 + 29, limit=10, lease=60) == []

        again = claim_one(storage, T0 + 30)
        delivery = again.delivery
        assert delivery.status is DeliveryStatus.RETRYING
        assert delivery.attempts == 1
        assert delivery.finished_at is None
        assert delivery.response_status == 503
        assert delivery.response_body == "busy"
        second = make_attempt(again, number=2, started_at=T0 + 30, elapsed=1.0)
        assert storage.record_attempt(
            again, second, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 31,
        )  # fmt: skip
        assert storage.outstanding() == (0, None)

    def test_failure(self, storage: Outbox) -> None:
        fail_once(storage)
        assert storage.outstanding() == (0, None)

    def test_record_attempt_keeps_the_values_given(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 10,
            finished_at=None,
        )  # fmt: skip
        again = claim_one(storage, T0 + 10)
        second = make_attempt(
            again, number=5, url="https://example.com/moved", response_status=None,
            response_body=None, error="timed out",
        )  # fmt: skip
        # no rules in the store: it keeps a finished status with a due time as given
        assert storage.record_attempt(
            again, second, status=DeliveryStatus.SUCCEEDED, next_attempt_at=T0 + 999,
            finished_at=T0 + 7,
        )  # fmt: skip
        assert storage.outstanding() == (1, T0 + 999)
        assert storage.claim(T0 + 998, limit=10, lease=60) == []
        third = claim_one(storage, T0 + 999)
        assert undue(third.delivery) == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.SUCCEEDED,
            attempts=5,  # the attempt's number, not a count
            next_attempt_at=None,
            url="https://example.com/moved",
            response_status=None,  # copied from the attempt, not kept from the last one
            response_body=None,
            error="timed out",
            finished_at=T0 + 7,
        )

    def test_record_attempt_with_a_lost_lease_changes_nothing(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        stale = claim_one(storage, T0, lease=10)
        fresh = claim_one(storage, T0 + 10, lease=10)
        before = storage.outstanding()
        ok = storage.record_attempt(
            stale, make_attempt(stale), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0,
        )  # fmt: skip
        assert ok is False
        assert storage.outstanding() == before == (1, T0 + 20)
        assert storage.claim(T0 + 15, limit=10, lease=10) == []  # fresh's lease still holds
        assert storage.record_attempt(
            fresh, make_attempt(fresh), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 10,
        )  # fmt: skip
        assert storage.outstanding() == (0, None)

    def test_a_lease_is_used_once(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        first = make_attempt(claim, response_status=500)
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5,
            finished_at=None,
        )  # fmt: skip
        again = storage.record_attempt(
            claim,
            make_attempt(claim, number=2),
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=T0 + 1,
        )
        assert again is False
        assert storage.outstanding() == (1, T0 + 5)
        after = claim_one(storage, T0 + 5).delivery
        assert after.status is DeliveryStatus.RETRYING
        assert after.attempts == 1
        assert after.response_status == 500

    # -- what a pipelined worker needs: passing over, batches, giving back -----------

    def test_claim_passes_over_excluded_endpoints(self, storage: Outbox) -> None:
        enqueue(
            storage,
            make_delivery("slow1", webhook="slow"),
            make_delivery("fast1", webhook="fast", created_at=T0 + 1),
            make_delivery("slow2", webhook="slow", created_at=T0 + 2),
            make_delivery("other", team="other", webhook="slow", created_at=T0 + 3),
        )
        now = T0 + 10
        got = storage.claim(now, limit=10, lease=60, exclude=[("ml-team", "slow")])
        # the same webhook name in another team is not passed over
        assert [c.delivery.id for c in got] == ["fast1", "other"]
        # passed over, slow1 and slow2 stay due as they were (at T0), not leased
        assert storage.outstanding() == (4, T0)
        later = storage.claim(now, limit=10, lease=60)
        assert [c.delivery.id for c in later] == ["slow1", "slow2"]  # in the usual order
        assert [c.lease_until for c in later] == [now + 60, now + 60]
        assert storage.claim(now, limit=10, lease=60) == []

    def test_claim_excludes_exact_team_and_webhook_pairs(self, storage: Outbox) -> None:
        enqueue(
            storage,
            make_delivery("ml-a", webhook="a"),
            make_delivery("ml-b", webhook="b", created_at=T0 + 1),
            make_delivery("other-a", team="other", webhook="a", created_at=T0 + 2),
            make_delivery("other-b", team="other", webhook="b", created_at=T0 + 3),
            make_delivery("ml-A", webhook="A", created_at=T0 + 4),
            make_delivery("ml-a2", webhook="a2", created_at=T0 + 5),
        )
        # pairs, not a set of teams and a set of webhooks: ml-team's "b" and other's "a"
        # are not excluded; names match exactly ("A" and "a2" are not "a")
        exclude = frozenset({("ml-team", "a"), ("other", "b")})
        got = storage.claim(T0 + 10, limit=10, lease=60, exclude=exclude)
        assert [c.delivery.id for c in got] == ["ml-b", "other-a", "ml-A", "ml-a2"]
        rest = storage.claim(T0 + 10, limit=10, lease=60)
        assert [c.delivery.id for c in rest] == ["ml-a", "other-b"]

    def test_claim_limit_counts_only_what_it_claims(self, storage: Outbox) -> None:
        enqueue(
            storage,
            *(make_delivery(f"s{i}", webhook="slow", created_at=T0 + i) for i in range(1, 6)),
            make_delivery("f1", webhook="fast", created_at=T0 + 10),
            make_delivery("f2", webhook="fast", created_at=T0 + 11),
            make_delivery("f3", webhook="fast", created_at=T0 + 12),
        )
        exclude = [("ml-team", "slow")]

        def ids(limit: int, exclude: list[tuple[str, str]]) -> list[str]:
            claims = storage.claim(T0 + 20, limit=limit, lease=60, exclude=exclude)
            return [c.delivery.id for c in claims]

        # the five passed over come first, and do not use up the limit
        assert ids(2, exclude) == ["f1", "f2"]
        assert ids(2, exclude) == ["f3"]
        assert ids(2, exclude) == []
        assert ids(10, []) == ["s1", "s2", "s3", "s4", "s5"]

    def test_claim_excluding_an_endpoint_with_nothing_due_changes_nothing(
        self, storage: Outbox
    ) -> None:
        enqueue(
            storage,
            make_delivery("a", next_attempt_at=T0 + 1),
            make_delivery("b", next_attempt_at=T0 + 2),
            make_delivery("c", next_attempt_at=T0 + 3, team="other"),
            make_delivery("idle", webhook="idle", next_attempt_at=T0 + 50),
        )
        # "idle" has a delivery not due yet; "never" and the other team's "idle" have none
        exclude = [("ml-team", "idle"), ("ml-team", "never"), ("other", "idle")]
        now = T0 + 10
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60, exclude=exclude)] == [
            "a",
            "b",
        ]
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60, exclude=exclude)] == [
            "c"
        ]
        assert storage.outstanding() == (4, T0 + 50)
        [idle] = storage.claim(T0 + 50, limit=10, lease=60, exclude=[("ml-team", "never")])
        assert idle.delivery.id == "idle"

    def test_claim_passes_over_many_endpoints(self, storage: Outbox) -> None:
        # a worker passes over up to MAX_EXCLUDED (200) endpoints in one claim
        names = [f"hook-{i:03}" for i in range(MAX_EXCLUDED)]
        enqueue(
            storage,
            *(make_delivery(f"d-{n}", webhook=n, created_at=T0 + i) for i, n in enumerate(names)),
            make_delivery("free", webhook="free", created_at=T0 + 1000),
        )
        exclude = [("ml-team", name) for name in names]
        [claim] = storage.claim(T0 + 2000, limit=10, lease=60, exclude=exclude)
        assert claim.delivery.id == "free"
        later = storage.claim(T0 + 2000, limit=1000, lease=60)
        assert [c.delivery.id for c in later] == [f"d-{n}" for n in names]

    def test_record_attempts_records_a_batch_item_by_item(self, storage: Outbox) -> None:
        enqueue(
            storage,
            make_delivery("a"),
            make_delivery("b", created_at=T0 + 1),
            make_delivery("c", created_at=T0 + 2),
        )
        a, b, c = storage.claim(T0, limit=3, lease=10)
        storage.requeue("b", T0)  # b's lease is broken: its result must not land
        answers = storage.record_attempts(
            [
                AttemptResult(a, make_attempt(a), DeliveryStatus.SUCCEEDED, None, T0 + 1),
                AttemptResult(b, make_attempt(b), DeliveryStatus.SUCCEEDED, None, T0 + 1),
                AttemptResult(
                    c,
                    make_attempt(c, response_status=503, response_body="busy"),
                    DeliveryStatus.RETRYING,
                    T0 + 30,
                    None,
                ),
            ]
        )
        assert answers == [True, False, True]
        # a finished; b due again as requeued, untouched; c retrying at T0 + 30
        assert storage.outstanding() == (2, T0)
        again = claim_one(storage, T0)
        assert again.delivery.id == "b"
        assert again.delivery.status is DeliveryStatus.PENDING
        assert again.delivery.attempts == 0
        assert storage.claim(T0 + 29, limit=10, lease=60) == []
        retried = claim_one(storage, T0 + 30)
        assert undue(retried.delivery) == undue(
            attrs.evolve(
                make_delivery("c", created_at=T0 + 2),
                status=DeliveryStatus.RETRYING,
                attempts=1,
                response_status=503,
                response_body="busy",
            )
        )

    def test_record_attempts_refuses_a_lease_lost_to_a_later_claim(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("a"), make_delivery("b", created_at=T0 + 1))
        a = claim_one(storage, T0, lease=600)
        stale = claim_one(storage, T0, lease=10)  # b, claimed again once its lease ends
        fresh = claim_one(storage, T0 + 10, lease=10)
        assert fresh.delivery.id == stale.delivery.id == "b"
        answers = storage.record_attempts(
            [
                AttemptResult(a, make_attempt(a), DeliveryStatus.SUCCEEDED, None, T0 + 1),
                AttemptResult(stale, make_attempt(stale), DeliveryStatus.SUCCEEDED, None, T0 + 1),
            ]
        )
        assert answers == [True, False]
        assert storage.outstanding() == (1, T0 + 20)  # a finished; b still fresh's
        assert storage.claim(T0 + 15, limit=10, lease=60) == []
        late = AttemptResult(fresh, make_attempt(fresh), DeliveryStatus.SUCCEEDED, None, T0 + 11)
        assert storage.record_attempts([late]) == [True]
        assert storage.outstanding() == (0, None)

    def test_record_attempts_uses_a_lease_once_within_a_batch(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        busy = make_attempt(claim, response_status=503, response_body="busy")
        answers = storage.record_attempts(
            [
                AttemptResult(claim, busy, DeliveryStatus.RETRYING, T0 + 30, None),
                AttemptResult(
                    claim, make_attempt(claim, number=2), DeliveryStatus.SUCCEEDED, None, T0 + 1
                ),
            ]
        )
        assert answers == [True, False]
        assert storage.outstanding() == (1, T0 + 30)
        after = claim_one(storage, T0 + 30).delivery
        assert after.status is DeliveryStatus.RETRYING
        assert after.attempts == 1
        assert after.response_status == 503

    def test_record_attempts_of_nothing(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage, T0, lease=60)
        assert storage.record_attempts([]) == []
        assert storage.outstanding() == (1, T0 + 60)
        assert storage.claim(T0 + 59, limit=10, lease=60) == []
        assert storage.record_attempt(
            claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 1,
        )  # fmt: skip

    def test_release_gives_a_lease_back_unused(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("a"), make_delivery("b", created_at=T0 + 1))
        a, b = storage.claim(T0, limit=2, lease=600)
        storage.requeue("b", T0)  # b's lease is no longer held
        assert storage.release([a, b], T0 + 50) == 1

        def late() -> bool:
            return storage.record_attempt(
                a, make_attempt(a), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
                finished_at=T0 + 1,
            )  # fmt: skip

        assert late() is False  # the released claim's lease is gone: its result cannot land
        assert storage.outstanding() == (2, T0)
        # a is due at the time given, not before
        assert [c.delivery.id for c in storage.claim(T0 + 49, limit=10, lease=60)] == ["b"]
        again = claim_one(storage, T0 + 50)
        assert again.delivery.id == "a"
        assert undue(again.delivery) == undue(make_delivery("a"))  # no attempt, still PENDING
        assert again.lease_token != a.lease_token
        assert late() is False
        assert storage.record_attempt(
            again, make_attempt(again), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 51,
        )  # fmt: skip

    def test_release_changes_only_the_due_time(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        busy = make_attempt(
            claim, url="https://example.com/v2", response_status=503, response_body="busy"
        )
        assert storage.record_attempt(
            claim, busy, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5,
            finished_at=None,
        )  # fmt: skip
        retry = claim_one(storage, T0 + 5, lease=600)
        # due again at the time given, even before the lease would have ended
        assert storage.release([retry], T0 + 6) == 1
        assert storage.outstanding() == (1, T0 + 6)
        assert storage.claim(T0 + 5.5, limit=10, lease=60) == []
        again = claim_one(storage, T0 + 6)
        assert undue(again.delivery) == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.RETRYING,
            attempts=1,
            next_attempt_at=None,
            url="https://example.com/v2",
            response_status=503,
            response_body="busy",
        )

    def test_release_only_leases_still_held(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        stale = claim_one(storage, T0, lease=10)
        fresh = claim_one(storage, T0 + 10, lease=10)  # claimed again once the lease ended
        assert storage.release([stale], T0 + 11) == 0
        assert storage.outstanding() == (1, T0 + 20)  # fresh's lease still holds
        assert storage.claim(T0 + 15, limit=10, lease=60) == []
        assert storage.release([], T0) == 0
        assert storage.release([fresh, fresh], T0 + 30) == 1  # given back once
        assert storage.outstanding() == (1, T0 + 30)
        assert storage.record_attempt(
            fresh, make_attempt(fresh), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 12,
        ) is False  # fmt: skip

    def test_a_failing_streak_keeps_its_start_until_a_success(self, storage: Outbox) -> None:
        start = T0 + 0.5  # kept to the fraction of a second
        assert storage.note_failure("ml-team", "hook", start) == start
        assert storage.note_failure("ml-team", "hook", T0 + 100) == start
        assert storage.note_failure("ml-team", "hook", T0 + 86_400 * 30) == start
        storage.note_success("ml-team", "hook")
        # the next failure starts a new streak, which keeps its own start
        assert storage.note_failure("ml-team", "hook", T0 + 200.25) == T0 + 200.25
        assert storage.note_failure("ml-team", "hook", T0 + 300) == T0 + 200.25
        storage.note_success("ml-team", "hook")
        storage.note_success("ml-team", "hook")  # nothing to forget: no error
        storage.note_success("ml-team", "never-failed")
        assert storage.note_failure("ml-team", "hook", T0 + 400) == T0 + 400

    def test_failing_streaks_are_per_team_and_webhook(self, storage: Outbox) -> None:
        assert storage.note_failure("ml-team", "hook", T0) == T0
        assert storage.note_failure("ml-team", "other", T0 + 5) == T0 + 5
        assert storage.note_failure("other-team", "hook", T0 + 6) == T0 + 6
        assert storage.note_failure("ml-team", "Hook", T0 + 7) == T0 + 7
        storage.note_success("ml-team", "hook")
        # only that webhook's streak is forgotten
        assert storage.note_failure("ml-team", "other", T0 + 300) == T0 + 5
        assert storage.note_failure("other-team", "hook", T0 + 300) == T0 + 6
        assert storage.note_failure("ml-team", "Hook", T0 + 300) == T0 + 7
        assert storage.note_failure("ml-team", "hook", T0 + 300) == T0 + 300
        storage.note_success("other-team", "hook")
        assert storage.note_failure("ml-team", "hook", T0 + 400) == T0 + 300
        assert storage.note_failure("other-team", "hook", T0 + 400) == T0 + 400

    # -- requeue ---------------------------------------------------------------------

    def test_requeue_keeps_the_message_id(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage)
        assert storage.record_attempt(
            claim, make_attempt(claim, response_status=400), status=DeliveryStatus.FAILED,
            next_attempt_at=None, finished_at=T0 + 0.25,
        )  # fmt: skip
        requeued = storage.requeue("d1", T0 + 500)
        assert requeued.id == "d1"
        assert requeued.message_id == "msg_d1"
        assert requeued.status is DeliveryStatus.PENDING
        assert requeued.next_attempt_at == T0 + 500
        assert requeued.finished_at is None
        assert requeued.attempts == 1
        assert storage.outstanding() == (1, T0 + 500)
        assert storage.claim(T0 + 499, limit=10, lease=60) == []
        again = claim_one(storage, T0 + 500)
        assert undue(again.delivery) == undue(requeued)
        assert again.sealed_body == sealed_body("d1")

    def test_requeue_breaks_a_lease(self, storage: Outbox) -> None:
        enqueue(storage, make_delivery("d1"))
        claim = claim_one(storage, T0, lease=600)

        def record() -> bool:
            return storage.record_attempt(
                claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED,
                next_attempt_at=None, finished_at=T0 + 1,
            )  # fmt: skip

        storage.requeue("d1", T0 + 1)
        assert record() is False  # broken at once, not only when someone claims it again
        assert claim_one(storage, T0 + 1).delivery.id == "d1"
        assert record() is False

    def test_requeue_missing(self, storage: Outbox) -> None:
        with pytest.raises(NotFoundError):
            storage.requeue("missing", T0)

    # -- outstanding -----------------------------------------------------------------

    def test_outstanding_counts_and_earliest_due(self, storage: Outbox) -> None:
        assert storage.outstanding() == (0, None)
        enqueue(
            storage,
            make_delivery("a", next_attempt_at=T0 + 20),
            make_delivery("b", next_attempt_at=T0 + 5),
            make_delivery("c", next_attempt_at=T0 + 40),
        )
        assert storage.outstanding() == (3, T0 + 5)

        claim = claim_one(storage, T0 + 5, lease=100)  # b, leased until T0 + 105
        assert storage.outstanding() == (3, T0 + 20)
        assert storage.record_attempt(
            claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None,
            finished_at=T0 + 5.25,
        )  # fmt: skip
        assert storage.outstanding() == (2, T0 + 20)

        claims = storage.claim(T0 + 40, limit=10, lease=100)
        assert sorted(c.delivery.id for c in claims) == ["a", "c"]
        assert storage.outstanding() == (2, T0 + 140)
