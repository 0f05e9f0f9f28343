"""The host allow-list and the address check: decide, before any connection, what may be fetched.

Reads a URL, the configured entries (``SPOTREC_AUDIO_ALLOWED_HOSTS``) and addresses
(``SPOTREC_AUDIO_ALLOWED_ADDRESSES``), and the DNS; writes nothing. An entry is an exact host
(``127.0.0.1``, ``cdn.example.org``), optionally with a port (``cdn.example.org:8443``, or
``host:*`` for any port), or ``.suffix`` for a domain and all its sub-domains (``.dzcdn.net``).
An entry without a port allows only the standard ports, 80 and 443. The URL is parsed once, with
the same parser aiohttp connects with, and that parsed URL is what gets requested, so the check
and the connection cannot disagree.

An allowed host must also lead to a public address: a host name is resolved once, refused if any
of its addresses is loopback, private, link-local, multicast or otherwise not global, and the
connection then goes to exactly those checked addresses (:class:`PinnedResolver`), so a second
DNS answer cannot send it elsewhere (DNS rebinding). A non-public IP address is accepted only
when a URL names it literally and ``SPOTREC_AUDIO_ALLOWED_ADDRESSES`` lists it (how tests reach
their local fakes); a host name never resolves into one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from sources.errors import AudioError, AudioRefused, SourceUnavailable
from sources.redaction import scrub_urls

SCHEMES = ("http", "https")
#: A DNS name in its ASCII form (IDNs arrive punycoded from yarl): letters, digits, '-', '.'.
_HOSTNAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")
#: The ports an allow-list entry without a port allows.
STANDARD_PORTS = frozenset({80, 443})
#: An entry's port that allows any port (``host:*``).
ANY_PORT = -1


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``(host, port or None)``; a malformed entry gives an empty host, which matches nothing."""
    entry = entry.strip().lower()
    host, port = entry, ""
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    if not port:
        return host.removesuffix("."), None
    if port == "*":
        return host.removesuffix("."), ANY_PORT
    return (host.removesuffix("."), int(port)) if port.isdigit() else ("", None)


def host_allowed(host: str, port: int | None, entries: Iterable[str]) -> bool:
    """Whether ``host`` (ASCII, lower-case) on ``port`` matches one of the allow-list entries.

    Args:
        host: The host name or IP address as it will be connected to.
        port: The port that will be connected to.
        entries: Allow-list entries: exact hosts, ``host:port``, ``host:*``, or ``.suffix``.

    Returns:
        True when an entry matches; suffix entries never match IP addresses; an entry without
        a port matches ports 80 and 443 only.
    """
    host = host.lower().removesuffix(".")
    for entry in entries:
        name, entry_port = _split_entry(entry)
        if entry_port is None and port not in STANDARD_PORTS:
            continue
        if entry_port not in (None, ANY_PORT) and entry_port != port:
            continue
        if name.startswith("."):
            domain = name[1:]
            if domain and not _is_ip(host) and (host == domain or host.endswith(name)):
                return True
        elif name and host == name:
            return True
    return False


def check_url(url: str | URL, entries: Iterable[str]) -> URL:
    """Parse ``url`` and refuse it unless its scheme and host are allowed.

    Args:
        url: An absolute URL from an event, an API response or a redirect.
        entries: The allow-list (``settings.audio.allowed_hosts``).

    Returns:
        The parsed URL, which is what the caller must request.

    Raises:
        AudioRefused: The URL is malformed, not http(s), carries user info, or its host is not
            on the allow-list. Nothing was contacted.
    """
    text = scrub_urls(str(url))  # refusals become reasons: no signed query strings
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        port = parsed.port
    except (ValueError, TypeError) as exc:
        msg = f"refused {text!r}: not a valid URL ({exc})"
        raise AudioRefused(msg) from exc
    if parsed.scheme not in SCHEMES:
        msg = f"refused {text!r}: scheme {parsed.scheme!r} is not one of {SCHEMES}"
        raise AudioRefused(msg)
    # Any user info ('user@', ':@') is refused: it is how 'http://good.host@evil.host/' fools
    # readers, and audio CDNs never need it.
    if "@" in (parsed.raw_authority or ""):
        msg = f"refused a URL with user info in its authority (host {parsed.raw_host!r})"
        raise AudioRefused(msg)
    host = (parsed.raw_host or "").lower()
    if not host:
        msg = f"refused {text!r}: no host"
        raise AudioRefused(msg)
    if not (_is_ip(host) or _HOSTNAME.match(host.removesuffix("."))):
        msg = f"refused {text!r}: {host!r} is not a plain host name or IP address"
        raise AudioRefused(msg)
    if not host_allowed(host, port, entries):
        msg = f"refused host {host!r}: not in SPOTREC_AUDIO_ALLOWED_HOSTS"
        raise AudioRefused(msg)
    return parsed


def non_public(address: str) -> str | None:
    """What kind of non-public address ``address`` is (``loopback``...), or None if public."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    ):
        if test:
            return kind
    return None


def address_allowed(address: str, allowed: Iterable[str]) -> bool:
    """Whether ``address`` is listed in ``allowed`` (addresses or CIDR networks)."""
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)


class PinnedResolver(AbstractResolver):
    """An aiohttp resolver that answers only with addresses checked by :meth:`pin`.

    :meth:`pin` resolves a URL's host once and refuses it unless every address is public (or,
    for an IP literal, explicitly allowed); the connection that follows asks :meth:`resolve`,
    which returns those same addresses and never asks the DNS again. The host name still goes
    in the ``Host`` header and the TLS server name, as aiohttp takes them from the URL.
    """

    def __init__(self, allowed_addresses: Iterable[str] = (), timeout_s: float = 10.0) -> None:
        """Accept the non-public ``allowed_addresses`` (or networks) when a URL names them.

        A lookup taking longer than ``timeout_s`` fails for now.
        """
        self._allowed = tuple(allowed_addresses)
        self._timeout_s = timeout_s
        self._pins: dict[str, list[ResolveResult]] = {}

    async def pin(self, url: URL) -> None:
        """Resolve and check ``url``'s host; the next connection to it uses these addresses.

        Raises:
            AudioRefused: The host is, or resolves to, a non-public address not allowed.
            AudioError: The host name does not exist.
            SourceUnavailable: The DNS failed for now.
        """
        host = (url.raw_host or "").lower()
        port = url.port or 0
        if _is_ip(host):
            kind = non_public(host)
            if kind and not address_allowed(host, self._allowed):
                msg = (
                    f"refused host {host!r}: a {kind} address, not in "
                    "SPOTREC_AUDIO_ALLOWED_ADDRESSES"
                )
                raise AudioRefused(msg)
            return  # aiohttp connects to a literal address without resolving it
        self._pins.pop(host, None)  # an earlier answer is no longer trusted
        try:
            async with asyncio.timeout(self._timeout_s):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except TimeoutError as exc:
            msg = f"could not resolve {host!r} for now: timed out"
            raise SourceUnavailable(msg) from exc
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                msg = f"host {host!r} does not exist"
                raise AudioError(msg) from exc
            msg = f"could not resolve {host!r} for now: {exc.strerror}"
            raise SourceUnavailable(msg) from exc
        results: list[ResolveResult] = []
        for family, _type, proto, _name, sockaddr in infos:
            address = str(sockaddr[0])
            kind = non_public(address)
            if kind:
                msg = f"refused host {host!r}: it resolves to {address}, a {kind} address"
                raise AudioRefused(msg)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            msg = f"host {host!r} has no address"
            raise AudioError(msg)
        self._pins[host] = results

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses :meth:`pin` checked for ``host``; never a fresh DNS answer."""
        pinned = self._pins.get(host.lower())
        if pinned is None:
            msg = f"{host!r} was not checked before connecting"
            raise OSError(msg)
        return [{**result, "port": port or result["port"]} for result in pinned]

    async def close(self) -> None:
        """Nothing to release."""
