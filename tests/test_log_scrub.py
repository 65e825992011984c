"""No secret reaches a log record: hookwise's own, httpx's or httpcore's, at
DEBUG, with a receiver that echoes the access token back; and no URL path
(a Slack or Discord URL carries its token there)."""

from __future__ import annotations

import gc
import logging
import uuid
from typing import Any

import pytest

import hookwise as hw
from hookwise import logs
from tests.conftest import SIGNING, TEAM, TOKEN, Receiver, alias_event, setup_team

PATH_SECRET = "T0123/B0456/PATH-SECRET-xoxb"
QUERY_SECRET = "QUERY-SECRET-value"
EVERY_SECRET = (TOKEN, SIGNING, PATH_SECRET, QUERY_SECRET, "PATH-SECRET")


def rendered(record: logging.LogRecord) -> str:
    """Everything a handler could print for ``record``."""
    parts = [logging.Formatter().format(record), record.getMessage(), str(record.msg)]
    parts += [record.exc_text or "", record.stack_info or ""]
    parts += [repr(value) for value in vars(record).values()]
    return "\n".join(parts)


def assert_clean(records: list[logging.LogRecord], *also: str) -> None:
    for record in records:
        text = rendered(record)
        for secret in (*EVERY_SECRET, *also):
            assert secret not in text, (record.name, secret, text)
        for form in (repr(TOKEN.encode())[2:-1], TOKEN.replace("-", "%2D")):
            assert form not in text


def test_debug_logs_of_every_path_hold_no_secret_and_no_url_path(
    store: hw.Storage,
    receiver: Receiver,
    make_dispatcher: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{receiver.url}/{PATH_SECRET}?token={QUERY_SECRET}"
    setup_team(store, url)
    echo = (200, {"X-Echo-Token": TOKEN, "X-Echo-Key": SIGNING}, f"{TOKEN} {SIGNING}".encode())
    receiver.script = [(500, {"X-Echo-Token": TOKEN}, TOKEN.encode()), echo, echo]
    with caplog.at_level(logging.DEBUG):
        dispatcher = make_dispatcher(store)
        dispatcher.handle(alias_event())
        assert dispatcher.flush(timeout=30)  # a 500 first (a warning line), then a retry
        result = dispatcher.test_webhook(TEAM, "github-dispatch")
        assert result.ok
        dispatcher.close()
    assert len(receiver.requests) >= 3
    assert receiver.requests[0].path.endswith(QUERY_SECRET)  # the URL really carried them
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"hookwise", "httpcore"} <= names
    httpcore = [r for r in caplog.records if r.name.startswith("httpcore")]
    assert any(logs.REDACTED in r.getMessage() for r in httpcore)  # the echo was seen, and cut
    # the senders call the transport, not httpx.Client: no "HTTP Request: POST <URL>" line
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert not any("HTTP Request" in line for line in httpx_lines)
    assert_clean(caplog.records, receiver.url)  # ".../hook": the path, cut


def test_an_exception_logged_by_a_library_is_scrubbed_too(
    store: hw.Storage, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    setup_team(store, receiver.url)
    network = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
    with hw.Dispatcher(store, worker=False, network=network) as dispatcher:
        dispatcher.test_webhook(TEAM, "github-dispatch")  # opens the secrets
        try:
            raise RuntimeError(f"failed at https://hooks.slack.com/services/{PATH_SECRET} {TOKEN}")
        except RuntimeError:
            with caplog.at_level(logging.DEBUG):
                logging.getLogger("httpx").exception("boom %s", TOKEN)
                logging.getLogger("httpcore.http11").debug("headers %r", [(b"x", TOKEN.encode())])
    assert_clean(caplog.records)
    [boom, headers] = caplog.records
    assert boom.exc_text is not None
    assert "https://hooks.slack.com" in boom.exc_text
    assert "***" in headers.getMessage()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST https://hooks.slack.com/services/T0/B0/XyZ ok", "POST https://hooks.slack.com ok"),
        ("URL('https://discord.com/api/webhooks/1/tok?x=1')", "URL('https://discord.com')"),
        ("http://user:pa55@10.0.0.1:8080/a/b#frag", "http://10.0.0.1:8080"),
        ("at http://[::1]:9000/p then", "at http://[::1]:9000 then"),
        ("no url here", "no url here"),
    ],
)
def test_urls_are_cut_to_scheme_and_host(text: str, expected: str) -> None:
    assert logs.redact_urls(text) == expected


def test_install_is_idempotent_and_covers_the_library_loggers() -> None:
    first, second = logs.install(), logs.install()
    assert first is second
    for name in ("hookwise", "httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        filters = logging.getLogger(name).filters
        assert filters.count(first) == 1


def test_a_dispatcher_installs_the_filter(store: hw.Storage) -> None:
    for name in ("httpx", "httpcore.http11"):
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, logs.RedactingFilter)]:
            logger.removeFilter(existing)
    hw.Dispatcher(store, worker=False).close()
    assert any(isinstance(f, logs.RedactingFilter) for f in logging.getLogger("httpx").filters)


def test_the_registry_is_bounded_and_cleared_on_refresh() -> None:
    values = logs.SecretValues()
    for number in range(logs.MAX_VALUES + 50):
        values.add(f"value-{number}")
    assert len(values) == logs.MAX_VALUES
    assert "value-0" not in values.forms()
    assert f"value-{logs.MAX_VALUES + 49}" in values.forms()
    values.rotate()  # a refresh: still scrubbed, for requests in flight
    assert len(values) == logs.MAX_VALUES
    values.rotate()  # the next one: gone
    assert len(values) == 0


def test_a_registry_goes_with_its_dispatcher(store: hw.Storage, receiver: Receiver) -> None:
    admin = setup_team(store, receiver.url)
    unique = f"ghp_unique-VALUE-{uuid.uuid4().hex}"  # no other test's dispatcher knows it
    admin.update_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=unique))
    network = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
    dispatcher = hw.Dispatcher(store, worker=False, network=network)
    dispatcher.test_webhook(TEAM, "github-dispatch")
    assert unique in logs._known_forms()
    dispatcher.close()
    del dispatcher
    gc.collect()
    assert unique not in logs._known_forms()


def test_a_refresh_after_a_change_forgets_old_values(store: hw.Storage, receiver: Receiver) -> None:
    admin = setup_team(store, receiver.url)
    first, rotated = (f"ghp_{n}-VALUE-{uuid.uuid4().hex}" for n in ("first", "rotated"))
    admin.update_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=first))
    network = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
    with hw.Dispatcher(store, worker=False, network=network, refresh_interval=0.0) as dispatcher:
        dispatcher.test_webhook(TEAM, "github-dispatch")
        assert first in logs._known_forms()
        admin.update_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=rotated))
        dispatcher.deliver_due()  # refresh #1: the old value is kept one generation
        assert first in logs._known_forms()
        dispatcher.test_webhook(TEAM, "github-dispatch")
        assert rotated in logs._known_forms()
        admin.update_secret(hw.Secret(team=TEAM, name="SIGNING_KEY", value="s3cr3t-2nd-VALUE"))
        dispatcher.deliver_due()  # refresh #2: the old token is gone
        assert first not in logs._known_forms()
        assert rotated in logs._known_forms()  # still the current one's, in flight


def test_the_worker_command_logs_no_token_from_a_url_path(
    tmp_path: Any, receiver: Receiver
) -> None:
    """`hookwise worker` turns INFO logging on for everything: a Slack-style
    token in the URL's path or query shows up in none of its output, while
    the request really went to that path."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from hookwise.crypto import generate_key_text

    key_text = generate_key_text()
    key = hw.SecretKey(key_text)
    db = tmp_path / "hookwise.db"
    with hw.SQLiteStorage(db, key=key) as store:
        setup_team(store, f"{receiver.url}/{PATH_SECRET}?t={QUERY_SECRET}")
        with hw.Dispatcher(store, worker=False) as app:
            [delivery] = app.handle(alias_event())
    env = {**os.environ, "HOOKWISE_SECRET_KEY": key_text}
    command = [sys.executable, "-m", "hookwise.cli", "worker", "--db", str(db)]
    command += ["--allow", "127.0.0.0/8", "--allow-http", "--grace", "1"]
    worker = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the response line is logged after the request arrives
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert receiver.requests, err
    assert receiver.requests[0].path.endswith(QUERY_SECRET)
    assert "attempt 1: 200" in err  # the worker did log the delivery
    for secret in (*EVERY_SECRET, receiver.url):  # receiver.url ends in its path, /hook
        assert secret not in out + err, secret
    with hw.SQLiteStorage(db, key=key) as store:
        done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED
