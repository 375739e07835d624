"""The SSRF guard's rules, pure and without I/O: the policy, its error, address and URL checks.

``connectors.ssrf`` applies them to real requests (and re-exports them); see its docstring
for the whole defence. Here:

* ``address_problem`` says why an address is not public unicast: loopback, private,
  link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10), CGNAT
  100.64.0.0/10, multicast, reserved, unspecified, unique-local fc00::/7, site-local, or
  anything else not globally routable; an IPv6 address that embeds an IPv4 one (mapped
  ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64, compatible) is judged by that one too. The
  checks are explicit so that they do not drift with the ``ipaddress`` tables of a patch
  release.
* ``parse_ipv4_number`` reads numeric hosts as ``inet_aton`` and the WHATWG URL parser do:
  ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1.
* ``check_url`` validates scheme, credentials, host syntax, allowed hosts, port and a
  literal address, and makes a numeric host canonical.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from core.errors import WardenError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNREACHABLE = "that address is not reachable from Warden"
NOT_ALLOWED = "that host is not on the allowed list"
INVALID = "that link is not a valid web address"
TOO_LARGE = "that file is larger than Warden accepts"
TOO_SLOW = "that link took too long to answer"
NOT_FOUND = "that host could not be found"

DEFAULT_PORTS = {"https": 443, "http": 80}
"""The port a URL without one uses, per allowed scheme."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")
_CHECKS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("private", lambda ip: ip.is_private),
    ("reserved", lambda ip: ip.is_reserved),
    ("site-local", lambda ip: isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    ("shared (CGNAT)", lambda ip: ip in _CGNAT),
)


class SsrfError(WardenError):
    """A fetch the guard refused: ``reason`` is safe to show, ``detail`` is for operators.

    ``detail`` names the host and address, never a path, query or credential.
    ``status`` is the HTTP status when the refusal is about the answer.
    """

    def __init__(self, reason: str, detail: str, *, status: int | None = None) -> None:
        """Keep the user's ``reason`` and the operator's ``detail`` apart."""
        super().__init__(f"{reason} ({detail})")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.user_message = reason


@dataclass(frozen=True)
class SsrfPolicy:
    """What may be fetched: schemes, hosts, ports, size, time and redirects.

    ``allowed_hosts`` holds exact names and ``*.suffix`` wildcards (which match names
    below the suffix, not the suffix itself), ASCII (punycode for IDNs); empty means any
    public host. ``allowed_ports`` None means any port. ``allow_private`` skips the address
    checks: an escape hatch for the local sandbox only, never for production settings.
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_schemes: tuple[str, ...] = ("https",)
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 30.0
    max_redirects: int = 3
    allow_private: bool = False
    allowed_ports: tuple[int, ...] | None = (443,)

    def __post_init__(self) -> None:
        """Refuse a policy that is malformed or could never fetch anything."""
        if self.max_bytes < 1 or self.timeout <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and timeout must be positive, max_redirects >= 0")
        if not self.allowed_schemes or not set(self.allowed_schemes) <= {"https", "http"}:
            raise ValueError("allowed_schemes must be a non-empty subset of https, http")
        for pattern in self.allowed_hosts:
            name = pattern.removeprefix("*.")
            if not pattern.isascii() or not _HOSTNAME.fullmatch(name.lower()):
                raise ValueError(f"allowed_hosts entry {pattern!r} is not an ASCII host name")
        if any(not 0 < port < 65536 for port in self.allowed_ports or ()):
            raise ValueError("allowed_ports must be TCP ports")


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (None when it is)."""
    for label, check in _CHECKS:
        if check(ip):
            return label
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None and (problem := address_problem(embedded)) is not None:
        return f"{problem} IPv4 {embedded} embedded in IPv6"
    return None if ip.is_global else "not globally routable"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried by a mapped, 6to4, Teredo, NAT64 or compatible address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or int(ip) >> 32 == 0:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as inet_aton does (decimal, 0-octal, 0x-hex, 1 to 4 parts), or None."""
    parts = host.split(".")
    if len(parts) > 1 and not parts[-1]:
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    numbers = [_ipv4_part(part) for part in parts]
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        raise SsrfError(INVALID, f"numeric host {host!r} is out of range")
    value = last + sum(number << (8 * (3 - index)) for index, number in enumerate(head))
    return ipaddress.IPv4Address(value)


def _ipv4_part(text: str) -> int:
    """One part of a numeric IPv4 host, in the base its prefix names."""
    if text[:2].lower() == "0x":
        return int(text[2:] or "0", 16)
    return int(text, 8 if len(text) > 1 and text.startswith("0") else 10)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally (IPv6 or any numeric IPv4 form), or None."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.replace("%25", "%"))
        except ValueError as exc:
            raise SsrfError(INVALID, "malformed IPv6 host") from exc
    return parse_ipv4_number(host)


def check_address(ip: IPAddress, policy: SsrfPolicy, host: str) -> None:
    """Raise ``SsrfError`` unless ``ip`` is public (or the policy allows private ones)."""
    problem = None if policy.allow_private else address_problem(ip)
    if problem is not None:
        raise SsrfError(UNREACHABLE, f"{host} -> {ip} is {problem}")


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether ``host`` matches an exact entry or a ``*.suffix`` wildcard (empty: any)."""
    patterns = [pattern.lower().rstrip(".") for pattern in allowed_hosts]
    if not patterns:
        return True
    return any(
        host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern
        for pattern in patterns
    )


def host_key(url: httpx.URL) -> str:
    """The normalised ASCII host of ``url``: lower case, without a final dot."""
    host = url.raw_host.decode("ascii").lower()
    return host[:-1] if host.endswith(".") else host


def check_url(url: str | httpx.URL, policy: SsrfPolicy) -> httpx.URL:
    """Validate ``url`` against ``policy``; return it with a numeric host made canonical."""
    parsed = _parse(url, policy)
    schemes = policy.allowed_schemes
    if parsed.scheme not in schemes:
        raise SsrfError(f"only {' or '.join(schemes)} links are accepted", "scheme refused")
    if parsed.userinfo:
        raise SsrfError("links with a user name or password are not accepted", "userinfo")
    host = host_key(parsed)
    literal = literal_address(host)
    if isinstance(literal, ipaddress.IPv4Address) and str(literal) != host:
        host = str(literal)
        parsed = parsed.copy_with(host=host)
    elif literal is None and not _HOSTNAME.fullmatch(host):
        raise SsrfError(INVALID, "malformed host name")
    if not host_allowed(host, policy.allowed_hosts):
        raise SsrfError(NOT_ALLOWED, f"{host} is not allowed")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if port > 65535 or (policy.allowed_ports is not None and port not in policy.allowed_ports):
        raise SsrfError("that port is not allowed", f"{host} port {port}")
    if literal is not None:
        check_address(literal, policy, host)
    return parsed


def _parse(url: str | httpx.URL, policy: SsrfPolicy) -> httpx.URL:
    """Parse with httpx; on failure still refuse a forbidden numeric host as unreachable."""
    try:
        return httpx.URL(url)
    except httpx.InvalidURL:  # its message may quote the URL: not chained, not logged
        with contextlib.suppress(ValueError):
            host = urlsplit(str(url)).hostname or ""
            literal = parse_ipv4_number(host)
            if literal is not None:
                check_address(literal, policy, host)
        raise SsrfError(INVALID, "unparsable URL") from None


def link_hosts(setting: str) -> tuple[str, ...]:
    """``WARDEN_EVIDENCE_LINK_HOSTS`` as SSRF allowed hosts: each suffix and its subdomains."""
    suffixes = [part.strip().lower().lstrip(".") for part in setting.split(",")]
    return tuple(host for s in suffixes if s for host in (s, f"*.{s}"))


def link_refusal(setting: str) -> Callable[[str], str | None]:
    """Why a link may not be handed in under ``WARDEN_EVIDENCE_LINK_HOSTS`` (None: it may),
    in the owner's words: checked when the link is given, before anything is stored."""
    allowed = link_hosts(setting)
    named = ", ".join(part.strip() for part in setting.split(",") if part.strip())

    def refusal(url: str) -> str | None:
        host = (urlsplit(url).hostname or "").lower()
        if not allowed or (host and host_allowed(host, allowed)):
            return None
        where = host or "that address"
        return f"links to {where} are not accepted as evidence here: give a link on {named}"

    return refusal
