"""hookwise: webhook automations for ML platforms.

Team secrets, webhooks, automations that watch artifact and run events, a
safe payload template renderer, and a dispatcher that renders, signs and
delivers each POST through a durable outbox.
"""

import logging

from hookwise._version import __version__
from hookwise.admin import Admin, SecretInfo
from hookwise.async_dispatcher import AsyncDispatcher
from hookwise.authz import Action, Authorizer, Role, RoleAuthorizer, Target
from hookwise.builders import RunMetric
from hookwise.conditions import (
    Agg,
    ChangeDir,
    ChangeKind,
    ChangeType,
    Direction,
    MetricChange,
    MetricThreshold,
    MetricZScore,
    Op,
)
from hookwise.crypto import SecretKey
from hookwise.dispatcher import Dispatcher
from hookwise.errors import (
    AlreadyExistsError,
    BlockedAddressError,
    DispatcherClosedError,
    HookwiseError,
    NotFoundError,
    PermissionDenied,
    SecretKeyError,
    SignatureError,
    TemplateError,
    UnsafeURLError,
    ValidationError,
)
from hookwise.events import Event, EventType, Run, RunState
from hookwise.expressions import ArtifactEvent, RunEvent
from hookwise.filters import (
    OnAddArtifactAlias,
    OnAddArtifactTag,
    OnAddCollectionTag,
    OnCreateArtifact,
    OnLinkArtifact,
    OnRemoveArtifactTag,
    OnRemoveCollectionTag,
    OnRunMetric,
    OnRunState,
    OnUnlinkArtifact,
    Trigger,
)
from hookwise.model import (
    Automation,
    DoNothing,
    Secret,
    SendNotification,
    SendWebhook,
    Severity,
    Webhook,
)
from hookwise.network import NetworkPolicy
from hookwise.probe import WebhookTestResult
from hookwise.retry import RetryPolicy
from hookwise.scope import Scope, ScopeKind
from hookwise.signing import Scheme, sign, verify
from hookwise.storage import (
    Attempt,
    Delivery,
    DeliveryStatus,
    MemoryStorage,
    SQLiteStorage,
    Storage,
)
from hookwise.template import Template, compile_template

__all__ = [
    "Action",
    "Admin",
    "Agg",
    "AlreadyExistsError",
    "ArtifactEvent",
    "AsyncDispatcher",
    "Attempt",
    "Authorizer",
    "Automation",
    "BlockedAddressError",
    "ChangeDir",
    "ChangeKind",
    "ChangeType",
    "Delivery",
    "DeliveryStatus",
    "Direction",
    "Dispatcher",
    "DispatcherClosedError",
    "DoNothing",
    "Event",
    "EventType",
    "HookwiseError",
    "MemoryStorage",
    "MetricChange",
    "MetricThreshold",
    "MetricZScore",
    "NetworkPolicy",
    "NotFoundError",
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
    "Op",
    "PermissionDenied",
    "RetryPolicy",
    "Role",
    "RoleAuthorizer",
    "Run",
    "RunEvent",
    "RunMetric",
    "RunState",
    "SQLiteStorage",
    "Scheme",
    "Scope",
    "ScopeKind",
    "Secret",
    "SecretInfo",
    "SecretKey",
    "SecretKeyError",
    "SendNotification",
    "SendWebhook",
    "Severity",
    "SignatureError",
    "Storage",
    "Target",
    "Template",
    "TemplateError",
    "Trigger",
    "UnsafeURLError",
    "ValidationError",
    "Webhook",
    "WebhookTestResult",
    "__version__",
    "compile_template",
    "sign",
    "verify",
]

# A library logs, the application decides where it goes: without this, an app
# with no logging set up would see our warnings on stderr.
logging.getLogger("hookwise").addHandler(logging.NullHandler())
