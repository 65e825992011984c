"""Hostile input: every public constructor and ``handle()`` get arbitrary values
(huge ints, deep nesting, objects whose ``__str__``/``__repr__`` raise, None,
bytes, NaN, inf, wrong types). Only hookwise errors may come out, a
ValidationError names its field, and nothing is half-stored: an event's
deliveries are stored all together or not at all, and a value that cannot be
rendered fails that one delivery while the others wait to be sent.

``HOOKWISE_HOSTILE_EXAMPLES`` sets the examples per test (CI can run more).
"""

from __future__ import annotations

import asyncio
import math
import numbers
import os
import pathlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hookwise as hw
from hookwise.template import MAX_BODY_BYTES

from .conftest import PUBLIC

EXAMPLES = int(os.environ.get("HOOKWISE_HOSTILE_EXAMPLES", "300"))
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- hostile values -------------------------------------------------------------


class Boom(Exception):
    pass


# Text dunders raise only while hookwise runs (``only_hookwise_errors`` arms
# them), so that hypothesis can still print a failing example.
ARMED: list[bool] = [False]


def _boom(*_args: object, **_kwargs: object) -> Any:
    raise Boom("hostile")


def _text_boom(self: object, *_args: object) -> str:
    if ARMED[0]:
        raise Boom("hostile")
    return f"<hostile {type(self).__name__}>"


class RaisingStr:
    """``str()``, ``repr()`` and ``format()`` raise."""

    __str__ = __repr__ = __format__ = _text_boom


class RaisingEverything:
    """Every dunder a validator might touch raises."""

    __str__ = __repr__ = __format__ = _text_boom
    __bool__ = __len__ = __iter__ = _boom
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _boom  # type: ignore[assignment]
    __float__ = __int__ = __index__ = __contains__ = __getitem__ = _boom


class Recursing:
    """``str()`` and ``repr()`` recurse until Python gives up (RecursionError)."""

    def __str__(self) -> str:
        return str(self) if ARMED[0] else "<hostile Recursing>"

    def __repr__(self) -> str:
        return repr(self) if ARMED[0] else "<hostile Recursing>"


class RaisingMapping(Mapping[str, object]):
    """A mapping that breaks when read."""

    __getitem__ = __iter__ = __len__ = _boom


class RaisingList(list[object]):
    __iter__ = __len__ = __getitem__ = _boom


class SneakyStr(str):
    """Valid text whose own methods lie or raise: hookwise must read the text only."""

    __str__ = __repr__ = __format__ = _text_boom
    __hash__ = __eq__ = __len__ = __iter__ = _boom  # type: ignore[assignment]


class RaisingFloat(float):
    """A number whose ``float()`` raises."""

    __float__ = _boom


class SneakyInt(int):
    __str__ = __repr__ = __format__ = _text_boom
    __index__ = __lt__ = __gt__ = __le__ = __ge__ = _boom  # type: ignore[assignment]


def _nested(depth: int, *, as_list: bool = False) -> object:
    value: object = {}
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


SELF_DICT: dict[str, object] = {}
SELF_DICT["me"] = SELF_DICT
SELF_LIST: list[object] = []
SELF_LIST.append(SELF_LIST)

ODD_OBJECTS: list[object] = [
    RaisingStr(),
    RaisingEverything(),
    Recursing(),
    RaisingMapping(),
    RaisingList([1, 2]),
    SneakyStr("ml-team"),
    SneakyStr("https://example.com/hook"),
    SneakyInt(5),
    RaisingFloat(2.0),
    10**5000,
    -(10**5000),
    2**64,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -0.0,
    _nested(100_000),
    _nested(100_000, as_list=True),
    _nested(65),
    SELF_DICT,
    SELF_LIST,
    "x" * (3 * 1024 * 1024),  # over the metadata cap
    b"\xff\xfe",
    bytearray(b"abc"),
    "\ud800",  # a lone surrogate
    "\x00",
    "",
    " ",
    "a" * 10_000,
    object(),
    object,
    print,
    (lambda: None),
    Ellipsis,
    NotImplemented,
    {1: 2},
    {"k": RaisingStr()},
    [RaisingStr()],
    set(),
    frozenset({"RUNNING"}),
    complex(1, 2),
    hw.RunState.FAILED,
    hw.EventType.RUN_STATE,
]


def _odd(index: int) -> object:
    return ODD_OBJECTS[index]


# by index: hypothesis hashes and prints what sampled_from holds, and these refuse
ODD = st.integers(0, len(ODD_OBJECTS) - 1).map(_odd)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
)
NESTED = st.recursive(
    PLAIN | st.integers(0, 5).map(_odd),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
# one branch each (one_of would flatten PLAIN into six and make the odd objects rare)
_KINDS = {"plain": PLAIN, "odd": ODD, "nested": NESTED}
HOSTILE_VALUES = st.sampled_from(sorted(_KINDS)).flatmap(_KINDS.__getitem__)


def arg(*valid: object) -> st.SearchStrategy[object]:
    """A parameter: mostly a valid value, often a hostile one."""
    return st.one_of(st.sampled_from(valid), HOSTILE_VALUES) if valid else HOSTILE_VALUES


def kwargs(**params: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    """Keyword arguments where each one may be left out (the default is used)."""
    return st.fixed_dictionaries({}, optional=params)


def _check_error(exc: hw.HookwiseError) -> None:
    """A hookwise error prints, says something, and a ValidationError names its field."""
    assert str(exc)
    if isinstance(exc, hw.ValidationError):
        assert isinstance(exc.field, str)
        assert exc.field


def only_hookwise_errors(call: Callable[..., object], *args: object, **kw: object) -> object:
    """Run ``call``; a hookwise error is fine (and must name its field and
    print), anything else fails the test. Returns the result, or None."""
    ARMED[0] = True
    try:
        return call(*args, **kw)
    except hw.HookwiseError as exc:
        ARMED[0] = False
        _check_error(exc)
        return None
    finally:
        ARMED[0] = False


# valid values the strategies mix in
TEAM = "ml-team"
NAMES = ("ml-team", "model-registry", "churn", "v1")
PATTERNS = ("^production$", "prod", None, "(", "a" * 5000, "(a+)+$")
ENUMS = (
    hw.Op.GT,
    "gt",
    ">",
    hw.Agg.MAX,
    "AVERAGE",
    None,
    hw.Direction.ANY,
    "INCREASE",
    hw.ChangeKind.RELATIVE,
    "ABSOLUTE",
)

# -- constructors -----------------------------------------------------------------


@HOSTILE
@given(kwargs(team=arg(TEAM), name=arg("GITHUB_TOKEN", "x y"), value=arg("ghp_123", "")))
def test_secret(kw: dict[str, object]) -> None:
    only_hookwise_errors(hw.Secret, **{"team": TEAM, "name": "N", "value": "v", **kw})


@HOSTILE
@given(
    kwargs(
        team=arg(TEAM),
        name=arg("github-dispatch"),
        url=arg("https://example.com/hook", "http://127.0.0.1/", "ftp://x", "https://"),
        access_token=arg("GITHUB_TOKEN", None),
        secret=arg("SIGNING_KEY", None),
        signing=arg((), ("standard-webhooks",), [hw.Scheme.WANDB], "wandb"),
        enabled=arg(True, False),
        disabled_reason=arg(None, "gone"),
    )
)
def test_webhook(kw: dict[str, object]) -> None:
    required = {"team": TEAM, "name": "hook", "url": "https://example.com/hook"}
    only_hookwise_errors(hw.Webhook, **{**required, **kw})


@HOSTILE
@given(
    st.sampled_from(["project", "registry", "collection"]),
    arg(*NAMES),
    arg(*NAMES),
    arg(*NAMES),
)
def test_scope(kind: str, a: object, b: object, c: object) -> None:
    if kind == "collection":
        only_hookwise_errors(hw.Scope.collection, a, b, c)
    else:
        only_hookwise_errors(getattr(hw.Scope, kind), a, b)


ARTIFACT_FILTERS = [
    hw.OnLinkArtifact,
    hw.OnAddArtifactAlias,
    hw.OnAddArtifactTag,
    hw.OnRemoveArtifactTag,
    hw.OnAddCollectionTag,
    hw.OnRemoveCollectionTag,
]


@HOSTILE
@given(st.sampled_from(ARTIFACT_FILTERS), arg(*PATTERNS), kwargs(filter=arg(None)))
def test_artifact_filters(filter_type: Any, pattern: object, kw: dict[str, object]) -> None:
    only_hookwise_errors(filter_type, pattern, **kw)


@HOSTILE
@given(st.sampled_from([hw.OnUnlinkArtifact, hw.OnCreateArtifact]), kwargs(filter=arg(None)))
def test_filters_without_a_pattern(filter_type: Any, kw: dict[str, object]) -> None:
    only_hookwise_errors(filter_type, **kw)


@HOSTILE
@given(
    kwargs(
        states=arg({hw.RunState.FAILED}, "FINISHED", ["RUNNING", "CRASHED"], ()),
        run_name=arg(*PATTERNS),
        user=arg("alice", None),
        cooldown=arg(0, 3600.0, None),
        run_filter=arg(None),
        per_state=arg(True, False),
    )
)
def test_on_run_state(kw: dict[str, object]) -> None:
    only_hookwise_errors(hw.OnRunState, **kw)


@HOSTILE
@given(
    kwargs(
        name=arg("loss"),
        threshold=arg(0.5, 0, -1),
        op=arg(*ENUMS),
        agg=arg(*ENUMS),
        window=arg(1, 5, 0, 10**6),
    )
)
def test_metric_threshold(kw: dict[str, object]) -> None:
    kw.setdefault("name", "loss")
    kw.setdefault("threshold", 0.5)
    only_hookwise_errors(hw.MetricThreshold, **kw)


@HOSTILE
@given(
    kwargs(
        name=arg("loss"),
        amount=arg(0.5, 1, 0),
        kind=arg(*ENUMS),
        direction=arg(*ENUMS),
        current_window=arg(1, 5),
        prior_window=arg(1, 5),
        agg=arg(*ENUMS),
    )
)
def test_metric_change(kw: dict[str, object]) -> None:
    kw.setdefault("name", "loss")
    kw.setdefault("amount", 0.5)
    only_hookwise_errors(hw.MetricChange, **kw)


@HOSTILE
@given(
    kwargs(
        name=arg("loss"),
        threshold=arg(3.0, 0),
        window=arg(30, 2, 1),
        direction=arg(*ENUMS),
    )
)
def test_metric_zscore(kw: dict[str, object]) -> None:
    kw.setdefault("name", "loss")
    only_hookwise_errors(hw.MetricZScore, **kw)


@HOSTILE
@given(
    kwargs(
        condition=arg(hw.MetricThreshold("loss", 0.5)),
        run_name=arg(*PATTERNS),
        user=arg("alice", None),
        cooldown=arg(0, 60.0),
        run_filter=arg(None),
    )
)
def test_on_run_metric(kw: dict[str, object]) -> None:
    kw.setdefault("condition", hw.MetricThreshold("loss", 0.5))
    only_hookwise_errors(hw.OnRunMetric, **kw)


BUILDER_CALLS = [
    "gt",
    "gte",
    "lt",
    "lte",
    "eq",
    "ne",
    "changes_by",
    "increases_by",
    "decreases_by",
    ">",
    "<",
    ">=",
    "<=",
]


def _finish(builder: Any, how: str, value: object, kw: dict[str, object]) -> object:
    if how == ">":
        return builder > value
    if how == "<":
        return builder < value
    if how == ">=":
        return builder >= value
    if how == "<=":
        return builder <= value
    if how in ("changes_by", "increases_by", "decreases_by"):
        return getattr(builder, how)(value, **kw)
    return getattr(builder, how)(value)


@HOSTILE
@given(
    arg("loss"),
    st.sampled_from(["", "max", "min", "avg", "mean", "average", "zscore", "zscore-abs"]),
    arg(5, 1, 30),
    st.sampled_from(BUILDER_CALLS),
    arg(0.5, 3, -3),
    kwargs(
        diff=arg(None, 1.0),
        frac=arg(None, 0.1),
        kind=arg(*ENUMS),
        current_window=arg(None, 2),
        prior_window=arg(None, 2),
    ),
)
def test_run_metric_builder(
    name: object, aggregate: str, window: object, how: str, value: object, kw: dict[str, object]
) -> None:
    def build() -> object:
        builder: Any = hw.RunMetric(name)  # type: ignore[arg-type]
        if aggregate == "zscore":
            builder = builder.zscore(window)
        elif aggregate == "zscore-abs":
            builder = abs(builder.zscore(window))
        elif aggregate:
            builder = getattr(builder, aggregate)(window)
        if aggregate.startswith("zscore") and how not in ("gt", "lt", "gte", "lte", ">", "<"):
            return _finish(builder, "gt", value, {})
        return _finish(builder, how, value, {} if "_by" not in how else kw)

    only_hookwise_errors(build)


def _valid_scope() -> hw.Scope:
    return hw.Scope.project(TEAM, "model-registry")


@HOSTILE
@given(
    kwargs(
        name=arg("deploy"),
        scope=arg(_valid_scope()),
        event=arg(hw.OnCreateArtifact(), hw.OnRunState()),
        action=arg(hw.SendWebhook("github-dispatch"), hw.DoNothing()),
        description=arg("", "about"),
        enabled=arg(True, False),
    )
)
def test_automation(kw: dict[str, object]) -> None:
    required = {
        "name": "deploy",
        "scope": _valid_scope(),
        "event": hw.OnCreateArtifact(),
        "action": hw.DoNothing(),
    }
    only_hookwise_errors(hw.Automation, **{**required, **kw})


@HOSTILE
@given(
    kwargs(
        webhook=arg("github-dispatch"),
        payload=arg(None, {"a": "${alias}"}, '{"a": 1}', "[", {"a": "${artifact_metadata.x}"}),
        team=arg(None, TEAM),
    )
)
def test_send_webhook(kw: dict[str, object]) -> None:
    kw.setdefault("webhook", "github-dispatch")
    only_hookwise_errors(hw.SendWebhook, **kw)


@HOSTILE
@given(
    kwargs(
        secret=arg("SLACK_URL"),
        title=arg("Run failed", "${run_name} failed"),
        message=arg("", "${metric_value}"),
        severity=arg(hw.Severity.ERROR, "WARN", "loud"),
    )
)
def test_send_notification(kw: dict[str, object]) -> None:
    kw.setdefault("secret", "SLACK_URL")
    kw.setdefault("title", "Run failed")
    only_hookwise_errors(hw.SendNotification, **kw)


TEMPLATE_TREES = st.recursive(
    HOSTILE_VALUES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
        | st.dictionaries(
            st.one_of(st.none(), st.integers(), st.binary(max_size=4)), children, max_size=2
        )
    ),
    max_leaves=10,
)


@HOSTILE
@given(TEMPLATE_TREES | st.text(max_size=200))
def test_compile_template(source: object) -> None:
    template = only_hookwise_errors(hw.compile_template, source)
    if template is not None:  # what compiles renders (no metadata, no secret: maybe NotFound)
        only_hookwise_errors(template.render_display, {})  # type: ignore[attr-defined]


@HOSTILE
@given(
    kwargs(
        entity=arg(*NAMES),
        project=arg(*NAMES),
        id=arg("3kd9x"),
        name=arg("", "lr-sweep-3"),
        user=arg("", "alice"),
    )
)
def test_run(kw: dict[str, object]) -> None:
    kw.setdefault("entity", TEAM)
    kw.setdefault("project", "churn")
    kw.setdefault("id", "3kd9x")
    only_hookwise_errors(hw.Run, **kw)


ARTIFACT_EVENTS = {
    "artifact_created": ("metadata",),
    "artifact_linked": ("alias", "metadata"),
    "artifact_unlinked": ("metadata",),
    "artifact_alias_added": ("alias", "metadata"),
    "artifact_tag_added": ("tag", "metadata"),
    "artifact_tag_removed": ("tag", "metadata"),
    "collection_tag_added": ("tag",),
    "collection_tag_removed": ("tag",),
}


@HOSTILE
@given(
    st.sampled_from(sorted(ARTIFACT_EVENTS)),
    kwargs(
        entity=arg(TEAM),
        project=arg("model-registry"),
        collection=arg("churn"),
        version=arg("v12"),
        author=arg("alice"),
        alias=arg("production"),
        tag=arg("approved"),
        metadata=arg(None, {"accuracy": 0.93}),
    ),
)
def test_artifact_event_constructors(which: str, kw: dict[str, object]) -> None:
    allowed = {"entity", "project", "collection", "author", *ARTIFACT_EVENTS[which]}
    if not which.startswith("collection"):
        allowed.add("version")
    given_kw = {name: value for name, value in kw.items() if name in allowed}
    for name in ("entity", "project", "collection", "version", "alias", "tag"):
        if name in allowed and name != "author":
            given_kw.setdefault(name, "x")
    event = only_hookwise_errors(getattr(hw.Event, which), **given_kw)
    if event is not None:
        assert repr(event)  # an event's repr never raises, whatever its metadata holds


RUN = hw.Run(entity=TEAM, project="churn", id="3kd9x")


@HOSTILE
@given(arg(RUN), arg({"loss": 0.5}, {}), kwargs(step=arg(None, 0, 100, 2**63 - 1, 2**63)))
def test_run_metrics_event(run: object, metrics: object, kw: dict[str, object]) -> None:
    only_hookwise_errors(hw.Event.run_metrics, run, metrics, **kw)


@HOSTILE
@given(arg(RUN), arg(hw.RunState.FAILED, "CRASHED", "finished", "nope"))
def test_run_state_event(run: object, state: object) -> None:
    only_hookwise_errors(hw.Event.run_state, run, state)


def test_event_itself_is_refused() -> None:
    with pytest.raises(hw.ValidationError):
        hw.Event(type=RaisingEverything())


@HOSTILE
@given(
    kwargs(
        allow=arg((), ["10.0.0.0/8"], "::1", None, ["10.0.0.1/8"]),
        allow_http=arg(True, False),
        resolver=arg(lambda host, port: ["93.184.216.34"]),
    )
)
def test_network_policy(kw: dict[str, object]) -> None:
    only_hookwise_errors(hw.NetworkPolicy, **kw)


@HOSTILE
@given(
    kwargs(
        max_attempts=arg(8, 1),
        base_delay=arg(5.0, 0.001),
        factor=arg(6.0, 1),
        max_delay=arg(3600.0),
        max_age=arg(60.0),
        max_retry_after=arg(60.0),
        jitter=arg(True, False),
    )
)
def test_retry_policy(kw: dict[str, object]) -> None:
    policy = only_hookwise_errors(hw.RetryPolicy, **kw)
    if isinstance(policy, hw.RetryPolicy):  # what is accepted computes finite delays
        for attempts in (1, 2, 50, 10_000):
            delay = policy.next_attempt(attempts=attempts, age=0.0, rand=lambda: 0.5)
            assert delay is None or math.isfinite(delay)


VALID_KEY = hw.SecretKey.generate()


@HOSTILE
@given(st.lists(arg(), max_size=3))
def test_secret_key(keys: list[object]) -> None:
    only_hookwise_errors(hw.SecretKey, *keys)


OPTIONS = st.sampled_from(
    [
        "network",
        "retry",
        "key",
        "timeout",
        "concurrency",
        "poll_interval",
        "refresh_interval",
        "clock",
        "worker",
        "bogus",
    ]
)


@HOSTILE
@given(st.dictionaries(OPTIONS, arg(), max_size=3), st.booleans())
def test_dispatcher_options(options: dict[str, object], asynchronous: bool) -> None:
    options.pop("worker", None)  # a worker thread per example would only slow this down
    store = hw.MemoryStorage()
    options.setdefault("key", VALID_KEY)
    if asynchronous:
        made = only_hookwise_errors(hw.AsyncDispatcher, store, worker=False, **options)
        if made is not None:
            asyncio.run(made.close())  # type: ignore[attr-defined]
        return
    made = only_hookwise_errors(hw.Dispatcher, store, worker=False, **options)
    if made is not None:
        made.close()  # type: ignore[attr-defined]


class RaisingPath:
    """An ``os.PathLike`` whose ``__fspath__`` raises."""

    def __fspath__(self) -> str:
        raise Boom("hostile")


class BytesPath:
    """An ``os.PathLike`` that gives bytes (a path inside ``folder``)."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.path = os.fsencode(folder / "bytes.db")

    def __fspath__(self) -> bytes:
        return self.path


@pytest.fixture(scope="module")
def db_folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("hostile-sqlite")


def _inside(folder: pathlib.Path, value: object) -> object:
    """Text as a file name inside ``folder``, never the working directory (a
    SneakyStr stays one); any other value as it is."""
    if not isinstance(value, str):
        return value
    path = os.path.join(folder, str.__str__(value).replace(os.sep, "_"))
    return SneakyStr(path) if type(value) is SneakyStr else path


@HOSTILE
@given(st.data())
def test_sqlite_storage(db_folder: pathlib.Path, data: st.DataObject) -> None:
    valid = (db_folder / "store.db", str(db_folder / "text.db"), db_folder / "again.db")
    odd = (
        db_folder,  # a folder
        db_folder / "missing" / "store.db",
        str(db_folder / "nul\x00.db"),
        str(db_folder / "lone\ud800.db"),
        RaisingPath(),
        BytesPath(db_folder),
        os.fsencode(db_folder / "bytes.db"),
    )
    path = data.draw(
        st.sampled_from(valid)
        | st.sampled_from(odd)
        | HOSTILE_VALUES.map(lambda value: _inside(db_folder, value))
    )
    key = data.draw(arg(VALID_KEY))
    before = set(os.listdir())
    store = only_hookwise_errors(hw.SQLiteStorage, path, key=key)
    if isinstance(store, hw.SQLiteStorage):
        store.close()
    assert set(os.listdir()) == before  # nothing lands in the working directory


@pytest.mark.parametrize(
    "make",
    [
        lambda _: None,
        lambda _: 5,
        lambda folder: os.fsencode(folder / "bytes.db"),  # inside tmp_path, were it opened
        lambda _: RaisingPath(),
        BytesPath,
        lambda _: RaisingEverything(),
    ],
    ids=["None", "int", "bytes", "raising-fspath", "bytes-fspath", "raising"],
)
def test_sqlite_storage_refuses_what_is_not_a_path(
    tmp_path: pathlib.Path, make: Callable[[pathlib.Path], object]
) -> None:
    value = make(tmp_path)
    with pytest.raises(hw.ValidationError) as info:
        hw.SQLiteStorage(value, key=VALID_KEY)  # type: ignore[arg-type]
    assert info.value.field == "path"


@pytest.mark.parametrize("name", ["", "missing/store.db", "nul\x00.db", "lone\ud800.db"])
def test_sqlite_storage_refuses_a_path_it_cannot_open(tmp_path: pathlib.Path, name: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.SQLiteStorage(os.path.join(tmp_path, name), key=VALID_KEY)  # "": the folder itself
    assert info.value.field == "path"
    assert "cannot open the database" in str(info.value)


def test_subclasses_are_kept_as_plain_values() -> None:
    """A str, int or float subclass is kept as the plain value it holds: its
    own methods never run later (hashing, comparing, rendering)."""
    hook = hw.Webhook(
        team=SneakyStr(TEAM),
        name=SneakyStr("hook"),
        url=SneakyStr("https://example.com/hook"),
        access_token=SneakyStr("TOKEN"),
        signing=[SneakyStr("wandb")],
    )
    assert {type(v) for v in (hook.team, hook.name, hook.url, hook.access_token)} == {str}
    change = hw.MetricChange(
        SneakyStr("loss"), RaisingFloat(0.5), current_window=SneakyInt(3), kind=SneakyStr("rel")
    )
    assert type(change.name) is str
    assert type(change.amount) is float
    assert type(change.current_window) is int
    assert change.prior_window == 3
    assert change.kind is hw.ChangeKind.RELATIVE
    assert change.agg is hw.Agg.AVERAGE
    state = hw.OnRunState(
        states=[SneakyStr("crashed")], cooldown=SneakyInt(60), user=SneakyStr("alice")
    )
    assert state.states == {hw.RunState.FAILED}
    assert type(state.cooldown) is float
    assert type(state.user) is str
    with pytest.raises(hw.ValidationError) as info:
        hw.OnRunState(cooldown=10**5000)
    assert info.value.field == "event.cooldown"


class Pairs(Mapping[object, object]):
    """A mapping of the given pairs whose keys are never hashed (SneakyStr keys)."""

    def __init__(self, pairs: list[tuple[object, object]]) -> None:
        self.pairs = pairs

    def __getitem__(self, key: object) -> object:
        raise KeyError

    def __iter__(self) -> Iterator[object]:
        return iter([key for key, _ in self.pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> Any:
        return list(self.pairs)


def test_odd_patterns_and_filters_are_validation_errors() -> None:
    alias = hw.OnAddArtifactAlias(SneakyStr("^prod"))
    assert type(alias.alias) is str
    for pattern, field in ((SneakyInt(5), "event.alias"), ("a{99999999999}", "event.alias")):
        with pytest.raises(hw.ValidationError) as info:
            hw.OnAddArtifactAlias(pattern)  # type: ignore[arg-type]
        assert info.value.field == field
    for document in (
        RaisingMapping(),
        {"alias": RaisingMapping()},
        {"$and": RaisingList([1])},
        {"alias": {"$in": RaisingList([1])}},
        Pairs([(SneakyStr("alias"), Pairs([(SneakyStr("$regex"), SneakyInt(1))]))]),
        {"$or": [{"alias": {"$regex": RaisingStr()}}]},
    ):
        ARMED[0] = True
        try:
            with pytest.raises(hw.ValidationError) as info:
                hw.OnCreateArtifact(filter=document)  # type: ignore[arg-type]
        finally:
            ARMED[0] = False
        assert info.value.field.startswith("event.filter")


def test_a_metric_whose_float_raises_is_ignored(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage],
) -> None:
    run = hw.Run(entity=TEAM, project="p", id=uuid.uuid4().hex)
    event = hw.Event.run_metrics(run, {"loss": RaisingFloat(2.0)})
    assert shared[0].handle(event) == []


def test_a_threshold_beyond_the_float_range_is_refused() -> None:
    for value in (10**400, -(10**5000)):
        with pytest.raises(hw.ValidationError) as info:
            hw.MetricThreshold("loss", value)
        assert info.value.field == "event.condition.threshold"
    assert hw.MetricThreshold("loss", 10**300).threshold == 10**300


def test_settings_refuse_non_finite_numbers() -> None:
    store = hw.MemoryStorage()
    for option in ("timeout", "poll_interval", "refresh_interval"):
        for value in (math.inf, math.nan, 10**400):
            with pytest.raises(hw.ValidationError) as info:
                hw.Dispatcher(store, worker=False, key=VALID_KEY, **{option: value})
            assert info.value.field == option
    for field in ("base_delay", "factor", "max_delay", "max_age", "max_retry_after"):
        with pytest.raises(hw.ValidationError) as info:
            hw.RetryPolicy(**{field: math.inf})
        assert info.value.field == f"retry.{field}"


def test_history_limit_is_capped() -> None:
    store = hw.MemoryStorage()
    assert hw.Admin(store).deliveries(limit=10**30) == []
    with pytest.raises(hw.ValidationError) as info:
        hw.Admin(store).deliveries(team=RaisingStr())  # type: ignore[arg-type]
    assert info.value.field == "team"


# -- handle() -----------------------------------------------------------------------

SECRET_VALUE = "s3cr3t-VALUE"
ALWAYS = ("plain", "token")  # templates without metadata: they always render


def _store() -> hw.MemoryStorage:
    store = hw.MemoryStorage(key=VALID_KEY)
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_secret(hw.Secret(team=TEAM, name="TOKEN", value=SECRET_VALUE))
    admin.create_webhook(
        hw.Webhook(team=TEAM, name="hook", url="https://example.com/hook", access_token="TOKEN")
    )
    scope = hw.Scope.project(TEAM, "p")
    payloads: dict[str, object] = {
        "plain": None,  # every built-in variable
        "token": {"t": "${ACCESS_TOKEN}", "who": "${event_author}"},
        "meta-m": {"m": "${artifact_metadata.m}", "twice": ["${artifact_metadata.m}"] * 3},
        "meta-n": {"n": "${artifact_metadata.n} and ${alias}"},
    }
    for name, payload in payloads.items():
        for event, suffix in (
            (hw.OnCreateArtifact(), ""),
            (hw.OnAddArtifactAlias(), "-alias"),
            (hw.OnRunMetric(hw.MetricThreshold("loss", 0.0, op=">")), "-metric"),
            (hw.OnRunState(states={"FAILED", "FINISHED", "RUNNING"}), "-state"),
        ):
            admin.create_automation(
                hw.Automation(
                    name=name + suffix,
                    scope=scope,
                    event=event,
                    action=hw.SendWebhook("hook", payload=payload),
                )
            )
    return store


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[hw.Dispatcher, hw.MemoryStorage]]:
    """One store and dispatcher for every example (run events use a new run id
    each time, so no cooldown stands in the way)."""
    store = _store()
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as dispatcher:
        yield dispatcher, store


def _check_stored(
    store: hw.MemoryStorage, before: int, returned: list[hw.Delivery] | None, fired: int
) -> None:
    """All of the event's deliveries are stored, or none; only metadata fails one."""
    stored = store.list_deliveries(limit=10**6)
    new = stored[: len(stored) - before]
    if returned is None:  # it raised: nothing of it is stored
        assert len(new) == 0
        return
    assert sorted(d.id for d in new) == sorted(d.id for d in returned)
    assert len(returned) == fired
    for delivery in returned:
        base = delivery.automation.split("-alias")[0].split("-metric")[0].split("-state")[0]
        assert delivery.status in (hw.DeliveryStatus.PENDING, hw.DeliveryStatus.FAILED)
        if base in ALWAYS:
            assert delivery.status is hw.DeliveryStatus.PENDING, delivery.error
        if delivery.status is hw.DeliveryStatus.FAILED:
            assert delivery.error is not None
            assert "could not render the payload" in delivery.error
            assert SECRET_VALUE not in delivery.error
        assert SECRET_VALUE not in delivery.display


def _handle(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage], make: Callable[[], hw.Event], fired: int
) -> None:
    dispatcher, store = shared
    event = only_hookwise_errors(make)
    if event is None:
        return
    before = len(store.list_deliveries(limit=10**6))
    handled = only_hookwise_errors(dispatcher.handle, event)
    returned = handled if isinstance(handled, list) else None  # None: it raised
    _check_stored(store, before, returned, fired)


def _positive_number(value: object) -> bool:
    """Whether a metric value counts (a finite real number) and is above 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        number = float(value)
    except Exception:
        return False
    return math.isfinite(number) and number > 0


def _run(name: object, user: object) -> hw.Run | None:
    made = only_hookwise_errors(
        hw.Run, entity=TEAM, project="p", id=uuid.uuid4().hex, name=name, user=user
    )
    return made if isinstance(made, hw.Run) else None


@HOSTILE
@given(
    st.sampled_from(["artifact_created", "artifact_alias_added"]),
    st.dictionaries(st.sampled_from(["m", "n", "other"]), arg("text", 0.93), max_size=3)
    | arg(None, {}),
    arg("alice", ""),
    arg("production"),
)
def test_handle_artifact_events(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage],
    which: str,
    metadata: object,
    author: object,
    alias: object,
) -> None:
    extra = {"alias": alias} if which == "artifact_alias_added" else {}

    def make() -> hw.Event:
        return getattr(hw.Event, which)(  # type: ignore[no-any-return]
            entity=TEAM,
            project="p",
            collection="c",
            version="v1",
            author=author,
            metadata=metadata,
            **extra,
        )

    _handle(shared, make, fired=4)


@HOSTILE
@given(
    st.dictionaries(st.sampled_from(["loss", "acc"]), arg(1.0, -1.0) | ODD, max_size=2)
    | arg({"loss": 1.0}),
    arg(None, 0, 7, 2**63 - 1),
    arg("lr-sweep", ""),
    arg("alice", ""),
)
def test_handle_run_metrics(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage],
    metrics: object,
    step: object,
    name: object,
    user: object,
) -> None:
    run = _run(name, user)
    if run is None:
        return  # test_run covers it
    loss = metrics.get("loss") if isinstance(metrics, dict) else None
    fires = _positive_number(loss)

    def make() -> hw.Event:
        return hw.Event.run_metrics(run, metrics, step=step)  # type: ignore[arg-type]

    _handle(shared, make, fired=4 if fires else 0)


@HOSTILE
@given(arg(hw.RunState.FAILED, "CRASHED", "RUNNING"), arg("lr-sweep"), arg("alice"))
def test_handle_run_state(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage], state: object, name: object, user: object
) -> None:
    run = _run(name, user)
    if run is None:
        return
    _handle(shared, lambda: hw.Event.run_state(run, state), fired=4)  # type: ignore[arg-type]


@HOSTILE
@given(arg())
def test_handle_refuses_what_is_not_an_event(
    shared: tuple[hw.Dispatcher, hw.MemoryStorage], value: object
) -> None:
    dispatcher, store = shared
    before = len(store.list_deliveries(limit=10**6))
    ARMED[0] = True
    try:
        with pytest.raises(hw.ValidationError) as info:
            dispatcher.handle(value)  # type: ignore[arg-type]
    finally:
        ARMED[0] = False
    assert info.value.field == "event"
    assert len(store.list_deliveries(limit=10**6)) == before


@pytest.mark.parametrize(
    "value", [None, "x", 123, RaisingEverything()], ids=["None", "str", "int", "raising"]
)
def test_async_handle_refuses_what_is_not_an_event(value: object) -> None:
    async def main() -> None:
        async with hw.AsyncDispatcher(_store(), worker=False, network=PUBLIC) as dispatcher:
            with pytest.raises(hw.ValidationError) as info:
                await dispatcher.handle(value)  # type: ignore[arg-type]
            assert info.value.field == "event"

    asyncio.run(main())


# -- the known cases, spelled out ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (10**5000, "ValueError"),
        (RaisingStr(), "Boom"),
        (Recursing(), "RecursionError"),
        ({"k": RaisingStr()}, "Boom"),
    ],
    ids=["huge-int", "raising-str", "recursing-str", "nested-raising-str"],
)
def test_a_value_that_cannot_render_fails_only_its_delivery(value: object, reason: str) -> None:
    store = _store()
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as dispatcher:
        event = hw.Event.artifact_created(
            entity=TEAM, project="p", collection="c", version="v1", metadata={"m": value}
        )
        handled = only_hookwise_errors(dispatcher.handle, event)
        assert isinstance(handled, list)
        deliveries = {d.automation: d for d in handled}
    assert set(deliveries) == {"plain", "token", "meta-m", "meta-n"}
    failed = deliveries.pop("meta-m")
    assert failed.status is hw.DeliveryStatus.FAILED
    assert failed.error is not None
    assert "${artifact_metadata.m} cannot be rendered" in failed.error
    assert reason in failed.error
    assert all(d.status is hw.DeliveryStatus.PENDING for d in deliveries.values())
    assert len(store.list_deliveries()) == 4


@pytest.mark.parametrize(
    "value",
    [_nested(100_000), SELF_DICT, "x" * (50 * 1024 * 1024)],
    ids=["nested-100000-deep", "contains-itself", "50-MB"],
)
def test_metadata_over_a_cap_is_refused_at_construction(value: object) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.artifact_created(
            entity=TEAM, project="p", collection="c", version="v1", metadata={"m": value}
        )
    assert info.value.field == "metadata"
    assert "limit" in str(info.value)


def test_a_body_over_the_cap_fails_its_delivery_with_the_limit() -> None:
    big = "x" * (MAX_BODY_BYTES // 4)  # within the metadata cap; the template uses it 4 times
    store = _store()
    with hw.Dispatcher(store, worker=False, network=PUBLIC) as dispatcher:
        event = hw.Event.artifact_created(
            entity=TEAM, project="p", collection="c", version="v1", metadata={"m": big}
        )
        deliveries = {d.automation: d for d in dispatcher.handle(event)}
    failed = deliveries.pop("meta-m")
    assert failed.status is hw.DeliveryStatus.FAILED
    assert failed.error is not None
    assert str(MAX_BODY_BYTES) in failed.error
    assert all(d.status is hw.DeliveryStatus.PENDING for d in deliveries.values())


def test_a_huge_step_is_refused_at_construction() -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Event.run_metrics(RUN, {"loss": 1.0}, step=10**5000)
    assert info.value.field == "step"
    # an int subclass is read as a plain int: its own methods never run
    event = hw.Event.run_metrics(RUN, {"loss": 1.0}, step=SneakyInt(7))
    assert type(event.step) is int
    assert event.step == 7
