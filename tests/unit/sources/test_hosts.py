"""The host allow-list refuses everything that is not plainly an allowed http(s) host."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from sources.errors import AudioRefused
from sources.hosts import PinnedResolver, check_url, host_allowed, non_public

ALLOWED = (".dzcdn.net", ".scdn.co", "127.0.0.1:*", "cdn.example.org:8443")


@pytest.mark.parametrize(
    "url",
    [
        "https://cdnt-preview.dzcdn.net/api/1/1/a/b/c.mp3?hdnea=exp=1~hmac=2",
        "http://dzcdn.net/x.mp3",  # the domain itself, not only sub-domains
        "https://e-cdns-preview-1.dzcdn.net/stream/c-1-2.mp3",
        "https://P.SCDN.CO/mp3-preview/abc",  # host names are case-insensitive
        "https://x.dzcdn.net./a.mp3",  # a fully qualified name with its trailing dot
        "http://127.0.0.1:54321/clips/robin",  # 'host:*' allows any port
        "https://cdn.example.org:8443/a.mp3",
    ],
)
def test_allowed_urls_pass_and_come_back_parsed(url: str) -> None:
    parsed = check_url(url, ALLOWED)
    assert parsed.scheme in ("http", "https")
    assert str(parsed.raw_host).lower().removesuffix(".") in url.lower()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.dzcdn.net.attacker.com/a.mp3", "not in"),
        ("https://dzcdn.net.attacker.com/a.mp3", "not in"),
        ("https://evildzcdn.net/a.mp3", "not in"),  # a suffix must start at a dot
        ("http://127.0.0.1.nip.io/a.mp3", "not in"),
        ("http://localhost/a.mp3", "not in"),
        ("http://169.254.169.254/latest/meta-data/", "not in"),
        ("http://dzcdn.net@evil.com/", "user info"),
        ("http://x.dzcdn.net:@evil.com/", "user info"),
        ("http://:@x.dzcdn.net/", "user info"),
        ("http://user:pw@x.dzcdn.net/", "user info"),
        ("http://evil.com#@x.dzcdn.net/", "not in"),
        ("http://evil.com\\@x.dzcdn.net/", "not a valid URL"),
        ("http://x.dzcdn.net%2f@evil.com/", "user info"),
        ("ftp://x.dzcdn.net/a.mp3", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("//x.dzcdn.net/a.mp3", "scheme"),
        ("/relative/path.mp3", "scheme"),
        ("http:///a.mp3", "no host"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://%31%32%37.0.0.1/", "plain host name"),
        ("https://cdn.example.org/a.mp3", "not in"),  # the entry allows port 8443 only
        ("https://cdn.example.org:443/a.mp3", "not in"),
        ("http://[::1]/a.mp3", "not in"),
        ("http://0x7f000001/", "not in"),
        ("https://x.dzcdn.net:8443/a.mp3", "not in"),  # no port in the entry: 80 and 443 only
        ("http://x.dzcdn.net:22/a.mp3", "not in"),
        ("http://2130706433/", "not in"),
    ],
)
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(AudioRefused, match=why):
        check_url(url, ALLOWED)


def test_user_info_is_not_echoed_in_the_refusal() -> None:
    with pytest.raises(AudioRefused) as caught:
        check_url("http://me:s3cret-pw@x.dzcdn.net/a.mp3", ALLOWED)
    assert "s3cret-pw" not in str(caught.value)


def test_internationalised_names_are_matched_in_their_ascii_form() -> None:
    assert check_url("http://пример.dzcdn.net/a", ALLOWED).raw_host == "xn--e1afmkfd.dzcdn.net"
    with pytest.raises(AudioRefused):
        check_url("http://dzcdn.пример/a", ALLOWED)


@pytest.mark.parametrize(
    ("host", "port", "entries", "expected"),
    [
        ("a.b.dzcdn.net", 443, [".dzcdn.net"], True),
        ("dzcdn.net", 443, [".dzcdn.net"], True),
        ("xdzcdn.net", 443, [".dzcdn.net"], False),
        ("10.0.0.1", 80, [".0.1"], False),  # suffix entries never match IP addresses
        ("::1", 8080, ["[::1]:8080"], True),
        ("::1", 8081, ["[::1]:8080"], False),
        ("::1", 80, ["[::1]"], True),
        ("::1", 8080, ["[::1]"], False),  # no port: the standard ones only
        ("::1", 8080, ["[::1]:*"], True),
        ("cdn.example.org", 443, ["cdn.example.org"], True),
        ("cdn.example.org", 8443, ["cdn.example.org"], False),
        ("cdn.example.org", 8443, ["cdn.example.org:*"], True),
        ("a.dzcdn.net", 8080, [".dzcdn.net"], False),
        ("cdn.example.org", 80, ["cdn.example.org:http"], False),  # malformed: matches nothing
        ("cdn.example.org", 80, ["CDN.Example.org."], True),
        ("anything.org", 80, ["", "."], False),
        ("anything.org", 80, [], False),
    ],
)
def test_host_allowed(host: str, port: int, entries: list[str], expected: bool) -> None:
    assert host_allowed(host, port, entries) is expected


def test_a_signed_query_string_never_appears_in_a_refusal() -> None:
    with pytest.raises(AudioRefused) as caught:
        check_url("https://evil.example/a.mp3?hdnea=exp=1~hmac=SECRET", ALLOWED)
    assert "SECRET" not in str(caught.value)
    assert "evil.example" in str(caught.value)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str | None) -> None:
    assert non_public(address) == kind


async def test_ip_literals_need_an_explicit_opt_in() -> None:
    closed = PinnedResolver()
    with pytest.raises(AudioRefused, match="a loopback address, not in SPOTREC_AUDIO_ALLOWED_AD"):
        await closed.pin(check_url("http://127.0.0.1:8080/a", ALLOWED))
    with pytest.raises(AudioRefused, match="link-local"):
        await closed.pin(check_url("http://169.254.169.254/", ("169.254.169.254",)))
    await PinnedResolver(["127.0.0.0/8"]).pin(check_url("http://127.0.0.1:8080/a", ALLOWED))


async def test_a_name_resolving_to_a_private_address_is_refused_even_when_opted_in() -> None:
    # 'localhost' resolves to the loopback address; the opt-in covers literal addresses only.
    resolver = PinnedResolver(["127.0.0.1"])
    with pytest.raises(AudioRefused, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        await resolver.pin(check_url("http://localhost/a", ("localhost",)))
    with pytest.raises(OSError, match="not checked"):
        await resolver.resolve("localhost", 80)


async def test_the_connection_uses_only_the_addresses_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rebinding DNS: a public address when checked, the loopback address for any later query.
    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1"])

    async def rebinding(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    resolver = PinnedResolver()
    await resolver.pin(check_url("https://cdn.example.org:8443/a", ALLOWED))
    for _ in range(2):  # every connection gets the checked address, never a new answer
        (result,) = await resolver.resolve("cdn.example.org", 8443)
        assert (result["host"], result["hostname"], result["port"]) == (
            "93.184.215.14",
            "cdn.example.org",
            8443,
        )
    with pytest.raises(AudioRefused, match="resolves to 127.0.0.1"):  # the next check sees it
        await resolver.pin(check_url("https://cdn.example.org:8443/a", ALLOWED))
    with pytest.raises(OSError, match="not checked"):
        await resolver.resolve("other.example.org", 443)
