"""The :class:`~hookwise.storage.protocol.RunStateStore` contract: run metric
windows kept across a restart."""

from __future__ import annotations

from hookwise.storage.protocol import RunStateStore, RunWindow
from hookwise.testing.helpers import T0

__all__ = ["RunStateStoreContract"]


class RunStateStoreContract:
    """Every behaviour of :class:`~hookwise.storage.protocol.RunStateStore`, as
    pytest tests: what the run tracker relies on to go on after a restart.

    Subclass it and define a ``storage`` fixture returning a fresh, empty
    ``RunStateStore`` (yield it to close it afterwards). (Cooldowns are the
    Outbox's: see :class:`~hookwise.testing.OutboxContract`.)
    """

    def test_is_a_run_state_store(self, storage: RunStateStore) -> None:
        assert isinstance(storage, RunStateStore)

    def test_run_state_starts_empty(self, storage: RunStateStore) -> None:
        assert storage.load_windows("ml-team/training/run-1") == []

    def test_windows_are_saved_replaced_and_deleted_per_run(self, storage: RunStateStore) -> None:
        run, other = "ml-team/training/run-1", "ml-team/training/run-2"
        storage.save_windows(
            [
                RunWindow(run, "ml-team\x00a\x00cond", '{"on": false, "values": [1.0]}', T0),
                RunWindow(run, "ml-team\x00b\x00cond", '{"on": true, "values": []}', T0),
                RunWindow(other, "ml-team\x00a\x00cond", '{"on": false, "values": [9.0]}', T0),
            ]
        )
        storage.save_windows(
            [RunWindow(run, "ml-team\x00a\x00cond", '{"on": true, "values": [1.0, 2.0]}', T0 + 1)]
        )
        saved = sorted(storage.load_windows(run), key=lambda w: w.automation)
        assert saved == [
            RunWindow(run, "ml-team\x00a\x00cond", '{"on": true, "values": [1.0, 2.0]}', T0 + 1),
            RunWindow(run, "ml-team\x00b\x00cond", '{"on": true, "values": []}', T0),
        ]
        storage.delete_windows(run)
        storage.delete_windows("ml-team/training/never-seen")
        assert storage.load_windows(run) == []
        assert [w.state for w in storage.load_windows(other)] == ['{"on": false, "values": [9.0]}']
        storage.save_windows([])
