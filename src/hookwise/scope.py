"""What an automation watches: a project, a registry, or one collection.

Its own module because both the event filters (which scopes suit them) and
:class:`~hookwise.model.Automation` (which scope it has) need it, and the
automation needs the filters: with the scope below both, imports point one way.
"""

from __future__ import annotations

import enum

import attrs

from hookwise.errors import ValidationError
from hookwise.events import Event, check_name

__all__ = ["Scope", "ScopeKind"]


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
