"""The automation index: which automations an event reaches, without a scan.

Built once per storage revision. ``handle()`` never scans every automation:
an artifact or run-state event costs one dict lookup by (event type, entity,
project); a run-metrics event one lookup by (entity, project) and one per
logged metric name. Only the automations found that way are tested; the
metric windows themselves are a :class:`~hookwise.tracker.RunTracker`'s,
which outlives index rebuilds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

import attrs

from hookwise.events import Event, EventType
from hookwise.filters import ArtifactFilter, OnRunMetric, OnRunState
from hookwise.model import Automation, DoNothing, SendNotification, SendWebhook, Webhook
from hookwise.template import Template

__all__ = ["Index", "Match", "Target"]

_NO_VALUES: Mapping[str, str] = MappingProxyType({})
_RUN_METRIC = EventType.RUN_METRIC  # a global is quicker to reach than an enum member


@attrs.frozen(slots=True)
class Target:
    """An automation with what it sends (``template``) and where: the
    ``webhook``, or the team secret holding a Slack URL (``slack``); with
    no template it sends nothing."""

    automation: Automation
    webhook: Webhook | None = None
    template: Template | None = None
    slack: str | None = None
    key: str = attrs.field(default="", eq=False)  # names its run windows across rebuilds

    def __attrs_post_init__(self) -> None:
        a = self.automation
        object.__setattr__(self, "key", f"{a.team}\x00{a.name}\x00{a.event!r}")


@attrs.frozen(slots=True)
class Match:
    """An automation that fires for an event, the event type it renders, and
    the run variables of the firing (``metric_name``, ``metric_value``)."""

    target: Target
    event_type: EventType
    values: Mapping[str, str] = _NO_VALUES


class _Tracker(Protocol):
    """What :meth:`Index.match` needs of a :class:`~hookwise.tracker.RunTracker`.

    A protocol rather than an import: the tracker builds this module's
    matches, so it imports this module, and the imports point one way.
    """

    def on_metrics(
        self, event: Event, watched: Mapping[str, tuple[Target, ...]]
    ) -> Sequence[Match]: ...

    def on_state(self, event: Event) -> bool: ...


_Key = tuple[EventType, str, str]


class Index:
    """Enabled automations grouped by what they listen to."""

    __slots__ = ("_by_key", "_metrics", "revision", "size")

    def __init__(self, targets: Iterable[Target], revision: int) -> None:
        by_key: defaultdict[_Key, list[Target]] = defaultdict(list)
        metrics: defaultdict[tuple[str, str], defaultdict[str, list[Target]]] = defaultdict(
            lambda: defaultdict(list)
        )
        size = 0
        for target in targets:
            automation = target.automation
            if not automation.enabled:
                continue
            scope, listens = automation.scope, automation.event
            if isinstance(listens, OnRunMetric):
                metrics[(scope.entity, scope.project_name)][listens.condition.name].append(target)
            else:
                by_key[(listens.event_type, scope.entity, scope.project_name)].append(target)
            size += 1
        self._by_key: dict[_Key, tuple[Target, ...]] = {k: tuple(v) for k, v in by_key.items()}
        self._metrics: dict[tuple[str, str], dict[str, tuple[Target, ...]]] = {
            project: {name: tuple(ts) for name, ts in names.items()}
            for project, names in metrics.items()
        }
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
            elif isinstance(action, SendNotification):
                targets.append(Target(automation, None, action.payload, slack=action.secret))
        return cls(targets, revision)

    def watches_metrics(self, entity: str, project: str) -> bool:
        """Whether any automation watches run metrics in this project."""
        return (entity, project) in self._metrics

    def match(self, event: Event, tracker: _Tracker) -> Sequence[Match]:
        kind = event.type
        if kind is _RUN_METRIC:
            watched = self._metrics.get((event.entity, event.project))
            return tracker.on_metrics(event, watched) if watched else []
        if kind is EventType.RUN_STATE:
            changed = tracker.on_state(event)
            candidates = self._by_key.get((kind, event.entity, event.project))
            if not changed or not candidates:
                return []
            return [
                Match(t, kind)
                for t in candidates
                if isinstance(f := t.automation.event, OnRunState)
                and event.state in f.states
                and f.covers_run(event)
            ]
        candidates = self._by_key.get((kind, event.entity, event.project))
        if not candidates:
            return []
        return [
            Match(t, kind)
            for t in candidates
            if isinstance(f := t.automation.event, ArtifactFilter)
            and t.automation.scope.covers(event)
            and f.matches(event)
        ]
