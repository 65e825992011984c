"""Both bundled storages against the conformance kit, then what only SQLite promises."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest

import hookwise as hw
import hookwise.storage
from hookwise.conditions import MetricChange, MetricThreshold, MetricZScore
from hookwise.crypto import SecretKey
from hookwise.errors import HookwiseError, SecretKeyError, ValidationError
from hookwise.events import EventType, RunState
from hookwise.filters import (
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
)
from hookwise.model import Automation, DoNothing, SendNotification, SendWebhook, Severity
from hookwise.scope import Scope
from hookwise.signing import Scheme
from hookwise.storage import codec
from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import (
    DeliveryStatus,
    OutboxEntry,
    RunStateStore,
    RunWindow,
    Storage,
)
from hookwise.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from hookwise.testing import (
    T0,
    RunStateStoreContract,
    StorageContract,
    make_attempt,
    make_automation,
    make_delivery,
    make_secret,
    make_webhook,
    undue,
)


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Iterator[MemoryStorage]:
        store = MemoryStorage()
        yield store
        store.close()


class TestSQLiteStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[SQLiteStorage]:
        with SQLiteStorage(tmp_path / "hooks.db", key=SecretKey.generate()) as store:
            yield store


# -- one role at a time ------------------------------------------------------------


class DictRunState:
    """A RunStateStore and nothing else: run windows in a dict, behind a lock."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], RunWindow] = {}
        self._lock = threading.Lock()

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        with self._lock:
            for window in windows:
                self._windows[window.run, window.automation] = window

    def load_windows(self, run: str) -> list[RunWindow]:
        with self._lock:
            return [w for (r, _), w in self._windows.items() if r == run]

    def delete_windows(self, run: str) -> None:
        with self._lock:
            for key in [k for k in self._windows if k[0] == run]:
                del self._windows[key]


class TestDictRunState(RunStateStoreContract):
    """A store implementing only one role passes that role's contract."""

    @pytest.fixture
    def storage(self) -> DictRunState:
        return DictRunState()

    def test_is_only_that_role(self, storage: DictRunState) -> None:
        assert isinstance(storage, RunStateStore)
        assert not isinstance(storage, Storage)


# -- SQLite only ---------------------------------------------------------------------


@pytest.fixture
def key() -> SecretKey:
    return SecretKey.generate()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hooks.db"


def test_data_survives_reopen(db: Path, key: SecretKey) -> None:
    sealed = key.encrypt(b"ghp_survivor", context="secret:ml-team/TOKEN")
    secret = make_secret(value="ghp_survivor", ciphertext=sealed)
    with SQLiteStorage(db, key=key) as store:
        store.create_secret(secret)
        store.create_webhook(make_webhook())
        store.create_automation(make_automation())
        store.enqueue([OutboxEntry(make_delivery("d1"), b"sealed")])
        revision = store.revision()
    with SQLiteStorage(db, key=key) as store:
        assert store.revision() == revision
        stored = store.get_secret("ml-team", "TOKEN")
        assert stored == secret
        assert stored is not None
        opened = store.key.decrypt(stored.ciphertext, context="secret:ml-team/TOKEN")
        assert opened == b"ghp_survivor"
        assert store.get_webhook("ml-team", "hook") == make_webhook()
        assert store.get_automation("ml-team", "a") == make_automation()
        [claim] = store.claim(T0, limit=5, lease=60)
        assert undue(claim.delivery) == undue(make_delivery("d1"))
        assert claim.sealed_body == b"sealed"


def test_second_connection_sees_changes(db: Path, key: SecretKey) -> None:
    with SQLiteStorage(db, key=key) as first, SQLiteStorage(db, key=key) as second:
        before = second.revision()
        first.create_webhook(make_webhook())
        assert second.revision() != before
        assert second.get_webhook("ml-team", "hook") == make_webhook()
        moved = second.revision()
        first.create_automation(make_automation())
        assert second.revision() != moved
        assert second.list_automations() == [make_automation()]

        first.enqueue([OutboxEntry(make_delivery("d1"), b"x")])
        [claim] = second.claim(T0, limit=5, lease=60)
        assert first.claim(T0, limit=5, lease=60) == []
        attempt = make_attempt(claim)
        assert second.record_attempt(
            claim, attempt, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, finished_at=T0
        )
        assert first.list_attempts("d1") == [attempt]


def test_concurrent_claims_across_connections(db: Path, key: SecretKey) -> None:
    ids = [f"d{i:03}" for i in range(200)]
    stores = [SQLiteStorage(db, key=key) for _ in range(4)]
    try:
        stores[0].enqueue([OutboxEntry(make_delivery(i), b"x") for i in ids])
        got: list[list[str]] = [[] for _ in stores]
        errors: list[BaseException] = []
        start = threading.Barrier(len(stores))

        def work(store: SQLiteStorage, mine: list[str]) -> None:
            try:
                start.wait()
                while claims := store.claim(T0, limit=2, lease=600):
                    mine.extend(c.delivery.id for c in claims)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(store, mine))
            for store, mine in zip(stores, got, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        claimed = [i for mine in got for i in mine]
        assert sorted(claimed) == ids  # each exactly once
    finally:
        for store in stores:
            store.close()


def test_missing_key_is_an_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKWISE_SECRET_KEY", raising=False)
    with pytest.raises(SecretKeyError, match="HOOKWISE_SECRET_KEY"):
        SQLiteStorage(db)
    assert not db.exists()


def test_key_from_env(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretKey.generate()
    sealed = key.encrypt(b"v", context="c")
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", "A" * 43)
    with SQLiteStorage(db) as store:
        assert store.key.key_ids == SecretKey("A" * 43).key_ids
        with pytest.raises(SecretKeyError):
            store.key.decrypt(sealed, context="c")


def test_only_ciphertext_on_disk(db: Path, key: SecretKey) -> None:
    plaintext = "ghp_thisIsTheSecretValue123"
    body = b'{"token":"' + plaintext.encode() + b'"}'
    with SQLiteStorage(db, key=key) as store:
        sealed = key.encrypt(plaintext.encode(), context="secret:ml-team/TOKEN")
        store.create_secret(make_secret(value=plaintext, ciphertext=sealed))
        sealed_body = key.encrypt(body, context="delivery:d1")
        store.enqueue([OutboxEntry(make_delivery("d1"), sealed_body)])
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert plaintext.encode() not in raw
    with sqlite3.connect(db) as conn:
        (ciphertext,) = conn.execute("SELECT ciphertext FROM secrets").fetchone()
        (stored_body,) = conn.execute("SELECT body FROM deliveries").fetchone()
    conn.close()
    assert key.decrypt(ciphertext, context="secret:ml-team/TOKEN") == plaintext.encode()
    assert stored_body == sealed_body


def test_schema_and_pragmas(db: Path, key: SecretKey) -> None:
    with SQLiteStorage(db, key=key) as store:
        assert repr(store) == f"SQLiteStorage({str(db)!r})"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE status IN ('PENDING', 'RETRYING') "
            "AND next_attempt_at <= 1 ORDER BY next_attempt_at"
        ).fetchall()
    conn.close()
    assert any("deliveries_due" in str(row) for row in plan)


def test_a_version_1_file_is_upgraded_in_place(db: Path, key: SecretKey) -> None:
    with SQLiteStorage(db, key=key) as store:
        store.create_webhook(make_webhook())
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE windows")  # what hookwise 0.1 wrote
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    window = RunWindow("ml-team/p/r1", "ml-team\x00a\x00c", "{}", 1.0)
    with SQLiteStorage(db, key=key) as store:
        assert store.get_webhook("ml-team", "hook") is not None
        store.save_windows([window])
    with SQLiteStorage(db, key=key) as store:  # and not upgraded twice
        assert store.load_windows("ml-team/p/r1") == [window]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()


def test_a_lease_taken_by_a_schema_2_process_mid_upgrade_is_honoured(
    db: Path, key: SecretKey
) -> None:
    """Schema 2 leased with lease_until alone; a process that has not
    restarted yet still does, so schema 3 keeps honouring it."""
    with SQLiteStorage(db, key=key) as store:
        store.enqueue([OutboxEntry(make_delivery("d1", next_attempt_at=T0), b"body")])
        with sqlite3.connect(db) as conn:  # what a schema 2 claim wrote
            conn.execute(
                "UPDATE deliveries SET lease_token = 'old', lease_until = ? WHERE id = 'd1'",
                (T0 + 60,),
            )
        conn.close()
        assert store.claim(T0 + 1, limit=5, lease=60) == []
        [claim] = store.claim(T0 + 60, limit=5, lease=60)
        assert claim.delivery.id == "d1"


def test_a_version_2_outbox_keeps_its_leases_and_finished_rows(db: Path, key: SecretKey) -> None:
    """Version 2 kept a lease apart from next_attempt_at, and finished rows
    could keep a next_attempt_at; version 3 reads only next_attempt_at."""
    with SQLiteStorage(db, key=key) as store:
        store.enqueue(
            [
                OutboxEntry(make_delivery("leased", next_attempt_at=T0), b"body"),
                OutboxEntry(make_delivery("done", next_attempt_at=T0), b"body"),
                OutboxEntry(make_delivery("due", next_attempt_at=T0 + 5), b"body"),
            ]
        )
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE deliveries SET lease_token = 't', lease_until = ? WHERE id = 'leased'", (T0 + 60,)
    )
    conn.execute("UPDATE deliveries SET status = 'SUCCEEDED' WHERE id = 'done'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with SQLiteStorage(db, key=key) as store:
        assert store.outstanding() == (2, T0 + 5)
        assert [c.delivery.id for c in store.claim(T0 + 59, limit=10, lease=100)] == ["due"]
        assert [c.delivery.id for c in store.claim(T0 + 60, limit=10, lease=100)] == ["leased"]


def test_newer_schema_is_refused(db: Path, key: SecretKey) -> None:
    SQLiteStorage(db, key=key).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HookwiseError, match="newer"):
        SQLiteStorage(db, key=key)


def test_enqueue_failure_rolls_back(db: Path, key: SecretKey) -> None:
    with SQLiteStorage(db, key=key) as store:
        bad = make_delivery("d2", team=None)  # NOT NULL violated mid-batch
        with pytest.raises(sqlite3.IntegrityError):
            store.enqueue([OutboxEntry(make_delivery("d1"), b"x"), OutboxEntry(bad, b"x")])
        assert store.list_deliveries() == []
        store.enqueue([OutboxEntry(make_delivery("d1"), b"x")])  # the connection is usable again
        assert [d.id for d in store.list_deliveries()] == ["d1"]


def test_corrupt_row_is_a_clear_error(db: Path, key: SecretKey) -> None:
    with SQLiteStorage(db, key=key) as store:
        store.create_webhook(make_webhook())
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE webhooks SET document = '{\"v\": 99}'")
        conn.close()
        with pytest.raises(ValidationError, match="stored webhook"):
            store.get_webhook("ml-team", "hook")


def test_close_is_idempotent(db: Path, key: SecretKey) -> None:
    store = SQLiteStorage(db, key=key)
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.revision()


# -- the codec -----------------------------------------------------------------------

FILTER_SAMPLES = [
    OnLinkArtifact(),
    OnLinkArtifact(alias="^v[0-9]+$"),
    OnUnlinkArtifact(),
    OnCreateArtifact(),
    OnAddArtifactAlias(alias="^production$"),
    OnAddArtifactTag(tag="ready"),
    OnRemoveArtifactTag(tag="ready"),
    OnAddCollectionTag(tag="(?i)gold"),
    OnRemoveCollectionTag(tag="gold"),
    OnRunMetric(MetricThreshold("loss", 0.5, op="gte", agg="AVERAGE", window=5)),
    OnRunMetric(
        MetricChange("acc", 0.1, kind="RELATIVE", direction="DECREASE"),
        run_name="^sweep-",
        user="alice",
        cooldown=600,
    ),
    OnRunMetric(MetricZScore("loss", 3.0, window=30, direction="INCREASE")),
    OnRunState(states={RunState.FAILED, RunState.FINISHED}, cooldown=0),
]

ACTION_SAMPLES = [
    DoNothing(),
    SendWebhook(webhook="hook"),
    SendWebhook(webhook="hook", team="ml-team", payload={"q": '"quoted" \\ ${alias} $$ ü'}),
    SendWebhook(webhook="hook", payload=["${event_type}", 1, 2.5, None, True]),
    SendWebhook(webhook="hook", payload='"just a string ${tag}"'),
]


def test_every_registered_filter_has_a_sample() -> None:
    sampled = {type(f).__name__ for f in FILTER_SAMPLES}
    sampled |= {type(f.condition).__name__ for f in FILTER_SAMPLES if isinstance(f, OnRunMetric)}
    assert set(codec.registered_filters()) <= sampled, "add a sample for the new filter class"


@pytest.mark.parametrize("event", FILTER_SAMPLES, ids=repr)
def test_codec_round_trips_filters(event: OnLinkArtifact) -> None:
    automation = make_automation(event=event)
    text = codec.automation_to_json(automation)
    assert json.loads(text)["event"]["type"] == type(event).__name__
    assert codec.automation_from_json(text) == automation


@pytest.mark.parametrize("action", ACTION_SAMPLES, ids=repr)
def test_codec_round_trips_actions(action: SendWebhook | DoNothing) -> None:
    automation = make_automation(action=action)
    back = codec.automation_from_json(codec.automation_to_json(automation))
    assert back == automation
    if isinstance(action, SendWebhook):
        assert isinstance(back.action, SendWebhook)
        assert back.action.payload.source == action.payload.source


@pytest.mark.parametrize(
    "scope",
    [
        Scope.project("ml-team", "proj"),
        Scope.registry("ml-team", "model-registry"),
        Scope.collection("ml-team", "model-registry", "churn"),
    ],
    ids=repr,
)
def test_codec_round_trips_scopes(scope: Scope) -> None:
    automation = make_automation(scope=scope, description='d\n"x"', enabled=False)
    assert codec.automation_from_json(codec.automation_to_json(automation)) == automation


def test_codec_format() -> None:
    automation = make_automation()
    assert json.loads(codec.automation_to_json(automation)) == {
        "v": 1,
        "name": "a",
        "description": "",
        "enabled": True,
        "scope": {"kind": "project", "entity": "ml-team", "project": "proj", "collection": None},
        "event": {"type": "OnAddArtifactAlias", "alias": "^prod$"},
        "action": {
            "type": "send_webhook",
            "webhook": "hook",
            "team": None,
            "payload": '{"v":"${artifact_version}"}',
        },
    }
    webhook = make_webhook(secret="SIGNING_KEY", signing=[Scheme.WANDB], enabled=False)
    assert json.loads(codec.webhook_to_json(webhook)) == {
        "v": 1,
        "team": "ml-team",
        "name": "hook",
        "url": "https://example.com/h",
        "access_token": "TOKEN",
        "secret": "SIGNING_KEY",
        "signing": ["wandb"],
        "enabled": False,
    }
    assert codec.webhook_from_json(codec.webhook_to_json(webhook)) == webhook
    assert codec.webhook_from_json(codec.webhook_to_json(make_webhook())) == make_webhook()


def _stored(automation: Automation, **changes: object) -> str:
    document = json.loads(codec.automation_to_json(automation))
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"v": 2}, "version 2"),
        ({"v": None}, "version None"),
        ({"event": {"type": "OnSomethingNew"}}, "unknown type 'OnSomethingNew'"),
        ({"event": {"type": "OnLinkArtifact", "colour": "red"}}, "unexpected colour"),
        ({"event": "OnLinkArtifact"}, "expected a JSON object"),
        ({"action": {"type": "send_email"}}, "unknown type 'send_email'"),
        ({"action": {"type": "do_nothing", "x": 1}}, "unexpected x"),
        ({"action": {"type": "send_webhook", "webhook": "hook", "payload": {}}}, "JSON text"),
        ({"scope": {"kind": "galaxy", "entity": "e", "project": "p"}}, "unknown kind"),
        ({"scope": {"kind": "project", "entity": "e"}}, "missing project"),
        ({"extra": 1}, "unexpected extra"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_codec_rejects_unknown_documents(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match="stored") as caught:
        codec.automation_from_json(_stored(make_automation(), **changes))
    assert message in str(caught.value)


def test_codec_validates_again() -> None:
    bad_regex = {"type": "OnAddArtifactAlias", "alias": "("}
    with pytest.raises(ValidationError, match=r"event\.alias"):
        codec.automation_from_json(_stored(make_automation(), event=bad_regex))
    document = json.loads(codec.webhook_to_json(make_webhook()))
    document["url"] = "ftp://example.com/"
    with pytest.raises(ValidationError, match="url"):
        codec.webhook_from_json(json.dumps(document))
    with pytest.raises(ValidationError, match="stored webhook"):
        codec.webhook_from_json("not json")
    with pytest.raises(ValidationError, match="stored webhook"):
        codec.webhook_from_json("[1]")


def test_register_filter_rules() -> None:
    with pytest.raises(TypeError, match="not an attrs class"):
        codec.register_filter(int)
    assert codec.register_filter(OnLinkArtifact) is OnLinkArtifact  # twice is harmless
    assert codec.registered_filters()["OnLinkArtifact"] is OnLinkArtifact
    assert EventType.LINK_ARTIFACT is OnLinkArtifact.event_type


NOTIFICATION = {
    "type": "send_notification",
    "secret": "SLACK_ALERTS",
    "title": "Run failed",
    "message": "m",
    "severity": "ERROR",
}


def test_codec_reads_a_stored_notification() -> None:
    action = codec.automation_from_json(_stored(make_automation(), action=NOTIFICATION)).action
    assert action == SendNotification("SLACK_ALERTS", "Run failed", "m", Severity.ERROR)
    short = {"type": "send_notification", "secret": "S", "title": "t"}
    assert codec.automation_from_json(_stored(make_automation(), action=short)).action == (
        SendNotification("S", "t")
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": None}, "missing title"),
        ({"secret": None}, "missing secret"),
        ({"url": "https://hooks.slack.com/x"}, "unexpected url"),
    ],
)
def test_codec_refuses_a_stored_notification_of_the_wrong_shape(
    changes: dict[str, object], message: str
) -> None:
    action = {k: v for k, v in {**NOTIFICATION, **changes}.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        codec.automation_from_json(_stored(make_automation(), action=action))
    assert caught.value.field == "stored action"
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # the right shape, values the action refuses: named as the action names them
        ({"title": 3}, "action.title"),
        ({"title": ""}, "action.title"),
        ({"secret": ["SLACK_ALERTS"]}, "action.secret"),
        ({"message": None}, "action.message"),
        ({"message": 3}, "action.message"),
        ({"severity": "LOUD"}, "action.severity"),
        ({"severity": None}, "action.severity"),
    ],
)
def test_codec_refuses_stored_notification_values_of_the_wrong_type(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        codec.automation_from_json(_stored(make_automation(), action={**NOTIFICATION, **changes}))
    assert caught.value.field == field


def test_codec_names_the_document_for_what_it_cannot_read() -> None:
    with pytest.raises(ValidationError, match="expected JSON text, not bytes") as caught:
        codec.automation_from_json(b"{}")  # type: ignore[arg-type]
    assert caught.value.field == "stored automation"
    with pytest.raises(ValidationError, match="cannot build OnRunMetric") as caught:
        codec.automation_from_json(_stored(make_automation(), event={"type": "OnRunMetric"}))
    assert caught.value.field == "stored event"
    with pytest.raises(ValidationError, match="expected a JSON object") as caught:
        codec.automation_from_json(_stored(make_automation(), action=["do_nothing"]))
    assert caught.value.field == "stored action"


@attrs.frozen
class _Band:
    low: float
    names: tuple[str, ...] = ()
    computed: int = attrs.field(init=False, default=0)


@attrs.frozen
class _Opaque:
    value: object = None


@attrs.frozen
class _Typed:
    type: str = "x"


def test_register_filter_refuses_clashes_and_encodes_nested_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "_REGISTRY", dict(codec.registered_filters()))
    with pytest.raises(TypeError, match="has a field named 'type'"):
        codec.register_filter(_Typed)
    clash = attrs.make_class("OnLinkArtifact", {"x": attrs.field()})
    with pytest.raises(TypeError, match="another class named OnLinkArtifact"):
        codec.register_filter(clash)
    assert codec.registered_filters()["OnLinkArtifact"] is OnLinkArtifact

    # not registered yet: refused by name
    with pytest.raises(TypeError, match="_Band is not registered"):
        codec._encode_value(_Band(1.0))
    codec.register_filter(_Band)
    encoded = codec._encode_value(_Band(1.0, ("a", "b")))
    assert encoded == {"type": "_Band", "low": 1.0, "names": ["a", "b"]}  # not init: left out
    assert codec._decode_value(encoded, "event") == _Band(1.0, ["a", "b"])  # type: ignore[arg-type]
    codec.register_filter(_Opaque)
    with pytest.raises(TypeError, match="cannot encode a bytes"):
        codec._encode_value(_Opaque(b"x"))


def test_sqlite_transaction_stores_all_or_nothing(tmp_path: Path) -> None:
    key = hw.SecretKey.generate()
    with hw.SQLiteStorage(tmp_path / "t.db", key=key) as store:
        assert isinstance(store, hw.storage.Transactional)
        admin = hw.Admin(store, key=key)
        before = store.revision()

        class Stop(Exception):
            pass

        def two_then_stop() -> None:
            with store.transaction():
                admin.create_secret(hw.Secret(team="t", name="A", value="one"))
                with store.transaction():  # a nested one is the same one
                    admin.create_secret(hw.Secret(team="t", name="B", value="two"))
                raise Stop

        with pytest.raises(Stop):
            two_then_stop()
        assert store.list_secrets("t") == []
        assert store.revision() == before
        with store.transaction():
            admin.create_secret(hw.Secret(team="t", name="A", value="one"))
            admin.create_secret(hw.Secret(team="t", name="B", value="two"))
        assert [s.name for s in store.list_secrets("t")] == ["A", "B"]
    # and it was committed: another connection sees it
    with hw.SQLiteStorage(tmp_path / "t.db", key=key) as again:
        assert [s.name for s in again.list_secrets("t")] == ["A", "B"]


def test_a_file_that_is_no_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database, it is a note\n" * 100)
    with pytest.raises(hw.ValidationError, match="cannot open the database"):
        hw.SQLiteStorage(junk, key=hw.SecretKey.generate())
