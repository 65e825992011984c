"""Run metric windows across restarts: the tracker's windows saved as they
move, loaded the first time a run is seen again, forgotten when it ends.

Failures are logged and retried, never raised: a storage hiccup must not
stop training.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from hookwise.events import Event, RunState
from hookwise.storage.protocol import RunStateStore, RunWindow
from hookwise.tracker import RunTracker

__all__ = ["Checkpointer", "stored_run"]

logger = logging.getLogger("hookwise")


def stored_run(key: tuple[str, str, str]) -> str:
    """How storage names a run: ``entity/project/run id`` (none holds a ``/``)."""
    return "/".join(key)


class Checkpointer:
    """The run tracker and the storage of its windows. ``lock`` guards the
    tracker: threads of one training job may share a dispatcher."""

    def __init__(self, store: RunStateStore, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self.lock = threading.Lock()
        self._saving = threading.Lock()  # orders saves and deletes
        self.tracker = RunTracker(load=self.load)

    def load(self, run: tuple[str, str, str]) -> Mapping[str, str]:
        """The windows saved for ``run`` (automation key -> state); none if
        storage fails."""
        try:
            saved = self._store.load_windows(stored_run(run))
        except Exception:  # start afresh
            logger.warning("could not load the saved windows of run %s", run[2], exc_info=True)
            return {}
        return {window.automation: window.state for window in saved}

    def save(self) -> None:
        """Save the windows that moved since the last save (a few per run).

        One save at a time, and deletes wait for it: a snapshot taken before
        a run ended, or before a newer snapshot, must not land after it. A
        failed save is tried again at the next one.
        """
        with self._saving:
            with self.lock:
                checkpoint = self.tracker.checkpoint()
            if not checkpoint.rows:
                return
            now = self._clock()
            try:
                self._store.save_windows(
                    [
                        RunWindow(stored_run(run), automation, state, now)
                        for run, automation, state in checkpoint.rows
                    ]
                )
            except Exception:
                logger.warning("could not save run windows; will try again", exc_info=True)
                with self.lock:
                    self.tracker.retry_later(checkpoint)

    @staticmethod
    def ends_run(event: Event) -> bool:
        """A run that finished or failed logs no more metrics."""
        return event.run is not None and event.state not in (None, RunState.RUNNING)

    def forget(self, event: Event) -> None:
        """Delete the windows of the run ``event`` ended; the rows stay if
        that fails, and the run's next start loads them."""
        assert event.run is not None
        with self._saving:
            try:
                self._store.delete_windows(stored_run(event.run.key))
            except Exception:
                logger.warning(
                    "could not delete the windows of run %s", event.run.id, exc_info=True
                )
