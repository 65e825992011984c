"""The domain objects: every name rule and limit of DESIGN section 2, refused
with a ValidationError that names the field, and never a secret in a repr."""

from __future__ import annotations

import json
from typing import Any

import pytest

import hookwise as hw
from hookwise.storage.codec import webhook_from_json, webhook_to_json
from hookwise.template import DEFAULT_TEMPLATE

TEAM = "ml-team"
VALUE = "ghp_TOP-SECRET-value-0123456789"
ALIAS_EVENT: dict[str, Any] = {
    "entity": TEAM,
    "project": "model-registry",
    "collection": "churn",
    "version": "v3",
}


def refused(field: str, make: Any, *args: Any, **kwargs: Any) -> hw.ValidationError:
    """``make(...)`` raises a ValidationError (also a ValueError) naming ``field``."""
    with pytest.raises(hw.ValidationError) as info:
        make(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, hw.HookwiseError)
    assert info.value.field == field, str(info.value)
    return info.value


def webhook(**overrides: Any) -> hw.Webhook:
    fields: dict[str, Any] = {"team": TEAM, "name": "hook", "url": "https://example.com/hook"}
    fields.update(overrides)
    return hw.Webhook(**fields)


def automation(**overrides: Any) -> hw.Automation:
    fields: dict[str, Any] = {
        "name": "deploy",
        "scope": hw.Scope.registry(TEAM, "model-registry"),
        "event": hw.OnAddArtifactAlias(alias=r"^production$"),
        "action": hw.SendWebhook(webhook="hook"),
    }
    fields.update(overrides)
    return hw.Automation(**fields)


# -- secrets ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A", "_", "GITHUB_TOKEN", "token2", "_x9", "a" * 128])
def test_secret_names_that_are_accepted(name: str) -> None:
    assert hw.Secret(team=TEAM, name=name, value=VALUE).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1TOKEN",
        "MY-TOKEN",
        "MY TOKEN",
        "TOKEN!",
        "tok.en",
        "TOKEN\n",
        "ÉTÉ",
        "a" * 129,
        None,
        7,
    ],
)
def test_secret_names_that_break_the_rule(name: object) -> None:
    refused("name", hw.Secret, team=TEAM, name=name, value=VALUE)


@pytest.mark.parametrize("name", ["ACCESS_TOKEN", "alias", "tag", "event_type", "run_id", "step"])
def test_reserved_secret_names_are_refused(name: str) -> None:
    error = refused("name", hw.Secret, team=TEAM, name=name, value=VALUE)
    assert "payload variable" in error.message


@pytest.mark.parametrize("value", ["", None, b"bytes", "x" * (64 * 1024 + 1)])
def test_secret_value_must_be_a_bounded_non_empty_string(value: object) -> None:
    refused("value", hw.Secret, team=TEAM, name="TOKEN", value=value)


@pytest.mark.parametrize("team", ["", "a/b", "a b", "x" * 129, None])
def test_secret_team_is_an_entity_name(team: object) -> None:
    refused("team", hw.Secret, team=team, name="TOKEN", value=VALUE)


def test_secret_repr_and_str_never_show_the_value() -> None:
    secret = hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=VALUE)
    assert "GITHUB_TOKEN" in repr(secret)
    assert VALUE not in repr(secret)
    assert VALUE not in str(secret)
    assert VALUE not in repr([secret, {"k": secret}])


def test_errors_about_a_secret_do_not_quote_its_value() -> None:
    for kwargs in (
        {"team": TEAM, "name": "BAD NAME", "value": VALUE},
        {"team": TEAM, "name": "ACCESS_TOKEN", "value": VALUE},
        {"team": "bad/team", "name": "OK", "value": VALUE},
        {"team": TEAM, "name": "OK", "value": VALUE * 3000},
    ):
        with pytest.raises(hw.ValidationError) as info:
            hw.Secret(**kwargs)
        assert VALUE not in str(info.value)
        assert VALUE not in repr(info.value)


def test_secret_is_frozen() -> None:
    secret = hw.Secret(team=TEAM, name="TOKEN", value=VALUE)
    with pytest.raises(AttributeError):
        secret.value = "other"  # type: ignore[misc]


# -- webhooks -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["hook", "github-dispatch", "slack_alerts", "a", "Deploy Hook 2", "x" * 64, "été"]
)
def test_webhook_names_that_are_accepted(name: str) -> None:
    assert webhook(name=name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        " hook",
        "hook ",
        "two\twords",
        "new\nline",
        "a/b",
        "hook!",
        "x" * 65,
        "word " * 13 + "w",  # 66 characters of valid shape
        None,
    ],
)
def test_webhook_names_that_break_the_rule(name: object) -> None:
    refused("name", webhook, name=name)


def test_webhook_name_may_separate_words_by_several_spaces_as_the_regex_allows() -> None:
    # ^[-\w]+([ ]+[-\w]+)*$ : "[ ]+" is one or more spaces
    assert webhook(name="a  b").name == "a  b"


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hook", "http://example.com", "https://example.com:8443/a?b=c"],
)
def test_absolute_http_urls_are_accepted_by_the_model(url: str) -> None:
    assert webhook(url=url).url == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/relative/path",
        "example.com/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://" + "a" * 2048 + ".com",
        None,
    ],
)
def test_urls_that_are_not_absolute_http_are_refused(url: object) -> None:
    refused("url", webhook, url=url)


@pytest.mark.parametrize("field", ["access_token", "secret"])
def test_webhook_names_its_secrets_by_secret_name(field: str) -> None:
    assert getattr(webhook(**{field: "GITHUB_TOKEN"}), field) == "GITHUB_TOKEN"
    refused(field, webhook, **{field: "not a name"})
    refused(field, webhook, **{field: "1ABC"})


def test_webhook_has_one_access_token_and_one_other_secret() -> None:
    hook = webhook(access_token="GITHUB_TOKEN", secret="SIGNING_KEY")
    assert hook.secret_names == {"GITHUB_TOKEN", "SIGNING_KEY"}
    assert hook.template_secrets == {"GITHUB_TOKEN", "SIGNING_KEY", "ACCESS_TOKEN"}
    # one value per field: a list of secrets is not a secret name
    refused("secret", webhook, secret=["A", "B"])
    refused("access_token", webhook, access_token=("A", "B"))


def test_the_other_secret_must_differ_from_the_access_token() -> None:
    error = refused("secret", webhook, access_token="TOKEN", secret="TOKEN")
    assert "access_token" in error.message


def test_a_webhook_without_access_token_offers_no_access_token_placeholder() -> None:
    hook = webhook(secret="SIGNING_KEY")
    assert hook.template_secrets == {"SIGNING_KEY"}
    assert webhook().template_secrets == frozenset()


def test_webhook_signing_schemes() -> None:
    assert webhook().signing == tuple(hw.Scheme)  # both by default
    assert webhook(signing="wandb").signing == (hw.Scheme("wandb"),)
    assert webhook(signing=[]).signing == ()
    refused("signing", webhook, signing=["md5"])


# -- scopes -------------------------------------------------------------------


def alias_event(**overrides: Any) -> hw.Event:
    fields: dict[str, Any] = dict(ALIAS_EVENT, alias="production")
    fields.update(overrides)
    return hw.Event.artifact_alias_added(**fields)


def test_scope_constructors() -> None:
    project = hw.Scope.project(TEAM, "churn-training")
    assert (project.kind, project.entity, project.project_name, project.collection_name) == (
        hw.ScopeKind.PROJECT,
        TEAM,
        "churn-training",
        None,
    )
    registry = hw.Scope.registry(TEAM, "model-registry")
    assert registry.kind is hw.ScopeKind.REGISTRY
    assert registry.project_name == "model-registry"
    assert registry.collection_name is None
    collection = hw.Scope.collection(TEAM, "model-registry", "churn")
    assert collection.kind is hw.ScopeKind.COLLECTION
    assert collection.collection_name == "churn"


def test_registry_scope_covers_every_collection_in_it_and_nothing_else() -> None:
    scope = hw.Scope.registry(TEAM, "model-registry")
    assert scope.covers(alias_event())
    assert scope.covers(alias_event(collection="a-collection-made-later"))
    assert not scope.covers(alias_event(project="other-registry"))
    assert not scope.covers(alias_event(entity="other-team"))


def test_collection_scope_covers_one_collection() -> None:
    scope = hw.Scope.collection(TEAM, "model-registry", "churn")
    assert scope.covers(alias_event())
    assert not scope.covers(alias_event(collection="fraud"))
    assert not scope.covers(alias_event(project="elsewhere"))
    assert not scope.covers(alias_event(entity="someone-else"))


def test_project_scope_covers_its_project() -> None:
    scope = hw.Scope.project(TEAM, "model-registry")
    assert scope.covers(alias_event(collection="any"))
    assert not scope.covers(alias_event(project="model-registry-2"))


def test_scope_names_are_checked() -> None:
    refused("scope.entity", hw.Scope.project, "bad/entity", "p")
    refused("scope.project", hw.Scope.registry, TEAM, "")
    refused("scope.collection", hw.Scope.collection, TEAM, "p", "has space")
    refused("scope.collection", hw.Scope, hw.ScopeKind.PROJECT, TEAM, "p", "c")
    refused("scope.kind", hw.Scope, "bogus", TEAM, "p")


# -- actions ------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"version": "${artifact_version_string}"},
        ["${alias}", 1, None],
        '{"version": "${artifact_version_string}"}',
        {"nested": {"list": [True, 1.5, "${tag}"]}},
    ],
)
def test_send_webhook_accepts_dict_list_and_json_text(payload: object) -> None:
    action = hw.SendWebhook(webhook="hook", payload=payload)
    assert isinstance(action.payload, hw.Template)
    assert action.payload == hw.compile_template(payload)  # type: ignore[arg-type]


def test_send_webhook_json_text_and_dict_compile_to_the_same_template() -> None:
    as_text = hw.SendWebhook(webhook="hook", payload='{"a": "${alias}", "b": [1, 2]}')
    as_dict = hw.SendWebhook(webhook="hook", payload={"a": "${alias}", "b": [1, 2]})
    assert as_text.payload == as_dict.payload
    assert as_text == as_dict


def test_send_webhook_without_payload_sends_every_event_variable() -> None:
    action = hw.SendWebhook(webhook="hook")
    assert action.payload is DEFAULT_TEMPLATE
    assert {"event_type", "alias", "artifact_version_string"} <= action.payload.variables
    assert hw.SendWebhook(webhook="hook", payload=None).payload is DEFAULT_TEMPLATE


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ('{"a": ', "$"),
        ("not json", "$"),
        ({"a": {"b": "${}"}}, "$.a.b"),
        ({"a": ["ok", "${unterminated"]}, "$.a[1]"),
        ({"a": "${not a name}"}, "$.a"),
        ({"a": {1, 2}}, "$.a"),
        ('{"a": NaN}', "$.a"),
        (3.5, "$"),
    ],
)
def test_send_webhook_rejects_bad_templates_with_the_json_path(payload: object, path: str) -> None:
    with pytest.raises(hw.TemplateError) as info:
        hw.SendWebhook(webhook="hook", payload=payload)
    assert isinstance(info.value, hw.ValidationError)
    assert info.value.path == path


def test_send_webhook_names_a_webhook() -> None:
    refused("action.webhook", hw.SendWebhook, webhook="no/slash")
    refused("action.webhook", hw.SendWebhook, webhook="")


# -- automations --------------------------------------------------------------


def test_automation_defaults_and_team() -> None:
    made = automation()
    assert made.enabled is True
    assert made.description == ""
    assert made.team == TEAM


@pytest.mark.parametrize("name", ["deploy", "Deploy on production alias!", "é" * 255, "x"])
def test_automation_names_that_are_accepted(name: str) -> None:
    assert automation(name=name).name == name


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, "tab\there", "new\nline", None])
def test_automation_names_that_are_refused(name: object) -> None:
    refused("name", automation, name=name)


def test_automation_description_is_bounded_text() -> None:
    assert automation(description="d" * 4096).description == "d" * 4096
    refused("description", automation, description="d" * 4097)
    refused("description", automation, description=None)


def test_automation_refuses_an_action_team_other_than_the_scope_entity() -> None:
    assert automation(action=hw.SendWebhook(webhook="hook", team=TEAM)).action.team == TEAM
    error = refused(
        "action.team", automation, action=hw.SendWebhook(webhook="hook", team="other-team")
    )
    assert "entity" in error.message


def test_automation_checks_the_types_of_its_parts() -> None:
    refused("scope", automation, scope="ml-team/model-registry")
    refused("event", automation, event="ADD_ARTIFACT_ALIAS")
    refused("action", automation, action={"webhook": "hook"})


@pytest.mark.parametrize("flag", ["false", "no", 0, 1, None])
def test_enabled_must_be_a_real_bool(flag: object) -> None:
    # "false" is truthy: it would leave on what the user meant to switch off
    refused("enabled", automation, enabled=flag)
    refused("enabled", webhook, enabled=flag)
    assert automation(enabled=False).enabled is False
    assert webhook(enabled=False).enabled is False


def test_do_nothing_is_an_action() -> None:
    assert isinstance(automation(action=hw.DoNothing()).action, hw.DoNothing)


# -- event filters --------------------------------------------------------------


FILTERS = [
    (hw.OnLinkArtifact, "alias", hw.EventType.LINK_ARTIFACT),
    (hw.OnAddArtifactAlias, "alias", hw.EventType.ADD_ARTIFACT_ALIAS),
    (hw.OnAddArtifactTag, "tag", hw.EventType.ADD_ARTIFACT_TAG),
    (hw.OnRemoveArtifactTag, "tag", hw.EventType.REMOVE_ARTIFACT_TAG),
    (hw.OnAddCollectionTag, "tag", hw.EventType.ADD_COLLECTION_TAG),
    (hw.OnRemoveCollectionTag, "tag", hw.EventType.REMOVE_COLLECTION_TAG),
]


@pytest.mark.parametrize(("cls", "field", "event_type"), FILTERS)
def test_filter_event_types(cls: Any, field: str, event_type: hw.EventType) -> None:
    assert cls(**{field: "^x$"}).event_type is event_type


def test_filters_without_regex() -> None:
    assert hw.OnUnlinkArtifact().event_type is hw.EventType.UNLINK_ARTIFACT
    assert hw.OnCreateArtifact().event_type is hw.EventType.CREATE_ARTIFACT
    assert hw.OnLinkArtifact().alias is None  # any link


@pytest.mark.parametrize(("cls", "field", "event_type"), FILTERS)
@pytest.mark.parametrize("pattern", ["(a+)+$", "(x|xx)*y", "[unclosed", "(?P<x", "a{2,1}"])
def test_filters_refuse_bad_or_catastrophic_regexes_at_creation(
    cls: Any, field: str, event_type: hw.EventType, pattern: str
) -> None:
    error = refused(f"event.{field}", cls, **{field: pattern})
    assert f"event.{field}" in str(error)
    assert "regex" in error.message


@pytest.mark.parametrize(("cls", "field", "event_type"), FILTERS)
def test_filters_refuse_a_regex_that_is_not_text(
    cls: Any, field: str, event_type: hw.EventType
) -> None:
    refused(f"event.{field}", cls, **{field: 42})


def test_filters_are_optional_as_in_wandb() -> None:
    # W&B's filters are optional: no alias regex means every alias event
    # (this test once checked that OnAddArtifactAlias() was a TypeError)
    assert hw.OnAddArtifactAlias().matches(alias_event(alias="anything"))
    assert hw.OnAddArtifactAlias(alias=None) == hw.OnAddArtifactAlias()


def test_alias_filter_matches_by_regex_search() -> None:
    exact = hw.OnAddArtifactAlias(alias=r"^production$")
    assert exact.matches(alias_event(alias="production"))
    assert not exact.matches(alias_event(alias="production-2"))
    loose = hw.OnAddArtifactAlias(alias="prod")
    assert loose.matches(alias_event(alias="pre-production"))
    assert not loose.matches(alias_event(alias="staging"))


def test_tag_filter_matches_the_tag_not_the_alias() -> None:
    f = hw.OnAddArtifactTag(tag=r"^candidate$")
    tagged = hw.Event.artifact_tag_added(**ALIAS_EVENT, tag="candidate")
    assert f.matches(tagged)
    assert not f.matches(hw.Event.artifact_tag_added(**ALIAS_EVENT, tag="other"))


def test_link_filter_without_alias_matches_any_link() -> None:
    linked = hw.Event.artifact_linked(**ALIAS_EVENT)
    assert hw.OnLinkArtifact().matches(linked)
    assert not hw.OnLinkArtifact(alias="^best$").matches(linked)
    assert hw.OnLinkArtifact(alias="^best$").matches(
        hw.Event.artifact_linked(**ALIAS_EVENT, alias="best")
    )


# -- a webhook's delivery limits -------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_in_flight", None),
        ("max_in_flight", 1),
        ("max_in_flight", 8),
        ("max_in_flight", 10_000),
        ("rate_limit", None),
        ("rate_limit", 0.001),
        ("rate_limit", 0.5),
        ("rate_limit", 250),
        ("rate_limit", 100_000),
        ("rate_limit", 100_000.0),
    ],
)
def test_webhook_delivery_limits_keep_good_values(field: str, value: float | None) -> None:
    made = webhook(**{field: value})
    assert getattr(made, field) == value
    assert type(getattr(made, field)) is type(value)
    assert webhook_from_json(webhook_to_json(made)) == made


def test_webhook_delivery_limits_default_to_none() -> None:
    made = webhook()
    assert made.max_in_flight is None
    assert made.rate_limit is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_in_flight", 0),
        ("max_in_flight", -1),
        ("max_in_flight", True),
        ("max_in_flight", False),
        ("max_in_flight", 1.5),
        ("max_in_flight", 2.0),
        ("max_in_flight", "3"),
        ("max_in_flight", 10_001),
        ("max_in_flight", 10**400),
        ("rate_limit", 0),
        ("rate_limit", 0.0009),
        ("rate_limit", -1.0),
        ("rate_limit", float("nan")),
        ("rate_limit", float("inf")),
        ("rate_limit", float("-inf")),
        ("rate_limit", "1"),
        ("rate_limit", True),
        ("rate_limit", 100_000.5),
        ("rate_limit", 10**400),
    ],
)
def test_webhook_delivery_limits_refuse_bad_values(field: str, value: object) -> None:
    error = refused(field, webhook, **{field: value})
    assert field in str(error)


def test_webhook_delivery_limits_are_plain_numbers() -> None:
    class Count(int):
        pass

    class Rate(float):
        pass

    made = webhook(max_in_flight=Count(4), rate_limit=Rate(2.5))
    assert type(made.max_in_flight) is int
    assert type(made.rate_limit) is float
    assert made == webhook(max_in_flight=4, rate_limit=2.5)


@pytest.mark.parametrize(
    "limits",
    [
        {},
        {"max_in_flight": 3},
        {"rate_limit": 1 / 3},
        {"max_in_flight": 10_000, "rate_limit": 0.001},
    ],
)
def test_webhook_delivery_limits_round_trip_through_the_codec(limits: dict[str, Any]) -> None:
    made = webhook(secret="SIGNING_KEY", enabled=False, disabled_reason="paused", **limits)
    text = webhook_to_json(made)
    assert webhook_from_json(text) == made
    document = json.loads(text)
    for field in ("max_in_flight", "rate_limit"):
        # left out while None, so the document still reads in an older hookwise
        assert document.get(field) == limits.get(field)
        assert (field in document) == (field in limits)


def test_a_stored_webhook_from_before_the_delivery_limits_loads_without_them() -> None:
    old = '{"v": 1, "team": "ml-team", "name": "hook", "url": "https://example.com/hook"}'
    loaded = webhook_from_json(old)
    assert loaded == webhook()
    assert loaded.max_in_flight is None
    assert loaded.rate_limit is None


@pytest.mark.parametrize(
    ("field", "value"), [("max_in_flight", 0), ("max_in_flight", 2.5), ("rate_limit", "fast")]
)
def test_a_stored_webhook_with_bad_delivery_limits_is_refused(field: str, value: object) -> None:
    document = {"v": 1, "team": TEAM, "name": "hook", "url": "https://example.com/hook"}
    document[field] = value
    refused(field, webhook_from_json, json.dumps(document))
