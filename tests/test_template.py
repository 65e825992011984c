"""The payload template: syntax, errors with JSON paths, and the safety properties."""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookwise.errors import NotFoundError, TemplateError, ValidationError
from hookwise.template import (
    ACCESS_TOKEN,
    DEFAULT_TEMPLATE,
    METADATA_PREFIX,
    VARIABLES,
    Template,
    compile_template,
)

# Values no generated text will contain by chance.
SECRETS = {
    "ACCESS_TOKEN": "SECRET-" + uuid.uuid4().hex,
    "SECRET_A": "SECRET-" + uuid.uuid4().hex,
    "SECRET_B": "SECRET-" + uuid.uuid4().hex,
    "UNUSED_C": "SECRET-" + uuid.uuid4().hex,
}

ARTIFACT_VALUES = {
    "project_name": "model-registry",
    "entity_name": "ml-team",
    "event_type": "ADD_ARTIFACT_ALIAS",
    "event_author": "alice",
    "alias": "production",
    "artifact_collection_name": "churn",
    "artifact_version": "v12",
    "artifact_version_string": "ml-team/model-registry/churn:v12",
}


def render_json(template: Template, values: dict[str, str], **kwargs: Any) -> Any:
    body = template.render(values, **kwargs)
    assert isinstance(body, bytes)
    return json.loads(body.decode("utf-8"))


def error_of(source: Any) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        compile_template(source)
    return info.value


# -- public constants ---------------------------------------------------------


def test_variables_are_the_documented_built_ins() -> None:
    assert (
        frozenset(
            {
                "project_name",
                "entity_name",
                "event_type",
                "event_author",
                "alias",
                "tag",
                "artifact_collection_name",
                "artifact_version",
                "artifact_version_string",
                "run_id",
                "run_name",
                "run_user",
                "run_state",
                "metric_name",
                "metric_value",
                "step",
            }
        )
        == VARIABLES
    )
    assert ACCESS_TOKEN == "ACCESS_TOKEN"
    assert ACCESS_TOKEN not in VARIABLES
    assert METADATA_PREFIX == "artifact_metadata."


def test_default_template_has_every_built_in_and_no_secrets() -> None:
    assert compile_template(None) is DEFAULT_TEMPLATE
    assert DEFAULT_TEMPLATE.variables == VARIABLES
    assert DEFAULT_TEMPLATE.secrets == frozenset()
    out = render_json(DEFAULT_TEMPLATE, ARTIFACT_VALUES)
    assert set(out) == VARIABLES
    assert next(iter(out)) == "event_type"
    for name in VARIABLES:
        assert out[name] == ARTIFACT_VALUES.get(name, "")
    DEFAULT_TEMPLATE.validate(allowed_secrets=())


# -- the W&B examples ---------------------------------------------------------


def test_github_repository_dispatch() -> None:
    source = {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "event_author": "${event_author}",
            "artifact_version": "${artifact_version}",
            "artifact_version_string": "${artifact_version_string}",
            "artifact_collection_name": "${artifact_collection_name}",
            "project_name": "${project_name}",
            "entity_name": "${entity_name}",
        },
    }
    template = compile_template(source)
    assert template.secrets == frozenset()
    assert template.variables == set(source["client_payload"])
    assert render_json(template, ARTIFACT_VALUES) == {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "event_author": "alice",
            "artifact_version": "v12",
            "artifact_version_string": "ml-team/model-registry/churn:v12",
            "artifact_collection_name": "churn",
            "project_name": "model-registry",
            "entity_name": "ml-team",
        },
    }
    # JSON text gives the same template, key order kept.
    assert compile_template(json.dumps(source, indent=2)) == template
    assert template.render(ARTIFACT_VALUES).startswith(b'{"event_type":"BUILD_AND_DEPLOY"')


def test_microsoft_teams_message_card() -> None:
    source = """{
      "@type": "MessageCard",
      "@context": "http://schema.org/extensions",
      "summary": "New Notification",
      "sections": [
        {
          "activityTitle": "Notification from WANDB",
          "text": "This is an example message sent via Teams webhook.",
          "facts": [
            {"name": "Author", "value": "${event_author}"},
            {"name": "Event Type", "value": "${event_type}"}
          ],
          "markdown": true
        }
      ]
    }"""
    out = render_json(compile_template(source), ARTIFACT_VALUES)
    assert out["@type"] == "MessageCard"
    assert out["sections"][0]["facts"] == [
        {"name": "Author", "value": "alice"},
        {"name": "Event Type", "value": "ADD_ARTIFACT_ALIAS"},
    ]
    assert out["sections"][0]["markdown"] is True


def test_slack_blocks() -> None:
    source = {
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "New version *${artifact_version_string}* tagged `${alias}` "
                    "by ${event_author} <https://wandb.ai/${entity_name}/${project_name}|open>",
                },
            }
        ]
    }
    out = render_json(compile_template(source), ARTIFACT_VALUES)
    assert out["blocks"][0]["text"]["text"] == (
        "New version *ml-team/model-registry/churn:v12* tagged `production` "
        "by alice <https://wandb.ai/ml-team/model-registry|open>"
    )


def test_access_token_and_secret_in_a_payload() -> None:
    template = compile_template({"token": "${ACCESS_TOKEN}", "sig": "$SECRET_A"})
    assert template.secrets == {"ACCESS_TOKEN", "SECRET_A"}
    assert template.variables == frozenset()
    out = render_json(template, {}, secrets=SECRETS)
    assert out == {"token": SECRETS["ACCESS_TOKEN"], "sig": SECRETS["SECRET_A"]}
    display = template.render_display({})
    assert json.loads(display) == {"token": "${ACCESS_TOKEN}", "sig": "${SECRET_A}"}


# -- syntax -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${alias}", "production"),
        ("$alias", "production"),
        ("pre-${alias}-post", "pre-production-post"),
        ("${alias}${tag}", "productiongold"),
        ("$alias$tag", "productiongold"),
        ("$alias.x", "production.x"),
        ("$alias-x", "production-x"),
        ("$aliasx", "SECRET:aliasx"),  # greedy name: a secret "aliasx"
        ("$$", "$"),
        ("$$alias", "$alias"),
        ("$$${alias}", "$production"),
        ("$${alias}", "${alias}"),
        ("$$$$", "$$"),
        ("$", "$"),
        ("a $", "a $"),
        ("$5 and $ 6", "$5 and $ 6"),
        ("cost: $1.50!", "cost: $1.50!"),
        ("$-$.$}$)$\n", "$-$.$}$)$\n"),
        ("100%$", "100%$"),
        ("{alias}", "{alias}"),
        ("}${alias}{", "}production{"),
        ("${artifact_metadata.accuracy}", "0.93"),
        ("${artifact_metadata.name}", "resnet"),
        ("${artifact_metadata.with space.and.dots $x}", "odd"),
        ("${artifact_metadata.missing}", ""),
        ("${run_id}", ""),  # does not apply to this event
        ("${ACCESS_TOKEN}", "SECRET:ACCESS_TOKEN"),
        ("$ACCESS_TOKEN", "SECRET:ACCESS_TOKEN"),
        ("${SECRET_A}", "SECRET:SECRET_A"),
        ("$SECRET_A", "SECRET:SECRET_A"),
        ("${_private9}", "SECRET:_private9"),
    ],
)
def test_string_value_syntax(text: str, expected: str) -> None:
    secrets = dict(SECRETS, aliasx="X", _private9="P")
    template = compile_template({"v": text})
    out = render_json(
        template,
        {"alias": "production", "tag": "gold"},
        secrets=secrets,
        metadata={"accuracy": 0.93, "name": "resnet", "with space.and.dots $x": "odd"},
    )
    if expected.startswith("SECRET:"):
        expected = secrets[expected.removeprefix("SECRET:")]
    assert out == {"v": expected}


@pytest.mark.parametrize(
    ("text", "variables", "secrets"),
    [
        ("plain", set(), set()),
        ("$$ and $1", set(), set()),
        ("${alias} $tag", {"alias", "tag"}, set()),
        (
            "${artifact_metadata.k} ${artifact_metadata.a b}",
            {"artifact_metadata.k", "artifact_metadata.a b"},
            set(),
        ),
        ("${ACCESS_TOKEN} $SIGNING_KEY ${OTHER}", set(), {"ACCESS_TOKEN", "SIGNING_KEY", "OTHER"}),
        ("$Alias ${TAG}", set(), {"Alias", "TAG"}),  # names are case-sensitive
    ],
)
def test_variables_and_secrets_are_collected(
    text: str, variables: set[str], secrets: set[str]
) -> None:
    template = compile_template([{"x": text}])
    assert template.variables == variables
    assert template.secrets == secrets


def test_metadata_rendering_of_non_strings() -> None:
    template = compile_template({k: f"${{artifact_metadata.{k}}}" for k in "abcdefghi"})

    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    cyclic: list[object] = []
    cyclic.append(cyclic)
    out = render_json(
        template,
        {},
        metadata={
            "a": 0.93,
            "b": True,
            "c": None,
            "d": 12,
            "e": {"x": [1, "é"]},
            "f": 'a "quoted" str',
            "g": Opaque(),
            "h": {(1, 2): "tuple key"},  # not JSON-able: falls back to str()
            "i": cyclic,
        },
    )
    assert out == {
        "a": "0.93",
        "b": "true",
        "c": "null",
        "d": "12",
        "e": '{"x":[1,"é"]}',
        "f": 'a "quoted" str',
        "g": '"opaque!"',  # default=str, then JSON: a quoted string
        "h": "{(1, 2): 'tuple key'}",
        "i": "[[...]]",
    }


def test_metadata_is_top_level_only() -> None:
    template = compile_template({"v": "${artifact_metadata.a.b}"})
    assert render_json(template, {}, metadata={"a": {"b": "nested"}}) == {"v": ""}
    assert render_json(template, {}, metadata={"a.b": "flat"}) == {"v": "flat"}


def test_missing_built_ins_render_empty_and_none_counts_as_missing() -> None:
    template = compile_template({"a": "[${alias}]", "t": "[$tag]"})
    assert render_json(template, {}) == {"a": "[]", "t": "[]"}
    assert render_json(template, {"alias": None}) == {"a": "[]", "t": "[]"}  # type: ignore[dict-item]


def test_non_string_values_render_like_metadata() -> None:
    template = compile_template({"s": "${step}", "m": "${metric_value}"})
    out = render_json(template, {"step": 100, "metric_value": 0.12})  # type: ignore[dict-item]
    assert out == {"s": "100", "m": "0.12"}


def test_keys_are_literal() -> None:
    template = compile_template({"$$": "$$", "$": "$", "a$": 1, "$1": 2, "x $ y": "${alias}"})
    out = render_json(template, {"alias": "A"})
    assert out == {"$$": "$", "$": "$", "a$": 1, "$1": 2, "x $ y": "A"}


def test_non_string_scalars_pass_through() -> None:
    source = {"i": 7, "f": 2.5, "neg": -0.0, "big": 10**30, "t": True, "f2": False, "n": None}
    template = compile_template(source)
    assert template.render({}) == json.dumps(source, separators=(",", ":")).encode()
    assert compile_template([]).render({}) == b"[]"
    assert compile_template("{}").render({}) == b"{}"
    assert compile_template('"${alias}"').render({"alias": "x"}) == b'"x"'
    assert compile_template("42").render({}) == b"42"


def test_tuples_and_str_subclasses_are_normalised() -> None:
    class Color(str, Enum):
        RED = "red"

    class Level(IntEnum):
        HIGH = 3

    template = compile_template({Color.RED: (Color.RED, Level.HIGH, "${alias}")})
    assert template.source == '{"red":["red",3,"${alias}"]}'
    assert render_json(template, {"alias": "x"}) == {"red": ["red", 3, "x"]}
    assert compile_template(OrderedDict(a="$$")).render({}) == b'{"a":"$"}'


def test_templates_without_placeholders_render_precomputed_bytes() -> None:
    template = compile_template({"a": "no placeholders $$ here", "b": [1, 2]})
    first = template.render({"alias": "x"}, secrets=SECRETS)
    assert first == b'{"a":"no placeholders $ here","b":[1,2]}'
    assert template.render({}) is first
    assert template.render_display({}) == first.decode()


def test_non_ascii_output_is_utf8_not_escaped() -> None:
    template = compile_template({"msg": "模型 ${alias} ✓"})
    body = template.render({"alias": "é😀"})
    assert body == '{"msg":"模型 é😀 ✓"}'.encode()


def test_lone_surrogate_falls_back_to_ascii_escapes() -> None:
    template = compile_template({"msg": "模型 ${alias}"})
    body = template.render({"alias": "bad\ud800"})
    text = body.decode("utf-8")  # always valid UTF-8
    assert text == '{"msg":"\\u6a21\\u578b bad\\ud800"}'
    assert json.loads(text) == {"msg": "模型 bad\ud800"}
    display = template.render_display({"alias": "bad\ud800"})
    display.encode("utf-8")
    assert json.loads(display) == {"msg": "模型 bad\ud800"}


def test_surrogates_in_the_template_itself() -> None:
    template = compile_template('{"k\\udc00": "v\\ud800 ${alias}"}')
    template.source.encode("utf-8")
    out = render_json(template, {"alias": "x"})
    assert out == {"k\udc00": "v\ud800 x"}


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path", "fragment"),
    [
        ({"a": "${alias"}, "$.a", "unterminated placeholder '${alias' (missing '}')"),
        ({"a": "x ${"}, "$.a", "unterminated"),
        ({"a": "${}"}, "$.a", "empty placeholder"),
        ({"a": {"b": ["ok", "${foo-bar}"]}}, "$.a.b[1]", "unknown variable 'foo-bar'"),
        ({"a": "${ alias }"}, "$.a", "unknown variable ' alias '"),
        ({"a": "${artifact_metadata.}"}, "$.a", "unknown variable 'artifact_metadata.'"),
        ({"a": "${9lives}"}, "$.a", "unknown variable '9lives'"),
        ({"a": "${a.b}"}, "$.a", "unknown variable 'a.b'"),
        ({"my key": {"x y": "${?}"}}, '$["my key"]["x y"]', "unknown variable '?'"),
        ({"@type": [{"": "${-}"}]}, '$["@type"][0][""]', "unknown variable"),
        ({"${alias}": 1}, '$["${alias}"]', "placeholders are only allowed in string values"),
        ({"a": {"$ACCESS_TOKEN": 1}}, '$.a["$ACCESS_TOKEN"]', "only allowed in string values"),
        ({"x${": 1}, '$["x${"]', "only allowed in string values"),
        ({"${}": 1}, '$["${}"]', "only allowed in string values"),
        ({"a": float("nan")}, "$.a", "not finite"),
        ({"a": [float("inf")]}, "$.a[0]", "not finite"),
        ({"a": {1, 2}}, "$.a", "set is not a JSON type"),
        ({"a": b"bytes"}, "$.a", "bytes is not a JSON type"),
        ({"a": {1: "x"}}, "$.a", "object keys must be strings, not int"),
        ([object()], "$[0]", "object is not a JSON type"),
        (b"{}", "$", "got bytes"),
        (42, "$", "got int"),
        ('{"a": NaN}', "$.a", "NaN is not JSON"),
        ('{"a": [-Infinity]}', "$.a[0]", "-Infinity is not JSON"),
        ('{"a": 1e999}', "$.a", "not finite"),
        ('{"a": {"b": 1, "c": 2, "b": 3}}', "$.a.b", "appears more than once"),
        ('{"a": 1, "a": 1}', "$.a", "appears more than once"),
        ("", "$", "not valid JSON: Expecting value (line 1, column 1)"),
        ('{"a": 1,\n  "b": }', "$", "(line 2, column 8)"),
        ("{'a': 1}", "$", "not valid JSON"),
        ('{"a": 1} trailing', "$", "Extra data"),
        ("hello ${alias}", "$", "not valid JSON"),
        ("1" * 5000, "$", "not valid JSON"),
        ({"a": 10**5000}, "$", "cannot serialise as JSON"),
    ],
)
def test_errors_name_the_json_path(source: Any, path: str, fragment: str) -> None:
    error = error_of(source)
    assert error.path == path
    assert str(error).startswith(f"payload: at {path}: ")
    assert fragment in str(error)
    assert isinstance(error, ValidationError)
    assert isinstance(error, ValueError)


def test_error_reports_the_given_field() -> None:
    with pytest.raises(TemplateError, match=r"^action\.payload: at \$\.a: ") as info:
        compile_template({"a": "${}"}, field="action.payload")
    assert info.value.field == "action.payload"


def test_size_limit() -> None:
    big = "x" * (64 * 1024)
    with pytest.raises(TemplateError, match="larger than 65536 bytes"):
        compile_template(json.dumps(big))  # 2 bytes over with the quotes
    with pytest.raises(TemplateError, match="larger than 65536 bytes"):
        compile_template({"a": big})
    with pytest.raises(TemplateError, match="larger than 65536 bytes"):
        compile_template(json.dumps("é" * 33_000, ensure_ascii=False))  # bytes, not characters
    just_fits = json.dumps("x" * (64 * 1024 - 2))
    assert compile_template(just_fits).render({}) == just_fits.encode()


def test_depth_limit_and_cycles() -> None:
    deep: Any = "leaf"
    for _ in range(64):
        deep = [deep]
    compile_template(deep)
    with pytest.raises(TemplateError, match="nested more than 64 levels"):
        compile_template([deep])
    with pytest.raises(TemplateError, match="nested more than 64 levels"):
        compile_template("[" * 60_000)
    with pytest.raises(TemplateError, match="nested more than 64 levels"):
        compile_template("[" * 100 + "]" * 100)
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(TemplateError, match="nested more than"):
        compile_template(cyclic)


# -- validate -----------------------------------------------------------------


def test_validate_accepts_allowed_secrets() -> None:
    template = compile_template({"a": "${ACCESS_TOKEN}", "b": ["$SIGNING_KEY"]})
    template.validate(allowed_secrets={"ACCESS_TOKEN", "SIGNING_KEY"})
    template.validate(allowed_secrets=["SIGNING_KEY", "ACCESS_TOKEN", "EXTRA"])
    compile_template({"a": "${alias}"}).validate(allowed_secrets=())


def test_validate_names_the_first_offending_path() -> None:
    template = compile_template(
        {
            "event_type": "x",
            "client_payload": {"ok": "$SIGNING_KEY", "token": "${FOO}"},
            "z": "$BAR",
        }
    )
    with pytest.raises(TemplateError) as info:
        template.validate(allowed_secrets={"SIGNING_KEY", "ACCESS_TOKEN"})
    assert info.value.path == "$.client_payload.token"
    assert str(info.value) == (
        "payload: at $.client_payload.token: secret 'FOO' is not one of this webhook's "
        "secrets (allowed: ACCESS_TOKEN, SIGNING_KEY)"
    )


def test_validate_messages_for_no_secrets_access_token_and_short_form() -> None:
    with pytest.raises(
        TemplateError, match=r"at \$\.t: secret 'ACCESS_TOKEN' .*allowed: none.*access token"
    ):
        compile_template({"t": "${ACCESS_TOKEN}"}).validate(allowed_secrets=())
    with pytest.raises(
        TemplateError, match=r"at \$\[0\]: secret 'price' .*write \$\$ for a literal \$"
    ):
        compile_template(["costs $price"]).validate(allowed_secrets={"SIGNING_KEY"})


def test_validate_uses_the_compile_field() -> None:
    template = compile_template({"t": "$X"}, field="action.payload")
    with pytest.raises(TemplateError, match=r"^action\.payload: at \$\.t: "):
        template.validate(allowed_secrets=())


# -- render errors ------------------------------------------------------------


def test_missing_secret_raises_not_found_and_no_body() -> None:
    template = compile_template({"a": "${alias}", "b": "${SECRET_A}", "c": "$SECRET_B"})
    with pytest.raises(NotFoundError) as info:
        template.render({"alias": "x"}, secrets={"SECRET_A": SECRETS["SECRET_A"]})
    assert info.value.kind == "secret"
    assert info.value.key == "SECRET_B"
    assert str(info.value) == "secret 'SECRET_B' does not exist"
    with pytest.raises(NotFoundError):
        template.render({"alias": "x"})
    # render_display needs no secrets at all
    assert json.loads(template.render_display({"alias": "x"})) == {
        "a": "x",
        "b": "${SECRET_A}",
        "c": "${SECRET_B}",
    }


# -- one pass and injection ---------------------------------------------------


def test_one_pass_substituted_text_is_not_rescanned() -> None:
    template = compile_template({"alias": "${alias}", "meta": "${artifact_metadata.k}"})
    values = {"alias": "${ACCESS_TOKEN} $SECRET_A $$ ${"}
    out = render_json(template, values, secrets=SECRETS, metadata={"k": "${alias}${SECRET_B}"})
    assert out == {"alias": "${ACCESS_TOKEN} $SECRET_A $$ ${", "meta": "${alias}${SECRET_B}"}


def test_hostile_alias_cannot_add_keys_or_leak() -> None:
    hostile = '"}, "x": "${ACCESS_TOKEN}'
    template = compile_template(
        '{"event_type": "BUILD", "client_payload": {"alias": "${alias}", "who": "$event_author"}}'
    )
    body = template.render({"alias": hostile, "event_author": hostile}, secrets=SECRETS)
    out = json.loads(body)
    assert out == {"event_type": "BUILD", "client_payload": {"alias": hostile, "who": hostile}}
    for value in SECRETS.values():
        assert value.encode() not in body


def test_one_megabyte_metadata_string_renders_intact() -> None:
    big = ('0123456789abcdef"\\\n\u00e9' * 60_000)[: 1024 * 1024]
    template = compile_template({"notes": "<${artifact_metadata.notes}>"})
    out = render_json(template, {}, metadata={"notes": big})
    assert out == {"notes": f"<{big}>"}


# -- the Template object ------------------------------------------------------


def test_template_is_immutable_equal_by_source_and_hashable() -> None:
    a = compile_template({"x": "${alias}"})
    b = compile_template('{ "x" : "${alias}" }')
    c = compile_template({"x": "$alias"})
    assert a == b
    assert hash(a) == hash(b)
    assert a.source == '{"x":"${alias}"}'
    assert a != c  # different source text, even though it renders the same
    assert a != '{"x":"${alias}"}'
    assert len({a, b, c}) == 2
    with pytest.raises(AttributeError):
        a.source = "{}"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.secrets
    with pytest.raises(AttributeError):
        a.extra = 1
    with pytest.raises(TypeError):
        Template()


def test_repr_shows_source_never_values() -> None:
    template = compile_template({"token": "${ACCESS_TOKEN}", "a": "${alias}"})
    template.render({"alias": "VALUE-xyz"}, secrets=SECRETS)
    text = repr(template)
    assert text == """Template('{"token":"${ACCESS_TOKEN}","a":"${alias}"}')"""
    assert SECRETS["ACCESS_TOKEN"] not in text
    long = compile_template({"a": "x" * 1000})
    assert len(repr(long)) < 250
    assert repr(long).endswith("...')")


def test_pickle_and_copy() -> None:
    template = compile_template({"a": "${alias} $SECRET_A"}, field="action.payload")
    clone = pickle.loads(pickle.dumps(template))
    assert clone == template
    assert clone.render({"alias": "x"}, secrets=SECRETS) == template.render(
        {"alias": "x"}, secrets=SECRETS
    )
    with pytest.raises(TemplateError, match=r"^action\.payload: "):
        clone.validate(allowed_secrets=())
    assert copy.copy(template) is template
    assert copy.deepcopy(template) is template


def test_compiled_template_passes_through() -> None:
    template = compile_template({"a": "${alias}"})
    assert compile_template(template) is template  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------

ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.sampled_from(list('"\\\n\r\t\x00\x1f\x7f\u2028\u2029{}$')),
)
HOSTILE_FRAGMENTS = st.sampled_from(
    [
        "${ACCESS_TOKEN}",
        "$SECRET_A",
        "${SECRET_B}",
        "$$",
        "${",
        '"}, "x": "',
        "\\u0000",
        "</script>",
        "${artifact_metadata.k}",
        "😀",
        "\ud800",
    ]
)
VALUE_TEXT = st.lists(st.one_of(st.text(ANY_CHAR, max_size=8), HOSTILE_FRAGMENTS), max_size=5).map(
    "".join
)
KEY_TEXT = st.one_of(
    st.text(st.characters(exclude_characters="$", exclude_categories=()), max_size=6),
    st.sampled_from(["$", "$$", "a $", "$$x", "$1", "@type"]),
)
LITERAL = st.text(st.characters(exclude_characters="$", exclude_categories=()), max_size=8)
METADATA_KEYS = ["k", "with space", "dot.ted", "$x", "é"]
SECRET_NAMES = ["ACCESS_TOKEN", "SECRET_A", "SECRET_B"]


@dataclass(frozen=True)
class Str:
    """A generated string value: tokens that map to the template text and expectations."""

    tokens: tuple[tuple[str, str], ...]


TOKEN = st.one_of(
    LITERAL.map(lambda text: ("lit", text)),
    st.just(("dollar", "")),
    st.sampled_from(sorted(VARIABLES)).map(lambda n: ("var", n)),
    st.sampled_from(SECRET_NAMES).map(lambda n: ("secret", n)),
    st.sampled_from(METADATA_KEYS).map(lambda k: ("meta", k)),
)


@st.composite
def string_values(draw: st.DrawFn) -> Str:
    tokens = draw(st.lists(TOKEN, max_size=5))
    # A short-form name at the very end cannot be extended by following text.
    if draw(st.booleans()):
        tokens.append(("short", draw(st.sampled_from([*SECRET_NAMES, "alias", "step"]))))
    return Str(tuple(tokens))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    string_values(),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEY_TEXT, children, max_size=4),
    ),
    max_leaves=12,
)
# compile_template takes a dict or list (or JSON text) at the top.
TOP_TREES = st.one_of(st.lists(TREES, max_size=3), st.dictionaries(KEY_TEXT, TREES, max_size=3))
METADATA_VALUES = st.one_of(
    VALUE_TEXT,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


def template_of(tree: Any) -> Any:
    if isinstance(tree, Str):
        out = []
        for kind, name in tree.tokens:
            if kind == "lit":
                out.append(name)
            elif kind == "dollar":
                out.append("$$")
            elif kind == "meta":
                out.append("${artifact_metadata." + name + "}")
            elif kind == "short":
                out.append("$" + name)
            else:
                out.append("${" + name + "}")
        return "".join(out)
    if isinstance(tree, list):
        return [template_of(item) for item in tree]
    if isinstance(tree, dict):
        return {key: template_of(value) for key, value in tree.items()}
    return tree


def meta_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def expected_of(
    tree: Any,
    values: dict[str, str],
    metadata: dict[str, Any],
    secrets: dict[str, str] | None,
) -> Any:
    if isinstance(tree, Str):
        out = []
        for kind, name in tree.tokens:
            if kind == "lit":
                out.append(name)
            elif kind == "dollar":
                out.append("$")
            elif kind == "meta":
                out.append(meta_text(metadata[name]) if name in metadata else "")
            elif name in VARIABLES:
                out.append(values.get(name, ""))
            else:
                out.append("${" + name + "}" if secrets is None else secrets[name])
        return "".join(out)
    if isinstance(tree, list):
        return [expected_of(item, values, metadata, secrets) for item in tree]
    if isinstance(tree, dict):
        return {key: expected_of(value, values, metadata, secrets) for key, value in tree.items()}
    return tree


def secrets_named(tree: Any) -> set[str]:
    if isinstance(tree, Str):
        return {name for kind, name in tree.tokens if kind in ("secret", "short")} - VARIABLES
    if isinstance(tree, list):
        return set().union(*(secrets_named(item) for item in tree))
    if isinstance(tree, dict):
        return set().union(*(secrets_named(value) for value in tree.values()))
    return set()


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    tree=TOP_TREES,
    values=st.dictionaries(st.sampled_from(sorted(VARIABLES)), VALUE_TEXT),
    metadata=st.dictionaries(st.sampled_from(METADATA_KEYS), METADATA_VALUES),
    as_text=st.booleans(),
)
def test_render_is_structure_preserving_and_exact(
    tree: Any, values: dict[str, str], metadata: dict[str, Any], as_text: bool
) -> None:
    source = template_of(tree)
    template = compile_template(json.dumps(source) if as_text else source)
    named = secrets_named(tree)
    assert template.secrets == named

    body = template.render(values, secrets=SECRETS, metadata=metadata)
    text = body.decode("utf-8")  # always valid UTF-8
    assert json.loads(text) == expected_of(tree, values, metadata, SECRETS)
    for name, value in SECRETS.items():
        if name not in named:
            assert value not in text

    display = template.render_display(values, metadata=metadata)
    display.encode("utf-8")
    assert json.loads(display) == expected_of(tree, values, metadata, None)
    for value in SECRETS.values():
        assert value not in display
    for name in named:
        assert "${" + name + "}" in display

    # the canonical source compiles back to an equal template
    assert compile_template(template.source) == template


@PROPERTY_SETTINGS
@given(value=VALUE_TEXT, wrapper=st.sampled_from(["${alias}", "$alias"]))
def test_placeholder_only_value_round_trips(value: str, wrapper: str) -> None:
    template = compile_template({"a": wrapper, "b": [wrapper], "c": {"d": wrapper}})
    out = json.loads(template.render({"alias": value}, secrets=SECRETS))
    assert out == {"a": value, "b": [value], "c": {"d": value}}


@PROPERTY_SETTINGS
@given(value=VALUE_TEXT)
def test_metadata_string_round_trips(value: str) -> None:
    template = compile_template(["${artifact_metadata.notes}"])
    assert json.loads(template.render({}, metadata={"notes": value})) == [value]


@PROPERTY_SETTINGS
@given(text=st.text(ANY_CHAR, max_size=20))
def test_compile_never_crashes_unexpectedly(text: str) -> None:
    # Any string value either compiles or is refused with a TemplateError at its path.
    try:
        template = compile_template({"v": text})
    except TemplateError as error:
        path = error.path
    else:
        path = ""
        json.loads(template.render_display({}))
    assert path in ("", "$.v")
