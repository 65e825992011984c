"""The automation index: an event reaches only the filters of its own
(event type, entity, project); nothing else is even asked."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import hookwise as hw
from hookwise.core import Core
from hookwise.index import Index, Match, Target
from hookwise.settings import Settings
from hookwise.tracker import RunTracker

TEAM = "ml-team"
REGISTRY = "model-registry"


class CountingAlias(hw.OnAddArtifactAlias):
    """An alias filter that records every event it is asked about."""

    __slots__ = ()
    seen: ClassVar[list[hw.Event]] = []

    def matches(self, event: hw.Event) -> bool:
        CountingAlias.seen.append(event)
        return super().matches(event)


class CountingRunState(hw.OnRunState):
    """A run-state filter that records every event it is asked about."""

    __slots__ = ()
    seen: ClassVar[list[hw.Event]] = []

    def covers_run(self, event: hw.Event) -> bool:
        CountingRunState.seen.append(event)
        return super().covers_run(event)


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    CountingAlias.seen.clear()
    CountingRunState.seen.clear()


def hook(team: str = TEAM, name: str = "hook") -> hw.Webhook:
    return hw.Webhook(team=team, name=name, url="https://example.com/hook")


def automation(
    name: str = "deploy",
    *,
    scope: hw.Scope | None = None,
    event: Any = None,
    action: Any = None,
    enabled: bool = True,
) -> hw.Automation:
    return hw.Automation(
        name=name,
        scope=scope if scope is not None else hw.Scope.registry(TEAM, REGISTRY),
        event=event if event is not None else CountingAlias(alias="^production$"),
        action=action if action is not None else hw.SendWebhook(webhook="hook"),
        enabled=enabled,
    )


def index(*automations: hw.Automation, webhooks: list[hw.Webhook] | None = None) -> Index:
    hooks = webhooks if webhooks is not None else [hook()]
    return Index.build(automations, {(w.team, w.name): w for w in hooks}, revision=1)


def alias_event(**overrides: Any) -> hw.Event:
    fields: dict[str, Any] = {
        "entity": TEAM,
        "project": REGISTRY,
        "collection": "churn",
        "version": "v12",
        "alias": "production",
    }
    fields.update(overrides)
    return hw.Event.artifact_alias_added(**fields)


def names(matches: list[Match]) -> list[str]:
    return [m.target.automation.name for m in matches]


def test_a_matching_event_fires_with_its_webhook_and_template() -> None:
    found = index(automation()).match(alias_event(), RunTracker())
    assert names(found) == ["deploy"]
    (match,) = found
    assert match.event_type is hw.EventType.ADD_ARTIFACT_ALIAS
    assert match.target.webhook == hook()
    assert match.target.template == hw.SendWebhook(webhook="hook").payload
    assert len(CountingAlias.seen) == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            hw.Event.artifact_tag_added(
                entity=TEAM, project=REGISTRY, collection="churn", version="v1", tag="production"
            ),
            id="another-type",
        ),
        pytest.param(
            hw.Event.artifact_linked(
                entity=TEAM, project=REGISTRY, collection="churn", version="v1", alias="production"
            ),
            id="another-type-with-the-alias",
        ),
        pytest.param(alias_event(project="other-registry"), id="another-project"),
        pytest.param(alias_event(entity="other-team"), id="another-entity"),
        pytest.param(
            hw.Event.run_state(hw.Run(entity=TEAM, project=REGISTRY, id="r1"), hw.RunState.FAILED),
            id="a-run-event",
        ),
    ],
)
def test_events_of_another_key_never_reach_the_filter(event: hw.Event) -> None:
    found = index(automation()).match(event, RunTracker())
    assert found == []
    assert CountingAlias.seen == []


def test_no_scan_many_automations_elsewhere_are_never_asked() -> None:
    elsewhere = [
        automation(f"a{i}", scope=hw.Scope.registry(TEAM, f"registry-{i}")) for i in range(200)
    ]
    other_team = [
        automation(f"b{i}", scope=hw.Scope.registry(f"team-{i}", REGISTRY), action=hw.DoNothing())
        for i in range(200)
    ]
    here = automation("here")
    built = index(*elsewhere, *other_team, here)
    assert built.size == 401
    assert names(built.match(alias_event(), RunTracker())) == ["here"]
    assert len(CountingAlias.seen) == 1


def test_the_filter_decides_within_its_key() -> None:
    built = index(automation())
    assert built.match(alias_event(alias="staging"), RunTracker()) == []
    assert [e.alias for e in CountingAlias.seen] == ["staging"]


def test_collection_scope_fires_for_its_collection_only() -> None:
    built = index(automation(scope=hw.Scope.collection(TEAM, REGISTRY, "churn")))
    assert names(built.match(alias_event(collection="churn"), RunTracker())) == ["deploy"]
    assert built.match(alias_event(collection="fraud"), RunTracker()) == []


def test_registry_scope_covers_collections_made_later() -> None:
    built = index(automation())
    for collection in ("churn", "fraud", "brand-new"):
        assert names(built.match(alias_event(collection=collection), RunTracker())) == ["deploy"]


def test_every_automation_of_the_key_is_tested() -> None:
    built = index(
        automation("exact"),
        automation("loose", event=CountingAlias(alias="prod")),
        automation("never", event=CountingAlias(alias="^staging$")),
        automation("noop", action=hw.DoNothing()),
    )
    assert sorted(names(built.match(alias_event(), RunTracker()))) == ["exact", "loose", "noop"]
    assert len(CountingAlias.seen) == 4


def test_disabled_automations_are_excluded() -> None:
    built = index(automation("off", enabled=False), automation("on"))
    assert built.size == 1
    assert names(built.match(alias_event(), RunTracker())) == ["on"]
    assert len(CountingAlias.seen) == 1  # the disabled one is never asked
    only_off = index(automation("off", enabled=False))
    assert only_off.size == 0
    assert only_off.match(alias_event(), RunTracker()) == []
    assert len(CountingAlias.seen) == 1


def test_automations_whose_webhook_is_missing_are_left_out() -> None:
    built = index(
        automation("gone", action=hw.SendWebhook(webhook="deleted-hook")),
        automation("present"),
        automation("other-teams-hook", action=hw.SendWebhook(webhook="theirs")),
        automation("noop", action=hw.DoNothing()),
        webhooks=[hook(), hook(team="other-team", name="theirs")],
    )
    assert built.size == 2
    found = built.match(alias_event(), RunTracker())
    assert sorted(names(found)) == ["noop", "present"]
    noop = next(m for m in found if m.target.automation.name == "noop")
    assert noop.target.webhook is None
    assert noop.target.template is None


def test_index_keeps_its_revision() -> None:
    assert Index.build([], {}, revision=42).revision == 42
    assert Index([Target(automation())], revision=7).size == 1


# -- run events ----------------------------------------------------------------


def run_automation(project: str = "churn-training", **kwargs: Any) -> hw.Automation:
    return automation(
        "on-failure",
        scope=hw.Scope.project(TEAM, project),
        event=CountingRunState(states={"FAILED"}, **kwargs),
    )


def run_event(
    state: str = "FAILED", *, entity: str = TEAM, project: str = "churn-training"
) -> hw.Event:
    return hw.Event.run_state(hw.Run(entity=entity, project=project, id="r1", user="alice"), state)


def test_run_state_fires_in_its_project() -> None:
    found = index(run_automation()).match(run_event(), RunTracker())
    assert names(found) == ["on-failure"]
    assert found[0].event_type is hw.EventType.RUN_STATE
    assert len(CountingRunState.seen) == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(run_event(project="another-project"), id="another-project"),
        pytest.param(run_event(entity="another-team"), id="another-entity"),
        pytest.param(
            hw.Event.run_metrics(
                hw.Run(entity=TEAM, project="churn-training", id="r1"), {"loss": 1.0}
            ),
            id="another-type",
        ),
        pytest.param(
            hw.Event.artifact_created(
                entity=TEAM, project="churn-training", collection="c", version="v1"
            ),
            id="an-artifact-event",
        ),
    ],
)
def test_run_events_of_another_key_never_reach_the_run_filter(event: hw.Event) -> None:
    assert index(run_automation()).match(event, RunTracker()) == []
    assert CountingRunState.seen == []


def test_run_metrics_of_an_unwatched_project_leave_the_tracker_untouched() -> None:
    watched = automation(
        "loss-high",
        scope=hw.Scope.project(TEAM, "churn-training"),
        event=hw.OnRunMetric(hw.MetricThreshold("loss", 0.5)),
    )
    built = index(watched)
    tracker = RunTracker()
    elsewhere = hw.Run(entity=TEAM, project="another-project", id="r1")
    assert built.match(hw.Event.run_metrics(elsewhere, {"loss": 9.0}), tracker) == []
    assert len(tracker) == 0
    here = hw.Run(entity=TEAM, project="churn-training", id="r1")
    found = built.match(hw.Event.run_metrics(here, {"loss": 9.0}), tracker)
    assert names(found) == ["loss-high"]
    assert found[0].values["metric_name"] == "loss"
    assert len(tracker) == 1


def test_disabled_run_automations_are_excluded() -> None:
    off = hw.Automation(
        name="off",
        scope=hw.Scope.project(TEAM, "churn-training"),
        event=CountingRunState(states={"FAILED"}),
        action=hw.DoNothing(),
        enabled=False,
    )
    assert index(off).match(run_event(), RunTracker()) == []
    assert CountingRunState.seen == []


# -- through the dispatcher core ------------------------------------------------


def test_core_matches_through_the_index_of_its_storage() -> None:
    storage = hw.MemoryStorage()
    storage.create_webhook(hook())
    storage.create_automation(automation())
    storage.create_automation(automation("elsewhere", scope=hw.Scope.registry(TEAM, "other")))
    core = Core(storage, Settings())
    assert names(core.match(alias_event())) == ["deploy"]
    assert len(CountingAlias.seen) == 1
    # a new automation shows once the storage revision moves
    storage.create_automation(automation("second"))
    core.refresh()
    assert sorted(names(core.match(alias_event()))) == ["deploy", "second"]
