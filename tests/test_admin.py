"""Admin over both bundled storages: CRUD, write-only secrets, cross-checks
with typed errors, and nothing stored when a check fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

import hookwise as hw
from hookwise.vault import secret_context

TEAM = "ml-team"
OTHER = "other-team"
TOKEN = "ghp_TOKEN-value-0123456789abcdef"
SIGNING = "s3cr3t-SIGNING-value-fedcba9876"
ROTATED = "ghp_ROTATED-value-5555555555555"
VALUES = (TOKEN, SIGNING, ROTATED)
URL = "https://example.com/hook"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(store: hw.Storage) -> hw.Storage:
    """conftest's ``store``: every test here runs on both storages."""
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(storage: hw.Storage, clock: Clock) -> hw.Admin:
    return hw.Admin(storage, clock=clock)


def secret(name: str = "GITHUB_TOKEN", value: str = TOKEN, team: str = TEAM) -> hw.Secret:
    return hw.Secret(team=team, name=name, value=value)


def webhook(**overrides: Any) -> hw.Webhook:
    fields: dict[str, Any] = {
        "team": TEAM,
        "name": "github-dispatch",
        "url": URL,
        "access_token": "GITHUB_TOKEN",
        "secret": "SIGNING_KEY",
    }
    fields.update(overrides)
    return hw.Webhook(**fields)


def automation(name: str = "deploy", *, payload: object = None, **overrides: Any) -> hw.Automation:
    fields: dict[str, Any] = {
        "name": name,
        "scope": hw.Scope.registry(TEAM, "model-registry"),
        "event": hw.OnAddArtifactAlias(alias=r"^production$"),
        "action": hw.SendWebhook(
            webhook="github-dispatch",
            payload=payload
            if payload is not None
            else {"version": "${artifact_version_string}", "token": "${ACCESS_TOKEN}"},
        ),
    }
    fields.update(overrides)
    return hw.Automation(**fields)


def setup(admin: hw.Admin) -> None:
    """Two secrets, a webhook using both, and an automation through it."""
    admin.create_secret(secret())
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    admin.create_webhook(webhook())
    admin.create_automation(automation())


def snapshot(storage: hw.Storage, teams: tuple[str, ...] = (TEAM, OTHER)) -> Any:
    """Everything configuration-shaped a storage holds, ciphertexts included."""
    return (
        storage.revision(),
        [attrs.astuple(r) for team in teams for r in storage.list_secrets(team)],
        [w for team in teams for w in storage.list_webhooks(team)],
        storage.list_automations(),
    )


def unchanged(storage: hw.Storage, action: Callable[[], object], error: type[Exception]) -> Any:
    """``action`` raises ``error`` and leaves the storage exactly as it was."""
    before = snapshot(storage)
    with pytest.raises(error) as info:
        action()
    assert snapshot(storage) == before
    assert not any(value in str(info.value) for value in VALUES)
    assert not any(value in repr(info.value) for value in VALUES)
    return info.value


# -- secrets ------------------------------------------------------------------


def test_create_secret_returns_info_without_the_value(admin: hw.Admin, clock: Clock) -> None:
    info = admin.create_secret(secret())
    assert info == hw.SecretInfo(TEAM, "GITHUB_TOKEN", 1_000.0, 1_000.0)
    assert not hasattr(info, "value")
    assert TOKEN not in repr(info)


def test_get_and_list_secrets_never_return_values(admin: hw.Admin) -> None:
    admin.create_secret(secret("ZETA", "zeta-value-xyz"))
    admin.create_secret(secret())
    admin.create_secret(secret("ALPHA", "alpha-value-xyz"))
    admin.create_secret(secret("THEIRS", "theirs-value", team=OTHER))
    got = admin.get_secret(TEAM, "GITHUB_TOKEN")
    assert isinstance(got, hw.SecretInfo)
    assert (got.team, got.name) == (TEAM, "GITHUB_TOKEN")
    listed = admin.list_secrets(TEAM)
    assert [i.name for i in listed] == ["ALPHA", "GITHUB_TOKEN", "ZETA"]
    assert all(isinstance(i, hw.SecretInfo) for i in listed)
    assert TOKEN not in repr(listed)
    assert [i.name for i in admin.list_secrets(OTHER)] == ["THEIRS"]
    assert admin.list_secrets("nobody") == []


def test_secrets_are_stored_encrypted(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret())
    record = storage.get_secret(TEAM, "GITHUB_TOKEN")
    assert record is not None
    assert TOKEN.encode() not in record.ciphertext
    assert TOKEN not in repr(record)
    plain = storage.key.decrypt(record.ciphertext, context=secret_context(TEAM, "GITHUB_TOKEN"))
    assert plain == TOKEN.encode()


def test_update_secret_rotates_the_value(
    admin: hw.Admin, storage: hw.Storage, clock: Clock
) -> None:
    admin.create_secret(secret())
    before = storage.get_secret(TEAM, "GITHUB_TOKEN")
    revision = storage.revision()
    clock.now = 2_000.0
    info = admin.update_secret(secret(value=ROTATED))
    assert (info.created_at, info.updated_at) == (1_000.0, 2_000.0)
    after = storage.get_secret(TEAM, "GITHUB_TOKEN")
    assert before is not None
    assert after is not None
    assert after.ciphertext != before.ciphertext
    context = secret_context(TEAM, "GITHUB_TOKEN")
    assert storage.key.decrypt(after.ciphertext, context=context) == ROTATED.encode()
    assert storage.revision() != revision  # dispatchers notice
    assert admin.get_secret(TEAM, "GITHUB_TOKEN") == info


def test_rotating_to_the_same_value_still_reseals(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret())
    before = storage.get_secret(TEAM, "GITHUB_TOKEN")
    admin.update_secret(secret())
    after = storage.get_secret(TEAM, "GITHUB_TOKEN")
    assert before is not None
    assert after is not None
    assert after.ciphertext != before.ciphertext  # fresh nonce


def test_duplicate_secret_is_refused_and_the_old_value_kept(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    admin.create_secret(secret())
    error = unchanged(
        storage, lambda: admin.create_secret(secret(value=ROTATED)), hw.AlreadyExistsError
    )
    assert "GITHUB_TOKEN" in str(error)


def test_same_secret_name_in_two_teams_is_two_secrets(admin: hw.Admin) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret(value=ROTATED, team=OTHER))
    assert admin.get_secret(OTHER, "GITHUB_TOKEN").team == OTHER


def test_update_or_get_or_delete_a_missing_secret(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret(team=OTHER))
    unchanged(storage, lambda: admin.update_secret(secret()), hw.NotFoundError)
    unchanged(storage, lambda: admin.get_secret(TEAM, "GITHUB_TOKEN"), hw.NotFoundError)
    unchanged(storage, lambda: admin.delete_secret(TEAM, "GITHUB_TOKEN"), hw.NotFoundError)
    assert isinstance(admin.get_secret(OTHER, "GITHUB_TOKEN"), hw.SecretInfo)


def test_delete_secret(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret())
    admin.delete_secret(TEAM, "GITHUB_TOKEN")
    assert storage.get_secret(TEAM, "GITHUB_TOKEN") is None
    assert admin.list_secrets(TEAM) == []


@pytest.mark.parametrize("used_as", ["GITHUB_TOKEN", "SIGNING_KEY"])
def test_a_secret_used_by_a_webhook_cannot_be_deleted(
    admin: hw.Admin, storage: hw.Storage, used_as: str
) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    admin.create_webhook(webhook())
    error = unchanged(storage, lambda: admin.delete_secret(TEAM, used_as), hw.ValidationError)
    assert "github-dispatch" in str(error)


def test_create_secret_wants_a_secret(admin: hw.Admin, storage: hw.Storage) -> None:
    error = unchanged(storage, lambda: admin.create_secret(webhook()), hw.ValidationError)  # type: ignore[arg-type]
    assert error.field == "secret"


# -- webhooks -----------------------------------------------------------------


def test_webhook_crud(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    created = admin.create_webhook(webhook())
    assert admin.get_webhook(TEAM, "github-dispatch") == created
    admin.create_webhook(webhook(name="another", access_token=None, secret=None))
    assert [w.name for w in admin.list_webhooks(TEAM)] == ["another", "github-dispatch"]
    assert admin.list_webhooks(OTHER) == []
    changed = webhook(url="https://example.org/v2", enabled=False)
    revision = storage.revision()
    assert admin.update_webhook(changed) == changed
    assert admin.get_webhook(TEAM, "github-dispatch") == changed
    assert storage.revision() != revision
    admin.delete_webhook(TEAM, "another")
    assert [w.name for w in admin.list_webhooks(TEAM)] == ["github-dispatch"]


@pytest.mark.parametrize("field", ["access_token", "secret"])
def test_webhook_naming_a_missing_secret_is_refused(
    admin: hw.Admin, storage: hw.Storage, field: str
) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    hook = webhook(**{field: "MISSING"})
    error = unchanged(storage, lambda: admin.create_webhook(hook), hw.ValidationError)
    assert error.field == field
    assert "MISSING" in str(error)


def test_a_webhook_cannot_use_another_teams_secret(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret(team=OTHER))
    admin.create_secret(secret("SIGNING_KEY", SIGNING, team=OTHER))
    error = unchanged(storage, lambda: admin.create_webhook(webhook()), hw.ValidationError)
    assert error.field == "access_token"
    # the same webhook in the team that owns the secrets is fine
    admin.create_webhook(webhook(team=OTHER))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # plain http
        "https://127.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.5/admin",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://2130706433/hook",  # 127.0.0.1 spelled as a number
    ],
)
def test_default_network_policy_refuses_unsafe_urls(
    admin: hw.Admin, storage: hw.Storage, url: str
) -> None:
    error = unchanged(
        storage,
        lambda: admin.create_webhook(webhook(url=url, access_token=None, secret=None)),
        hw.UnsafeURLError,
    )
    assert isinstance(error, hw.ValidationError)
    assert error.field == "url"


def test_a_network_policy_opens_what_the_user_trusts(storage: hw.Storage) -> None:
    admin = hw.Admin(storage, network=hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True))
    made = admin.create_webhook(
        webhook(url="http://127.0.0.1:8080/hook", access_token=None, secret=None)
    )
    assert admin.get_webhook(TEAM, "github-dispatch") == made


def test_disable_and_enable_a_webhook(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    revision = storage.revision()
    disabled = admin.disable_webhook(TEAM, "github-dispatch")
    assert disabled.enabled is False
    assert admin.get_webhook(TEAM, "github-dispatch").enabled is False
    assert storage.revision() != revision
    enabled = admin.enable_webhook(TEAM, "github-dispatch")
    assert enabled.enabled is True
    assert admin.get_webhook(TEAM, "github-dispatch") == webhook()


def test_enable_and_delete_forget_a_failing_streak(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    assert storage.note_failure(TEAM, "github-dispatch", 100.0) == 100.0
    admin.enable_webhook(TEAM, "github-dispatch")  # auto-disable counts from now on
    assert storage.note_failure(TEAM, "github-dispatch", 200.0) == 200.0
    admin.delete_automation(TEAM, "deploy")
    admin.delete_webhook(TEAM, "github-dispatch")
    admin.create_webhook(webhook())  # made again: a clean slate
    assert storage.note_failure(TEAM, "github-dispatch", 300.0) == 300.0


def test_enable_or_disable_a_missing_webhook(admin: hw.Admin, storage: hw.Storage) -> None:
    unchanged(storage, lambda: admin.enable_webhook(TEAM, "nope"), hw.NotFoundError)
    unchanged(storage, lambda: admin.disable_webhook(TEAM, "nope"), hw.NotFoundError)


def test_update_webhook_checks_the_url_too(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    unchanged(
        storage,
        lambda: admin.update_webhook(webhook(url="http://example.com/hook")),
        hw.UnsafeURLError,
    )


def test_duplicate_webhook_is_refused(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_webhook(webhook(access_token=None, secret=None))
    unchanged(
        storage,
        lambda: admin.create_webhook(
            webhook(url="https://example.org/x", access_token=None, secret=None)
        ),
        hw.AlreadyExistsError,
    )


def test_missing_webhook(admin: hw.Admin, storage: hw.Storage) -> None:
    hook = webhook(access_token=None, secret=None)
    unchanged(storage, lambda: admin.update_webhook(hook), hw.NotFoundError)
    unchanged(storage, lambda: admin.get_webhook(TEAM, "github-dispatch"), hw.NotFoundError)
    unchanged(storage, lambda: admin.delete_webhook(TEAM, "github-dispatch"), hw.NotFoundError)


def test_a_webhook_used_by_an_automation_cannot_be_deleted(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    setup(admin)
    error = unchanged(
        storage, lambda: admin.delete_webhook(TEAM, "github-dispatch"), hw.ValidationError
    )
    assert "deploy" in str(error)
    admin.delete_automation(TEAM, "deploy")
    admin.delete_webhook(TEAM, "github-dispatch")
    assert admin.list_webhooks(TEAM) == []


def test_update_webhook_keeps_its_automations_valid(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)  # the automation's payload uses ${ACCESS_TOKEN}
    error = unchanged(
        storage, lambda: admin.update_webhook(webhook(access_token=None)), hw.TemplateError
    )
    assert error.path == "$.token"
    # dropping the signing secret breaks nothing that automation uses
    admin.update_webhook(webhook(secret=None))
    assert admin.get_webhook(TEAM, "github-dispatch").secret is None


def test_update_webhook_cannot_point_at_a_missing_secret(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    setup(admin)
    error = unchanged(
        storage, lambda: admin.update_webhook(webhook(secret="NOPE")), hw.ValidationError
    )
    assert error.field == "secret"


# -- automations --------------------------------------------------------------


def test_automation_crud(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    assert admin.get_automation(TEAM, "deploy") == automation()
    admin.create_automation(automation("another", description="second"))
    assert [a.name for a in admin.list_automations(TEAM)] == ["another", "deploy"]
    assert admin.list_automations(OTHER) == []
    changed = automation(payload={"v": "${artifact_version}"}, description="changed")
    assert admin.update_automation(changed) == changed
    assert admin.get_automation(TEAM, "deploy") == changed
    admin.delete_automation(TEAM, "another")
    assert [a.name for a in admin.list_automations()] == ["deploy"]


def test_list_automations_of_every_team(admin: hw.Admin) -> None:
    setup(admin)
    admin.create_webhook(webhook(team=OTHER, access_token=None, secret=None))
    theirs = automation(
        "theirs",
        payload={"v": "${alias}"},
        scope=hw.Scope.project(OTHER, "p"),
    )
    admin.create_automation(theirs)
    assert [(a.team, a.name) for a in admin.list_automations()] == [
        (TEAM, "deploy"),
        (OTHER, "theirs"),
    ]


def test_disable_and_enable_an_automation(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    revision = storage.revision()
    disabled = admin.disable_automation(TEAM, "deploy")
    assert disabled.enabled is False
    assert admin.get_automation(TEAM, "deploy").enabled is False
    assert storage.revision() != revision
    enabled = admin.enable_automation(TEAM, "deploy")
    assert enabled.enabled is True
    assert admin.get_automation(TEAM, "deploy") == automation()


def test_enable_or_disable_a_missing_automation(admin: hw.Admin, storage: hw.Storage) -> None:
    unchanged(storage, lambda: admin.enable_automation(TEAM, "nope"), hw.NotFoundError)
    unchanged(storage, lambda: admin.disable_automation(TEAM, "nope"), hw.NotFoundError)


def test_automation_naming_a_missing_webhook_is_refused(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    admin.create_secret(secret())
    error = unchanged(
        storage,
        lambda: admin.create_automation(automation(action=hw.SendWebhook(webhook="no-such-hook"))),
        hw.ValidationError,
    )
    assert error.field == "action.webhook"
    assert "no-such-hook" in str(error)


def test_an_automation_cannot_use_another_teams_webhook(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    setup(admin)  # github-dispatch belongs to ml-team
    theirs = automation("theirs", scope=hw.Scope.project(OTHER, "p"))
    error = unchanged(storage, lambda: admin.create_automation(theirs), hw.ValidationError)
    assert error.field == "action.webhook"
    with pytest.raises(hw.ValidationError) as info:  # nor by naming the team
        automation(
            scope=hw.Scope.project(OTHER, "p"),
            action=hw.SendWebhook(webhook="github-dispatch", team=TEAM),
        )
    assert info.value.field == "action.team"


def test_template_naming_a_secret_the_webhook_lacks_is_refused(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    setup(admin)
    admin.create_secret(secret("UNRELATED", "unrelated-value"))  # the team has it; the hook not
    for payload, path in [
        ({"client_payload": {"key": "${UNRELATED}"}}, "$.client_payload.key"),
        ({"list": ["ok", "$UNRELATED"]}, "$.list[1]"),
        ({"x": "${NEVER_CREATED}"}, "$.x"),
    ]:
        error = unchanged(
            storage,
            lambda p=payload: admin.create_automation(automation("other", payload=p)),
            hw.TemplateError,
        )
        assert error.path == path
        assert path in str(error)


def test_template_may_use_the_webhooks_own_secrets(admin: hw.Admin) -> None:
    setup(admin)
    made = admin.create_automation(
        automation(
            "signed",
            payload={"a": "${ACCESS_TOKEN}", "b": "${GITHUB_TOKEN}", "c": "$SIGNING_KEY"},
        )
    )
    assert admin.get_automation(TEAM, "signed") == made


def test_access_token_on_a_webhook_without_one_is_refused(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    admin.create_webhook(webhook(access_token=None))
    error = unchanged(
        storage,
        lambda: admin.create_automation(automation(payload={"auth": {"t": "${ACCESS_TOKEN}"}})),
        hw.TemplateError,
    )
    assert error.path == "$.auth.t"
    assert "access token" in error.message


def test_update_automation_validates_its_template(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    error = unchanged(
        storage,
        lambda: admin.update_automation(automation(payload={"x": "${UNKNOWN_SECRET}"})),
        hw.TemplateError,
    )
    assert error.path == "$.x"
    unchanged(
        storage,
        lambda: admin.update_automation(automation(action=hw.SendWebhook(webhook="gone-hook"))),
        hw.ValidationError,
    )


def test_duplicate_automation_is_refused(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    unchanged(
        storage,
        lambda: admin.create_automation(automation(description="again")),
        hw.AlreadyExistsError,
    )


def test_missing_automation(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    unchanged(storage, lambda: admin.update_automation(automation("nope")), hw.NotFoundError)
    unchanged(storage, lambda: admin.get_automation(TEAM, "nope"), hw.NotFoundError)
    unchanged(storage, lambda: admin.delete_automation(TEAM, "nope"), hw.NotFoundError)


def test_do_nothing_automation_needs_no_webhook(admin: hw.Admin) -> None:
    made = admin.create_automation(automation("later", action=hw.DoNothing()))
    assert admin.get_automation(TEAM, "later") == made


def test_delivery_history_of_a_missing_delivery(admin: hw.Admin) -> None:
    assert admin.deliveries() == []
    with pytest.raises(hw.NotFoundError):
        admin.attempts("no-such-delivery")


# -- secret values stay out of sight ---------------------------------------------------


def test_no_secret_value_in_any_repr_or_error(admin: hw.Admin, storage: hw.Storage) -> None:
    setup(admin)
    admin.update_secret(secret(value=ROTATED))
    errors: list[BaseException] = []
    attempts: list[Callable[[], object]] = [
        lambda: admin.create_secret(secret()),
        lambda: admin.create_secret(secret(value=SIGNING)),
        lambda: admin.update_secret(secret("MISSING", TOKEN)),
        lambda: admin.delete_secret(TEAM, "GITHUB_TOKEN"),
        lambda: admin.create_secret(hw.Secret(team=TEAM, name="BAD NAME", value=TOKEN)),
        lambda: admin.create_secret(hw.Secret(team=TEAM, name="ACCESS_TOKEN", value=TOKEN)),
        lambda: admin.create_webhook(webhook(secret="MISSING")),
        lambda: admin.create_automation(automation("x", payload={"t": "${MISSING}"})),
    ]
    for attempt in attempts:
        with pytest.raises(hw.HookwiseError) as info:
            attempt()
        errors.append(info.value)
    shown = [str(e) for e in errors] + [repr(e) for e in errors]
    shown += [
        repr(admin),
        repr(storage),
        repr(admin.list_secrets(TEAM)),
        repr(storage.list_secrets(TEAM)),
        repr(storage.get_secret(TEAM, "GITHUB_TOKEN")),
        repr(admin.list_webhooks(TEAM)),
        repr(admin.list_automations()),
        repr(secret()),
    ]
    for text in shown:
        for value in VALUES:
            assert value not in text, text


@pytest.mark.parametrize(
    "value",
    ["ghp_token\n", "ghp token", "\tghp_token", "ghp_tøken", "ghp_\x00token"],
    ids=["newline", "space", "tab", "non-ascii", "nul"],
)
def test_an_access_token_that_cannot_be_a_header_is_refused(
    admin: hw.Admin, storage: hw.Storage, value: str
) -> None:
    admin.create_secret(secret(value=value))
    admin.create_secret(secret(name="SIGNING_KEY", value="s3cr3t"))
    with pytest.raises(hw.ValidationError, match="newline") as raised:
        admin.create_webhook(webhook())
    assert raised.value.field == "access_token"
    assert value.strip() not in str(raised.value)
    assert storage.list_webhooks(TEAM) == []


def test_rotating_an_access_token_to_a_bad_value_is_refused(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret(name="SIGNING_KEY", value="s3cr3t"))
    admin.create_webhook(webhook())
    with pytest.raises(hw.ValidationError) as raised:
        admin.update_secret(secret(value=ROTATED + "\n"))
    assert raised.value.field == "access_token"
    record = storage.get_secret(TEAM, "GITHUB_TOKEN")
    assert record is not None
    context = secret_context(TEAM, "GITHUB_TOKEN")
    assert storage.key.decrypt(record.ciphertext, context=context) == TOKEN.encode()
    # the same value is fine as a signing secret: only the header needs visible ASCII
    admin.update_secret(secret(name="SIGNING_KEY", value="two words\n"))


def test_a_signing_secret_that_cannot_sign_is_refused(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret(name="SIGNING_KEY", value="whsec_not base64!"))
    with pytest.raises(hw.ValidationError, match="base64") as raised:
        admin.create_webhook(webhook())
    assert raised.value.field == "secret"
    assert storage.list_webhooks(TEAM) == []
    admin.update_secret(secret(name="SIGNING_KEY", value="whsec_" + "QUJD"))
    admin.create_webhook(webhook())
    with pytest.raises(hw.ValidationError, match="base64"):
        admin.update_secret(secret(name="SIGNING_KEY", value="whsec_%%%"))


def test_a_webhook_that_does_not_sign_needs_no_signing_key(admin: hw.Admin) -> None:
    admin.create_secret(secret())
    admin.create_secret(secret(name="SIGNING_KEY", value="whsec_not base64!"))
    admin.create_webhook(webhook(signing=()))  # the secret is only a template variable
    admin.update_secret(secret(name="SIGNING_KEY", value="whsec_%%%"))


def test_a_secret_value_must_be_utf8() -> None:
    with pytest.raises(hw.ValidationError) as raised:
        secret(value="half a pair \ud800")
    assert raised.value.field == "value"
    assert "\ud800" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": "10"}, "limit"),
        ({"limit": -1}, "limit"),
        ({"status": "FAILED"}, "status"),
        ({"webhook": 1}, "webhook"),
        ({"webhook": b"github-dispatch"}, "webhook"),
        ({"since": "2026-12-01T10:00:00Z"}, "since"),
        ({"since": True}, "since"),
        ({"since": float("nan")}, "since"),
        ({"since": float("inf")}, "since"),
        ({"since": float("-inf")}, "since"),
        ({"since": 10**400}, "since"),
        ({"team": TEAM, "webhook": "github-dispatch", "since": None, "limit": "1"}, "limit"),
    ],
)
def test_delivery_history_queries_are_checked(
    admin: hw.Admin, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(hw.ValidationError) as raised:
        admin.deliveries(**options)
    assert raised.value.field == field


def test_delivery_history_by_webhook_and_since(storage: hw.Storage, admin: hw.Admin) -> None:
    from hookwise.testing import enqueue, make_delivery

    enqueue(
        storage,
        make_delivery("a", team=TEAM, webhook="github-dispatch", created_at=100.0),
        make_delivery("b", team=TEAM, webhook="slack", created_at=200.0),
        make_delivery("c", team="other", webhook="github-dispatch", created_at=300.0),
    )

    def ids(**options: Any) -> list[str]:
        return [d.id for d in admin.deliveries(**options)]

    assert ids(webhook="github-dispatch") == ["c", "a"]
    assert ids(webhook="github-dispatch", team=TEAM) == ["a"]
    assert ids(since=200) == ["c", "b"]  # an int is a Unix time too
    assert ids(since=200.5) == ["c"]
    assert ids(since=-(10**20)) == ["c", "b", "a"]
    assert ids(since=150, webhook="github-dispatch") == ["c"]
    assert ids(since=150, webhook="github-dispatch", team=TEAM) == []


# -- fetch_existing / create_missing (the W&B SDK's idempotent setup) --------


def test_fetch_existing_returns_what_is_stored_and_changes_nothing(
    admin: hw.Admin, storage: hw.Storage, clock: Clock
) -> None:
    setup(admin)
    before = snapshot(storage)
    clock.now += 60
    info = admin.create_secret(secret(value=ROTATED), fetch_existing=True)
    assert (info.name, info.updated_at) == ("GITHUB_TOKEN", 1_000.0)  # the value was kept
    other = webhook(url="https://example.com/other")
    assert admin.create_webhook(other, fetch_existing=True).url == URL
    changed = automation(description="a different one")
    assert admin.create_automation(changed, fetch_existing=True).description == ""
    assert snapshot(storage) == before
    # without it, a taken name is still refused
    unchanged(storage, lambda: admin.create_webhook(other), hw.AlreadyExistsError)
    unchanged(storage, lambda: admin.create_automation(changed), hw.AlreadyExistsError)
    unchanged(storage, lambda: admin.create_secret(secret(value=ROTATED)), hw.AlreadyExistsError)


def test_fetch_existing_still_validates_what_it_is_given(
    admin: hw.Admin, storage: hw.Storage
) -> None:
    setup(admin)
    bad = webhook(url="http://example.com/plain")
    unchanged(storage, lambda: admin.create_webhook(bad, fetch_existing=True), hw.UnsafeURLError)


def test_create_missing_creates_then_updates(admin: hw.Admin, storage: hw.Storage) -> None:
    admin.create_secret(secret("SIGNING_KEY", SIGNING))
    made = admin.update_secret(secret(), create_missing=True)
    assert made.name == "GITHUB_TOKEN"
    admin.update_webhook(webhook(), create_missing=True)
    assert admin.get_webhook(TEAM, "github-dispatch").url == URL
    admin.update_webhook(webhook(url="https://example.com/moved"), create_missing=True)
    assert admin.get_webhook(TEAM, "github-dispatch").url == "https://example.com/moved"
    admin.update_automation(automation(), create_missing=True)
    admin.update_automation(automation(description="second"), create_missing=True)
    assert admin.get_automation(TEAM, "deploy").description == "second"
    # without it, a missing record is still an error
    unchanged(storage, lambda: admin.update_automation(automation("nope")), hw.NotFoundError)


def test_create_missing_asks_for_create_rights() -> None:
    asked: list[str] = []

    class Recorder:
        def allows(self, actor: str | None, action: str, target: object) -> bool:
            asked.append(str(action))
            return action != "webhook.create"

    store = hw.MemoryStorage()
    admin = hw.Admin(store, authorizer=Recorder())
    admin.create_secret(secret(), actor="bob")
    admin.create_secret(secret("SIGNING_KEY", SIGNING), actor="bob")
    with pytest.raises(hw.PermissionDenied):
        admin.update_webhook(webhook(), actor="bob", create_missing=True)
    assert asked[-1] == "webhook.create"
    assert store.get_webhook(TEAM, "github-dispatch") is None


# -- payload secrets: ${ACCESS_TOKEN}, the token's own name, the signing secret's name, nothing else


def three_secrets_and_a_webhook(storage: hw.Storage) -> hw.Admin:
    """A webhook "gh" holding GITHUB_TOKEN and SIGNING_KEY; OTHER is the team's too."""
    admin = hw.Admin(storage)
    for name, value in (("GITHUB_TOKEN", TOKEN), ("SIGNING_KEY", SIGNING), ("OTHER", ROTATED)):
        admin.create_secret(hw.Secret(team=TEAM, name=name, value=value))
    admin.create_webhook(
        hw.Webhook(team=TEAM, name="gh", url=URL, access_token="GITHUB_TOKEN", secret="SIGNING_KEY")
    )
    return admin


@pytest.mark.parametrize(
    "payload",
    [
        {"auth": "${ACCESS_TOKEN}"},
        {"auth": "${GITHUB_TOKEN}"},
        {"sig": "${SIGNING_KEY}"},
        {"sig": "$SIGNING_KEY", "all": ["${ACCESS_TOKEN}", "$GITHUB_TOKEN"]},
    ],
)
def test_a_payload_may_name_the_access_token_and_the_webhooks_two_secrets(
    storage: hw.Storage, payload: dict[str, Any]
) -> None:
    admin = three_secrets_and_a_webhook(storage)
    made = admin.create_automation(
        hw.Automation(
            name="a",
            scope=hw.Scope.project(TEAM, "p"),
            event=hw.OnCreateArtifact(),
            action=hw.SendWebhook(webhook="gh", payload=payload),
        )
    )
    assert made.action.payload.secrets <= {"ACCESS_TOKEN", "GITHUB_TOKEN", "SIGNING_KEY"}
    assert admin.get_automation(TEAM, "a").action == made.action


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"x": {"y": ["ok", "${OTHER}"]}}, "$.x.y[1]"),
        ({"note": "$OTHER"}, "$.note"),
    ],
)
def test_any_other_team_secret_in_a_payload_is_a_template_error_naming_the_path(
    storage: hw.Storage, payload: dict[str, Any], path: str
) -> None:
    admin = three_secrets_and_a_webhook(storage)
    automation = hw.Automation(
        name="a",
        scope=hw.Scope.project(TEAM, "p"),
        event=hw.OnCreateArtifact(),
        action=hw.SendWebhook(webhook="gh", payload=payload),
    )
    with pytest.raises(hw.TemplateError) as raised:
        admin.create_automation(automation)
    assert raised.value.path == path
    assert f"at {path}:" in str(raised.value)
    assert "'OTHER'" in str(raised.value)
    assert admin.list_automations(TEAM) == []
