"""hookwise apply: a description file made true in the store, checked whole
first, secrets only by environment reference, and a second run a no-op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hookwise as hw
from hookwise.apply import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_ITEMS,
    ApplyError,
    apply,
    load_description,
    read_description,
)
from hookwise.cli import main
from hookwise.vault import Vault

TEAM = "ml-team"
TOKEN = "ghp_apply-TOKEN-value-0123456789"
SIGNING = "apply-SIGNING-value-fedcba9876"
ROTATED = "ghp_apply-ROTATED-value-5555555"
ENV = {"GITHUB_TOKEN": TOKEN, "SIGNING_KEY": SIGNING}

SETUP_TOML = """\
version = 1

[[secrets]]
team = "ml-team"
name = "GITHUB_TOKEN"
from_env = "GITHUB_TOKEN"

[[secrets]]
team = "ml-team"
name = "SIGNING_KEY"
from_env = "SIGNING_KEY"

[[webhooks]]
team = "ml-team"
name = "github-dispatch"
url = "https://api.github.com/repos/acme/models/dispatches"
access_token = "GITHUB_TOKEN"
secret = "SIGNING_KEY"
signing = ["standard-webhooks"]
max_in_flight = 2

[[automations]]
name = "deploy-on-production"
description = "start the deploy workflow"
scope = { kind = "registry", entity = "ml-team", project = "model-registry" }
event = { type = "OnAddArtifactAlias", alias = "^production$" }

[automations.action]
type = "send_webhook"
webhook = "github-dispatch"
payload = { event_type = "deploy", client_payload = { version = "${artifact_version_string}" } }
"""

CREATED = [
    "created secret ml-team/GITHUB_TOKEN",
    "created secret ml-team/SIGNING_KEY",
    "created webhook ml-team/github-dispatch",
    "created automation ml-team/deploy-on-production",
]


def setup_document() -> dict[str, Any]:
    """SETUP_TOML as the JSON document it equals."""
    return {
        "version": 1,
        "secrets": [
            {"team": TEAM, "name": "GITHUB_TOKEN", "from_env": "GITHUB_TOKEN"},
            {"team": TEAM, "name": "SIGNING_KEY", "from_env": "SIGNING_KEY"},
        ],
        "webhooks": [
            {
                "team": TEAM,
                "name": "github-dispatch",
                "url": "https://api.github.com/repos/acme/models/dispatches",
                "access_token": "GITHUB_TOKEN",
                "secret": "SIGNING_KEY",
                "signing": ["standard-webhooks"],
                "max_in_flight": 2,
            }
        ],
        "automations": [
            {
                "name": "deploy-on-production",
                "description": "start the deploy workflow",
                "scope": {"kind": "registry", "entity": TEAM, "project": "model-registry"},
                "event": {"type": "OnAddArtifactAlias", "alias": "^production$"},
                "action": {
                    "type": "send_webhook",
                    "webhook": "github-dispatch",
                    "payload": {
                        "event_type": "deploy",
                        "client_payload": {"version": "${artifact_version_string}"},
                    },
                },
            }
        ],
    }


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", hw.crypto.generate_key_text())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "hookwise.db")


def write(tmp_path: Path, text: str, name: str = "setup.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def snapshot(db: str) -> tuple[Any, ...]:
    """Everything apply could change, the store's revision included."""
    with hw.SQLiteStorage(db) as store:
        return (
            store.revision(),
            store.list_secrets(TEAM),
            store.list_webhooks(TEAM),
            store.list_automations(),
        )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["apply", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


# -- the acceptance test: twice is a no-op ------------------------------------------


def test_apply_twice_changes_nothing_the_second_time(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML)
    code, out, _ = run(capsys, path, "--db", db)
    assert code == 0
    assert out[1:] == [*CREATED, "apply: 4 created, 0 updated, 0 unchanged"]
    first = snapshot(db)

    code, out, _ = run(capsys, path, "--db", db)
    assert code == 0
    assert out[1:] == [line.replace("created", "unchanged") for line in CREATED] + [
        "apply: 0 created, 0 updated, 4 unchanged"
    ]
    assert snapshot(db) == first  # same revision: not one write

    with hw.SQLiteStorage(db) as store:
        vault = Vault(store.key)
        values = {r.name: vault.open_secret(r) for r in store.list_secrets(TEAM)}
        webhook = store.get_webhook(TEAM, "github-dispatch")
        automation = store.get_automation(TEAM, "deploy-on-production")
    assert values == ENV
    assert webhook is not None
    assert (webhook.signing, webhook.max_in_flight) == ((hw.Scheme.STANDARD,), 2)
    assert automation is not None
    assert isinstance(automation.action, hw.SendWebhook)
    assert json.loads(automation.action.payload.source)["event_type"] == "deploy"


def test_no_secret_value_is_printed(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML)
    for _ in range(2):
        main(["apply", path, "--db", db])
    assert main(["secrets", "list", "--db", db, "--team", TEAM]) == 0
    captured = capsys.readouterr()
    for value in ENV.values():
        assert value not in captured.out + captured.err


def test_json_and_toml_describe_the_same(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", write(tmp_path, SETUP_TOML), "--db", db]) == 0
    capsys.readouterr()
    as_json = write(tmp_path, json.dumps(setup_document()), "setup.json")
    code, out, _ = run(capsys, as_json, "--db", db)
    assert code == 0
    assert out[-1] == "apply: 0 created, 0 updated, 4 unchanged"


def test_a_changed_value_or_field_is_updated_and_nothing_else(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML)
    assert main(["apply", path, "--db", db]) == 0
    with hw.SQLiteStorage(db) as store:
        signing_before = store.get_secret(TEAM, "SIGNING_KEY")
    env.setenv("GITHUB_TOKEN", ROTATED)
    write(tmp_path, SETUP_TOML.replace("max_in_flight = 2", "max_in_flight = 3"))
    capsys.readouterr()
    code, out, _ = run(capsys, path, "--db", db)
    assert code == 0
    assert out[1:] == [
        "updated secret ml-team/GITHUB_TOKEN",
        "unchanged secret ml-team/SIGNING_KEY",
        "updated webhook ml-team/github-dispatch",
        "unchanged automation ml-team/deploy-on-production",
        "apply: 0 created, 2 updated, 2 unchanged",
    ]
    with hw.SQLiteStorage(db) as store:
        token = store.get_secret(TEAM, "GITHUB_TOKEN")
        assert token is not None
        assert Vault(store.key).open_secret(token) == ROTATED
        assert store.get_secret(TEAM, "SIGNING_KEY") == signing_before  # not re-sealed
        webhook = store.get_webhook(TEAM, "github-dispatch")
        assert webhook is not None
        assert webhook.max_in_flight == 3


def test_enabled_left_out_keeps_the_stored_state(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML)
    assert main(["apply", path, "--db", db]) == 0
    with hw.SQLiteStorage(db) as store:
        admin = hw.Admin(store)
        admin.disable_webhook(TEAM, "github-dispatch", "410 Gone")
        admin.disable_automation(TEAM, "deploy-on-production")
    capsys.readouterr()
    code, out, _ = run(capsys, path, "--db", db)
    assert out[-1] == "apply: 0 created, 0 updated, 4 unchanged"
    with hw.SQLiteStorage(db) as store:
        webhook = store.get_webhook(TEAM, "github-dispatch")
        assert webhook is not None
        assert (webhook.enabled, webhook.disabled_reason) == (False, "410 Gone")

    said = SETUP_TOML.replace(
        'secret = "SIGNING_KEY"\n', 'secret = "SIGNING_KEY"\nenabled = true\n'
    )
    said = said.replace('description = "start', 'enabled = true\ndescription = "start')
    write(tmp_path, said)
    code, out, _ = run(capsys, path, "--db", db)
    assert code == 0
    assert "updated webhook ml-team/github-dispatch" in out
    assert "updated automation ml-team/deploy-on-production" in out
    with hw.SQLiteStorage(db) as store:
        webhook = store.get_webhook(TEAM, "github-dispatch")
        automation = store.get_automation(TEAM, "deploy-on-production")
    assert webhook is not None
    assert (webhook.enabled, webhook.disabled_reason) == (True, None)
    assert automation is not None
    assert automation.enabled


def test_a_dry_run_stores_nothing_and_creates_no_database(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML)
    code, out, _ = run(capsys, path, "--db", db, "--dry-run")
    assert code == 0
    assert out[1:] == [
        *(line.replace("created", "would create") for line in CREATED),
        "apply (dry run): would create 4, would update 0, 0 unchanged; nothing stored",
    ]
    assert not Path(db).exists()
    assert main(["apply", path, "--db", db]) == 0
    before = snapshot(db)
    env.setenv("SIGNING_KEY", "another-signing-value")
    capsys.readouterr()
    code, out, _ = run(capsys, path, "--db", db, "--dry-run")
    assert "would update secret ml-team/SIGNING_KEY" in out
    assert snapshot(db) == before


# -- what the file may not say --------------------------------------------------------


def problems(data: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ApplyError) as raised:
        read_description(data, environ=ENV if environ is None else environ)
    assert "nothing stored" in str(raised.value)
    return list(raised.value.problems)


def test_a_value_in_the_file_is_refused_and_not_echoed() -> None:
    data = setup_document()
    data["secrets"][0] = {"team": TEAM, "name": "GITHUB_TOKEN", "value": TOKEN}
    [problem] = problems(data)
    assert problem.startswith("secrets[0].value: secret values never go in the file")
    assert "from_env" in problem
    assert TOKEN not in problem


def test_a_missing_environment_variable_is_named() -> None:
    [problem] = problems(setup_document(), environ={"GITHUB_TOKEN": TOKEN})
    assert problem == (
        "secrets[1].from_env: environment variable 'SIGNING_KEY' is not set: export it first"
    )
    [empty] = problems(setup_document(), environ={**ENV, "SIGNING_KEY": ""})
    assert empty == "secrets[1].from_env: environment variable 'SIGNING_KEY' is empty"


def test_the_store_key_is_never_a_team_secret() -> None:
    data = setup_document()
    data["secrets"][1]["from_env"] = "HOOKWISE_SECRET_KEY"
    [problem] = problems(data, environ={**ENV, "HOOKWISE_SECRET_KEY": "k"})
    assert problem.startswith("secrets[1].from_env: HOOKWISE_SECRET_KEY is the store's own key")


def test_every_problem_is_reported_with_its_place() -> None:
    data = setup_document()
    data["extra"] = 1
    data["secrets"].append("GITHUB_TOKEN")
    data["secrets"].append({"team": TEAM, "name": "X", "from_env": 5})
    data["webhooks"][0]["url"] = 5
    data["webhooks"].append({"team": TEAM, "name": "b", "url": "https://example.com", "colour": 1})
    data["webhooks"].append({"team": TEAM, "name": "c", "url": "https://example.com/c"})
    data["webhooks"].append({"team": TEAM, "name": "c", "url": "https://example.com/d"})
    del data["automations"][0]["scope"]["entity"]
    data["automations"].append({**setup_document()["automations"][0], "event": {"type": "Nope"}})
    found = problems(data)
    assert found == [
        "extra: unexpected key (a description has version, secrets, webhooks and automations)",
        "secrets[2]: expected an object, not a string",
        "secrets[3].from_env: must be the name of an environment variable",
        "webhooks[0].url: must be a non-empty string",
        "webhooks[1]: unexpected colour",
        "webhooks[3]: ml-team/c is described already, by webhooks[2]",
        "automations[0].scope: missing entity",
        "automations[1].event: unknown type 'Nope'",
    ]
    assert "8 problems, nothing stored:" in str(ApplyError("f", found))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "file: expected an object (a table), not a list"),
        ("text", "file: expected an object (a table), not a string"),
        ({"secrets": {"team": TEAM}}, "secrets: expected a list of objects, not an object"),
        ({"webhooks": 3}, "webhooks: expected a list of objects, not a number"),
        ({"automations": [True]}, "automations[0]: expected an object, not a boolean"),
        ({"version": 2}, "version: must be 1 (the only format this hookwise reads)"),
        ({"version": "1"}, "version: must be 1 (the only format this hookwise reads)"),
        ({"version": True}, "version: must be 1 (the only format this hookwise reads)"),
        (
            {"secrets": [{"team": TEAM, "name": "A", "from_env": "A", "note": "x"}]},
            "secrets[0].note: unexpected key (a secret has team, name and from_env)",
        ),
        ({"secrets": [{"team": TEAM, "from_env": "A"}]}, "secrets[0].name: missing"),
        (
            {"webhooks": [{"team": TEAM, "name": "w", "url": "https://e.com", "v": 9}]},
            "webhooks[0]: format version 9 is not supported (this hookwise reads version 1; "
            "a newer hookwise may have written it)",
        ),
        (
            {"webhooks": [{"team": TEAM, "name": "w", "url": "https://e.com", "rate_limit": 1e9}]},
            "webhooks[0].rate_limit: must be None or requests per second, from 0.001 to 100000",
        ),
    ],
)
def test_input_of_the_wrong_type(data: Any, expected: str) -> None:
    assert problems(data) == [expected]


def test_a_bad_payload_names_its_place() -> None:
    data = setup_document()
    data["automations"][0]["action"]["payload"] = {"token": "${SOMEONE_ELSES}"}
    description = read_description(data, environ=ENV)  # the file is well formed
    with pytest.raises(ApplyError) as raised:
        apply(hw.MemoryStorage(), description)
    [problem] = raised.value.problems
    assert problem.startswith("automations[0].action.payload: at $.token:")


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("w") as file:
        file.write('{"secrets": [' + " " * (MAX_FILE_BYTES + 10) + "]}")
    with pytest.raises(ApplyError) as raised:
        load_description(path, environ=ENV)
    assert raised.value.problems == (f"file: larger than {MAX_FILE_BYTES} bytes",)


def test_too_many_entries_are_refused() -> None:
    entry = {"team": TEAM, "name": "A", "from_env": "GITHUB_TOKEN"}
    assert problems({"secrets": [entry] * (MAX_ITEMS + 1)}) == [
        f"secrets: more than {MAX_ITEMS} entries"
    ]


@pytest.mark.parametrize("name", ["deep.json", "deep.toml"])
@pytest.mark.parametrize("levels", [MAX_DEPTH + 5, 100_000])
def test_deep_nesting_is_refused(tmp_path: Path, name: str, levels: int) -> None:
    if name.endswith(".json"):
        text = '{"webhooks": ' + "[" * levels + "]" * levels + "}"
    else:
        text = "webhooks = " + "[" * levels + "]" * levels + "\n"
    with pytest.raises(ApplyError) as raised:
        load_description(write(tmp_path, text, name), environ=ENV)
    assert raised.value.problems == (f"file: nested more than {MAX_DEPTH} levels deep",)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("setup.yaml", "{}", "file: name it .json or .toml, so its format is known"),
        ("setup.json", "{", "file: not valid JSON"),
        ("setup.json", '{"version": 1, "version": 1}', "the key 'version' appears twice"),
        ("setup.toml", "version = ", "file: not valid TOML"),
        ("setup.toml", "[[webhooks]]\nwhen = 1979-05-27\n", "webhooks[0]: holds a value JSON"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(ApplyError) as raised:
        load_description(write(tmp_path, text, name), environ=ENV)
    assert expected in raised.value.problems[0]


def test_a_missing_file_is_a_clear_error(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(tmp_path / "nothere.toml"), "--db", db)
    assert code == 2
    assert out == []
    assert "nothere.toml: 1 problem, nothing stored:\n  file: cannot read it" in err
    assert not Path(db).exists()


# -- the half-way rule ----------------------------------------------------------------


def test_a_problem_found_by_the_store_checks_stores_nothing(
    tmp_path: Path, env: pytest.MonkeyPatch, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is well formed, but its last entries fail Admin's checks (a
    webhook that does not exist, plain http): the first three, which would
    pass, are not stored either."""
    assert main(["apply", write(tmp_path, "version = 1\n"), "--db", db]) == 0
    before = snapshot(db)
    data = setup_document()
    data["webhooks"].append({"team": TEAM, "name": "plain", "url": "http://example.com/hook"})
    data["automations"][0]["action"]["webhook"] = "nowhere"
    path = write(tmp_path, json.dumps(data), "setup.json")
    capsys.readouterr()
    code, out, err = run(capsys, path, "--db", db)
    assert code == 2
    assert out == [f"apply: {path} -> {db}"]  # no change was reported: none was made
    assert "2 problems, nothing stored:" in err
    assert "webhooks[1].url: plain http is refused" in err
    assert (
        "automations[0].action.webhook: webhook 'nowhere' does not exist in team 'ml-team'" in err
    )
    assert snapshot(db) == before
    # --allow-http lets the http one through, and the automation still holds it all back
    code, _, err = run(capsys, path, "--db", db, "--allow-http")
    assert code == 2
    assert "1 problem, nothing stored:" in err
    assert snapshot(db) == before


def test_a_bad_secret_for_its_role_stores_nothing(env: pytest.MonkeyPatch) -> None:
    """A token with a line break cannot be a bearer token: refused when the
    webhook that uses it is checked, and the secrets before it are not kept."""
    store = hw.MemoryStorage()
    description = read_description(setup_document(), environ={**ENV, "GITHUB_TOKEN": "a b\n"})
    with pytest.raises(ApplyError) as raised:
        apply(store, description)
    problem, then = raised.value.problems
    assert problem.startswith("webhooks[0].access_token: secret 'GITHUB_TOKEN' must be visible")
    assert "a b" not in problem
    assert then == "automations[0]: not checked: it needs webhooks[0], which failed"
    assert store.revision() == 0
    assert store.list_secrets(TEAM) == []


class ReadersAndAlice:
    """Alice may do anything; anyone may read."""

    def allows(self, actor: str | None, action: str, target: object) -> bool:
        return actor == "alice" or str(action).endswith(".read")


def test_a_refused_actor_changes_nothing() -> None:
    store = hw.MemoryStorage()
    authorizer = ReadersAndAlice()
    description = read_description(setup_document(), environ=ENV)
    with pytest.raises(ApplyError) as raised:
        apply(store, description, authorizer=authorizer, actor="bob")
    assert len(raised.value.problems) == 4
    assert raised.value.problems[0].startswith("secrets[0]: actor 'bob' may not secret.create")
    assert store.revision() == 0
    changes = apply(store, description, authorizer=authorizer, actor="alice")
    assert [c.verb for c in changes] == ["created"] * 4
    # an unchanged record is still asked about: comparing a secret takes the
    # right to update it, comparing a webhook or automation the right to read it
    with pytest.raises(ApplyError) as again:
        apply(store, description, authorizer=authorizer, actor="bob")
    assert again.value.problems[0].startswith("secrets[0]: actor 'bob' may not secret.update")
    # the webhook and automation are stored already, and bob may read them:
    # only the secrets are refused
    assert len(again.value.problems) == 2
    assert again.value.problems[1].startswith("secrets[1]: actor 'bob' may not secret.update")
    assert [c.verb for c in apply(store, description, authorizer=authorizer, actor="alice")] == [
        "unchanged"
    ] * 4


class Racing(hw.MemoryStorage):
    """A store where someone else creates the automation between apply's
    check and its write."""

    def create_automation(self, automation: hw.Automation) -> None:
        raise hw.AlreadyExistsError("automation", f"{automation.team}/{automation.name}")


def test_a_store_changed_between_check_and_write_is_reported_as_partial() -> None:
    store = Racing()
    description = read_description(setup_document(), environ=ENV)
    seen: list[str] = []
    with pytest.raises(ApplyError) as raised:
        apply(store, description, progress=lambda change: seen.append(change.describe()))
    assert raised.value.partial
    assert "the changes reported before this were stored" in str(raised.value)
    assert "nothing stored" not in str(raised.value)
    assert seen == CREATED[:3]  # what was reported is what was stored
    assert store.get_webhook(TEAM, "github-dispatch") is not None


def test_a_webhook_action_without_payload_sends_the_default_template() -> None:
    data = setup_document()
    del data["automations"][0]["action"]["payload"]
    store = hw.MemoryStorage()
    description = read_description(data, environ=ENV)
    apply(store, description)
    automation = store.get_automation(TEAM, "deploy-on-production")
    assert automation is not None
    assert isinstance(automation.action, hw.SendWebhook)
    assert automation.action.payload.source == hw.SendWebhook(webhook="x").payload.source
    assert [c.verb for c in apply(store, description)] == ["unchanged"] * 4


def test_toml_without_a_reader_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.10 has no tomllib: the error says what to do."""
    monkeypatch.setattr("hookwise.apply._toml_reader", lambda: None)
    with pytest.raises(ApplyError) as raised:
        load_description(write(tmp_path, SETUP_TOML), environ=ENV)
    [problem] = raised.value.problems
    assert "Python 3.11" in problem
    assert "pip install tomli" in problem
    assert "JSON" in problem
    json_file = write(tmp_path, json.dumps(setup_document()), "setup.json")
    assert len(load_description(json_file, environ=ENV).secrets) == 2  # JSON still reads


def test_a_long_list_of_problems_is_cut_short_in_the_message() -> None:
    bad = [{"team": TEAM, "name": f"S{i}", "from_env": "NOT_SET"} for i in range(60)]
    with pytest.raises(ApplyError) as raised:
        read_description({"secrets": bad}, environ={})
    assert len(raised.value.problems) == 60
    message = str(raised.value)
    assert message.startswith("description: 60 problems, nothing stored:")
    assert message.count("\n  secrets[") == 50
    assert message.endswith("\n  ... and 10 more")


def test_an_apply_error_pickles() -> None:
    import pickle

    error = ApplyError("setup.toml", ["webhooks[0].url: bad"], partial=True)
    again = pickle.loads(pickle.dumps(error))
    assert (again.problems, again.partial, str(again)) == (error.problems, True, str(error))


# -- review: all or nothing, races, enabling, odd --db ----------------------------------


def test_an_apply_interrupted_while_writing_stores_nothing(
    env: pytest.MonkeyPatch, db: str
) -> None:
    """SQLite offers one transaction: a failure after some writes (here the
    progress output, as a closed pipe would) takes all of them back."""
    description = read_description(setup_document(), environ=ENV)
    with hw.SQLiteStorage(db) as store:
        before = store.revision()
        shown: list[str] = []

        def progress(change: Any) -> None:
            shown.append(change.describe())
            if len(shown) == 3:
                raise BrokenPipeError

        with pytest.raises(BrokenPipeError):
            apply(store, description, progress=progress)
        assert store.revision() == before
        assert store.list_secrets(TEAM) == []
        assert store.list_webhooks(TEAM) == []


class StaleRead(hw.MemoryStorage):
    """Another apply stores the webhook between this one's read and write."""

    def __init__(self) -> None:
        super().__init__(hw.SecretKey.generate())
        self.stale = 0

    def get_webhook(self, team: str, name: str) -> hw.Webhook | None:
        if self.stale:
            self.stale -= 1
            return None
        return super().get_webhook(team, name)


def test_a_record_made_by_a_concurrent_apply_is_compared_not_refused() -> None:
    description = read_description(setup_document(), environ=ENV)
    store = StaleRead()
    apply(store, description)
    store.stale = 1  # the write's read (the check reads a copy in memory)
    changes = apply(store, description)
    assert [c.verb for c in changes] == ["unchanged"] * len(changes)


def test_enabled_true_turns_a_webhook_on_as_an_admin_would(
    env: pytest.MonkeyPatch, db: str
) -> None:
    document = setup_document()
    with hw.SQLiteStorage(db) as store:
        apply(store, read_description(document, environ=ENV))
        store.note_failure(TEAM, "github-dispatch", 1_000.0)
        hw.Admin(store).disable_webhook(TEAM, "github-dispatch", "failing for 5 days")
        # enabled = false again: unchanged, and the reason is kept
        document["webhooks"][0]["enabled"] = False
        [*_, same_hook, _auto] = apply(store, read_description(document, environ=ENV))
        assert (same_hook.kind, same_hook.verb) == ("webhook", "unchanged")
        stored = store.get_webhook(TEAM, "github-dispatch")
        assert stored is not None
        assert stored.disabled_reason == "failing for 5 days"
        # enabled = true: on again, and its failing streak starts over
        document["webhooks"][0]["enabled"] = True
        apply(store, read_description(document, environ=ENV))
        stored = store.get_webhook(TEAM, "github-dispatch")
        assert stored is not None
        assert stored.enabled
        assert store.note_failure(TEAM, "github-dispatch", 2_000.0) == 2_000.0


@pytest.mark.parametrize("where", ["", ":memory:", "file:x?mode=memory"])
def test_a_database_that_would_vanish_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    path = write(tmp_path, SETUP_TOML)
    code, out, err = run(capsys, path, "--db", where)
    assert code == 2
    assert "give the path of a SQLite file" in err
    assert not any(line.startswith("created") for line in out)


def test_a_url_the_policy_refuses_names_the_options(
    env: pytest.MonkeyPatch, tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SETUP_TOML.replace("https://", "http://"))
    code, _out, err = run(capsys, path, "--db", db)
    assert code == 2
    assert "plain http is refused" in err
    assert "--allow-http" in err


def test_a_secret_taken_off_a_webhook_and_its_payload_together_applies() -> None:
    """The check runs against the store as it is at each step: the webhook
    update alone would break the stored payload, the payload update alone is
    fine, so apply finds the order that works instead of refusing the file."""
    store = hw.MemoryStorage(hw.SecretKey.generate())
    uses_token = setup_document()
    uses_token["automations"][0]["action"]["payload"]["auth"] = "${GITHUB_TOKEN}"
    apply(store, read_description(uses_token, environ=ENV))
    without = setup_document()
    del without["webhooks"][0]["access_token"]
    changes = apply(store, read_description(without, environ=ENV))
    assert sorted((c.kind, c.verb) for c in changes if c.verb != "unchanged") == [
        ("automation", "updated"),
        ("webhook", "updated"),
    ]
    webhook = store.get_webhook(TEAM, "github-dispatch")
    assert webhook is not None
    assert webhook.access_token is None


def test_a_file_that_no_order_makes_valid_is_refused_whole() -> None:
    store = hw.MemoryStorage(hw.SecretKey.generate())
    document = setup_document()
    del document["webhooks"][0]["access_token"]
    document["automations"][0]["action"]["payload"]["auth"] = "${GITHUB_TOKEN}"
    with pytest.raises(ApplyError) as raised:
        apply(store, read_description(document, environ=ENV))
    [problem] = raised.value.problems
    assert problem.startswith("automations[0].action.payload: at $.auth: secret 'GITHUB_TOKEN'")
    assert store.list_webhooks(TEAM) == []
    assert store.list_secrets(TEAM) == []


def test_a_number_too_long_to_read_is_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, '{"version": ' + "9" * 5000 + "}", name="long.json")
    with pytest.raises(ApplyError, match="more than 4300 digits") as raised:
        load_description(path)
    assert "set_int_max_str_digits" not in str(raised.value)
