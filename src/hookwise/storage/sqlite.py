"""SQLiteStorage: the whole contract in one SQLite file, the embedded default.

One connection, shared by the caller's thread and the dispatcher's worker
behind a lock. The file may also be shared by other processes (a
``hookwise worker``, a second app instance): WAL lets readers run beside the
writer, every write is one ``BEGIN IMMEDIATE`` transaction, so ``enqueue`` is
all or none and ``claim`` never leases one delivery twice, and ``revision()``
reads a counter that every configuration change bumps in its own transaction,
so changes made by another process are seen too.

Webhooks and automations are stored as :mod:`hookwise.storage.codec` JSON
beside their key columns; secrets and outbox bodies arrive sealed and are
stored as BLOBs, so no plaintext secret reaches the file. A delivery is due
when its ``next_attempt_at`` is not after now: the core sets it, a claim
moves it to the lease's end, and a finished delivery has none.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import attrs

from hookwise.crypto import SecretKey, check_key_ids, key_id_of
from hookwise.errors import AlreadyExistsError, HookwiseError, NotFoundError, ValidationError
from hookwise.model import Automation, SendWebhook, Webhook
from hookwise.storage.codec import (
    automation_from_json,
    automation_to_json,
    webhook_from_json,
    webhook_to_json,
)
from hookwise.storage.protocol import (
    Attempt,
    AttemptResult,
    Claim,
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    RunWindow,
    SecretRecord,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStorage"]

logger = logging.getLogger("hookwise")

SCHEMA_VERSION = 5
"""Kept in ``PRAGMA user_version``; a file from a newer hookwise is refused."""

_SCHEMA = """
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE secrets (
    team TEXT NOT NULL,
    name TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (team, name)
);

CREATE TABLE webhooks (
    team TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (team, name)
);

CREATE TABLE automations (
    team TEXT NOT NULL,
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    scope_kind TEXT NOT NULL,
    project TEXT NOT NULL,
    collection TEXT,
    webhook TEXT,
    enabled INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (team, name)
);
CREATE INDEX automations_match ON automations (event_type, team, project);

CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    message_id TEXT NOT NULL,
    team TEXT NOT NULL,
    webhook TEXT NOT NULL,
    automation TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    display TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL,
    response_status INTEGER,
    response_body TEXT,
    error TEXT,
    finished_at REAL,
    body BLOB NOT NULL,
    lease_token TEXT,
    lease_until REAL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX deliveries_team ON deliveries (team, created_at);
CREATE INDEX deliveries_automation ON deliveries (automation, created_at);

CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    elapsed REAL NOT NULL,
    url TEXT NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    error TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, seq);

CREATE TABLE triggers (
    automation TEXT NOT NULL,
    run_id TEXT NOT NULL,
    fired_at REAL NOT NULL,
    PRIMARY KEY (automation, run_id)
) WITHOUT ROWID;
"""

# The key id is bytes 4-11 of an "hw1" ciphertext (see hookwise.crypto); these
# statements record the ids of every ciphertext in the file, read without a key.
_KEY_IDS_IN_USE = tuple(
    f"INSERT OR IGNORE INTO key_ids (key_id) SELECT DISTINCT lower(hex(substr({column}, 4, 8))) "  # noqa: S608
    f"FROM {table} WHERE length({column}) >= 39 AND substr({column}, 1, 3) = X'687731'"
    for table, column in (("secrets", "ciphertext"), ("deliveries", "body"))
)

# what each version adds to the one before; a new file runs them all
_MIGRATIONS = {
    2: """
CREATE TABLE windows (
    run TEXT NOT NULL,
    automation TEXT NOT NULL,
    state TEXT NOT NULL,
    saved_at REAL NOT NULL,
    PRIMARY KEY (run, automation)
) WITHOUT ROWID;
""",
    # the lease moved into next_attempt_at: a store keeps no rule of what is due
    3: """
UPDATE deliveries SET next_attempt_at = NULL WHERE status IN ('SUCCEEDED', 'FAILED');
UPDATE deliveries SET next_attempt_at = MAX(next_attempt_at, lease_until)
    WHERE lease_until IS NOT NULL AND next_attempt_at IS NOT NULL;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
""",
    # the ids of the keys ciphertexts are sealed under, so a wrong key is noticed at open
    4: """
CREATE TABLE IF NOT EXISTS key_ids (key_id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
    + "\n;\n".join(_KEY_IDS_IN_USE),
    # when each failing webhook began to fail, for auto-disable
    5: """
CREATE TABLE IF NOT EXISTS failing (
    team TEXT NOT NULL,
    webhook TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (team, webhook)
) WITHOUT ROWID;
""",
}

_DELIVERY_COLUMNS = (
    "id, message_id, team, webhook, automation, event_type, event_id, created_at, display, "
    "url, status, attempts, next_attempt_at, response_status, response_body, error, finished_at"
)
_ATTEMPT_COLUMNS = (
    "delivery_id, number, started_at, elapsed, url, response_status, response_body, error"
)


def _delivery(row: Sequence[Any]) -> Delivery:
    """A Delivery from the first 17 columns of a row in ``_DELIVERY_COLUMNS`` order."""
    return Delivery(
        id=row[0],
        message_id=row[1],
        team=row[2],
        webhook=row[3],
        automation=row[4],
        event_type=row[5],
        event_id=row[6],
        created_at=row[7],
        display=row[8],
        url=row[9],
        status=DeliveryStatus(row[10]),
        attempts=row[11],
        next_attempt_at=row[12],
        response_status=row[13],
        response_body=row[14],
        error=row[15],
        finished_at=row[16],
    )


def _taken(exc: sqlite3.IntegrityError) -> bool:
    """A key already in use, as opposed to another constraint (a NULL in a NOT NULL column)."""
    return str(exc).startswith("UNIQUE constraint failed")


def _note_key_ids(conn: sqlite3.Connection, sealed: Iterable[bytes | None]) -> None:
    """Record the key ids of ciphertexts written in this transaction."""
    ids = {key_id_of(token) for token in sealed if token}
    ids.discard(None)
    if ids:
        conn.executemany(
            "INSERT OR IGNORE INTO key_ids (key_id) VALUES (?)", [(kid,) for kid in ids]
        )


def _attempt(row: Sequence[Any]) -> Attempt:
    return Attempt(*row)


_OPEN_ERRORS = (sqlite3.Error, ValueError, UnicodeError, OSError)


def _check_path(path: object) -> str:
    """The database path as a plain str: a str or an ``os.PathLike`` giving one."""
    if not isinstance(path, str):
        if not isinstance(path, os.PathLike):
            raise ValidationError("path", f"must be a str or a path, not {type(path).__name__}")
        try:
            path = os.fspath(path)
        except Exception as exc:
            raise ValidationError("path", f"could not be read ({type(exc).__name__})") from None
        if not isinstance(path, str):
            raise ValidationError("path", f"must name a str path, not {type(path).__name__}")
    return str.__str__(path)  # a str subclass's own methods do not run past here


def _cannot_open(exc: BaseException) -> ValidationError:
    # the message is SQLite's, or the codec's or OS's (these may name the path)
    return ValidationError("path", f"cannot open the database ({type(exc).__name__}: {exc})")


class SQLiteStorage:
    """Secrets, webhooks, automations and the outbox in one SQLite file.

    ``key`` seals secrets and outbox bodies; with none, it is read from
    ``HOOKWISE_SECRET_KEY`` (:meth:`SecretKey.from_env`), and a missing
    variable is a :class:`~hookwise.errors.SecretKeyError`: a generated key
    would be lost on restart, and everything sealed under it with it.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, key: SecretKey | None = None) -> None:
        self._path = _check_path(path)
        if key is not None and not isinstance(key, SecretKey):
            raise ValidationError("key", f"must be a SecretKey or None, not {type(key).__name__}")
        self.key = key if key is not None else SecretKey.from_env()
        """Kept for ``Admin`` and the dispatchers to seal with when they are given none."""
        self._lock = threading.RLock()
        self._outer = False  # inside transaction(): writes join it
        try:
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        except _OPEN_ERRORS as exc:
            raise _cannot_open(exc) from None
        try:
            try:  # where SQLite finds a folder or a file that is no database
                self._conn.execute("PRAGMA busy_timeout = 5000")
                self._configure()
            except HookwiseError:
                raise
            except _OPEN_ERRORS as exc:
                raise _cannot_open(exc) from None
            self.check_key(self.key)
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HookwiseError(
                    f"{self._path}: schema version {version} is newer than this hookwise "
                    f"supports ({SCHEMA_VERSION}); upgrade hookwise"
                )
            scripts = [] if version else [_SCHEMA]
            scripts += [_MIGRATIONS[v] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)]
            for script in scripts:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SQLiteStorage({self._path!r})"

    def __enter__(self) -> SQLiteStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._path

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every call inside one write transaction: all of it is
        stored, or (on an exception) none of it. Other threads and processes
        wait for it, so keep it short (``hookwise apply`` uses it)."""
        with self._lock:
            if self._outer:  # already inside one: it is that one
                yield
                return
            with self._write():
                self._outer = True
                try:
                    yield
                finally:
                    self._outer = False

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue
        (inside :meth:`transaction`, a part of that one)."""
        with self._lock:
            conn = self._conn
            if self._outer:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def revision(self) -> int:
        rows = self._read("SELECT revision FROM meta WHERE id = 1")
        return int(rows[0][0])

    # -- configuration rows ----------------------------------------------------------

    def _insert(
        self,
        table: str,
        kind: str,
        key: tuple[str, str],
        values: dict[str, Any],
        sealed: bytes | None = None,
    ) -> None:
        columns = ", ".join(values)
        placeholders = ", ".join("?" for _ in values)
        with self._write() as conn:
            try:
                conn.execute(
                    f"INSERT INTO {table} (team, name, {columns}) "  # noqa: S608
                    f"VALUES (?, ?, {placeholders})",
                    (*key, *values.values()),
                )
            except sqlite3.IntegrityError as exc:
                if not _taken(exc):
                    raise
                raise AlreadyExistsError(kind, "/".join(key)) from None
            _note_key_ids(conn, (sealed,))
            conn.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1")

    def _update(
        self,
        table: str,
        kind: str,
        key: tuple[str, str],
        values: dict[str, Any],
        sealed: bytes | None = None,
    ) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE {table} SET {assignments} WHERE team = ? AND name = ?",  # noqa: S608
                (*values.values(), *key),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(kind, "/".join(key))
            _note_key_ids(conn, (sealed,))
            conn.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1")

    def _delete(self, table: str, team: str, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE team = ? AND name = ?",  # noqa: S608
                (team, name),
            )
            if cursor.rowcount == 0:
                return False
            conn.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1")
            return True

    # secrets
    @staticmethod
    def _secret_values(record: SecretRecord) -> dict[str, Any]:
        return {
            "ciphertext": bytes(record.ciphertext),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    def create_secret(self, record: SecretRecord) -> None:
        values = self._secret_values(record)
        key = (record.team, record.name)
        self._insert("secrets", "secret", key, values, values["ciphertext"])

    def update_secret(self, record: SecretRecord) -> None:
        values = self._secret_values(record)
        key = (record.team, record.name)
        self._update("secrets", "secret", key, values, values["ciphertext"])

    def get_secret(self, team: str, name: str) -> SecretRecord | None:
        rows = self._read(
            "SELECT team, name, ciphertext, created_at, updated_at FROM secrets "
            "WHERE team = ? AND name = ?",
            (team, name),
        )
        return SecretRecord(*rows[0]) if rows else None

    def list_secrets(self, team: str) -> list[SecretRecord]:
        rows = self._read(
            "SELECT team, name, ciphertext, created_at, updated_at FROM secrets "
            "WHERE team = ? ORDER BY name",
            (team,),
        )
        return [SecretRecord(*row) for row in rows]

    def delete_secret(self, team: str, name: str) -> bool:
        return self._delete("secrets", team, name)

    # webhooks
    @staticmethod
    def _webhook_values(webhook: Webhook) -> dict[str, Any]:
        return {
            "url": webhook.url,
            "enabled": webhook.enabled,
            "document": webhook_to_json(webhook),
        }

    def create_webhook(self, webhook: Webhook) -> None:
        key = (webhook.team, webhook.name)
        self._insert("webhooks", "webhook", key, self._webhook_values(webhook))

    def update_webhook(self, webhook: Webhook) -> None:
        key = (webhook.team, webhook.name)
        self._update("webhooks", "webhook", key, self._webhook_values(webhook))

    def get_webhook(self, team: str, name: str) -> Webhook | None:
        rows = self._read("SELECT document FROM webhooks WHERE team = ? AND name = ?", (team, name))
        return webhook_from_json(rows[0][0]) if rows else None

    def list_webhooks(self, team: str) -> list[Webhook]:
        rows = self._read("SELECT document FROM webhooks WHERE team = ? ORDER BY name", (team,))
        return [webhook_from_json(row[0]) for row in rows]

    def delete_webhook(self, team: str, name: str) -> bool:
        return self._delete("webhooks", team, name)

    def disable_webhook(self, team: str, name: str, reason: str) -> bool:
        with self._write() as conn:  # read and write in one transaction: no lost update
            row = conn.execute(
                "SELECT document FROM webhooks WHERE team = ? AND name = ? AND enabled",
                (team, name),
            ).fetchone()
            if row is None:
                return False
            webhook = attrs.evolve(webhook_from_json(row[0]), enabled=False, disabled_reason=reason)
            conn.execute(
                "UPDATE webhooks SET enabled = 0, document = ? WHERE team = ? AND name = ?",
                (webhook_to_json(webhook), team, name),
            )
            conn.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1")
            return True

    # automations
    @staticmethod
    def _automation_values(automation: Automation) -> dict[str, Any]:
        action = automation.action
        return {
            "event_type": automation.event.event_type.value,
            "scope_kind": automation.scope.kind.value,
            "project": automation.scope.project_name,
            "collection": automation.scope.collection_name,
            "webhook": action.webhook if isinstance(action, SendWebhook) else None,
            "enabled": automation.enabled,
            "document": automation_to_json(automation),
        }

    def create_automation(self, automation: Automation) -> None:
        key = (automation.team, automation.name)
        self._insert("automations", "automation", key, self._automation_values(automation))

    def update_automation(self, automation: Automation) -> None:
        key = (automation.team, automation.name)
        self._update("automations", "automation", key, self._automation_values(automation))

    def get_automation(self, team: str, name: str) -> Automation | None:
        rows = self._read(
            "SELECT document FROM automations WHERE team = ? AND name = ?", (team, name)
        )
        return automation_from_json(rows[0][0]) if rows else None

    def list_automations(self, team: str | None = None) -> list[Automation]:
        if team is None:
            rows = self._read("SELECT document FROM automations ORDER BY team, name")
        else:
            rows = self._read(
                "SELECT document FROM automations WHERE team = ? ORDER BY name", (team,)
            )
        return [automation_from_json(row[0]) for row in rows]

    def delete_automation(self, team: str, name: str) -> bool:
        return self._delete("automations", team, name)

    # -- the outbox ------------------------------------------------------------------

    def enqueue(self, entries: Sequence[OutboxEntry]) -> list[Delivery]:
        stored: list[Delivery] = []
        if not entries:
            return stored
        with self._write() as conn:
            for entry in entries:
                cooldown, d = entry.cooldown, entry.delivery
                if cooldown is not None:
                    fired = conn.execute(
                        "INSERT INTO triggers (automation, run_id, fired_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (automation, run_id) "
                        "DO UPDATE SET fired_at = excluded.fired_at WHERE fired_at <= ?",
                        (cooldown.automation, cooldown.run, cooldown.at, cooldown.since),
                    )
                    if fired.rowcount == 0:  # fired within the cooldown: not this time
                        continue
                row = (
                    d.id, d.message_id, d.team, d.webhook, d.automation, d.event_type, d.event_id,
                    d.created_at, d.display, d.url, DeliveryStatus(d.status).value, d.attempts,
                    d.next_attempt_at, d.response_status, d.response_body, d.error, d.finished_at,
                    bytes(entry.sealed_body),
                )  # fmt: skip
                try:
                    conn.execute(
                        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}, body) "  # noqa: S608
                        f"VALUES ({', '.join('?' * 18)})",
                        row,
                    )
                except sqlite3.IntegrityError as exc:
                    if not _taken(exc):
                        raise
                    raise AlreadyExistsError("delivery", d.id) from None
                stored.append(d)
            _note_key_ids(conn, (bytes(entry.sealed_body[:23]) for entry in entries))
        return stored

    def claim(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[Claim]:
        lease_until = now + lease
        skip = sorted(set(exclude))
        passed = "".join(" AND NOT (team = ? AND webhook = ?)" for _ in skip)
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS}, body FROM deliveries "  # noqa: S608
                "WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? "
                # a process still on schema 2, mid-upgrade, leases with lease_until only
                f"AND (lease_until IS NULL OR lease_until <= ?){passed} "
                "ORDER BY next_attempt_at, created_at, seq LIMIT ?",
                (now, now, *itertools.chain.from_iterable(skip), max(limit, 0)),
            ).fetchall()
            claims = [Claim(_delivery(row), row[17], uuid.uuid4().hex, lease_until) for row in rows]
            conn.executemany(
                "UPDATE deliveries SET lease_token = ?, next_attempt_at = ?, lease_until = ? "
                "WHERE id = ?",
                [(c.lease_token, lease_until, lease_until, c.delivery.id) for c in claims],
            )
            return claims

    def record_attempt(
        self,
        claim: Claim,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
        finished_at: float | None,
    ) -> bool:
        return self.record_attempts(
            [AttemptResult(claim, attempt, status, next_attempt_at, finished_at)]
        )[0]

    def record_attempts(self, results: Sequence[AttemptResult]) -> list[bool]:
        with self._write() as conn:
            recorded = []
            for result in results:
                attempt = result.attempt
                cursor = conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, "
                    "url = ?, response_status = ?, response_body = ?, error = ?, "
                    "finished_at = ?, lease_token = NULL, lease_until = NULL "
                    "WHERE id = ? AND lease_token = ?",
                    (
                        DeliveryStatus(result.status).value,
                        attempt.number,
                        result.next_attempt_at,
                        attempt.url,
                        attempt.response_status,
                        attempt.response_body,
                        attempt.error,
                        result.finished_at,
                        result.claim.delivery.id,
                        result.claim.lease_token,
                    ),
                )
                recorded.append(cursor.rowcount > 0)
            conn.executemany(
                f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                [
                    attrs.astuple(result.attempt, recurse=False)
                    for result, ok in zip(results, recorded, strict=True)
                    if ok
                ],
            )
            return recorded

    def release(self, claims: Sequence[Claim], next_attempt_at: float) -> int:
        with self._write() as conn:
            released = 0
            for claim in claims:
                cursor = conn.execute(
                    "UPDATE deliveries SET next_attempt_at = ?, lease_token = NULL, "
                    "lease_until = NULL WHERE id = ? AND lease_token = ?",
                    (next_attempt_at, claim.delivery.id, claim.lease_token),
                )
                released += cursor.rowcount
            return released

    def note_failure(self, team: str, webhook: str, at: float) -> float:
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO failing (team, webhook, since) VALUES (?, ?, ?)",
                (team, webhook, at),
            )
            row = conn.execute(
                "SELECT since FROM failing WHERE team = ? AND webhook = ?", (team, webhook)
            ).fetchone()
            return float(row[0])

    def note_success(self, team: str, webhook: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM failing WHERE team = ? AND webhook = ?", (team, webhook))

    def requeue(self, delivery_id: str, now: float) -> Delivery:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = ?, next_attempt_at = ?, finished_at = NULL, "
                "lease_token = NULL, lease_until = NULL WHERE id = ?",
                (DeliveryStatus.PENDING.value, now, delivery_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError("delivery", delivery_id)
            row = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
                (delivery_id,),
            ).fetchone()
            return _delivery(row)

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
            (delivery_id,),
        )
        return _delivery(rows[0]) if rows else None

    def list_deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        webhook: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        # the indexes on (team, created_at), (automation, created_at) and
        # (created_at) serve every filter; webhook is a name within a team
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("team", team),
            ("automation", automation),
            ("status", None if status is None else DeliveryStatus(status).value),
            ("webhook", webhook),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("created_at >= ?")
            params.append(float(since))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {clause}"  # noqa: S608
            "ORDER BY created_at DESC, seq DESC LIMIT ?",
            (*params, max(limit, 0)),
        )
        return [_delivery(row) for row in rows]

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        rows = self._read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ? ORDER BY seq",  # noqa: S608
            (delivery_id,),
        )
        return [_attempt(row) for row in rows]

    def outstanding(self) -> tuple[int, float | None]:
        rows = self._read(
            "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries "
            "WHERE next_attempt_at IS NOT NULL"
        )
        count, earliest = rows[0]
        return int(count), earliest

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        if not windows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO windows (run, automation, state, saved_at) "
                "VALUES (?, ?, ?, ?)",
                [(w.run, w.automation, w.state, w.saved_at) for w in windows],
            )

    def load_windows(self, run: str) -> list[RunWindow]:
        rows = self._read(
            "SELECT run, automation, state, saved_at FROM windows WHERE run = ?", (run,)
        )
        return [RunWindow(*row) for row in rows]

    def delete_windows(self, run: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM windows WHERE run = ?", (run,))

    # -- keys ------------------------------------------------------------------------

    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys this file holds ciphertexts under (no key needed)."""
        return tuple(row[0] for row in self._read("SELECT key_id FROM key_ids ORDER BY key_id"))

    def check_key(self, key: SecretKey) -> None:
        """Refuse a key that opens nothing here: a SecretKeyError naming the key
        ids (never a key), raised before anything is read or written with it.
        An empty file takes any key. A key that lacks some of the ids (half-way
        through a rotation) is logged: rows under those ids wait for it."""
        missing = check_key_ids(key, self.key_ids(), where=self._path)
        if missing:
            logger.warning(
                "%s: rows sealed under key id(s) %s cannot be opened with the configured "
                "key(s) %s; deliveries that need them wait until the key is added",
                self._path,
                ", ".join(missing),
                ", ".join(key.key_ids),
            )

    def sealed_rows(self) -> tuple[list[tuple[str, str]], list[str]]:
        """What holds a ciphertext: secrets as (team, name), deliveries by id."""
        secrets = self._read("SELECT team, name FROM secrets ORDER BY team, name")
        bodies = self._read("SELECT id FROM deliveries WHERE length(body) > 0 ORDER BY seq")
        return [(row[0], row[1]) for row in secrets], [row[0] for row in bodies]

    def reseal_secret(self, team: str, name: str, change: Callable[[bytes], bytes | None]) -> bool:
        """Replace a secret's ciphertext with ``change(old)`` in one transaction
        (None: leave it). The value is the same, so the revision does not move."""
        return self._reseal("secrets", "ciphertext", "team = ? AND name = ?", (team, name), change)

    def reseal_body(self, delivery_id: str, change: Callable[[bytes], bytes | None]) -> bool:
        """As :meth:`reseal_secret`, for a delivery's sealed body."""
        return self._reseal("deliveries", "body", "id = ?", (delivery_id,), change)

    def _reseal(
        self,
        table: str,
        column: str,
        where: str,
        params: tuple[str, ...],
        change: Callable[[bytes], bytes | None],
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {column} FROM {table} WHERE {where}",  # noqa: S608
                params,
            ).fetchone()
            if row is None:
                return False
            new = change(bytes(row[0]))
            if new is None:
                return False
            conn.execute(
                f"UPDATE {table} SET {column} = ? WHERE {where}",  # noqa: S608
                (bytes(new), *params),
            )
            _note_key_ids(conn, (bytes(new),))
            return True

    def forget_unused_key_ids(self) -> tuple[str, ...]:
        """Record only the key ids some row still uses (after a rotation, so
        the old key can be dropped); returns the ids kept."""
        with self._write() as conn:
            conn.execute("DELETE FROM key_ids")
            for statement in _KEY_IDS_IN_USE:
                conn.execute(statement)
        return self.key_ids()

    def close(self) -> None:
        """Close the connection; further calls fail. Closing twice is harmless."""
        with self._lock:
            self._conn.close()
