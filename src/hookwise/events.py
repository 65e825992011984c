"""What happened on the platform: events, and the runs that emit some of them.

An :class:`Event` is a plain value built by one constructor per kind of
happening (``Event.artifact_alias_added(...)``, ``Event.run_metrics(...)``).
Constructors check their input, so a bad call fails in the caller's code,
not later on a worker thread.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from hookwise._values import plain_str
from hookwise.errors import ValidationError

__all__ = ["Event", "EventType", "Run", "RunState"]

MAX_NAME = 128
MAX_LABEL = 256
MAX_METADATA_BYTES = 2 * 1024 * 1024
"""An artifact event's metadata is at most about this large as JSON (2 MiB)."""
MAX_METADATA_DEPTH = 64
"""...and at most this many levels deep (a value that contains itself is refused too)."""
MAX_STEP = 2**63 - 1
"""The largest ``step=`` (W&B's steps are 64-bit integers)."""
_FORBIDDEN = frozenset("/\\#?%:")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class EventType(str, enum.Enum):
    """The kinds of event; ``${event_type}`` renders the value.

    W&B's names are aliases: ``EventType.LINK_MODEL is EventType.LINK_ARTIFACT``
    and ``EventType.RUN_METRIC_THRESHOLD is EventType.RUN_METRIC`` (and
    ``EventType("LINK_MODEL")``, the value W&B sends, finds it); either way
    ``${event_type}`` renders hookwise's value.
    """

    LINK_ARTIFACT = "LINK_ARTIFACT"
    UNLINK_ARTIFACT = "UNLINK_ARTIFACT"
    ADD_ARTIFACT_ALIAS = "ADD_ARTIFACT_ALIAS"
    ADD_ARTIFACT_TAG = "ADD_ARTIFACT_TAG"
    REMOVE_ARTIFACT_TAG = "REMOVE_ARTIFACT_TAG"
    ADD_COLLECTION_TAG = "ADD_COLLECTION_TAG"
    REMOVE_COLLECTION_TAG = "REMOVE_COLLECTION_TAG"
    CREATE_ARTIFACT = "CREATE_ARTIFACT"
    RUN_METRIC = "RUN_METRIC"
    RUN_METRIC_CHANGE = "RUN_METRIC_CHANGE"
    RUN_METRIC_ZSCORE = "RUN_METRIC_ZSCORE"
    RUN_STATE = "RUN_STATE"
    # W&B's names: aliases (same member), so rendering and storage do not change
    LINK_MODEL = "LINK_ARTIFACT"  # noqa: PIE796
    RUN_METRIC_THRESHOLD = "RUN_METRIC"  # noqa: PIE796

    @classmethod
    def _missing_(cls, value: object) -> EventType | None:
        # a lookup by value with a W&B name: EventType("LINK_MODEL")
        if isinstance(value, str):
            return cls.__members__.get(value.upper())
        return None

    def __str__(self) -> str:
        return self.value


class RunState(str, enum.Enum):
    """Run states an automation can watch. W&B's CRASHED is FAILED here."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"

    @classmethod
    def _missing_(cls, value: object) -> RunState | None:
        if isinstance(value, str):
            upper = value.upper()
            if upper == "CRASHED":
                return cls.FAILED
            if upper in cls.__members__:
                return cls[upper]
        return None

    def __str__(self) -> str:
        return self.value


def check_name(field: str, value: object, *, limit: int = MAX_NAME) -> str:
    """Entity, project and collection names: they build ``entity/project/collection:v1``."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a non-empty string")
    value = str.__str__(value)  # a str subclass's own methods do not run past here
    if not value:
        raise ValidationError(field, "must be a non-empty string")
    if len(value) > limit:
        raise ValidationError(field, f"must be at most {limit} characters")
    if any(ch in _FORBIDDEN or ch.isspace() or not ch.isprintable() for ch in value):
        raise ValidationError(field, "must not contain spaces, control characters or / \\ # ? % :")
    return value


def check_label(field: str, value: object) -> str:
    """Free text such as an alias, a tag or an author: any printable text, bounded."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    value = str.__str__(value)
    if len(value) > MAX_LABEL:
        raise ValidationError(field, f"must be at most {MAX_LABEL} characters")
    return value


def _name(field: str) -> Any:
    return attrs.field(converter=plain_str, validator=lambda _i, _a, v: check_name(field, v))


@attrs.frozen(slots=True)
class Run:
    """A training run, as run automations see it."""

    entity: str = _name("entity")
    project: str = _name("project")
    id: str = _name("run.id")
    name: str = attrs.field(
        default="", converter=plain_str, validator=lambda _i, _a, v: check_label("run.name", v)
    )
    user: str = attrs.field(
        default="", converter=plain_str, validator=lambda _i, _a, v: check_label("run.user", v)
    )
    # what identifies a run to the evaluators, built once: the hot path reuses it
    key: tuple[str, str, str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        object.__setattr__(self, "key", (self.entity, self.project, self.id))


def _frozen_metadata(value: object) -> Mapping[str, Any]:
    """A read-only copy of an artifact's metadata, checked against the caps:
    at most :data:`MAX_METADATA_BYTES` (measured as its JSON would be, about)
    and :data:`MAX_METADATA_DEPTH` levels of nesting."""
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise ValidationError("metadata", f"must be a mapping, not {type(value).__name__}")
    try:
        copy = dict(value)
        for key in copy:
            if not isinstance(key, str):
                raise ValidationError("metadata", f"keys must be strings, not {type(key).__name__}")
        _check_metadata_size(copy)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError("metadata", f"could not be read ({type(exc).__name__})") from None
    return MappingProxyType(copy)


def _check_metadata_size(metadata: dict[str, Any]) -> None:
    """Walk the metadata without recursion, stopping as soon as it is over a cap
    (so even a huge or self-referencing value costs little to refuse)."""
    left = MAX_METADATA_BYTES
    stack: list[tuple[object, int]] = [(metadata, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            left -= len(item) + 2
        elif item is None or isinstance(item, (bool, float)):
            left -= 5
        elif isinstance(item, int):
            left -= int.bit_length(item) * 3 // 10 + 2  # about its digits
        elif isinstance(item, (Mapping, list, tuple, set, frozenset)):
            if depth >= MAX_METADATA_DEPTH:
                raise ValidationError(
                    "metadata",
                    f"is nested more than {MAX_METADATA_DEPTH} levels deep (the limit), "
                    "or contains itself",
                )
            left -= 2
            if isinstance(item, Mapping):
                for key, child in item.items():
                    left -= (len(key) if isinstance(key, str) else 8) + 3
                    stack.append((child, depth + 1))
                    if left < 0:
                        break
            else:
                for child in item:
                    left -= 1
                    stack.append((child, depth + 1))
                    if left < 0:
                        break
        else:  # another object: rendered with str() later, if a template asks for it
            left -= 8
        if left < 0:
            raise ValidationError(
                "metadata",
                f"is larger than {MAX_METADATA_BYTES} bytes ({MAX_METADATA_BYTES // 1024 // 1024}"
                " MiB), the limit, as JSON",
            )


def _safe_repr(value: object) -> str:
    """``repr`` that never raises (metadata and metrics hold the caller's objects)."""
    try:
        return repr(value)
    except Exception as exc:
        return f"<unrepresentable: {type(exc).__name__}>"


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


_FIELDS = (
    "type",
    "entity",
    "project",
    "collection",
    "version",
    "author",
    "alias",
    "tag",
    "metadata",
    "run",
    "metrics",
    "step",
    "state",
    "timestamp",
)


_new, _set, _now = object.__new__, object.__setattr__, time.time
_RUN_METRIC = EventType.RUN_METRIC
_MAX_STEP = MAX_STEP

# what an artifact event cannot do without (every other one needs a version)
_REQUIRED = {
    EventType.ADD_ARTIFACT_ALIAS: ("version", "alias"),
    EventType.ADD_ARTIFACT_TAG: ("version", "tag"),
    EventType.REMOVE_ARTIFACT_TAG: ("version", "tag"),
    EventType.ADD_COLLECTION_TAG: ("tag",),
    EventType.REMOVE_COLLECTION_TAG: ("tag",),
}

# the constructor for each kind of event, named when ``Event(...)`` is refused
_CONSTRUCTORS: dict[str, str] = {
    EventType.CREATE_ARTIFACT: "Event.artifact_created(entity=, project=, collection=, version=)",
    EventType.LINK_ARTIFACT: "Event.artifact_linked(entity=, project=, collection=, version=)",
    EventType.UNLINK_ARTIFACT: "Event.artifact_unlinked(entity=, project=, collection=, version=)",
    EventType.ADD_ARTIFACT_ALIAS: (
        "Event.artifact_alias_added(entity=, project=, collection=, version=, alias=)"
    ),
    EventType.ADD_ARTIFACT_TAG: (
        "Event.artifact_tag_added(entity=, project=, collection=, version=, tag=)"
    ),
    EventType.REMOVE_ARTIFACT_TAG: (
        "Event.artifact_tag_removed(entity=, project=, collection=, version=, tag=)"
    ),
    EventType.ADD_COLLECTION_TAG: (
        "Event.collection_tag_added(entity=, project=, collection=, tag=)"
    ),
    EventType.REMOVE_COLLECTION_TAG: (
        "Event.collection_tag_removed(entity=, project=, collection=, tag=)"
    ),
    EventType.RUN_METRIC: "Event.run_metrics(run, metrics, step=)",
    EventType.RUN_METRIC_CHANGE: "Event.run_metrics(run, metrics, step=)",
    EventType.RUN_METRIC_ZSCORE: "Event.run_metrics(run, metrics, step=)",
    EventType.RUN_STATE: "Event.run_state(run, state)",
}


def _use_a_constructor(given: object) -> str:
    """What a refused ``Event(...)`` says: the classmethod for the type it was
    given (an EventType or its value), else the usual ones."""
    how = _CONSTRUCTORS.get(given) if isinstance(given, str) else None
    if how is None:
        how = (
            "one such as Event.artifact_alias_added(...), "
            "Event.run_metrics(run, metrics, step=) or Event.run_state(run, state)"
        )
    return f"events are built by a classmethod, not Event(...): use {how}"


class Event:
    """One thing that happened. Build it with a constructor classmethod;
    ``Event(...)`` is refused with a :class:`ValidationError` naming the one to use.

    Immutable. Not an attrs class: a run event is built on every training
    step, so an event stores only the fields that are set and reads the
    others from the class defaults below.
    """

    type: EventType
    entity: str
    project: str
    collection: str = ""
    version: str = ""
    author: str = ""
    alias: str = ""
    tag: str = ""
    metadata: Mapping[str, Any] = _EMPTY
    run: Run | None = None
    metrics: Mapping[str, Any] = _EMPTY
    step: int | None = None
    state: RunState | None = None
    timestamp: float
    _id: str = ""

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Refused rather than checked: the classmethods are the one way in, so
        # each kind of event has one set of rules, and the fields that follow
        # from a run (entity, project, author) cannot disagree with it.
        # run_metrics never comes through here: this costs the hot path nothing.
        given = kwargs["type"] if "type" in kwargs else args[0] if args else None
        raise ValidationError("Event", _use_a_constructor(given))

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], Event], tuple[dict[str, Any]]]:
        # a read-only mapping does not pickle: send plain dicts, wrap them again;
        # the id is fixed now so that a copy is the same event
        fields = dict(self.__dict__, _id=self.id)
        for name in ("metadata", "metrics"):
            if name in fields:
                fields[name] = dict(fields[name])
        return _unpickle_event, (fields,)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={_safe_repr(getattr(self, name))}" for name in _FIELDS)
        return f"Event({shown})"

    @property
    def id(self) -> str:
        """A unique id, made on first use: most run events never need one."""
        if not self._id:
            object.__setattr__(self, "_id", uuid.uuid4().hex)
        return self._id

    @property
    def version_string(self) -> str:
        """``entity/project/collection:version``, W&B's ``artifact_version_string``;
        ``""`` for an event about no version (a collection tag, a run)."""
        if not self.collection or not self.version:
            return ""
        return f"{self.entity}/{self.project}/{self.collection}:{self.version}"

    # -- artifact events -------------------------------------------------

    @classmethod
    def _artifact(
        cls,
        type: EventType,
        entity: str,
        project: str,
        collection: str,
        version: str,
        author: str,
        *,
        alias: str = "",
        tag: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        event = _new(cls)
        _set(
            event,
            "__dict__",
            {
                "type": type,
                "entity": check_name("entity", entity),
                "project": check_name("project", project),
                "collection": check_name("collection", collection),
                "version": check_label("version", version),
                "author": check_label("author", author),
                "alias": check_label("alias", alias),
                "tag": check_label("tag", tag),
                "metadata": _frozen_metadata(metadata),
                "timestamp": _now(),
            },
        )
        for field in _REQUIRED.get(type, ("version",)):
            if not getattr(event, field):
                raise ValidationError(field, f"is required for a {type.value} event")
        return event

    @classmethod
    def artifact_created(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        author: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.CREATE_ARTIFACT,
            entity,
            project,
            collection,
            version,
            author,
            metadata=metadata,
        )

    @classmethod
    def artifact_linked(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        author: str = "",
        alias: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.LINK_ARTIFACT,
            entity,
            project,
            collection,
            version,
            author,
            alias=alias,
            metadata=metadata,
        )

    @classmethod
    def artifact_unlinked(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        author: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.UNLINK_ARTIFACT,
            entity,
            project,
            collection,
            version,
            author,
            metadata=metadata,
        )

    @classmethod
    def artifact_alias_added(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        alias: str,
        author: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.ADD_ARTIFACT_ALIAS,
            entity,
            project,
            collection,
            version,
            author,
            alias=alias,
            metadata=metadata,
        )

    @classmethod
    def artifact_tag_added(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        tag: str,
        author: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.ADD_ARTIFACT_TAG,
            entity,
            project,
            collection,
            version,
            author,
            tag=tag,
            metadata=metadata,
        )

    @classmethod
    def artifact_tag_removed(
        cls,
        *,
        entity: str,
        project: str,
        collection: str,
        version: str,
        tag: str,
        author: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls._artifact(
            EventType.REMOVE_ARTIFACT_TAG,
            entity,
            project,
            collection,
            version,
            author,
            tag=tag,
            metadata=metadata,
        )

    @classmethod
    def collection_tag_added(
        cls, *, entity: str, project: str, collection: str, tag: str, author: str = ""
    ) -> Event:
        return cls._artifact(
            EventType.ADD_COLLECTION_TAG, entity, project, collection, "", author, tag=tag
        )

    @classmethod
    def collection_tag_removed(
        cls, *, entity: str, project: str, collection: str, tag: str, author: str = ""
    ) -> Event:
        return cls._artifact(
            EventType.REMOVE_COLLECTION_TAG, entity, project, collection, "", author, tag=tag
        )

    # -- run events ------------------------------------------------------

    @classmethod
    def run_metrics(
        cls, run: Run, metrics: Mapping[str, object], *, step: int | None = None
    ) -> Event:
        """Metrics logged at one step. Non-numeric, NaN and inf values are kept
        out of the windows by the evaluators, never an error here: training
        code must not crash because a loss went NaN."""
        # Every step of a training loop comes through here. Exact type tests
        # first, module-level names, no helper calls: on a busy machine each
        # object this touches can cost a microsecond or more to reach.
        if type(run) is not Run and not isinstance(run, Run):
            raise ValidationError("run", f"must be a hookwise.Run, not {type(run).__name__}")
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise ValidationError("metrics", f"must be a mapping, not {type(metrics).__name__}")
        if step is not None:
            if type(step) is not int:
                if not isinstance(step, int) or isinstance(step, bool):
                    raise ValidationError("step", "must be an int >= 0, or None")
                step = int.__int__(step)  # an int subclass's own methods do not run later
            if step < 0 or step > _MAX_STEP:
                raise ValidationError("step", f"must be an int from 0 to {_MAX_STEP}, or None")
        try:
            copied = dict(metrics)
        except Exception as exc:
            raise ValidationError("metrics", f"could not be read ({type(exc).__name__})") from None
        event = _new(cls)
        _set(
            event,
            "__dict__",
            {
                "type": _RUN_METRIC,
                "entity": run.entity,
                "project": run.project,
                "author": run.user,
                "run": run,
                "metrics": MappingProxyType(copied),
                "step": step,
                "timestamp": _now(),
            },
        )
        return event

    @classmethod
    def run_state(cls, run: Run, state: RunState | str) -> Event:
        if not isinstance(run, Run):
            raise ValidationError("run", f"must be a hookwise.Run, not {type(run).__name__}")
        if not isinstance(state, str):
            raise ValidationError(
                "state",
                f"must be a hookwise.RunState or one of RUNNING, FINISHED, FAILED, CRASHED, "
                f"not {type(state).__name__}",
            )
        if not isinstance(state, RunState):
            state = str.__str__(state)
        try:
            parsed = RunState(state)
        except ValueError:
            raise ValidationError(
                "state", f"{_shorten(state)!r} is not one of RUNNING, FINISHED, FAILED, CRASHED"
            ) from None
        event = _new(cls)
        _set(
            event,
            "__dict__",
            {
                "type": EventType.RUN_STATE,
                "entity": run.entity,
                "project": run.project,
                "author": run.user,
                "run": run,
                "state": parsed,
                "timestamp": _now(),
            },
        )
        return event


def _unpickle_event(fields: dict[str, Any]) -> Event:
    for name in ("metadata", "metrics"):
        if name in fields:
            fields[name] = MappingProxyType(fields[name])
    event = _new(Event)
    _set(event, "__dict__", fields)
    return event
