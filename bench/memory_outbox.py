"""What a ``MemoryStorage.claim`` costs with a long history behind it.

Two stores hold the same 1,000 due deliveries; one also holds 80,000
finished ones (enqueued finished, so building it is cheap). Each is
drained in claims of 10 (every claim recorded as delivered), and the time
per claim is printed for both, with the ratio.
A claim should cost what is due, not the whole history: the goal is a
ratio near 1.

Run: ``python bench/memory_outbox.py`` (add ``--quick`` for 8,000 finished).
"""

from __future__ import annotations

import sys
import time

from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import DeliveryStatus, OutboxEntry
from hookwise.testing.helpers import T0, make_attempt, make_delivery

QUICK = "--quick" in sys.argv
HISTORY = 8_000 if QUICK else 80_000
DUE = 1_000
BATCH = 10
LEASE = 30.0


def finish(store: MemoryStorage, count: int, now: float) -> None:
    """Deliver ``count`` deliveries, in claims of ``BATCH``, until none is due."""
    done = 0
    while done < count:
        claims = store.claim(now, limit=BATCH, lease=LEASE)
        if not claims:
            break
        for claim in claims:
            store.record_attempt(
                claim,
                make_attempt(claim),
                status=DeliveryStatus.SUCCEEDED,
                next_attempt_at=None,
                finished_at=now,
            )
        done += len(claims)


def build(history: int) -> MemoryStorage:
    """A store with ``history`` finished deliveries and ``DUE`` due ones."""
    store = MemoryStorage()
    for start in range(0, history, 1_000):
        finished = [
            make_delivery(
                f"old{i}",
                status=DeliveryStatus.SUCCEEDED,
                attempts=1,
                next_attempt_at=None,
                finished_at=T0,
            )
            for i in range(start, min(start + 1_000, history))
        ]
        store.enqueue([OutboxEntry(delivery, b"x") for delivery in finished])
    due = T0 + 1
    store.enqueue(
        [
            OutboxEntry(make_delivery(f"new{i}", created_at=due, next_attempt_at=due), b"x")
            for i in range(DUE)
        ]
    )
    return store


def per_claim(store: MemoryStorage) -> float:
    """Seconds per claim (with its records) to drain the due deliveries."""
    now = T0 + 2
    claims = -(-DUE // BATCH)
    started = time.perf_counter()
    finish(store, DUE, now)
    elapsed = time.perf_counter() - started
    assert store.outstanding() == (0, None), store.outstanding()
    return elapsed / claims


def main() -> None:
    # Fresh stores each round, the two taking turns; keep each one's best.
    best_empty = best_full = float("inf")
    for _ in range(3):
        best_empty = min(best_empty, per_claim(build(0)))
        best_full = min(best_full, per_claim(build(HISTORY)))
    print(f"claim of {BATCH}, no history:          {best_empty * 1e6:10.1f} us")
    print(f"claim of {BATCH}, {HISTORY:,} finished: {best_full * 1e6:10.1f} us")
    print(f"ratio (history / none):           {best_full / best_empty:10.2f}x")


if __name__ == "__main__":
    main()
