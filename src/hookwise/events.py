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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from hookwise.errors import ValidationError

__all__ = ["Event", "EventType", "Run", "RunState"]

MAX_NAME = 128
MAX_LABEL = 256
_FORBIDDEN = frozenset("/\\#?%:")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class EventType(str, enum.Enum):
    """The kinds of event; ``${event_type}`` renders the value."""

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
    if not isinstance(value, str) or not value:
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
    if len(value) > MAX_LABEL:
        raise ValidationError(field, f"must be at most {MAX_LABEL} characters")
    return value


def _name(field: str) -> Any:
    return attrs.field(validator=lambda _i, _a, v: check_name(field, v))


@attrs.frozen(slots=True)
class Run:
    """A training run, as run automations see it."""

    entity: str = _name("entity")
    project: str = _name("project")
    id: str = _name("run.id")
    name: str = attrs.field(default="", validator=lambda _i, _a, v: check_label("run.name", v))
    user: str = attrs.field(default="", validator=lambda _i, _a, v: check_label("run.user", v))

    def __attrs_post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)


def _frozen_metadata(value: object) -> Mapping[str, Any]:
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise ValidationError("metadata", f"must be a mapping, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ValidationError("metadata", f"keys must be strings, not {type(key).__name__}")
    return MappingProxyType(dict(value))


@attrs.frozen(slots=True, eq=False)
class Event:
    """One thing that happened. Build it with a constructor classmethod."""

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
    metrics: Mapping[str, float] = _EMPTY
    step: int | None = None
    state: RunState | None = None
    _id: str = attrs.field(default="", repr=False)
    timestamp: float = attrs.field(factory=time.time)

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
        return cls(
            type=type,
            entity=check_name("entity", entity),
            project=check_name("project", project),
            collection=check_name("collection", collection),
            version=check_label("version", version),
            author=check_label("author", author),
            alias=check_label("alias", alias),
            tag=check_label("tag", tag),
            metadata=_frozen_metadata(metadata),
        )

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
        if not isinstance(run, Run):
            raise ValidationError("run", f"must be a hookwise.Run, not {type(run).__name__}")
        if not isinstance(metrics, Mapping):
            raise ValidationError("metrics", f"must be a mapping, not {type(metrics).__name__}")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
            raise ValidationError("step", "must be an int or None")
        return cls(
            type=EventType.RUN_METRIC,
            entity=run.entity,
            project=run.project,
            author=run.user,
            run=run,
            metrics=MappingProxyType(dict(metrics)),  # type: ignore[arg-type]
            step=step,
        )

    @classmethod
    def run_state(cls, run: Run, state: RunState | str) -> Event:
        if not isinstance(run, Run):
            raise ValidationError("run", f"must be a hookwise.Run, not {type(run).__name__}")
        try:
            parsed = RunState(state)
        except ValueError:
            raise ValidationError(
                "state", f"{state!r} is not one of RUNNING, FINISHED, FAILED, CRASHED"
            ) from None
        return cls(
            type=EventType.RUN_STATE,
            entity=run.entity,
            project=run.project,
            author=run.user,
            run=run,
            state=parsed,
        )
