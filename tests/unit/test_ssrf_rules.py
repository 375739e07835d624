"""The SSRF guard's pure rules: which addresses are public, numeric hosts, allow-lists."""

from __future__ import annotations

import ipaddress

import pytest

from connectors.ssrf_rules import (
    INVALID,
    SsrfError,
    SsrfPolicy,
    address_problem,
    check_url,
    host_allowed,
    parse_ipv4_number,
)

PUBLIC = "93.184.215.14"
PUBLIC_V6 = "2606:4700::1111"
POLICY = SsrfPolicy()

PRIVATE = ["10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1"]
LOOPBACK = ["127.0.0.1", "127.255.255.254", "::1"]
LINK_LOCAL = ["169.254.169.254", "169.254.0.1", "fe80::1"]
CGNAT = ["100.64.0.1", "100.127.255.254"]
UNSPECIFIED = ["0.0.0.0", "0.1.2.3", "::"]
MULTICAST = ["224.0.0.1", "239.255.255.250", "ff02::1"]
RESERVED = ["240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.2.1", "2001:db8::1"]
UNIQUE_LOCAL = ["fc00::1", "fd12:3456:789a::1", "fd00:ec2::254", "fec0::1"]
MAPPED = ["::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:7f00:1"]
EMBEDDED = [
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]
FORBIDDEN = [
    *PRIVATE,
    *LOOPBACK,
    *LINK_LOCAL,
    *CGNAT,
    *UNSPECIFIED,
    *MULTICAST,
    *RESERVED,
    *UNIQUE_LOCAL,
    *MAPPED,
    *EMBEDDED,
]
"""Every kind of address the guard must never dial; ``test_ssrf`` fetches each one too."""


@pytest.mark.parametrize("address", FORBIDDEN)
def test_address_problem_non_public_address_named(address: str) -> None:
    """Every private, loopback, link-local, reserved or embedding address has a problem."""
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", PUBLIC_V6, "2002:808:808::1"])
def test_address_problem_public_address_none(address: str) -> None:
    """A public unicast address (6to4 of a public one included) has no problem."""
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0xa9.254.43518", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("134744072", "8.8.8.8"),
    ],
)
def test_parse_ipv4_number_resolver_forms_normalised(host: str, expected: str) -> None:
    """Decimal, octal, hex and short numeric hosts read as inet_aton reads them."""
    assert parse_ipv4_number(host) == ipaddress.IPv4Address(expected)


@pytest.mark.parametrize("host", ["contoso.com", "1.2.3.4.5", "08.1", "a.1", "1..2", "0x7g"])
def test_parse_ipv4_number_names_none(host: str) -> None:
    """A host that is not a numeric address in any base is left to the resolver."""
    assert parse_ipv4_number(host) is None


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.256", "4294967296", "1.16777216"])
def test_parse_ipv4_number_out_of_range_invalid(host: str) -> None:
    """A numeric host too large for IPv4 is an invalid link."""
    with pytest.raises(SsrfError) as caught:
        parse_ipv4_number(host)
    assert caught.value.reason == INVALID


def test_check_url_public_numeric_host_made_canonical() -> None:
    """A public address spelled as one number is rewritten to its dotted form."""
    assert check_url("https://134744072/a?b=1", POLICY).host == "8.8.8.8"


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("files.contoso.com", ["*.contoso.com"], True),
        ("a.b.contoso.com", ["*.contoso.com"], True),
        ("evil-contoso.com", ["*.contoso.com"], False),
        ("contoso.com", ["*.contoso.com"], False),
        ("contoso.com", ["contoso.com"], True),
        ("contoso.com", ["Contoso.COM."], True),
        ("contoso.com.evil.com", ["contoso.com"], False),
        ("www.contoso.com", ["contoso.com"], False),
        ("anything.example", [], True),
    ],
)
def test_host_allowed_patterns_match_exactly(host: str, patterns: list[str], allowed: bool) -> None:
    """Exact names match only themselves; ``*.suffix`` matches names below the suffix."""
    assert host_allowed(host, patterns) is allowed


@pytest.mark.parametrize(
    "url",
    ["http://contoso.com/x", "ftp://contoso.com/x", "file:///etc/passwd", "gopher://a/", "x"],
)
def test_check_url_non_https_refused(url: str) -> None:
    """Only https links are accepted by default."""
    with pytest.raises(SsrfError) as caught:
        check_url(url, POLICY)
    assert caught.value.reason == "only https links are accepted"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:pw@contoso.com/", "links with a user name or password are not accepted"),
        ("https://contoso.com:8443/", "that port is not allowed"),
        ("https://contoso.com:99999/", "that port is not allowed"),
        ("https://conto%2fso.com/", INVALID),
        ("https:///nohost", INVALID),
        ("https://[::1/", INVALID),
    ],
)
def test_check_url_malformed_or_credentialed_refused(url: str, reason: str) -> None:
    """Credentials, disallowed ports and malformed hosts are refused."""
    with pytest.raises(SsrfError) as caught:
        check_url(url, POLICY)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": 0},
        {"timeout": 0},
        {"max_redirects": -1},
        {"allowed_schemes": ("ftp",)},
        {"allowed_schemes": ()},
        {"allowed_hosts": ("*evil.com",)},
        {"allowed_hosts": ("bücher.de",)},
        {"allowed_ports": (0,)},
    ],
)
def test_policy_malformed_rejected(kwargs: dict[str, object]) -> None:
    """A policy that could not be enforced as written is rejected at construction."""
    with pytest.raises(ValueError):
        SsrfPolicy(**kwargs)  # type: ignore[arg-type]


def test_address_problem_teredo_client_private_named() -> None:
    """A Teredo address is judged by the (de-obfuscated) client address it carries."""
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:f5ff:fffe")
    assert teredo.teredo is not None and str(teredo.teredo[1]) == "10.0.0.1"
    assert address_problem(teredo) is not None
