"""JSON for webhooks and automations, so SQL storages keep them as one text column.

The format is small, explicit and versioned (``{"v": 1, ...}``) because rows
outlive the code that wrote them. Decoding goes back through the attrs
constructors, so a row edited by hand is validated like user input. An
unknown version, filter or action type, or an unexpected key, is a
:class:`~hookwise.errors.ValidationError` whose field starts with ``stored``.

Event filters are encoded as ``{"type": <class name>, <field>: <value>...}``
from a registry; a new filter class joins with one line,
``register_filter(OnRunState)``. Field values are encoded as JSON (enums as
their value, tuples and sets as lists, registered attrs objects such as a
nested metric condition as ``{"type": ...}`` objects); decoding passes lists
and plain values to the constructor, so a field whose type is not JSON-shaped
needs an attrs converter (``converter=frozenset``, an enum) to come back equal.

Two field metadata keys shape the document. ``{"codec": "expression"}``: the
value is a filter expression (:mod:`hookwise.expressions`), stored as the
MongoDB-style JSON W&B writes (``{"$and": [{"alias": {"$regex": "^prod"}}]}``)
and read back with :func:`~hookwise.expressions.expression_from_json`.
``{"omit_default": True}``: a field added after format version 1 is left
out while it holds its default, so such a document still reads in an older
hookwise, and a document without it reads with the default.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from hookwise.conditions import MetricChange, MetricThreshold, MetricZScore
from hookwise.errors import ValidationError
from hookwise.expressions import Expression, expression_from_json
from hookwise.filters import (
    Filter,
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
from hookwise.model import Action, Automation, DoNothing, SendNotification, SendWebhook, Webhook
from hookwise.scope import Scope, ScopeKind
from hookwise.template import compile_template

__all__ = [
    "FORMAT_VERSION",
    "automation_from_json",
    "automation_to_json",
    "register_filter",
    "registered_filters",
    "webhook_from_json",
    "webhook_to_json",
]

FORMAT_VERSION = 1
"""The ``"v"`` written into every document; readers refuse any other."""

_T = TypeVar("_T")
_REGISTRY: dict[str, type[Any]] = {}


def register_filter(cls: type[_T]) -> type[_T]:
    """Make an attrs filter class (or a part nested in one) storable, keyed by its name.

    Returns the class, so it also works as a decorator.
    """
    registered: type[_T] = cls
    if not attrs.has(cls):
        raise TypeError(f"{cls.__name__} is not an attrs class")
    if any(field.name == "type" for field in attrs.fields(cls)):
        raise TypeError(f"{cls.__name__} has a field named 'type', which the codec reserves")
    known = _REGISTRY.get(cls.__name__)
    if known is not None and known is not cls:
        raise TypeError(f"another class named {cls.__name__} is registered already")
    _REGISTRY[cls.__name__] = cls
    return registered


def registered_filters() -> Mapping[str, type[Any]]:
    """The registry, read-only: class name to class."""
    return MappingProxyType(_REGISTRY)


for _filter in (
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnUnlinkArtifact,
    OnRunMetric,
    OnRunState,
    MetricThreshold,
    MetricChange,
    MetricZScore,
):
    register_filter(_filter)


# -- helpers -----------------------------------------------------------------


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _fail(what: str, message: str) -> ValidationError:
    return ValidationError(f"stored {what}", message)


def _load(text: str, what: str) -> dict[str, Any]:
    """Parse a document and check its version; returns it without ``"v"``."""
    if not isinstance(text, str):
        raise _fail(what, f"expected JSON text, not {type(text).__name__}")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _fail(what, f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _fail(what, "expected a JSON object")
    version = document.pop("v", None)
    if version != FORMAT_VERSION:
        raise _fail(
            what,
            f"format version {version!r} is not supported (this hookwise reads "
            f"version {FORMAT_VERSION}; a newer hookwise may have written it)",
        )
    return document


def _take(
    document: dict[str, Any], what: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, Any]:
    """The known keys of ``document``; missing required or unexpected keys fail."""
    missing = [key for key in required if key not in document]
    if missing:
        raise _fail(what, f"missing {', '.join(missing)}")
    extra = sorted(set(document) - set(required) - set(optional))
    if extra:
        raise _fail(what, f"unexpected {', '.join(extra)}")
    return {key: document[key] for key in (*required, *optional) if key in document}


def _flag(fields: dict[str, Any], what: str) -> dict[str, Any]:
    """Refuse a stored ``enabled`` that is not a bool before the model does, so
    the error names the stored document like the codec's other errors."""
    if not isinstance(fields.get("enabled", True), bool):
        raise _fail(what, "enabled must be true or false")
    return fields


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(what, "expected a JSON object")
    return dict(value)


# -- filters -------------------------------------------------------------------


def _encode_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return _encode_value(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_encode_value(item) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_encode_value(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if attrs.has(type(value)):
        return _encode_object(value)
    raise TypeError(f"the storage codec cannot encode a {type(value).__name__}")


def _encode_object(value: Any) -> dict[str, Any]:
    name = type(value).__name__
    if _REGISTRY.get(name) is not type(value):
        raise TypeError(f"{name} is not registered: call codec.register_filter({name})")
    document: dict[str, Any] = {"type": name}
    for field in attrs.fields(type(value)):
        if not field.init:
            continue
        item = getattr(value, field.name)
        if field.metadata.get("omit_default") and item == field.default:
            continue  # a field newer than the format: absent means its default
        if isinstance(item, Expression):
            document[field.name] = item.to_json()
        else:
            document[field.name] = _encode_value(item)
    return document


def _decode_value(value: object, what: str) -> object:
    if isinstance(value, dict):
        return _decode_object(value, what)
    if isinstance(value, list):
        return [_decode_value(item, what) for item in value]
    return value


def _decode_object(document: dict[str, Any], what: str) -> object:
    fields = dict(document)
    name = fields.pop("type", None)
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _fail(what, f"unknown type {name!r}")
    known = {field.name: field for field in attrs.fields(cls) if field.init}
    extra = sorted(set(fields) - set(known))
    if extra:
        raise _fail(what, f"unexpected {', '.join(extra)} for {name}")
    arguments: dict[str, object] = {}
    for key, item in fields.items():
        if known[key].metadata.get("codec") == "expression" and item is not None:
            arguments[key] = expression_from_json(item, where=f"stored {what}.{key}")
        else:
            arguments[key] = _decode_value(item, what)
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise _fail(what, f"cannot build {name}: {exc}") from None


# -- scope and action ------------------------------------------------------------


def _encode_scope(scope: Scope) -> dict[str, Any]:
    return {
        "kind": scope.kind.value,
        "entity": scope.entity,
        "project": scope.project_name,
        "collection": scope.collection_name,
    }


def _decode_scope(value: object) -> Scope:
    fields = _take(_object(value, "scope"), "scope", ("kind", "entity", "project"), ("collection",))
    if fields["kind"] not in {kind.value for kind in ScopeKind}:
        raise _fail("scope", f"unknown kind {fields['kind']!r}")
    return Scope(fields["kind"], fields["entity"], fields["project"], fields.get("collection"))


def _encode_action(action: Action) -> dict[str, Any]:
    if isinstance(action, SendWebhook):
        return {
            "type": "send_webhook",
            "webhook": action.webhook,
            "team": action.team,
            "payload": action.payload.source,
        }
    if isinstance(action, SendNotification):
        return {
            "type": "send_notification",
            "secret": action.secret,
            "title": action.title,
            "message": action.message,
            "severity": action.severity.value,
        }
    assert isinstance(action, DoNothing), action  # a new action must be written here
    return {"type": "do_nothing"}


def _decode_action(value: object) -> Action:
    document = _object(value, "action")
    kind = document.pop("type", None)
    if kind == "do_nothing":
        _take(document, "action", (), ())
        return DoNothing()
    if kind == "send_webhook":
        fields = _take(document, "action", ("webhook", "payload"), ("team",))
        if not isinstance(fields["payload"], str):
            raise _fail("action", "payload must be the template's JSON text")
        payload = compile_template(fields["payload"], field="action.payload")
        return SendWebhook(webhook=fields["webhook"], payload=payload, team=fields.get("team"))
    if kind == "send_notification":
        fields = _take(document, "action", ("secret", "title"), ("message", "severity"))
        return SendNotification(**fields)
    raise _fail("action", f"unknown type {kind!r}")


# -- the public functions -----------------------------------------------------------


def webhook_to_json(webhook: Webhook) -> str:
    """The stored form of a webhook (secrets appear by name only)."""
    document = {
        "v": FORMAT_VERSION,
        "team": webhook.team,
        "name": webhook.name,
        "url": webhook.url,
        "access_token": webhook.access_token,
        "secret": webhook.secret,
        "signing": [scheme.value for scheme in webhook.signing],
        "enabled": webhook.enabled,
    }
    for field in ("disabled_reason", "max_in_flight", "rate_limit"):
        if getattr(webhook, field) is not None:  # absent in older records: None
            document[field] = getattr(webhook, field)
    return _dumps(document)


def webhook_from_json(text: str) -> Webhook:
    """Rebuild a webhook, validating it again."""
    fields = _take(
        _load(text, "webhook"),
        "webhook",
        ("team", "name", "url"),
        (
            "access_token",
            "secret",
            "signing",
            "enabled",
            "disabled_reason",
            "max_in_flight",
            "rate_limit",
        ),
    )
    return Webhook(**_flag(fields, "webhook"))


def automation_to_json(automation: Automation) -> str:
    """The stored form of an automation: scope, filter and action spelled out."""
    event: Filter = automation.event
    return _dumps(
        {
            "v": FORMAT_VERSION,
            "name": automation.name,
            "description": automation.description,
            "enabled": automation.enabled,
            "scope": _encode_scope(automation.scope),
            "event": _encode_object(event),
            "action": _encode_action(automation.action),
        }
    )


def automation_from_json(text: str) -> Automation:
    """Rebuild an automation, validating it (and compiling its template) again."""
    fields = _take(
        _load(text, "automation"),
        "automation",
        ("name", "scope", "event", "action"),
        ("description", "enabled"),
    )
    _flag(fields, "automation")
    fields["scope"] = _decode_scope(fields["scope"])
    fields["event"] = _decode_object(_object(fields["event"], "event"), "event")
    fields["action"] = _decode_action(fields["action"])
    return Automation(**fields)
