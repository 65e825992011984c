"""The automation index: from an event to the automations it fires, by lookup.

Built once per storage revision. ``handle()`` never scans every automation:
an event costs one dict lookup by (event type, entity, project), then only
the automations of that project are tested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import attrs

from hookwise.events import Event, EventType
from hookwise.model import Automation, DoNothing, SendWebhook, Webhook
from hookwise.template import Template

__all__ = ["Index", "Match", "Target"]


@attrs.frozen(slots=True)
class Target:
    """An automation with the webhook and template it sends (both None: no-op)."""

    automation: Automation
    webhook: Webhook | None = None
    template: Template | None = None


@attrs.frozen(slots=True)
class Match:
    """An automation that fires for an event, and the event type it renders."""

    target: Target
    event_type: EventType


_Key = tuple[EventType, str, str]


class Index:
    """Enabled automations grouped by what they listen to."""

    __slots__ = ("_by_key", "revision", "size")

    def __init__(self, targets: Iterable[Target], revision: int) -> None:
        by_key: defaultdict[_Key, list[Target]] = defaultdict(list)
        size = 0
        for target in targets:
            automation = target.automation
            if not automation.enabled:
                continue
            scope = automation.scope
            by_key[(automation.event.event_type, scope.entity, scope.project_name)].append(target)
            size += 1
        self._by_key: dict[_Key, tuple[Target, ...]] = {k: tuple(v) for k, v in by_key.items()}
        self.revision = revision
        self.size = size

    @classmethod
    def build(
        cls,
        automations: Iterable[Automation],
        webhooks: dict[tuple[str, str], Webhook],
        revision: int,
    ) -> Index:
        """Pair each automation with its webhook; one whose webhook is gone is left out."""
        targets = []
        for automation in automations:
            action = automation.action
            if isinstance(action, DoNothing):
                targets.append(Target(automation))
            elif isinstance(action, SendWebhook):
                webhook = webhooks.get((automation.team, action.webhook))
                if webhook is not None:
                    targets.append(Target(automation, webhook, action.payload))
        return cls(targets, revision)

    def match(self, event: Event) -> list[Match]:
        candidates = self._by_key.get((event.type, event.entity, event.project))
        if not candidates:
            return []
        return [
            Match(t, event.type)
            for t in candidates
            if t.automation.scope.covers(event) and t.automation.event.matches(event)
        ]
