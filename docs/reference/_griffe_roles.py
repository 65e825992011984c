"""A griffe extension for the API reference: reST in docstrings, as Markdown.

hookwise's docstrings are prose with a few reST habits: roles such as
:class:`~hookwise.storage.Outbox` or :meth:`close`, and a paragraph that ends
in ``::`` before an indented example. mkdocstrings renders docstrings as
Markdown, which would show ``:class:`` literally. Before rendering, this
extension rewrites each role into an *optional* cross-reference: a link when
the target is on a page of the reference, plain code when it is internal (so
naming an internal helper never breaks ``mkdocs build --strict``). A closing
``::`` becomes ``:``, as Sphinx shows it; the indented block after it is
already a Markdown code block.

Loaded from mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``);
it is part of the docs build, not of the package.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|mod|exc|obj|const):`(?P<text>[^`]+)`")
LITERAL_INTRO = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)
BARE_LITERAL_INTRO = re.compile(r"^([ \t]*)::[ \t]*$", re.MULTILINE)


def _target(obj: griffe.Object, name: str) -> str:
    """The dotted path a role names, resolved from where the docstring is."""
    if name.startswith("hookwise.") or name == "hookwise":
        return name
    head, _, rest = name.partition(".")
    try:
        resolved = obj.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
        return name
    return f"{resolved}.{rest}" if rest else resolved


def _rewrite(obj: griffe.Object, text: str) -> str:
    def role(match: re.Match[str]) -> str:
        body = match["text"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, name = explicit["title"], explicit["target"]
        else:
            name = body.lstrip("~!")
            title = name.rsplit(".", 1)[-1] if body.startswith("~") else name
        identifier = html.escape(_target(obj, name), quote=True)
        return f'<autoref identifier="{identifier}" optional>`{title}`</autoref>'

    text = ROLE.sub(role, text)
    text = BARE_LITERAL_INTRO.sub("", text)
    return LITERAL_INTRO.sub(":", text)


class ReSTRoles(griffe.Extension):
    """Rewrite reST roles and literal-block markers in every docstring of a package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
