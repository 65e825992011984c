"""Who may do what: the question :class:`~hookwise.admin.Admin` asks before
every call, and W&B's answer as a ready policy.

An :class:`Authorizer` answers one question, ``allows(actor, action,
target)``: may this user do this to this team's (or this scope's) objects?
``Admin`` asks it first, before it reads or writes anything, and raises
:class:`~hookwise.errors.PermissionDenied` on any answer but ``True``.

:class:`RoleAuthorizer` is W&B's rules over a role lookup the platform
supplies: team admins manage secrets and webhooks (and test them), registry
admins manage registry automations, project admins (and team admins) manage
project automations, and team members read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import attrs

from hookwise.errors import ValidationError
from hookwise.scope import Scope, ScopeKind

__all__ = ["Action", "Authorizer", "Role", "RoleAuthorizer", "RoleLookup", "Target"]


class Action(str, enum.Enum):
    """What an actor asks to do. Each is a string too: ``Action.SECRET_CREATE
    == "secret.create"``."""

    SECRET_CREATE = "secret.create"  # noqa: S105 (an action name, not a password)
    SECRET_UPDATE = "secret.update"  # noqa: S105 (an action name, not a password)
    SECRET_DELETE = "secret.delete"  # noqa: S105 (an action name, not a password)
    SECRET_READ = "secret.read"  # noqa: S105 (an action name, not a password)
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_ENABLE = "webhook.enable"
    WEBHOOK_DISABLE = "webhook.disable"
    WEBHOOK_TEST = "webhook.test"
    WEBHOOK_READ = "webhook.read"
    AUTOMATION_CREATE = "automation.create"
    AUTOMATION_UPDATE = "automation.update"
    AUTOMATION_DELETE = "automation.delete"
    AUTOMATION_ENABLE = "automation.enable"
    AUTOMATION_DISABLE = "automation.disable"
    AUTOMATION_VALIDATE = "automation.validate"
    AUTOMATION_READ = "automation.read"
    HISTORY_READ = "history.read"
    HISTORY_REDELIVER = "history.redeliver"

    def __str__(self) -> str:
        return self.value


def as_action(value: object) -> Action:
    """``value`` as an :class:`Action`; a typed error for anything else."""
    try:
        return Action(value)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise ValidationError("action", f"must be one of {known}") from None


def _optional_str(field: str) -> Callable[[object, object, Any], None]:
    def check(_instance: object, _attribute: object, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise ValidationError(field, f"must be a string or None, not {type(value).__name__}")

    return check


def _check_scope(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and not isinstance(value, Scope):
        raise ValidationError(
            "target.scope", f"must be a Scope or None, not {type(value).__name__}"
        )


@attrs.frozen(slots=True)
class Target:
    """What an action is done to.

    ``team`` is the team (W&B's entity) that owns the object; ``None`` means
    every team (``list_automations()`` and ``deliveries()`` without a team).
    ``name`` names the object when there is one (a secret, a webhook, an
    automation, a delivery id). ``scope`` is the automation's scope for
    automation actions: what the automation watches (a project, a registry
    or a collection). For an automation that does not exist (the call is
    about to end in ``NotFoundError``) it is ``None``.
    """

    team: str | None = attrs.field(validator=_optional_str("target.team"))
    name: str | None = attrs.field(default=None, validator=_optional_str("target.name"))
    scope: Scope | None = attrs.field(default=None, validator=_check_scope)

    def __attrs_post_init__(self) -> None:
        if self.scope is not None and self.team != self.scope.entity:
            raise ValidationError("target.team", "must be the scope's entity")

    @classmethod
    def of_scope(cls, scope: Scope, name: str | None = None) -> Target:
        """The target of an automation action: the scope's team, and the scope."""
        if not isinstance(scope, Scope):
            raise ValidationError("target.scope", "must be a hookwise.Scope")
        return cls(scope.entity, name, scope)

    def __str__(self) -> str:
        if self.scope is not None:
            where = [self.scope.entity, self.scope.project_name]
            if self.scope.collection_name is not None:
                where.append(self.scope.collection_name)
            place = f"{self.scope.kind.value} {'/'.join(where)}"
        elif self.team is None:
            place = "every team"
        else:
            place = f"team {self.team!r}"
        return place if self.name is None else f"{self.name!r} in {place}"


@runtime_checkable
class Authorizer(Protocol):
    """The platform's answer to "may ``actor`` do ``action`` to ``target``?".

    ``actor`` is whatever the caller passed as ``actor=`` (the signed-in
    user's id; ``None`` when nobody said). Only ``True`` allows: any other
    answer refuses. An exception raised here comes out of the ``Admin``
    call unchanged, and nothing has been written.
    """

    def allows(self, actor: str | None, action: Action, target: Target) -> bool: ...


class Role(str, enum.Enum):
    """The roles :class:`RoleAuthorizer` knows. Each is a string too, so a
    lookup may answer ``{"team_admin"}``."""

    TEAM_ADMIN = "team_admin"
    REGISTRY_ADMIN = "registry_admin"
    PROJECT_ADMIN = "project_admin"
    MEMBER = "member"

    def __str__(self) -> str:
        return self.value


RoleLookup = Callable[[str, str | Scope], Iterable[Role | str] | None]
"""``roles(actor, team_or_scope)``: the roles ``actor`` holds in a team (a
``str``) or on an automation scope (a :class:`~hookwise.scope.Scope`)."""

_TEAM_ADMIN_ACTIONS = frozenset(
    {
        Action.SECRET_CREATE,
        Action.SECRET_UPDATE,
        Action.SECRET_DELETE,
        Action.WEBHOOK_CREATE,
        Action.WEBHOOK_UPDATE,
        Action.WEBHOOK_DELETE,
        Action.WEBHOOK_ENABLE,
        Action.WEBHOOK_DISABLE,
        Action.WEBHOOK_TEST,
        Action.HISTORY_REDELIVER,
    }
)
_READ_ACTIONS = frozenset(
    {Action.SECRET_READ, Action.WEBHOOK_READ, Action.AUTOMATION_READ, Action.HISTORY_READ}
)
_AUTOMATION_ACTIONS = frozenset(
    {
        Action.AUTOMATION_CREATE,
        Action.AUTOMATION_UPDATE,
        Action.AUTOMATION_DELETE,
        Action.AUTOMATION_ENABLE,
        Action.AUTOMATION_DISABLE,
        Action.AUTOMATION_VALIDATE,
    }
)
# Who manages an automation, by its scope's kind. A collection sits in a
# registry or in a plain project; the lookup, asked about the collection's
# scope, knows which, and answers REGISTRY_ADMIN or PROJECT_ADMIN.
_SCOPE_ADMINS = {
    ScopeKind.REGISTRY: frozenset({Role.REGISTRY_ADMIN}),
    ScopeKind.PROJECT: frozenset({Role.PROJECT_ADMIN}),
    ScopeKind.COLLECTION: frozenset({Role.REGISTRY_ADMIN, Role.PROJECT_ADMIN}),
}


class RoleAuthorizer:
    """W&B's rules over the platform's role lookup.

    ``roles(actor, team_or_scope)`` returns the roles ``actor`` holds: asked
    with a team name, in that team (``TEAM_ADMIN``, ``MEMBER``); asked with
    an automation's :class:`~hookwise.scope.Scope`, on what it watches
    (``REGISTRY_ADMIN`` of a registry, ``PROJECT_ADMIN`` of a project; for a
    collection, the role on the registry or project that holds it).

    ===========================================  ==========================================
    action                                       allowed for
    ===========================================  ==========================================
    ``secret.*``, ``webhook.*`` (but ``.read``),  ``TEAM_ADMIN`` of the team
    ``webhook.test``, ``history.redeliver``
    ``*.read``, ``history.read``                 anyone with a role in the team
    automation in a registry scope               ``REGISTRY_ADMIN`` of the registry
    automation in a project scope                ``PROJECT_ADMIN`` of it, or ``TEAM_ADMIN``
    automation in a collection scope             ``REGISTRY_ADMIN`` or ``PROJECT_ADMIN``
    ===========================================  ==========================================

    An automation that does not exist (no scope to judge) is left to team
    members, who then get ``NotFoundError``: they could list it anyway.
    Nobody is allowed for every team at once (``team=None``), and an actor
    of ``None`` is allowed nothing; the lookup is not asked for either.
    """

    def __init__(self, roles: RoleLookup) -> None:
        if not callable(roles):
            raise ValidationError("roles", "must be a callable roles(actor, team_or_scope)")
        self._roles = roles

    def __repr__(self) -> str:
        return f"RoleAuthorizer({self._roles!r})"

    def _lookup(self, actor: str, where: str | Scope) -> frozenset[Role]:
        found = self._roles(actor, where) or ()
        return frozenset(Role(r) for r in found if r in _ROLE_VALUES)

    def allows(self, actor: str | None, action: Action, target: Target) -> bool:
        if actor is None or target.team is None:
            return False
        action = as_action(action)
        if action in _AUTOMATION_ACTIONS:
            return self._manages_automation(actor, target)
        team_roles = self._lookup(actor, target.team)
        if action in _TEAM_ADMIN_ACTIONS:
            return Role.TEAM_ADMIN in team_roles
        if action in _READ_ACTIONS:
            return bool(team_roles)
        return False  # an action this policy does not know

    def _manages_automation(self, actor: str, target: Target) -> bool:
        assert target.team is not None
        if target.scope is None:  # no such automation: members may learn that
            return bool(self._lookup(actor, target.team))
        if self._lookup(actor, target.scope) & _SCOPE_ADMINS[target.scope.kind]:
            return True
        # W&B: "a team admin can create and manage automations for the team's projects"
        return target.scope.kind is ScopeKind.PROJECT and Role.TEAM_ADMIN in self._lookup(
            actor, target.team
        )


_ROLE_VALUES = frozenset(r.value for r in Role)
