"""The things users define: secrets, webhooks, automations and their parts.

All are frozen, slotted attrs classes validated on construction, so an
invalid object cannot exist; cross-object rules (the webhook exists, the
template names only the webhook's secrets) are :class:`hookwise.Admin`'s.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any, ClassVar, TypeAlias

import attrs
import httpx

from hookwise.errors import ValidationError
from hookwise.events import Event, EventType, check_name
from hookwise.patterns import compile_pattern, matches
from hookwise.signing import DEFAULT_SCHEMES, Scheme
from hookwise.template import ACCESS_TOKEN, VARIABLES, Template, compile_template

__all__ = [
    "Action",
    "ArtifactFilter",
    "Automation",
    "DoNothing",
    "EventFilter",
    "Filter",
    "OnAddArtifactAlias",
    "OnAddArtifactTag",
    "OnAddCollectionTag",
    "OnCreateArtifact",
    "OnLinkArtifact",
    "OnRemoveArtifactTag",
    "OnRemoveCollectionTag",
    "OnUnlinkArtifact",
    "Scope",
    "ScopeKind",
    "Secret",
    "SendWebhook",
    "Webhook",
]

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
WEBHOOK_NAME = re.compile(r"[-\w]+( +[-\w]+)*\Z")
MAX_SECRET_NAME = 128
MAX_SECRET_VALUE = 64 * 1024
MAX_WEBHOOK_NAME = 64
MAX_URL = 2048
MAX_AUTOMATION_NAME = 255
MAX_DESCRIPTION = 4096
RESERVED_SECRET_NAMES = frozenset({"ACCESS_TOKEN"}) | VARIABLES


def _team(_instance: object, _attribute: object, value: Any) -> None:
    check_name("team", value)


def _flag(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # "false" is truthy: it would switch on what was meant off (and storages refuse to read it back)
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, f"must be True or False, not {value!r}")


def check_secret_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not SECRET_NAME.match(value):
        raise ValidationError(field, "must match [A-Za-z_][A-Za-z0-9_]*")
    if len(value) > MAX_SECRET_NAME:
        raise ValidationError(field, f"must be at most {MAX_SECRET_NAME} characters")
    return value


def _secret_name(_instance: object, _attribute: object, value: Any) -> None:
    check_secret_name("name", value)
    if value in RESERVED_SECRET_NAMES:
        raise ValidationError("name", f"{value!r} is a payload variable; pick another name")


def _optional_secret_name(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        check_secret_name(attribute.name, value)


@attrs.frozen(slots=True)
class Secret:
    """A team secret. The value is write-only: hookwise never hands it back."""

    team: str = attrs.field(validator=_team)
    name: str = attrs.field(validator=_secret_name)
    value: str = attrs.field(repr=False)

    @value.validator
    def _check_value(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise ValidationError("value", "must be a non-empty string")
        if len(value) > MAX_SECRET_VALUE:
            raise ValidationError("value", f"must be at most {MAX_SECRET_VALUE} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("value", "is not encodable as UTF-8") from None


def check_webhook_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not WEBHOOK_NAME.match(value):
        raise ValidationError(
            field, "must be letters, digits, '_' or '-', words separated by single spaces"
        )
    if len(value) > MAX_WEBHOOK_NAME:
        raise ValidationError(field, f"must be at most {MAX_WEBHOOK_NAME} characters")
    return value


def _schemes(value: Iterable[Scheme | str]) -> tuple[Scheme, ...]:
    if isinstance(value, (str, Scheme)):
        value = (value,)
    try:
        return tuple(dict.fromkeys(Scheme(item) for item in value))
    except (TypeError, ValueError):
        choices = ", ".join(s.value for s in Scheme)
        raise ValidationError("signing", f"each scheme must be one of {choices}") from None


@attrs.frozen(slots=True)
class Webhook:
    """Where to POST, and which team secrets authenticate and sign the request."""

    team: str = attrs.field(validator=_team)
    name: str = attrs.field(validator=lambda _i, _a, v: check_webhook_name("name", v))
    url: str = attrs.field()
    access_token: str | None = attrs.field(default=None, validator=_optional_secret_name)
    secret: str | None = attrs.field(default=None, validator=_optional_secret_name)
    signing: tuple[Scheme, ...] = attrs.field(default=DEFAULT_SCHEMES, converter=_schemes)
    enabled: bool = attrs.field(default=True, validator=_flag)

    @url.validator
    def _check_url(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise ValidationError("url", "must be a non-empty string")
        if len(value) > MAX_URL:
            raise ValidationError("url", f"must be at most {MAX_URL} characters")
        try:
            parsed = httpx.URL(value)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ValidationError("url", f"is not a valid URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValidationError("url", "must be an absolute https:// URL")

    def __attrs_post_init__(self) -> None:
        if self.secret is not None and self.secret == self.access_token:
            raise ValidationError(
                "secret",
                "must differ from access_token: a signing key sent as a bearer token "
                "in every request would let whoever sees the headers forge signatures",
            )

    @property
    def secret_names(self) -> frozenset[str]:
        """The team secrets this webhook uses: the token and the signing secret."""
        return frozenset(n for n in (self.access_token, self.secret) if n is not None)

    @property
    def template_secrets(self) -> frozenset[str]:
        """The secret placeholders a payload may use: those, and ``ACCESS_TOKEN``."""
        token = {ACCESS_TOKEN} if self.access_token is not None else set()
        return self.secret_names | token


class ScopeKind(str, enum.Enum):
    PROJECT = "project"
    REGISTRY = "registry"
    COLLECTION = "collection"


def _scope_kind(value: object) -> ScopeKind:
    try:
        return ScopeKind(value)
    except ValueError:
        raise ValidationError("scope.kind", "must be project, registry or collection") from None


@attrs.frozen(slots=True)
class Scope:
    """What an automation watches: a project, a registry, or one collection.

    Build one with ``Scope.project(entity, project)``,
    ``Scope.registry(entity, registry)`` or
    ``Scope.collection(entity, registry, collection)``. A registry is a
    project that holds registered models; a registry scope covers every
    collection in it, future ones included.
    """

    kind: ScopeKind = attrs.field(converter=_scope_kind)
    entity: str = attrs.field(validator=lambda _i, _a, v: check_name("scope.entity", v))
    project_name: str = attrs.field(validator=lambda _i, _a, v: check_name("scope.project", v))
    collection_name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind is ScopeKind.COLLECTION:
            check_name("scope.collection", self.collection_name)
        elif self.collection_name is not None:
            raise ValidationError(
                "scope.collection", f"a {self.kind.value} scope has no collection"
            )

    @classmethod
    def project(cls, entity: str, project: str) -> Scope:
        return cls(ScopeKind.PROJECT, entity, project)

    @classmethod
    def registry(cls, entity: str, registry: str) -> Scope:
        return cls(ScopeKind.REGISTRY, entity, registry)

    @classmethod
    def collection(cls, entity: str, project: str, collection: str) -> Scope:
        return cls(ScopeKind.COLLECTION, entity, project, collection)

    def covers(self, event: Event) -> bool:
        return (
            event.entity == self.entity
            and event.project == self.project_name
            and (self.collection_name is None or event.collection == self.collection_name)
        )


# -- event filters ----------------------------------------------------------


def _regex_field(name: str, *, optional: bool) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value is None and optional:
            return
        compile_pattern(value, f"event.{name}")

    return attrs.field(default=None if optional else attrs.NOTHING, validator=check)


class Filter:
    """What an automation listens to: an event type, and the scopes it suits."""

    __slots__ = ()
    event_type: ClassVar[EventType]
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset(ScopeKind)


class ArtifactFilter(Filter):
    """An artifact event filter: a test of one event."""

    __slots__ = ()

    def matches(self, event: Event) -> bool:
        raise NotImplementedError


@attrs.frozen(slots=True)
class OnLinkArtifact(ArtifactFilter):
    """A version is linked to a collection; optionally only with a matching alias."""

    event_type: ClassVar[EventType] = EventType.LINK_ARTIFACT
    alias: str | None = _regex_field("alias", optional=True)

    def matches(self, event: Event) -> bool:
        return matches(self.alias, event.alias)


@attrs.frozen(slots=True)
class OnUnlinkArtifact(ArtifactFilter):
    """A version is unlinked from a collection."""

    event_type: ClassVar[EventType] = EventType.UNLINK_ARTIFACT

    def matches(self, event: Event) -> bool:
        return True


@attrs.frozen(slots=True)
class OnCreateArtifact(ArtifactFilter):
    """A new version is created in the collection."""

    event_type: ClassVar[EventType] = EventType.CREATE_ARTIFACT

    def matches(self, event: Event) -> bool:
        return True


@attrs.frozen(slots=True)
class OnAddArtifactAlias(ArtifactFilter):
    """An alias matching ``alias`` (a regex; use ``^name$`` for exact) is added."""

    event_type: ClassVar[EventType] = EventType.ADD_ARTIFACT_ALIAS
    alias: str = _regex_field("alias", optional=False)

    def matches(self, event: Event) -> bool:
        return matches(self.alias, event.alias)


@attrs.frozen(slots=True)
class _TagFilter(ArtifactFilter):
    tag: str = _regex_field("tag", optional=False)

    def matches(self, event: Event) -> bool:
        return matches(self.tag, event.tag)


@attrs.frozen(slots=True)
class OnAddArtifactTag(_TagFilter):
    """A tag matching ``tag`` is added to a version."""

    event_type: ClassVar[EventType] = EventType.ADD_ARTIFACT_TAG


@attrs.frozen(slots=True)
class OnRemoveArtifactTag(_TagFilter):
    """A tag matching ``tag`` is removed from a version."""

    event_type: ClassVar[EventType] = EventType.REMOVE_ARTIFACT_TAG


@attrs.frozen(slots=True)
class OnAddCollectionTag(_TagFilter):
    """A tag matching ``tag`` is added to a collection."""

    event_type: ClassVar[EventType] = EventType.ADD_COLLECTION_TAG


@attrs.frozen(slots=True)
class OnRemoveCollectionTag(_TagFilter):
    """A tag matching ``tag`` is removed from a collection."""

    event_type: ClassVar[EventType] = EventType.REMOVE_COLLECTION_TAG


EventFilter = Filter


# -- actions ----------------------------------------------------------------


def _template(value: object) -> Template:
    if isinstance(value, Template):
        return value
    return compile_template(value)  # type: ignore[arg-type]  # it checks the type itself


@attrs.frozen(slots=True)
class SendWebhook:
    """POST the rendered ``payload`` through the team's webhook ``webhook``.

    ``payload`` is a JSON template (a dict, a list or JSON text); ``None``
    sends every event variable. ``team`` defaults to the scope's entity and
    may not name another team.
    """

    webhook: str = attrs.field(validator=lambda _i, _a, v: check_webhook_name("action.webhook", v))
    payload: Template = attrs.field(default=None, converter=_template)
    team: str | None = None


@attrs.frozen(slots=True)
class DoNothing:
    """An action that does nothing: an automation kept for later, or for tests."""


Action: TypeAlias = SendWebhook | DoNothing


def _automation_name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name", "must be a non-empty string")
    if len(value) > MAX_AUTOMATION_NAME:
        raise ValidationError("name", f"must be at most {MAX_AUTOMATION_NAME} characters")
    if not value.isprintable():
        raise ValidationError("name", "must not contain control characters")


@attrs.frozen(slots=True)
class Automation:
    """When ``event`` happens inside ``scope``, run ``action``."""

    name: str = attrs.field(validator=_automation_name)
    scope: Scope = attrs.field()
    event: EventFilter = attrs.field()
    action: Action = attrs.field()
    description: str = attrs.field(default="")
    enabled: bool = attrs.field(default=True, validator=_flag)

    @scope.validator
    def _check_scope(self, _attribute: object, value: object) -> None:
        if not isinstance(value, Scope):
            raise ValidationError(
                "scope", f"must be a Scope such as Scope.project(...), not {type(value).__name__}"
            )

    @event.validator
    def _check_event(self, _attribute: object, value: object) -> None:
        if not isinstance(value, Filter):
            raise ValidationError(
                "event", f"must be an event filter such as OnLinkArtifact, not {value!r}"
            )
        if self.scope.kind not in value.scopes:
            kinds = " or ".join(sorted(k.value for k in value.scopes))
            raise ValidationError("scope", f"{type(value).__name__} needs a {kinds} scope")

    @action.validator
    def _check_action(self, _attribute: object, value: object) -> None:
        if not isinstance(value, (SendWebhook, DoNothing)):
            raise ValidationError("action", f"must be SendWebhook or DoNothing, not {value!r}")
        if isinstance(value, SendWebhook) and value.team not in (None, self.scope.entity):
            raise ValidationError(
                "action.team", "an automation sends only through webhooks of its scope's entity"
            )

    @description.validator
    def _check_description(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            raise ValidationError(
                "description", f"must be a string of at most {MAX_DESCRIPTION} characters"
            )

    @property
    def team(self) -> str:
        return self.scope.entity
