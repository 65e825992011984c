"""Delivery end to end and in units. Every test runs twice through the
``make_dispatcher`` fixture: once on Dispatcher, once on AsyncDispatcher."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from typing import Any

import httpx
import pytest
import standardwebhooks

import hookwise as hw
from hookwise.history import scrub
from hookwise.storage.protocol import SecretRecord
from hookwise.vault import secret_context
from tests.conftest import LOCAL, PUBLIC, SIGNING, TEAM, TOKEN, Receiver, alias_event, setup_team

FAST = hw.RetryPolicy(max_attempts=3, base_delay=0.001, factor=1.0, jitter=False)


class Recorder:
    """An httpx.MockTransport handler answering from a script, recording requests."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            answer = self.responses.pop(0) if self.responses else httpx.Response(200, text="ok")
        if isinstance(answer, Exception):
            raise answer
        # a fresh copy: parametrized cases share these objects, and a body reads once
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def test_end_to_end_signed_request(
    store: hw.Storage, receiver: Receiver, make_dispatcher: Any
) -> None:
    setup_team(store, receiver.url)
    dispatcher = make_dispatcher(store)
    deliveries = dispatcher.handle(alias_event(metadata={"accuracy": 0.93}))
    assert len(deliveries) == 1
    assert dispatcher.flush(timeout=10)

    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("hookwise/")
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert got.json() == {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "version": "ml-team/model-registry/churn:v12",
            "author": "alice",
            "token": TOKEN,
        },
    }
    # both schemes verify, by us and by others
    assert hw.verify(SIGNING, got.body, headers, scheme=hw.Scheme.STANDARD) is hw.Scheme.STANDARD
    assert hw.verify(SIGNING, got.body, headers, scheme=hw.Scheme.WANDB) is hw.Scheme.WANDB
    standardwebhooks.Webhook(SIGNING.encode()).verify(got.body, headers)
    expected = base64.b64encode(hmac.new(SIGNING.encode(), got.body, hashlib.sha256).digest())
    assert headers["x-wandb-signature"] == expected.decode()
    assert headers["webhook-id"] == deliveries[0].message_id

    [done] = hw.Admin(store, network=LOCAL).deliveries(team=TEAM)
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert done.attempts == 1
    assert done.response_status == 200
    assert done.response_body == "ok"
    assert TOKEN not in done.display
    assert json.loads(done.display)["client_payload"]["token"] == "${ACCESS_TOKEN}"
    [attempt] = store.list_attempts(done.id)
    assert attempt.response_status == 200
    assert attempt.url == receiver.url


def test_non_matching_events_send_nothing(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    assert dispatcher.handle(alias_event("staging")) == []
    other_project = hw.Event.artifact_alias_added(
        entity=TEAM, project="elsewhere", collection="churn", version="v1", alias="production"
    )
    assert dispatcher.handle(other_project) == []
    other_team = hw.Event.artifact_alias_added(
        entity="other-team",
        project="model-registry",
        collection="churn",
        version="v1",
        alias="production",
    )
    assert dispatcher.handle(other_team) == []
    tag = hw.Event.artifact_tag_added(
        entity=TEAM, project="model-registry", collection="churn", version="v1", tag="production"
    )
    assert dispatcher.handle(tag) == []
    assert dispatcher.flush(timeout=5)
    assert recorder.requests == []
    assert store.list_deliveries() == []


def test_collection_scope_and_disabled_automation(store: hw.Storage, make_dispatcher: Any) -> None:
    admin = setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    admin.create_automation(
        hw.Automation(
            name="churn-only",
            scope=hw.Scope.collection(TEAM, "model-registry", "churn"),
            event=hw.OnCreateArtifact(),
            action=hw.SendWebhook(
                webhook="github-dispatch", payload={"c": "${artifact_collection_name}"}
            ),
        )
    )
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)

    def created(collection: str) -> hw.Event:
        return hw.Event.artifact_created(
            entity=TEAM, project="model-registry", collection=collection, version="v3"
        )

    assert dispatcher.handle(created("fraud")) == []
    assert len(dispatcher.handle(created("churn"))) == 1
    admin.disable_automation(TEAM, "churn-only")
    assert dispatcher.handle(created("churn")) == []
    admin.enable_automation(TEAM, "churn-only")
    assert len(dispatcher.handle(created("churn"))) == 1
    assert dispatcher.flush(timeout=5)
    assert [json.loads(r.content) for r in recorder.requests] == [{"c": "churn"}, {"c": "churn"}]


def test_hostile_values_stay_data(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(
        store,
        "https://hooks.example.com/x",
        network=PUBLIC,
        alias=".*",
        payload={"alias": "${alias}", "meta": "${artifact_metadata.note}", "fixed": "yes"},
    )
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    hostile = '"}, "x": "${ACCESS_TOKEN}'
    big = '\n\u2603"\\' + "x" * 1_000_000
    dispatcher.handle(alias_event(hostile, metadata={"note": big}))
    assert dispatcher.flush(timeout=10)
    [request] = recorder.requests
    assert json.loads(request.content) == {"alias": hostile, "meta": big, "fixed": "yes"}
    assert TOKEN.encode() not in request.content


@pytest.mark.parametrize(
    ("answers", "status", "attempts"),
    [
        ([httpx.Response(503), httpx.Response(200)], hw.DeliveryStatus.SUCCEEDED, 2),
        (
            [httpx.Response(429), httpx.Response(408), httpx.Response(204)],
            hw.DeliveryStatus.SUCCEEDED,
            3,
        ),
        ([httpx.Response(500)] * 3, hw.DeliveryStatus.FAILED, 3),
        ([httpx.ConnectError("refused")] * 3, hw.DeliveryStatus.FAILED, 3),
        ([httpx.ReadTimeout("slow"), httpx.Response(200)], hw.DeliveryStatus.SUCCEEDED, 2),
        ([httpx.Response(400)], hw.DeliveryStatus.FAILED, 1),
        (
            [httpx.Response(302, headers={"Location": "http://127.0.0.1/"})],
            hw.DeliveryStatus.FAILED,
            1,
        ),
        ([httpx.Response(404)], hw.DeliveryStatus.FAILED, 1),
    ],
)
def test_retry_outcomes(
    store: hw.Storage,
    make_dispatcher: Any,
    answers: list[Any],
    status: hw.DeliveryStatus,
    attempts: int,
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder(*answers)
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder, retry=FAST)
    [delivery] = dispatcher.handle(alias_event())
    deadline_ok = dispatcher.flush(timeout=10)
    assert deadline_ok
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is status
    assert done.attempts == attempts
    assert len(recorder.requests) == attempts
    history = store.list_attempts(delivery.id)
    assert [a.number for a in history] == list(range(1, attempts + 1))
    # the same webhook-id on every attempt: receivers deduplicate on it
    assert {r.headers["webhook-id"] for r in recorder.requests} == {delivery.message_id}
    if status is hw.DeliveryStatus.FAILED:
        assert done.error
        assert done.finished_at is not None


def test_retry_after_is_honoured(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "120"}))
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder, retry=FAST)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)  # a retry two minutes out does not hold flush up
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.RETRYING
    assert done.next_attempt_at is not None
    [attempt] = store.list_attempts(delivery.id)
    assert done.next_attempt_at - attempt.started_at >= 119
    assert dispatcher.close(timeout=0.1) == 1


def test_gone_disables_the_webhook(store: hw.Storage, make_dispatcher: Any) -> None:
    admin = setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder(httpx.Response(410))
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder, retry=FAST)
    dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert admin.get_webhook(TEAM, "github-dispatch").enabled is False
    [second] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert len(recorder.requests) == 1
    later = store.get_delivery(second.id)
    assert later is not None
    assert later.status is hw.DeliveryStatus.FAILED
    assert later.error is not None
    assert "disabled" in later.error


def test_echoed_secrets_are_scrubbed_from_history(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text=request.headers["authorization"] + request.content.decode())

    dispatcher = make_dispatcher(
        store, network=PUBLIC, handler=echo, retry=hw.RetryPolicy(max_attempts=1)
    )
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.response_body is not None
    assert "[REDACTED]" in done.response_body
    for record in [done, *store.list_attempts(delivery.id)]:
        assert TOKEN not in repr(record)
        assert SIGNING not in repr(record)


def test_redeliver_keeps_the_webhook_id(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    dispatcher.redeliver(delivery.id)
    assert dispatcher.flush(timeout=10)
    assert len(recorder.requests) == 2
    first, second = recorder.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert first.content == second.content
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.attempts == 2
    assert done.status is hw.DeliveryStatus.SUCCEEDED


def test_blocked_address_at_send_time(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    rebinding = hw.NetworkPolicy(resolver=lambda host, port: ["169.254.169.254"])
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=rebinding, handler=recorder, worker=False)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.deliver_due() == 1
    assert recorder.requests == []
    done = store.get_delivery(delivery.id)
    assert done is not None
    # refused after DNS: retried like any failure (tests/test_policy_hold.py),
    # the reason kept, and the metadata address never reached
    assert done.status is hw.DeliveryStatus.RETRYING
    assert done.attempts == 1
    assert "169.254.169.254" in (done.error or "")


def test_default_policy_refuses_plain_http_to_loopback(
    store: hw.Storage, receiver: Receiver, make_dispatcher: Any
) -> None:
    setup_team(store, receiver.url)  # stored under the permissive policy
    dispatcher = make_dispatcher(store, network=hw.NetworkPolicy())
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert receiver.requests == []
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.PENDING  # held for the configuration
    assert (done.attempts, done.error) == (0, None)


def test_test_webhook_sends_now_and_stores_nothing(
    store: hw.Storage, receiver: Receiver, make_dispatcher: Any
) -> None:
    setup_team(store, receiver.url)
    receiver.script.append((202, {"X-Echo": TOKEN}, b"accepted " + TOKEN.encode()))
    dispatcher = make_dispatcher(store)
    result = dispatcher.test_webhook(TEAM, "github-dispatch", payload={"ping": "$SIGNING_KEY"})
    assert result.ok
    assert result.status_code == 202
    assert result.body == "accepted [REDACTED]"
    assert result.headers["x-echo"] == "[REDACTED]"
    assert result.elapsed > 0
    assert result.request_body == '{"ping":"${SIGNING_KEY}"}'
    [got] = receiver.requests
    assert got.json() == {"ping": SIGNING}
    assert hw.verify(SIGNING, got.body, got.headers) is hw.Scheme.STANDARD
    assert store.list_deliveries() == []


def test_test_webhook_errors(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    dispatcher = make_dispatcher(
        store, network=PUBLIC, handler=Recorder(httpx.ConnectError("connection refused"))
    )
    failed = dispatcher.test_webhook(TEAM, "github-dispatch")
    assert not failed.ok
    assert failed.status_code is None
    assert "ConnectError" in (failed.error or "")
    with pytest.raises(hw.TemplateError, match="NOT_MINE"):
        dispatcher.test_webhook(TEAM, "github-dispatch", payload={"x": "${NOT_MINE}"})
    with pytest.raises(hw.NotFoundError):
        dispatcher.test_webhook(TEAM, "no-such-hook")
    refused = make_dispatcher(store, network=hw.NetworkPolicy(resolver=lambda h, p: ["10.1.2.3"]))
    blocked = refused.test_webhook(TEAM, "github-dispatch")
    assert not blocked.ok
    assert "10.1.2.3" in (blocked.error or "")


def test_close_reports_what_is_left_and_refuses_more(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    dispatcher = make_dispatcher(store, network=PUBLIC, worker=False, handler=Recorder())
    dispatcher.handle(alias_event())
    dispatcher.handle(alias_event())
    assert dispatcher.close(timeout=0.1) == 2
    with pytest.raises(hw.DispatcherClosedError):
        dispatcher.handle(alias_event())


def test_a_separate_worker_drains_the_outbox(store: hw.Storage, make_dispatcher: Any) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    producer = make_dispatcher(store, network=PUBLIC, worker=False, handler=Recorder())
    [delivery] = producer.handle(alias_event())
    recorder = Recorder()
    worker = make_dispatcher(store, network=PUBLIC, worker=False, handler=recorder)
    assert worker.deliver_due() == 1
    assert worker.deliver_due() == 0
    assert len(recorder.requests) == 1
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED


def test_missing_secret_at_render_is_recorded_not_raised(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    store.delete_secret(TEAM, "GITHUB_TOKEN")  # behind Admin's back
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    [delivery] = dispatcher.handle(alias_event())
    assert delivery.status is hw.DeliveryStatus.FAILED
    assert "GITHUB_TOKEN" in (delivery.error or "")
    assert dispatcher.flush(timeout=5)
    assert recorder.requests == []


def test_delivery_survives_a_restart(tmp_path: Any, make_dispatcher: Any) -> None:
    key = hw.SecretKey.generate()
    path = tmp_path / "outbox.db"
    store = hw.SQLiteStorage(path, key=key)
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    crashed = make_dispatcher(store, network=PUBLIC, worker=False, handler=Recorder())
    [delivery] = crashed.handle(alias_event())
    assert crashed.close(timeout=0) == 1  # it sends nothing: as if the process died here
    store.close()

    reopened = hw.SQLiteStorage(path, key=key)
    recorder = Recorder()
    dispatcher = make_dispatcher(reopened, network=PUBLIC, handler=recorder)
    assert dispatcher.flush(timeout=10)
    assert len(recorder.requests) == 1
    assert recorder.requests[0].headers["webhook-id"] == delivery.message_id
    dispatcher.close()
    reopened.close()


def test_default_payload_has_every_variable(store: hw.Storage, make_dispatcher: Any) -> None:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="plain", url="https://hooks.example.com/p"))
    admin.create_automation(
        hw.Automation(
            name="linked",
            scope=hw.Scope.project(TEAM, "model-registry"),
            event=hw.OnLinkArtifact(),
            action=hw.SendWebhook(webhook="plain"),
        )
    )
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    dispatcher.handle(
        hw.Event.artifact_linked(
            entity=TEAM, project="model-registry", collection="churn", version="v2", author="bob"
        )
    )
    assert dispatcher.flush(timeout=10)
    [request] = recorder.requests
    body = json.loads(request.content)
    assert body["event_type"] == "LINK_ARTIFACT"
    assert body["artifact_version_string"] == "ml-team/model-registry/churn:v2"
    assert body["event_author"] == "bob"
    assert body["alias"] == ""
    assert "authorization" not in request.headers
    assert "webhook-signature" not in request.headers
    assert "x-wandb-signature" not in request.headers


def test_local_policy_is_needed_for_the_receiver(store: hw.Storage, receiver: Receiver) -> None:
    with pytest.raises(hw.UnsafeURLError):
        setup_team(store, receiver.url, network=hw.NetworkPolicy())
    assert store.list_webhooks(TEAM) == []
    assert LOCAL.allow_http


def test_dns_failure_is_retried(store: hw.Storage, make_dispatcher: Any) -> None:
    import socket

    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    answers: list[Any] = [socket.gaierror("temporary failure in name resolution")]

    def flaky(host: str, port: int) -> list[str]:
        if answers:
            raise answers.pop()
        return ["93.184.216.34"]

    recorder = Recorder()
    dispatcher = make_dispatcher(
        store, network=hw.NetworkPolicy(resolver=flaky), handler=recorder, retry=FAST
    )
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert done.attempts == 2
    assert "gaierror" in (store.list_attempts(delivery.id)[0].error or "")
    assert len(recorder.requests) == 1


def test_a_reenabled_webhook_sends_again(store: hw.Storage, make_dispatcher: Any) -> None:
    admin = setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder)
    admin.disable_webhook(TEAM, "github-dispatch")
    [off] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert admin.enable_webhook(TEAM, "github-dispatch").enabled
    [on] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert len(recorder.requests) == 1
    statuses = [store.get_delivery(d.id).status for d in (off, on)]  # type: ignore[union-attr]
    assert statuses == [hw.DeliveryStatus.FAILED, hw.DeliveryStatus.SUCCEEDED]


def test_a_rotated_secret_is_used_by_the_next_attempt(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    import time

    admin = setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    recorder = Recorder(httpx.Response(503))
    worker = make_dispatcher(store, network=PUBLIC, handler=recorder, retry=FAST, worker=False)
    [delivery] = worker.handle(alias_event())
    assert worker.deliver_due() == 1
    admin.update_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value="ghp_rotated-0987654321"))
    time.sleep(0.01)  # the retry is due after 1 ms
    assert worker.deliver_due() == 1
    first, second = recorder.requests
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert second.headers["authorization"] == "Bearer ghp_rotated-0987654321"
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED


def test_a_stored_token_that_cannot_be_a_header_fails_without_leaking(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    context = secret_context(TEAM, "GITHUB_TOKEN")
    sealed = store.key.encrypt(f"{TOKEN}\n".encode(), context=context)
    record = SecretRecord(
        team=TEAM, name="GITHUB_TOKEN", ciphertext=sealed, created_at=0, updated_at=0
    )
    store.update_secret(record)  # behind Admin's back, which refuses it
    recorder = Recorder()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=recorder, retry=FAST)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.FAILED
    assert done.attempts == 1  # no retry: it would fail the same way
    assert "access_token" in (done.error or "")
    assert recorder.requests == []
    result = dispatcher.test_webhook(TEAM, "github-dispatch")
    assert not result.ok
    assert "access_token" in (result.error or "")
    for shown in [done, *store.list_attempts(delivery.id), result]:
        assert TOKEN not in repr(shown)


def test_an_unexpected_error_fails_one_delivery_not_the_batch(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)

    def broken(host: str, port: int) -> list[str]:
        raise RuntimeError(f"resolver bug, token {TOKEN}")

    dispatcher = make_dispatcher(
        store, network=hw.NetworkPolicy(resolver=broken), handler=Recorder(), retry=FAST
    )
    first = dispatcher.handle(alias_event())
    second = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    for delivery in first + second:
        done = store.get_delivery(delivery.id)
        assert done is not None
        assert done.status is hw.DeliveryStatus.FAILED
        assert done.error == "could not build the request: RuntimeError"


def test_scrub_catches_escaped_forms() -> None:
    token = 'tok\n"en'
    text = f"bad header b'Bearer {token!r}' and {token.encode()!r} and {token}"
    cleaned = scrub(text, [token])
    assert "tok" not in cleaned
    assert cleaned.count("[REDACTED]") == 3


@pytest.mark.parametrize("value", ['s3cr"t-VALUE-99', "pässwörd-1234", "a\\b\tc"])
def test_scrub_catches_a_secret_echoed_inside_json(value: str) -> None:
    for echoed in (json.dumps({"key": value}), json.dumps({"key": value}, ensure_ascii=False)):
        cleaned = scrub(f"bad payload: {echoed}", [value])
        assert cleaned == 'bad payload: {"key": "[REDACTED]"}'


def test_a_secret_across_the_history_cap_is_not_kept_in_part(
    store: hw.Storage, make_dispatcher: Any
) -> None:
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    echo = Recorder(httpx.Response(400, text="x" * 8185 + TOKEN))  # the cap is 8192
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=echo, retry=FAST)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    [attempt] = store.list_attempts(delivery.id)
    assert attempt.response_body == "x" * 8185 + "[REDACT"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": "4"}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"poll_interval": -0.1}, "poll_interval"),
        ({"refresh_interval": None}, "refresh_interval"),
    ],
)
@pytest.mark.parametrize("shell", [hw.Dispatcher, hw.AsyncDispatcher])
def test_dispatcher_options_are_checked(
    store: hw.Storage, shell: Any, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(hw.ValidationError) as raised:
        shell(store, **options)
    assert raised.value.field == field
