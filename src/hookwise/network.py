"""Where webhooks may send: the SSRF guard.

A webhook URL is typed in by a user, so without a guard it is a way to make the
platform POST to its own insides: ``http://169.254.169.254/`` (cloud metadata,
which hands out credentials), ``http://localhost:6379/``, an admin panel on
``10.0.0.5``. :class:`NetworkPolicy` refuses all of that by default and opens
exactly the networks a user lists:

- :meth:`NetworkPolicy.check_url` runs when a webhook is created or updated. It
  needs no DNS: scheme (https; http only when allowed), no credentials in the
  URL, and IP literal hosts (including odd spellings such as ``2130706433``).
- :meth:`NetworkPolicy.resolve` runs at send time. It resolves the host and
  refuses it if *any* answer is not allowed, so a name that points at a private
  address (or rebinds to one) is refused after DNS, not before.

``resolve(host, port)`` returns the checked addresses so that a transport can
connect to exactly those and nothing else (an httpcore ``NetworkBackend`` whose
``connect_tcp`` calls it is the intended place); it is synchronous, so async
code runs it in a worker thread, as the event loop does for ``getaddrinfo``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import attrs

from hookwise.errors import BlockedAddressError, UnsafeURLError, ValidationError
from hookwise.url import parse_url

__all__ = [
    "NetworkPolicy",
    "Resolver",
    "is_blocked_address",
    "system_resolver",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver: TypeAlias = Callable[[str, int], Sequence[str]]
"""``(host, port) -> IP address strings``; the policy checks every one of them."""


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (TCP), duplicates removed, order kept.

    Resolution errors (``socket.gaierror``) propagate: a DNS failure is a
    connection error worth retrying, not a policy refusal.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    families = (socket.AF_INET, socket.AF_INET6)
    return list(dict.fromkeys(str(info[4][0]) for info in infos if info[0] in families))


# What is not a public unicast address, and how to say so. First match wins.
_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/32", "the unspecified address"),  # connecting to it reaches this host
        ("0.0.0.0/8", 'a "this network" address'),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (where cloud metadata services live)"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)

_V6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "the unspecified address"),
        ("::1/128", "the loopback address"),
        # A local-use NAT64 prefix may embed IPv4 at any RFC 6052 offset, chosen
        # by the network operator: the embedded address cannot be known, so block.
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("::/8", "a reserved address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/23", "an IETF protocol assignment address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "an SRv6 segment identifier"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")

_LOOPBACK = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?\Z")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)\Z")
_NETWORK_LIKE = (
    str,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)
_ALLOW_HINT = "add it to NetworkPolicy(allow=[...]) to allow it"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, tuple[ipaddress.IPv4Address, ...]]:
    """The IPv4 addresses an IPv6 address routes to, and the name of the form.

    ``("", ())`` when it embeds none. Teredo embeds two (server and client); both count.
    """
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_MAPPED:
        return "an IPv4-mapped address", (low32,)
    if ip in _V4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves
        return "an IPv4-compatible address", (low32,)
    if ip in _NAT64:
        return "a NAT64 address", (low32,)
    if ip.sixtofour is not None:
        return "a 6to4 address", (ip.sixtofour,)
    if ip.teredo is not None:
        return "a Teredo address", ip.teredo
    return "", ()


def _direct_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` itself (embedded addresses aside) is not public unicast, or None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next((reason for net, reason in _V4_BLOCKED if ip in net), None)
    reason = next((reason for net, reason in _V6_BLOCKED if ip in net), None)
    if reason is None and ip not in _V6_GLOBAL_UNICAST:
        return "a reserved address (outside global unicast 2000::/3)"
    return reason


def _unscoped(ip: IPAddress) -> IPAddress:
    """``ip`` without an IPv6 zone (``%eth0``), which plays no part in the check."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return ipaddress.IPv6Address(ip.packed)
    return ip


def _refusal(ip: IPAddress, allow: tuple[IPNetwork, ...]) -> str | None:
    """Why ``ip`` may not be contacted under ``allow``, as a noun phrase, or None."""
    ip = _unscoped(ip)
    if any(ip in net for net in allow):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        form, embedded = _embedded_ipv4(ip)
        if embedded:
            for v4 in embedded:
                reason = None if any(v4 in net for net in allow) else _direct_reason(v4)
                if reason is not None:
                    return f"{form} of {v4}, {reason}"
            return None
    return _direct_reason(ip)


def _to_address(ip: IPAddress | str) -> IPAddress:
    if isinstance(ip, str):
        try:
            return ipaddress.ip_address(ip)
        except ValueError:
            raise ValidationError("ip", f"{ip!r} is not an IP address") from None
    return ip


def is_blocked_address(ip: IPAddress | str) -> bool:
    """True unless ``ip`` is a public unicast address (the default policy's refusal).

    IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4,
    Teredo) are judged by the IPv4 address they lead to.
    """
    return _refusal(_to_address(ip), ()) is not None


def _parse_host(host: str) -> tuple[IPAddress | None, bool]:
    """``(address, canonical)`` for an IP literal host, ``(None, True)`` for a name.
    Answers are kept for plain ``str`` hosts: every delivery asks."""
    if type(host) is str:
        return _parse_host_kept(host)
    return _parse_host_once(host)


@functools.lru_cache(maxsize=1024)
def _parse_host_kept(host: str) -> tuple[IPAddress | None, bool]:
    return _parse_host_once(host)


def _parse_host_once(host: str) -> tuple[IPAddress | None, bool]:
    """:func:`_parse_host`, worked out.

    Hosts ending in a number are IPv4 literals, as browsers and ``inet_aton``
    read them: ``2130706433``, ``0x7f.1`` and ``127.1`` all mean 127.0.0.1
    (``canonical`` is False for those). ValueError for a broken literal.
    """
    if ":" in host:  # only IPv6 literals contain colons; httpx keeps "%25" before a zone
        return ipaddress.IPv6Address(host.replace("%25", "%")), True
    labels = host.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()  # one trailing dot: "127.0.0.1." is still that address
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None, True
    try:
        return ipaddress.IPv4Address(host), True
    except ValueError:
        pass
    if len(labels) <= 4 and all(_NUMERIC_LABEL.match(label) for label in labels):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(".".join(labels))), False
        except OSError:
            pass
    raise ValueError(f"{host!r} ends in a number but is not an IPv4 address")


def _is_localhost(host: str) -> bool:
    """``localhost`` and ``*.localhost`` always mean this machine (RFC 6761)."""
    name = host.lower().removesuffix(".")
    return name == "localhost" or name.endswith(".localhost")


def _to_networks(
    value: Iterable[str | IPAddress | IPNetwork] | str | None,
) -> tuple[IPNetwork, ...]:
    """Networks from strings such as ``"10.0.0.0/8"``; a bare address (``"::1"``) is one host.
    ``None`` is no networks, like ``()``."""
    if value is None:
        return ()
    if isinstance(value, (str, *_NETWORK_LIKE[1:])):
        value = [value]
    elif isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise ValidationError(
            "allow",
            f"must be a list of networks such as ['10.0.0.0/8'], not {type(value).__name__}",
        )
    try:
        entries = list(value)
    except Exception as exc:
        raise ValidationError("allow", f"could not be read ({type(exc).__name__})") from None
    networks: list[IPNetwork] = []
    for entry in entries:
        if not isinstance(entry, _NETWORK_LIKE):
            raise ValidationError(
                "allow",
                f"{type(entry).__name__} is not a network; write it like '10.0.0.0/8' or '::1'",
            )
        if isinstance(entry, str):
            entry = str.__str__(entry)
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError:
            try:
                loose = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValidationError(
                    "allow",
                    f"{_short(entry)} is not a network; write it like '10.0.0.0/8' or '::1'",
                ) from None
            raise ValidationError(
                "allow", f"{_short(entry)} has host bits set; did you mean '{loose}'?"
            ) from None
    return tuple(networks)


def _short(entry: object) -> str:
    text = repr(entry)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, f"must be True or False, not {type(value).__name__}")


def _is_resolver(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ValidationError(attribute.name, "must be callable as resolver(host, port)")


@attrs.frozen
class NetworkPolicy:
    """Which destinations webhooks may reach. The default: https to public addresses only.

    ``allow`` opens networks (tests, the company's own services); ``allow_http``
    permits plain http; ``resolver`` replaces DNS (tests pass a fake one).
    """

    allow: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_to_networks)
    allow_http: bool = attrs.field(default=False, validator=_is_bool)
    resolver: Resolver = attrs.field(
        default=system_resolver, eq=False, repr=False, validator=_is_resolver
    )

    @classmethod
    def trusting(cls, *networks: str, allow_http: bool = True) -> NetworkPolicy:
        """A policy for tests and development: these networks, and plain http."""
        return cls(allow=networks, allow_http=allow_http)

    def is_allowed(self, ip: str | IPAddress) -> bool:
        """Whether ``ip`` is public, or inside ``allow`` (for embedding forms, either
        the address or the IPv4 address it carries may be listed)."""
        return _refusal(_to_address(ip), self.allow) is None

    def check_url(self, url: str, *, field: str = "url") -> None:
        """Refuse a webhook URL the policy can tell is unsafe without DNS.

        Raises UnsafeURLError naming ``field``. Messages name the host, never
        the whole URL: paths and queries often carry tokens.
        """
        if not isinstance(url, str):
            raise UnsafeURLError(field, f"must be a string, not {type(url).__name__}")
        try:
            parsed = parse_url(url)
        except ValueError as exc:
            raise UnsafeURLError(field, f"not a valid URL: {exc}") from None
        scheme = parsed.scheme
        if not scheme:
            raise UnsafeURLError(field, "must be an absolute URL such as https://example.com/hook")
        if scheme == "http" and not self.allow_http:
            raise UnsafeURLError(
                field,
                "plain http is refused; use https, "
                "or pass NetworkPolicy(allow_http=True) to allow it",
            )
        if scheme not in ("https", "http"):
            raise UnsafeURLError(field, f"scheme {scheme!r} is not supported; use https")
        if parsed.userinfo:
            raise UnsafeURLError(
                field,
                "must not contain a user name or password (URLs end up in logs); "
                "keep the credential in a secret and name it as the webhook's access_token",
            )
        host = parsed.host
        if not host:
            raise UnsafeURLError(field, "has no host")
        if parsed.port is not None and not 1 <= parsed.port <= 65535:
            raise UnsafeURLError(field, f"port {parsed.port} is out of range 1-65535")
        try:
            ip, canonical = _parse_host(host)
        except ValueError as exc:
            raise UnsafeURLError(field, f"host {exc}") from None
        if ip is None:
            if not _HOST_NAME.match(host):
                raise UnsafeURLError(field, f"host {host!r} is not a valid host name")
            if _is_localhost(host) and not any(self.is_allowed(lo) for lo in _LOOPBACK):
                raise UnsafeURLError(
                    field,
                    f"{host} means 127.0.0.1 and ::1, loopback addresses; "
                    "add 127.0.0.0/8 or ::1 to NetworkPolicy(allow=[...]) to allow it",
                )
            return
        if not canonical:
            raise UnsafeURLError(
                field, f"host {host!r} is an unusual spelling of {ip}; write it as {ip}"
            )
        reason = _refusal(ip, self.allow)
        if reason is not None:
            raise UnsafeURLError(field, f"{ip} is {reason}; {_ALLOW_HINT}")

    def resolve_without_dns(self, host: str) -> list[str] | None:
        """:meth:`resolve` for an IP literal or a ``localhost`` name, which
        need no lookup; None for a name the resolver must answer. Callers on
        an event loop use it to skip a thread hop."""
        name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            literal, _ = _parse_host(name)
        except ValueError as exc:
            raise BlockedAddressError(f"host {exc}") from None
        if literal is not None:
            reason = _refusal(literal, self.allow)
            if reason is not None:
                raise BlockedAddressError(f"{literal} is {reason}; {_ALLOW_HINT}")
            return [str(literal)]
        if _is_localhost(name):
            allowed = [str(lo) for lo in _LOOPBACK if self.is_allowed(lo)]
            if not allowed:
                raise BlockedAddressError(
                    f"{host!r} is this machine (127.0.0.1, ::1), loopback addresses; "
                    "add 127.0.0.0/8 or ::1 to NetworkPolicy(allow=[...]) to allow it"
                )
            return allowed
        return None

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, every one of them allowed.

        IP literals are not resolved; ``localhost`` names are the loopback
        addresses the policy allows. Raises BlockedAddressError if any answer
        is refused or there is none; resolver errors (DNS failures) propagate.
        """
        name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        known = self.resolve_without_dns(name)
        if known is not None:
            return known
        answers = list(self.resolver(name, port))
        if not answers:
            raise BlockedAddressError(f"{host!r} did not resolve to any address")
        addresses: list[str] = []
        for answer in answers:
            try:
                ip = ipaddress.ip_address(answer)
            except ValueError:
                raise BlockedAddressError(
                    f"the resolver answered {answer!r} for {host!r}, which is not an IP address"
                ) from None
            reason = _refusal(ip, self.allow)
            if reason is not None:
                raise BlockedAddressError(f"{host!r} resolves to {ip}, {reason}; {_ALLOW_HINT}")
            addresses.append(str(ip))
        return list(dict.fromkeys(addresses))
