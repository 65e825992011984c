"""Payload templates: compile once, validate against a webhook, render safely.

A template is JSON. Placeholders (``${name}``, short form ``$NAME``, ``$$`` for
a literal ``$``) are replaced only inside string *values* of the parsed tree,
and the result is serialised once, so no value can break out of its string or
add keys. Substitution is a single pass: substituted text is never scanned
again. The module is pure (no I/O): it is shared by the sync and async
dispatchers and by validation in ``Admin``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Final, final

from hookwise.errors import NotFoundError, TemplateError

__all__ = [
    "ACCESS_TOKEN",
    "DEFAULT_TEMPLATE",
    "MAX_BODY_BYTES",
    "METADATA_PREFIX",
    "VARIABLES",
    "Template",
    "compile_template",
]

# The order here is the order of the keys in DEFAULT_TEMPLATE.
_BUILTINS: Final = (
    "event_type",
    "event_author",
    "entity_name",
    "project_name",
    "artifact_collection_name",
    "artifact_version",
    "artifact_version_string",
    "alias",
    "tag",
    "run_id",
    "run_name",
    "run_user",
    "run_state",
    "metric_name",
    "metric_value",
    "step",
)

VARIABLES: Final[frozenset[str]] = frozenset(_BUILTINS)
"""The built-in variable names; one that does not apply to an event renders ``""``."""

ACCESS_TOKEN: Final = "ACCESS_TOKEN"  # noqa: S105 - a placeholder name, not a secret
"""The placeholder name for the webhook's access token (a secret like any other)."""

METADATA_PREFIX: Final = "artifact_metadata."
"""``${artifact_metadata.KEY}`` renders the top-level metadata key ``KEY``."""

MAX_SOURCE_BYTES: Final = 64 * 1024
"""Templates are small; the cap keeps a hostile one from costing memory or time."""

MAX_DEPTH: Final = 64
"""Nesting cap: deeper trees are refused (also stops self-referencing dicts)."""

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""A rendered body (and its display copy) is at most this many bytes (4 MiB,
room for a metadata value of 1 MiB even where JSON escaping makes it longer):
a delivery whose body would be larger fails, with the limit in its error,
and the event's other deliveries go out."""

_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One token per "$": "$$", "${...}" (maybe unterminated), "$NAME", or a lone "$".
_TOKEN: Final = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[^}]*)(?P<close>\})?|(?P<short>[A-Za-z_][A-Za-z0-9_]*))?"
)
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_EMPTY_METADATA: Final[Mapping[str, object]] = MappingProxyType({})
_REPR_LIMIT: Final = 200

# Reference kinds.
_BUILTIN: Final = 0
_SECRET: Final = 1
_METADATA: Final = 2


@final
class _Ref:
    """One placeholder occurrence, resolved at compile time to a kind and name."""

    __slots__ = ("kind", "name", "text")

    def __init__(self, kind: int, name: str) -> None:
        self.kind = kind
        self.name = name  # built-in or secret name, or the metadata KEY
        self.text = "${" + (METADATA_PREFIX + name if kind == _METADATA else name) + "}"


@final
class _Const:
    """A subtree without placeholders, already in its rendered form."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


@final
class _Str:
    """A string value with placeholders: literal text and references, in order,
    and its JSON path (for a render error)."""

    __slots__ = ("parts", "path")

    def __init__(self, parts: tuple[str | _Ref, ...], path: str) -> None:
        self.parts = parts
        self.path = path


@final
class _Obj:
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, _Node], ...]) -> None:
        self.items = items


@final
class _Arr:
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Node, ...]) -> None:
        self.items = items


_Node = _Const | _Str | _Obj | _Arr


@final
class _NonFinite:
    """What the parser returns for NaN/Infinity, so the error can name the path."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@final
class _DuplicateKey:
    """What the parser returns for an object with a repeated key (for the path)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _object_hook(pairs: list[tuple[str, object]]) -> object:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _DuplicateKey(key)
            seen.add(key)
    return result


def _dumps(value: object, *, ascii_only: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"), allow_nan=False)


def _dump_text(value: object) -> str:
    """Serialise to JSON text that always encodes as UTF-8 (lone surrogates get escaped)."""
    text = _dumps(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(value, ascii_only=True)
    return text


def _dump_bytes(value: object) -> bytes:
    text = _dumps(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(value, ascii_only=True).encode("ascii")


def _child(path: str, key: str) -> str:
    if _IDENT.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


class _Compiler:
    """Walks the JSON tree once: checks it, and builds the render nodes."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.variables: set[str] = set()
        self.secret_uses: list[tuple[str, str, bool]] = []  # (path, name, short form)
        self.has_refs = False

    def error(self, path: str, message: str) -> TemplateError:
        return TemplateError(path, message, field=self.field)

    def walk(self, value: object, path: str, depth: int) -> tuple[object, _Node]:
        """Return (the template value as plain JSON data, its render node)."""
        if value is None or isinstance(value, bool):
            return value, _Const(value)
        if isinstance(value, str):
            text = str.__str__(value)
            return text, self.string(text, path)
        if isinstance(value, int):
            number = int.__int__(value)
            return number, _Const(number)
        if isinstance(value, float):
            real = float.__float__(value)
            if not math.isfinite(real):
                raise self.error(path, f"{real} is not finite (JSON has no NaN or Infinity)")
            return real, _Const(real)
        if isinstance(value, _NonFinite):
            raise self.error(path, f"{value.text} is not JSON (JSON has no NaN or Infinity)")
        if isinstance(value, _DuplicateKey):
            raise self.error(
                _child(path, value.key), "this key appears more than once in its object"
            )
        if depth >= MAX_DEPTH:
            raise self.error(path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, Mapping):
            return self.mapping(value, path, depth)
        if isinstance(value, (list, tuple)):
            plain_items: list[object] = []
            nodes: list[_Node] = []
            for index, item in enumerate(value):
                plain, node = self.walk(item, f"{path}[{index}]", depth + 1)
                plain_items.append(plain)
                nodes.append(node)
            if all(isinstance(n, _Const) for n in nodes):
                return plain_items, _Const([n.value for n in nodes])  # type: ignore[union-attr]
            return plain_items, _Arr(tuple(nodes))
        raise self.error(
            path,
            f"{type(value).__name__} is not a JSON type "
            "(use dict, list, str, int, float, bool or None)",
        )

    def mapping(
        self, value: Mapping[object, object], path: str, depth: int
    ) -> tuple[object, _Node]:
        plain_obj: dict[str, object] = {}
        items: list[tuple[str, _Node]] = []
        for raw_key, item in value.items():
            if not isinstance(raw_key, str):
                raise self.error(path, f"object keys must be strings, not {type(raw_key).__name__}")
            key = str.__str__(raw_key)
            self.check_key(key, _child(path, key))
            plain, node = self.walk(item, _child(path, key), depth + 1)
            plain_obj[key] = plain
            items.append((key, node))
        if all(isinstance(node, _Const) for _, node in items):
            return plain_obj, _Const({k: n.value for k, n in items})  # type: ignore[union-attr]
        return plain_obj, _Obj(tuple(items))

    def check_key(self, key: str, path: str) -> None:
        """Keys are literal; refuse ones that look like placeholders, not to mislead."""
        if "$" not in key:
            return
        for match in _TOKEN.finditer(key):
            if match["braced"] is not None or match["short"] is not None:
                raise self.error(
                    path,
                    f"placeholders are only allowed in string values, not in keys "
                    f"({_shorten(match[0])!r})",
                )

    def string(self, text: str, path: str) -> _Node:
        if "$" not in text:
            return _Const(text)
        parts: list[str | _Ref] = []
        literal: list[str] = []
        position = 0
        for match in _TOKEN.finditer(text):
            literal.append(text[position : match.start()])
            position = match.end()
            if match["dollar"] is not None:
                literal.append("$")
                continue
            braced, short = match["braced"], match["short"]
            if braced is None and short is None:  # "$" then anything else: literal
                literal.append("$")
                continue
            if braced is not None and match["close"] is None:
                raise self.error(
                    path, f"unterminated placeholder {_shorten(match[0])!r} (missing '}}')"
                )
            if braced == "":
                raise self.error(path, "empty placeholder '${}' (write $$ for a literal $)")
            ref = self.resolve(braced if braced is not None else short, path, short is not None)
            chunk = "".join(literal)
            if chunk:
                parts.append(chunk)
            literal = []
            parts.append(ref)
        literal.append(text[position:])
        if not any(isinstance(part, _Ref) for part in parts):
            return _Const("".join(literal))
        tail = "".join(literal)
        if tail:
            parts.append(tail)
        self.has_refs = True
        return _Str(tuple(parts), path)

    def resolve(self, name: str | None, path: str, short: bool) -> _Ref:
        assert name is not None
        if name in VARIABLES:
            self.variables.add(name)
            return _Ref(_BUILTIN, name)
        if name.startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX) :]
            if not key:
                raise self.error(
                    path,
                    f"unknown variable {name!r} (metadata needs a key: ${{{METADATA_PREFIX}KEY}})",
                )
            self.variables.add(name)
            return _Ref(_METADATA, key)
        if _IDENT.fullmatch(name):
            self.secret_uses.append((path, name, short))
            return _Ref(_SECRET, name)
        raise self.error(path, f"unknown variable {_shorten(name)!r}")


def _value_text(value: object) -> str:
    """Text for a built-in value: strings as they are; None (absent) as ""."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return _metadata_text(value)


def _metadata_text(value: object) -> str:
    """Strings as they are; anything else as compact JSON (0.93 -> "0.93", True -> "true");
    what JSON cannot hold goes through ``str()`` first. Raises whatever the value's
    own methods raise (:class:`_Render` turns that into a TemplateError)."""
    if isinstance(value, str):
        return str.__str__(value)
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        # non-str keys, cycles: still render, as text; an integer beyond
        # Python's digit limit (and a __str__ that raises) raises again here
        return str.__str__(str(value))


class _Render:
    """One render: the values, and how many characters may still be added
    before the body is over :data:`MAX_BODY_BYTES` (checked as it grows, so a
    value referenced many times cannot build a huge body before the check)."""

    __slots__ = ("field", "left", "metadata", "secrets", "values")

    def __init__(
        self,
        values: Mapping[str, str],
        secrets: Mapping[str, str] | None,
        metadata: Mapping[str, object],
        field: str,
    ) -> None:
        self.values = values
        self.secrets = secrets
        self.metadata = metadata
        self.field = field
        self.left = MAX_BODY_BYTES

    def too_large(self, path: str) -> TemplateError:
        return TemplateError(
            path,
            f"the rendered body is larger than {MAX_BODY_BYTES} bytes (4 MiB), the limit",
            field=self.field,
        )

    def text(self, node: _Str) -> str:
        out: list[str] = []
        for part in node.parts:
            if isinstance(part, str):
                piece = part
            elif part.kind == _BUILTIN:
                piece = _value_text(self.values.get(part.name))
            elif part.kind == _METADATA:
                if part.name not in self.metadata:
                    continue
                try:
                    piece = _metadata_text(self.metadata[part.name])
                except Exception as exc:
                    raise TemplateError(
                        node.path,
                        f"{part.text} cannot be rendered ({_cause(exc)})",
                        field=self.field,
                    ) from None
            elif self.secrets is None:
                piece = part.text
            else:
                piece = self.secrets[part.name]
            self.left -= len(piece)
            if self.left < 0:
                raise self.too_large(node.path)
            out.append(piece)
        return "".join(out)

    def build(self, node: _Node) -> object:
        """The rendered JSON tree; ``secrets=None`` renders secret placeholders as text."""
        if isinstance(node, _Const):
            return node.value
        if isinstance(node, _Str):
            return self.text(node)
        if isinstance(node, _Obj):
            return {key: self.build(child) for key, child in node.items}
        return [self.build(child) for child in node.items]


def _cause(exc: BaseException) -> str:
    """Why a value could not be rendered, without running more of its code:
    the error's type, and its text only for Python's own errors."""
    name = type(exc).__name__
    if type(exc) in (ValueError, TypeError, RecursionError, OverflowError, UnicodeError):
        try:
            text = str(exc)
        except Exception:
            return name
        return f"{name}: {_shorten_long(text)}" if text else name
    return name


def _shorten_long(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


@final
class Template:
    """A compiled payload template: immutable, cheap to render many times.

    Build one with :func:`compile_template`. ``source`` is the canonical
    (compact) JSON text; templates with the same source are equal.
    """

    __slots__ = (
        "_body",
        "_display",
        "_field",
        "_root",
        "_secret_uses",
        "_secrets",
        "_source",
        "_variables",
    )

    _source: str
    _variables: frozenset[str]
    _secrets: frozenset[str]
    _field: str
    _root: _Node
    _secret_uses: tuple[tuple[str, str, bool], ...]
    _body: bytes | None
    _display: str | None

    def __init__(self) -> None:  # pragma: no cover - guarded, use compile_template
        raise TypeError("use hookwise.template.compile_template() to build a Template")

    @classmethod
    def _create(cls, source: str, root: _Node, compiler: _Compiler) -> Template:
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "_source", source)
        setattr_(self, "_variables", frozenset(compiler.variables))
        setattr_(self, "_secrets", frozenset(name for _, name, _ in compiler.secret_uses))
        setattr_(self, "_field", compiler.field)
        setattr_(self, "_root", root)
        setattr_(self, "_secret_uses", tuple(compiler.secret_uses))
        if compiler.has_refs:
            setattr_(self, "_body", None)
            setattr_(self, "_display", None)
        else:
            assert isinstance(root, _Const)
            setattr_(self, "_body", _dump_bytes(root.value))
            setattr_(self, "_display", _dump_text(root.value))
        return self

    @property
    def source(self) -> str:
        """The canonical (compact) JSON text: what to store, and what equality compares."""
        return self._source

    @property
    def variables(self) -> frozenset[str]:
        """Built-in names used, and metadata refs as ``"artifact_metadata.KEY"``."""
        return self._variables

    @property
    def secrets(self) -> frozenset[str]:
        """Secret names referenced (``"ACCESS_TOKEN"`` included), for :meth:`validate`."""
        return self._secrets

    def validate(self, *, allowed_secrets: Collection[str]) -> None:
        """Check that every secret the template names is one the webhook has.

        Raises :class:`TemplateError` at the first offending placeholder, so
        a bad automation is refused when saved rather than at delivery.
        """
        allowed = set(allowed_secrets)
        for path, name, short in self._secret_uses:
            if name in allowed:
                continue
            listed = ", ".join(sorted(allowed)) if allowed else "none"
            message = f"secret {name!r} is not one of this webhook's secrets (allowed: {listed})"
            if name == ACCESS_TOKEN:
                message += "; ${ACCESS_TOKEN} needs a webhook with an access token"
            elif short:
                message += "; write $$ for a literal $"
            raise TemplateError(path, message, field=self._field)

    def render(
        self,
        values: Mapping[str, str],
        *,
        secrets: Mapping[str, str] = _EMPTY,
        metadata: Mapping[str, object] = _EMPTY_METADATA,
    ) -> bytes:
        """The request body: UTF-8 JSON with every placeholder substituted.

        Built-ins missing from ``values`` and missing metadata keys render as
        ``""``; a missing secret raises :class:`NotFoundError` (no partial body).
        """
        if self._body is not None:
            return self._body
        for _, name, _ in self._secret_uses:
            if name not in secrets:
                raise NotFoundError("secret", name)
        render = _Render(values, secrets, metadata, self._field)
        body = _dump_bytes(render.build(self._root))
        if len(body) > MAX_BODY_BYTES:  # escaping can make the JSON longer than its text
            raise render.too_large("$")
        return body

    def render_display(
        self, values: Mapping[str, str], *, metadata: Mapping[str, object] = _EMPTY_METADATA
    ) -> str:
        """The copy kept in delivery history: secrets stay as ``${NAME}`` text."""
        if self._display is not None:
            return self._display
        render = _Render(values, None, metadata, self._field)
        display = _dump_text(render.build(self._root))
        if len(display) > MAX_BODY_BYTES // 4 and len(display.encode("utf-8")) > MAX_BODY_BYTES:
            raise render.too_large("$")
        return display

    def __repr__(self) -> str:
        source = self.source
        if len(source) > _REPR_LIMIT:
            source = source[: _REPR_LIMIT - 3] + "..."
        return f"Template({source!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Template):
            return self.source == other.source
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.source)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Template is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Template is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return _from_source, (self.source, self._field)

    def __copy__(self) -> Template:
        return self

    def __deepcopy__(self, memo: object) -> Template:
        return self


def _from_source(source: str, field: str) -> Template:
    """Rebuild a pickled template (pickle cannot set the frozen slots itself)."""
    return compile_template(source, field=field)


def _parse(source: str, field: str) -> object:
    if len(source) > MAX_SOURCE_BYTES or (
        len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES
    ):
        raise TemplateError(
            "$", f"template is larger than {MAX_SOURCE_BYTES} bytes (64 KiB)", field=field
        )
    try:
        return json.loads(source, object_pairs_hook=_object_hook, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            "$",
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            field=field,
        ) from None
    except RecursionError:
        raise TemplateError("$", f"nested more than {MAX_DEPTH} levels deep", field=field) from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise TemplateError("$", f"not valid JSON: {exc}", field=field) from None


def compile_template(
    source: str | Mapping[str, object] | Sequence[object] | None, *, field: str = "payload"
) -> Template:
    """Parse and check a template once, so rendering does no parsing.

    ``source`` is JSON text, or the tree itself (dicts, lists/tuples, str,
    int, finite float, bool, None); ``None`` gives :data:`DEFAULT_TEMPLATE`.
    Errors are :class:`TemplateError` naming the JSON path; ``field`` is the
    name the error reports (e.g. ``"action.payload"``).
    """
    if source is None:
        return DEFAULT_TEMPLATE
    if isinstance(source, Template):  # callers may pass a compiled one through
        return source
    if isinstance(source, str):
        tree = _parse(str.__str__(source), field)
    elif isinstance(source, (Mapping, list, tuple)):
        tree = source
    else:
        raise TemplateError(
            "$",
            f"a template is JSON text, a dict or a list; got {type(source).__name__}",
            field=field,
        )
    compiler = _Compiler(field)
    try:
        plain, root = compiler.walk(tree, "$", 0)
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError("$", f"could not be read ({_cause(exc)})", field=field) from None
    try:
        text = _dump_text(plain)
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise TemplateError("$", f"cannot serialise as JSON: {exc}", field=field) from None
    if not isinstance(source, str) and len(text.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise TemplateError(
            "$", f"template is larger than {MAX_SOURCE_BYTES} bytes (64 KiB)", field=field
        )
    return Template._create(text, root, compiler)


DEFAULT_TEMPLATE: Final[Template] = compile_template(
    {name: "${" + name + "}" for name in _BUILTINS}
)
"""Used when an automation gives no payload: every built-in variable, by name."""
