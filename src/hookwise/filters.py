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
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from hookwise._values import describe, plain_number, plain_optional_str
from hookwise.conditions import MetricChange, MetricCondition, MetricThreshold, MetricZScore
from hookwise.errors import ValidationError
from hookwise.events import Event, EventType, RunState, check_label
from hookwise.expressions import (
    ARTIFACT_FIELDS,
    RUN_FIELDS,
    Expression,
    check_fields,
    to_expression,
)
from hookwise.patterns import compile_pattern, matches
from hookwise.scope import Scope, ScopeKind

if TYPE_CHECKING:
    from hookwise.model import Action, Automation

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
    "Trigger",
]

DEFAULT_COOLDOWN = 24 * 3600.0


class Filter:
    """What an automation listens to: an event type, and the scopes it suits.

    ``event >> action`` (or ``event.then(action)``), W&B's spelling, pairs it
    with an action: a :class:`Trigger`, which ``.named(name, scope)`` makes
    an :class:`~hookwise.model.Automation`.
    """

    __slots__ = ()
    event_type: ClassVar[EventType]
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset(ScopeKind)

    def then(self, action: Action) -> Trigger:
        """This event runs ``action``: W&B's ``event.then(action)``."""
        return Trigger(self, action)

    def __rshift__(self, action: Action) -> Trigger:
        """W&B's ``event >> action``."""
        return self.then(action)


@attrs.frozen(slots=True)
class Trigger:
    """An event filter and the action it runs, waiting for a name and a scope.

    What W&B's ``event >> action`` builds (W&B's ``NewAutomation``; there the
    event carries its scope, here the automation does)::

        trigger = hw.OnAddArtifactAlias(filter=hw.ArtifactEvent.alias == "production") >> action
        admin.create_automation(trigger.named("deploy", hw.Scope.registry("ml-team", "models")))
    """

    event: Filter
    action: Action

    def named(
        self,
        name: str,
        scope: Scope,
        description: str | None = None,
        *,
        enabled: bool = True,
    ) -> Automation:
        """The automation: validated as ``Automation(...)`` is."""
        # model.py sits above this module (an automation holds a filter): the
        # one import that points up is made here, when a trigger is named
        from hookwise.model import Automation

        return Automation(
            name=name,
            scope=scope,
            event=self.event,
            action=self.action,
            description="" if description is None else description,
            enabled=enabled,
        )


# -- artifact filters ---------------------------------------------------------------


def _regex_field(name: str, *, optional: bool) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value is None and optional:
            return
        compile_pattern(value, f"event.{name}")

    return attrs.field(
        default=None if optional else attrs.NOTHING, converter=plain_optional_str, validator=check
    )


def _artifact_expression(_i: object, _a: object, value: Expression | None) -> None:
    check_fields(value, ARTIFACT_FIELDS, "artifact event")


def _filter_field(allowed: Callable[[object, object, Any], None]) -> Any:
    """W&B's optional ``filter=``: an expression (or its JSON), None for every event.

    Stored as MongoDB-style JSON, and left out of the stored document when
    None, so a document written without one reads in an older hookwise.
    """
    return attrs.field(
        default=None,
        kw_only=True,
        converter=to_expression,
        validator=allowed,
        metadata={"codec": "expression", "omit_default": True},
    )


class ArtifactFilter(Filter):
    """An artifact event filter: a test of one event.

    Every artifact filter takes an optional ``filter=`` expression over
    ``ArtifactEvent.alias`` and ``ArtifactEvent.tag`` (W&B's spelling); the
    regex fields (``alias=``, ``tag=``) are hookwise's and, when given, must
    match as well.
    """

    __slots__ = ()
    filter: Expression | None

    def matches(self, event: Event) -> bool:
        raise NotImplementedError

    def _passes(self, event: Event) -> bool:
        return self.filter is None or self.filter.evaluate(event)


@attrs.frozen(slots=True)
class OnLinkArtifact(ArtifactFilter):
    """A version is linked to a collection; optionally only with a matching alias."""

    event_type: ClassVar[EventType] = EventType.LINK_ARTIFACT
    alias: str | None = _regex_field("alias", optional=True)
    filter: Expression | None = _filter_field(_artifact_expression)  # noqa: RUF009

    def matches(self, event: Event) -> bool:
        return matches(self.alias, event.alias) and self._passes(event)


@attrs.frozen(slots=True)
class OnUnlinkArtifact(ArtifactFilter):
    """A version is unlinked from a collection."""

    event_type: ClassVar[EventType] = EventType.UNLINK_ARTIFACT
    filter: Expression | None = _filter_field(_artifact_expression)  # noqa: RUF009

    def matches(self, event: Event) -> bool:
        return self._passes(event)


@attrs.frozen(slots=True)
class OnCreateArtifact(ArtifactFilter):
    """A new version is created in the collection."""

    event_type: ClassVar[EventType] = EventType.CREATE_ARTIFACT
    filter: Expression | None = _filter_field(_artifact_expression)  # noqa: RUF009

    def matches(self, event: Event) -> bool:
        return self._passes(event)


@attrs.frozen(slots=True)
class OnAddArtifactAlias(ArtifactFilter):
    """An alias is added; optionally only one matching ``alias`` (a regex: use
    ``^name$`` for exact) and ``filter`` (``ArtifactEvent.alias == "name"``)."""

    event_type: ClassVar[EventType] = EventType.ADD_ARTIFACT_ALIAS
    alias: str | None = _regex_field("alias", optional=True)
    filter: Expression | None = _filter_field(_artifact_expression)  # noqa: RUF009

    def matches(self, event: Event) -> bool:
        return matches(self.alias, event.alias) and self._passes(event)


@attrs.frozen(slots=True)
class _TagFilter(ArtifactFilter):
    tag: str | None = _regex_field("tag", optional=True)
    filter: Expression | None = _filter_field(_artifact_expression)  # noqa: RUF009

    def matches(self, event: Event) -> bool:
        return matches(self.tag, event.tag) and self._passes(event)


@attrs.frozen(slots=True)
class OnAddArtifactTag(_TagFilter):
    """A tag is added to a version (optionally one matching ``tag`` and ``filter``)."""

    event_type: ClassVar[EventType] = EventType.ADD_ARTIFACT_TAG


@attrs.frozen(slots=True)
class OnRemoveArtifactTag(_TagFilter):
    """A tag is removed from a version (optionally one matching ``tag`` and ``filter``)."""

    event_type: ClassVar[EventType] = EventType.REMOVE_ARTIFACT_TAG


@attrs.frozen(slots=True)
class OnAddCollectionTag(_TagFilter):
    """A tag is added to a collection (optionally one matching ``tag`` and ``filter``)."""

    event_type: ClassVar[EventType] = EventType.ADD_COLLECTION_TAG


@attrs.frozen(slots=True)
class OnRemoveCollectionTag(_TagFilter):
    """A tag is removed from a collection (optionally one matching ``tag`` and ``filter``)."""

    event_type: ClassVar[EventType] = EventType.REMOVE_COLLECTION_TAG


# -- run filters --------------------------------------------------------------------


def _cooldown(value: Any) -> float:
    if isinstance(value, datetime.timedelta):
        value = datetime.timedelta.total_seconds(value)
    value = plain_number(value)  # a number subclass's own methods never run
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValidationError(
            "event.cooldown", "must be a non-negative number of seconds or a timedelta"
        )
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        raise ValidationError("event.cooldown", "is too large a number of seconds") from None


def _optional_regex(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if value is not None:
            compile_pattern(value, field)

    return check


def _optional_label(_i: object, _a: object, value: Any) -> None:
    if value is not None:
        check_label("event.user", value)


def _run_expression(_i: object, _a: object, value: Expression | None) -> None:
    check_fields(value, RUN_FIELDS, "run event")


class RunFilter(Filter):
    """A filter on run events: optional run-name regex, user and ``run_filter``
    expression (W&B's ``RunEvent.name.contains("sweep")``; all that are given
    must hold), and a cooldown (an automation fires at most once per run per
    cooldown)."""

    __slots__ = ()
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset({ScopeKind.PROJECT})
    run_name: str | None
    user: str | None
    run_filter: Expression | None
    cooldown: float

    def covers_run(self, event: Event) -> bool:
        run = event.run
        if run is None:
            return False
        if self.user is not None and run.user != self.user:
            return False
        if self.run_filter is not None and not self.run_filter.evaluate(event):
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
    run_name: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_regex("event.run_name")
    )
    user: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_label
    )
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)
    run_filter: Expression | None = _filter_field(_run_expression)  # noqa: RUF009

    @property  # per instance: the condition decides the event type it renders
    def event_type(self) -> EventType:  # type: ignore[override]
        return self.condition.event_type


def _state(item: object) -> RunState:
    if not isinstance(item, str):  # every state is text: nothing else is looked up (hashed)
        raise ValueError(item)
    return RunState(str.__str__(item))  # a str subclass's own methods never run


def _states(value: Iterable[RunState | str] | RunState | str) -> frozenset[RunState]:
    if isinstance(value, (str, RunState)):
        value = (value,)
    try:
        states = frozenset(_state(s) for s in value)
    except Exception:  # not iterable, an unknown state, or an iterable that raises
        raise ValidationError(
            "event.states", "must be RUNNING, FINISHED, FAILED (or CRASHED)"
        ) from None
    if not states:
        raise ValidationError("event.states", "must name at least one state")
    return states


def _per_state(_i: object, _a: object, value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError("event.per_state", f"must be True or False, not {describe(value)}")


@attrs.frozen(slots=True)
class OnRunState(RunFilter):
    """The run enters one of ``states`` (CRASHED counts as FAILED).

    As in W&B, the automation fires at most once per run per ``cooldown``
    (24 h), whichever of its states the run entered; ``per_state=True``
    gives each state its own cooldown (a run going RUNNING then FAILED
    fires twice).
    """

    event_type: ClassVar[EventType] = EventType.RUN_STATE

    states: frozenset[RunState] = attrs.field(
        default=frozenset({RunState.FAILED}), converter=_states
    )
    run_name: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_regex("event.run_name")
    )
    user: str | None = attrs.field(
        default=None, converter=plain_optional_str, validator=_optional_label
    )
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)
    run_filter: Expression | None = _filter_field(_run_expression)  # noqa: RUF009
    per_state: bool = attrs.field(
        default=False, kw_only=True, validator=_per_state, metadata={"omit_default": True}
    )
