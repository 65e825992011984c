"""Sessions CI runs: tests (with coverage), walkthrough (the README and quickstart in a
bare install), lint, typecheck, docs."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "walkthrough", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    # docs: tests/test_api_reference.py loads the reference's griffe extension
    session.install("-e", ".[tests,aiohttp,docs]")
    session.run(
        "pytest",
        "--cov=hookwise",
        "--cov-report=term-missing:skip-covered",
        *session.posargs,
    )


@nox.session
def walkthrough(session: nox.Session) -> None:
    """A new user's first hour: the README and the quickstart, run block by
    block in an environment holding only what the README installs (the
    library, no extras) and pytest to drive them."""
    session.install("-e", ".", "pytest")
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/test_docs.py", "-k", "README or quickstart"
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".", "ruff==0.17.6", "import-linter==2.17")
    session.run("ruff", "check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("lint-imports")  # the layers written in pyproject.toml


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[tests,aiohttp]", "mypy==2.4.1")
    session.run("mypy", "--strict", "src")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")
