"""Make a store match a description: ``hookwise apply FILE``.

A description is a JSON or TOML document of three lists, ``secrets``,
``webhooks`` and ``automations`` (see ``docs/cli.md``)::

    version = 1

    [[secrets]]
    team = "ml-team"
    name = "SIGNING_KEY"
    from_env = "SIGNING_KEY"      # the value is read from $SIGNING_KEY, never from the file

    [[webhooks]]                  # the stored JSON of hookwise.storage.codec, without "v"
    team = "ml-team"
    name = "github-dispatch"
    url = "https://api.github.com/repos/acme/models/dispatches"
    secret = "SIGNING_KEY"

Webhooks and automations are written in the versioned JSON the shipped
stores keep (:mod:`hookwise.storage.codec`), so they are read by the same
code, validated by the same constructors, and a stored record printed with
``webhook_to_json`` can be pasted in. Three conveniences: ``"v"`` may be
left out (the top-level ``version`` says it), an action's ``payload`` may be
a table instead of JSON text, and a ``send_webhook`` action without one
sends every event variable (the default template).

The rules that make ``apply`` safe to run again and again:

* Everything is checked before anything is stored: the file is read whole,
  then the changes are made on a copy of the teams' records in memory, with
  every check :class:`~hookwise.Admin` runs; only when all of them pass are
  they made in the store. Every problem is reported with its place
  (``webhooks[1].url: ...``).
* A record equal to the stored one is left alone (``unchanged``). A secret
  is compared by its value: the stored one is opened with the store's key
  and re-sealed only when it differs, so a second run changes nothing.
* ``enabled`` left out keeps what the store has: a webhook disabled after a
  410 stays disabled until the file says ``enabled = true``.
* Nothing is deleted: a record the file does not name stays as it is.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import attrs

from hookwise.admin import Admin
from hookwise.authz import Action, Authorizer, Target
from hookwise.crypto import SecretKey
from hookwise.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from hookwise.model import Automation, Secret, SendNotification, SendWebhook, Webhook
from hookwise.network import NetworkPolicy
from hookwise.storage.codec import (
    FORMAT_VERSION,
    automation_from_json,
    automation_to_json,
    webhook_from_json,
    webhook_to_json,
)
from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import Storage, Transactional
from hookwise.template import DEFAULT_TEMPLATE
from hookwise.vault import Vault, key_for

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_ITEMS",
    "ApplyError",
    "Change",
    "Description",
    "Entry",
    "apply",
    "load_description",
    "read_description",
]

MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest description file read."""
MAX_ITEMS = 10_000
"""The most entries one list (``secrets``, ``webhooks``, ``automations``) may hold."""
MAX_DEPTH = 100
"""How deeply a description may nest (a payload's own limit is lower)."""
MAX_SHOWN = 50
"""Problems listed in one ApplyError; the rest are counted."""

_SECTIONS = ("secrets", "webhooks", "automations")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEY_VARIABLE = "HOOKWISE_SECRET_KEY"

Kind = Literal["secret", "webhook", "automation"]
Verb = Literal["created", "updated", "unchanged"]


class ApplyError(ValidationError):
    """A description that cannot be applied; ``problems`` lists each one
    with its place (``webhooks[1].url: ...``). Nothing was stored, unless
    ``partial``: the store changed between the check and the writes, and
    the changes reported before the error were made."""

    def __init__(self, source: str, problems: Iterable[str], *, partial: bool = False) -> None:
        self.problems = tuple(problems)
        self.partial = partial
        shown = list(self.problems[:MAX_SHOWN])
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more")
        count = len(self.problems)
        lines = "".join(f"\n  {line}" for line in shown)
        outcome = (
            "the store changed while apply ran; the changes reported before this were stored"
            if partial
            else "nothing stored"
        )
        super().__init__(source, f"{count} problem{'s' if count != 1 else ''}, {outcome}:{lines}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles across processes, as the others do
        return _rebuilt, (type(self), self.field, self.problems, self.partial)


def _rebuilt(
    cls: type[ApplyError], source: str, problems: tuple[str, ...], partial: bool
) -> ApplyError:
    return cls(source, problems, partial=partial)


@attrs.frozen(slots=True)
class Change:
    """What ``apply`` did (or, in a dry run, would do) to one record."""

    kind: Kind
    team: str
    name: str
    verb: Verb
    place: str  # where the file describes it: "webhooks[1]"

    def describe(self, *, dry_run: bool = False) -> str:
        """``created webhook ml-team/github-dispatch`` (``would create ...`` in a dry run)."""
        verb: str = self.verb
        if dry_run and self.verb != "unchanged":
            verb = "would " + self.verb[:-1]  # created -> would create
        return f"{verb} {self.kind} {self.team}/{self.name}"


@attrs.frozen(slots=True)
class Entry:
    """One record of a description, and where the file describes it."""

    place: str
    record: Secret | Webhook | Automation
    sets_enabled: bool  # the file says `enabled`: else the store's is kept


@attrs.frozen(slots=True)
class Description:
    """A checked description, ready for :func:`apply`. Secret values were
    read from the environment; ``repr`` never shows them."""

    secrets: tuple[Entry, ...] = ()
    webhooks: tuple[Entry, ...] = ()
    automations: tuple[Entry, ...] = ()
    source: str = "description"

    @property
    def teams(self) -> frozenset[str]:
        return frozenset(item.record.team for item in self._items())

    def _items(self) -> tuple[Entry, ...]:
        return (*self.secrets, *self.webhooks, *self.automations)


# -- reading ---------------------------------------------------------------------


def load_description(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Description:
    """Read a ``.json`` or ``.toml`` description file (see :func:`read_description`)."""
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ApplyError(name, ["file: name it .json or .toml, so its format is known"])
    try:
        with open(name, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ApplyError(name, [f"file: cannot read it: {exc.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ApplyError(name, [f"file: larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplyError(name, ["file: not UTF-8 text"]) from None
    data = _parse_toml(text, name) if suffix == ".toml" else _parse_json(text, name)
    return read_description(data, environ=environ, source=name)


def _parse_json(text: str, source: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise ApplyError(source, [f"file: nested more than {MAX_DEPTH} levels deep"]) from None
    except ValueError as exc:
        if "int_max_str_digits" in str(exc):  # Python's advice is for the programmer
            raise ApplyError(source, ["file: holds a number of more than 4300 digits"]) from None
        raise ApplyError(source, [f"file: not valid JSON ({exc})"]) from None


def _toml_reader() -> Callable[[str], Any] | None:
    """``tomllib.loads`` (Python 3.11+), else ``tomli.loads`` when it is
    installed: hookwise itself needs no TOML package."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads
    try:  # pragma: no cover - Python 3.10
        import tomli  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - Python 3.10
        return None
    return tomli.loads  # type: ignore[no-any-return,unused-ignore]  # pragma: no cover


def _parse_toml(text: str, source: str) -> Any:
    loads = _toml_reader()
    if loads is None:
        raise ApplyError(
            source,
            [
                "file: reading TOML needs Python 3.11 or later, or the tomli "
                "package on 3.10 (pip install tomli); or write the description as JSON"
            ],
        )
    try:
        return loads(text)
    except RecursionError:
        raise ApplyError(source, [f"file: nested more than {MAX_DEPTH} levels deep"]) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ApplyError(source, [f"file: not valid TOML ({exc})"]) from None


def _too_deep(data: Any) -> bool:
    """Whether ``data`` nests deeper than MAX_DEPTH (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


def read_description(
    data: Any, *, environ: Mapping[str, str] | None = None, source: str = "description"
) -> Description:
    """Check a parsed description (dicts and lists, as JSON or TOML gives
    them) and read its secrets' values from ``environ`` (default
    ``os.environ``). Every problem is collected, then raised together as one
    :class:`ApplyError`."""
    env = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ApplyError(source, [f"file: expected an object (a table), not {_kind(data)}"])
    if _too_deep(data):
        raise ApplyError(source, [f"file: nested more than {MAX_DEPTH} levels deep"])
    problems: list[str] = []
    unknown = sorted(set(data) - {"version", *_SECTIONS})
    for key in unknown[:5]:
        problems.append(
            f"{_shown_key(key)}: unexpected key (a description has version, secrets, "
            "webhooks and automations)"
        )
    if len(unknown) > 5:
        problems.append(f"file: {len(unknown) - 5} more unexpected keys")
    version = data.get("version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        problems.append(f"version: must be {FORMAT_VERSION} (the only format this hookwise reads)")
        raise ApplyError(source, problems)
    sections: dict[str, list[Entry]] = {}
    for section, read in (
        ("secrets", lambda place, raw: _secret(place, raw, env)),
        ("webhooks", _webhook),
        ("automations", _automation),
    ):
        sections[section] = _section(data.get(section, []), section, read, problems)
    if problems:
        raise ApplyError(source, problems)
    return Description(
        secrets=tuple(sections["secrets"]),
        webhooks=tuple(sections["webhooks"]),
        automations=tuple(sections["automations"]),
        source=source,
    )


def _shown_key(key: str) -> str:
    """A key as an error may show it: as it is when it is a plain name,
    else quoted and escaped (no terminal control characters), and short."""
    if re.fullmatch(r"[\w.-]{1,40}", key, re.ASCII):
        return key
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _section(
    value: Any, section: str, read: Callable[[str, dict[str, Any]], Entry], problems: list[str]
) -> list[Entry]:
    if not isinstance(value, list):
        problems.append(f"{section}: expected a list of objects, not {_kind(value)}")
        return []
    if len(value) > MAX_ITEMS:
        problems.append(f"{section}: more than {MAX_ITEMS} entries")
        return []
    items: list[Entry] = []
    seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(value):
        place = f"{section}[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{place}: expected an object, not {_kind(raw)}")
            continue
        try:
            item = read(place, raw)
        except ValidationError as exc:
            problems.append(_where(place, exc))
            continue
        key = (item.record.team, item.record.name)
        if key in seen:
            problems.append(f"{place}: {key[0]}/{key[1]} is described already, by {seen[key]}")
            continue
        seen[key] = place
        items.append(item)
    return items


def _where(place: str, exc: ValidationError) -> str:
    """``place.field: message``, from a model or codec error (the codec names
    its fields ``stored webhook``, ``stored action``, ``stored event.filter``)."""
    field = exc.field
    if field.startswith("stored "):
        field = field[len("stored ") :]
        if field in ("webhook", "automation"):
            field = ""
    return f"{place}.{field}: {exc.message}" if field else f"{place}: {exc.message}"


def _secret(place: str, raw: dict[str, Any], environ: Mapping[str, str]) -> Entry:
    if "value" in raw:
        raise ValidationError(
            "value",
            'secret values never go in the file: write from_env = "VARIABLE" and '
            "export VARIABLE before running apply",
        )
    extra = sorted(set(raw) - {"team", "name", "from_env"})
    if extra:
        raise ValidationError(extra[0], "unexpected key (a secret has team, name and from_env)")
    for key in ("team", "name", "from_env"):
        if key not in raw:
            raise ValidationError(key, "missing")
    variable = raw["from_env"]
    if not isinstance(variable, str) or not _ENV_NAME.match(variable):
        raise ValidationError("from_env", "must be the name of an environment variable")
    if variable == _KEY_VARIABLE:
        raise ValidationError(
            "from_env", f"{_KEY_VARIABLE} is the store's own key: it is never a team secret"
        )
    value = environ.get(variable)
    if value is None:
        raise ValidationError(
            "from_env", f"environment variable {variable!r} is not set: export it first"
        )
    if not value:
        raise ValidationError("from_env", f"environment variable {variable!r} is empty")
    try:
        secret = Secret(team=raw["team"], name=raw["name"], value=value)
    except ValidationError as exc:
        if exc.field == "value":  # the message names no value
            raise ValidationError("from_env", f"the value of {variable!r} {exc.message}") from None
        raise
    return Entry(place, secret, sets_enabled=False)


def _record(raw: dict[str, Any]) -> str:
    """The codec's document for ``raw``: its ``"v"`` added when left out."""
    document = {"v": FORMAT_VERSION, **raw}
    try:
        return json.dumps(document, allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationError(
            "stored webhook",
            "holds a value JSON cannot (a TOML date or time, an infinite number or a NaN): "
            "use strings and numbers",
        ) from None


def _webhook(place: str, raw: dict[str, Any]) -> Entry:
    return Entry(place, webhook_from_json(_record(raw)), sets_enabled="enabled" in raw)


def _automation(place: str, raw: dict[str, Any]) -> Entry:
    action = raw.get("action")
    if (
        isinstance(action, dict)
        and action.get("type") == "send_webhook"
        and "payload" not in action
    ):
        action = {**action, "payload": DEFAULT_TEMPLATE.source}  # every event variable
        raw = {**raw, "action": action}
    if isinstance(action, dict) and isinstance(action.get("payload"), (dict, list)):
        try:  # a table is the template itself; the codec takes its JSON text
            payload = json.dumps(action["payload"], allow_nan=False)
        except (TypeError, ValueError):
            raise ValidationError(
                "action.payload",
                "holds a value JSON cannot (a TOML date or time, an infinite number or a NaN)",
            ) from None
        raw = {**raw, "action": {**action, "payload": payload}}
    return Entry(place, automation_from_json(_record(raw)), sets_enabled="enabled" in raw)


# -- applying ----------------------------------------------------------------------


def apply(
    storage: Storage,
    description: Description,
    *,
    network: NetworkPolicy | None = None,
    key: SecretKey | None = None,
    authorizer: Authorizer | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Make ``storage`` hold what ``description`` says, and return what changed.

    First every change is made on an in-memory copy of the teams' records,
    through an :class:`~hookwise.Admin` with the same ``network``, ``key``
    and ``authorizer``; any refusal there is an :class:`ApplyError` listing
    them all, and the store is untouched. Then (unless ``dry_run``) the same
    changes are made in ``storage``, calling ``progress`` after each.
    """
    if not isinstance(description, Description):
        raise ValidationError("description", "must be a hookwise.apply.Description")
    key = key_for(storage, key)
    staged = _copy(storage, description.teams, key)
    steps: list[tuple[Kind, Entry]] = [
        *(("secret", item) for item in description.secrets),
        *(("webhook", item) for item in description.webhooks),
        *(("automation", item) for item in description.automations),
    ]
    checked, order = _run(
        Admin(staged, authorizer=authorizer, network=network, key=key),
        Vault(key),
        description.source,
        steps,
        actor,
        None if not dry_run else progress,
        settle=True,
        partial=False,
    )
    if dry_run:
        return checked
    # all of it or none, where the store can
    whole = storage.transaction() if isinstance(storage, Transactional) else None
    with whole or nullcontext():
        done, _ = _run(
            Admin(storage, authorizer=authorizer, network=network, key=key),
            Vault(key),
            description.source,
            order,  # what the check found works, in the order it worked
            actor,
            progress,
            settle=False,
            partial=whole is None,
        )
    return done


def _copy(storage: Storage, teams: Iterable[str], key: SecretKey) -> MemoryStorage:
    """The records of ``teams``, copied into memory (secrets still sealed)."""
    copy = MemoryStorage(key)
    for team in sorted(teams):
        for secret in storage.list_secrets(team):
            copy.create_secret(secret)
        for webhook in storage.list_webhooks(team):
            copy.create_webhook(webhook)
        for automation in storage.list_automations(team):
            copy.create_automation(automation)
    return copy


def _run(
    admin: Admin,
    vault: Vault,
    source: str,
    steps: list[tuple[Kind, Entry]],
    actor: str | None,
    progress: Callable[[Change], None] | None,
    *,
    settle: bool,
    partial: bool,
) -> tuple[list[Change], list[tuple[Kind, Entry]]]:
    """Put each record, in order; returns the changes and the order that
    worked. With ``settle``, what was refused is tried again after the rest,
    pass after pass while a pass gets further: each check runs against the
    store as it is then, so a file that takes a secret off a webhook and
    out of the payload that used it works whichever the file names first."""
    changes: list[Change] = []
    order: list[tuple[Kind, Entry]] = []
    pending = steps
    while True:
        refused: list[tuple[Kind, Entry, str]] = []
        failed: dict[tuple[Kind, str, str], str] = {}  # refused in this pass, and its place
        for kind, item in pending:
            record = item.record
            try:
                verb = _put(admin, vault, item, actor)
            except ValidationError as exc:
                problem = _where(item.place, exc)
            except (NotFoundError, AlreadyExistsError, PermissionDenied) as exc:
                problem = f"{item.place}: {exc}"
            else:
                change = Change(kind, record.team, record.name, verb, item.place)
                changes.append(change)
                order.append((kind, item))
                if progress is not None:
                    progress(change)
                continue
            blocked = [failed[need] for need in _needs(record) if need in failed]
            if blocked:  # its own error would only say that what it needs is missing
                problem = f"{item.place}: not checked: it needs {blocked[0]}, which failed"
            refused.append((kind, item, problem))
            failed[(kind, record.team, record.name)] = item.place
        if not refused:
            return changes, order
        if not settle or len(refused) == len(pending):  # no further: these are the problems
            problems = [problem for _, _, problem in refused]
            raise ApplyError(source, problems, partial=partial and bool(changes))
        pending = [(kind, item) for kind, item, _ in refused]


def _needs(record: Secret | Webhook | Automation) -> list[tuple[Kind, str, str]]:
    """The records ``record`` names, which must be stored before it."""
    if isinstance(record, Webhook):
        return [("secret", record.team, name) for name in sorted(record.secret_names)]
    if isinstance(record, Automation):
        action = record.action
        if isinstance(action, SendWebhook):
            return [("webhook", record.team, action.webhook)]
        if isinstance(action, SendNotification):
            return [("secret", record.team, action.secret)]
    return []


def _put(admin: Admin, vault: Vault, item: Entry, actor: str | None) -> Verb:
    """Create, update or leave one record. A record left unchanged is still
    asked about: comparing a secret's value takes the right to update it,
    comparing a webhook or automation the right to read it."""
    try:
        return _put_once(admin, vault, item, actor)
    except AlreadyExistsError:  # made since we looked (another apply): compare with it
        return _put_once(admin, vault, item, actor)


def _put_once(admin: Admin, vault: Vault, item: Entry, actor: str | None) -> Verb:
    record = item.record
    storage = admin.storage
    if isinstance(record, Secret):
        sealed = storage.get_secret(record.team, record.name)
        if sealed is None:
            admin.create_secret(record, actor=actor)
            return "created"
        admin.check(actor, Action.SECRET_UPDATE, Target(record.team, record.name))
        stored = vault.open_secret(sealed).encode("utf-8")
        if hmac.compare_digest(stored, record.value.encode("utf-8")):
            return "unchanged"
        admin.update_secret(record, actor=actor)
        return "updated"
    if isinstance(record, Webhook):
        webhook = storage.get_webhook(record.team, record.name)
        if webhook is None:
            admin.create_webhook(record, actor=actor)
            return "created"
        if not item.sets_enabled or not (record.enabled or webhook.enabled):
            # left out, or off and already off: keep what the store says, and why
            record = attrs.evolve(
                record, enabled=webhook.enabled, disabled_reason=webhook.disabled_reason
            )
        if webhook_to_json(record) == webhook_to_json(webhook):
            admin.get_webhook(record.team, record.name, actor=actor)
            return "unchanged"
        admin.update_webhook(record, actor=actor)
        if record.enabled and not webhook.enabled:
            # as an admin turning it back on does: its failing streak starts again
            admin.enable_webhook(record.team, record.name, actor=actor)
        return "updated"
    automation = storage.get_automation(record.team, record.name)
    if automation is None:
        admin.create_automation(record, actor=actor)
        return "created"
    if not item.sets_enabled:
        record = attrs.evolve(record, enabled=automation.enabled)
    if automation_to_json(record) == automation_to_json(automation):
        admin.get_automation(record.team, record.name, actor=actor)
        return "unchanged"
    admin.update_automation(record, actor=actor)
    return "updated"
