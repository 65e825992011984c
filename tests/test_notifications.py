"""SendNotification: a Slack message to an incoming-webhook URL kept as a
team secret, through the same outbox, with the URL never in the history."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import hookwise as hw
from tests.conftest import LOCAL, TEAM, Receiver

RUN = hw.Run(entity=TEAM, project="training", id="run-7", name="lr-sweep-7", user="alice")


def slack_setup(store: hw.Storage, url: str, **action: Any) -> hw.Admin:
    """A Slack URL secret and an automation posting there when a run fails."""
    admin = hw.Admin(store, network=LOCAL)
    admin.create_secret(hw.Secret(team=TEAM, name="SLACK_URL", value=url))
    admin.create_automation(
        hw.Automation(
            name="tell-slack",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunState(states=["FAILED"]),
            action=hw.SendNotification(
                secret="SLACK_URL",
                title=action.pop("title", "Run ${run_name} failed"),
                message=action.pop("message", "Owner: ${run_user}"),
                severity=action.pop("severity", "ERROR"),
            ),
        )
    )
    return admin


def test_a_failed_run_posts_a_slack_message(store: hw.Storage, receiver: Receiver) -> None:
    url = receiver.url.replace("/hook", "/services/T000/B000/XXXXSECRETXXXX")
    admin = slack_setup(store, url)
    with hw.Dispatcher(store, network=LOCAL) as dispatcher:
        [delivery] = dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))
        assert dispatcher.flush(timeout=10)
    [got] = receiver.requests
    assert got.path == "/services/T000/B000/XXXXSECRETXXXX"
    message = got.json()
    assert message["text"] == "[ERROR] Run lr-sweep-7 failed"
    header, section, context = message["blocks"]
    assert header["text"]["text"] == "Run lr-sweep-7 failed"
    assert section["text"]["text"] == "Owner: alice"
    assert "RUN_STATE" in context["elements"][0]["text"]
    assert "FAILED" in context["elements"][0]["text"]
    # Slack checks the URL only: no token, no signature
    assert "authorization" not in {name.lower() for name in got.headers}
    assert not {"webhook-signature", "x-wandb-signature"} & {n.lower() for n in got.headers}
    # the URL is a credential: the history names the secret instead
    [done] = admin.deliveries(team=TEAM)
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert done.url == done.webhook == "slack:SLACK_URL"
    [attempt] = admin.attempts(delivery.id)
    assert attempt.url == "slack:SLACK_URL"
    for shown in (done, attempt, delivery):
        assert "XXXXSECRETXXXX" not in repr(shown)


def test_a_message_without_text_has_no_section(store: hw.Storage, receiver: Receiver) -> None:
    slack_setup(store, receiver.url, message="", severity=hw.Severity.INFO)
    with hw.Dispatcher(store, network=LOCAL) as dispatcher:
        dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))
        assert dispatcher.flush(timeout=10)
    [got] = receiver.requests
    assert got.json()["text"] == "[INFO] Run lr-sweep-7 failed"
    assert [block["type"] for block in got.json()["blocks"]] == ["header", "context"]


def test_a_refused_slack_url_is_held_without_quoting_it(
    store: hw.Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """The dispatcher's policy is not the admin side's: the delivery waits
    (tests/test_policy_hold.py), and the loud log line names the secret, not
    the URL, which is a credential."""
    slack_setup(store, "http://127.0.0.1:9/services/T/B/XXXXSECRETXXXX")
    public = hw.NetworkPolicy()  # this dispatcher refuses plain http and loopback
    with (
        caplog.at_level(logging.DEBUG),
        hw.Dispatcher(store, network=public, worker=False) as dispatcher,
    ):
        [delivery] = dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))
        assert dispatcher.deliver_due() == 1
        done = store.get_delivery(delivery.id)
    assert done is not None
    assert (done.status, done.attempts, done.error) == (hw.DeliveryStatus.PENDING, 0, None)
    [loud] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "action.secret" in loud
    assert "XXXXSECRETXXXX" not in caplog.text


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.slack.example/services/x", "plain http"),
        ("not a url", "absolute URL"),
    ],
)
def test_the_slack_url_is_checked_when_the_automation_is_made(url: str, problem: str) -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store)  # the default policy: https to public addresses
    admin.create_secret(hw.Secret(team=TEAM, name="SLACK_URL", value=url))
    with pytest.raises(hw.ValidationError, match=problem) as info:
        admin.create_automation(
            hw.Automation(
                name="tell-slack",
                scope=hw.Scope.project(TEAM, "training"),
                event=hw.OnRunState(states=["FAILED"]),
                action=hw.SendNotification(secret="SLACK_URL", title="failed"),
            )
        )
    assert info.value.field == "action.secret"
    assert url not in str(info.value)
    assert store.list_automations() == []


def test_a_missing_secret_or_a_secret_in_the_text_is_refused() -> None:
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=LOCAL)
    scope, event = hw.Scope.project(TEAM, "training"), hw.OnRunState(states=["FAILED"])
    with pytest.raises(hw.ValidationError) as info:
        admin.create_automation(
            hw.Automation("a", scope, event, hw.SendNotification(secret="NOPE", title="t"))
        )
    assert info.value.field == "action.secret"
    admin.create_secret(hw.Secret(team=TEAM, name="SLACK_URL", value="http://127.0.0.1:9/s"))
    admin.create_secret(hw.Secret(team=TEAM, name="OTHER", value="hunter2"))
    with pytest.raises(hw.TemplateError) as bad:
        admin.create_automation(
            hw.Automation(
                "b", scope, event, hw.SendNotification(secret="SLACK_URL", title="${OTHER}")
            )
        )
    assert bad.value.field == "action.title"
    with pytest.raises(hw.TemplateError) as bad:
        admin.create_automation(
            hw.Automation(
                "c",
                scope,
                event,
                hw.SendNotification(secret="SLACK_URL", title="t", message="$SLACK_URL"),
            )
        )
    assert bad.value.field == "action.message"
    assert store.list_automations() == []


def test_a_secret_a_notification_uses_cannot_be_deleted_or_made_unsafe() -> None:
    store = hw.MemoryStorage()
    admin = slack_setup(store, "http://127.0.0.1:9/services/T/B/X")
    with pytest.raises(hw.ValidationError, match="tell-slack"):
        admin.delete_secret(TEAM, "SLACK_URL")
    with pytest.raises(hw.ValidationError, match="plain http"):
        hw.Admin(store).update_secret(
            hw.Secret(team=TEAM, name="SLACK_URL", value="http://hooks.example.com/x")
        )
    assert admin.get_secret(TEAM, "SLACK_URL") is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "action.title"),
        ({"title": 3}, "action.title"),
        ({"message": None}, "action.message"),
        ({"title": "x" * 3001}, "action.title"),
        ({"severity": "LOUD"}, "action.severity"),
        ({"secret": "not a name"}, "action.secret"),
    ],
)
def test_notification_fields_are_checked(changes: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"secret": "SLACK_URL", "title": "t", **changes}
    with pytest.raises(hw.ValidationError) as info:
        hw.SendNotification(**fields)
    assert info.value.field == field


def test_severity_takes_wandb_spellings() -> None:
    action = hw.SendNotification(secret="S", title="t", severity="WARN")
    assert action.severity is hw.Severity.WARN
    assert str(action.severity) == "WARN"


def test_a_notification_round_trips_through_storage() -> None:
    from hookwise.storage.codec import automation_from_json, automation_to_json

    automation = hw.Automation(
        name="tell-slack",
        scope=hw.Scope.project(TEAM, "training"),
        event=hw.OnRunState(states=["FAILED"]),
        action=hw.SendNotification(secret="SLACK_URL", title="t ${run_name}", severity="WARN"),
    )
    again = automation_from_json(automation_to_json(automation))
    assert again == automation
    assert isinstance(again.action, hw.SendNotification)
    assert again.action.payload.source == automation.action.payload.source  # type: ignore[union-attr]
