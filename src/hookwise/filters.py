"""Event filters: what an automation listens to.

Every ``On*`` class is here, artifact and run alike, so one module answers
"which events can an automation watch, and how is each one tested". A filter
is a frozen, validated value; the index (:mod:`hookwise.index`) decides which
filters an event reaches, and the run tracker (:mod:`hookwise.tracker`) keeps
the windows a metric condition needs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import attrs

from hookwise.conditions import MetricChange, MetricCondition, MetricThreshold, MetricZScore
from hookwise.errors import ValidationError
from hookwise.events import Event, EventType, RunState, check_label
from hookwise.patterns import compile_pattern, matches
from hookwise.scope import ScopeKind

__all__ = [
    "DEFAULT_COOLDOWN",
    "ArtifactFilter",
    "Filter",
    "OnAddArtifactAlias",
    "OnAddArtifactTag",
    "OnAddCollectionTag",
    "OnCreateArtifact",
    "OnLinkArtifact",
    "OnRemoveArtifactTag",
    "OnRemoveCollectionTag",
    "OnRunMetric",
    "OnRunState",
    "OnUnlinkArtifact",
    "RunFilter",
]

DEFAULT_COOLDOWN = 24 * 3600.0


class Filter:
    """What an automation listens to: an event type, and the scopes it suits."""

    __slots__ = ()
    event_type: ClassVar[EventType]
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset(ScopeKind)


# -- artifact filters ---------------------------------------------------------------


def _regex_field(name: str, *, optional: bool) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value is None and optional:
            return
        compile_pattern(value, f"event.{name}")

    return attrs.field(default=None if optional else attrs.NOTHING, validator=check)


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


# -- run filters --------------------------------------------------------------------


def _cooldown(value: Any) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValidationError(
            "event.cooldown", "must be a non-negative number of seconds or a timedelta"
        )
    return float(value)


def _optional_regex(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if value is not None:
            compile_pattern(value, field)

    return check


def _optional_label(_i: object, _a: object, value: Any) -> None:
    if value is not None:
        check_label("event.user", value)


class RunFilter(Filter):
    """A filter on run events: optional run-name regex and user, and a cooldown
    (an automation fires at most once per run per cooldown)."""

    __slots__ = ()
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset({ScopeKind.PROJECT})
    run_name: str | None
    user: str | None
    cooldown: float

    def covers_run(self, event: Event) -> bool:
        run = event.run
        if run is None:
            return False
        if self.user is not None and run.user != self.user:
            return False
        return matches(self.run_name, run.name)


def _condition(_i: object, _a: object, value: Any) -> None:
    if not isinstance(value, (MetricThreshold, MetricChange, MetricZScore)):
        raise ValidationError(
            "event.condition",
            f"must be MetricThreshold, MetricChange or MetricZScore, not {type(value).__name__}",
        )


@attrs.frozen(slots=True)
class OnRunMetric(RunFilter):
    """A metric condition, evaluated on each new value of the metric, per run."""

    condition: MetricCondition = attrs.field(validator=_condition)
    run_name: str | None = attrs.field(default=None, validator=_optional_regex("event.run_name"))
    user: str | None = attrs.field(default=None, validator=_optional_label)
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)

    @property  # per instance: the condition decides the event type it renders
    def event_type(self) -> EventType:  # type: ignore[override]
        return self.condition.event_type


def _states(value: Iterable[RunState | str] | RunState | str) -> frozenset[RunState]:
    if isinstance(value, (str, RunState)):
        value = (value,)
    try:
        states = frozenset(RunState(s) for s in value)
    except (TypeError, ValueError):
        raise ValidationError(
            "event.states", "must be RUNNING, FINISHED, FAILED (or CRASHED)"
        ) from None
    if not states:
        raise ValidationError("event.states", "must name at least one state")
    return states


@attrs.frozen(slots=True)
class OnRunState(RunFilter):
    """The run enters one of ``states`` (CRASHED counts as FAILED)."""

    event_type: ClassVar[EventType] = EventType.RUN_STATE

    states: frozenset[RunState] = attrs.field(
        default=frozenset({RunState.FAILED}), converter=_states
    )
    run_name: str | None = attrs.field(default=None, validator=_optional_regex("event.run_name"))
    user: str | None = attrs.field(default=None, validator=_optional_label)
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)
