"""The things users define: secrets, webhooks, actions and automations.

All are frozen, slotted attrs classes validated on construction, so an
invalid object cannot exist; cross-object rules (the webhook exists, the
template names only the webhook's secrets) are :class:`hookwise.Admin`'s.
An automation's scope and event filter have modules of their own
(:mod:`hookwise.scope`, :mod:`hookwise.filters`).
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable
from typing import Any, TypeAlias

import attrs

from hookwise._values import describe, plain_number, plain_optional_str, plain_str
from hookwise.errors import ValidationError
from hookwise.events import check_name
from hookwise.filters import Filter
from hookwise.scope import Scope
from hookwise.signing import DEFAULT_SCHEMES, Scheme
from hookwise.template import ACCESS_TOKEN, VARIABLES, Template, compile_template
from hookwise.url import parse_url

__all__ = [
    "Action",
    "Automation",
    "DoNothing",
    "Secret",
    "SendNotification",
    "SendWebhook",
    "Severity",
    "Webhook",
    "check_access_token",
    "slack_destination",
    "slack_secret",
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
        raise ValidationError(attribute.name, f"must be True or False, not {describe(value)}")


def check_secret_name(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must match [A-Za-z_][A-Za-z0-9_]*")
    value = str.__str__(value)  # a str subclass's own methods do not run past here
    if not SECRET_NAME.match(value):
        raise ValidationError(field, "must match [A-Za-z_][A-Za-z0-9_]*")
    if len(value) > MAX_SECRET_NAME:
        raise ValidationError(field, f"must be at most {MAX_SECRET_NAME} characters")
    return value


def _secret_name(_instance: object, _attribute: object, value: Any) -> None:
    value = check_secret_name("name", value)
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

    team: str = attrs.field(converter=plain_str, validator=_team)
    name: str = attrs.field(converter=plain_str, validator=_secret_name)
    value: str = attrs.field(converter=plain_str, repr=False)

    @value.validator
    def _check_value(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str):
            raise ValidationError("value", "must be a non-empty string")
        value = str.__str__(value)
        if not value:
            raise ValidationError("value", "must be a non-empty string")
        if len(value) > MAX_SECRET_VALUE:
            raise ValidationError("value", f"must be at most {MAX_SECRET_VALUE} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("value", "is not encodable as UTF-8") from None


def check_webhook_name(field: str, value: object) -> str:
    if isinstance(value, str):
        value = str.__str__(value)  # a str subclass's own methods do not run past here
    if not isinstance(value, str) or not WEBHOOK_NAME.match(value):
        raise ValidationError(
            field, "must be letters, digits, '_' or '-', words separated by single spaces"
        )
    if len(value) > MAX_WEBHOOK_NAME:
        raise ValidationError(field, f"must be at most {MAX_WEBHOOK_NAME} characters")
    return value


MAX_IN_FLIGHT = 10_000
"""The largest ``Webhook.max_in_flight``."""
MIN_RATE, MAX_RATE = 0.001, 100_000.0
"""The bounds of ``Webhook.rate_limit``, in requests per second."""

MAX_SCHEMES = 64  # entries read from ``signing=``: an endless iterable is refused, not read


def _scheme(item: object) -> Scheme:
    if not isinstance(item, str):  # every scheme is text: nothing else is looked up (hashed)
        raise ValueError(item)
    return Scheme(str.__str__(item))


def _schemes(value: Iterable[Scheme | str]) -> tuple[Scheme, ...]:
    if isinstance(value, (str, Scheme)):
        value = (value,)
    try:
        items = list(itertools.islice(value, MAX_SCHEMES + 1))
        if len(items) > MAX_SCHEMES:
            raise ValidationError("signing", f"must list at most {MAX_SCHEMES} schemes")
        return tuple(dict.fromkeys(_scheme(item) for item in items))
    except ValidationError:
        raise
    except Exception:  # not iterable, an unknown scheme, or an iterable that raises
        choices = ", ".join(s.value for s in Scheme)
        raise ValidationError("signing", f"each scheme must be one of {choices}") from None


@attrs.frozen(slots=True)
class Webhook:
    """Where to POST, and which team secrets authenticate and sign the request."""

    team: str = attrs.field(converter=plain_str, validator=_team)
    name: str = attrs.field(
        converter=plain_str, validator=lambda _i, _a, v: check_webhook_name("name", v)
    )
    url: str = attrs.field(converter=plain_str)
    access_token: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_secret_name
    )
    secret: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_secret_name
    )
    signing: tuple[Scheme, ...] = attrs.field(default=DEFAULT_SCHEMES, converter=_schemes)
    enabled: bool = attrs.field(default=True, validator=_flag)
    disabled_reason: str | None = attrs.field(
        default=None, kw_only=True, converter=plain_optional_str
    )
    max_in_flight: int | None = attrs.field(default=None, kw_only=True, converter=plain_number)
    """At most this many requests to this webhook at once (None: the dispatcher's
    ``webhook_concurrency``), so a slow receiver holds only so many workers."""
    rate_limit: float | None = attrs.field(default=None, kw_only=True, converter=plain_number)
    """At most this many requests per second to this webhook (None: no limit);
    a token bucket that holds up to a second's worth of requests."""

    @max_in_flight.validator
    def _check_in_flight(self, _attribute: object, value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IN_FLIGHT:
            raise ValidationError(
                "max_in_flight", f"must be None or an int from 1 to {MAX_IN_FLIGHT}"
            )

    @rate_limit.validator
    def _check_rate(self, _attribute: object, value: object) -> None:
        if value is None:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not MIN_RATE <= value <= MAX_RATE
        ):
            raise ValidationError(
                "rate_limit",
                f"must be None or requests per second, from {MIN_RATE:g} to {MAX_RATE:g}",
            )

    @url.validator
    def _check_url(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str):
            raise ValidationError("url", "must be a non-empty string")
        value = str.__str__(value)
        if not value:
            raise ValidationError("url", "must be a non-empty string")
        if len(value) > MAX_URL:
            raise ValidationError("url", f"must be at most {MAX_URL} characters")
        try:
            parsed = parse_url(value)
        except ValueError as exc:
            raise ValidationError("url", f"is not a valid URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValidationError("url", "must be an absolute https:// URL")

    @disabled_reason.validator
    def _check_reason(self, _attribute: object, value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise ValidationError("disabled_reason", "must be a string or None")

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


def check_access_token(name: str, token: str) -> None:
    """Refuse a token that cannot go in an ``Authorization: Bearer`` header.

    Checked before a request is built, never quoting the value: the HTTP
    layer would refuse the header with an error that quotes the token.
    """
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ValidationError(
            "access_token",
            f"secret {name!r} must be visible ASCII characters with no spaces or line"
            " breaks (a value read from a file often ends with a newline)",
        )


# -- actions ----------------------------------------------------------------


def _optional_team(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None:
        check_name("action.team", value)


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

    webhook: str = attrs.field(
        converter=plain_str, validator=lambda _i, _a, v: check_webhook_name("action.webhook", v)
    )
    payload: Template = attrs.field(default=None, converter=_template)
    team: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_team
    )


@attrs.frozen(slots=True)
class DoNothing:
    """An action that does nothing: an automation kept for later, or for tests."""


class Severity(str, enum.Enum):
    """How loud a notification is, as W&B's alert severities."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


MAX_NOTIFICATION_TEXT = 3000  # Slack's limit for a section's text


def _severity(value: object) -> Severity:
    if isinstance(value, Severity):
        return value
    try:
        if not isinstance(value, str):  # every severity is text: nothing else is looked up
            raise ValueError(value)
        return Severity(str.__str__(value))
    except ValueError:
        raise ValidationError("action.severity", "must be INFO, WARN or ERROR") from None


def _notification_text(field: str, *, required: bool) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if isinstance(value, str):
            value = str.__str__(value)  # a str subclass's own methods do not run past here
        if not isinstance(value, str) or (required and not value.strip()):
            wanted = "a non-empty string" if required else "a string"
            raise ValidationError(field, f"must be {wanted}")
        if len(value) > MAX_NOTIFICATION_TEXT:
            raise ValidationError(field, f"must be at most {MAX_NOTIFICATION_TEXT} characters")

    return check


@attrs.frozen(slots=True)
class SendNotification:
    """Post a Slack message (W&B's ``SendNotification``) to the Slack
    incoming-webhook URL kept in the team secret ``secret``.

    ``title`` and ``message`` may use the payload variables (``${run_name}``),
    never a secret; the message carries the severity and the event's details.
    It goes through the same outbox (retries, history) and is not signed:
    Slack checks nothing but the URL, which the history never shows.
    """

    secret: str = attrs.field(
        converter=plain_str, validator=lambda _i, _a, v: check_secret_name("action.secret", v)
    )
    title: str = attrs.field(
        converter=plain_str, validator=_notification_text("action.title", required=True)
    )
    message: str = attrs.field(
        default="",
        converter=plain_str,
        validator=_notification_text("action.message", required=False),
    )
    severity: Severity = attrs.field(default=Severity.INFO, converter=_severity)
    payload: Template = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "payload", _slack_template(self))


SLACK = "slack:"  # a delivery to a Slack URL names its secret so; webhook names hold no ":"


def slack_destination(secret: str) -> str:
    """What a Slack delivery keeps as its webhook and URL: the secret's name, never the URL."""
    return SLACK + secret


def slack_secret(destination: str) -> str | None:
    """The secret a Slack delivery posts to, or None for a webhook's delivery."""
    return destination[len(SLACK) :] if destination.startswith(SLACK) else None


def _slack_template(action: SendNotification) -> Template:
    """The Slack message: Block Kit for clients that show it, ``text`` for
    the rest (and for the notification itself)."""
    details = (
        f"*{action.severity.value}* · ${{event_type}} in ${{entity_name}}/${{project_name}}"
        " ${artifact_version_string}${run_name}${run_state}${metric_name} ${metric_value}"
    )
    return compile_template(
        {
            "text": f"[{action.severity.value}] {action.title}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": action.title}},
                *(
                    [{"type": "section", "text": {"type": "mrkdwn", "text": action.message}}]
                    if action.message
                    else []
                ),
                {"type": "context", "elements": [{"type": "mrkdwn", "text": details}]},
            ],
        }
    )


Action: TypeAlias = SendWebhook | SendNotification | DoNothing


def _automation_name(_instance: object, _attribute: object, value: Any) -> None:
    if isinstance(value, str):
        value = str.__str__(value)  # a str subclass's own methods do not run past here
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name", "must be a non-empty string")
    if len(value) > MAX_AUTOMATION_NAME:
        raise ValidationError("name", f"must be at most {MAX_AUTOMATION_NAME} characters")
    if not value.isprintable():
        raise ValidationError("name", "must not contain control characters")


@attrs.frozen(slots=True)
class Automation:
    """When ``event`` happens inside ``scope``, run ``action``."""

    name: str = attrs.field(converter=plain_str, validator=_automation_name)
    scope: Scope = attrs.field()
    event: Filter = attrs.field()
    action: Action = attrs.field()
    description: str = attrs.field(default="", converter=plain_str)
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
                "event",
                f"must be an event filter such as OnLinkArtifact, not {type(value).__name__}",
            )
        if self.scope.kind not in value.scopes:
            kinds = " or ".join(sorted(k.value for k in value.scopes))
            raise ValidationError("scope", f"{type(value).__name__} needs a {kinds} scope")

    @action.validator
    def _check_action(self, _attribute: object, value: object) -> None:
        if not isinstance(value, (SendWebhook, SendNotification, DoNothing)):
            raise ValidationError(
                "action",
                f"must be SendWebhook, SendNotification or DoNothing, not {type(value).__name__}",
            )
        if isinstance(value, SendWebhook) and value.team not in (None, self.scope.entity):
            raise ValidationError(
                "action.team", "an automation sends only through webhooks of its scope's entity"
            )

    @description.validator
    def _check_description(self, _attribute: object, value: object) -> None:
        if isinstance(value, str):
            value = str.__str__(value)  # a str subclass's own methods do not run past here
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            raise ValidationError(
                "description", f"must be a string of at most {MAX_DESCRIPTION} characters"
            )

    @property
    def team(self) -> str:
        return self.scope.entity
