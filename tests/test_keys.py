"""Keys that cannot be mixed up: stores record the key ids they hold, a wrong
key is refused at open, a worker with the wrong key leaves deliveries queued,
and ``rotate-key`` re-seals everything without losing a secret or failing a
delivery."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import hookwise as hw
from hookwise.cli import main
from hookwise.crypto import generate_key_text
from hookwise.vault import Vault, rotate_store
from tests.conftest import LOCAL, SIGNING, TEAM, TOKEN, Receiver, alias_event, setup_team

OLD, NEW = generate_key_text(), generate_key_text()
OLD_KEY, NEW_KEY = hw.SecretKey(OLD), hw.SecretKey(NEW)
ROTATING = hw.SecretKey(NEW, OLD)  # the new key first: it seals, both open
OLD_ID, NEW_ID = OLD_KEY.key_ids[0], NEW_KEY.key_ids[0]


def later(seconds: float) -> Any:
    """A clock ``seconds`` ahead: a restarted worker, once an old lease ran out."""
    return lambda: time.time() + seconds


def secrets_table(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM secrets ORDER BY team, name").fetchall()
    conn.close()
    return rows


def queue_one(store: hw.Storage, url: str, key: hw.SecretKey) -> hw.Delivery:
    with hw.Dispatcher(store, network=LOCAL, key=key, worker=False) as dispatcher:
        [delivery] = dispatcher.handle(alias_event())
    return delivery


class OwnStorage:
    """A user's own Storage: the protocol only, no ``key`` and no key-id
    record, so nothing catches a wrong key before the worker opens a secret."""

    def __init__(self, inner: hw.MemoryStorage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in {"key", "check_key", "key_ids"}:
            raise AttributeError(name)
        return getattr(self._inner, name)


# --- the record and the check at open -------------------------------------------------


def test_opening_with_the_wrong_key_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
        assert store.key_ids() == (OLD_ID,)
    before = secrets_table(db)
    with pytest.raises(hw.SecretKeyError) as info:
        hw.SQLiteStorage(db, key=NEW_KEY)
    text = str(info.value)
    assert OLD_ID in text
    assert NEW_ID in text
    assert "HOOKWISE_SECRET_KEY" in text
    assert OLD not in text
    assert NEW not in text
    assert TOKEN not in text
    assert secrets_table(db) == before  # nothing written under the wrong key
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:  # the right key still opens it
        [record] = store.list_secrets(TEAM)
        assert Vault(OLD_KEY).open_secret(record) == TOKEN


def test_the_wrong_key_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", NEW)
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        hw.SQLiteStorage(db)


def test_an_empty_store_takes_any_key(tmp_path: Path) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        assert store.key_ids() == ()
        hw.Admin(store, network=LOCAL).create_webhook(
            hw.Webhook(team=TEAM, name="hook", url="http://127.0.0.1:1/x")
        )
    with hw.SQLiteStorage(db, key=NEW_KEY) as store:  # webhooks hold no ciphertext
        assert store.key_ids() == ()
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
        assert store.key_ids() == (NEW_ID,)


def test_a_key_list_holding_the_old_key_opens_and_a_partial_one_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="A", value="value-a"))
    with hw.SQLiteStorage(db, key=ROTATING) as store:  # new,old: fine
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="B", value="value-b"))
        assert set(store.key_ids()) == {OLD_ID, NEW_ID}
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        hw.SQLiteStorage(db, key=NEW_KEY).close()  # half-way: opens, and says what waits
    assert OLD_ID in caplog.text
    assert "cannot be opened" in caplog.text


def test_a_schema_3_file_records_its_key_ids_on_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
    with sqlite3.connect(db) as conn:  # what hookwise wrote before key ids were recorded
        conn.execute("DROP TABLE key_ids")
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        hw.SQLiteStorage(db, key=NEW_KEY)
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        assert store.key_ids() == (OLD_ID,)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_admin_and_dispatchers_check_a_key_that_is_not_the_stores(
    kind: str, tmp_path: Path
) -> None:
    store: hw.MemoryStorage | hw.SQLiteStorage = (
        hw.MemoryStorage(key=OLD_KEY)
        if kind == "memory"
        else hw.SQLiteStorage(tmp_path / "hw.db", key=OLD_KEY)
    )
    hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        hw.Admin(store, key=NEW_KEY)
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        hw.Dispatcher(store, key=NEW_KEY, worker=False)
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        hw.AsyncDispatcher(store, key=NEW_KEY, worker=False)
    hw.Admin(store, key=ROTATING)  # a key list that holds the old key is fine
    hw.Dispatcher(store, key=ROTATING, worker=False).close()
    store.close()


# --- a worker with the wrong key ------------------------------------------------------


def test_a_worker_with_the_wrong_key_leaves_deliveries_queued(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", OLD)  # what Admin seals with
    store = OwnStorage(hw.MemoryStorage(key=OLD_KEY))
    setup_team(store, receiver.url)  # type: ignore[arg-type]
    queued = queue_one(store, receiver.url, OLD_KEY)  # type: ignore[arg-type]

    with (
        caplog.at_level(logging.DEBUG, logger="hookwise"),
        hw.Dispatcher(store, network=LOCAL, key=NEW_KEY, worker=False) as wrong,  # type: ignore[arg-type]
    ):
        assert wrong.deliver_due() == 1
        assert wrong.deliver_due() == 0  # not due again at once: it backs off
    delivery = store.get_delivery(queued.id)
    assert delivery is not None
    assert delivery.status is hw.DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.finished_at is None
    assert delivery.next_attempt_at is not None
    assert store.list_attempts(queued.id) == []
    assert receiver.requests == []
    [loud] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "HOOKWISE_SECRET_KEY" in loud.getMessage()
    assert "not failed" in loud.getMessage()
    assert OLD_ID in loud.getMessage()

    # restarted with the right key, once the old claim's lease ran out
    with hw.Dispatcher(store, network=LOCAL, key=OLD_KEY, worker=False, clock=later(600)) as right:  # type: ignore[arg-type]
        assert right.deliver_due() == 1
    delivery = store.get_delivery(queued.id)
    assert delivery is not None
    assert delivery.status is hw.DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    [got] = receiver.requests
    assert got.headers["Authorization"] == f"Bearer {TOKEN}"


def test_half_rotated_file_worker_with_only_the_old_key_waits(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Secrets re-sealed under the new key by another process while a worker
    still runs with the old key alone: its deliveries wait, none fails."""
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        setup_team(store, receiver.url)
        queued = queue_one(store, receiver.url, OLD_KEY)
    with hw.SQLiteStorage(db, key=ROTATING) as store:
        admin = hw.Admin(store, network=LOCAL)
        admin.update_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=TOKEN))
        admin.update_secret(hw.Secret(team=TEAM, name="SIGNING_KEY", value=SIGNING))
        with hw.Dispatcher(store, network=LOCAL, key=OLD_KEY, worker=False) as stale:
            assert stale.deliver_due() == 1
        delivery = store.get_delivery(queued.id)
        assert delivery is not None
        assert delivery.status is hw.DeliveryStatus.PENDING
        assert receiver.requests == []
        with hw.Dispatcher(store, network=LOCAL, worker=False, clock=later(600)) as fixed:
            assert fixed.deliver_due() == 1
        delivery = store.get_delivery(queued.id)
        assert delivery is not None
        assert delivery.status is hw.DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1


# --- rotation -------------------------------------------------------------------------


def test_rotation_during_a_run_loses_no_secret_and_fails_no_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = tmp_path / "hw.db"
    count = 40
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        setup_team(store, receiver.url)
        with hw.Dispatcher(store, network=LOCAL, worker=False) as intake:
            for _ in range(count // 2):
                intake.handle(alias_event())
    # the operator sets HOOKWISE_SECRET_KEY=new,old for the worker and for rotate-key
    with (
        hw.SQLiteStorage(db, key=ROTATING) as worker_store,
        hw.SQLiteStorage(db, key=ROTATING) as rotate_conn,
    ):
        with hw.Dispatcher(worker_store, network=LOCAL, concurrency=4) as dispatcher:
            rotation = threading.Thread(target=rotate_store, args=(rotate_conn, ROTATING))
            rotation.start()
            for _ in range(count // 2):  # events keep coming during the rotation
                dispatcher.handle(alias_event())
            rotation.join(30)
            assert dispatcher.flush(30)
        rotate_store(rotate_conn, ROTATING)  # the bodies queued meanwhile, if any
        deliveries = worker_store.list_deliveries(limit=1000)
        assert len(deliveries) == count
        assert {d.status for d in deliveries} == {hw.DeliveryStatus.SUCCEEDED}
        assert all(d.attempts == 1 for d in deliveries)
        assert worker_store.key_ids() == (NEW_ID,)
    assert len(receiver.requests) == count
    assert {r.headers["Authorization"] for r in receiver.requests} == {f"Bearer {TOKEN}"}
    with hw.SQLiteStorage(db, key=NEW_KEY) as store:  # the old key can go now
        opened = {r.name: Vault(NEW_KEY).open_secret(r) for r in store.list_secrets(TEAM)}
        assert opened == {"GITHUB_TOKEN": TOKEN, "SIGNING_KEY": SIGNING}


def test_an_interrupted_rotation_is_run_again(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        setup_team(store, receiver.url)
        for _ in range(3):
            queue_one(store, receiver.url, OLD_KEY)

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with hw.SQLiteStorage(db, key=ROTATING) as store:
        with pytest.raises(KeyboardInterrupt):
            rotate_store(store, ROTATING, progress=stop_after_two)
        first = rotate_store(store, ROTATING)
        assert (first.secrets, first.bodies, first.skipped) == (0, 3, 2)
        again = rotate_store(store, ROTATING)
        assert (again.secrets, again.bodies, again.skipped) == (0, 0, 5)
        assert again.key_ids == (NEW_ID,)
    with hw.SQLiteStorage(db, key=NEW_KEY) as store:
        with hw.Dispatcher(store, network=LOCAL, worker=False) as dispatcher:
            assert dispatcher.deliver_due() == 3
        assert {d.status for d in store.list_deliveries()} == {hw.DeliveryStatus.SUCCEEDED}


def test_rotation_stops_clearly_on_a_row_under_an_unknown_key() -> None:
    store = hw.MemoryStorage(key=OLD_KEY)
    hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
    with pytest.raises(hw.SecretKeyError, match=OLD_ID):
        rotate_store(store, NEW_KEY)  # the old key is missing from the list


def test_memory_storage_rotates_too() -> None:
    store = hw.MemoryStorage(key=OLD_KEY)
    hw.Admin(store).create_secret(hw.Secret(team=TEAM, name="TOKEN", value=TOKEN))
    result = rotate_store(store, ROTATING)
    assert (result.secrets, result.key_ids) == (1, (NEW_ID,))
    [record] = store.list_secrets(TEAM)
    assert Vault(NEW_KEY).open_secret(record) == TOKEN
    with pytest.raises(hw.SecretKeyError):
        hw.Admin(store, key=OLD_KEY)


def test_cli_rotate_key(
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "hw.db"
    with hw.SQLiteStorage(db, key=OLD_KEY) as store:
        setup_team(store, receiver.url)
        queue_one(store, receiver.url, OLD_KEY)
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", f"{NEW},{OLD}")
    assert main(["rotate-key", "--db", str(db), "--every", "1"]) == 0
    out = capsys.readouterr().out
    assert "rotate-key: 1/3 rows" in out
    assert "rotate-key: 3/3 rows" in out
    assert "2 secrets and 1 bodies re-sealed" in out
    assert OLD_ID in out
    assert OLD not in out
    assert NEW not in out
    assert TOKEN not in out
    assert main(["rotate-key", "--db", str(db)]) == 0  # again: nothing left to do
    assert "0 secrets and 0 bodies re-sealed, 3 already" in capsys.readouterr().out
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", OLD)
    assert main(["deliveries", "--db", str(db)]) == 2  # the old key alone: refused, clearly
    assert NEW_ID in capsys.readouterr().err
