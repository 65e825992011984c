"""The generated API reference (docs/reference) covers the public API.

A name counts as documented when a page of docs/reference has a
``::: dotted.path`` directive (mkdocstrings) whose last part is that name
and whose path leads to the very same object. Only such direct directives
count, not a module whose members mkdocstrings would list: so a name added
to an ``__all__`` fails here until a directive is written for it, and an
alias (``ChangeType`` is ``ChangeKind``) needs its own.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import hookwise
import hookwise.storage.protocol
import hookwise.testing

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^:::[ \t]+(?P<path>\S+)[ \t]*$", re.MULTILINE)
FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)

_MISSING = object()


def _resolve(path: str) -> object:
    """The object a dotted path names: the longest importable module, then
    attributes (as griffe finds it, for public paths)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _directives() -> dict[str, object]:
    found: dict[str, object] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for match in DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            found[match["path"]] = _resolve(match["path"])
    return found


DIRECTIVES = _directives()


def _documented(name: str, obj: object) -> bool:
    return any(
        path.rsplit(".", 1)[-1] == name and target is obj for path, target in DIRECTIVES.items()
    )


def test_the_reference_has_pages_and_directives() -> None:
    assert len(list(REFERENCE.glob("*.md"))) >= 5
    assert len(DIRECTIVES) >= len(hookwise.__all__)


@pytest.mark.parametrize("path", sorted(DIRECTIVES))
def test_every_directive_names_something_that_exists(path: str) -> None:
    assert DIRECTIVES[path] is not _MISSING, f"::: {path} names nothing importable"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        *[(hookwise, name) for name in hookwise.__all__],
        *[(hookwise.testing, name) for name in hookwise.testing.__all__],
        # the storage role protocols and every record that crosses them
        *[(hookwise.storage.protocol, name) for name in hookwise.storage.protocol.__all__],
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_public_name_has_a_directive(module: object, name: str) -> None:
    obj = getattr(module, name)
    assert _documented(name, obj), (
        f"{getattr(module, '__name__', module)}.{name} is public but no page of "
        f"docs/reference has a '::: ...{name}' directive for it"
    )


def _public_methods(cls: type) -> list[tuple[str, object]]:
    """Public callables and properties, inherited ones included, as written
    (a method that overrides a documented one without a docstring of its own
    shows none in the reference, so ``inspect.getdoc``'s inheritance is not
    used)."""
    methods = []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if isinstance(raw, property) or callable(raw):
            methods.append((name, raw))
    return methods


@pytest.mark.parametrize(
    "cls", [hookwise.Admin, hookwise.Dispatcher, hookwise.AsyncDispatcher], ids=lambda c: c.__name__
)
def test_every_public_method_has_a_docstring(cls: type) -> None:
    methods = _public_methods(cls)
    assert len(methods) >= 5
    bare = [name for name, method in methods if not (getattr(method, "__doc__", "") or "").strip()]
    assert bare == [], f"{cls.__name__} methods without a docstring: {bare}"


def test_the_classes_are_documented_with_their_members() -> None:
    """Their directives leave members on: a ``members:`` option under one
    would hide methods the test above checks."""
    seen = set()
    for page in REFERENCE.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for name in ("Admin", "Dispatcher", "AsyncDispatcher"):
            pattern = rf"^:::[ \t]+\S*\b{name}[ \t]*\n((?:[ \t]+\S.*\n)*)"
            for block in re.finditer(pattern, text, re.MULTILINE):
                seen.add(name)
                assert not re.search(r"^\s+members:", block[1], re.MULTILINE), (page.name, name)
    assert seen == {"Admin", "Dispatcher", "AsyncDispatcher"}


def test_reference_pages_have_no_code_blocks_to_run() -> None:
    """tests/test_docs.py runs every fenced block; these pages are directives."""
    for page in REFERENCE.glob("*.md"):
        assert not FENCE.search(page.read_text(encoding="utf-8")), page.name


def test_the_docstrings_rest_roles_become_optional_cross_references() -> None:
    """docs/reference/_griffe_roles.py, which mkdocs.yml loads: no role is
    left for Markdown to show as ``:class:``, and a short name resolves from
    where the docstring is (``:meth:`close``` in Dispatcher is its close)."""
    assert "docs/reference/_griffe_roles.py" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    import griffe  # the docs extra, which the tests session installs too

    extension = griffe.load_extensions(str(REFERENCE / "_griffe_roles.py"))
    package = griffe.load("hookwise", search_paths=[str(ROOT / "src")], extensions=extension)

    close = '<autoref identifier="hookwise.dispatcher.Dispatcher.close" optional>`close`'
    assert close in package["dispatcher.Dispatcher"].docstring.value
    outbox = package["testing"].docstring.value
    assert (
        '<autoref identifier="hookwise.storage.protocol.Outbox" optional>`Outbox`</autoref>'
        in outbox
    )
    assert "against it:\n" in outbox  # a reST "::" shown as Sphinx shows it

    left = []
    stack = [package]
    while stack:
        obj = stack.pop()
        if obj.docstring is not None and re.search(r":[a-z]+:`", obj.docstring.value):
            left.append(obj.path)
        stack.extend(m for m in obj.members.values() if not m.is_alias)
    assert left == []
