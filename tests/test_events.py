"""Events: one constructor per happening, each checking its input and setting
the right type and fields; runs and run states."""

from __future__ import annotations

import copy
import pickle
import time
from types import MappingProxyType
from typing import Any

import pytest

import hookwise as hw

WHERE = {"entity": "ml-team", "project": "model-registry", "collection": "churn"}


def run(**overrides: Any) -> hw.Run:
    fields: dict[str, Any] = {
        "entity": "ml-team",
        "project": "churn-training",
        "id": "3kd9x",
        "name": "lr-sweep-3",
        "user": "alice",
    }
    fields.update(overrides)
    return hw.Run(**fields)


# -- artifact events ------------------------------------------------------------

ARTIFACT_CONSTRUCTORS = [
    (hw.Event.artifact_created, hw.EventType.CREATE_ARTIFACT, {}),
    (hw.Event.artifact_linked, hw.EventType.LINK_ARTIFACT, {"alias": "best"}),
    (hw.Event.artifact_unlinked, hw.EventType.UNLINK_ARTIFACT, {}),
    (hw.Event.artifact_alias_added, hw.EventType.ADD_ARTIFACT_ALIAS, {"alias": "production"}),
    (hw.Event.artifact_tag_added, hw.EventType.ADD_ARTIFACT_TAG, {"tag": "candidate"}),
    (hw.Event.artifact_tag_removed, hw.EventType.REMOVE_ARTIFACT_TAG, {"tag": "candidate"}),
]


@pytest.mark.parametrize(("make", "event_type", "extra"), ARTIFACT_CONSTRUCTORS)
def test_artifact_constructors_set_type_and_fields(
    make: Any, event_type: hw.EventType, extra: dict[str, str]
) -> None:
    event = make(**WHERE, version="v12", author="alice", metadata={"accuracy": 0.93}, **extra)
    assert event.type is event_type
    assert (event.entity, event.project, event.collection) == (
        "ml-team",
        "model-registry",
        "churn",
    )
    assert event.version == "v12"
    assert event.author == "alice"
    assert event.alias == extra.get("alias", "")
    assert event.tag == extra.get("tag", "")
    assert dict(event.metadata) == {"accuracy": 0.93}
    assert event.run is None
    assert event.state is None
    assert event.step is None
    assert event.version_string == "ml-team/model-registry/churn:v12"


@pytest.mark.parametrize(
    ("make", "event_type"),
    [
        (hw.Event.collection_tag_added, hw.EventType.ADD_COLLECTION_TAG),
        (hw.Event.collection_tag_removed, hw.EventType.REMOVE_COLLECTION_TAG),
    ],
)
def test_collection_tag_constructors(make: Any, event_type: hw.EventType) -> None:
    event = make(**WHERE, tag="production-ready", author="bob")
    assert event.type is event_type
    assert event.tag == "production-ready"
    assert event.author == "bob"
    assert event.collection == "churn"
    assert event.version == ""
    assert event.alias == ""
    # no version: artifact_version_string does not apply, so it renders as ""
    assert event.version_string == ""


def test_author_defaults_to_empty() -> None:
    event = hw.Event.artifact_created(**WHERE, version="v1")
    assert event.author == ""
    assert dict(event.metadata) == {}


def test_each_event_has_its_own_id_and_a_timestamp() -> None:
    first = hw.Event.artifact_created(**WHERE, version="v1")
    second = hw.Event.artifact_created(**WHERE, version="v1")
    assert first.id != second.id
    assert first.timestamp > 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("entity", ""),
        ("entity", "ml/team"),
        ("entity", "ml team"),
        ("entity", "x" * 129),
        ("entity", None),
        ("project", "a#b"),
        ("project", "a?b"),
        ("project", "a%2F"),
        ("project", "a:b"),
        ("project", "tab\there"),
        ("project", "a\\b"),
        ("collection", ""),
        ("collection", "new\nline"),
        ("collection", 5),
    ],
)
def test_invalid_names_are_refused(field: str, value: object) -> None:
    fields: dict[str, Any] = dict(WHERE, version="v1", alias="production")
    fields[field] = value
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.artifact_alias_added(**fields)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [("alias", "a" * 257), ("alias", 3), ("version", None), ("author", "x" * 257)],
)
def test_labels_are_bounded_strings(field: str, value: object) -> None:
    fields: dict[str, Any] = dict(WHERE, version="v1", alias="production")
    fields[field] = value
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.artifact_alias_added(**fields)
    assert info.value.field == field


def test_labels_at_the_limit_are_accepted() -> None:
    event = hw.Event.artifact_alias_added(**WHERE, version="v1", alias="a" * 256)
    assert event.alias == "a" * 256


@pytest.mark.parametrize("metadata", [["a", 1], "text", 3, {1: "int key"}])
def test_metadata_must_be_a_mapping_with_string_keys(metadata: object) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.artifact_created(**WHERE, version="v1", metadata=metadata)  # type: ignore[arg-type]
    assert info.value.field == "metadata"


def test_metadata_is_a_read_only_copy() -> None:
    mine = {"accuracy": 0.93, "epochs": 10}
    event = hw.Event.artifact_created(**WHERE, version="v1", metadata=mine)
    mine["accuracy"] = 0.01
    mine["injected"] = "later"
    del mine["epochs"]
    assert dict(event.metadata) == {"accuracy": 0.93, "epochs": 10}
    with pytest.raises(TypeError):
        event.metadata["accuracy"] = 1.0  # type: ignore[index]


def test_metadata_accepts_any_mapping() -> None:
    event = hw.Event.artifact_created(**WHERE, version="v1", metadata=MappingProxyType({"k": "v"}))
    assert dict(event.metadata) == {"k": "v"}


def test_events_are_frozen() -> None:
    event = hw.Event.artifact_created(**WHERE, version="v1")
    with pytest.raises(AttributeError):
        event.alias = "production"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del event.alias
    with pytest.raises(AttributeError):
        event.anything_new = 1  # type: ignore[attr-defined]
    assert event.alias == ""


def test_an_event_id_is_made_once() -> None:
    event = hw.Event.run_metrics(run(), {"loss": 0.1})
    assert event.id == event.id
    assert len(event.id) == 32


@pytest.mark.parametrize(
    "event",
    [
        hw.Event.artifact_alias_added(**WHERE, version="v3", alias="production"),
        hw.Event.run_metrics(run(), {"loss": 0.25}, step=7),
    ],
    ids=["artifact", "run"],
)
def test_repr_shows_every_field_set_or_default(event: hw.Event) -> None:
    shown = repr(event)
    assert shown.startswith("Event(type=<EventType.")
    for field in ("entity", "collection", "alias", "metrics", "step", "state", "timestamp"):
        assert f"{field}=" in shown
    assert f"alias={event.alias!r}," in shown
    assert f"step={event.step!r}," in shown


def test_copies_and_pickles_keep_every_field() -> None:
    event = hw.Event.run_metrics(run(), {"loss": 0.25}, step=7)
    for clone in (copy.copy(event), pickle.loads(pickle.dumps(event))):
        assert (clone.type, clone.run, clone.step, clone.timestamp, clone.id) == (
            event.type,
            event.run,
            event.step,
            event.timestamp,
            event.id,
        )
        assert dict(clone.metrics) == {"loss": 0.25}
        assert clone.alias == ""


def test_event_type_renders_its_value() -> None:
    assert str(hw.EventType.ADD_ARTIFACT_ALIAS) == "ADD_ARTIFACT_ALIAS"
    assert f"{hw.EventType.RUN_STATE}" == "RUN_STATE"


# -- runs ---------------------------------------------------------------------


def test_run_name_defaults_to_its_id() -> None:
    assert hw.Run(entity="e", project="p", id="abc").name == "abc"
    assert hw.Run(entity="e", project="p", id="abc", name="nice").name == "nice"
    assert hw.Run(entity="e", project="p", id="abc").user == ""


@pytest.mark.parametrize(
    ("field", "value", "reported"),
    [
        ("entity", "a/b", "entity"),
        ("project", "", "project"),
        ("id", "has space", "run.id"),
        ("name", "n" * 257, "run.name"),
        ("user", 7, "run.user"),
    ],
)
def test_run_fields_are_checked(field: str, value: object, reported: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        run(**{field: value})
    assert info.value.field == reported


def test_run_metrics_event() -> None:
    the_run = run()
    metrics = {"loss": 0.12, "acc": 0.9}
    event = hw.Event.run_metrics(the_run, metrics, step=100)
    assert event.type is hw.EventType.RUN_METRIC
    assert (event.entity, event.project) == ("ml-team", "churn-training")
    assert event.run is the_run
    assert event.author == "alice"
    assert event.step == 100
    assert event.state is None
    assert event.collection == ""
    assert event.version_string == ""
    metrics["loss"] = 99.0
    assert dict(event.metrics) == {"loss": 0.12, "acc": 0.9}


def test_run_metrics_keeps_non_finite_values_for_the_evaluators_to_skip() -> None:
    event = hw.Event.run_metrics(run(), {"loss": float("nan"), "note": "text"})
    assert set(event.metrics) == {"loss", "note"}
    assert event.step is None


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("not a run", {"loss": 1.0}), {}, "run"),
        ((None, {"loss": 1.0}), {}, "run"),
        ((run(), [("loss", 1.0)]), {}, "metrics"),
        ((run(), {"loss": 1.0}), {"step": 1.5}, "step"),
        ((run(), {"loss": 1.0}), {"step": True}, "step"),
        ((run(), {"loss": 1.0}), {"step": "3"}, "step"),
        ((run(), {"loss": 1.0}), {"step": -5}, "step"),
    ],
)
def test_run_metrics_checks_its_input(args: tuple[Any, ...], kwargs: Any, field: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.run_metrics(*args, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (hw.RunState.RUNNING, hw.RunState.RUNNING),
        (hw.RunState.FINISHED, hw.RunState.FINISHED),
        ("FAILED", hw.RunState.FAILED),
        ("CRASHED", hw.RunState.FAILED),
        ("crashed", hw.RunState.FAILED),
        ("running", hw.RunState.RUNNING),
        ("Finished", hw.RunState.FINISHED),
    ],
)
def test_run_state_event(given: Any, expected: hw.RunState) -> None:
    the_run = run()
    event = hw.Event.run_state(the_run, given)
    assert event.type is hw.EventType.RUN_STATE
    assert event.state is expected
    assert event.run is the_run
    assert event.author == "alice"
    assert (event.entity, event.project) == (the_run.entity, the_run.project)


def test_crashed_is_failed() -> None:
    assert hw.RunState("CRASHED") is hw.RunState.FAILED
    assert hw.RunState("FAILED") is hw.RunState.FAILED
    assert str(hw.RunState.FAILED) == "FAILED"
    with pytest.raises(ValueError, match="bogus"):
        hw.RunState("bogus")


@pytest.mark.parametrize("state", ["bogus", "", 3, None, "KILLED"])
def test_run_state_refuses_unknown_states(state: object) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.run_state(run(), state)  # type: ignore[arg-type]
    assert info.value.field == "state"


def test_run_state_needs_a_run() -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.run_state("3kd9x", hw.RunState.FAILED)  # type: ignore[arg-type]
    assert info.value.field == "run"


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (lambda: hw.Event.artifact_created(**WHERE, version=""), "version"),
        (lambda: hw.Event.artifact_linked(**WHERE, version=""), "version"),
        (lambda: hw.Event.artifact_alias_added(**WHERE, version="v1", alias=""), "alias"),
        (lambda: hw.Event.artifact_alias_added(**WHERE, version="", alias="prod"), "version"),
        (lambda: hw.Event.artifact_tag_added(**WHERE, version="v1", tag=""), "tag"),
        (lambda: hw.Event.artifact_tag_removed(**WHERE, version="v1", tag=""), "tag"),
        (lambda: hw.Event.collection_tag_added(**WHERE, tag=""), "tag"),
        (lambda: hw.Event.collection_tag_removed(**WHERE, tag=""), "tag"),
    ],
)
def test_artifact_events_need_what_they_are_about(make: Any, missing: str) -> None:
    with pytest.raises(hw.ValidationError, match="required") as raised:
        make()
    assert raised.value.field == missing


# -- one way in: the constructor classmethods --------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        # the review's example: wrong types that used to build a broken event
        ((hw.EventType.RUN_METRIC, 123, None), {}, "Event.run_metrics("),
        ((hw.EventType.RUN_STATE, None, None), {"state": "bogus"}, "Event.run_state("),
        ((), {"type": "ADD_ARTIFACT_ALIAS", "entity": 7}, "Event.artifact_alias_added("),
        ((hw.EventType.LINK_ARTIFACT, "e", "p"), {"metadata": [1]}, "Event.artifact_linked("),
        # no usable type: the message names the usual constructors
        ((), {}, "Event.run_metrics("),
        (([1], 2.5), {}, "Event.artifact_alias_added("),
        (("NOT_A_TYPE",), {}, "Event.run_state("),
    ],
)
def test_direct_construction_is_refused_and_names_the_constructor(
    args: tuple[Any, ...], kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event(*args, **kwargs)
    assert isinstance(info.value, hw.HookwiseError)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "Event"
    assert named in str(info.value)
    assert "not Event(...)" in str(info.value)


def test_direct_construction_is_refused_even_with_good_values() -> None:
    # entity and author would have to agree with the run: only run_metrics knows
    the_run = run()
    with pytest.raises(hw.ValidationError, match=r"Event\.run_metrics\(run, metrics, step=\)"):
        hw.Event(
            hw.EventType.RUN_METRIC,
            the_run.entity,
            the_run.project,
            run=the_run,
            metrics={"loss": 0.1},
            step=1,
        )


@pytest.mark.parametrize("event_type", list(hw.EventType))
def test_each_event_type_is_pointed_at_a_classmethod_that_exists(
    event_type: hw.EventType,
) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event(event_type, "ml-team", "model-registry")
    named = str(info.value).split("use Event.", 1)[1].split("(", 1)[0]
    assert callable(getattr(hw.Event, named))


EVERY_CONSTRUCTOR = [
    pytest.param(lambda: hw.Event.artifact_created(**WHERE, version="v1"), id="created"),
    pytest.param(lambda: hw.Event.artifact_linked(**WHERE, version="v1", alias="a"), id="linked"),
    pytest.param(lambda: hw.Event.artifact_unlinked(**WHERE, version="v1"), id="unlinked"),
    pytest.param(
        lambda: hw.Event.artifact_alias_added(**WHERE, version="v1", alias="prod"), id="alias"
    ),
    pytest.param(lambda: hw.Event.artifact_tag_added(**WHERE, version="v1", tag="t"), id="tag+"),
    pytest.param(lambda: hw.Event.artifact_tag_removed(**WHERE, version="v1", tag="t"), id="tag-"),
    pytest.param(lambda: hw.Event.collection_tag_added(**WHERE, tag="t"), id="ctag+"),
    pytest.param(lambda: hw.Event.collection_tag_removed(**WHERE, tag="t"), id="ctag-"),
    pytest.param(
        lambda: hw.Event.artifact_created(**WHERE, version="v1", metadata={"acc": 0.9}),
        id="metadata",
    ),
    pytest.param(lambda: hw.Event.run_metrics(run(), {"loss": 0.5}, step=3), id="metrics"),
    pytest.param(lambda: hw.Event.run_metrics(run(), {}), id="metrics-nostep"),
    pytest.param(lambda: hw.Event.run_state(run(), "CRASHED"), id="state"),
]


@pytest.mark.parametrize("make", EVERY_CONSTRUCTOR)
def test_the_classmethods_still_build_events(make: Any) -> None:
    before = time.time()
    event = make()
    assert type(event) is hw.Event
    assert before <= event.timestamp <= time.time()
    assert event.entity in ("ml-team", run().entity)
    assert isinstance(event.metadata, MappingProxyType)
    assert isinstance(event.metrics, MappingProxyType)
    with pytest.raises(AttributeError):
        event.entity = "other"


def _round_trips(event: hw.Event) -> list[hw.Event]:
    return [
        pickle.loads(pickle.dumps(event)),
        pickle.loads(pickle.dumps(event, protocol=0)),
        copy.copy(event),
        copy.deepcopy(event),
    ]


@pytest.mark.parametrize("make", EVERY_CONSTRUCTOR)
def test_a_round_trip_is_the_same_event(make: Any) -> None:
    event = make()  # its id is not made yet: pickling fixes it
    for clone in _round_trips(event):
        assert type(clone) is hw.Event
        assert clone is not event
        assert repr(clone) == repr(event)  # every field, set or default
        assert clone.id == event.id
        assert isinstance(clone.metadata, MappingProxyType)
        assert isinstance(clone.metrics, MappingProxyType)
        with pytest.raises(AttributeError):
            clone.alias = "x"
        # and the clone round-trips again, still the same event
        assert [c.id for c in _round_trips(clone)] == [event.id] * 4
