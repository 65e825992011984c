"""Import W&B automations, as the W&B SDK serialises them, into hookwise.

Two shapes are read, without depending on the ``wandb`` package:

* the GraphQL ``createFilterTrigger`` input the SDK sends
  (``triggeringEventType``, ``scopeType``, ``scopeID``, ``eventFilter`` as a
  JSON string, ``triggeredActionType``, ``triggeredActionConfig``), and
* a saved automation as the API returns it and the SDK's ``Automation``
  dumps it (``scope`` with ``__typename``, ``event`` with ``eventType`` and a
  JSON ``filter``, ``action`` with ``__typename`` and ``integration``).

A file may hold one automation, a list, or an object with an
``automations`` (or ``triggers``) list. W&B ids do not exist in hookwise, so
the caller passes two tables: integration id to hookwise name (the webhook
for a ``GENERIC_WEBHOOK`` action, the secret holding the Slack
incoming-webhook URL for a ``NOTIFICATION``), and W&B scope (id or name) to
:class:`hookwise.Scope`.

Nothing is dropped in silence: :func:`convert` returns one :class:`Imported`
per W&B automation, with the hookwise automation (or ``None``) and a note
for every part that could not carry over. An automation whose *meaning*
would change (a filter hookwise cannot express, an unknown action) is not
built at all, so it can never fire where W&B would not.

The translation to hookwise classes sits in a few small functions
(``_expression``, ``_artifact_filter``, ``_run_filter``, ``_threshold``,
``_change``, ``_zscore``, ``_action``, ``_notification``); everything else
is reading W&B's format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs

import hookwise as hw
from hookwise.conditions import MetricCondition
from hookwise.errors import HookwiseError, ValidationError
from hookwise.expressions import Expression, to_expression
from hookwise.filters import ArtifactFilter, Filter
from hookwise.model import Action

__all__ = [
    "Imported",
    "ScopeMap",
    "WandbFormatError",
    "WandbScope",
    "convert",
    "import_automations",
    "load",
    "parse_scope",
    "read_automations",
    "scope_table",
]


class WandbFormatError(ValidationError):
    """The input is not W&B automations as the W&B SDK serialises them."""


@attrs.frozen
class WandbScope:
    """A W&B automation's scope: ``type`` is ``PROJECT`` or
    ``ARTIFACT_COLLECTION``; the input shape carries only the ``id``, a
    saved automation also the ``name``."""

    type: str
    id: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        label = " ".join(f"{k}={v!r}" for k, v in (("id", self.id), ("name", self.name)) if v)
        return f"{self.type} {label}".strip()


ScopeMap: TypeAlias = Mapping[str, hw.Scope] | Callable[[WandbScope], "hw.Scope | None"]
"""W&B scope id or name to hookwise scope, or a function of the W&B scope."""


@attrs.frozen
class Imported:
    """One W&B automation and what became of it.

    ``automation`` is ``None`` when it could not carry over; ``notes`` say,
    in words, everything that did not carry over as it was. ``created`` is
    set by :func:`import_automations`.
    """

    source: str
    automation: hw.Automation | None
    notes: tuple[str, ...] = ()
    created: bool = False

    @property
    def complete(self) -> bool:
        """Carried over with nothing left behind."""
        return self.automation is not None and not self.notes


class _Skip(Exception):
    """This automation cannot carry over; the message says why."""


# -- reading the file -------------------------------------------------------------


def load(path: str | Path) -> list[Mapping[str, Any]]:
    """Read a JSON file of W&B automations (see :func:`read_automations`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WandbFormatError("file", f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WandbFormatError("file", f"{str(path)!r} is not JSON ({exc})") from None
    return read_automations(data)


def read_automations(data: Any) -> list[Mapping[str, Any]]:
    """The automations in ``data``: one, a list, ``{"automations": [...]}``,
    ``{"triggers": [...]}`` or GraphQL variables ``{"input": {...}}``."""
    if isinstance(data, Mapping):
        for key in ("automations", "triggers"):
            if isinstance(data.get(key), list):
                return read_automations(data[key])
        if isinstance(data.get("input"), Mapping):
            return read_automations(data["input"])
        data = [data]
    if not isinstance(data, list):
        raise WandbFormatError(
            "file", "expected a W&B automation, a list of them, or {automations: [...]}"
        )
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not (
            "triggeringEventType" in item or isinstance(item.get("event"), Mapping)
        ):
            raise WandbFormatError(
                f"automations[{i}]",
                "is not a W&B automation (no triggeringEventType, no event)",
            )
    return data


def _get(raw: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` present: the SDK writes camelCase aliases on the
    wire and snake_case names in Python dumps."""
    for key in keys:
        if key in raw:
            return raw[key]
    return default


def _decode(value: Any, where: str) -> Any:
    """W&B nests JSON in strings (``eventFilter``, ``run_filter``, ``filter``)."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Skip(f"{where} is not valid JSON ({exc.msg})") from None
    return value


@attrs.frozen
class _Trigger:
    """A W&B automation, whatever shape it came in."""

    name: str
    description: str
    enabled: bool
    event_type: str
    scope: WandbScope
    filter: Any
    action_type: str
    action: Mapping[str, Any]


_BOOKKEEPING = frozenset(
    {"id", "__typename", "createdAt", "updatedAt", "created_at", "updated_at", "clientMutationId"}
)
_INPUT_KEYS = frozenset(
    {
        "name",
        "description",
        "enabled",
        "triggeringEventType",
        "scopeType",
        "scopeID",
        "scopeId",
        "eventFilter",
        "triggeredActionType",
        "triggeredActionConfig",
    }
)
_SAVED_KEYS = frozenset({"name", "description", "enabled", "scope", "event", "action"})
_ACTION_INPUTS = {
    "genericWebhookActionInput": "GENERIC_WEBHOOK",
    "notificationActionInput": "NOTIFICATION",
    "noOpActionInput": "NO_OP",
    "queueJobActionInput": "QUEUE_JOB",
}
_ACTION_TYPENAMES = {
    "GenericWebhookTriggeredAction": "GENERIC_WEBHOOK",
    "NotificationTriggeredAction": "NOTIFICATION",
    "NoOpTriggeredAction": "NO_OP",
    "QueueJobTriggeredAction": "QUEUE_JOB",
}
_SCOPE_TYPENAMES = {
    "Project": "PROJECT",
    "ArtifactSequence": "ARTIFACT_COLLECTION",
    "ArtifactPortfolio": "ARTIFACT_COLLECTION",
    "ArtifactCollection": "ARTIFACT_COLLECTION",
    "Entity": "ENTITY",
}


def _parse(raw: Mapping[str, Any], notes: list[str]) -> _Trigger:
    saved = "triggeringEventType" not in raw
    known = _SAVED_KEYS if saved else _INPUT_KEYS
    for key in sorted(set(raw) - known - _BOOKKEEPING):
        notes.append(f"field {key!r} is not part of a W&B automation hookwise knows: ignored")
    name = raw.get("name")
    if not isinstance(name, str):
        raise _Skip("the automation has no name")
    description = raw.get("description") or ""
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _Skip(f"enabled must be true or false, not {enabled!r}")
    if saved:
        scope_raw = raw.get("scope") or {}
        event = raw["event"]
        action = dict(raw.get("action") or {})
        scope = WandbScope(
            _SCOPE_TYPENAMES.get(str(_get(scope_raw, "__typename", "typename__")), "UNKNOWN"),
            _get(scope_raw, "id"),
            _get(scope_raw, "name"),
        )
        event_type = _get(event, "eventType", "event_type")
        event_filter = _decode(_get(event, "filter", default="{}"), "event.filter")
        typename = str(_get(action, "__typename", "typename__", default=""))
        action_type = _ACTION_TYPENAMES.get(typename, typename or "NO_OP")
        integration = action.get("integration")
        if isinstance(integration, Mapping):
            action["integrationID"] = integration.get("id")
    else:
        scope = WandbScope(str(raw.get("scopeType")), _get(raw, "scopeID", "scopeId"))
        event_type = raw["triggeringEventType"]
        event_filter = _decode(raw.get("eventFilter", "{}"), "eventFilter")
        action_type = str(raw.get("triggeredActionType"))
        config = raw.get("triggeredActionConfig") or {}
        if not isinstance(config, Mapping):
            raise _Skip("triggeredActionConfig is not an object")
        action = {}
        for key, value in config.items():
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise _Skip(f"triggeredActionConfig.{key} is not an object")
            if key not in _ACTION_INPUTS:
                notes.append(f"triggeredActionConfig.{key} is unknown: ignored")
            elif _ACTION_INPUTS[key] != action_type:
                notes.append(f"triggeredActionConfig.{key} does not match {action_type}: ignored")
            else:
                action = dict(value)
    return _Trigger(
        name=name,
        description=str(description),
        enabled=enabled,
        event_type=str(event_type),
        scope=scope,
        filter=event_filter,
        action_type=action_type,
        action=action,
    )


# -- scopes -------------------------------------------------------------------------


def parse_scope(spec: str) -> hw.Scope:
    """``project:ENTITY/PROJECT``, ``registry:ENTITY/REGISTRY`` or
    ``collection:ENTITY/PROJECT/COLLECTION``."""
    kind, _, path = spec.partition(":")
    parts = path.split("/")
    shapes = {"project": 2, "registry": 2, "collection": 3}
    if kind not in shapes or len(parts) != shapes[kind]:
        raise WandbFormatError(
            "scope",
            f"{spec!r}: use project:ENTITY/PROJECT, registry:ENTITY/REGISTRY "
            "or collection:ENTITY/PROJECT/COLLECTION",
        )
    if kind == "project":
        return hw.Scope.project(*parts)
    if kind == "registry":
        return hw.Scope.registry(*parts)
    return hw.Scope.collection(*parts)


def scope_table(
    table: Mapping[str, hw.Scope], *, entity: str | None = None
) -> Callable[[WandbScope], hw.Scope | None]:
    """Look a W&B scope up by id, then by name; with ``entity``, a W&B
    project scope that has a name and no entry becomes
    ``Scope.project(entity, name)``."""

    def resolve(scope: WandbScope) -> hw.Scope | None:
        for key in (scope.id, scope.name):
            if key is not None and key in table:
                return table[key]
        if entity is not None and scope.type == "PROJECT" and scope.name:
            return hw.Scope.project(entity, scope.name)
        return None

    return resolve


def _scope(trigger: _Trigger, scopes: ScopeMap) -> hw.Scope:
    resolve = scopes if callable(scopes) else scope_table(scopes)
    found = resolve(trigger.scope)
    if found is None:
        raise _Skip(
            f"W&B scope {trigger.scope} has no hookwise scope: pass one "
            "(--scope ID=project:ENTITY/PROJECT on the command line)"
        )
    return found


# -- event filters --------------------------------------------------------------------

# W&B triggeringEventType -> hookwise filter
_ARTIFACT_EVENTS: dict[str, type[ArtifactFilter]] = {
    "ADD_ARTIFACT_ALIAS": hw.OnAddArtifactAlias,
    "UPDATE_ARTIFACT_ALIAS": hw.OnAddArtifactAlias,
    "LINK_MODEL": hw.OnLinkArtifact,
    "LINK_ARTIFACT": hw.OnLinkArtifact,
    "UNLINK_ARTIFACT": hw.OnUnlinkArtifact,
    "UNLINK_MODEL": hw.OnUnlinkArtifact,
    "CREATE_ARTIFACT": hw.OnCreateArtifact,
    "ADD_ARTIFACT_TAG": hw.OnAddArtifactTag,
    "REMOVE_ARTIFACT_TAG": hw.OnRemoveArtifactTag,
    "ADD_COLLECTION_TAG": hw.OnAddCollectionTag,
    "REMOVE_COLLECTION_TAG": hw.OnRemoveCollectionTag,
}
_RUN_METRIC_EVENTS = {
    "RUN_METRIC": "threshold_filter",
    "RUN_METRIC_THRESHOLD": "threshold_filter",
    "RUN_METRIC_CHANGE": "change_filter",
    "RUN_METRIC_ZSCORE": "zscore_filter",
}


def _expression(document: Any, where: str) -> Expression | None:
    """A W&B Mongo-style filter as a hookwise expression (None: no filter).

    hookwise reads W&B's JSON as it is (the ``{"$or": [{"$and": [...]}]}``
    wrapping, ``$eq $ne $regex $contains $in $nin $exists $and $or $nor $not``).
    """
    try:
        return to_expression(document if document is not None else {})
    except ValidationError as exc:
        shown = json.dumps(document)
        raise _Skip(f"{where} {shown} cannot be expressed in hookwise: {exc}") from None


def _artifact_filter(trigger: _Trigger, notes: list[str]) -> Filter:
    cls = _ARTIFACT_EVENTS[trigger.event_type]
    if trigger.event_type == "UPDATE_ARTIFACT_ALIAS":
        notes.append(
            "UPDATE_ARTIFACT_ALIAS (a legacy W&B event) became ADD_ARTIFACT_ALIAS: "
            "it fires when a matching alias is added"
        )
    document = trigger.filter
    if isinstance(document, Mapping) and set(document) == {"filter"}:  # as a saved one wraps it
        document = _decode(document["filter"], "event.filter.filter")
    expression = _expression(document, "the event filter")
    try:
        return cls(filter=expression)  # type: ignore[call-arg]  # every On* artifact filter takes it
    except ValidationError as exc:
        raise _Skip(f"the event filter {json.dumps(document)}: {exc}") from None


_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<=", "$eq": "==", "$ne": "!="}


def _unknown(sub: Mapping[str, Any], known: set[str], where: str, notes: list[str]) -> None:
    for key in sorted(set(sub) - known):
        notes.append(f"{where}.{key} is unknown to hookwise: ignored")


def _threshold(f: Mapping[str, Any], notes: list[str]) -> hw.MetricThreshold:
    known = {"name", "agg_op", "agg", "window_size", "window", "cmp_op", "cmp", "threshold"}
    _unknown(f, known, "threshold_filter", notes)
    # as in W&B, the window counts only with an aggregate: without, the newest value
    return hw.MetricThreshold(
        f.get("name"),  # type: ignore[arg-type]
        f.get("threshold"),  # type: ignore[arg-type]
        op=_get(f, "cmp_op", "cmp", default="$gt"),
        agg=_get(f, "agg_op", "agg"),
        window=_get(f, "window_size", "window", default=1),
    )


def _change(f: Mapping[str, Any], notes: list[str]) -> hw.MetricChange:
    known = {
        "name", "agg_op", "agg", "current_window_size", "window_size", "window",
        "prior_window_size", "prior_window", "change_type", "change_dir", "change_amount",
        "threshold",
    }  # fmt: skip
    _unknown(f, known, "change_filter", notes)
    current = _get(f, "current_window_size", "window_size", "window", default=1)
    return hw.MetricChange(
        f.get("name"),  # type: ignore[arg-type]
        _get(f, "change_amount", "threshold"),
        kind=_get(f, "change_type", default="ABSOLUTE"),
        direction=_get(f, "change_dir", default="ANY"),
        current_window=current,
        prior_window=_get(f, "prior_window_size", "prior_window", default=current),  # W&B's default
        agg=_get(f, "agg_op", "agg"),  # None: value against value, as W&B
    )


def _zscore(f: Mapping[str, Any], notes: list[str]) -> hw.MetricZScore:
    _unknown(
        f, {"name", "window_size", "window", "threshold", "change_dir"}, "zscore_filter", notes
    )
    return hw.MetricZScore(
        f.get("name"),  # type: ignore[arg-type]
        threshold=_get(f, "threshold", default=3.0),
        window=_get(f, "window_size", "window", default=30),
        direction=_get(f, "change_dir", default="ANY"),
    )


def _states(f: Mapping[str, Any], notes: list[str]) -> set[str]:
    _unknown(f, {"states"}, "run_state_filter", notes)
    states = f.get("states")
    if isinstance(states, str):
        states = [states]
    if not isinstance(states, list) or not states:
        raise _Skip("run_state_filter.states must list at least one state")
    return {str(s) for s in states}


def _run_filter(trigger: _Trigger, notes: list[str]) -> Filter:
    f = trigger.filter
    if not isinstance(f, Mapping):
        raise _Skip("the run event's filter is not an object")
    run_keys = {"run_filter", "run_metric_filter", "run_state_filter", "metric_filter"}
    _unknown(f, run_keys, "eventFilter", notes)
    # W&B's RunEvent.name travels as display_name; hookwise reads it so too
    run_filter = _expression(_decode(f.get("run_filter"), "run_filter"), "the run filter")
    if trigger.event_type == "RUN_STATE":
        sub = _decode(f.get("run_state_filter"), "run_state_filter")
        if not isinstance(sub, Mapping):
            raise _Skip("a RUN_STATE event without run_state_filter")
        # as W&B: at most once per run per 24 h, whichever state (OnRunState's default)
        return hw.OnRunState(_states(sub, notes), run_filter=run_filter)
    kind = _RUN_METRIC_EVENTS[trigger.event_type]
    wrapper = _decode(f.get("run_metric_filter"), "run_metric_filter")
    if wrapper is None and "metric_filter" in f and kind == "threshold_filter":
        wrapper = {"threshold_filter": _decode(f["metric_filter"], "metric_filter")}  # legacy
    if not isinstance(wrapper, Mapping) or not isinstance(wrapper.get(kind), Mapping):
        raise _Skip(f"a {trigger.event_type} event without run_metric_filter.{kind}")
    _unknown(wrapper, {kind}, "run_metric_filter", notes)
    build: dict[str, Callable[[Mapping[str, Any], list[str]], MetricCondition]] = {
        "threshold_filter": _threshold,
        "change_filter": _change,
        "zscore_filter": _zscore,
    }
    condition = build[kind](wrapper[kind], notes)
    return hw.OnRunMetric(condition, run_filter=run_filter)


def _event(trigger: _Trigger, notes: list[str]) -> Filter:
    if trigger.event_type in _ARTIFACT_EVENTS:
        return _artifact_filter(trigger, notes)
    if trigger.event_type in _RUN_METRIC_EVENTS or trigger.event_type == "RUN_STATE":
        return _run_filter(trigger, notes)
    raise _Skip(f"the W&B event {trigger.event_type} has no hookwise counterpart")


# -- actions ---------------------------------------------------------------------------


def _integration(trigger: _Trigger, integrations: Mapping[str, str]) -> str:
    integration_id = _get(trigger.action, "integrationID", "integration_id")
    if not integration_id:
        raise _Skip(f"the {trigger.action_type} action names no integration")
    name = integrations.get(str(integration_id))
    if name is None:
        raise _Skip(
            f"W&B integration {integration_id!r} is not mapped to a hookwise name "
            f"(--map {integration_id}=NAME)"
        )
    return name


def _notification(trigger: _Trigger, secret: str, notes: list[str]) -> hw.SendNotification:
    title = _get(trigger.action, "title")
    if not title:
        title = trigger.name
        notes.append(f"the W&B notification has no title; hookwise needs one: {title!r}")
    return hw.SendNotification(
        secret,
        title,
        message=_get(trigger.action, "message", "text") or "",
        severity=_get(trigger.action, "severity") or "INFO",
    )


def _action(trigger: _Trigger, integrations: Mapping[str, str], notes: list[str]) -> Action:
    kind = trigger.action_type
    if kind == "NO_OP":
        return hw.DoNothing()
    if kind == "GENERIC_WEBHOOK":
        webhook = _integration(trigger, integrations)
        payload = _get(trigger.action, "requestPayload", "request_payload")
        if payload is None:
            notes.append(
                "the W&B webhook has no request payload; hookwise sends every event variable"
            )
        try:
            return hw.SendWebhook(webhook=webhook, payload=payload)
        except ValidationError as exc:
            raise _Skip(f"the request payload: {exc}") from None
    if kind == "NOTIFICATION":
        return _notification(trigger, _integration(trigger, integrations), notes)
    raise _Skip(f"the W&B action {kind} has no hookwise counterpart")


# -- converting ------------------------------------------------------------------------


def _convert_one(
    raw: Mapping[str, Any], index: int, integrations: Mapping[str, str], scopes: ScopeMap
) -> Imported:
    notes: list[str] = []
    source = str(raw.get("name") or f"automations[{index}]")
    try:
        trigger = _parse(raw, notes)
        scope = _scope(trigger, scopes)
        event = _event(trigger, notes)
        action = _action(trigger, integrations, notes)
        automation = hw.Automation(
            name=trigger.name,
            scope=scope,
            event=event,
            action=action,
            description=trigger.description,
            enabled=trigger.enabled,
        )
    except _Skip as exc:
        return Imported(source, None, (*notes, str(exc)))
    except ValidationError as exc:
        return Imported(source, None, (*notes, f"refused by hookwise: {exc}"))
    except (KeyError, TypeError, ValueError) as exc:
        return Imported(source, None, (*notes, f"not a W&B automation hookwise can read: {exc!r}"))
    return Imported(source, automation, tuple(notes))


def convert(
    automations: Any, *, integrations: Mapping[str, str], scopes: ScopeMap
) -> list[Imported]:
    """Build hookwise automations from W&B ones (anything
    :func:`read_automations` reads); nothing is stored."""
    return [
        _convert_one(raw, i, integrations, scopes)
        for i, raw in enumerate(read_automations(automations))
    ]


def import_automations(
    admin: hw.Admin,
    imported: Iterable[Imported],
    *,
    dry_run: bool = False,
    actor: str | None = None,
) -> list[Imported]:
    """Create each carried-over automation through ``admin`` (which checks
    the webhook exists and the payload names only its secrets, and asks its
    authorizer about ``actor``). With ``dry_run`` the same checks run and
    nothing is stored. A refusal turns into a note, and the automation into
    ``None``: it did not carry over."""
    results: list[Imported] = []
    for item in imported:
        if item.automation is None:
            results.append(item)
            continue
        try:
            if dry_run:
                admin.validate_automation(item.automation, actor=actor)
                if admin.storage.get_automation(item.automation.team, item.automation.name):
                    key = f"{item.automation.team}/{item.automation.name}"
                    raise hw.AlreadyExistsError("automation", key)
            else:
                admin.create_automation(item.automation, actor=actor)
        except HookwiseError as exc:
            notes = (*item.notes, f"not created: {exc}")
            results.append(attrs.evolve(item, automation=None, notes=notes))
            continue
        results.append(attrs.evolve(item, created=not dry_run))
    return results
