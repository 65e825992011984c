"""Importing W&B automations: an export written in the W&B SDK's JSON
(tests/data, from the SDK's docs and docstrings) becomes hookwise
automations that fire on the same events as in W&B."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hookwise as hw
from hookwise.cli import main
from hookwise.compat import wandb
from tests.conftest import PUBLIC

DATA = Path(__file__).parent / "data"
EXPORT = DATA / "wandb_export.json"
SAVED = DATA / "wandb_saved.json"
TEAM = "ml-team"
REGISTRY = "wandb-registry-model"
TRAINING = "churn-training"

# W&B's GraphQL ids, as in the export
REG = "UHJvamVjdDp2MTo0MjQyNDI="
TRAIN = "UHJvamVjdDp2MToxMzEzMTM="
CHURN = "QXJ0aWZhY3RDb2xsZWN0aW9uOjk4NzY="
RAW = "QXJ0aWZhY3RDb2xsZWN0aW9uOjU0MzI="
HOOK = "SW50ZWdyYXRpb246MTAx"
SLACK = "SW50ZWdyYXRpb246MTAy"

SCOPES = {
    REG: hw.Scope.registry(TEAM, REGISTRY),
    TRAIN: hw.Scope.project(TEAM, TRAINING),
    CHURN: hw.Scope.collection(TEAM, REGISTRY, "churn"),
    RAW: hw.Scope.collection(TEAM, "churn-data", "raw-events"),
}
INTEGRATIONS = {HOOK: "github-dispatch", SLACK: "SLACK_ALERTS"}


def setup_store(store: hw.Storage) -> hw.Admin:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value="ghp_token-1234567890"))
    admin.create_secret(
        hw.Secret(team=TEAM, name="SLACK_ALERTS", value="https://hooks.slack.com/services/T0/B0/x")
    )
    admin.create_webhook(
        hw.Webhook(
            team=TEAM,
            name="github-dispatch",
            url="https://api.github.com/repos/acme/models/dispatches",
            access_token="GITHUB_TOKEN",
        )
    )
    return admin


@pytest.fixture
def imported() -> Iterator[tuple[hw.Storage, list[wandb.Imported]]]:
    store = hw.MemoryStorage(key=hw.SecretKey.generate())
    admin = setup_store(store)
    converted = wandb.convert(wandb.load(EXPORT), integrations=INTEGRATIONS, scopes=SCOPES)
    yield store, wandb.import_automations(admin, converted)
    store.close()


def by_name(results: list[wandb.Imported]) -> dict[str, wandb.Imported]:
    return {r.source: r for r in results}


def fired(dispatcher: hw.Dispatcher, event: hw.Event) -> set[str]:
    return {d.automation for d in dispatcher.handle(event)}


def alias(name: str, collection: str = "churn") -> hw.Event:
    return hw.Event.artifact_alias_added(
        entity=TEAM, project=REGISTRY, collection=collection, version="v12", alias=name, author="a"
    )


def run(name: str) -> hw.Run:
    return hw.Run(entity=TEAM, project=TRAINING, id=f"id-{name}", name=name, user="alice")


def series(
    dispatcher: hw.Dispatcher, r: hw.Run, metric: str, values: list[float]
) -> list[set[str]]:
    return [
        fired(dispatcher, hw.Event.run_metrics(r, {metric: v}, step=i))
        for i, v in enumerate(values)
    ]


def test_export_carries_over_with_a_note_for_what_does_not(
    imported: tuple[hw.Storage, list[wandb.Imported]],
) -> None:
    store, results = imported
    assert len(results) == 12
    done = by_name(results)
    assert all(r.created for n, r in done.items() if n != "queue-evaluation")
    assert [r.source for r in results if r.notes] == ["queue-evaluation"]
    assert done["queue-evaluation"].automation is None
    assert "QUEUE_JOB has no hookwise counterpart" in done["queue-evaluation"].notes[0]
    assert len(store.list_automations(TEAM)) == 11

    deploy = hw.Admin(store).get_automation(TEAM, "deploy-on-production")
    assert deploy.description == "Deploy the churn model when it is promoted"
    assert deploy.scope == SCOPES[CHURN]
    assert isinstance(deploy.action, hw.SendWebhook)
    assert deploy.action.webhook == "github-dispatch"
    paused = hw.Admin(store).get_automation(TEAM, "paused-finished-or-crashed")
    assert paused.enabled is False
    assert isinstance(paused.event, hw.OnRunState)
    assert paused.event.states == {hw.RunState.FINISHED, hw.RunState.FAILED}  # CRASHED is FAILED
    failed = hw.Admin(store).get_automation(TEAM, "run-failed")
    assert failed.action == hw.SendNotification(
        "SLACK_ALERTS", "Run failed", "A training run failed or crashed", hw.Severity.ERROR
    )


def test_artifact_automations_fire_where_wandb_fires(
    imported: tuple[hw.Storage, list[wandb.Imported]],
) -> None:
    store, _ = imported
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as d:
        # $eq on the collection scope; $ne & $not $regex on the registry
        assert fired(d, alias("production")) == {"deploy-on-production", "any-alias-but-candidates"}
        assert fired(d, alias("production", "fraud")) == {"any-alias-but-candidates"}
        # $regex is searched, as W&B's backend does
        assert fired(d, alias("staging-v7")) == {"staging-candidates", "any-alias-but-candidates"}
        assert fired(d, alias("staging-vX")) == {"any-alias-but-candidates"}
        assert fired(d, alias("candidate")) == set()
        assert fired(d, alias("tmp-7")) == set()
        # no filter: every link; CREATE_ARTIFACT on its collection only
        linked = hw.Event.artifact_linked(
            entity=TEAM, project=REGISTRY, collection="fraud", version="v1", author="a"
        )
        assert fired(d, linked) == {"validate-new-links"}
        created = {
            c: hw.Event.artifact_created(
                entity=TEAM, project="churn-data", collection=c, version="v3", author="a"
            )
            for c in ("raw-events", "features")
        }
        assert fired(d, created["raw-events"]) == {"retrain-on-new-data"}
        assert fired(d, created["features"]) == set()


def test_the_payload_renders_as_in_wandb(
    imported: tuple[hw.Storage, list[wandb.Imported]],
) -> None:
    store, _ = imported
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as d:
        [delivery] = [x for x in d.handle(alias("production")) if x.automation.startswith("deploy")]
    body = json.loads(delivery.display)  # the body, secrets shown as placeholders (none here)
    assert body == {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "event_author": "a",
            "artifact_version": "v12",
            "artifact_version_string": f"{TEAM}/{REGISTRY}/churn:v12",
            "artifact_collection_name": "churn",
            "project_name": REGISTRY,
            "entity_name": TEAM,
        },
    }


def test_run_automations_fire_on_the_same_series(
    imported: tuple[hw.Storage, list[wandb.Imported]],
) -> None:
    store, _ = imported
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as d:
        # mean of the last 5 losses > 0.5: (0.2+0.3+0.4+0.5+1.5)/5 = 0.58 at the 6th value;
        # only runs whose name contains "sweep"
        losses = [0.1, 0.2, 0.3, 0.4, 0.5, 1.5]
        assert series(d, run("lr-sweep-3"), "loss", losses) == [set()] * 5 + [{"loss-too-high"}]
        assert series(d, run("baseline"), "loss", losses) == [set()] * 6
        # z-score of the newest loss against the 10 before it, either way, >= 3
        calm = [0.40, 0.42] * 5
        assert series(d, run("spiky"), "loss", [*calm, 0.9]) == [set()] * 10 + [{"loss-spike"}]
        # mean acc of the last 3 against the 3 before, a 10% relative drop:
        # 7th: (.9+.9+.7)/3 = .833 vs .9 is -7.4%; 8th: .767 vs .9 is -14.8%
        acc = [0.9] * 6 + [0.7, 0.7]
        assert series(d, run("dropping"), "acc", acc) == [set()] * 7 + [{"accuracy-drop"}]
        # the MAX of the last 5 against the MAX of the 5 before rose by 0.05 or more
        best = [0.8] * 10 + [0.86]
        assert series(d, run("improving"), "acc", best) == [set()] * 10 + [{"best-accuracy-jump"}]
        # run states: FAILED (or CRASHED) fires; the paused and the queue one never do
        r = run("lr-sweep-3")
        assert fired(d, hw.Event.run_state(r, hw.RunState.RUNNING)) == set()
        assert fired(d, hw.Event.run_state(r, "CRASHED")) == {"run-failed"}
        assert fired(d, hw.Event.run_state(run("lr-2"), "FINISHED")) == set()


def test_saved_automations_as_the_api_returns_them() -> None:
    store = hw.MemoryStorage(key=hw.SecretKey.generate())
    admin = setup_store(store)
    scopes = wandb.scope_table({"churn": SCOPES[CHURN]}, entity=TEAM)  # by name
    converted = wandb.convert(wandb.load(SAVED), integrations=INTEGRATIONS, scopes=scopes)
    results = wandb.import_automations(admin, converted)
    assert [(r.source, r.created, r.notes) for r in results] == [
        ("prod-alias-saved", True, ()),
        ("training-loss-spike-saved", True, ()),
    ]
    spike = admin.get_automation(TEAM, "training-loss-spike-saved")
    assert spike.scope == hw.Scope.project(TEAM, TRAINING)
    assert spike.description == "z-score alert"
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as d:
        assert fired(d, alias("prod")) == {"prod-alias-saved"}
        assert fired(d, alias("production")) == {"prod-alias-saved"}
        assert fired(d, alias("prod-2")) == set()  # $in is exact
        calm = [0.40, 0.42] * 5
        assert series(d, run("lr-1"), "loss", [*calm, 0.1]) == [set()] * 11  # INCREASE only
        assert series(d, run("lr-2"), "loss", [*calm, 0.9])[-1] == {"training-loss-spike-saved"}
        assert series(d, run("other"), "loss", [*calm, 0.9])[-1] == set()  # run filter ^lr-
    store.close()


def raw_alias_automation(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "a",
        "triggeringEventType": "ADD_ARTIFACT_ALIAS",
        "scopeType": "PROJECT",
        "scopeID": REG,
        "eventFilter": json.dumps({"$or": [{"$and": [{"alias": {"$eq": "prod"}}]}]}),
        "triggeredActionType": "GENERIC_WEBHOOK",
        "triggeredActionConfig": {
            "genericWebhookActionInput": {"integrationID": HOOK, "requestPayload": "{}"}
        },
        "enabled": True,
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        ({"scopeID": "elsewhere"}, "has no hookwise scope"),
        (
            {"triggeredActionConfig": {"genericWebhookActionInput": {"integrationID": "x"}}},
            "integration 'x' is not mapped",
        ),
        ({"triggeringEventType": "SOMETHING_NEW"}, "SOMETHING_NEW has no hookwise counterpart"),
        ({"eventFilter": json.dumps({"version": {"$eq": "v1"}})}, "cannot be expressed"),
        ({"eventFilter": json.dumps({"alias": {"$regex": "(a+)+$"}})}, "backtrack"),
        ({"eventFilter": "{not json"}, "not valid JSON"),
        (
            {
                "triggeredActionConfig": {
                    "genericWebhookActionInput": {
                        "integrationID": HOOK,
                        # a placeholder outside a JSON string
                        "requestPayload": '{"n": ${metric_value}}',
                    }
                }
            },
            "request payload",
        ),
        ({"name": ""}, "refused by hookwise: name"),
    ],
)
def test_what_cannot_carry_over_is_said_never_dropped(changes: dict[str, Any], note: str) -> None:
    [result] = wandb.convert(
        [raw_alias_automation(**changes)], integrations=INTEGRATIONS, scopes=SCOPES
    )
    assert result.automation is None
    assert note in result.notes[-1]


def test_fields_hookwise_does_not_know_are_noted() -> None:
    run_filter = {
        "run_filter": json.dumps({"$and": []}),
        "run_metric_filter": {
            "threshold_filter": {"name": "loss", "cmp_op": "$lt", "threshold": 1, "color": "red"}
        },
    }
    raw = raw_alias_automation(
        triggeringEventType="RUN_METRIC",
        scopeID=TRAIN,
        eventFilter=json.dumps(run_filter),
        labels=["x"],
        triggeredActionType="NOTIFICATION",
        triggeredActionConfig={"notificationActionInput": {"integrationID": SLACK}},
    )
    [result] = wandb.convert([raw], integrations=INTEGRATIONS, scopes=SCOPES)
    assert result.automation is not None
    assert isinstance(result.automation.event, hw.OnRunMetric)
    assert result.automation.event.condition == hw.MetricThreshold("loss", 1, op="<")
    assert result.notes == (
        "field 'labels' is not part of a W&B automation hookwise knows: ignored",
        "threshold_filter.color is unknown to hookwise: ignored",
        "the W&B notification has no title; hookwise needs one: 'a'",
    )


def test_bad_input_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(wandb.WandbFormatError, match="not a W&B automation"):
        wandb.read_automations([{"name": "x"}])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(wandb.WandbFormatError, match="is not JSON"):
        wandb.load(tmp_path / "bad.json")
    with pytest.raises(wandb.WandbFormatError, match="collection:ENTITY"):
        wandb.parse_scope("team/project")
    assert wandb.parse_scope("collection:t/p/c") == hw.Scope.collection("t", "p", "c")
    graphql = {"input": raw_alias_automation()}  # createFilterTrigger's variables
    assert wandb.read_automations(graphql) == [raw_alias_automation()]


# -- the command -------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    path = str(tmp_path / "h.db")
    with hw.SQLiteStorage(path) as store:
        setup_store(store)
    return path


def cli_args(db: str, *extra: str) -> list[str]:
    args = ["import-wandb", str(EXPORT), "--db", db]
    args += ["--map", f"{HOOK}=github-dispatch", "--map", f"{SLACK}=SLACK_ALERTS"]
    args += ["--scope", f"{REG}=registry:{TEAM}/{REGISTRY}"]
    args += ["--scope", f"{TRAIN}=project:{TEAM}/{TRAINING}"]
    args += ["--scope", f"{CHURN}=collection:{TEAM}/{REGISTRY}/churn"]
    return [*args, *extra]


def test_cli_imports_and_reports(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    # the raw-events collection is not mapped: that one, and the queue job, stay behind
    assert main(cli_args(db, "--dry-run")) == 1
    out = capsys.readouterr().out
    assert (
        "would create: deploy-on-production  (collection ml-team/wandb-registry-model/churn" in out
    )
    assert "not carried over: retrain-on-new-data" in out
    assert "10 of 12 would create, 2 with notes" in out
    with hw.SQLiteStorage(db) as store:
        assert store.list_automations(TEAM) == []  # a dry run stores nothing

    assert main(cli_args(db, "--scope", f"{RAW}=collection:{TEAM}/churn-data/raw-events")) == 1
    out = capsys.readouterr().out
    assert (
        "created: run-failed  (project ml-team/churn-training: OnRunState -> SendNotification)"
        in out
    )
    assert "not carried over: queue-evaluation\n  - the W&B action QUEUE_JOB" in out
    assert "11 of 12 created, 1 with notes" in out
    with hw.SQLiteStorage(db) as store:
        assert len(store.list_automations(TEAM)) == 11

    # again: every name is taken now, and each refusal is a note
    assert main(cli_args(db)) == 1
    assert "already exists" in capsys.readouterr().out


def test_cli_exit_codes(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(raw_alias_automation()))
    args = ["import-wandb", str(one), "--db", db, "--map", f"{HOOK}=github-dispatch"]
    assert main([*args, "--scope", f"{REG}=registry:{TEAM}/{REGISTRY}"]) == 0
    assert "1 of 1 created, 0 with notes" in capsys.readouterr().out
    assert main([*args, "--map", "no-equals-sign"]) == 2
    assert "--map" in capsys.readouterr().err
    assert main([*args, "--scope", f"{REG}=somewhere"]) == 2
    assert main(["import-wandb", str(tmp_path / "missing.json"), "--db", db]) == 2
    assert "cannot read" in capsys.readouterr().err


# -- bad input shapes, unknown fields, unmapped parts ---------------------------------


def convert_one(raw: dict[str, Any], scopes: wandb.ScopeMap = SCOPES) -> wandb.Imported:
    [result] = wandb.convert([raw], integrations=INTEGRATIONS, scopes=scopes)
    return result


def run_automation(event_type: str, event_filter: Any, **changes: Any) -> dict[str, Any]:
    return raw_alias_automation(
        triggeringEventType=event_type,
        scopeID=TRAIN,
        eventFilter=event_filter if isinstance(event_filter, str) else json.dumps(event_filter),
        triggeredActionType="NO_OP",
        triggeredActionConfig={},
        **changes,
    )


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        (raw_alias_automation(name=3), "the automation has no name"),
        (raw_alias_automation(enabled="yes"), "enabled must be true or false, not 'yes'"),
        (raw_alias_automation(eventFilter="3"), "the event filter 3 cannot be expressed"),
        (raw_alias_automation(eventFilter="[1]"), "the event filter [1] cannot be expressed"),
        # a run field on an artifact event would never match: refused, naming the field
        (
            raw_alias_automation(eventFilter=json.dumps({"display_name": "x"})),
            'the event filter {"display_name": "x"}: event.filter: artifact event filters '
            "can test alias, tag, not display_name",
        ),
        (run_automation("RUN_STATE", "[1]"), "the run event's filter is not an object"),
        (run_automation("RUN_STATE", {}), "a RUN_STATE event without run_state_filter"),
        (
            run_automation("RUN_STATE", {"run_state_filter": {"states": []}}),
            "run_state_filter.states must list at least one state",
        ),
        (
            run_automation("RUN_STATE", {"run_state_filter": {"states": {"FAILED": 1}}}),
            "run_state_filter.states must list at least one state",
        ),
        (
            run_automation("RUN_STATE", {"run_state_filter": {"states": ["ASLEEP"]}}),
            "refused by hookwise: event.states: must be RUNNING, FINISHED, FAILED",
        ),
        (
            run_automation("RUN_METRIC_CHANGE", {}),
            "a RUN_METRIC_CHANGE event without run_metric_filter.change_filter",
        ),
        (
            # the legacy metric_filter stands for a threshold only
            run_automation("RUN_METRIC_ZSCORE", {"metric_filter": {"name": "loss"}}),
            "a RUN_METRIC_ZSCORE event without run_metric_filter.zscore_filter",
        ),
        (
            run_automation("RUN_METRIC", {"run_metric_filter": {"threshold_filter": {"name": 3}}}),
            "refused by hookwise: event.condition.name",
        ),
        (
            run_automation(
                "RUN_METRIC",
                {"run_metric_filter": {"threshold_filter": {"name": "loss", "threshold": "x"}}},
            ),
            "refused by hookwise: event.condition.threshold",
        ),
        (
            raw_alias_automation(
                triggeredActionConfig={"genericWebhookActionInput": {"requestPayload": "{}"}}
            ),
            "the GENERIC_WEBHOOK action names no integration",
        ),
        (
            raw_alias_automation(
                triggeredActionType="NOTIFICATION",
                triggeredActionConfig={"notificationActionInput": {"integrationID": "nope"}},
            ),
            "W&B integration 'nope' is not mapped to a hookwise name (--map nope=NAME)",
        ),
        (
            raw_alias_automation(
                triggeredActionType="NOTIFICATION",
                triggeredActionConfig={
                    "notificationActionInput": {
                        "integrationID": SLACK,
                        "title": "t",
                        "severity": "LOUD",
                    }
                },
            ),
            "refused by hookwise: action.severity",
        ),
        # an action config that is not an object cannot be read: said, not raised
        (
            raw_alias_automation(triggeredActionConfig={"genericWebhookActionInput": "ab"}),
            "triggeredActionConfig.genericWebhookActionInput is not an object",
        ),
        (
            raw_alias_automation(triggeredActionConfig={"genericWebhookActionInput": 3}),
            "triggeredActionConfig.genericWebhookActionInput is not an object",
        ),
    ],
)
def test_bad_shapes_become_a_note_and_no_automation(raw: dict[str, Any], note: str) -> None:
    result = convert_one(raw)
    assert result.automation is None
    assert not result.complete
    assert note in result.notes[-1]


@pytest.mark.parametrize("config", ["x", [1]])
def test_an_action_config_that_is_not_an_object_is_a_note(config: Any) -> None:
    result = convert_one(raw_alias_automation(triggeredActionConfig=config))
    assert result.automation is None
    assert result.notes == ("triggeredActionConfig is not an object",)


def test_what_carries_over_with_a_note() -> None:
    legacy = convert_one(raw_alias_automation(triggeringEventType="UPDATE_ARTIFACT_ALIAS"))
    assert legacy.automation is not None
    assert isinstance(legacy.automation.event, hw.OnAddArtifactAlias)
    assert legacy.notes == (
        "UPDATE_ARTIFACT_ALIAS (a legacy W&B event) became ADD_ARTIFACT_ALIAS: "
        "it fires when a matching alias is added",
    )
    assert not legacy.complete

    bare = convert_one(
        raw_alias_automation(
            triggeredActionConfig={
                "genericWebhookActionInput": {"integrationID": HOOK},
                "noOpActionInput": None,  # the SDK sends the unused inputs as null: no note
                "fooActionInput": {},
                "notificationActionInput": {"integrationID": SLACK},
            }
        )
    )
    assert bare.automation is not None
    assert isinstance(bare.automation.action, hw.SendWebhook)
    assert bare.automation.action.webhook == "github-dispatch"
    assert bare.notes == (
        "triggeredActionConfig.fooActionInput is unknown: ignored",
        "triggeredActionConfig.notificationActionInput does not match GENERIC_WEBHOOK: ignored",
        "the W&B webhook has no request payload; hookwise sends every event variable",
    )

    complete = convert_one(raw_alias_automation())
    assert complete.complete
    assert complete.notes == ()


def test_run_filters_carry_over_with_unknown_parts_noted() -> None:
    states = convert_one(run_automation("RUN_STATE", {"run_state_filter": {"states": "FAILED"}}))
    assert states.automation is not None
    assert states.automation.event == hw.OnRunState({hw.RunState.FAILED})
    assert states.notes == ()

    # the legacy metric_filter of a RUN_METRIC event is its threshold filter
    legacy = convert_one(
        run_automation("RUN_METRIC", {"metric_filter": {"name": "loss", "threshold": 2}})
    )
    assert legacy.automation is not None
    assert legacy.automation.event == hw.OnRunMetric(hw.MetricThreshold("loss", 2, op=">"))

    zscore = convert_one(
        run_automation(
            "RUN_METRIC_ZSCORE",
            {
                "run_metric_filter": {"zscore_filter": {"name": "loss", "x": 1}, "extra": {}},
                "other": 1,
            },
        )
    )
    assert zscore.automation is not None
    assert zscore.notes == (
        "eventFilter.other is unknown to hookwise: ignored",
        "run_metric_filter.extra is unknown to hookwise: ignored",
        "zscore_filter.x is unknown to hookwise: ignored",
    )


SAVED_ONE: dict[str, Any] = {
    "name": "saved",
    "scope": {"__typename": "Project", "id": REG},
    "event": {"eventType": "ADD_ARTIFACT_ALIAS", "filter": json.dumps({"alias": "prod"})},
    "action": {
        "__typename": "GenericWebhookTriggeredAction",
        "integration": {"__typename": "GenericWebhookIntegration", "id": HOOK},
        "requestPayload": "{}",
    },
}


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        # the integration as a bare id, not the object the API returns
        (
            {"action": {**SAVED_ONE["action"], "integration": HOOK}},
            "the GENERIC_WEBHOOK action names no integration",
        ),
        ({"action": [1]}, "not a W&B automation hookwise can read: TypeError"),
        ({"scope": "project"}, "W&B scope UNKNOWN has no hookwise scope"),
        ({"scope": {"__typename": "Entity", "id": "E1"}}, "W&B scope ENTITY id='E1' has no"),
        ({"event": {"filter": "{}"}}, "the W&B event None has no hookwise counterpart"),
        ({"event": {"eventType": "ADD_ARTIFACT_ALIAS", "filter": "{"}}, "event.filter is not"),
    ],
)
def test_bad_saved_shapes_become_a_note(changes: dict[str, Any], note: str) -> None:
    assert convert_one(SAVED_ONE).complete
    result = convert_one({**SAVED_ONE, **changes})
    assert result.automation is None
    assert note in result.notes[-1]


def test_a_saved_automation_without_an_action_does_nothing() -> None:
    result = convert_one({**SAVED_ONE, "action": None, "labels": []})
    assert result.automation is not None
    assert result.automation.action == hw.DoNothing()
    assert result.notes == (
        "field 'labels' is not part of a W&B automation hookwise knows: ignored",
    )


@pytest.mark.parametrize("data", [3, "automations", None, {"automations": "x"}])
def test_input_that_holds_no_automations_is_a_format_error(data: Any) -> None:
    with pytest.raises(wandb.WandbFormatError) as caught:
        wandb.read_automations(data)
    assert isinstance(caught.value, hw.ValidationError)
    if isinstance(data, dict):  # read as one automation, which it is not
        assert caught.value.field == "automations[0]"
    else:
        assert caught.value.field == "file"
        assert "expected a W&B automation, a list of them" in str(caught.value)


def test_a_dry_run_refuses_a_name_that_is_taken() -> None:
    store = hw.MemoryStorage(key=hw.SecretKey.generate())
    admin = setup_store(store)
    converted = wandb.convert([raw_alias_automation()], integrations=INTEGRATIONS, scopes=SCOPES)
    [first] = wandb.import_automations(admin, converted, dry_run=True)
    assert first.automation is not None
    assert not first.created
    assert store.list_automations(TEAM) == []
    [made] = wandb.import_automations(admin, converted)
    assert made.created
    [again] = wandb.import_automations(admin, converted, dry_run=True)
    assert again.automation is None
    assert not again.created
    assert again.notes[-1].startswith("not created:")
    assert f"{TEAM}/a" in again.notes[-1]
    assert "already exists" in again.notes[-1]
    store.close()


def test_cli_refuses_bad_files_and_pairs(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    assert main(["import-wandb", str(not_json), "--db", db]) == 2
    assert "is not JSON" in capsys.readouterr().err
    no_automation = tmp_path / "three.json"
    no_automation.write_text("3")
    assert main(["import-wandb", str(no_automation), "--db", db]) == 2
    assert "expected a W&B automation" in capsys.readouterr().err
    one = tmp_path / "one.json"
    one.write_text(json.dumps(raw_alias_automation()))
    assert main(["import-wandb", str(one), "--db", db, "--map", "=github-dispatch"]) == 2
    assert "write --map W&B_ID=NAME" in capsys.readouterr().err
    assert main(["import-wandb", str(one), "--db", db, "--scope", f"{REG}="]) == 2
    assert "--scope" in capsys.readouterr().err
    with hw.SQLiteStorage(db) as store:
        assert store.list_automations(TEAM) == []
