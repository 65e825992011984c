"""W&B's optional, composable event filters, ``event >> action``, W&B's event
type names and W&B's run-state rate limit.

Built from the W&B SDK's documentation and docstrings: ``OnAddArtifactAlias(
filter=ArtifactEvent.alias.eq("prod"))``, ``RunEvent.name.contains(...)``,
the MongoDB-style operators ``$eq $ne $regex $contains $in $nin $exists``
with ``$and $or $nor $not``, and "in a 24-hour period, a particular
automation can fire at most once per run".
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import pytest

import hookwise as hw
from hookwise.core import Core
from hookwise.events import EventType
from hookwise.expressions import (
    And,
    ArtifactEvent,
    Compare,
    Expression,
    FilterField,
    Nor,
    Not,
    Operator,
    Or,
    RunEvent,
    expression_from_json,
    to_expression,
)
from hookwise.filters import Trigger
from hookwise.settings import Settings
from hookwise.storage import codec
from tests.conftest import PUBLIC, TEAM

alias = ArtifactEvent.alias
tag = ArtifactEvent.tag


def artifact(kind: str = "alias", value: str = "production") -> hw.Event:
    common: dict[str, Any] = {
        "entity": TEAM,
        "project": "model-registry",
        "collection": "churn",
        "version": "v3",
    }
    if kind == "alias":
        return hw.Event.artifact_alias_added(alias=value, **common)
    if kind == "tag":
        return hw.Event.artifact_tag_added(tag=value, **common)
    return hw.Event.artifact_linked(alias=value, **common)  # "link": alias may be ""


RUN = hw.Run(entity=TEAM, project="training", id="run-1", name="sweep-3", user="alice")


# -- each operator against events ----------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        (alias == "production", "production", True),
        (alias == "production", "production-2", False),
        (alias.eq("prod"), "prod", True),
        (alias != "production", "staging", True),
        (alias.ne("production"), "production", False),
        (alias.matches_regex(r"^prod"), "production", True),
        (alias.matches_regex(r"^prod"), "pre-prod", False),
        (alias.regex(r"prod$"), "pre-prod", True),  # a search, not anchored
        (alias.matches(r"^v\d+$"), "v12", True),
        (alias.contains("prod"), "pre-production", True),
        (alias.contains("prod"), "staging", False),
        (alias.in_(["staging", "production"]), "production", True),
        (alias.in_(["staging", "production"]), "latest", False),
        (alias.not_in(["staging", "production"]), "latest", True),
        (alias.not_in(["staging", "production"]), "staging", False),
        (alias.exists(), "latest", True),
        (alias.exists(True), "latest", True),
        (alias.exists(False), "latest", False),
    ],
)
def test_each_operator(expression: Expression, value: str, expected: bool) -> None:
    assert expression.evaluate(artifact("alias", value)) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # MongoDB: a missing field matches $ne, $nin and $exists: false only
        (alias == "", False),
        (alias != "production", True),
        (alias.matches_regex(".*"), False),
        (alias.contains(""), False),
        (alias.in_(["production"]), False),
        (alias.not_in(["production"]), True),
        (alias.exists(), False),
        (alias.exists(False), True),
    ],
)
def test_an_event_without_the_field(expression: Expression, expected: bool) -> None:
    linked_without_alias = artifact("link", "")
    assert expression.evaluate(linked_without_alias) is expected


def test_tag_and_run_fields() -> None:
    assert (tag == "candidate").evaluate(artifact("tag", "candidate"))
    assert not (tag == "candidate").evaluate(artifact("alias", "candidate"))
    state = hw.Event.run_state(RUN, "FAILED")
    assert RunEvent.name.contains("sweep").evaluate(state)
    assert (RunEvent.name == "sweep-3").evaluate(state)
    assert not RunEvent.name.matches_regex("^baseline").evaluate(state)
    assert (RunEvent.user == "alice").evaluate(state)
    assert not (RunEvent.user.in_(["bob"])).evaluate(state)


# -- combinations --------------------------------------------------------------------


def test_and_or_not() -> None:
    prod_not_tmp = alias.matches_regex("prod") & ~alias.contains("tmp")
    assert prod_not_tmp.evaluate(artifact("alias", "production"))
    assert not prod_not_tmp.evaluate(artifact("alias", "prod-tmp"))
    either = (alias == "staging") | (alias == "production")
    assert either.evaluate(artifact("alias", "staging"))
    assert not either.evaluate(artifact("alias", "latest"))
    neither = ~either
    assert isinstance(neither, Nor)
    assert neither.evaluate(artifact("alias", "latest"))
    assert not neither.evaluate(artifact("alias", "production"))


def test_chains_flatten_and_negations_simplify_as_in_wandb() -> None:
    a, b, c = alias == "a", alias == "b", alias == "c"
    assert a & b & c == And((a, b, c))
    assert a | b | c == Or((a, b, c))
    assert ~~(a | b) == Or((a, b))
    assert ~(alias == "x") == (alias != "x")
    assert ~alias.in_(["x"]) == alias.not_in(["x"])
    assert ~alias.exists() == alias.exists(False)
    regex = alias.matches_regex("x")
    assert ~regex == Not(regex)
    assert ~~regex == regex


def test_field_operators_build_expressions_not_bools() -> None:
    built = alias == "prod"
    assert isinstance(built, Compare)
    assert built.op is Operator.EQ
    with pytest.raises(TypeError):
        hash(alias)


# -- JSON: W&B's MongoDB-style form ----------------------------------------------------


def test_to_json_is_wandbs_mongo_form() -> None:
    assert (alias == "prod").to_json() == {"alias": {"$eq": "prod"}}
    assert (RunEvent.name.contains("sweep")).to_json() == {"display_name": {"$contains": "sweep"}}
    combined = alias.matches_regex("^prod") & tag.in_(["a", "b"]) | ~alias.exists()
    assert combined.to_json() == {
        "$or": [
            {"$and": [{"alias": {"$regex": "^prod"}}, {"tag": {"$in": ["a", "b"]}}]},
            {"alias": {"$exists": False}},
        ]
    }
    assert (~alias.contains("tmp")).to_json() == {"$not": {"alias": {"$contains": "tmp"}}}
    assert (~((alias == "a") | (alias == "b"))).to_json() == {
        "$nor": [{"alias": {"$eq": "a"}}, {"alias": {"$eq": "b"}}]
    }


EXPRESSIONS = [
    alias == "production",
    alias != "staging",
    alias.matches_regex(r"^v\d+$"),
    alias.contains("prod"),
    alias.in_(["a", "b"]),
    alias.not_in(["c"]),
    alias.exists(False),
    (alias == "a") & (tag == "b"),
    (alias == "a") | (tag.contains("b")),
    ~((alias == "a") | (alias == "b")),
    ~alias.matches_regex("tmp"),
    ((alias == "a") | (alias == "b")) & ~tag.exists(),
    RunEvent.name.contains("sweep") & (RunEvent.user != "bot"),
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_json_round_trip(expression: Expression) -> None:
    text = json.dumps(expression.to_json())
    assert expression_from_json(json.loads(text)) == expression


def test_reads_what_the_wandb_sdk_sends() -> None:
    # artifact event filters arrive wrapped: {"$or": [{"$and": [<filter>]}]}
    wrapped = {"$or": [{"$and": [{"alias": {"$eq": "prod"}}]}]}
    assert expression_from_json(wrapped) == (alias == "prod")
    # "no filter" is an empty $and: every event
    assert to_expression({"$or": [{"$and": []}]}) is None
    assert to_expression({"$and": []}) is None
    assert to_expression({}) is None
    # MongoDB shorthands: a plain value is $eq, several operators all hold
    assert expression_from_json({"alias": "prod"}) == (alias == "prod")
    both = expression_from_json({"alias": {"$regex": "^prod", "$ne": "prod-old"}})
    assert both == alias.matches_regex("^prod") & (alias != "prod-old")
    # a field-level $not, and W&B's run name field
    assert expression_from_json({"alias": {"$not": {"$regex": "tmp"}}}) == Not(
        alias.matches_regex("tmp")
    )
    assert expression_from_json({"display_name": {"$contains": "x"}}) == RunEvent.name.contains("x")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"alias": {"$gt": 3}}, "unknown operator"),
        ({"$xor": []}, "unknown operator"),
        ({"version": {"$eq": "v1"}}, "cannot filter on 'version'"),
        ({"alias": {"$in": "prod"}}, "list of strings"),
        ({"alias": {"$exists": "yes"}}, "true or false"),
        ({"alias": {"$eq": 3}}, "takes a string"),
        ({"$and": {"alias": "x"}}, "takes a list"),
        (["alias"], "JSON object"),
    ],
)
def test_bad_json_is_a_validation_error(document: Any, message: str) -> None:
    with pytest.raises(hw.ValidationError, match=message):
        expression_from_json(document)


def test_deep_nesting_is_refused() -> None:
    document: dict[str, Any] = {"alias": {"$eq": "x"}}
    for _ in range(40):
        document = {"$not": document}
    with pytest.raises(hw.ValidationError, match="deeper"):
        expression_from_json(document)


# -- the ReDoS guard -------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)*b", r"a*a*a*b", "(", "x" * 300])
def test_regexes_go_through_the_guard(pattern: str) -> None:
    with pytest.raises(hw.ValidationError) as caught:
        alias.matches_regex(pattern)
    assert caught.value.field == "event.filter.alias"
    with pytest.raises(hw.ValidationError) as caught:
        expression_from_json({"tag": {"$regex": pattern}})
    assert caught.value.field == "event.filter.tag"


def test_a_long_subject_is_cut_before_matching() -> None:
    long_alias = "a" * 256
    assert alias.matches_regex("a$").evaluate(artifact("alias", long_alias))


# -- filters accept them, optionally ---------------------------------------------------


@pytest.mark.parametrize(
    ("event_filter", "event"),
    [
        (hw.OnAddArtifactAlias(), artifact("alias", "anything")),
        (hw.OnAddArtifactTag(), artifact("tag", "anything")),
        (hw.OnLinkArtifact(), artifact("link", "")),
        (
            hw.OnRemoveArtifactTag(),
            hw.Event.artifact_tag_removed(
                entity=TEAM, project="p", collection="c", version="v1", tag="x"
            ),
        ),
        (
            hw.OnAddCollectionTag(),
            hw.Event.collection_tag_added(entity=TEAM, project="p", collection="c", tag="x"),
        ),
        (
            hw.OnRemoveCollectionTag(),
            hw.Event.collection_tag_removed(entity=TEAM, project="p", collection="c", tag="x"),
        ),
        (
            hw.OnCreateArtifact(),
            hw.Event.artifact_created(entity=TEAM, project="p", collection="c", version="v1"),
        ),
    ],
)
def test_no_filter_fires_on_every_such_event(event_filter: Any, event: hw.Event) -> None:
    assert event_filter.matches(event)


def test_wandb_spelling_and_hookwise_regex_both_work() -> None:
    wandb_style = hw.OnAddArtifactAlias(filter=alias.eq("prod"))
    assert wandb_style.matches(artifact("alias", "prod"))
    assert not wandb_style.matches(artifact("alias", "prod-2"))
    hookwise_style = hw.OnAddArtifactAlias(alias=r"^prod$")
    assert hookwise_style.matches(artifact("alias", "prod"))
    assert not hookwise_style.matches(artifact("alias", "prod-2"))
    # both given: both must hold
    both = hw.OnAddArtifactAlias(alias="^prod", filter=alias != "prod-old")
    assert both.matches(artifact("alias", "prod-new"))
    assert not both.matches(artifact("alias", "prod-old"))
    # the JSON form is accepted as the filter, as W&B accepts a dict
    from_json = hw.OnLinkArtifact(filter={"$or": [{"$and": [{"alias": {"$eq": "prod"}}]}]})
    assert from_json == hw.OnLinkArtifact(filter=alias == "prod")
    assert hw.OnCreateArtifact(filter={"$and": []}) == hw.OnCreateArtifact()


def test_tag_filters_take_expressions() -> None:
    added = hw.OnAddArtifactTag(filter=tag.in_(["candidate", "approved"]))
    assert added.matches(artifact("tag", "approved"))
    assert not added.matches(artifact("tag", "wip"))


def test_a_filter_must_test_the_events_fields() -> None:
    with pytest.raises(hw.ValidationError, match="display_name"):
        hw.OnAddArtifactAlias(filter=RunEvent.name == "x")
    with pytest.raises(hw.ValidationError, match="alias"):
        hw.OnRunState(run_filter=alias == "x")
    with pytest.raises(hw.ValidationError, match="filter expression"):
        hw.OnAddArtifactAlias(filter="^prod$")  # type: ignore[arg-type]


def test_run_filters_take_wandbs_run_name_expression() -> None:
    sweeps = hw.OnRunState(states=["FAILED"], run_filter=RunEvent.name.contains("sweep"))
    assert sweeps.covers_run(hw.Event.run_state(RUN, "FAILED"))
    baseline = hw.Run(entity=TEAM, project="training", id="run-2", name="baseline")
    assert not sweeps.covers_run(hw.Event.run_state(baseline, "FAILED"))
    # with today's regex and user: every one given must hold
    narrow = hw.OnRunMetric(
        hw.RunMetric("loss") > 1,
        run_name="^sweep",
        user="alice",
        run_filter=RunEvent.name != "sweep-3",
    )
    assert not narrow.covers_run(hw.Event.run_metrics(RUN, {"loss": 2.0}))
    other = attrs.evolve(RUN, id="run-4", name="sweep-4")
    assert narrow.covers_run(hw.Event.run_metrics(other, {"loss": 2.0}))


def test_run_filter_end_to_end(store: hw.Storage) -> None:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="https://hooks.example.com/a"))
    admin.create_automation(
        hw.Automation(
            name="sweep-metric",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunMetric(
                hw.RunMetric("loss") > 1, run_filter=RunEvent.name.matches_regex("^sweep")
            ),
            action=hw.SendWebhook(webhook="alerts"),
        )
    )
    with hw.Dispatcher(store, network=PUBLIC, worker=False) as dispatcher:
        baseline = hw.Run(entity=TEAM, project="training", id="run-2", name="baseline")
        assert dispatcher.handle(hw.Event.run_metrics(baseline, {"loss": 5.0})) == []
        [fired] = dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": 5.0}))
        assert fired.automation == "sweep-metric"


# -- storage: round trips, and documents written before filters were optional --------


def automation(event: Any, scope: hw.Scope | None = None) -> hw.Automation:
    return hw.Automation(
        name="a",
        scope=scope or hw.Scope.registry(TEAM, "model-registry"),
        event=event,
        action=hw.DoNothing(),
    )


@pytest.mark.parametrize(
    "event",
    [
        hw.OnAddArtifactAlias(filter=alias.matches_regex("^prod") & ~alias.contains("tmp")),
        hw.OnAddArtifactAlias(alias="^prod", filter=alias != "prod-old"),
        hw.OnAddArtifactAlias(),
        hw.OnLinkArtifact(filter=(alias == "a") | (alias == "b")),
        hw.OnCreateArtifact(filter=tag.exists(False)),
        hw.OnAddArtifactTag(filter=tag.not_in(["wip"])),
        hw.OnRemoveCollectionTag(),
    ],
)
def test_artifact_filters_round_trip_through_the_codec(event: Any) -> None:
    stored = automation(event)
    text = codec.automation_to_json(stored)
    assert codec.automation_from_json(text) == stored


def test_run_filters_round_trip_through_the_codec() -> None:
    scope = hw.Scope.project(TEAM, "training")
    for event in (
        hw.OnRunState(states=["RUNNING", "FAILED"], per_state=True),
        hw.OnRunState(run_filter=RunEvent.name.contains("sweep")),
        hw.OnRunMetric(hw.RunMetric("loss") > 1, run_filter=RunEvent.user.in_(["alice"])),
    ):
        stored = automation(event, scope)
        assert codec.automation_from_json(codec.automation_to_json(stored)) == stored


def test_the_stored_filter_is_wandbs_json() -> None:
    event = hw.OnAddArtifactAlias(filter=alias.matches_regex("^prod") & (tag == "ok"))
    document = json.loads(codec.automation_to_json(automation(event)))
    assert document["event"] == {
        "type": "OnAddArtifactAlias",
        "alias": None,
        "filter": {"$and": [{"alias": {"$regex": "^prod"}}, {"tag": {"$eq": "ok"}}]},
    }


def test_new_fields_are_left_out_at_their_defaults() -> None:
    # so a document that uses none of them still reads in an older hookwise
    plain = json.loads(codec.automation_to_json(automation(hw.OnAddArtifactAlias("^prod$"))))
    assert plain["event"] == {"type": "OnAddArtifactAlias", "alias": "^prod$"}
    state = automation(hw.OnRunState(), hw.Scope.project(TEAM, "training"))
    assert set(json.loads(codec.automation_to_json(state))["event"]) == {
        "type",
        "states",
        "run_name",
        "user",
        "cooldown",
    }


# documents exactly as hookwise wrote them before this change
OLD_ALIAS = (
    '{"v":1,"name":"deploy","description":"","enabled":true,'
    '"scope":{"kind":"registry","entity":"ml-team","project":"model-registry","collection":null},'
    '"event":{"type":"OnAddArtifactAlias","alias":"^production$"},'
    '"action":{"type":"do_nothing"}}'
)
OLD_STATE = (
    '{"v":1,"name":"watch","description":"","enabled":true,'
    '"scope":{"kind":"project","entity":"ml-team","project":"training","collection":null},'
    '"event":{"type":"OnRunState","states":["FAILED","RUNNING"],"run_name":"^sweep",'
    '"user":null,"cooldown":86400.0},'
    '"action":{"type":"do_nothing"}}'
)


def test_documents_in_the_old_format_load_with_the_same_meaning() -> None:
    old = codec.automation_from_json(OLD_ALIAS)
    assert old.event == hw.OnAddArtifactAlias(alias="^production$")
    assert old.event.matches(artifact("alias", "production"))
    assert not old.event.matches(artifact("alias", "production-2"))
    state = codec.automation_from_json(OLD_STATE)
    assert isinstance(state.event, hw.OnRunState)
    assert state.event.run_name == "^sweep"
    assert state.event.run_filter is None
    # no per_state in the document: W&B's default, once per run (see docs/runs.md)
    assert state.event.per_state is False


def test_a_bad_stored_filter_names_the_document() -> None:
    text = OLD_ALIAS.replace('"alias":"^production$"', '"filter":{"alias":{"$regex":"(a+)+$"}}')
    with pytest.raises(hw.ValidationError) as caught:
        codec.automation_from_json(text)
    # named as a bad stored alias= regex is (event.alias)
    assert caught.value.field == "event.filter.alias"
    text = OLD_ALIAS.replace('"alias":"^production$"', '"filter":{"alias":{"$gt":"a"}}')
    with pytest.raises(hw.ValidationError) as caught:
        codec.automation_from_json(text)
    assert caught.value.field.startswith("stored event.filter")


def test_storages_keep_expressions(store: hw.Storage) -> None:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="deploy", url="https://hooks.example.com/d"))
    made = hw.Automation(
        name="deploy-prod",
        scope=hw.Scope.registry(TEAM, "model-registry"),
        event=hw.OnAddArtifactAlias(filter=alias.in_(["production", "prod"])),
        action=hw.SendWebhook(webhook="deploy"),
    )
    admin.create_automation(made)
    [back] = admin.list_automations(TEAM)
    assert back.event == made.event
    with hw.Dispatcher(store, network=PUBLIC, worker=False) as dispatcher:
        assert dispatcher.handle(artifact("alias", "staging")) == []
        assert len(dispatcher.handle(artifact("alias", "prod"))) == 1


# -- event >> action ---------------------------------------------------------------------


def test_event_rshift_action_names_an_automation() -> None:
    action = hw.SendWebhook(webhook="deploy", payload={"v": "${artifact_version}"})
    event = hw.OnAddArtifactAlias(filter=alias == "production")
    trigger = event >> action
    assert trigger == Trigger(event, action) == event.then(action)
    scope = hw.Scope.registry(TEAM, "model-registry")
    made = trigger.named("deploy-prod", scope, description=None)
    assert made == hw.Automation(name="deploy-prod", scope=scope, event=event, action=action)
    described = trigger.named("d", scope, "ships it", enabled=False)
    assert (described.description, described.enabled) == ("ships it", False)


def test_a_trigger_is_validated_when_named() -> None:
    trigger = hw.OnRunState() >> hw.DoNothing()
    with pytest.raises(hw.ValidationError, match="project"):
        trigger.named("x", hw.Scope.registry(TEAM, "model-registry"))
    with pytest.raises(hw.ValidationError, match="action"):
        (hw.OnRunState() >> "not an action").named(  # type: ignore[operator]
            "x", hw.Scope.project(TEAM, "training")
        )


# -- W&B's event type names ----------------------------------------------------------------


def test_wandb_event_type_names_are_aliases() -> None:
    assert EventType.LINK_MODEL is EventType.LINK_ARTIFACT
    assert EventType.RUN_METRIC_THRESHOLD is EventType.RUN_METRIC
    assert EventType("LINK_MODEL") is EventType.LINK_ARTIFACT  # the value W&B sends
    assert EventType("RUN_METRIC_THRESHOLD") is EventType.RUN_METRIC
    assert EventType["LINK_MODEL"] is EventType.LINK_ARTIFACT
    # rendering and iteration do not change
    assert EventType.LINK_MODEL.value == str(EventType.LINK_MODEL) == "LINK_ARTIFACT"
    assert "LINK_MODEL" not in [member.name for member in EventType]
    with pytest.raises(ValueError, match="not a valid"):
        EventType("NOPE")


# -- the run-state rate limit, as W&B --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def state_core(store: hw.Storage, event: hw.OnRunState, clock: Clock) -> Core:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="https://hooks.example.com/a"))
    admin.create_automation(
        hw.Automation(
            name="states",
            scope=hw.Scope.project(TEAM, "training"),
            event=event,
            action=hw.SendWebhook(webhook="alerts", payload={"state": "${run_state}"}),
        )
    )
    return Core(store, Settings(clock=clock, network=PUBLIC, refresh_interval=0.0))


def sent(core: Core, run: hw.Run, *states: str) -> list[int]:
    return [len(core.handle(hw.Event.run_state(run, state))) for state in states]


def test_once_per_run_whatever_the_state() -> None:
    clock = Clock()
    core = state_core(hw.MemoryStorage(), hw.OnRunState({"RUNNING", "FAILED"}), clock)
    assert sent(core, RUN, "RUNNING", "FAILED") == [1, 0]
    other = attrs.evolve(RUN, id="run-2")
    assert sent(core, other, "RUNNING") == [1]  # each run on its own
    clock.now += 24 * 3600 + 1  # the 24-hour period is over
    assert sent(core, RUN, "RUNNING", "FAILED") == [1, 0]


def test_per_state_is_an_option() -> None:
    clock = Clock()
    core = state_core(
        hw.MemoryStorage(), hw.OnRunState({"RUNNING", "FAILED"}, per_state=True), clock
    )
    assert sent(core, RUN, "RUNNING", "FAILED", "RUNNING", "FAILED") == [1, 1, 0, 0]


@pytest.mark.parametrize(
    ("per_state", "expected"), [(False, ["RUNNING"]), (True, ["FAILED", "RUNNING"])]
)
def test_rate_limit_end_to_end(
    store: hw.Storage, make_dispatcher: Any, per_state: bool, expected: list[str]
) -> None:
    """OnRunState({"RUNNING", "FAILED"}) and a run going RUNNING then FAILED:
    one request (W&B), two with per_state=True."""
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="https://hooks.example.com/a"))
    admin.create_automation(
        hw.Automation(
            name="states",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunState({"RUNNING", "FAILED"}, per_state=per_state),
            action=hw.SendWebhook(webhook="alerts", payload={"state": "${run_state}"}),
        )
    )
    requests: list[httpx.Request] = []
    dispatcher = make_dispatcher(
        store, network=PUBLIC, handler=lambda r: requests.append(r) or httpx.Response(200)
    )
    dispatcher.handle(hw.Event.run_state(RUN, "RUNNING"))
    dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))
    assert dispatcher.flush(timeout=10)
    assert sorted(json.loads(r.content)["state"] for r in requests) == expected


# -- the error branches name the field -----------------------------------------------


def test_a_field_must_be_one_of_the_known_ones() -> None:
    with pytest.raises(hw.ValidationError, match="cannot filter on 3: the fields are") as caught:
        Compare(3, Operator.EQ, "x")  # type: ignore[arg-type]
    assert caught.value.field == "event.filter"
    with pytest.raises(hw.ValidationError, match="cannot filter on 3") as caught:
        expression_from_json({3: "x"})
    assert caught.value.field == "event.filter"
    with pytest.raises(hw.ValidationError, match="cannot filter on 'version'") as caught:
        FilterField("version")
    assert caught.value.field == "field"
    assert repr(RunEvent.name) == "FilterField('display_name')"


def test_combining_with_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = (alias == "a") & "b"  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = (alias == "a") | 3  # type: ignore[operator]


def test_operands_must_be_expressions_and_not_too_many() -> None:
    for kind in (And, Or, Nor):
        with pytest.raises(hw.ValidationError, match="expected a filter expression, not 'x'"):
            kind([alias == "a", "x"])  # type: ignore[list-item]
        with pytest.raises(hw.ValidationError, match="at most 256 operands") as caught:
            kind([alias == str(i) for i in range(257)])
        assert caught.value.field == "event.filter"
        assert len(kind([alias == str(i) for i in range(256)]).items) == 256
    with pytest.raises(hw.ValidationError, match="expected a filter expression, not 3"):
        Not(3)  # type: ignore[arg-type]
    with pytest.raises(hw.ValidationError, match="at most 256 operands") as caught:
        expression_from_json({"$or": [{"alias": str(i)} for i in range(257)]})
    assert caught.value.field == "event.filter"


def test_in_takes_at_most_max_items_values() -> None:
    with pytest.raises(hw.ValidationError, match=r"\$nin takes at most 256 values") as caught:
        tag.not_in([str(i) for i in range(257)])
    assert caught.value.field == "event.filter.tag"
    with pytest.raises(hw.ValidationError, match=r"\$in takes at most 256 values") as caught:
        expression_from_json({"alias": {"$in": [str(i) for i in range(257)]}})
    assert caught.value.field == "event.filter.alias"
    assert len(alias.in_([str(i) for i in range(256)]).value) == 256


def test_a_field_needs_an_operator_and_its_not_a_bounded_depth() -> None:
    with pytest.raises(hw.ValidationError, match="expected at least one operator") as caught:
        expression_from_json({"tag": {}})
    assert caught.value.field == "event.filter.tag"
    inner: dict[str, Any] = {"$eq": "x"}
    for _ in range(20):
        inner = {"$not": inner}
    with pytest.raises(hw.ValidationError, match="nested deeper than 16") as caught:
        expression_from_json({"alias": inner}, where="stored event.filter")
    assert caught.value.field == "stored event.filter.alias"
    # an even number of field-level $not within the bound reads as the comparison
    shallow: dict[str, Any] = {"$eq": "x"}
    for _ in range(4):
        shallow = {"$not": shallow}
    assert expression_from_json({"alias": shallow}) == (alias == "x")


def test_negating_a_combination_and_a_nor() -> None:
    both = alias.contains("prod") & (alias != "production")
    negated = ~both
    assert negated == Not(both)
    assert negated.to_json() == {
        "$not": {"$and": [{"alias": {"$contains": "prod"}}, {"alias": {"$ne": "production"}}]}
    }
    assert expression_from_json(negated.to_json()) == negated
    assert not negated.evaluate(artifact("alias", "pre-prod"))
    assert negated.evaluate(artifact("alias", "production"))
    assert negated.evaluate(artifact("alias", "staging"))
    nor = ~((alias == "a") | (tag == "b"))
    assert isinstance(nor, Nor)
    assert nor.fields() == frozenset({"alias", "tag"})
    assert expression_from_json({"$nor": [{"alias": "a"}, {"tag": "b"}]}) == nor
    assert ~nor == Or((alias == "a", tag == "b"))
    with pytest.raises(hw.ValidationError, match="artifact event filters can test"):
        hw.OnAddArtifactAlias(filter=Nor([RunEvent.user == "alice"]))


def test_to_expression_refuses_what_is_not_a_filter() -> None:
    with pytest.raises(hw.ValidationError, match="not str") as caught:
        to_expression("alias == 'prod'")
    assert caught.value.field == "event.filter"
    assert to_expression(alias == "a") == (alias == "a")
    assert to_expression(And(())) is None


# -- run and artifact filters: the remaining branches -----------------------------------


def test_unlink_filters_and_run_filters_on_other_events() -> None:
    common = {"entity": TEAM, "project": "model-registry", "collection": "churn", "version": "v3"}
    unlinked = hw.Event.artifact_unlinked(**common)  # carries no alias
    assert hw.OnUnlinkArtifact().matches(unlinked)
    assert hw.OnUnlinkArtifact(filter=alias.exists(False)).matches(unlinked)
    assert not hw.OnUnlinkArtifact(filter=alias == "old").matches(unlinked)
    # a run filter never covers an event without a run
    assert not hw.OnRunState().covers_run(artifact())
    assert hw.OnRunState().covers_run(hw.Event.run_state(RUN, "FAILED"))


def test_run_state_options_are_checked() -> None:
    import datetime

    assert hw.OnRunState("FAILED").states == frozenset({hw.RunState.FAILED})
    assert hw.OnRunState(cooldown=datetime.timedelta(minutes=2)).cooldown == 120.0
    with pytest.raises(hw.ValidationError, match="must be True or False, not 'yes'") as caught:
        hw.OnRunState(per_state="yes")  # type: ignore[arg-type]
    assert caught.value.field == "event.per_state"
    with pytest.raises(hw.ValidationError) as caught:
        hw.OnRunState(cooldown=datetime.timedelta(seconds=-1))
    assert caught.value.field == "event.cooldown"


STORED_STATE = json.loads(OLD_STATE)
STORED_ALIAS = json.loads(OLD_ALIAS)


def stored(base: dict[str, Any], **event: Any) -> str:
    return json.dumps({**base, "event": {**base["event"], **event}})


@pytest.mark.parametrize(
    ("base", "event", "field"),
    [
        (STORED_ALIAS, {"filter": "production"}, "stored event.filter"),
        (STORED_ALIAS, {"filter": ["production"]}, "stored event.filter"),
        (STORED_ALIAS, {"filter": 3}, "stored event.filter"),
        (STORED_ALIAS, {"filter": True}, "stored event.filter"),
        (STORED_STATE, {"run_filter": "^sweep"}, "stored event.run_filter"),
        (STORED_STATE, {"run_filter": [{"display_name": "x"}]}, "stored event.run_filter"),
        (STORED_STATE, {"run_filter": {"display_name": {"$gt": 1}}}, "stored event.run_filter"),
    ],
)
def test_a_stored_filter_of_the_wrong_type_names_the_document(
    base: dict[str, Any], event: dict[str, Any], field: str
) -> None:
    with pytest.raises(hw.ValidationError) as caught:
        codec.automation_from_json(stored(base, **event))
    assert caught.value.field.startswith(field)


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        # values of the right JSON shape that the filter refuses: named as the
        # filter names them, as a bad stored alias= regex is (event.alias)
        ({"per_state": "yes"}, "event.per_state", "must be True or False, not 'yes'"),
        ({"per_state": 1}, "event.per_state", "must be True or False, not 1"),
        ({"per_state": None}, "event.per_state", "must be True or False, not None"),
        ({"states": []}, "event.states", "at least one state"),
        ({"cooldown": "1"}, "event.cooldown", "non-negative"),
    ],
)
def test_a_stored_run_state_option_of_the_wrong_type_is_refused(
    event: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(hw.ValidationError, match=message) as caught:
        codec.automation_from_json(stored(STORED_STATE, **event))
    assert caught.value.field == field


def test_a_stored_filter_on_the_wrong_fields_is_refused() -> None:
    with pytest.raises(hw.ValidationError, match="artifact event filters can test"):
        codec.automation_from_json(stored(STORED_ALIAS, filter={"display_name": "x"}))
    with pytest.raises(hw.ValidationError, match="run event filters can test"):
        codec.automation_from_json(stored(STORED_STATE, run_filter={"alias": "x"}))
    # null and {} are W&B's "no filter"
    assert codec.automation_from_json(stored(STORED_ALIAS, filter=None)).event.filter is None
    assert codec.automation_from_json(stored(STORED_ALIAS, filter={})).event.filter is None
    state = codec.automation_from_json(stored(STORED_STATE, per_state=True, run_filter=None))
    assert state.event.per_state is True
    assert state.event.run_filter is None
