"""The hookwise command: the demo works, and the admin commands read the store."""

from __future__ import annotations

import argparse
import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

import hookwise as hw
from hookwise import cli
from hookwise.cli import _parser, main
from hookwise.testing import make_attempt
from tests.conftest import LOCAL, SIGNING, TEAM, TOKEN, Receiver, alias_event, setup_team


def test_demo_delivers_and_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("signature standard-webhooks: verified") == 3
    assert out.count("signature wandb: verified") == 3
    assert "ml-team/model-registry/churn:v12" in out
    assert "ghp_demo-access-token-0123456789" not in out  # the token is masked
    assert "all requests delivered and verified" in out


def test_keygen_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    sealed = hw.SecretKey(key).encrypt(b"x", context="c")
    assert hw.SecretKey(key).decrypt(sealed, context="c") == b"x"


def test_history_and_test_webhook_commands(
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = hw.crypto.generate_key_text()
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", key)
    db = str(tmp_path / "h.db")
    with hw.SQLiteStorage(db) as store:
        setup_team(store, receiver.url)
        with hw.Dispatcher(store, worker=False) as producer:
            producer.handle(alias_event())
    assert main(["deliveries", "--db", db, "--team", TEAM]) == 0
    out = capsys.readouterr().out
    assert "PENDING" in out
    assert "1 deliveries" in out

    args = ["test-webhook", "--db", db, "--allow", "127.0.0.0/8", "--allow-http"]
    assert main([*args, TEAM, "github-dispatch"]) == 0
    assert "ok=True status=200" in capsys.readouterr().out
    assert len(receiver.requests) == 1
    # refused by the default policy: the error is printed, the exit code says so
    assert main(["test-webhook", "--db", db, TEAM, "github-dispatch"]) == 1
    assert len(receiver.requests) == 1


def test_missing_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    hw.SQLiteStorage(db, key=hw.SecretKey(hw.crypto.generate_key_text())).close()
    monkeypatch.delenv("HOOKWISE_SECRET_KEY", raising=False)
    assert main(["deliveries", "--db", str(db)]) == 2
    assert "HOOKWISE_SECRET_KEY" in capsys.readouterr().err


# -- deliveries: the filters -------------------------------------------------------------

OTHER = "other-team"
NOW = time.time()
AGES = {"old": 3 * 86400, "mid": 5 * 3600, "theirs": 3600, "new": 600}  # seconds ago


@attrs.frozen
class History:
    db: str
    ids: dict[str, str]  # our name -> delivery id


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> History:
    """A real SQLite file holding four deliveries, created AGES ago:

    ======  ==========  ==================  ===================  =========
    name    team        automation          webhook              status
    ======  ==========  ==================  ===================  =========
    old     ml-team     deploy-on-production  github-dispatch    SUCCEEDED
    mid     ml-team     notify-on-staging   slack-relay          PENDING
    theirs  other-team  deploy-on-production  github-dispatch    PENDING
    new     ml-team     deploy-on-production  github-dispatch    PENDING
    ======  ==========  ==================  ===================  =========
    """
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    db = str(tmp_path / "history.db")
    url = "http://127.0.0.1:9/hook"  # never connected to: nothing here sends
    now = [NOW]
    with hw.SQLiteStorage(db) as store:
        admin = setup_team(store, url)
        admin.create_webhook(hw.Webhook(team=TEAM, name="slack-relay", url=url))
        admin.create_automation(
            hw.Automation(
                name="notify-on-staging",
                scope=hw.Scope.registry(TEAM, "model-registry"),
                event=hw.OnAddArtifactAlias(alias="^staging$"),
                action=hw.SendWebhook(webhook="slack-relay"),
            )
        )
        admin.create_webhook(hw.Webhook(team=OTHER, name="github-dispatch", url=url))
        admin.create_automation(
            hw.Automation(
                name="deploy-on-production",
                scope=hw.Scope.registry(OTHER, "model-registry"),
                event=hw.OnAddArtifactAlias(alias="^production$"),
                action=hw.SendWebhook(webhook="github-dispatch"),
            )
        )
        other_event = hw.Event.artifact_alias_added(
            entity=OTHER,
            project="model-registry",
            collection="churn",
            version="v1",
            alias="production",
            author="bob",
        )
        events = {
            "old": alias_event(),
            "mid": alias_event("staging"),
            "theirs": other_event,
            "new": alias_event(),
        }
        ids: dict[str, str] = {}
        with hw.Dispatcher(store, worker=False, network=LOCAL, clock=lambda: now[0]) as d:
            for name, event in events.items():
                now[0] = NOW - AGES[name]
                [delivery] = d.handle(event)
                ids[name] = delivery.id
        [claim] = [c for c in store.claim(NOW, limit=1, lease=60) if c.delivery.id == ids["old"]]
        assert store.record_attempt(
            claim,
            make_attempt(claim, started_at=NOW),
            status=hw.DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=NOW,
        )
    return History(db, ids)


def listed(history: History, capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    """Our names of the deliveries `hookwise deliveries` lists, in its order."""
    assert main(["deliveries", "--db", history.db, *options]) == 0
    *rows, total = capsys.readouterr().out.splitlines()
    assert total == f"{len(rows)} deliveries"
    names = {delivery_id: name for name, delivery_id in history.ids.items()}
    return [names[row.split()[0]] for row in rows]


def iso(seconds_ago: float) -> str:
    when = datetime.fromtimestamp(NOW - seconds_ago, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_deliveries_lists_all_newest_first(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(history, capsys) == ["new", "theirs", "mid", "old"]
    assert listed(history, capsys, "--limit", "2") == ["new", "theirs"]
    assert listed(history, capsys, "--limit", "0") == []


def test_deliveries_by_team_automation_and_webhook(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(history, capsys, "--team", TEAM) == ["new", "mid", "old"]
    assert listed(history, capsys, "--team", OTHER) == ["theirs"]
    assert listed(history, capsys, "--automation", "notify-on-staging") == ["mid"]
    assert listed(history, capsys, "--automation", "deploy-on-production") == [
        "new",
        "theirs",
        "old",
    ]
    assert listed(history, capsys, "--webhook", "slack-relay") == ["mid"]
    # a webhook name is per team: both teams have a github-dispatch
    assert listed(history, capsys, "--webhook", "github-dispatch") == ["new", "theirs", "old"]
    assert listed(history, capsys, "--webhook", "github-dispatch", "--team", OTHER) == ["theirs"]
    assert listed(history, capsys, "--webhook", "slack-relay", "--team", OTHER) == []
    assert listed(history, capsys, "--webhook", "nowhere") == []


def test_deliveries_status_in_any_case(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(history, capsys, "--status", "pending") == ["new", "theirs", "mid"]
    assert listed(history, capsys, "--status", "PENDING") == ["new", "theirs", "mid"]
    assert listed(history, capsys, "--status", "Succeeded") == ["old"]
    assert listed(history, capsys, "--status", "failed") == []
    assert listed(history, capsys, "--status", "pending", "--team", TEAM) == ["new", "mid"]


def test_deliveries_since_an_age(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    assert listed(history, capsys, "--since", "30m") == ["new"]
    assert listed(history, capsys, "--since", "2h") == ["new", "theirs"]
    assert listed(history, capsys, "--since", "6h") == ["new", "theirs", "mid"]
    assert listed(history, capsys, "--since", "3500s") == ["new"]
    assert listed(history, capsys, "--since", "3700s") == ["new", "theirs"]
    assert listed(history, capsys, "--since", "4d") == ["new", "theirs", "mid", "old"]
    assert listed(history, capsys, "--since", "1w") == ["new", "theirs", "mid", "old"]
    assert listed(history, capsys, "--since", "1D") == ["new", "theirs", "mid"]
    assert listed(history, capsys, "--since", "1.5h") == ["new", "theirs"]


def test_deliveries_since_an_iso_time(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    assert listed(history, capsys, "--since", iso(2 * 3600)) == ["new", "theirs"]
    assert listed(history, capsys, "--since", iso(-60)) == []  # a minute from now
    offset = datetime.fromtimestamp(NOW - 6 * 3600, timezone(timedelta(hours=2)))
    assert listed(history, capsys, "--since", offset.isoformat()) == ["new", "theirs", "mid"]
    naive = datetime.fromtimestamp(NOW - 6 * 3600, timezone.utc).replace(tzinfo=None)
    assert listed(history, capsys, "--since", naive.isoformat()) == ["new", "theirs", "mid"]
    exact = datetime.fromtimestamp(NOW - AGES["mid"] - 1, timezone.utc)  # a second before mid
    assert listed(history, capsys, "--since", exact.strftime("%Y-%m-%dT%H:%M:%S+00:00")) == [
        "new",
        "theirs",
        "mid",
    ]


def test_deliveries_filters_combine(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    assert listed(history, capsys, "--since", "2h", "--team", TEAM) == ["new"]
    assert listed(
        history, capsys, "--since", "4d", "--webhook", "github-dispatch", "--status", "pending"
    ) == ["new", "theirs"]
    assert listed(
        history, capsys, "--team", TEAM, "--automation", "deploy-on-production",
        "--webhook", "github-dispatch", "--status", "succeeded", "--since", "4d",
    ) == ["old"]  # fmt: skip
    assert listed(history, capsys, "--automation", "notify-on-staging", "--since", "1h") == []
    assert listed(history, capsys, "--webhook", "github-dispatch", "--limit", "1") == ["new"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--since", "yesterday"),
        ("--since", "2026-13-01T00:00:00Z"),
        ("--since", "30"),
        ("--since", "2 hours"),
        ("--since", "9" * 400 + "d"),
        ("--status", "done"),
        ("--limit", "many"),
    ],
)
def test_deliveries_refuses_a_bad_option(
    history: History, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["deliveries", "--db", history.db, option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err
    assert repr(value) in err


def test_deliveries_refuses_a_negative_limit(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deliveries", "--db", history.db, "--limit", "-1"]) == 2
    assert "limit" in capsys.readouterr().err


# -- redeliver -----------------------------------------------------------------------------


def test_redeliver_requeues_with_the_same_webhook_id(
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    db = str(tmp_path / "h.db")
    with hw.SQLiteStorage(db) as store:
        setup_team(store, receiver.url)
        with hw.Dispatcher(store, network=LOCAL) as dispatcher:
            [delivery] = dispatcher.handle(alias_event())
            assert dispatcher.flush(10)
        sent = store.get_delivery(delivery.id)
        assert sent is not None
        assert sent.status is hw.DeliveryStatus.SUCCEEDED
        attempts = store.list_attempts(delivery.id)
    assert len(receiver.requests) == 1

    assert main(["redeliver", "--db", db, delivery.id]) == 0
    assert capsys.readouterr().out == (
        f"requeued {delivery.id}: PENDING, webhook-id {delivery.message_id}; "
        "a running `hookwise worker` sends it\n"
    )
    assert len(receiver.requests) == 1  # the command sends nothing itself
    with hw.SQLiteStorage(db) as store:
        again = store.get_delivery(delivery.id)
        assert again is not None
        assert again.status is hw.DeliveryStatus.PENDING
        assert again.message_id == delivery.message_id
        assert again.finished_at is None
        assert store.list_attempts(delivery.id) == attempts  # the history is kept
        with hw.Dispatcher(store, network=LOCAL) as worker:  # what `hookwise worker` does
            assert worker.flush(10)
        done = store.get_delivery(delivery.id)
        assert done is not None
        assert done.status is hw.DeliveryStatus.SUCCEEDED
        assert len(store.list_attempts(delivery.id)) == 2
    first, second = ({k.lower(): v for k, v in r.headers.items()} for r in receiver.requests)
    assert first["webhook-id"] == second["webhook-id"] == delivery.message_id
    assert receiver.requests[0].body == receiver.requests[1].body


def test_redeliver_several_and_an_unknown_id(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = history.ids
    message_ids = {name: _message_id(history, name) for name in ("old", "mid")}
    code = main(["redeliver", "--db", history.db, ids["old"], "no-such-id", ids["mid"]])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"requeued {ids[name]}: PENDING, webhook-id {message_ids[name]}; "
        "a running `hookwise worker` sends it"
        for name in ("old", "mid")
    ]
    assert {_message_id(history, name) for name in ("old", "mid")} == set(message_ids.values())
    assert "delivery 'no-such-id' does not exist" in captured.err
    # the known ones were requeued all the same: old is PENDING again
    assert listed(history, capsys, "--status", "succeeded") == []
    assert listed(history, capsys, "--status", "pending") == ["new", "theirs", "mid", "old"]


def _message_id(history: History, name: str) -> str:
    with hw.SQLiteStorage(history.db) as store:
        delivery = store.get_delivery(history.ids[name])
    assert delivery is not None
    return delivery.message_id


def test_redeliver_only_an_unknown_id(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redeliver", "--db", history.db, "no-such-id"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "delivery 'no-such-id' does not exist" in captured.err
    assert listed(history, capsys, "--status", "succeeded") == ["old"]  # nothing changed


def test_redeliver_needs_an_id(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["redeliver", "--db", history.db])
    assert exited.value.code == 2
    assert "ID" in capsys.readouterr().err


# -- every command and option is described ---------------------------------------------


def _commands(
    parser: argparse.ArgumentParser, path: str = "hookwise"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    seen = []
    for path, parser in _commands(_parser()):
        seen.append(path)
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest} has no help"
                continue
            where = f"{path} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no help"
            assert action.help != argparse.SUPPRESS, f"{where} is hidden"
    for command in ("apply", "secrets list", "webhooks list", "automations list", "worker"):
        assert f"hookwise {command}" in seen
    assert len(seen) > 15


# -- listing ---------------------------------------------------------------------------


@pytest.fixture
def listed_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    db = str(tmp_path / "h.db")
    with hw.SQLiteStorage(db) as store:
        admin = setup_team(store, "https://example.com/hooks/T0KEN-IN-THE-PATH?sig=QUERY-TOKEN")
        admin.create_webhook(hw.Webhook(team=OTHER, name="theirs", url="https://example.org/x"))
        admin.disable_webhook(OTHER, "theirs", "410 Gone")
        admin.create_automation(
            hw.Automation(
                name="theirs-on-production",
                scope=hw.Scope.registry(OTHER, "model-registry"),
                event=hw.OnAddArtifactAlias(alias="^production$"),
                action=hw.SendWebhook(webhook="theirs"),
                enabled=False,
            )
        )
    return db


def test_secrets_list_shows_names_never_values(
    listed_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["secrets", "list", "--db", listed_db, "--team", TEAM]) == 0
    out = capsys.readouterr().out
    *rows, total = out.splitlines()
    assert total == "2 secrets"
    assert [row.split()[0] for row in rows] == [f"{TEAM}/GITHUB_TOKEN", f"{TEAM}/SIGNING_KEY"]
    assert all(re.search(r"created \d{4}-\d\d-\d\dT\S+Z  updated \d{4}-", row) for row in rows)
    assert TOKEN not in out
    assert SIGNING not in out
    assert main(["secrets", "list", "--db", listed_db, "--team", OTHER]) == 0
    assert capsys.readouterr().out == "0 secrets\n"


def test_webhooks_list_shows_no_url_path(
    listed_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhooks", "list", "--db", listed_db, "--team", TEAM]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{TEAM}/github-dispatch  https://example.com  enabled  signing=standard-webhooks,wandb  "
        "access_token=GITHUB_TOKEN, secret=SIGNING_KEY",
        "1 webhooks",
    ]
    assert "T0KEN" not in out
    assert main(["webhooks", "list", "--db", listed_db, "--team", OTHER]) == 0
    assert "theirs  https://example.org  DISABLED (410 Gone)" in capsys.readouterr().out


def test_automations_list_every_team_or_one(
    listed_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["automations", "list", "--db", listed_db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{TEAM}/deploy-on-production  enabled  registry {TEAM}/model-registry: "
        "OnAddArtifactAlias -> webhook github-dispatch",
        f"{OTHER}/theirs-on-production  DISABLED  registry {OTHER}/model-registry: "
        "OnAddArtifactAlias -> webhook theirs",
        "2 automations",
    ]
    assert main(["automations", "list", "--db", listed_db, "--team", OTHER]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 automations"


@pytest.mark.parametrize(
    ("command", "rest"),
    [
        ("deliveries", []),
        ("redeliver", ["some-id"]),
        ("secrets list", ["--team", TEAM]),
        ("webhooks list", ["--team", TEAM]),
        ("automations list", []),
        ("automations list", ["--team", TEAM]),
        ("test-webhook", [TEAM, "github-dispatch"]),
        ("rotate-key", []),
        ("worker", ["--grace", "0"]),  # a typo in --db would send from nothing, forever
        ("import-wandb", [str(Path(__file__).parent / "data" / "wandb_export.json")]),
    ],
)
def test_the_read_only_commands_refuse_a_missing_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    rest: list[str],
) -> None:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    for db in (tmp_path / "typo.db", tmp_path / "no-such-folder" / "h.db"):
        assert main([*command.split(), "--db", str(db), *rest]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"no database at {str(db)!r}: `hookwise {command}` opens an existing" in captured.err
    assert list(tmp_path.iterdir()) == []


# -- worker progress -----------------------------------------------------------------------


def test_worker_says_when_it_starts_and_drains(
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGTERM at once (the handler is called as it is installed): the
    worker still sends what is waiting within --grace, saying so."""
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    db = str(tmp_path / "h.db")
    with hw.SQLiteStorage(db) as store:
        setup_team(store, receiver.url)
        with hw.Dispatcher(store, worker=False) as producer:
            producer.handle(alias_event())

    def sigterm_now(signum: int, handler: Any) -> Any:
        assert signum == signal.SIGTERM
        handler(signum, None)
        return signal.SIG_DFL

    monkeypatch.setattr(cli.signal, "signal", sigterm_now)
    monkeypatch.setattr(cli.logging, "basicConfig", lambda **_: None)
    args = ["worker", "--db", db, "--allow", "127.0.0.0/8", "--allow-http", "--grace", "30"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"worker: sending from {db} (1 deliveries waiting); stop with SIGTERM or ^C",
        "worker: stopping: finishing sends for up to 30s, then giving the rest back to the outbox",
        "worker: stopped, 0 deliveries left in the outbox",
    ]
    assert len(receiver.requests) == 1


def test_an_empty_file_is_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    empty = tmp_path / "touched.db"
    empty.touch()
    assert main(["automations", "list", "--db", str(empty)]) == 2
    assert "an empty file at" in capsys.readouterr().err
    assert empty.stat().st_size == 0  # nothing was written into it


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_durations_must_be_seconds(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["worker", "--db", "x.db", "--grace", value])
    assert exited.value.code == 2
    assert "is not a number of seconds" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`hookwise ... | head` where head has gone: exit 1, no traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOOKWISE_SECRET_KEY": hw.crypto.generate_key_text()}
    db = tmp_path / "h.db"
    with hw.SQLiteStorage(db, key=hw.SecretKey(env["HOOKWISE_SECRET_KEY"])):
        pass
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    done = subprocess.run(
        [sys.executable, "-m", "hookwise.cli", "secrets", "list", "--db", str(db), "--team", "t"],
        stdout=write,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        timeout=60,
    )
    os.close(write)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
