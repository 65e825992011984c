"""NetworkPolicy: the SSRF guard.

No test here opens a connection or asks real DNS: private, link-local and public
addresses reach the policy only through a fake resolver, and a module-wide guard
makes ``socket.getaddrinfo`` numeric-only so a slip cannot leak to the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.errors import (
    BlockedAddressError,
    HookwiseError,
    UnsafeURLError,
    ValidationError,
)
from hookwise.network import NetworkPolicy, is_blocked_address, system_resolver

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address


@pytest.fixture(autouse=True, scope="module")
def _numeric_getaddrinfo_only() -> Iterator[None]:
    real = socket.getaddrinfo

    def numeric_only(  # type: ignore[no-untyped-def]
        host, port, family=0, type=0, proto=0, flags=0
    ):
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", numeric_only)
        yield


class FakeResolver:
    """Answers from a table and records every question."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers.get(host, [])


def no_resolver(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host!r}:{port}")


# --- embedding IPv4 in IPv6 -------------------------------------------------------


def mapped(v4: IPv4) -> IPv6:
    return IPv6((0xFFFF << 32) | int(v4))


def compatible(v4: IPv4) -> IPv6:
    return IPv6(int(v4))


def nat64(v4: IPv4) -> IPv6:
    return IPv6(int(IPv6("64:ff9b::")) | int(v4))


def sixtofour(v4: IPv4) -> IPv6:
    return IPv6((0x2002 << 112) | (int(v4) << 80) | 1)


def teredo(server: IPv4, client: IPv4) -> IPv6:
    ip = IPv6(
        (0x20010000 << 96) | (int(server) << 64) | (0x8000_63BF << 32) | (int(client) ^ 0xFFFFFFFF)
    )
    assert ip.teredo == (server, client)
    return ip


PUBLIC_V4_OTHER = IPv4("65.54.227.120")
EMBEDDINGS: dict[str, Callable[[IPv4], IPv6]] = {
    "mapped": mapped,
    "compatible": compatible,
    "nat64": nat64,
    "6to4": sixtofour,
    "teredo-client": lambda v4: teredo(PUBLIC_V4_OTHER, v4),
    "teredo-server": lambda v4: teredo(v4, PUBLIC_V4_OTHER),
}

# --- is_blocked_address -------------------------------------------------------------

BLOCKED_V4 = [
    "0.0.0.0",  # unspecified; connecting to it reaches this host
    "0.1.2.3",  # "this network"
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",  # CGNAT
    "100.127.255.255",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",  # IETF protocol assignments
    "192.0.2.1",  # TEST-NET-1
    "192.88.99.1",  # 6to4 relay anycast
    "192.168.0.1",
    "192.168.255.255",
    "198.18.0.1",  # benchmarking
    "198.19.255.255",
    "198.51.100.7",  # TEST-NET-2
    "203.0.113.9",  # TEST-NET-3
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
]
PUBLIC_V4 = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "208.67.222.222",
    "1.0.0.0",
    "11.0.0.0",  # just past 10/8
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",  # last unicast before multicast
]
BLOCKED_V6 = [
    "::",
    "::1",
    "::1:0:0:0",  # ::/8 reserved
    "::ffff:0:7f00:1",  # IPv4-translated: reserved, refused whatever it carries
    "::ffff:0:808:808",
    "64:ff9b:1::808:808",  # local-use NAT64: layout unknown, refused
    "64:ff9b:1:a00:1::",
    "100::1",  # discard-only
    "2001:2::1",  # IETF protocol assignments
    "2001:10::1",
    "2001:db8::1",  # documentation
    "2001:db8:ffff::1",
    "3fff::1",  # documentation (RFC 9637)
    "4000::1",  # outside global unicast
    "5f00::1",  # SRv6
    "fc00::1",  # unique local
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "febf:ffff::1",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "ff05::1:3",
    "fd00:ec2::254",  # AWS metadata over IPv6
]
PUBLIC_V6 = [
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2620:fe::fe",
    "2a00:1450:4001:80b::200e",
    "2001:200::1",  # just past 2001::/23
    "3ffe::1",
]


@pytest.mark.parametrize("address", BLOCKED_V4 + BLOCKED_V6)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(address))
    assert is_blocked_address(address)
    assert not NetworkPolicy().is_allowed(address)


@pytest.mark.parametrize("address", PUBLIC_V4 + PUBLIC_V6)
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert not is_blocked_address(ipaddress.ip_address(address))
    assert NetworkPolicy().is_allowed(address)


@pytest.mark.parametrize("form", sorted(EMBEDDINGS))
@pytest.mark.parametrize(
    "v4",
    [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_embedded_private_ipv4_is_blocked(form: str, v4: str) -> None:
    assert is_blocked_address(EMBEDDINGS[form](IPv4(v4)))


@pytest.mark.parametrize("form", sorted(EMBEDDINGS))
@pytest.mark.parametrize("v4", ["8.8.8.8", "1.1.1.1", "208.67.222.222"])
def test_embedded_public_ipv4_is_not_blocked(form: str, v4: str) -> None:
    assert not is_blocked_address(EMBEDDINGS[form](IPv4(v4)))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "2002:c0a8:101::1",
    ],
)
def test_embedded_forms_written_as_text(address: str) -> None:
    assert is_blocked_address(address)


@given(st.ip_addresses(v=4))
def test_embedded_forms_agree_with_their_ipv4(v4: IPv4) -> None:
    expected = is_blocked_address(v4)
    for form in ("mapped", "nat64", "6to4", "teredo-client", "teredo-server"):
        assert is_blocked_address(EMBEDDINGS[form](v4)) is expected, form
    if int(v4) > 1:  # ::0.0.0.0 and ::0.0.0.1 are :: and ::1
        assert is_blocked_address(compatible(v4)) is expected


@given(st.ip_addresses(v=4))
def test_every_ipv4_python_calls_non_global_is_blocked(v4: IPv4) -> None:
    if not v4.is_global:
        assert is_blocked_address(v4)


_EMBEDDING_NETS = [
    ipaddress.IPv6Network(n)
    for n in ("::/96", "::ffff:0:0/96", "64:ff9b::/96", "2002::/16", "2001::/32")
]


@given(st.ip_addresses(v=6))
def test_every_ipv6_python_calls_non_global_is_blocked(v6: IPv6) -> None:
    if not any(v6 in net for net in _EMBEDDING_NETS) and not v6.is_global:
        assert is_blocked_address(v6)


def test_is_blocked_address_refuses_garbage_with_a_hookwise_error() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        is_blocked_address("example.com")
    with pytest.raises(ValidationError):
        NetworkPolicy().is_allowed("10.0.0.256")


# --- the allowlist ---------------------------------------------------------------


def test_allow_opens_exactly_the_listed_networks() -> None:
    policy = NetworkPolicy(allow=["127.0.0.0/8", "10.1.2.3", "fd00::/8"])
    assert policy.is_allowed("127.0.0.1")
    assert policy.is_allowed("127.255.255.254")
    assert policy.is_allowed("10.1.2.3")
    assert not policy.is_allowed("10.1.2.4")
    assert not policy.is_allowed("10.0.0.1")
    assert policy.is_allowed("fd00::1")
    assert not policy.is_allowed("fc00::1")
    assert not policy.is_allowed("::1")  # 127/8 does not open IPv6 loopback
    assert not policy.is_allowed("169.254.169.254")
    assert not policy.is_allowed("192.168.0.1")
    assert policy.is_allowed("8.8.8.8")  # public stays allowed


@given(
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(network="10.0.0.0/8")),
    st.integers(8, 32),
)
def test_allow_opens_a_network_and_nothing_next_to_it(ip: IPv4, prefix: int) -> None:
    net = ipaddress.IPv4Network(f"10.0.0.0/{prefix}")
    policy = NetworkPolicy(allow=[str(net)])
    assert policy.is_allowed(ip) is (ip in net or not is_blocked_address(ip))


def test_allow_checks_the_embedded_ipv4_too() -> None:
    policy = NetworkPolicy(allow=["127.0.0.0/8"])
    assert policy.is_allowed("::ffff:127.0.0.1")
    assert policy.is_allowed(nat64(IPv4("127.0.0.1")))
    assert not policy.is_allowed("::ffff:10.0.0.1")
    by_v6 = NetworkPolicy(allow=["::ffff:10.0.0.0/104"])
    assert by_v6.is_allowed("::ffff:10.1.2.3")
    assert not by_v6.is_allowed("10.1.2.3")  # the plain IPv4 form is a different address


def test_teredo_needs_both_embedded_addresses_allowed() -> None:
    ip = teredo(IPv4("10.0.0.1"), IPv4("192.168.0.1"))
    assert not NetworkPolicy(allow=["10.0.0.0/8"]).is_allowed(ip)
    assert NetworkPolicy(allow=["10.0.0.0/8", "192.168.0.0/16"]).is_allowed(ip)


def test_allow_accepts_strings_addresses_networks_and_one_string() -> None:
    policy = NetworkPolicy(
        allow=["10.0.0.0/8", IPv4("192.168.1.1"), ipaddress.ip_network("fc00::/7"), "::1"]
    )
    assert policy.allow == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("fc00::/7"),
        ipaddress.ip_network("::1/128"),
    )
    assert NetworkPolicy(allow="127.0.0.0/8").allow == (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.1.2.3/8", "host bits set; did you mean '10.0.0.0/8'"),
        ("localhost", "not a network"),
        ("10.0.0.0/33", "not a network"),
        ("", "not a network"),
        (10, "not a network"),
        (None, "not a network"),
    ],
)
def test_a_bad_allow_entry_is_a_validation_error(entry: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        NetworkPolicy(allow=[entry])  # type: ignore[list-item]
    assert info.value.field == "allow"


def test_policy_fields_are_validated_frozen_and_comparable() -> None:
    with pytest.raises(ValidationError) as info:
        NetworkPolicy(allow_http="yes")  # type: ignore[arg-type]
    assert info.value.field == "allow_http"
    with pytest.raises(ValidationError):
        NetworkPolicy(resolver="8.8.8.8")  # type: ignore[arg-type]
    policy = NetworkPolicy(allow=["127.0.0.0/8"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.allow_http = True  # type: ignore[misc]
    other = NetworkPolicy(allow=["127.0.0.0/8"], resolver=FakeResolver())
    assert policy == other  # the resolver is plumbing, not policy
    assert hash(policy) == hash(other)
    assert "resolver" not in repr(other)
    assert NetworkPolicy() != policy


def test_trusting_is_allow_plus_http() -> None:
    assert NetworkPolicy.trusting("127.0.0.0/8", "::1") == NetworkPolicy(
        allow=["127.0.0.0/8", "::1"], allow_http=True
    )
    assert NetworkPolicy.trusting("127.0.0.0/8", allow_http=False).allow_http is False
    assert NetworkPolicy.trusting() == NetworkPolicy(allow_http=True)


def test_default_policy_is_https_and_public_only() -> None:
    policy = NetworkPolicy()
    assert policy.allow == ()
    assert policy.allow_http is False
    assert policy.resolver is system_resolver


# --- check_url -------------------------------------------------------------------

DEFAULT = NetworkPolicy(resolver=no_resolver)
HTTP = NetworkPolicy(allow_http=True, resolver=no_resolver)
LOCAL = NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True, resolver=no_resolver)
LOCAL6 = NetworkPolicy(allow=["::1"], resolver=no_resolver)


@pytest.mark.parametrize(
    ("policy", "url"),
    [
        (DEFAULT, "https://example.com/hook"),
        (DEFAULT, "https://api.github.com/repos/acme/models/dispatches"),
        (DEFAULT, "HTTPS://Example.COM:8443/x?y=1#frag"),
        (DEFAULT, "https://8.8.8.8/"),
        (DEFAULT, "https://[2606:4700:4700::1111]:443/"),
        (DEFAULT, "https://[::ffff:8.8.8.8]/"),
        (DEFAULT, "https://éxample.com/"),  # IDNA
        (DEFAULT, "https://metadata.google.internal/"),  # a name: judged after DNS, at send time
        (HTTP, "http://example.com/hook"),
        (LOCAL, "http://127.0.0.1:8000/hook"),
        (LOCAL, "http://localhost:8000/hook"),
        (LOCAL, "http://api.localhost/hook"),
        (LOCAL, "https://[::ffff:127.0.0.1]/"),
        (LOCAL6, "https://[::1]/"),
        (LOCAL6, "https://localhost/"),
        (NetworkPolicy(allow=["10.0.0.0/8"]), "https://10.20.30.40:9000/"),
        (NetworkPolicy(allow=["169.254.169.254"]), "https://169.254.169.254/"),
    ],
)
def test_check_url_accepts(policy: NetworkPolicy, url: str) -> None:
    policy.check_url(url)


@pytest.mark.parametrize(
    ("policy", "url", "message"),
    [
        (DEFAULT, "http://example.com/", "plain http is refused.*allow_http=True"),
        (NetworkPolicy(allow=["127.0.0.0/8"]), "http://127.0.0.1/", "plain http"),
        (DEFAULT, "ftp://example.com/", "scheme 'ftp' is not supported"),
        (DEFAULT, "file:///etc/passwd", "scheme 'file'"),
        (DEFAULT, "gopher://127.0.0.1:6379/", "scheme 'gopher'"),
        (DEFAULT, "example.com/hook", "absolute URL"),
        (DEFAULT, "//example.com/hook", "absolute URL"),
        (DEFAULT, " https://example.com", "absolute URL"),
        (DEFAULT, "", "absolute URL"),
        (DEFAULT, "https:///hook", "no host"),
        (DEFAULT, "https:example.com", "no host"),
        (DEFAULT, "https://user:pass@example.com/", "user name or password"),
        (DEFAULT, "https://token@example.com/", "user name or password"),
        (DEFAULT, "https://example.com\\@127.0.0.1/", "user name or password"),
        (DEFAULT, "https://example.com:0/", "port 0 is out of range"),
        (DEFAULT, "https://example.com:65536/", "port 65536 is out of range"),
        (DEFAULT, "https://example.com:http/", "not a valid URL"),
        (DEFAULT, "https://exa mple.com/", "not a valid host name"),
        (DEFAULT, "https://a<b>.com/", "not a valid host name"),
        (DEFAULT, "https://a..b/", "not a valid host name"),
        (DEFAULT, "https://-a.example/", "not a valid host name"),
        (DEFAULT, f"https://{'a' * 64}.example/", "not a valid host name"),
        (DEFAULT, "https://[::1/", "not a valid URL"),
        (DEFAULT, "https://127.000.000.001/", "not a valid URL"),
        (DEFAULT, "https://\x00/", "not a valid URL"),
        (
            DEFAULT,
            "https://127.0.0.1/",
            r"127\.0\.0\.1 is a loopback address; add it to NetworkPolicy\(allow=",
        ),
        (DEFAULT, "https://10.0.0.1/", "10.0.0.1 is a private address"),
        (DEFAULT, "https://169.254.169.254/latest/meta-data/", "link-local.*metadata"),
        (DEFAULT, "https://100.64.0.1/", "carrier-grade NAT"),
        (DEFAULT, "https://0.0.0.0/", "unspecified"),
        (DEFAULT, "https://224.0.0.1/", "multicast"),
        (DEFAULT, "https://[::1]/", "loopback"),
        (DEFAULT, "https://[fe80::1%25eth0]/", "link-local"),
        (DEFAULT, "https://[fd00:ec2::254]/", "unique local"),
        (DEFAULT, "https://[::ffff:127.0.0.1]/", "IPv4-mapped address of 127.0.0.1, a loopback"),
        (DEFAULT, "https://[::ffff:a9fe:a9fe]/", "169.254.169.254"),
        (DEFAULT, "https://[64:ff9b::10.0.0.1]/", "NAT64 address of 10.0.0.1"),
        (DEFAULT, "https://[2002:a9fe:a9fe::1]/", "6to4 address of 169.254.169.254"),
        (DEFAULT, "https://localhost/", "localhost means 127.0.0.1 and ::1"),
        (DEFAULT, "https://LOCALHOST./", "loopback"),
        (DEFAULT, "https://api.localhost/", "loopback"),
        (NetworkPolicy(allow=["10.0.0.0/8"]), "https://localhost/", "loopback"),
        (DEFAULT, "https://2130706433/", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://0x7f.1/", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://0x7f000001/", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://017700000001/", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://127.1/", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://127.0.0.1./", "unusual spelling of 127.0.0.1"),
        (DEFAULT, "https://0xa9.0xfe.0xa9.0xfe/", "unusual spelling of 169.254.169.254"),
        (LOCAL, "http://0x7f.1/", "unusual spelling"),  # refused even where 127/8 is allowed
        (DEFAULT, "https://134744072/", "unusual spelling of 8.8.8.8"),
        (DEFAULT, "https://1.2.3.4.5/", "ends in a number but is not an IPv4 address"),
        (DEFAULT, "https://08.0.0.1/", "IPv4 address"),
        (DEFAULT, "https://08.1/", "not an IPv4 address"),
        (DEFAULT, "https://99999999999/", "not an IPv4 address"),
        (DEFAULT, "https://example.0x1/", "not an IPv4 address"),
    ],
)
def test_check_url_refuses(policy: NetworkPolicy, url: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=message) as info:
        policy.check_url(url)
    assert info.value.field == "url"


def test_check_url_names_the_field() -> None:
    with pytest.raises(UnsafeURLError) as info:
        DEFAULT.check_url("http://example.com/", field="webhook.url")
    assert info.value.field == "webhook.url"
    assert str(info.value).startswith("webhook.url: ")
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value, ValueError)


def test_check_url_refuses_a_non_string() -> None:
    with pytest.raises(UnsafeURLError, match="must be a string"):
        DEFAULT.check_url(b"https://example.com/")  # type: ignore[arg-type]
    with pytest.raises(UnsafeURLError, match="must be a string"):
        DEFAULT.check_url(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@10.0.0.1/p?token=hunter2",
        "https://10.0.0.1/services/hunter2?sig=hunter2",
        "http://example.com/hooks/hunter2",
        "https://example.com:99999/hunter2",
        "https://0x7f.1/hunter2",
    ],
)
def test_messages_never_echo_credentials_paths_or_queries(url: str) -> None:
    with pytest.raises(UnsafeURLError) as info:
        DEFAULT.check_url(url)
    assert "hunter2" not in str(info.value)


URLISH = st.lists(
    st.sampled_from([*"aA0189fx.:/@[]%?#-_ \\\t\x00é", "::", "127", "0x", "%25", "localhost"]),
    max_size=30,
).map("".join)
URLS = st.one_of(
    st.text(),
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["https://", "http://", "HTTP://", "ftp://", "//", "", "https:"]),
            URLISH,
            st.sampled_from(["", "/", ":443/", ":0", ":65536", "/p?q=1"]),
        ),
    ),
)


@given(URLS, st.booleans())
def test_check_url_only_raises_validation_errors(url: str, allow_http: bool) -> None:
    policy = NetworkPolicy(allow_http=allow_http, resolver=no_resolver)
    error: ValidationError | None = None
    try:
        policy.check_url(url, field="endpoint")
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert error.field == "endpoint"
        assert isinstance(error, UnsafeURLError)


@given(st.ip_addresses())
def test_check_url_on_an_ip_literal_agrees_with_is_allowed_and_resolve(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    policy = NetworkPolicy(resolver=no_resolver)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    allowed = policy.is_allowed(ip)
    try:
        policy.check_url(f"https://{host}/hook")
        accepted = True
    except UnsafeURLError:
        accepted = False
    assert accepted is allowed
    if allowed:
        assert policy.resolve(host, 443) == [str(ip)]
    else:
        with pytest.raises(BlockedAddressError):
            policy.resolve(host, 443)


def _odd_spellings(v4: IPv4) -> list[str]:
    n = int(v4)
    a, b, c, d = v4.packed
    return [
        str(n),
        hex(n),
        "0" + format(n, "o"),
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{a:#x}.{b:#x}.{c:#x}.{d:#x}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
    ]


@given(st.ip_addresses(v=4))
def test_odd_ipv4_spellings_mean_what_the_os_says(v4: IPv4) -> None:
    trusting = NetworkPolicy(allow=["0.0.0.0/0"], resolver=no_resolver)
    default = NetworkPolicy(resolver=no_resolver)
    for spelling in _odd_spellings(v4):
        if spelling == str(v4):
            continue
        # what a connection would reach: the OS's numeric parse (no DNS, see the guard)
        assert system_resolver(spelling, 443) == [str(v4)]
        assert trusting.resolve(spelling, 443) == [str(v4)]
        if is_blocked_address(v4):
            with pytest.raises(BlockedAddressError):
                default.resolve(spelling, 443)
        with pytest.raises(UnsafeURLError, match=f"unusual spelling of {v4}|Invalid IPv4"):
            trusting.check_url(f"https://{spelling}/")


def test_check_url_never_resolves() -> None:
    resolver = FakeResolver({"example.com": ["10.0.0.1"]})
    NetworkPolicy(resolver=resolver).check_url("https://example.com/")
    assert resolver.calls == []


# --- resolve ---------------------------------------------------------------------


def test_resolve_returns_public_answers_deduplicated_in_order() -> None:
    resolver = FakeResolver(
        {
            "hooks.example.com": [
                "93.184.215.14",
                "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                "93.184.215.14",
            ]
        }
    )
    policy = NetworkPolicy(resolver=resolver)
    assert policy.resolve("hooks.example.com", 8443) == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]
    assert resolver.calls == [("hooks.example.com", 8443)]


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.215.14", "10.0.0.1"],
        ["10.0.0.1", "93.184.215.14"],
        ["93.184.215.14", "169.254.169.254"],
        ["2606:4700:4700::1111", "::1"],
        ["93.184.215.14", "::ffff:127.0.0.1"],
        ["fe80::1%eth0"],
    ],
)
def test_resolve_refuses_if_any_answer_is_blocked(answers: list[str]) -> None:
    policy = NetworkPolicy(resolver=FakeResolver({"rebind.example": answers}))
    with pytest.raises(BlockedAddressError) as info:
        policy.resolve("rebind.example", 443)
    message = str(info.value)
    assert "rebind.example" in message
    blocked = next(a for a in answers if is_blocked_address(a))
    assert str(ipaddress.ip_address(blocked)) in message
    assert isinstance(info.value, PermissionError)
    assert isinstance(info.value, HookwiseError)


def test_resolve_follows_the_allowlist() -> None:
    resolver = FakeResolver({"svc.internal": ["10.1.2.3", "fe80::1%eth0"]})
    policy = NetworkPolicy(allow=["10.0.0.0/8", "fe80::/10"], resolver=resolver)
    assert policy.resolve("svc.internal", 443) == ["10.1.2.3", "fe80::1%eth0"]
    narrower = NetworkPolicy(allow=["10.0.0.0/8"], resolver=resolver)
    with pytest.raises(BlockedAddressError, match="fe80::1"):
        narrower.resolve("svc.internal", 443)


def test_resolve_refuses_an_empty_answer() -> None:
    policy = NetworkPolicy(resolver=FakeResolver())
    with pytest.raises(BlockedAddressError, match=r"'nowhere\.example' did not resolve"):
        policy.resolve("nowhere.example", 443)


def test_resolve_refuses_an_answer_that_is_not_an_address() -> None:
    policy = NetworkPolicy(resolver=FakeResolver({"odd.example": ["8.8.8.8", "localhost"]}))
    with pytest.raises(BlockedAddressError, match="not an IP address"):
        policy.resolve("odd.example", 443)


def test_resolver_errors_propagate_as_connection_errors() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(socket.gaierror):
        NetworkPolicy(resolver=failing).resolve("gone.example", 443)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("8.8.8.8", ["8.8.8.8"]),
        ("2606:4700:4700::1111", ["2606:4700:4700::1111"]),
        ("[2606:4700:4700::1111]", ["2606:4700:4700::1111"]),
        ("[2606:4700:4700:0:0:0:0:1111]", ["2606:4700:4700::1111"]),
        ("134744072", ["8.8.8.8"]),
        ("0x8.0x8.0x8.0x8", ["8.8.8.8"]),
    ],
)
def test_resolve_does_not_resolve_ip_literals(host: str, expected: list[str]) -> None:
    assert NetworkPolicy(resolver=no_resolver).resolve(host, 443) == expected


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "::ffff:10.0.0.1", "2130706433", "0.0.0.0", "1.2.3.4.5"]
)
def test_resolve_refuses_blocked_or_broken_literals_without_resolving(host: str) -> None:
    with pytest.raises(BlockedAddressError):
        NetworkPolicy(resolver=no_resolver).resolve(host, 443)


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        (["127.0.0.0/8"], ["127.0.0.1"]),
        (["::1"], ["::1"]),
        (["127.0.0.1", "::1"], ["127.0.0.1", "::1"]),
    ],
)
@pytest.mark.parametrize("host", ["localhost", "LocalHost.", "api.localhost"])
def test_resolve_localhost_is_the_allowed_loopback(
    host: str, allow: list[str], expected: list[str]
) -> None:
    assert NetworkPolicy(allow=allow, resolver=no_resolver).resolve(host, 8000) == expected


def test_resolve_refuses_localhost_by_default() -> None:
    with pytest.raises(BlockedAddressError, match="loopback"):
        NetworkPolicy(resolver=no_resolver).resolve("localhost", 8000)


# --- system_resolver (numeric hosts only: no DNS) -----------------------------------


def test_system_resolver_on_literals() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    assert system_resolver("::1", 80) == ["::1"]


def test_system_resolver_asks_for_tcp_and_deduplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, object]] = []

    def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[object]:
        seen.append({"host": host, "port": port, **kwargs})
        v4, v6 = socket.AF_INET, socket.AF_INET6
        tcp = socket.SOCK_STREAM
        return [
            (v6, tcp, 6, "", ("2606:4700:4700::1111", port, 0, 0)),
            (v4, tcp, 6, "", ("1.1.1.1", port)),
            (v6, tcp, 6, "", ("2606:4700:4700::1111", port, 0, 0)),
            (v4, tcp, 6, "", ("1.0.0.1", port)),
            (v4, tcp, 6, "", ("1.1.1.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert system_resolver("one.one.one.one", 443) == [
        "2606:4700:4700::1111",
        "1.1.1.1",
        "1.0.0.1",
    ]
    assert seen[0]["host"] == "one.one.one.one"
    assert seen[0]["port"] == 443
    assert seen[0]["type"] == socket.SOCK_STREAM


def test_default_policy_resolves_through_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[object]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
        NetworkPolicy().resolve("metadata.google.internal", 80)


@given(st.text(max_size=40))
def test_resolve_on_any_host_returns_allowed_addresses_or_refuses(host: str) -> None:
    resolver = FakeResolver()
    resolver.answers[host.strip("[]")] = ["8.8.8.8"]
    policy = NetworkPolicy(resolver=resolver)
    try:
        addresses = policy.resolve(host, 443)
    except BlockedAddressError:
        return
    assert addresses
    assert all(policy.is_allowed(a) for a in addresses)
