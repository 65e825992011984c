"""The hookwise command: the demo works, and the admin commands read the store."""

from __future__ import annotations

from pathlib import Path

import pytest

import hookwise as hw
from hookwise.cli import main
from tests.conftest import TEAM, Receiver, alias_event, setup_team


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
    monkeypatch.delenv("HOOKWISE_SECRET_KEY", raising=False)
    assert main(["deliveries", "--db", str(tmp_path / "x.db")]) == 2
    assert "HOOKWISE_SECRET_KEY" in capsys.readouterr().err
