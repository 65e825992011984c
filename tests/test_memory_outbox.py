"""MemoryStorage's due index against a plain recomputation over the history.

The store keeps an index of what is due so that ``claim`` and
``outstanding`` cost what is outstanding, not every delivery ever made.
These tests check behaviour only: a model that rescans every delivery, as
the store once did, must agree with it after any sequence of enqueues,
claims, recorded attempts (each status) and requeues.
"""

from __future__ import annotations

import random

import attrs
import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import Claim, DeliveryStatus, OutboxEntry
from hookwise.testing.helpers import T0, make_attempt, make_delivery

# Few distinct times, so ties in (next_attempt_at, created_at) are common.
times = st.integers(min_value=0, max_value=6).map(lambda n: T0 + n)
maybe_times = st.one_of(st.none(), times)


@attrs.define
class _Row:
    next_attempt_at: float | None
    created_at: float
    status: DeliveryStatus = DeliveryStatus.PENDING
    token: str | None = None


class _Model:
    """The outbox rules, recomputed from every delivery each time."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}  # in enqueue order

    def claim(self, now: float, limit: int, lease: float) -> list[str]:
        due = [
            (delivery_id, row)
            for delivery_id, row in self.rows.items()
            if row.next_attempt_at is not None and row.next_attempt_at <= now
        ]
        due.sort(key=lambda item: (item[1].next_attempt_at, item[1].created_at))
        chosen = due[: max(limit, 0)]
        for _, row in chosen:
            row.next_attempt_at = now + lease
        return [delivery_id for delivery_id, _ in chosen]

    def outstanding(self) -> tuple[int, float | None]:
        times = [r.next_attempt_at for r in self.rows.values() if r.next_attempt_at is not None]
        return len(times), min(times, default=None)


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStorage()
        self.model = _Model()
        self.claims: list[Claim] = []  # every claim handed out, stale ones too
        self.made = 0

    @initialize()
    def start(self) -> None:
        assert self.store.outstanding() == (0, None)

    @rule(rows=st.lists(st.tuples(times, maybe_times), min_size=1, max_size=5))
    def enqueue(self, rows: list[tuple[float, float | None]]) -> None:
        entries = []
        for created_at, next_attempt_at in rows:
            delivery_id = f"d{self.made}"
            self.made += 1
            delivery = make_delivery(
                delivery_id, created_at=created_at, next_attempt_at=next_attempt_at
            )
            entries.append(OutboxEntry(delivery, b"x"))
            self.model.rows[delivery_id] = _Row(next_attempt_at, created_at)
        assert self.store.enqueue(entries) == [entry.delivery for entry in entries]

    @rule(
        now=times, limit=st.integers(min_value=-1, max_value=6), lease=st.sampled_from([0, 1, 30])
    )
    def claim(self, now: float, limit: int, lease: float) -> None:
        claims = self.store.claim(now, limit=limit, lease=lease)
        assert [c.delivery.id for c in claims] == self.model.claim(now, limit, lease)
        for claim in claims:
            assert claim.lease_until == now + lease
            self.model.rows[claim.delivery.id].token = claim.lease_token
        self.claims.extend(claims)

    @precondition(lambda self: bool(self.claims))
    @rule(
        data=st.data(),
        status=st.sampled_from(list(DeliveryStatus)),
        next_attempt_at=maybe_times,
    )
    def record_attempt(
        self, data: st.DataObject, status: DeliveryStatus, next_attempt_at: float | None
    ) -> None:
        claim = data.draw(st.sampled_from(self.claims))
        if status.finished:
            next_attempt_at, finished_at = None, T0
        else:
            finished_at = None
        row = self.model.rows[claim.delivery.id]
        expected = row.token == claim.lease_token
        recorded = self.store.record_attempt(
            claim,
            make_attempt(claim),
            status=status,
            next_attempt_at=next_attempt_at,
            finished_at=finished_at,
        )
        assert recorded is expected
        if expected:
            row.token, row.status, row.next_attempt_at = None, status, next_attempt_at

    @precondition(lambda self: bool(self.model.rows))
    @rule(data=st.data(), now=times)
    def requeue(self, data: st.DataObject, now: float) -> None:
        delivery_id = data.draw(st.sampled_from(sorted(self.model.rows)))
        updated = self.store.requeue(delivery_id, now)
        row = self.model.rows[delivery_id]
        row.token, row.status, row.next_attempt_at = None, DeliveryStatus.PENDING, now
        assert updated.next_attempt_at == now

    @invariant()
    def agrees(self) -> None:
        assert self.store.outstanding() == self.model.outstanding()
        for delivery_id, row in self.model.rows.items():
            stored = self.store.get_delivery(delivery_id)
            assert stored is not None
            assert (stored.next_attempt_at, stored.status) == (row.next_attempt_at, row.status)


OutboxMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_the_due_index_agrees_with_a_rescan = OutboxMachine.TestCase


def test_finished_deliveries_leave_the_index() -> None:
    store = MemoryStorage()
    store.enqueue([OutboxEntry(make_delivery(f"d{i}"), b"x") for i in range(500)])
    for claim in store.claim(T0, limit=500, lease=30):
        store.record_attempt(
            claim,
            make_attempt(claim),
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=T0,
        )
    assert store.outstanding() == (0, None)
    assert store.claim(T0 + 1_000, limit=10, lease=30) == []
    # Stale entries are dropped, not kept for every delivery ever made.
    assert len(store._due_heap) <= 64


@pytest.mark.parametrize("seed", range(5))
def test_a_long_random_run_agrees_with_a_rescan(seed: int) -> None:
    rng = random.Random(seed)
    store, model = MemoryStorage(), _Model()
    live: list[Claim] = []
    for step in range(600):
        now = T0 + step / 10
        action = rng.random()
        if action < 0.3:
            delivery_id = f"d{step}"
            created_at = T0 + rng.randint(0, 3)
            due = None if rng.random() < 0.1 else now + rng.randint(0, 3)
            store.enqueue(
                [
                    OutboxEntry(
                        make_delivery(delivery_id, created_at=created_at, next_attempt_at=due), b"x"
                    )
                ]
            )
            model.rows[delivery_id] = _Row(due, created_at)
        elif action < 0.6:
            limit = rng.randint(0, 4)
            claims = store.claim(now, limit=limit, lease=2)
            assert [c.delivery.id for c in claims] == model.claim(now, limit, 2)
            for claim in claims:
                model.rows[claim.delivery.id].token = claim.lease_token
            live.extend(claims)
        elif action < 0.9 and live:
            claim = live.pop(rng.randrange(len(live)))
            status = rng.choice(list(DeliveryStatus))
            later = None if status.finished else now + rng.randint(0, 5)
            row = model.rows[claim.delivery.id]
            expected = row.token == claim.lease_token
            recorded = store.record_attempt(
                claim,
                make_attempt(claim),
                status=status,
                next_attempt_at=later,
                finished_at=now if status.finished else None,
            )
            assert recorded is expected
            if expected:
                row.token, row.status, row.next_attempt_at = None, status, later
        elif model.rows:
            delivery_id = rng.choice(sorted(model.rows))
            store.requeue(delivery_id, now)
            row = model.rows[delivery_id]
            row.token, row.status, row.next_attempt_at = None, DeliveryStatus.PENDING, now
        assert store.outstanding() == model.outstanding()
