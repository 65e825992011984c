"""The storage conformance kit: check your own store, one role at a time.

The storage protocol is split by role (:class:`~hookwise.storage.protocol.ConfigStore`,
:class:`~hookwise.storage.protocol.Outbox`, :class:`~hookwise.storage.protocol.History`,
:class:`~hookwise.storage.protocol.RunStateStore`), and so is the kit: one
contract class per role, and :class:`StorageContract` for a store that plays
them all. Subclass the contract(s) your store implements in a test module and
provide a ``storage`` fixture that returns a fresh, empty store (yield it to
close it afterwards); pytest then runs every ``test_*`` method against it::

    import pytest
    from hookwise.testing import RunStateStoreContract, StorageContract

    class TestMyStorage(StorageContract):  # every role
        @pytest.fixture
        def storage(self, tmp_path):
            store = MyStorage(tmp_path / "hooks.db")
            yield store
            store.close()

    class TestMyRunState(RunStateStoreContract):  # just one role
        @pytest.fixture
        def storage(self):
            return MyRunStateStore()

:class:`HistoryContract` reads back what an Outbox stored, so its fixture must
be both an Outbox and a History (:class:`OutboxWithHistory`).

The contracts are what the dispatchers and ``Admin`` rely on, so a store that
passes can back them. The tests pass time in explicitly, as the protocol
does, need no key (sealed bytes are any bytes, kept as given), and need a
store that is safe to call from several threads.

This package imports pytest; import it from tests only.
"""

from __future__ import annotations

from hookwise.storage.protocol import Storage
from hookwise.testing.config import ConfigStoreContract
from hookwise.testing.helpers import (
    T0,
    claim_one,
    enqueue,
    fail_once,
    make_attempt,
    make_automation,
    make_cooldown,
    make_delivery,
    make_entry,
    make_secret,
    make_webhook,
    sealed_body,
    undue,
)
from hookwise.testing.history import HistoryContract, OutboxWithHistory
from hookwise.testing.outbox import OutboxContract
from hookwise.testing.runstate import RunStateStoreContract

__all__ = [
    "T0",
    "ConfigStoreContract",
    "HistoryContract",
    "OutboxContract",
    "OutboxWithHistory",
    "RunStateStoreContract",
    "StorageContract",
    "claim_one",
    "enqueue",
    "fail_once",
    "make_attempt",
    "make_automation",
    "make_cooldown",
    "make_delivery",
    "make_entry",
    "make_secret",
    "make_webhook",
    "sealed_body",
    "undue",
]


class StorageContract(ConfigStoreContract, OutboxContract, HistoryContract, RunStateStoreContract):
    """Every role of :class:`~hookwise.Storage`, as pytest tests: the four
    role contracts, and a check that the store is a ``Storage``.

    Subclass it and define a ``storage`` fixture; see the package docstring.
    """

    def test_is_a_storage(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)
