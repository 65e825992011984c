"""Every code block of README.md and docs/ runs as written.

A page is run top to bottom, as a reader would copy it:

- ``python`` blocks run in order in one namespace per page (a later block
  may use what an earlier one made);
- ``bash`` blocks run with ``bash -euo pipefail``; what a block exports is
  seen by the blocks after it (python ones included), as in a terminal;
- everything runs in a fresh, empty folder holding ``.venv`` (a link to the
  environment running the tests, so ``.venv/bin/hookwise`` works as the
  README writes it) with ``HOOKWISE_SECRET_KEY`` unset;
- a block whose first line is a comment starting ``# fragment`` is shown, not
  run: the comment says why (it installs, runs until stopped, or is one line
  of a larger program);
- other languages (``json``, ``toml``, ``text``) are data, not run.

The network is closed while a page runs, as far as this file can close it:

- in the pytest process (``python`` blocks, and the dispatchers and
  threads they start), a name other than ``localhost`` does not resolve and
  a connection to anything but a loopback address is refused, and every
  refusal fails the page, even one a worker thread swallowed;
- in every Python process a page starts (``hookwise ...``, ``python ...``
  from a ``bash`` block or from ``subprocess`` in a ``python`` one) the
  same holds: a ``sitecustomize`` on ``PYTHONPATH`` installs it at start-up
  and writes each refusal to a file the page reads, so a ``hookwise worker``
  that logged the error and went on still fails the page;
- other programs (``curl``, ``wget``) are not guarded at the socket: a
  ``bash`` block runs with ``http_proxy``, ``https_proxy`` and
  ``all_proxy`` (both cases) pointing at 127.0.0.1:9, where nothing
  listens, and ``NO_PROXY`` for loopback, so a client that honours those
  fails fast; that failure is not recorded (``|| true`` would hide it), and
  a program that ignores proxies (``openssl s_client``, ``nc``, ``dig``)
  reaches the network. So does a Python process started with ``python
  -I``, ``-S`` or ``-E``, or with ``PYTHONPATH`` cleared (``env -i``).
  The guard removes those proxies from a Python process's environment (a
  Python client meets the guard, which records, instead of a proxy, which
  does not), so a program a Python process starts has neither. hookwise's
  own senders ignore proxies anyway (they call httpx transports made with
  ``trust_env=False`` directly; aiohttp's session has ``trust_env=False``):
  the socket guard is what stops them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = ("python", "py", "bash", "sh", "shell")
ALIASES = {"py": "python", "sh": "bash", "shell": "bash"}
# CommonMark: a fence is three or more backticks or tildes; the info string of
# a backtick fence may not hold a backtick (that line is inline code), a tilde
# fence's may hold anything. The closing fence is the same character, at least
# as long as the opening one, with nothing after it.
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}(?=[^`]*$)|~{3,})[ \t]*(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    source: str

    @property
    def fragment(self) -> bool:
        first = self.source.lstrip().splitlines()[:1]
        return bool(first) and first[0].lstrip().lower().startswith("# fragment")

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, dedented (a block may sit in a list)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip().split()
        language = info[0].lower().lstrip("{.").rstrip("}") if info else ""
        body: list[str] = []
        j = i + 1
        closing = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
        while j < len(lines) and closing.fullmatch(lines[j]) is None:
            text = lines[j]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            j += 1
        found.append(Block(page, i + 1, language, "\n".join(body) + "\n"))
        i = j + 1
    return found


_LOCAL_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class ClosedNetwork:
    """Loopback only, and a record of everything else that was tried (a
    refusal inside a worker thread would otherwise go unseen)."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def refuse(self, what: str) -> OSError:
        with self._lock:
            self.refused.append(what)
        return OSError(f"tests/test_docs.py: the network is closed to {what}")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if name is not None and name.lower() not in _LOCAL_NAMES and not _is_loopback(name):
                raise socket.gaierror(socket.EAI_NONAME, str(self.refuse(f"resolving {name!r}")))
            return real_getaddrinfo(host, *args, **kwargs)

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
                raise self.refuse(f"connecting to {address!r}")

        def connect(sock: socket.socket, address: Any) -> None:
            check(sock, address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            check(sock, address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


# Installed in every Python process a page starts (see the module docstring).
SUBPROCESS_GUARD = r'''"""tests/test_docs.py: this process may reach loopback addresses only."""
import ipaddress
import os
import socket

_LOG = os.environ.get("HOOKWISE_DOCS_REFUSED_LOG", "")
_LOCAL = {"localhost", "localhost.", "ip6-localhost"}
_getaddrinfo = socket.getaddrinfo
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _loopback(host):
    try:
        return isinstance(host, str) and ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{what} (pid {os.getpid()})\n")
    return OSError(f"tests/test_docs.py: the network is closed to {what}")


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.lower() not in _LOCAL and not _loopback(name):
        raise socket.gaierror(socket.EAI_NONAME, str(_refuse(f"resolving {name!r}")))
    return _getaddrinfo(host, *args, **kwargs)


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise _refuse(f"connecting to {address!r}")


def connect(sock, address):
    _check(sock, address)
    return _connect(sock, address)


def connect_ex(sock, address):
    _check(sock, address)
    return _connect_ex(sock, address)


# The proxies a bash block sets are for programs the guard cannot reach: a
# Python client would send to them (loopback, so allowed, and not recorded)
# instead of meeting the guard.
for _name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    if os.environ.get(_name) == "http://127.0.0.1:9":
        del os.environ[_name]

socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
'''

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there
# for the programs a bash block starts (see the module docstring)
PROXIES = {
    **dict.fromkeys(("http_proxy", "https_proxy", "all_proxy"), NOWHERE),
    **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"), NOWHERE),
    "no_proxy": "127.0.0.1,localhost,::1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}


def close_subprocess_network(guard: Path) -> Path:
    """Set ``os.environ`` so that the processes a page starts are closed too;
    return the file their refusals go to."""
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SUBPROCESS_GUARD, encoding="utf-8")
    refused = guard / "refused.log"
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{guard}{os.pathsep}{path}" if path else str(guard)
    os.environ["HOOKWISE_DOCS_REFUSED_LOG"] = str(refused)
    return refused


def _environment_from(dump: bytes) -> Iterator[tuple[str, str]]:
    for item in dump.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            yield os.fsdecode(name), os.fsdecode(value)


def run_bash(block: Block, folder: Path) -> None:
    """Run a shell block; carry what it exported over into ``os.environ``."""
    dump = folder / ".env-after-block"
    script = f"{block.source}\nenv -0 > {dump}\n"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env={**os.environ, **PROXIES},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{block.where}: the bash block exited with {done.returncode}\n"
            f"--- block\n{block.source}--- stdout\n{done.stdout}--- stderr\n{done.stderr}",
            pytrace=False,
        )
    after = dict(_environment_from(dump.read_bytes()))
    dump.unlink()
    for name in set(os.environ) - set(after):
        del os.environ[name]
    for name, value in after.items():
        if name in PROXIES or name in ("_", "SHLVL", "PWD", "OLDPWD"):
            continue
        if os.environ.get(name) != value:
            os.environ[name] = value


def run_python(block: Block, namespace: dict[str, Any]) -> None:
    code = compile(block.source, block.where, "exec")
    try:
        exec(code, namespace)
    except BaseException as exc:
        raise AssertionError(f"{block.where}: {type(exc).__name__}: {exc}") from exc


RUNNERS: dict[str, Callable[[Block, Path, dict[str, Any]], None]] = {
    "python": lambda b, _f, ns: run_python(b, ns),
    "bash": lambda b, f, _ns: run_bash(b, f),
}


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def reader_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder, as a reader's terminal would start in, and an
    environment the page changes only for itself."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    saved = os.environ.copy()
    monkeypatch.chdir(tmp_path)
    os.environ.pop("HOOKWISE_SECRET_KEY", None)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    close_subprocess_network(tmp_path.parent / f"{tmp_path.name}-network-guard")
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_block_runs(page: Path, reader_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    network = ClosedNetwork()
    network.install(monkeypatch)
    # a module of its own, as a script is: a dataclass or a pickle defined in
    # a snippet looks its module up in sys.modules
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, Any] = module.__dict__
    for block in blocks(page):
        language = ALIASES.get(block.language, block.language)
        if language not in RUNNERS or block.fragment:
            continue
        RUNNERS[language](block, reader_folder, namespace)
    leftover = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.daemon
    ]
    assert not leftover, f"{_page_id(page)} left threads running: {leftover}"
    log = Path(os.environ["HOOKWISE_DOCS_REFUSED_LOG"])
    in_subprocesses = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    refused = [*network.refused, *in_subprocesses]
    assert not refused, f"{_page_id(page)} tried to reach the network: {refused}"


def test_every_page_is_checked() -> None:
    """Nothing escapes by a spelling the runner does not know: a block is run,
    marked a fragment, or in a language that is data."""
    data = {"", "json", "toml", "text", "yaml", "console", "http", "ini", "jsonc", "mermaid"}
    unknown = [
        f"{b.where} ({b.language})"
        for page in PAGES
        for b in blocks(page)
        if b.language not in RUN and b.language not in data
    ]
    assert not unknown, f"blocks in a language the docs runner does not know: {unknown}"


# What ``bash -e`` cannot see: the block goes on, and passes, as if it had worked.
SILENT_FAILURES = (
    (
        re.compile(r"^[ \t]*export[ \t]+[A-Za-z_][A-Za-z0-9_]*=[^#\n]*(?:\$\(|`)", re.MULTILINE),
        '`export NAME="$(cmd)"` is 0 when cmd fails: write NAME="$(cmd)", then `export NAME`',
    ),
    (
        re.compile(r"&&[ \t]*export\b"),
        '`test ... && export NAME` never fails: write `[ -n "$NAME" ] || { echo ... >&2; false; }`,'
        " then `export NAME`",
    ),
)


def _shell_blocks() -> Iterator[Block]:
    for page in PAGES:
        for b in blocks(page):
            if ALIASES.get(b.language, b.language) == "bash" and not b.fragment:
                yield b


def silent_failures(block: Block) -> list[str]:
    """Where a failure in ``block`` would not fail it: an export that hides a
    command's status, and a wait loop (``COND && break``) whose condition is
    not checked again after its ``done`` (it ends quietly when COND never
    came true)."""
    page = block.where.rsplit(":", 1)[0]

    def at(offset: int) -> str:  # the page's line: the block starts after its fence
        return f"{page}:{block.line + 1 + offset}"

    found = [
        f"{at(block.source[: m.start()].count(chr(10)))}: {why}"
        for pattern, why in SILENT_FAILURES
        for m in pattern.finditer(block.source)
    ]
    lines = block.source.splitlines()
    for n, line in enumerate(lines):
        if "&& break" not in line:
            continue
        condition = re.split(r"\bdo\b|;", line.split("&& break")[0])[-1].strip()
        end = next((k for k in range(n, len(lines)) if re.search(r"\bdone\b", lines[k])), None)
        after = "" if end is None else "\n".join(lines[end:]).split("done", 1)[1]
        if condition not in after:
            found.append(
                f"{at(n)}: a wait loop ends quietly when `{condition}` never comes true:"
                " check it again after `done`"
            )
    return found


def test_no_block_fails_silently() -> None:
    """A run block fails when what it does fails (see ``silent_failures``)."""
    found = [problem for b in _shell_blocks() for problem in silent_failures(b)]
    assert not found, "failures bash -e would not see:\n" + "\n".join(found)


def test_silent_failures_are_found() -> None:
    page = ROOT / "README.md"
    source = (
        'export K="$(hookwise keygen)"\n'
        'test -n "$K" && export K\n'
        "for _ in $(seq 9); do [ -e a ] && break; sleep 0.1; done\n"
        "for _ in $(seq 9); do\n  grep -q ok log && break\n  sleep 0.1\ndone\ngrep -q ok log\n"
        'K="$(hookwise keygen)"\nexport K\nexport J="$K"  # no command\n'
    )
    found = silent_failures(Block(page, 1, "bash", source))
    assert [f.split(":", 2)[1] for f in found] == ["2", "3", "4"], found


def test_fences_follow_commonmark(tmp_path: Path) -> None:
    """A tilde fence's info string may hold backticks (a backtick fence's may
    not: that line is inline code), and a longer closing fence closes."""
    page = tmp_path / "page.md"
    page.write_text(
        '# t\n\n~~~python title="`a`"\ny = 2\n~~~~~\n\n'
        "``` not `a fence` ```\n\n"
        "````bash\necho one\n```\n````\n\n"
        "~~~~sh\n~~~\n```\n~~~~~~\n"
    )
    found = blocks(page)
    assert [(b.line, b.language, b.source) for b in found] == [
        (3, "python", "y = 2\n"),
        (9, "bash", "echo one\n```\n"),
        (14, "sh", "~~~\n```\n"),
    ]
    namespace: dict[str, Any] = {}
    run_python(found[0], namespace)
    assert namespace["y"] == 2


def test_a_failing_block_is_reported_with_its_place(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n- a list\n\n  ```python\n  1 / 0\n  ```\n")
    found = blocks(page)
    assert [(b.line, b.source) for b in found] == [(3, "x = 1\n"), (9, "1 / 0\n")]
    namespace: dict[str, Any] = {}
    run_python(found[0], namespace)
    assert namespace["x"] == 1
    with pytest.raises(AssertionError, match=r"page\.md:9: ZeroDivisionError"):
        run_python(found[1], namespace)


def test_a_snippet_is_a_module_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    page = ROOT / "README.md"
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    source = "import dataclasses\n@dataclasses.dataclass\nclass Seen:\n    id: str\nSeen('a')\n"
    run_python(Block(page, 1, "python", source), module.__dict__)
    assert module.__dict__["Seen"].__module__ == "__docs__"


def test_a_fragment_says_so() -> None:
    shown = Block(ROOT / "README.md", 1, "python", "# fragment: one line of a receiver\nverify()\n")
    assert shown.fragment
    assert not Block(ROOT / "README.md", 1, "python", "verify()  # fragment\n").fragment


def test_a_process_a_page_starts_is_closed_too(reader_folder: Path) -> None:
    reach = "import socket; socket.create_connection(('example.com', 443), timeout=5)"
    done = subprocess.run([sys.executable, "-c", reach], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "the network is closed" in done.stderr, done.stderr
    log = Path(os.environ["HOOKWISE_DOCS_REFUSED_LOG"]).read_text(encoding="utf-8")
    assert "resolving 'example.com'" in log
    block = Block(
        ROOT / "README.md",
        1,
        "bash",
        f"""[ "$HTTPS_PROXY" = {NOWHERE} ]
[ "$all_proxy" = {NOWHERE} ]
python -c 'import os; assert "HTTPS_PROXY" not in os.environ'   # the guard is there instead
""",
    )
    run_bash(block, reader_folder)
    assert "HTTPS_PROXY" not in os.environ  # not carried over into pytest's process
