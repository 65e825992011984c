"""Auto-disable: a webhook that has failed for ``disable_after`` seconds,
with no success in between, is turned off (5 days by default, as Svix).

The start of each failing streak is kept in storage (``note_failure`` /
``note_success``), so it holds across restarts and across workers. A worker
remembers what it last saw to write only when a streak starts or ends, and
at most once a minute while nothing changes, so a healthy endpoint costs
one small write a minute, not one per delivery.
"""

from __future__ import annotations

import datetime
import time

from hookwise.model import slack_secret
from hookwise.outcome import Transition
from hookwise.scheduler import Job
from hookwise.storage.protocol import Outbox

__all__ = ["RECHECK", "Health"]

RECHECK = 60.0
"""Seconds a worker trusts what it last saw of a webhook's streak."""


class Health:
    def __init__(self, storage: Outbox, disable_after: float | None) -> None:
        self._storage = storage
        self._after = disable_after
        self._seen: dict[tuple[str, str], tuple[float | None, float]] = {}  # since, seen at

    def after(self, job: Job, transition: Transition) -> str | None:
        """Note what this attempt says of its webhook; the reason to turn the
        webhook off, or None."""
        delivery = job.claim.delivery
        if self._after is None or transition.healthy is None or slack_secret(delivery.webhook):
            return None
        key = delivery.team, delivery.webhook
        now = time.monotonic()
        since, seen = self._seen.get(key, (None, -RECHECK))
        fresh = now - seen < RECHECK
        at = transition.attempt.started_at
        if transition.healthy:
            if since is not None or not fresh:
                self._storage.note_success(*key)
                self._seen[key] = None, now
            return None
        if since is None or not fresh or at - since >= self._after:
            # a streak starts, or it may be time: ask the store, which knows
            # whether another worker saw a success since
            since = self._storage.note_failure(*key, at)
            self._seen[key] = since, now
        if at - since < self._after:
            return None
        self._seen.pop(key, None)
        began = datetime.datetime.fromtimestamp(since, datetime.timezone.utc)
        return (
            f"failing since {began:%Y-%m-%d %H:%M} UTC ({(at - since) / 86400:.1f} days), "
            "no success in between"
        )
