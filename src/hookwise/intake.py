"""From an event and the automations it fires to the rows the outbox stores.

Pure: the caller passes the time, a way to get a webhook's secrets and a way
to seal a body, and writes the rows in one go. A run automation's row
carries its cooldown, so the cooldown is spent only if the row is stored.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence

import attrs

from hookwise.errors import HookwiseError
from hookwise.events import Event, EventType
from hookwise.filters import OnRunState, RunFilter
from hookwise.index import Match
from hookwise.model import Webhook, slack_destination
from hookwise.signing import new_message_id
from hookwise.storage.protocol import Cooldown, Delivery, DeliveryStatus, OutboxEntry
from hookwise.template import Template

__all__ = ["event_values", "outbox_entries"]


def event_values(event: Event, event_type: EventType) -> dict[str, str]:
    """The built-in payload variables of an event (metadata is passed apart)."""
    run = event.run
    values = {
        "project_name": event.project,
        "entity_name": event.entity,
        "event_type": event_type.value,
        "event_author": event.author,
        "alias": event.alias,
        "tag": event.tag,
        "artifact_collection_name": event.collection,
        "artifact_version": event.version,
        "artifact_version_string": event.version_string,
    }
    if run is not None:
        values["run_id"] = run.id
        values["run_name"] = run.name
        values["run_user"] = run.user
        if event.state is not None:
            values["run_state"] = event.state.value
        if event.step is not None:
            values["step"] = str(event.step)
    return values


def outbox_entries(
    event: Event,
    matches: Sequence[Match],
    *,
    now: float,
    secrets: Callable[[Webhook], dict[str, str]],
    seal: Callable[[str, bytes], bytes],
) -> list[OutboxEntry]:
    """One entry per match that sends (a no-op action sends nothing).

    A match that cannot render (a secret deleted since the automation was
    saved, a metadata value that cannot be turned into text, a body over
    :data:`~hookwise.template.MAX_BODY_BYTES`) becomes a FAILED delivery, so
    the history shows why, and the other matches still go out.
    """
    entries = []
    for match in matches:
        target = match.target
        if target.template is None:
            continue  # a no-op
        if target.webhook is not None:
            webhook = target.webhook
            destination, url = webhook.name, webhook.url
            values: Callable[[], dict[str, str]] = functools.partial(secrets, webhook)
        elif target.slack is not None:  # a Slack message names no secret
            destination = url = slack_destination(target.slack)
            values = _no_secrets
        else:
            continue
        delivery, body = _render(event, match, destination, url, target.template, now, values)
        sealed = seal(delivery.id, body) if body is not None else b""
        entries.append(OutboxEntry(delivery, sealed, _cooldown(event, match, now)))
    return entries


def _no_secrets() -> dict[str, str]:
    return {}


def _cooldown(event: Event, match: Match, now: float) -> Cooldown | None:
    """A run automation fires at most once per run per cooldown (W&B: "in a
    24-hour period, a particular automation can fire at most once per run"),
    whatever state or metric fired it; ``OnRunState(per_state=True)`` gives
    each state a run enters its own cooldown."""
    automation = match.target.automation
    run_filter = automation.event
    if not isinstance(run_filter, RunFilter) or event.run is None:
        return None
    key = f"{automation.team}/{automation.name}"
    if event.state is not None and isinstance(run_filter, OnRunState) and run_filter.per_state:
        key = f"{key}/{event.state.value}"
    return Cooldown(key, event.run.id, at=now, since=now - run_filter.cooldown)


def _render(
    event: Event,
    match: Match,
    destination: str,
    url: str,
    template: Template,
    now: float,
    secrets: Callable[[], dict[str, str]],
) -> tuple[Delivery, bytes | None]:
    automation = match.target.automation
    values = event_values(event, match.event_type)
    values.update(match.values)
    display, body, failure = _bodies(event, template, values, secrets)
    delivery = Delivery(
        id=uuid.uuid4().hex,
        message_id=new_message_id(),
        team=automation.team,
        webhook=destination,
        automation=automation.name,
        event_type=match.event_type.value,
        event_id=event.id,
        created_at=now,
        display=display,
        url=url,
        next_attempt_at=now,
    )
    if failure is not None:
        return _failed(delivery, now, failure), None
    return delivery, body


def _bodies(
    event: Event,
    template: Template,
    values: dict[str, str],
    secrets: Callable[[], dict[str, str]],
) -> tuple[str, bytes | None, str | None]:
    """The display copy, the body, and why there is no body (or None).

    Whatever one match's values do fails that delivery only (the renderer turns
    an error in a value's own code into a TemplateError), so the event's other
    matches still go out; only a storage error reading the secrets raises.
    """
    display = ""
    try:
        display = template.render_display(values, metadata=event.metadata)
        known = secrets()
        return display, template.render(values, secrets=known, metadata=event.metadata), None
    except (HookwiseError, UnicodeError) as exc:  # logged once stored (not in a cooldown)
        return display, None, f"could not render the payload: {exc}"


def _failed(delivery: Delivery, now: float, reason: str) -> Delivery:
    return attrs.evolve(
        delivery,
        status=DeliveryStatus.FAILED,
        next_attempt_at=None,
        error=reason,
        finished_at=now,
    )
