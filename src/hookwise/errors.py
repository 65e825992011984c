"""The error tree. Every error hookwise raises is a :class:`HookwiseError`,
and also a builtin where the meaning fits, so ``except ValueError`` keeps
working for callers who do not know hookwise::

    HookwiseError(Exception)
    ├── ValidationError(ValueError)          bad input; names the field
    │   ├── TemplateError                    bad payload template; names the JSON path
    │   └── UnsafeURLError                   URL refused by the NetworkPolicy
    ├── NotFoundError(LookupError)           no such secret / webhook / automation / delivery
    ├── AlreadyExistsError(ValueError)       the name is taken
    ├── SecretKeyError(RuntimeError)         no key configured, or a ciphertext no key opens
    ├── SignatureError(ValueError)           hw.verify() rejected a request
    ├── BlockedAddressError(PermissionError) a destination address the NetworkPolicy refuses
    ├── PermissionDenied(PermissionError)    the Authorizer refused; names actor, action, target
    └── DispatcherClosedError(RuntimeError)  handle() after close()

Messages never contain a secret value: they name the secret instead.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BlockedAddressError",
    "DispatcherClosedError",
    "HookwiseError",
    "NotFoundError",
    "PermissionDenied",
    "SecretKeyError",
    "SignatureError",
    "TemplateError",
    "UnsafeURLError",
    "ValidationError",
]


class HookwiseError(Exception):
    """Base of every error hookwise raises."""


class ValidationError(HookwiseError, ValueError):
    """Input that breaks a rule; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class TemplateError(ValidationError):
    """A payload template that does not parse or names something unknown.

    ``path`` is the JSON path of the offending value (``$.client_payload.version``).
    """

    def __init__(self, path: str, message: str, *, field: str = "payload") -> None:
        self.path = path
        super().__init__(field, f"at {path}: {message}")


class UnsafeURLError(ValidationError):
    """A webhook URL the NetworkPolicy refuses (plain http, a private address)."""


class NotFoundError(HookwiseError, LookupError):
    """The named object does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} does not exist")

    def __str__(self) -> str:  # LookupError would quote the args tuple
        return f"{self.kind} {self.key!r} does not exist"


class AlreadyExistsError(HookwiseError, ValueError):
    """An object with this name exists already."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} already exists")


class SecretKeyError(HookwiseError, RuntimeError):
    """No encryption key is configured, or none of the keys opens a ciphertext."""


class SignatureError(HookwiseError, ValueError):
    """A webhook request failed verification."""


class BlockedAddressError(HookwiseError, PermissionError):
    """The destination resolves to an address the NetworkPolicy refuses."""


class PermissionDenied(HookwiseError, PermissionError):
    """The :class:`~hookwise.authz.Authorizer` refused: ``actor`` may not do
    ``action`` to ``target``. Raised before anything is read or written, so
    nothing changed."""

    def __init__(self, actor: str | None, action: object, target: object) -> None:
        self.actor = actor
        self.action = action
        self.target = target
        who = "an anonymous actor" if actor is None else f"actor {actor!r}"
        super().__init__(f"{who} may not {action} {target}")

    def __reduce__(self) -> tuple[type[PermissionDenied], tuple[object, ...]]:
        return type(self), (self.actor, self.action, self.target)


class DispatcherClosedError(HookwiseError, RuntimeError):
    """The dispatcher was closed; it accepts no more events."""
