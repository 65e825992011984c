"""Who may do what: every Admin method asks the authorizer with the acting
user before it reads or writes anything; W&B's rules as RoleAuthorizer; a
refusal is a PermissionDenied that names actor, action and target and
changes nothing; no authorizer allows everything, as before."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pytest

import hookwise as hw
from hookwise.authz import Action, Authorizer, Role, RoleAuthorizer, Target
from hookwise.errors import PermissionDenied
from tests.conftest import PUBLIC

TEAM = "ml-team"
OTHER = "other-team"
REGISTRY = "model-registry"
PROJECT = "churn"
URL = "https://example.com/hook"
TOKEN = "ghp_TOKEN-value-0123456789abcdef"
SIGNING = "s3cr3t-SIGNING-value-fedcba9876"

REGISTRY_SCOPE = hw.Scope.registry(TEAM, REGISTRY)
PROJECT_SCOPE = hw.Scope.project(TEAM, PROJECT)
COLLECTION_SCOPE = hw.Scope.collection(TEAM, REGISTRY, "fraud")

# The platform's own records: who holds which role where.
TEAM_ROLES: dict[tuple[str, str], set[Role]] = {
    ("tina", TEAM): {Role.TEAM_ADMIN},  # team admin
    ("reggie", TEAM): {Role.MEMBER},  # registry admin, and a team member
    ("pat", TEAM): {Role.MEMBER},  # project admin of churn, and a team member
    ("mem", TEAM): {Role.MEMBER},  # a reader
    ("eve", OTHER): {Role.TEAM_ADMIN},  # an admin, of another team
}
PROJECT_ROLES: dict[tuple[str, str, str], set[Role]] = {
    ("reggie", TEAM, REGISTRY): {Role.REGISTRY_ADMIN},
    ("pat", TEAM, PROJECT): {Role.PROJECT_ADMIN},
    ("eve", OTHER, REGISTRY): {Role.REGISTRY_ADMIN},
}
ACTORS: tuple[str | None, ...] = ("tina", "reggie", "pat", "mem", "eve", None)


def roles(actor: str, where: str | hw.Scope) -> set[Role]:
    """A platform's role lookup: a team's roles, or the roles on the project
    or registry an automation scope is in (a collection's is its holder's)."""
    if isinstance(where, str):
        return TEAM_ROLES.get((actor, where), set())
    return PROJECT_ROLES.get((actor, where.entity, where.project_name), set())


@pytest.fixture
def storage(store: hw.Storage) -> hw.Storage:
    """conftest's ``store``: every test here runs on both storages."""
    seed(hw.Admin(store))
    return store


@pytest.fixture
def admin(storage: hw.Storage) -> hw.Admin:
    return hw.Admin(storage, authorizer=RoleAuthorizer(roles))


def webhook(**overrides: Any) -> hw.Webhook:
    fields: dict[str, Any] = {
        "team": TEAM,
        "name": "github-dispatch",
        "url": URL,
        "access_token": "GITHUB_TOKEN",
        "secret": "SIGNING_KEY",
    }
    fields.update(overrides)
    return hw.Webhook(**fields)


def automation(name: str, scope: hw.Scope, **overrides: Any) -> hw.Automation:
    fields: dict[str, Any] = {
        "name": name,
        "scope": scope,
        "event": hw.OnAddArtifactAlias(alias=r"^production$"),
        "action": hw.SendWebhook(
            webhook="github-dispatch", payload={"version": "${artifact_version_string}"}
        ),
    }
    fields.update(overrides)
    return hw.Automation(**fields)


AUTOMATIONS = {
    "registry": ("deploy", REGISTRY_SCOPE),
    "project": ("churn-alert", PROJECT_SCOPE),
    "collection": ("fraud-watch", COLLECTION_SCOPE),
}


def seed(admin: hw.Admin) -> None:
    """Secrets, a webhook using two of them, a spare one, and one automation
    in each kind of scope; another team beside."""
    admin.create_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=TOKEN))
    admin.create_secret(hw.Secret(team=TEAM, name="SIGNING_KEY", value=SIGNING))
    admin.create_secret(hw.Secret(team=TEAM, name="SPARE", value="spare-value"))
    admin.create_webhook(webhook())
    admin.create_webhook(webhook(name="spare-hook", access_token=None, secret=None))
    for name, scope in AUTOMATIONS.values():
        admin.create_automation(automation(name, scope))
    admin.create_secret(hw.Secret(team=OTHER, name="THEIRS", value="theirs-value"))


def snapshot(storage: hw.Storage) -> Any:
    """Everything a storage holds that Admin can change, ciphertexts included."""
    return (
        storage.revision(),
        [attrs.astuple(r) for team in (TEAM, OTHER) for r in storage.list_secrets(team)],
        [w for team in (TEAM, OTHER) for w in storage.list_webhooks(team)],
        storage.list_automations(),
        storage.list_deliveries(team=None, automation=None, status=None, limit=1000),
    )


# -- the W&B rules, each allowed and refused -----------------------------------


@attrs.frozen
class Op:
    """One Admin call, the action it is judged as, its target, and who may."""

    label: str
    action: Action
    target: Target
    call: Callable[[hw.Admin, str | None], object]
    allowed: frozenset[str]


ADMINS = frozenset({"tina"})
READERS = frozenset({"tina", "reggie", "pat", "mem"})
MANAGERS = {
    "registry": frozenset({"reggie"}),  # registry admins; not the team admin
    "project": frozenset({"pat", "tina"}),  # project admins, and team admins (as W&B)
    "collection": frozenset({"reggie"}),  # the collection sits in a registry
}


def _with_object(method: str, given: hw.Automation) -> Callable[[hw.Admin, str | None], object]:
    def call(admin: hw.Admin, actor: str | None) -> object:
        return getattr(admin, method)(given, actor=actor)

    return call


def _by_name(method: str, name: str) -> Callable[[hw.Admin, str | None], object]:
    def call(admin: hw.Admin, actor: str | None) -> object:
        return getattr(admin, method)(TEAM, name, actor=actor)

    return call


def _ops() -> list[Op]:
    def t(name: str | None = None) -> Target:
        return Target(TEAM, name)

    ops = [
        Op(
            "create_secret",
            Action.SECRET_CREATE,
            t("NEW"),
            lambda a, who: a.create_secret(hw.Secret(team=TEAM, name="NEW", value="v"), actor=who),
            ADMINS,
        ),
        Op(
            "update_secret",
            Action.SECRET_UPDATE,
            t("GITHUB_TOKEN"),
            lambda a, who: a.update_secret(
                hw.Secret(team=TEAM, name="GITHUB_TOKEN", value="ghp_rotated-0123456789"),
                actor=who,
            ),
            ADMINS,
        ),
        Op(
            "delete_secret",
            Action.SECRET_DELETE,
            t("SPARE"),
            lambda a, who: a.delete_secret(TEAM, "SPARE", actor=who),
            ADMINS,
        ),
        Op(
            "get_secret",
            Action.SECRET_READ,
            t("SPARE"),
            lambda a, who: a.get_secret(TEAM, "SPARE", actor=who),
            READERS,
        ),
        Op(
            "list_secrets",
            Action.SECRET_READ,
            t(),
            lambda a, who: a.list_secrets(TEAM, actor=who),
            READERS,
        ),
        Op(
            "create_webhook",
            Action.WEBHOOK_CREATE,
            t("new-hook"),
            lambda a, who: a.create_webhook(
                webhook(name="new-hook", access_token=None, secret=None), actor=who
            ),
            ADMINS,
        ),
        Op(
            "update_webhook",
            Action.WEBHOOK_UPDATE,
            t("github-dispatch"),
            lambda a, who: a.update_webhook(webhook(url=URL + "/v2"), actor=who),
            ADMINS,
        ),
        Op(
            "delete_webhook",
            Action.WEBHOOK_DELETE,
            t("spare-hook"),
            lambda a, who: a.delete_webhook(TEAM, "spare-hook", actor=who),
            ADMINS,
        ),
        Op(
            "enable_webhook",
            Action.WEBHOOK_ENABLE,
            t("spare-hook"),
            lambda a, who: a.enable_webhook(TEAM, "spare-hook", actor=who),
            ADMINS,
        ),
        Op(
            "disable_webhook",
            Action.WEBHOOK_DISABLE,
            t("spare-hook"),
            lambda a, who: a.disable_webhook(TEAM, "spare-hook", actor=who),
            ADMINS,
        ),
        Op(
            "test_webhook",
            Action.WEBHOOK_TEST,
            t("github-dispatch"),
            lambda a, who: a.check(who, "webhook.test", Target(TEAM, "github-dispatch")),
            ADMINS,
        ),
        Op(
            "redeliver",
            Action.HISTORY_REDELIVER,
            t(),
            lambda a, who: a.check(who, Action.HISTORY_REDELIVER, Target(TEAM)),
            ADMINS,
        ),
        Op(
            "get_webhook",
            Action.WEBHOOK_READ,
            t("spare-hook"),
            lambda a, who: a.get_webhook(TEAM, "spare-hook", actor=who),
            READERS,
        ),
        Op(
            "list_webhooks",
            Action.WEBHOOK_READ,
            t(),
            lambda a, who: a.list_webhooks(TEAM, actor=who),
            READERS,
        ),
        Op(
            "get_automation",
            Action.AUTOMATION_READ,
            t("deploy"),
            lambda a, who: a.get_automation(TEAM, "deploy", actor=who),
            READERS,
        ),
        Op(
            "list_automations",
            Action.AUTOMATION_READ,
            t(),
            lambda a, who: a.list_automations(TEAM, actor=who),
            READERS,
        ),
        Op(
            "deliveries",
            Action.HISTORY_READ,
            t(),
            lambda a, who: a.deliveries(team=TEAM, actor=who),
            READERS,
        ),
    ]
    for kind, (name, scope) in AUTOMATIONS.items():
        may = MANAGERS[kind]
        fresh = automation(f"new-{name}", scope)
        edited = automation(name, scope, description="edited")
        by_object: list[tuple[str, Action, hw.Automation]] = [
            ("create_automation", Action.AUTOMATION_CREATE, fresh),
            ("validate_automation", Action.AUTOMATION_VALIDATE, fresh),
            ("update_automation", Action.AUTOMATION_UPDATE, edited),
        ]
        for method, action, given in by_object:
            ops.append(
                Op(
                    f"{method}[{kind}]",
                    action,
                    Target.of_scope(scope, given.name),
                    _with_object(method, given),
                    may,
                )
            )
        by_name = [
            ("delete_automation", Action.AUTOMATION_DELETE),
            ("enable_automation", Action.AUTOMATION_ENABLE),
            ("disable_automation", Action.AUTOMATION_DISABLE),
        ]
        for method, action in by_name:
            ops.append(
                Op(
                    f"{method}[{kind}]",
                    action,
                    Target.of_scope(scope, name),
                    _by_name(method, name),
                    may,
                )
            )
    return ops


OPS = _ops()
CASES = [
    pytest.param(op, actor, actor in op.allowed, id=f"{op.label}-{actor}")
    for op in OPS
    for actor in ACTORS
]


@pytest.mark.parametrize(("op", "actor", "allowed"), CASES)
def test_wandb_rules(
    admin: hw.Admin, storage: hw.Storage, op: Op, actor: str | None, allowed: bool
) -> None:
    if allowed:
        op.call(admin, actor)  # no PermissionDenied (nor any other error)
        return
    before = snapshot(storage)
    with pytest.raises(PermissionDenied) as raised:
        op.call(admin, actor)
    assert snapshot(storage) == before
    denied = raised.value
    assert (denied.actor, denied.action, denied.target) == (actor, op.action, op.target)
    text = str(denied)
    assert op.action.value in text
    assert str(op.target) in text
    assert (repr(actor) if actor is not None else "anonymous") in text


def test_each_rule_is_exercised_both_ways() -> None:
    """Every op above has someone allowed and someone refused."""
    for op in OPS:
        assert op.allowed, op.label
        assert set(ACTORS) - op.allowed, op.label


# -- refusals ----------------------------------------------------------------------


class Recorder:
    """A storage that records every method called on it, to show what a
    refused call touched."""

    def __init__(self, storage: hw.Storage) -> None:
        self._storage = storage
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._storage, name)
        if callable(value):

            def recorded(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return value(*args, **kwargs)

            return recorded
        return value


# What may be read before the question: which scope a named automation has.
RESOLVING_READS = {"get_automation", "get_delivery"}


@pytest.mark.parametrize("op", OPS, ids=[op.label for op in OPS])
def test_a_refusal_reads_and_writes_nothing(storage: hw.Storage, op: Op) -> None:
    recorder = Recorder(storage)
    admin = hw.Admin(recorder, authorizer=RoleAuthorizer(roles))
    recorder.calls.clear()
    before = snapshot(storage)
    with pytest.raises(PermissionDenied):
        op.call(admin, "eve")
    assert set(recorder.calls) <= RESOLVING_READS, recorder.calls
    assert snapshot(storage) == before


def test_permission_denied_is_typed_and_names_everything() -> None:
    target = Target.of_scope(REGISTRY_SCOPE, "deploy")
    denied = PermissionDenied("mallory", Action.AUTOMATION_DELETE, target)
    assert isinstance(denied, hw.HookwiseError)
    assert isinstance(denied, PermissionError)
    assert str(denied) == (
        "actor 'mallory' may not automation.delete 'deploy' in registry ml-team/model-registry"
    )
    assert str(PermissionDenied(None, Action.SECRET_READ, Target(TEAM))) == (
        "an anonymous actor may not secret.read team 'ml-team'"
    )
    again = pickle.loads(pickle.dumps(denied))
    assert (again.actor, again.action, again.target) == ("mallory", "automation.delete", target)
    assert str(again) == str(denied)


def test_targets_say_where() -> None:
    assert str(Target(TEAM)) == "team 'ml-team'"
    assert str(Target(TEAM, "SPARE")) == "'SPARE' in team 'ml-team'"
    assert str(Target(None)) == "every team"
    assert str(Target.of_scope(COLLECTION_SCOPE)) == "collection ml-team/model-registry/fraud"
    with pytest.raises(hw.ValidationError):
        Target(OTHER, "x", REGISTRY_SCOPE)  # the team is the scope's entity
    with pytest.raises(hw.ValidationError):
        Target(123)  # type: ignore[arg-type]


def test_moving_an_automation_needs_both_scopes(admin: hw.Admin, storage: hw.Storage) -> None:
    before = snapshot(storage)
    # pat manages the churn project, not the registry the automation is in
    moved = automation("deploy", PROJECT_SCOPE)
    with pytest.raises(PermissionDenied) as raised:
        admin.update_automation(moved, actor="pat")
    assert raised.value.target == Target.of_scope(REGISTRY_SCOPE, "deploy")
    # reggie manages the registry, not the project it would move to
    with pytest.raises(PermissionDenied) as raised:
        admin.update_automation(moved, actor="reggie")
    assert raised.value.target == Target.of_scope(PROJECT_SCOPE, "deploy")
    assert snapshot(storage) == before


def test_a_missing_automation_is_not_found_for_members_only(admin: hw.Admin) -> None:
    with pytest.raises(hw.NotFoundError):
        admin.delete_automation(TEAM, "nope", actor="mem")
    with pytest.raises(PermissionDenied) as raised:
        admin.delete_automation(TEAM, "nope", actor="eve")
    assert raised.value.target == Target(TEAM, "nope")
    with pytest.raises(hw.NotFoundError):
        admin.get_automation(TEAM, "nope", actor="mem")


def test_nobody_reads_every_team_at_once(admin: hw.Admin) -> None:
    for actor in ACTORS:
        with pytest.raises(PermissionDenied):
            admin.list_automations(actor=actor)
        with pytest.raises(PermissionDenied):
            admin.deliveries(actor=actor)


def test_delivery_history_is_read_by_the_team(storage: hw.Storage) -> None:
    with hw.Dispatcher(storage, worker=False, network=PUBLIC) as dispatcher:
        made = dispatcher.handle(
            hw.Event.artifact_alias_added(
                entity=TEAM, project=REGISTRY, collection="fraud", version="v1", alias="production"
            )
        )
    assert made
    admin = hw.Admin(storage, authorizer=RoleAuthorizer(roles))
    assert admin.deliveries(team=TEAM, actor="mem")
    assert admin.attempts(made[0].id, actor="mem") == storage.list_attempts(made[0].id)
    with pytest.raises(PermissionDenied) as raised:
        admin.attempts(made[0].id, actor="eve")
    assert raised.value.target == Target(TEAM, made[0].id)
    with pytest.raises(hw.NotFoundError):
        admin.attempts("no-such-delivery", actor="mem")


def test_the_role_lookup_is_asked_about_the_team_or_the_scope(storage: hw.Storage) -> None:
    asked: list[tuple[str, str | hw.Scope]] = []

    def lookup(actor: str, where: str | hw.Scope) -> Iterable[str]:
        asked.append((actor, where))
        return ["registry_admin"] if isinstance(where, hw.Scope) else ["member"]  # plain strings

    admin = hw.Admin(storage, authorizer=RoleAuthorizer(lookup))
    admin.enable_automation(TEAM, "deploy", actor="ana")
    assert asked == [("ana", REGISTRY_SCOPE)]
    asked.clear()
    admin.list_secrets(TEAM, actor="ana")
    assert asked == [("ana", TEAM)]
    asked.clear()
    with pytest.raises(PermissionDenied):
        admin.list_secrets(TEAM)  # no actor: refused without asking
    assert asked == []


def test_unknown_roles_and_empty_answers_refuse(storage: hw.Storage) -> None:
    admin = hw.Admin(storage, authorizer=RoleAuthorizer(lambda actor, where: None))
    with pytest.raises(PermissionDenied):
        admin.list_secrets(TEAM, actor="x")
    admin = hw.Admin(storage, authorizer=RoleAuthorizer(lambda actor, where: {"owner"}))
    with pytest.raises(PermissionDenied):
        admin.list_secrets(TEAM, actor="x")
    with pytest.raises(hw.ValidationError):
        RoleAuthorizer("not callable")  # type: ignore[arg-type]


# -- no authorizer, a custom authorizer --------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=[op.label for op in OPS])
@pytest.mark.parametrize("actor", ["eve", None])
def test_no_authorizer_allows_everything(storage: hw.Storage, op: Op, actor: str | None) -> None:
    op.call(hw.Admin(storage), actor)


def test_actor_must_be_a_string(storage: hw.Storage) -> None:
    with pytest.raises(hw.ValidationError) as raised:
        hw.Admin(storage).list_secrets(TEAM, actor=7)  # type: ignore[arg-type]
    assert raised.value.field == "actor"


class ReadOnly:
    """A platform's own policy: anyone reads, nobody writes."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, Action, Target]] = []

    def allows(self, actor: str | None, action: Action, target: Target) -> bool:
        self.asked.append((actor, action, target))
        return action.value.endswith(".read")


def test_a_custom_authorizer(storage: hw.Storage) -> None:
    policy = ReadOnly()
    assert isinstance(policy, Authorizer)
    admin = hw.Admin(storage, authorizer=policy)
    assert [s.name for s in admin.list_secrets(TEAM, actor="ana")] == [
        "GITHUB_TOKEN",
        "SIGNING_KEY",
        "SPARE",
    ]
    before = snapshot(storage)
    with pytest.raises(PermissionDenied):
        admin.delete_secret(TEAM, "SPARE", actor="ana")
    assert snapshot(storage) == before
    assert policy.asked == [
        ("ana", Action.SECRET_READ, Target(TEAM)),
        ("ana", Action.SECRET_DELETE, Target(TEAM, "SPARE")),
    ]


@pytest.mark.parametrize("answer", [1, "yes", None, [True]])
def test_only_true_allows(storage: hw.Storage, answer: object) -> None:
    class Sloppy:
        def allows(self, actor: str | None, action: Action, target: Target) -> object:
            return answer

    admin = hw.Admin(storage, authorizer=Sloppy())  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        admin.list_secrets(TEAM, actor="ana")


def test_an_authorizer_must_answer_allows(storage: hw.Storage) -> None:
    with pytest.raises(hw.ValidationError) as raised:
        hw.Admin(storage, authorizer=lambda *a: True)  # type: ignore[arg-type]
    assert raised.value.field == "authorizer"


def test_check_is_validated(admin: hw.Admin) -> None:
    admin.check("tina", "webhook.test", Target(TEAM, "github-dispatch"))
    with pytest.raises(hw.ValidationError) as raised:
        admin.check("tina", "webhook.explode", Target(TEAM))
    assert raised.value.field == "action"
    with pytest.raises(hw.ValidationError) as raised:
        admin.check("tina", "webhook.test", TEAM)  # type: ignore[arg-type]
    assert raised.value.field == "target"


# -- every public Admin method asks ------------------------------------------------


class Refuser:
    def __init__(self) -> None:
        self.asked: list[tuple[str | None, Action, Target]] = []

    def allows(self, actor: str | None, action: Action, target: Target) -> bool:
        self.asked.append((actor, action, target))
        return False


# One call per public method. A new public method fails
# test_every_public_method_asks_the_authorizer until it is added here, and it
# passes only if the method asks.
CALLS: dict[str, Callable[[hw.Admin], object]] = {
    "check": lambda a: a.check("mallory", "webhook.test", Target(TEAM, "github-dispatch")),
    "create_secret": lambda a: a.create_secret(
        hw.Secret(team=TEAM, name="NEW", value="v"), actor="mallory"
    ),
    "update_secret": lambda a: a.update_secret(
        hw.Secret(team=TEAM, name="SPARE", value="v2"), actor="mallory"
    ),
    "get_secret": lambda a: a.get_secret(TEAM, "SPARE", actor="mallory"),
    "list_secrets": lambda a: a.list_secrets(TEAM, actor="mallory"),
    "delete_secret": lambda a: a.delete_secret(TEAM, "SPARE", actor="mallory"),
    "create_webhook": lambda a: a.create_webhook(
        webhook(name="x", access_token=None, secret=None), actor="mallory"
    ),
    "update_webhook": lambda a: a.update_webhook(webhook(), actor="mallory"),
    "get_webhook": lambda a: a.get_webhook(TEAM, "spare-hook", actor="mallory"),
    "list_webhooks": lambda a: a.list_webhooks(TEAM, actor="mallory"),
    "delete_webhook": lambda a: a.delete_webhook(TEAM, "spare-hook", actor="mallory"),
    "enable_webhook": lambda a: a.enable_webhook(TEAM, "spare-hook", actor="mallory"),
    "disable_webhook": lambda a: a.disable_webhook(TEAM, "spare-hook", actor="mallory"),
    "create_automation": lambda a: a.create_automation(
        automation("x", REGISTRY_SCOPE), actor="mallory"
    ),
    "update_automation": lambda a: a.update_automation(
        automation("deploy", REGISTRY_SCOPE), actor="mallory"
    ),
    "validate_automation": lambda a: a.validate_automation(
        automation("x", REGISTRY_SCOPE), actor="mallory"
    ),
    "get_automation": lambda a: a.get_automation(TEAM, "deploy", actor="mallory"),
    "list_automations": lambda a: a.list_automations(TEAM, actor="mallory"),
    "delete_automation": lambda a: a.delete_automation(TEAM, "deploy", actor="mallory"),
    "enable_automation": lambda a: a.enable_automation(TEAM, "deploy", actor="mallory"),
    "disable_automation": lambda a: a.disable_automation(TEAM, "deploy", actor="mallory"),
    "deliveries": lambda a: a.deliveries(team=TEAM, actor="mallory"),
    "attempts": lambda a: a.attempts(DELIVERY_ID, actor="mallory"),
}
DELIVERY_ID = "filled-in-by-the-fixture"


def public_methods() -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(hw.Admin)
        if not name.startswith("_") and callable(member)
    )


def test_every_public_method_takes_an_actor() -> None:
    for name in public_methods():
        parameters = inspect.signature(getattr(hw.Admin, name)).parameters
        assert "actor" in parameters, f"Admin.{name} takes no actor="
        if name != "check":
            assert parameters["actor"].kind is inspect.Parameter.KEYWORD_ONLY, name
            assert parameters["actor"].default is None, name


def test_every_public_method_asks_the_authorizer(
    storage: hw.Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hw.Dispatcher(storage, worker=False, network=PUBLIC) as dispatcher:
        (made,) = dispatcher.handle(
            hw.Event.artifact_alias_added(
                entity=TEAM, project=REGISTRY, collection="other", version="v1", alias="production"
            )
        )
    monkeypatch.setitem(globals(), "DELIVERY_ID", made.id)
    missing = set(public_methods()) - set(CALLS)
    assert not missing, f"add a call for the new Admin methods {sorted(missing)} to CALLS"
    for name in public_methods():
        refuser = Refuser()
        admin = hw.Admin(storage, authorizer=refuser)
        before = snapshot(storage)
        with pytest.raises(PermissionDenied):
            CALLS[name](admin)
        assert refuser.asked, f"Admin.{name} did not ask the authorizer"
        assert all(actor == "mallory" for actor, _, _ in refuser.asked), name
        assert snapshot(storage) == before, name
